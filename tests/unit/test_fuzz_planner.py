"""Fuzzing the whole decision (Hypothesis, tests/unit/fuzzing.py): for any command line, against the fake
machines of test_decisions (every medium layout, overlay location and way of finding the medium), the
boot plans a root or stops with one LiveError line; `pylive explain` prints a plan or ends with one
error line; a boot that fails at any step unwinds and stops with one line."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pylive import boot
from pylive.cmdline import Args
from pylive.errors import CmdlineError, LiveError
from pylive.options import MAX_SECONDS, parse_options

from .cmdlines import as_read, cmdlines, one_in, structured_lines
from .fakesystem import FakeSystem, live_iso_system
from .fuzzing import campaign, kept, regressions
from .test_decisions import ISO_FILES, LAYOUTS, OVERLAYS, machine
from .test_fuzz_cmdline import assert_log_lines, assert_one_line, cmdline_argv, log_lines, run_main

# Words that fit the fake machines, so that a line gets past the wait and the medium into the planning:
# the root= (and iso-scan/filename=) each way of finding the medium needs, then options of every mode.
ROOTS = {
    "cd": ['"root=live:CDLABEL=Test Live 1"', "root=live:UUID=2026-11-26-14-40-54-00", "root=live:/dev/sr0"],
    "isoscan": ['"root=live:CDLABEL=Test Live 1" iso-scan/filename=/isos/live.iso',
                "root=live:UUID=2026-11-26-14-40-54-00 iso-scan/filename=LABEL=data:/isos/live.iso"],
    **{source: [f"root=live:{file}"] for source, file in ISO_FILES.items() if source != "isoscan"},
}
FITTING = ["rd.live.overlay=LABEL=persist", "rd.overlay=LABEL=persist", "rd.live.overlay=LABEL=persist:/persist/cow",
           "rd.overlay", "rd.live.overlay.overlayfs", "rd.live.overlay.readonly", "rd.live.overlay.reset",
           "rd.live.overlay.thin", "rd.live.ram", "rd.writable.fsimg", "rd.live.check", "rd.live.image",
           "rd.live.overlay=none", "rw", "rd.live.dir=images", "rd.overlay=tmpfs:size=1G", "rd.live.overlay.size=50%",
           "rd.minmem=4096", "rd.live.overlay.nouserconfirmprompt", "rootflags=noatime", "rd.overlay=none",
           "rd.overlay.reset", "rd.live.overlay=/dev/sr0:/LiveOS/overlay-x"]


@st.composite
def fitting_lines(draw: st.DrawFn, source: str) -> str:
    """A fuzzed line with words that fit the fake machine after it (the last occurrence wins), or before."""
    fit = " ".join([draw(st.sampled_from(ROOTS[source])), *draw(st.lists(st.sampled_from(FITTING), max_size=5))])
    noise = draw(st.one_of(st.just(""), structured_lines()))
    return as_read(f"{fit} {noise}" if draw(one_in(4)) else f"{noise} {fit}")


@st.composite
def machines(draw: st.DrawFn) -> dict[str, object]:
    """test_decisions.machine()'s arguments: a medium layout, what the overlay location holds, where the
    medium is (the overlay on the medium only on a CD)."""
    source = draw(st.sampled_from(sorted(ROOTS)))
    return {"layout": draw(st.sampled_from(sorted(LAYOUTS))), "overlay": draw(st.sampled_from(sorted(OVERLAYS))),
            "source": source, "overlay_on_medium": source == "cd" and draw(st.booleans())}


cases = machines().flatmap(lambda m: st.tuples(fitting_lines(str(m["source"])), st.just(m)))


def impatient(system: FakeSystem) -> FakeSystem:
    """No block device appears on these machines while iso-scan waits for one: the fake's clock jumps to the
    end of the wait at once, instead of ticking a second per loop through rd.retry=2147483647."""
    system.wait_block_event = lambda timeout_s: float(MAX_SECONDS)  # type: ignore[method-assign]
    return system


def check_plan(case: tuple[str, dict[str, object]]) -> None:
    line, where = case
    try:
        opts = parse_options(Args.from_text(line))
    except CmdlineError as e:
        assert_one_line(str(e))
        return
    if not opts.is_live:
        return
    system = impatient(machine(**where))  # type: ignore[arg-type]
    try:
        with log_lines() as records:
            result = boot.run(opts, system, dry_run=True)
    except LiveError as e:
        assert_one_line(str(e))
        return
    finally:
        assert_log_lines(records)
    steps = [s.describe() for s in result.steps]
    assert steps[-1].startswith("ln -s null /dev/root"), steps
    assert json.loads(system.files[boot.STATE_FILE])["mode"] == result.mode.name.lower()


def check_explain(line: str) -> None:
    rc, out, err = run_main(cmdline_argv("explain", line))
    lines = out.decode().splitlines()  # strict UTF-8: bytes that are not UTF-8 are shown escaped
    assert all(x.isprintable() for x in lines), lines
    if rc == 2:  # the command line itself: one error line, nothing planned
        assert out == b"" and err.count("\n") == 1 and err.startswith("error: "), err
        assert_one_line(err[len("error: "):-1])
        return
    errors = [x for x in lines if x.startswith("error: ")]
    if rc == 1:
        assert errors == [lines[-1]], lines
        assert_one_line(errors[0].removeprefix("error: "))
    else:
        assert rc == 0 and not errors and any(x.startswith("mode: ") for x in lines), (rc, lines)


FAIL_AT = ["modprobe", "wait", "ln", "mkdir", "mount", "losetup", "truncate", "dmsetup", "umount", "touch", "write"]


def check_boot(case: tuple[str, str | None]) -> None:
    """A real (not dry) boot against a fake live CD whose system calls fail at one kind of step."""
    line, fail_on = case
    try:
        opts = parse_options(Args.from_text(line))
    except CmdlineError:
        return
    if not opts.is_live:
        return
    system = impatient(live_iso_system())
    system.fail_on = fail_on
    try:
        with log_lines() as records:
            boot.run(opts, system)
    except LiveError as e:
        assert_one_line(str(e))
        if fail_on is not None:  # what was set up is undone, the device-mapper devices first
            assert not system.dm and not system.loops, system.calls
    finally:
        assert_log_lines(records)


CHECKS = {"plan": check_plan, "explain": check_explain, "boot": check_boot}


@campaign("plan", ci_examples=3200)
@given(cases)
def test_any_line_on_any_machine_plans_or_stops_with_one_line(case: tuple[str, dict[str, object]]) -> None:
    with kept("plan", case):
        check_plan(case)


@campaign("explain", ci_examples=2000)
@given(st.one_of(fitting_lines("cd"), fitting_lines("isoscan"), fitting_lines("iso"), cmdlines))
def test_explain_prints_a_plan_or_ends_with_one_error_line(line: str) -> None:
    with kept("explain", line):
        check_explain(line)


@campaign("boot", ci_examples=1500)
@given(st.tuples(fitting_lines("cd"), st.one_of(st.none(), st.sampled_from(FAIL_AT))))
def test_a_failing_boot_unwinds_and_stops_with_one_line(case: tuple[str, str | None]) -> None:
    with kept("boot", case):
        check_boot(case)


@pytest.mark.parametrize(("target", "case"), regressions(*CHECKS))
def test_regressions(target: str, case: object) -> None:
    """The inputs fuzzing once failed on (tests/unit/fuzz_regressions/)."""
    CHECKS[target](case)  # type: ignore[operator]


COMMAND_LINE_TARGETS = {"options", "cmdline-hook", "cmdline-hook-sh", "plan", "explain", "boot"}


def test_the_ci_budget_is_20000_command_lines() -> None:
    """The ci profile's fixed budget (README, Tests): every campaign on command lines, counted."""
    from . import test_fuzz_cmdline

    tests = [getattr(m, n) for m in (test_fuzz_cmdline, sys.modules[__name__]) for n in dir(m) if n.startswith("test_")]
    budget = sum(t.ci_examples for t in tests if getattr(t, "fuzz_target", None) in COMMAND_LINE_TARGETS)
    assert budget >= 20000, budget

