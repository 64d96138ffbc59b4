"""Entry point: argv → subcommand. The only module that exits with a code.

Every live boot starts this twice (the cmdline hook, then the run), so start-up counts: argparse and
json are imported only when needed, logging only for a record to emit (pylive/log.py; `make bench`). The plain forms
(`pylive cmdline-hook`, `pylive run --newroot /sysroot`, `pylive explain --cmdline '…'`) are read by
`_plain_args`; everything else (--help, usage errors, --opt=value, abbreviations) goes to argparse.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from types import SimpleNamespace

from pylive import __version__
from pylive.cmdline import Args, read_cmdline
from pylive.errors import EXIT_BAD_CMDLINE, EXIT_FAILED, EXIT_NO_CHECKSUM, EXIT_NOT_LIVE, EXIT_OK, LiveError, shown
from pylive.log import WARNING, Log, log, log_setup

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: typing stays unimported at run time (start-up, make bench)
if TYPE_CHECKING:
    import argparse

    from pylive.options import LiveOptions


def _options(args: SimpleNamespace) -> LiveOptions:
    from pylive.options import parse_options

    text = args.cmdline if args.cmdline is not None else read_cmdline(args.root)
    return parse_options(Args.from_text(text))


def _logger(kmsg: bool) -> Log:
    """pylive's logger, set up now unless a subcommand already did."""
    return log if log.is_set_up else log_setup(kmsg=kmsg)


def cmd_run(args: SimpleNamespace) -> int:
    from pathlib import Path

    from pylive import boot
    from pylive.system import RealSystem

    opts = _options(args)
    log_setup(debug=opts.debug or opts.live_debug, kmsg=args.kmsg, console=True)
    if not opts.is_live:
        log.error("root=%s is not a live medium; nothing to do", shown(opts.root or "(unset)"))
        return EXIT_NOT_LIVE
    for warning in opts.warnings:
        log.warning("%s", warning)
    boot.run(opts, RealSystem(Path(args.root)), newroot=args.newroot)
    _leave_watcher(opts, args.root)
    return EXIT_OK


def _leave_watcher(opts: LiveOptions, root: str) -> None:
    """`pylive status` and the overlay watcher for the booted system (pylive/health/leave.py). Best
    effort after the root is built: a failure is a warning, never a failed boot."""
    from pylive.health import leave
    from pylive.health.levels import parse_levels

    levels = parse_levels(opts.watch)  # checked when the options were parsed
    dist = leave.compiled_dist()
    if levels is None or dist is None:
        return
    try:
        leave.leave_behind(root, dist, levels)
    except leave.NotLeft as e:
        log.warning("the booted system gets no `pylive status` or overlay watcher: %s", e)
        return
    except OSError as e:
        log.warning("the booted system gets no `pylive status` or overlay watcher: %s under %s failed (%s)",
                    e.filename or "writing", leave.RUN_DIR, e.strerror or e)
        return
    log.info("left %s/pylive (status, watch) and %s for the booted system (warnings at %s %%)", leave.RUN_DIR,
             leave.UNIT_NAME, ",".join(str(x) for x in levels))


def cmd_cmdline_hook(args: SimpleNamespace) -> int:
    """For the dracut cmdline hook: shell assignments when this is a live boot, exit 3 when not."""
    opts = _options(args)
    log_setup(kmsg=args.kmsg)
    for warning in opts.warnings:
        log.warning("%s", warning)
    if not opts.is_live:
        return EXIT_NOT_LIVE
    assert opts.spec is not None
    import shlex

    root = f"live:{opts.spec.udev_path() or opts.spec}"
    print(f"root={shlex.quote(root)}")
    print("rootok=1")
    if opts.spec.kind.value in ("url", "nfs"):
        print("pylive_net=1")
    return EXIT_OK


def cmd_parse(args: SimpleNamespace) -> int:
    opts = _options(args)
    if args.json:
        import json

        print(json.dumps(opts.to_json(), indent=2, sort_keys=True))
    else:
        for warning in opts.warnings:
            print(f"warning: {warning}")
        print(f"live medium: {opts.spec} ({opts.spec.udev_path() if opts.spec else '-'})")
    return EXIT_OK


def cmd_explain(args: SimpleNamespace) -> int:
    """What a command line would do, offline, as a normal user; also in the emergency shell."""
    from pathlib import Path

    from pylive.explain import explain, render

    opts = _options(args)
    log_setup(kmsg=False, level=WARNING)
    data = explain(opts, Path(args.media) if args.media else None,
                   overlay_media=Path(args.overlay_media) if args.overlay_media else None)
    if args.json:
        import json

        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(render(data), end="")
    return EXIT_FAILED if "error" in data else EXIT_OK


