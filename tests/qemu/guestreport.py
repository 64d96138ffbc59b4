"""Reading what a pylive boot left: the guest's report sections and pylive's kernel-log lines.
Shared by the QEMU tests."""

from __future__ import annotations

from qemu import parse_kv_lines


def pylive_lines(console: str, text: str) -> list[str]:
    """pylive's kernel-log lines (timestamp stripped) that contain text."""
    return [ln.split("] ", 1)[1] for ln in console.splitlines() if "] pylive: " in ln and text in ln]


def mounts(report: dict[str, str]) -> dict[str, list[str]]:
    """Mount point → the fields of its /proc/mounts line."""
    return {ln.split()[1]: ln.split() for ln in report["mounts"].splitlines()}


def loops(report: dict[str, str]) -> dict[str, dict[str, str]]:
    """Backing file → the loop device's fields (name, size, ro, backing_file)."""
    return {d["backing_file"]: d for d in parse_kv_lines(report["loops"])}


def root_ok(report: dict[str, str]) -> None:
    """The token the guest wrote to its root was read back."""
    assert report["root-write"].splitlines()[2] == "match=yes", report["root-write"]


def written(report: dict[str, str]) -> tuple[str, str]:
    """(what the previous boot left on the root, what this boot wrote)."""
    token = report["root-write"].splitlines()[0].removeprefix("token=")
    return report.get("previous-write", "").strip(), token


def pylive_status(report: dict[str, str]) -> dict[str, object]:
    """`/run/pylive/pylive status --json` as the guest ran it after the boot (qemu/guest/init.sh)."""
    import json

    text = report["pylive-status"]
    doc: dict[str, object] = json.loads(text[text.index("{") : text.rindex("}") + 1])
    return doc


def status_limits(doc: dict[str, object]) -> dict[str, int]:
    """What each limit of a status reading is: its name → limit_bytes."""
    return {str(x["what"]): int(x["limit_bytes"]) for x in doc["limits"]}  # type: ignore[attr-defined]
