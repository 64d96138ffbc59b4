"""Fuzzing the command line (Hypothesis, tests/unit/fuzzing.py): any text splits as the kernel splits it,
the option table gives LiveOptions or the one-line CmdlineError, and the cmdline hook's assignments read
back through the shell's quoting to the values pylive computed."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given

from pylive.__main__ import main
from pylive.cmdline import Args, parse_cmdline
from pylive.errors import CmdlineError, LiveError
from pylive.log import log
from pylive.loghandlers import OneLine
from pylive.options import LiveOptions, parse_options

from .cmdlines import cmdlines
from .fuzzing import campaign, kept, regressions
from .test_cmdline import kernel_args

# The longest line an error or warning may be: /dev/kmsg keeps 1000 bytes of a record
# (loghandlers.KmsgHandler), and "<N>pylive: warning: " comes before the text (errors.LINE_BYTES).
MAX_LINE = 960


def assert_one_line(text: str) -> None:
    """One printable line (no line break, no control character, no lone surrogate) that fits in a kmsg record."""
    assert text.isprintable(), repr(text)
    assert len(text.encode()) <= MAX_LINE, f"{len(text.encode())} bytes: {text[:200]!r}…"


def options_or_error(line: str) -> LiveOptions | CmdlineError:
    """parse_options of `line`: LiveOptions, or the CmdlineError it stops with (any other exception fails)."""
    try:
        opts = parse_options(Args.from_text(line))
    except CmdlineError as e:
        assert_one_line(str(e))
        return e
    for warning in opts.warnings:
        assert_one_line(warning)
    return opts


@contextlib.contextmanager
def _pylive_logger() -> Iterator[None]:
    """pylive's log state and its logger's handlers as they were: main() sets both up for its stderr."""
    logger = logging.getLogger("pylive")
    saved = log.level, log.kmsg, log.console, log._pending, list(logger.handlers), logger.level, logger.propagate
    try:
        yield
    finally:
        log.level, log.kmsg, log.console, log._pending = saved[:4]
        logger.handlers[:] = saved[4]
        logger.setLevel(saved[5])
        logger.propagate = saved[6]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def log_lines() -> Iterator[list[logging.LogRecord]]:
    """pylive's log records, debug ones included, while the block runs."""
    handler = _Records()
    with _pylive_logger():
        log.level, log._pending = logging.DEBUG, False
        logger = logging.getLogger("pylive")
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        yield handler.records


def assert_log_lines(records: list[logging.LogRecord]) -> None:
    """Each record written as one line: a value from the command line or a label cannot forge another
    kmsg record."""
    for record in records:
        text = OneLine().format(record)
        assert text.isprintable(), repr(text[:300])


def run_main(argv: list[str]) -> tuple[int, bytes, str]:
    """main(argv) with stdout as bytes and stderr as a strict UTF-8 terminal: (status, stdout, stderr)."""
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="strict", write_through=True)
    with _pylive_logger(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        log.kmsg = None  # as in a new process: main sets logging up, on this stderr (an earlier test may have)
        rc = main(argv)
    text = err.getvalue().decode()
    assert "internal error" not in text and "Logging error" not in text, text
    return rc, out.getvalue(), text


def cmdline_argv(command: str, line: str) -> list[str]:
    # A value starting with "-" is read by argparse, which takes it only as --cmdline=<value>.
    return [command, "--no-kmsg", f"--cmdline={line}"] if line.startswith("-") else [command, "--no-kmsg",
                                                                                      "--cmdline", line]


# --- the properties --------------------------------------------------------------------------------

def check_line(line: str) -> None:
    """Words split where the kernel's next_arg splits them; options, or the one-line error."""
    assert parse_cmdline(line) == kernel_args(line)
    result = options_or_error(line)
    if isinstance(result, LiveOptions):
        json.dumps(result.to_json())  # what `pylive parse --json` prints


def check_hook(line: str) -> None:
    expected = options_or_error(line)
    rc, out, err = run_main(cmdline_argv("cmdline-hook", line))
    if isinstance(expected, CmdlineError):
        assert (rc, out, err) == (2, b"", f"error: {expected}\n")
        return
    assert err.splitlines() == [f"warning: {w}" for w in expected.warnings]
    if expected.spec is None:
        assert (rc, out) == (3, b"")
        return
    assert rc == 0
    root = f"live:{expected.spec.udev_path() or expected.spec}"
    net = ["pylive_net=1"] if expected.spec.kind.value in ("url", "nfs") else []
    assert shlex.split(out.decode("utf-8", "surrogateescape")) == [f"root={root}", "rootok=1", *net]


def check_hook_in_sh(line: str) -> None:
    """As parse-pylive.sh applies it: eval "$(pylive cmdline-hook)" in a POSIX shell."""
    rc, out, _ = run_main(cmdline_argv("cmdline-hook", line))
    if rc != 0:
        return
    spec = parse_options(Args.from_text(line)).spec
    assert spec is not None
    script = 'eval "$1"; printf "%s|%s" "$root" "$rootok"'
    shown = subprocess.run(["sh", "-c", script, "sh", out], capture_output=True, check=True).stdout
    assert shown == f"live:{spec.udev_path() or spec}|1".encode("utf-8", "surrogateescape")


CHECKS = {"options": check_line, "cmdline-hook": check_hook, "cmdline-hook-sh": check_hook_in_sh}


@campaign("options", ci_examples=10000)
@given(cmdlines)
def test_any_line_splits_as_the_kernel_splits_it_into_options_or_one_error_line(line: str) -> None:
    with kept("options", line):
        check_line(line)


@campaign("cmdline-hook", ci_examples=3000)
@given(cmdlines)
def test_the_hooks_assignments_read_back_as_computed(line: str) -> None:
    with kept("cmdline-hook", line):
        check_hook(line)


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
@campaign("cmdline-hook-sh", ci_examples=300)
@given(cmdlines)
def test_the_hooks_assignments_read_back_in_sh(line: str) -> None:
    with kept("cmdline-hook-sh", line):
        check_hook_in_sh(line)


@pytest.mark.parametrize(("target", "line"), regressions(*CHECKS))
def test_regressions(target: str, line: str) -> None:
    """The inputs fuzzing once failed on (tests/unit/fuzz_regressions/)."""
    CHECKS[target](line)


@pytest.mark.parametrize("text", ["a\nb", "a\x85b", "a\udcffb", "x" * (MAX_LINE + 1)],
                         ids=["lf", "nel", "not-utf8", "long"])
def test_one_line_check_refuses_what_would_break_a_log_line(text: str) -> None:
    assert_one_line(str(LiveError("x" * (MAX_LINE - 3))))
    with pytest.raises(AssertionError):
        assert_one_line(text)