def cmd_check_media(args: SimpleNamespace) -> int:
    """rd.live.check offline: the implanted MD5 of an ISO image or device, as checkisomd5 checks it."""
    import contextlib
    import shutil
    import time

    from pylive import isomd5
    from pylive.errors import MediaCheckFailed
    from pylive.linux.copy import read_ahead
    from pylive.progress import Display, Meter, Watch

    log_setup(kmsg=False)
    path = args.file
    what = "give an ISO image, or the device it was written to"
    try:
        f = open(path, "rb", buffering=0)  # closed by the with below
    except OSError as e:
        log.error("%s: %s: %s", path, e.strerror, what)
        return EXIT_BAD_CMDLINE
    with f:
        found = isomd5.read_implanted(f)
        if found is isomd5.Status.NOT_ISO:
            log.error("%s is not an ISO 9660 image (no primary volume descriptor at sector 16): %s", path, what)
            return EXIT_BAD_CMDLINE
        if not isinstance(found, isomd5.Implanted):
            log.error("%s carries no implanted MD5 (implantisomd5 was not run on the image): it cannot be checked",
                      path)
            return EXIT_NO_CHECKSUM
        tty = sys.stderr.isatty()
        display = Display(_stderr, overwrite=tty, every_s=1.0 if tty else 2.0,
                          width=shutil.get_terminal_size().columns)
        f.seek(0)
        with (Watch(Meter(f"checking {path}", found.checked_size, time.monotonic()), display) as watch,
              contextlib.closing(read_ahead(f.fileno(), limit=found.checked_size)) as blocks):
            verdict = isomd5.check(blocks, found, watch.update)
            watch.update(verdict.done)  # the last line shows where it stopped
    if verdict.status is not isomd5.Status.PASSED:
        raise MediaCheckFailed(path, verdict.reason, "download or write the image again")
    print(f"{path}: the implanted MD5 matches ({found.md5}): the medium is intact")
    return EXIT_OK


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def cmd_bench_copy(args: SimpleNamespace) -> int:
    """The RAM copy against a plain read of the same file, cold, on this machine (README, "Copy to RAM")."""
    from pylive.benchcopy import METHODS, bench, report

    log_setup(kmsg=False)
    methods = tuple(args.methods.split(",")) if args.methods else METHODS
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        log.error("--methods: unknown method %s: use some of %s", ", ".join(unknown), ",".join(METHODS))
        return EXIT_BAD_CMDLINE
    blocks = tuple(int(k) << 10 for k in args.block_kib.split(","))
    print(report(args.file, bench(args.file, args.dest_dir, blocks, methods, args.runs)), end="")
    return EXIT_OK


def cmd_bench_fetch(args: SimpleNamespace) -> int:
    """pylive's download of a URL, timed (pylive/net/bench.py; README, "Booting over the network")."""
    from pylive.system import network_code

    log_setup(kmsg=False)
    try:
        with network_code("pylive bench-fetch", module="pylive.net.bench"):
            from pylive.net.bench import bench, report
        print(report(bench(args.url, args.dest_dir, args.runs, verify_tls=not args.no_verify)), end="")
    except LiveError as e:
        log.error("%s", e)
        return EXIT_FAILED
    return EXIT_OK


def _levels(args: SimpleNamespace) -> tuple[int, ...] | None:
    """--levels, else rd.pylive.watch from the command line, else the default."""
    from pylive.health.levels import parse_levels

    text = args.levels
    if text is None:
        cmdline = args.cmdline if args.cmdline is not None else read_cmdline(args.root)
        arg = Args.from_text(cmdline).last("rd.pylive.watch")
        text = arg.value if arg is not None and arg.value is not None else ""
    try:
        return parse_levels(text)
    except ValueError as e:
        log.error("--levels=%s: %s", shown(text), e)
        raise SystemExit(EXIT_BAD_CMDLINE) from None


def cmd_status(args: SimpleNamespace) -> int:
    """How full the live overlay is against its effective limit (README, "Watching the overlay")."""
    import json

    from pylive.health import measure, status

    log_setup(kmsg=False)
    levels = _levels(args) or status.DEFAULT_LEVELS
    try:
        reading = measure.read(args.root)
    except measure.NotALiveSystem as e:
        log.error("%s: `pylive status` reads the overlay of a live system booted by pylive", e)
        return EXIT_NOT_LIVE
    if args.json:
        print(json.dumps(status.as_json(reading, levels), indent=2))
    else:
        print(status.human(reading, levels))
    return status.exit_status(reading, levels)


