"""Boot the guest under QEMU and collect its console log and report.

The guest's test init (qemu/guest/init.sh) writes its report to the second
serial port; this module attaches that port to ``<workdir>/report.txt`` and
parses it with ``parse_report`` into ``{section: content}``.

Acceleration: KVM is probed once (a kernel-only boot with a short timeout,
expecting the guest to print and power off by itself) and the result is cached
in ``build/cache/kvm-probe.json``; otherwise TCG is used. Override with
``PYLIVE_QEMU_ACCEL=kvm|tcg``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from ._util import HarnessError, log, quote_cmd, serialized, which
from .kernel import Kernel, ensure_kernel

QEMU = "qemu-system-x86_64"
BASE_CMDLINE = "console=ttyS0,115200 panic=1 oops=panic"
# dracut: a failed boot ends the VM (power-off/halt) instead of waiting in a shell
NO_SHELL_ARGS = "rd.shell=0 rd.emergency=poweroff"
KVM_PROBE_TIMEOUT_S = 10.0

DiskSpec = Union[Path, str, "tuple[Path | str, str]"]


@dataclass(frozen=True)
class ConsoleEvent:
    """When ``marker`` shows on the console, wait ``delay_s``, then type ``send`` on the console
    (e.g. Enter at a prompt) or, with ``send=None``, cut the power (kill QEMU)."""

    marker: str
    send: bytes | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class QmpEvent:
    """Send the QMP command ``execute`` (with ``arguments``) to QEMU ``delay_s`` seconds after ``marker``
    showed on the console, or after QEMU started when ``marker`` is empty: e.g. ``device_del`` to pull
    a medium out, ``blockdev-add`` + ``device_add`` to plug one in late, ``set_link`` to take a NIC's
    link down. The replies (and QEMU's asynchronous events) are in ``BootResult.qmp_log``."""

    execute: str
    arguments: dict[str, object] = field(default_factory=dict)
    marker: str = ""
    delay_s: float = 0.0


@dataclass
class BootResult:
    report: dict[str, str]        # {} when no report arrived
    console: str                  # full serial console log (ttyS0)
    returncode: int | None        # QEMU's exit status (None if it had to be killed)
    seconds: float                # wall time of the QEMU run
    timed_out: bool               # the harness killed QEMU at the timeout
    halted: bool = False          # the guest halted ("reboot: System halted"); QEMU was killed
    power_cut: bool = False       # a ConsoleEvent without input killed QEMU on purpose
    cmd: list[str] = field(default_factory=list)
    accel: str = ""
    stderr: str = ""              # QEMU's own stderr
    workdir: Path | None = None
    qmp_log: list[dict[str, object]] = field(default_factory=list)  # {"at_s", "execute", "reply"} or events

    @property
    def report_complete(self) -> bool:
        return "end" in self.report

    def console_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console.splitlines()[-lines:])

    def describe(self) -> str:
        """A short text for assertion messages."""
        return (f"rc={self.returncode} timed_out={self.timed_out} halted={self.halted} seconds={self.seconds:.1f} "
                f"accel={self.accel} sections={sorted(self.report)}\n"
                f"--- console tail ({self.workdir}) ---\n{self.console_tail()}"
                + (f"\n--- qemu stderr ---\n{self.stderr}" if self.stderr.strip() else ""))


def parse_report(text: str) -> dict[str, str]:
    """Parse '@@ name' sectioned text into {name: content} (CRs dropped).

    Content keeps its lines without the trailing newline. A repeated section
    name gets its content appended.
    """
    report: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []

    def flush() -> None:
        if current is not None:
            body = "\n".join(buf)
            report[current] = (report[current] + "\n" + body) if current in report else body

    for line in text.replace("\r", "").split("\n"):
        if line.startswith("@@ "):
            flush()
            current, buf = line[3:].strip(), []
        elif current is not None:
            buf.append(line)
    flush()
    if "end" in report:
        report["end"] = ""
    # drop the trailing empty line that precedes the next header / EOF
    return {k: v.rstrip("\n") for k, v in report.items()}


def parse_kv_lines(section: str) -> list[dict[str, str]]:
    """Parse the 'loops'/'blockdevs' sections: 'name k=v k=v ...' per line
    (the last value may contain spaces, e.g. backing_file)."""
    rows = []
    for line in section.splitlines():
        if not line.strip():
            continue
        name, _, rest = line.partition(" ")
        row = {"name": name}
        for m in re.finditer(r"(\w+)=(.*?)(?=\s+\w+=|$)", rest):
            row[m.group(1)] = m.group(2)
        rows.append(row)
    return rows


