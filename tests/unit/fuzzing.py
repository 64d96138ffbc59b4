"""Property-based fuzzing (Hypothesis): the settings profiles, the campaign runner and the regression corpus.

Two profiles (HYPOTHESIS_PROFILE, default "ci"):
- ci: each property runs its fixed number of examples, derandomized (the same inputs on every run),
  with no example database (nothing written into the tree);
- fuzz (`make fuzz`): each property runs again and again with fresh random inputs until its share of
  FUZZ_SECONDS (default 600) is used up. Hypothesis's database (build/hypothesis) replays what failed
  before, and each failing input, shrunk, is saved in tests/unit/fuzz_regressions/, which the ci
  profile replays (each fuzz module's test_regressions).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import signal
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "build/hypothesis"
REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZING = PROFILE == "fuzz"
FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "600"))

# Hypothesis keeps caches (and, in the fuzz profile, its database) under build/, not in the tree.
set_hypothesis_home_dir(HOME)
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=False,
                          suppress_health_check=_SLOW_OK)
settings.register_profile("fuzz", max_examples=200, derandomize=False, deadline=None,
                          database=DirectoryBasedExampleDatabase(HOME / "examples"),
                          suppress_health_check=_SLOW_OK)
settings.load_profile(PROFILE)

share_s = FUZZ_SECONDS  # each campaign's time in the fuzz profile: conftest divides by the campaigns collected
_last_failure: dict[str, Any] = {}


def campaign(target: str, ci_examples: int,
             before: Callable[[], object] | None = None) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Make a pytest test of a @given property whose body calls `kept(target, input)`: in the ci profile
    the property runs `ci_examples` examples; in the fuzz profile it runs until its time share is up, and
    the input it fails on is saved as a regression. `before` runs first (what the strategies need)."""

    def decorate(prop: Callable[[], None]) -> Callable[[], None]:
        bounded = prop if FUZZING else settings(max_examples=ci_examples)(prop)

        def test() -> None:
            if before is not None:
                before()
            if not FUZZING:
                bounded()
                return
            end = time.monotonic() + share_s
            while time.monotonic() < end:
                try:
                    bounded()
                except BaseException as e:
                    if target in _last_failure:
                        what = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                        print(f"fuzz: saved {save(target, _last_failure.pop(target), what)}")
                    raise

        test.__name__ = test.__qualname__ = prop.__name__
        test.__doc__ = prop.__doc__
        test.fuzz_target = target  # type: ignore[attr-defined]  # conftest counts the campaigns
        test.ci_examples = ci_examples  # type: ignore[attr-defined]
        return test

    return decorate


class kept:  # noqa: N801 - used like a function: `with kept(target, value): check(value)`
    """Remember `value` when the block fails: the last failure of a run is Hypothesis's shrunk example."""

    def __init__(self, target: str, value: Any) -> None:
        self.target, self.value = target, value

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            _last_failure[self.target] = self.value


class Hung(Exception):
    pass


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM): a loop driven by a count or a length read from a medium must end."""

    def alarm(signum: int, frame: object) -> None:
        raise Hung(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the regression corpus: one JSON file per failing input ------------------------------------------

def encode(value: Any) -> Any:
    """JSON for an input: text as it is (lone surrogates as \\udcxx escapes), bytes zlib-compressed in base64,
    lists and dicts of these."""
    if isinstance(value, bytes):
        return {"zlib_base64": base64.b64encode(zlib.compress(value, 9)).decode()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": {k: encode(v) for k, v in value.items()}}
    return value


def decode(data: Any) -> Any:
    if isinstance(data, dict) and "zlib_base64" in data:
        return zlib.decompress(base64.b64decode(data["zlib_base64"]))
    if isinstance(data, dict):
        return {k: decode(v) for k, v in data["dict"].items()}
    if isinstance(data, list):
        return tuple(decode(v) for v in data)
    return data


def save(target: str, value: Any, note: str = "") -> Path:
    """Write a failing input into the corpus (tests/unit/fuzz_regressions/<target>-<hash>.json)."""
    text = json.dumps({"target": target, "note": note, "input": encode(value)}, indent=1, sort_keys=True)
    path = REGRESSIONS / f"{target}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    REGRESSIONS.mkdir(exist_ok=True)
    path.write_text(text + "\n")
    return path


def regressions(*targets: str) -> list[Any]:
    """The saved inputs of these targets, as pytest parameters (target, input) with ASCII ids (xdist)."""
    out = []
    for path in sorted(REGRESSIONS.glob("*.json")):
        data = json.loads(path.read_text())
        if data["target"] in targets:
            out.append(pytest.param(data["target"], decode(data["input"]), id=path.stem))
    return out