def cmd_watch(args: SimpleNamespace) -> int:
    """The overlay watcher (the unit the boot leaves runs it)."""
    from pylive.health import measure, watch

    log_setup(kmsg=False)
    levels = _levels(args)
    if levels is None:
        log.error("rd.pylive.watch=0: the watcher is turned off")
        return EXIT_OK
    try:
        interval = float(args.interval or 2.0)
    except ValueError:
        interval = 0.0
    if not 0.1 <= interval <= 3600:
        log.error("--interval=%s: give the seconds between two readings, from 0.1 to 3600", shown(args.interval))
        return EXIT_BAD_CMDLINE
    try:
        return watch.run(levels, interval=interval, root=args.root, once=args.once)
    except measure.NotALiveSystem as e:
        log.error("%s: nothing to watch", e)
        return EXIT_NOT_LIVE


def cmd_overlay(args: SimpleNamespace) -> int:
    """The offline overlay tools (pylive/overlay/): no device-mapper needed."""
    log_setup(kmsg=False)
    if args.verb == "inspect":
        from pylive.overlay import inspect

        return inspect.run(args.file, args.json)
    if args.verb == "create":
        from pathlib import Path

        from pylive.overlay import create

        return create.run(args.target, args.size, args.overlayfs, live_dir=args.dir, medium=args.medium,
                          root=Path(args.root))
    if args.verb == "resize":
        from pathlib import Path

        from pylive.overlay import resize

        return resize.run(args.file, args.size, Path(args.root))
    if args.verb == "merge":
        from pathlib import Path

        from pylive.overlay import merge

        return merge.run(args.file, args.base, args.out, force=args.force, any_base=args.any_base,
                         repair=args.repair, root=Path(args.root))
    raise AssertionError(args.verb)


def cmd_update_boot(args: SimpleNamespace) -> int:
    """The newest kernel and initramfs of the live root to the stick's boot files (pylive/bootfiles/)."""
    from pathlib import Path

    from pylive.bootfiles import apply

    log_setup(kmsg=False)
    return apply.run(args.dry_run, Path(args.root))


COMMANDS: dict[str, Callable[[SimpleNamespace], int]] = {
    "run": cmd_run, "cmdline-hook": cmd_cmdline_hook, "parse": cmd_parse, "explain": cmd_explain,
    "check-media": cmd_check_media, "bench-copy": cmd_bench_copy, "status": cmd_status, "watch": cmd_watch,
    "overlay": cmd_overlay, "update-boot": cmd_update_boot, "bench-fetch": cmd_bench_fetch,
}
# For _plain_args: each subcommand's options (beyond --cmdline, --root, --[no-]kmsg); True when the
# option takes a value. argparse below defines the same options; a unit test keeps the two in step.
OPTIONS: dict[str, dict[str, bool]] = {
    "run": {"--newroot": True},
    "cmdline-hook": {},
    "parse": {"--json": False},
    "explain": {"--media": True, "--overlay-media": True, "--json": False},
    # the booted system's long-running watcher: no argparse in its memory
    "status": {"--json": False, "--levels": True},
    "watch": {"--levels": True, "--interval": True, "--once": False},
}


def in_initramfs() -> bool:
    return os.path.exists("/etc/initrd-release")


def _dest(option: str) -> str:
    return option.removeprefix("--no-").removeprefix("--").replace("-", "_")


def _defaults(command: str) -> dict[str, object]:
    values: dict[str, object] = {_dest(name): None if takes else False for name, takes in OPTIONS[command].items()}
    values.update(command=command, cmdline=None, root="/", kmsg=in_initramfs())
    if command == "run":
        values["newroot"] = os.environ.get("NEWROOT", "/sysroot")
    return values


def _plain_args(argv: list[str]) -> SimpleNamespace | None:
    """What argparse would make of `argv`, for argv it cannot read otherwise; None for anything else.

    Plain means: a subcommand, then its options spelled out in full, each value its own word and not
    starting with "-" (argparse could take that for an option).
    """
    if not argv or argv[0] not in OPTIONS:
        return None
    takes_value = {"--cmdline": True, "--root": True, "--kmsg": False, "--no-kmsg": False, **OPTIONS[argv[0]]}
    values = _defaults(argv[0])
    words = iter(argv[1:])
    for word in words:
        if word not in takes_value:
            return None
        if not takes_value[word]:
            values[_dest(word)] = not word.startswith("--no-")
            continue
        value = next(words, None)
        if value is None or value.startswith("-"):
            return None
        values[_dest(word)] = value
    return SimpleNamespace(**values)