def _chardev_path(p: Path) -> str:
    return str(p).replace(",", ",,")


def _qemu_version() -> str:
    try:
        out = subprocess.run([QEMU, "--version"], check=False, capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.splitlines()[0] if out else ""


# Kernel messages after which the guest can do nothing more: QEMU -no-reboot
# exits by itself on power-off/reboot, but not on halt (systemd's
# "systemctl halt", e.g. dracut's die() under systemd).
HALT_MARKERS = ("reboot: System halted",)
HALT_GRACE_S = 2.0


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def _connect(path: Path, proc: subprocess.Popen[bytes]) -> socket.socket:
    """The harness's end of the console (a unix socket QEMU listens on); output read from it is
    dropped (the chardev's logfile keeps it), so the guest's UART never stalls."""
    for _ in range(200):
        if proc.poll() is not None:
            break
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            time.sleep(0.025)
            continue
        threading.Thread(target=_drain, args=(sock,), daemon=True).start()
        return sock
    raise HarnessError(f"QEMU did not open its console socket {path}")


class _ConsoleWatch:
    """Tails the console log: notices a halt, and plays the ConsoleEvents when their marker shows."""

    def __init__(self, console: Path | None, events: Sequence[ConsoleEvent], sock: socket.socket | None):
        self.console, self.sock = console, sock
        self.pending = list(events)
        self.seen: dict[int, float] = {}  # event index → when its marker showed
        self.pos = 0
        self.text = ""
        self.halt_seen_at: float | None = None

    def poll(self, now: float) -> bool:
        """Read what is new; type what is due. True when a power cut is due."""
        if self.console is None:
            return False
        try:
            with open(self.console, "rb") as fh:
                fh.seek(self.pos)
                data = fh.read()
        except OSError:
            data = b""
        self.pos += len(data)
        self.text += data.decode("utf-8", "replace")
        if self.halt_seen_at is None and any(m in self.text[-4096:] for m in HALT_MARKERS):
            self.halt_seen_at = now
        for i, ev in enumerate(self.pending):
            if i not in self.seen and ev.marker in self.text:
                self.seen[i] = now
        for i, at in list(self.seen.items()):
            ev = self.pending[i]
            if now - at < ev.delay_s:
                continue
            if ev.send is None:
                return True
            if self.sock is not None:
                self.sock.sendall(ev.send)
                log(f"typed {ev.send!r} on the console {ev.delay_s:.0f}s after {ev.marker!r}")
            self.pending[i] = ConsoleEvent("\0done\0")
            del self.seen[i]
        return False


class _Qmp:
    """The harness's QMP client on a unix socket (QEMU's ``-qmp unix:…,server=on,wait=off``): plays the
    QmpEvents when due, one command at a time, each reply awaited for at most QMP_REPLY_S seconds."""

    def __init__(self, path: Path, proc: subprocess.Popen[bytes], events: Sequence[QmpEvent], t0: float):
        self.events, self.t0 = list(events), t0
        self.marked: dict[int, float] = {}
        self.done: set[int] = set()
        self.log: list[dict[str, object]] = []
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(400):
            if proc.poll() is not None:
                raise HarnessError("QEMU exited before its QMP socket opened")
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                time.sleep(0.025)
        else:
            raise HarnessError(f"QEMU did not open its QMP socket {path}")
        self.sock.settimeout(QMP_REPLY_S)
        self._read_message()                          # the greeting
        self._command("qmp_capabilities", {})

    def _read_message(self) -> dict[str, object]:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise HarnessError("QEMU closed its QMP socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg: dict[str, object] = json.loads(line)
        return msg

    def _command(self, execute: str, arguments: dict[str, object]) -> dict[str, object]:
        self.sock.sendall(json.dumps({"execute": execute, "arguments": arguments}).encode() + b"\n")
        while True:
            msg = self._read_message()
            if "event" in msg:
                self.log.append({"at_s": round(time.monotonic() - self.t0, 2), **msg})
                continue
            return msg

    def poll(self, now: float, console_text: str) -> None:
        for i, ev in enumerate(self.events):
            if i in self.done:
                continue
            if i not in self.marked and (not ev.marker or ev.marker in console_text):
                self.marked[i] = now
            if i in self.marked and now - self.marked[i] >= ev.delay_s:
                self.done.add(i)
                try:
                    reply = self._command(ev.execute, dict(ev.arguments))
                except (OSError, ValueError, HarnessError) as e:
                    reply = {"error": {"class": "HarnessError", "desc": str(e)}}
                at = round(now - self.t0, 2)
                self.log.append({"at_s": at, "execute": ev.execute, "arguments": dict(ev.arguments), "reply": reply})
                log(f"QMP at {at:.1f}s: {ev.execute} {ev.arguments} -> {reply}")

    def close(self) -> None:
        self.sock.close()


QMP_REPLY_S = 5.0


def _run_qemu(cmd: list[str], timeout_s: float, console: Path | None = None,
              events: Sequence[ConsoleEvent] = (), console_socket: Path | None = None, *,
              qmp_socket: Path | None = None, qmp_events: Sequence[QmpEvent] = (),
              qmp_log: list[dict[str, object]] | None = None,
              ) -> tuple[int | None, bool, bool, bool, str, float]:
    """Run QEMU; kill it at the timeout, once the guest halted, or at a power-cut event.

    Returns (returncode or None if killed, timed_out, halted, power_cut, output, seconds).
    """
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    chunks: list[bytes] = []

    assert proc.stdout is not None
    fd = proc.stdout.fileno()

    def reader() -> None:
        for block in iter(lambda: os.read(fd, 65536), b""):
            chunks.append(block)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    sock = _connect(console_socket, proc) if console_socket is not None else None
    watch = _ConsoleWatch(console, events, sock)
    qmp = _Qmp(qmp_socket, proc, qmp_events, t0) if qmp_socket is not None else None
    timed_out = halted = power_cut = False
    while True:
        try:
            proc.wait(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now - t0 >= timeout_s:
            timed_out = True
            break
        if watch.poll(now):
            power_cut = True
            break
        if qmp is not None:
            qmp.poll(now, watch.text)
        if watch.halt_seen_at is not None and now - watch.halt_seen_at >= HALT_GRACE_S:
            halted = True
            break
    if proc.poll() is None:
        proc.kill()                       # our own QEMU, by its pid
        proc.wait()
        rc = None
    else:
        rc = proc.returncode
        timed_out = halted = power_cut = False
    if sock is not None:
        sock.close()
    if qmp is not None:
        qmp.close()
        if qmp_log is not None:
            qmp_log.extend(qmp.log)
    t.join(timeout=5)
    proc.stdout.close()
    seconds = time.monotonic() - t0
    return rc, timed_out, halted, power_cut, b"".join(chunks).decode("utf-8", "replace"), seconds


@serialized
def kvm_usable(kernel: Kernel, cache: Path | None = None, *, refresh: bool = False) -> bool:
    """Whether KVM boots guests here (cached probe result)."""
    forced = os.environ.get("PYLIVE_QEMU_ACCEL", "").strip().lower()
    if forced in ("kvm", "tcg"):
        return forced == "kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    if cache is None:
        from . import CACHE_DIR
        cache = CACHE_DIR
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    probe_file = cache / "kvm-probe.json"
    key = [os.uname().release, _qemu_version(), kernel.version]
    if not refresh:
        try:
            d = json.loads(probe_file.read_text())
            if d.get("key") == key:
                return bool(d["kvm"])
        except (OSError, ValueError, KeyError):
            pass
    console = cache / "kvm-probe.console.log"
    console.unlink(missing_ok=True)
    cmd = [QEMU, "-enable-kvm", "-cpu", "host", "-M", "q35", "-m", "256", "-nodefaults",
           "-display", "none", "-no-reboot", "-kernel", str(kernel.vmlinuz),
           "-append", "console=ttyS0,115200 panic=1",
           "-chardev", f"file,id=con0,path={_chardev_path(console)}", "-serial", "chardev:con0"]
    log(f"probing KVM ({KVM_PROBE_TIMEOUT_S:.0f}s limit): {quote_cmd(cmd)}")
    rc, timed_out, _halted, _cut, out, seconds = _run_qemu(cmd, KVM_PROBE_TIMEOUT_S)
    text = console.read_text(errors="replace") if console.exists() else ""
    ok = (not timed_out) and rc == 0 and "Linux version" in text
    detail = ("ok" if ok else
              f"timed_out={timed_out} rc={rc} console_bytes={len(text)} qemu_out={out.strip()[:300]!r}")
    log(f"KVM probe: {'usable' if ok else 'NOT usable, using TCG'} ({seconds:.1f}s; {detail})")
    probe_file.write_text(json.dumps({"key": key, "kvm": ok, "seconds": round(seconds, 2),
                                      "detail": detail}, indent=2) + "\n")
    return ok


def build_qemu_cmd(kernel: Kernel, initrd: Path, cmdline: str, *, cdrom: Path | None,
                   disks: Sequence[DiskSpec], memory_mb: int, console: Path, report: Path,
                   accel: str, smp: int = 1, cdrom_bus: str = "scsi", cdrom_read_mib_s: int | None = None,
                   extra_qemu_args: Sequence[str] = (), console_socket: Path | None = None,
                   qmp_socket: Path | None = None) -> list[str]:
    cmd = [QEMU, "-M", "q35", "-m", str(memory_mb), "-smp", str(smp),
           "-nodefaults", "-display", "none", "-vga", "none", "-no-reboot"]
    if accel == "kvm":
        cmd += ["-enable-kvm", "-cpu", "host"]
    else:
        cmd += ["-accel", "tcg", "-cpu", "max"]
    con0 = (f"socket,id=con0,path={_chardev_path(console_socket)},server=on,wait=off,"
            f"logfile={_chardev_path(console)}" if console_socket else f"file,id=con0,path={_chardev_path(console)}")
    cmd += ["-kernel", str(kernel.vmlinuz), "-initrd", str(initrd), "-append", cmdline,
            "-chardev", con0, "-serial", "chardev:con0",
            "-chardev", f"file,id=rep0,path={_chardev_path(report)}", "-serial", "chardev:rep0",
            "-device", "virtio-rng-pci"]
    need_scsi = bool(disks) or (cdrom is not None and cdrom_bus == "scsi")
    if need_scsi:
        cmd += ["-device", "virtio-scsi-pci,id=scsi0"]
    if cdrom is not None:
        # a throttled CD reads at a real medium's pace (QEMU's block throttling, bytes/s)
        throttle = f",throttling.bps-read={cdrom_read_mib_s << 20}" if cdrom_read_mib_s else ""
        cmd += ["-drive", f"if=none,id=cd0,media=cdrom,readonly=on,format=raw{throttle},"
                          f"file={_chardev_path(Path(cdrom).resolve())}"]
        if cdrom_bus == "scsi":
            cmd += ["-device", "scsi-cd,drive=cd0,bus=scsi0.0,id=cd0dev"]  # id: QMP device_del
        elif cdrom_bus == "ahci":          # q35 has a built-in AHCI controller (ide.N)
            cmd += ["-device", "ide-cd,drive=cd0,bus=ide.0,id=cd0dev"]
        else:
            raise ValueError(f"cdrom_bus must be 'scsi' or 'ahci', not {cdrom_bus!r}")
    for i, spec in enumerate(disks):
        if isinstance(spec, tuple):
            path, serial = Path(spec[0]), spec[1]
        else:
            path = Path(spec)
            serial = path.stem
        cmd += ["-drive", f"if=none,id=disk{i},format=raw,cache=unsafe,"
                          f"file={_chardev_path(path.resolve())}",
                "-device", f"scsi-hd,drive=disk{i},bus=scsi0.0,serial={serial},id=disk{i}dev"]
    if qmp_socket is not None:
        cmd += ["-qmp", f"unix:{_chardev_path(qmp_socket)},server=on,wait=off"]
    cmd += [str(a) for a in extra_qemu_args]
    return cmd


def boot(kernel: Kernel, initrd: Path, cmdline: str, *, cdrom: Path | None = None,
         disks: Sequence[DiskSpec] = (), memory_mb: int = 1536, timeout_s: float = 120,
         workdir: Path, smp: int = 1, cdrom_bus: str = "scsi", cdrom_read_mib_s: int | None = None,
         accel: str | None = None, base_cmdline: str = BASE_CMDLINE,
         extra_qemu_args: Sequence[str] = (), events: Sequence[ConsoleEvent] = (),
         qmp_events: Sequence[QmpEvent] = ()) -> BootResult:
    """Boot ``kernel``+``initrd`` with ``cmdline`` and return what came back.

    ``base_cmdline`` (console=ttyS0,115200 panic=1 oops=panic) is prepended to
    ``cmdline``. The CD-ROM sits on virtio-scsi (``scsi-cd``, /dev/sr0 in the
    guest) unless ``cdrom_bus='ahci'``; ``cdrom_read_mib_s`` holds its reads to that rate. Disks are ``scsi-hd`` with
    ``serial=<name>`` (default: the file's stem), so in the guest they appear as
    /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_<name>. QEMU is killed after
    ``timeout_s`` seconds (``timed_out=True``, ``returncode=None``), or 2 s
    after the guest kernel printed "reboot: System halted" (``halted=True``,
    ``returncode=None``), since QEMU does not exit on a halt. ``events`` type on
    the console or cut the power when the console shows their marker; ``qmp_events`` send QMP
    commands to QEMU (their replies in ``BootResult.qmp_log``).
    """
    if not which(QEMU):
        raise HarnessError(f"{QEMU} not found")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    console = workdir / "console.log"
    report = workdir / "report.txt"
    for p in (console, report):
        p.unlink(missing_ok=True)
    if accel is None:
        accel = "kvm" if kvm_usable(kernel) else "tcg"
    full_cmdline = " ".join(x for x in (base_cmdline.strip(), cmdline.strip()) if x)
    # typing on the console needs a socket (the path must be short: sun_path is 108 bytes)
    sock_dir = (Path(tempfile.mkdtemp(prefix="pylive-con-")) if any(e.send for e in events) or qmp_events
                else None)
    sock = sock_dir / "con.sock" if sock_dir and any(e.send for e in events) else None
    qmp_sock = sock_dir / "qmp.sock" if sock_dir and qmp_events else None
    cmd = build_qemu_cmd(kernel, Path(initrd).resolve(), full_cmdline, cdrom=cdrom,
                         disks=disks, memory_mb=memory_mb, console=console, report=report,
                         accel=accel, smp=smp, cdrom_bus=cdrom_bus, cdrom_read_mib_s=cdrom_read_mib_s,
                         extra_qemu_args=extra_qemu_args, console_socket=sock, qmp_socket=qmp_sock)
    log(f"booting ({accel}, timeout {timeout_s:.0f}s): {quote_cmd(cmd)}")
    # surrogateescape: a test's -append may carry bytes that are not UTF-8, as a boot loader can
    (workdir / "qemu-cmd.sh").write_text("#!/bin/sh\n" + quote_cmd(cmd) + "\n", errors="surrogateescape")
    qmp_log: list[dict[str, object]] = []
    try:
        rc, timed_out, halted, power_cut, out, seconds = _run_qemu(cmd, timeout_s, console, events, sock,
                                                                   qmp_socket=qmp_sock, qmp_events=qmp_events,
                                                                   qmp_log=qmp_log)
    finally:
        if sock_dir:
            shutil.rmtree(sock_dir, ignore_errors=True)
    console_text = console.read_text(errors="replace") if console.exists() else ""
    report_text = report.read_text(errors="replace") if report.exists() else ""
    res = BootResult(report=parse_report(report_text), console=console_text,
                     returncode=rc, seconds=seconds, timed_out=timed_out, halted=halted, power_cut=power_cut,
                     cmd=cmd,
                     accel=accel, stderr=out, workdir=workdir, qmp_log=qmp_log)
    log(f"boot finished: rc={rc} timed_out={timed_out} halted={halted} {seconds:.1f}s "
        f"report sections={len(res.report)} (workdir {workdir})")
    return res


def main(argv: list[str] | None = None) -> int:
    from . import BUILD_DIR, CACHE_DIR
    ap = argparse.ArgumentParser(prog="python3 -m qemu.run_qemu",
                                 description="boot an initrd (+ISO) and print the report")
    ap.add_argument("--initrd", type=Path, required=True)
    ap.add_argument("--iso", type=Path)
    ap.add_argument("--disk", type=Path, action="append", default=[])
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--memory", type=int, default=1536)
    ap.add_argument("--cdrom-bus", choices=("scsi", "ahci"), default="scsi")
    ap.add_argument("--workdir", type=Path, default=BUILD_DIR / "qemu-run")
    ap.add_argument("--cache", type=Path, default=CACHE_DIR)
    ap.add_argument("--tail", type=int, default=40, help="console lines to print")
    ap.add_argument("--sections", default="",
                    help="comma-separated report sections to print (default: all but dmesg)")
    args = ap.parse_args(argv)
    k = ensure_kernel(args.cache)
    r = boot(k, args.initrd, args.cmdline, cdrom=args.iso, disks=args.disk,
             memory_mb=args.memory, timeout_s=args.timeout, workdir=args.workdir,
             cdrom_bus=args.cdrom_bus)
    wanted = [s for s in args.sections.split(",") if s] or [s for s in r.report if s != "dmesg"]
    for name in wanted:
        if name in r.report:
            print(f"@@ {name}\n{r.report[name]}")
    print(f"--- console tail ({args.tail} lines, full log: {args.workdir / 'console.log'}) ---")
    print(r.console_tail(args.tail))
    print(f"--- rc={r.returncode} timed_out={r.timed_out} halted={r.halted} seconds={r.seconds:.1f} "
          f"accel={r.accel} report={'complete' if r.report_complete else 'missing/partial'}")
    return 0 if r.report_complete else 1


if __name__ == "__main__":
    sys.exit(main())
