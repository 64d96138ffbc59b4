"""Where the watcher's warnings go: the journal or kernel log at warning priority, every logged-in
terminal (as wall(1) does), a desktop notification in each graphical session, and a state file
under /run for other tools. Each sink is best effort: one that fails never stops the others."""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator

from pylive.health.levels import Event
from pylive.health.status import DEFAULT_LEVELS, MIB, Reading, State, advice

STATE_FILE = "/run/pylive/overlay-state.json"
# struct utmp (glibc, 64-bit): type, pid, line[32], id[4], user[32], host[256], exit, session, tv, addr, unused
_UTMP = struct.Struct("=hxxi32s4s32s256shhiii16s20s")
USER_PROCESS = 7
GRAPHICAL = ("x11", "wayland", "mir")


def summary(event: Event, reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> str:
    """One line: how full, of what, and what to do."""
    h = reading.headline
    if event.state is State.OVERFLOW or event.state is State.FAILED:
        head = "the live overlay is full"
    elif event.state is State.INVALID:
        head = "the live overlay was invalidated"
    elif h is not None:
        head = (f"the live overlay is {h.percent:.0f}% full ({h.used / MIB:.0f} of {h.limit / MIB:.0f} MiB of "
                f"{h.what})")
    else:
        head = "the live overlay needs attention"
    return f"{head}: {advice(reading, levels)}"


def priority(event: Event) -> int:
    """syslog priority: crit (2) for a full or lost overlay, warning (4) for a level."""
    return 2 if event.state is not State.ACTIVE else 4


def to_log(text: str, prio: int) -> None:
    """Under systemd the unit's stderr is the journal (with the <N> priority prefix); otherwise /dev/kmsg."""
    if os.environ.get("JOURNAL_STREAM"):
        os.write(2, f"<{prio}>{text}\n".encode())
        return
    try:
        fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        os.write(2, f"{text}\n".encode())
        return
    try:
        os.write(fd, f"<{prio}>pylive-watch: {text}".encode()[:1000])
    finally:
        os.close(fd)


def logged_in_terminals(utmp: str = "/run/utmp") -> Iterator[str]:
    """The terminals of the user processes in utmp, as /dev paths (what wall(1) writes to)."""
    try:
        with open(utmp, "rb") as f:
            data = f.read()
    except OSError:
        return
    seen = set()
    for off in range(0, len(data) - _UTMP.size + 1, _UTMP.size):
        kind, _pid, line, *_ = _UTMP.unpack_from(data, off)
        name = line.split(b"\0", 1)[0].decode(errors="replace")
        if kind == USER_PROCESS and name and "/" not in name.replace("pts/", "", 1) and name not in seen:
            seen.add(name)
            yield f"/dev/{name}"


def wall_text(text: str, when: float | None = None) -> bytes:
    stamp = time.strftime("%H:%M", time.localtime(when))
    body = f"\r\n\aBroadcast message from pylive (live overlay watch) at {stamp}:\r\n\r\n{text}\r\n\r\n"
    return body.encode()


def to_terminals(text: str, utmp: str = "/run/utmp") -> list[str]:
    """wall(1): the message on every logged-in terminal; returns those written to."""
    done = []
    for tty in logged_in_terminals(utmp):
        try:
            fd = os.open(tty, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, wall_text(text))
            done.append(tty)
        except OSError:
            pass
        finally:
            os.close(fd)
    return done


def desktop_command(user: str, title: str, body: str, *, critical: bool) -> list[str]:
    """A notification on a user's session bus (org.freedesktop.Notifications.Notify) through busctl."""
    return ["busctl", "--user", f"--machine={user}@.host", "call", "org.freedesktop.Notifications",
            "/org/freedesktop/Notifications", "org.freedesktop.Notifications", "Notify", "susssasa{sv}i",
            "pylive", "0", "drive-harddisk", title, body, "0", "1", "urgency", "y", "2" if critical else "1", "-1"]


def graphical_users(sessions: list[dict[str, str]]) -> list[str]:
    """The users with an active graphical session, from `loginctl show-session` properties."""
    users = []
    for s in sessions:
        if s.get("Type") in GRAPHICAL and s.get("Active", "yes") == "yes" and s.get("Name") and \
                s["Name"] not in users:
            users.append(s["Name"])
    return users


def _sessions() -> list[dict[str, str]]:
    import shutil
    import subprocess

    if shutil.which("loginctl") is None:
        return []
    listing = subprocess.run(["loginctl", "list-sessions", "--no-legend"], capture_output=True, text=True,
                             check=False, timeout=5)
    out = []
    for line in listing.stdout.splitlines():
        if not line.split():
            continue
        show = subprocess.run(["loginctl", "show-session", line.split()[0], "-p", "Type", "-p", "Name", "-p",
                               "Active"], capture_output=True, text=True, check=False, timeout=5)
        out.append(dict(kv.split("=", 1) for kv in show.stdout.splitlines() if "=" in kv))
    return out


def to_desktops(title: str, body: str, *, critical: bool) -> list[str]:
    """Only when a graphical session runs: subprocess and the tools are loaded then, not before."""
    import shutil
    import subprocess

    if shutil.which("busctl") is None:
        return []
    done = []
    try:
        for user in graphical_users(_sessions()):
            r = subprocess.run(desktop_command(user, title, body, critical=critical), capture_output=True,
                               check=False, timeout=10)
            if r.returncode == 0:
                done.append(user)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return done


def write_state(doc: dict[str, object], path: str | None = None) -> None:
    """The last reading and the warnings given, replaced atomically (other tools read it)."""
    path = path or STATE_FILE
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def notify(event: Event, reading: Reading, levels: tuple[int, ...] = DEFAULT_LEVELS) -> str:
    """Tell everyone; returns the line that was sent."""
    text = summary(event, reading, levels)
    prio = priority(event)
    to_log(text, prio)
    to_terminals(text)
    title = "Live system: overlay full" if event.state is not State.ACTIVE else \
        f"Live system: overlay {reading.percent:.0f}% full"
    to_desktops(title, text, critical=prio <= 2 or (event.level or 0) >= 95)
    return text