def _bench_fetch_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help="http(s)://, ftp:// or tftp:// URL of a file")
    p.add_argument("--dest-dir", metavar="DIR", default="/run", help="where the file goes (a tmpfs; default /run)")
    p.add_argument("--runs", type=int, default=1, help="downloads, one after the other (default 1)")
    p.add_argument("--no-verify", action="store_true", help="do not verify an HTTPS certificate (rd.noverifyssl)")
    p.set_defaults(kmsg=False)


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="pylive", description="live-media boot stage for dracut")
    parser.add_argument("--version", action="version", version=f"pylive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cmdline", help="use this command line instead of the system's")
        p.add_argument("--root", default="/", help=argparse.SUPPRESS)
        p.add_argument("--kmsg", action=argparse.BooleanOptionalAction, default=in_initramfs(),
                       help="log to /dev/kmsg (default in the initramfs)")

    p = sub.add_parser("run", help="set up the live root (initramfs only)")
    common(p)
    p.add_argument("--newroot", metavar="DIR", default=os.environ.get("NEWROOT", "/sysroot"),
                   help="where to mount the live root (default $NEWROOT, else /sysroot)")
    p = sub.add_parser("cmdline-hook", help="for dracut's cmdline hook: print root= and rootok=")
    common(p)
    p = sub.add_parser("parse", help="show what the command line asks for")
    common(p)
    p.add_argument("--json", action="store_true", help="the parsed options as JSON")

    p = sub.add_parser("explain", help="show what a command line would do, without booting")
    common(p)
    p.add_argument("--media", metavar="PATH",
                   help="a live medium: a directory tree or an ISO image (read, never mounted); with "
                   "iso-scan/filename, the directory tree of the filesystem that holds the ISO, or the ISO")
    p.add_argument("--overlay-media", metavar="PATH",
                   help="the persistent overlay's device contents (directory tree or image)")
    p.add_argument("--json", action="store_true", help="the plan as JSON")

    p = sub.add_parser("check-media", help="check the MD5 implanted in an ISO image or device (rd.live.check)",
                       description="Exit status: 0 intact, 1 damaged, 2 not an ISO image or unreadable, "
                                   "4 no implanted MD5.")
    p.add_argument("file", metavar="FILE", help="an ISO image, or the device it was written to")
    p.set_defaults(kmsg=False)

    p = sub.add_parser("status", help="how full the live overlay is, against what really limits it",
                       description="Exit status: 0 fine, 1 a warning level reached, 2 overflowed, invalid or "
                                   "failed, 3 not a live system booted by pylive.")
    common(p)
    p.add_argument("--json", action="store_true", help="the reading as JSON (schema_version 1, README)")
    p.add_argument("--levels", help="warning levels in percent (default: rd.pylive.watch, else 80,90,95)")

    p = sub.add_parser("watch", help="warn (journal, terminals, desktop) before the live overlay fills up")
    common(p)
    p.add_argument("--levels", help="warning levels in percent (default: rd.pylive.watch, else 80,90,95)")
    p.add_argument("--interval", help="seconds between two readings (default 2)")
    p.add_argument("--once", action="store_true", help="one reading, the state file written, then exit")

    p = sub.add_parser("bench-copy", help="measure the RAM copy against a plain read of a file")
    p.add_argument("file", metavar="FILE", help="the file to copy (e.g. LiveOS/squashfs.img on the medium)")
    p.add_argument("--dest-dir", metavar="DIR", default="/run", help="where the copy goes (a tmpfs; default /run)")
    p.add_argument("--block-kib", default="4096", help="block sizes in KiB, comma-separated")
    p.add_argument("--methods", default="read,copy,verify", help="some of read,copy,verify,copy1,rw,kernel,sendfile")
    p.add_argument("--runs", type=int, default=3, help="runs of each method (default 3)")
    p.set_defaults(kmsg=False)

    _bench_fetch_parser(sub.add_parser("bench-fetch", help="time pylive's download of a URL (to compare with "
                                                           "curl or wget)"))

    p = sub.add_parser("update-boot",
                       help="put the live root's newest kernel and initramfs on the stick it booted from",
                       description="Run in a live system booted from a stick with a persistent overlay, after a kernel "
                                   "update: the stick's boot files (those its boot loader configuration names) get the "
                                   "newest kernel and initramfs, the previous ones are kept as *.prev. Exit status: "
                                   "0 updated, already current, or --dry-run; 1 refused or failed (the stick's files "
                                   "are as they were); 3 no live medium mounted on /run/initramfs/live.")
    p.add_argument("--dry-run", action="store_true", help="show what would be replaced, and the room it needs; "
                   "change nothing")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)
    p.set_defaults(kmsg=False)

    _overlay_parser(sub.add_parser("overlay", help="create, inspect, grow or merge a persistent overlay, offline"))
    return parser


