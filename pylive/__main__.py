"""Entry point: argv → subcommand. The only module that exits with a code."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from pylive import __version__
from pylive.cmdline import Args, read_cmdline
from pylive.errors import EXIT_FAILED, EXIT_NOT_LIVE, EXIT_OK, LiveError
from pylive.log import in_initramfs, log_setup
from pylive.options import LiveOptions, parse_options

log = logging.getLogger("pylive")


def _options(args: argparse.Namespace) -> LiveOptions:
    text = args.cmdline if args.cmdline is not None else read_cmdline(Path(args.root))
    return parse_options(Args.from_text(text))


def cmd_run(args: argparse.Namespace) -> int:
    from pylive import boot
    from pylive.system import RealSystem

    opts = _options(args)
    log_setup(debug=opts.debug or opts.live_debug, kmsg=args.kmsg)
    if not opts.is_live:
        log.error("root=%s is not a live medium; nothing to do", opts.root or "(unset)")
        return EXIT_NOT_LIVE
    for warning in opts.warnings:
        log.warning("%s", warning)
    boot.run(opts, RealSystem(Path(args.root)), newroot=args.newroot)
    return EXIT_OK


def cmd_cmdline_hook(args: argparse.Namespace) -> int:
    """For the dracut cmdline hook: shell assignments when this is a live boot, exit 3 when not."""
    opts = _options(args)
    log_setup(kmsg=args.kmsg)
    for warning in opts.warnings:
        log.warning("%s", warning)
    if not opts.is_live:
        return EXIT_NOT_LIVE
    assert opts.spec is not None
    root = f"live:{opts.spec.udev_path() or opts.spec}"
    print(f"root={shlex.quote(root)}")
    print("rootok=1")
    return EXIT_OK


def cmd_parse(args: argparse.Namespace) -> int:
    opts = _options(args)
    if args.json:
        print(json.dumps(opts.to_json(), indent=2, sort_keys=True))
    else:
        for warning in opts.warnings:
            print(f"warning: {warning}")
        print(f"live medium: {opts.spec} ({opts.spec.udev_path() if opts.spec else '-'})")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """What a command line would do, offline, as a normal user; also in the emergency shell."""
    from pylive.explain import explain, render

    opts = _options(args)
    log_setup(kmsg=False)
    logging.getLogger("pylive").setLevel(logging.WARNING)
    data = explain(opts, Path(args.media) if args.media else None,
                   overlay_media=Path(args.overlay_media) if args.overlay_media else None)
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else render(data), end="" if not args.json else "\n")
    return EXIT_FAILED if "error" in data or data.get("executable") is False else EXIT_OK


def main(argv: list[str] | None = None) -> int:
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
    p.add_argument("--newroot", default=os.environ.get("NEWROOT", "/sysroot"))
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("cmdline-hook", help="for dracut's cmdline hook: print root= and rootok=")
    common(p)
    p.set_defaults(func=cmd_cmdline_hook)
    p = sub.add_parser("parse", help="show what the command line asks for")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("explain", help="show what a command line would do, without booting")
    common(p)
    p.add_argument("--media", help="a live medium: a directory tree or an ISO image (read, never mounted); with "
                   "iso-scan/filename, the directory tree of the filesystem that holds the ISO, or the ISO")
    p.add_argument("--overlay-media", help="the persistent overlay's device contents (directory tree or image)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LiveError as e:
        if not log.handlers:
            log_setup(kmsg=getattr(args, "kmsg", False))
        log.error("%s", e)
        return e.exit_code
    except Exception:  # the one place that turns a crash into a logged failure
        if not log.handlers:
            log_setup(kmsg=getattr(args, "kmsg", False))
        log.exception("internal error")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