def _overlay_parser(p: argparse.ArgumentParser) -> None:
    import argparse

    p.set_defaults(kmsg=False)
    verbs = p.add_subparsers(dest="verb", required=True, help="what to do with the overlay")
    v = verbs.add_parser("inspect", help="what a device-mapper COW file holds: state, fill, base image",
                         description="Exit status: 0 usable, 1 nearly full (90 %%) or a size the kernel "
                                     "invalidates when it fills, 2 overflowed, full or invalidated, "
                                     "3 not readable as an overlay.")
    v.add_argument("file", help="the COW file (e.g. LiveOS/overlay-<LABEL>-<UUID>), or a device holding one")
    v.add_argument("--json", action="store_true", help="one JSON object (schema in README)")
    v = verbs.add_parser("create", help="make a persistent overlay as livecd-iso-to-disk does",
                         description="Exit status: 0 made, 1 refused or failed (nothing is left behind).")
    v.add_argument("target", help="the directory the stick's (or disk's) filesystem is mounted on")
    v.add_argument("--size", help="MiB, or with a unit: 512M, 4G (a COW file; the image form on vfat)")
    v.add_argument("--overlayfs", action="store_true",
                   help="an OverlayFS directory (with ovlwork/), or on vfat an ext4 image holding both")
    v.add_argument("--dir", default="LiveOS", help="the live directory, rd.live.dir (default LiveOS)")
    v.add_argument("--medium", help="the live medium to name the overlay after, when it is not TARGET's "
                   "filesystem: its device or ISO image")
    v.add_argument("--root", default="/", help=argparse.SUPPRESS)
    v = verbs.add_parser("resize", help="give a device-mapper COW file more room (also after an overflow)",
                         description="Exit status: 0 resized, 1 refused or failed (the file is unchanged).")
    v.add_argument("file", help="the COW file")
    v.add_argument("--size", required=True, help="the new size: MiB, or with a unit: 512M, 8G")
    v.add_argument("--root", default="/", help=argparse.SUPPRESS)
    v = verbs.add_parser("merge", help="write a new root image: the base with the overlay's changes applied",
                         description="Exit status: 0 merged (clean, or not ext2/3/4), 1 refused or failed (nothing "
                                     "written), 3 merged but e2fsck found errors in the result (kept).")
    v.add_argument("file", help="the COW file (only read)")
    v.add_argument("--base", required=True, help="the image it was made for: LiveOS/rootfs.img, or the "
                   "squashfs.img holding it (only read)")
    v.add_argument("--out", required=True, help="the new image (must not exist)")
    v.add_argument("--force", action="store_true", help="apply the table of an invalidated overlay too")
    v.add_argument("--any-base", action="store_true", help="merge even when the identity record names another base")
    v.add_argument("--repair", action="store_true", help="run e2fsck -fy on the result before its check")
    v.add_argument("--root", default="/", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Bytes that are not UTF-8 (kept as surrogates from argv or /proc/cmdline) go out as the same
        # bytes, whatever the locale: the cmdline hook's root= must be the label's bytes, and printing
        # a plan must not fail.
        sys.stdout.reconfigure(errors="surrogateescape")
    args = _plain_args(argv) or SimpleNamespace(**vars(_parser().parse_args(argv)))
    try:
        return int(COMMANDS[args.command](args))
    except LiveError as e:
        _logger(args.kmsg).error("%s", e)
        return e.exit_code
    except Exception:  # the one place that turns a crash into a logged failure
        _logger(args.kmsg).exception("internal error")
        return EXIT_FAILED


# The boot's two commands end the process at once, without CPython's teardown of every module: a few ms
# here, a tenth of a second or more in a slow guest, on the boot's critical path (make bench). Their output
# is flushed first; nothing else is pending (files are closed by their with-blocks, threads are daemons,
# pylive registers no atexit handler, and its records are written as they come).
FAST_EXIT = ("run", "cmdline-hook")

if __name__ == "__main__":
    code = main()
    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
