"""Kernel version order, as rpm orders versions (rpmvercmp): alphanumeric segments compared one by one,
numbers as numbers and above letters, `~` before anything (6.9~rc1 < 6.9), `^` after the end (6.9^1 >
6.9). Debian's kernel versions (6.1.0-13-amd64) order the same way under dpkg."""

from __future__ import annotations

_DIGITS = frozenset("0123456789")
_ALNUM = _DIGITS | frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _segment(s: str, i: int) -> tuple[str, int]:
    kind = _DIGITS if s[i] in _DIGITS else _ALNUM - _DIGITS
    j = i
    while j < len(s) and s[j] in kind:
        j += 1
    return s[i:j], j


def _marks(ta: str, tb: str) -> int | None:
    """Where `~` or `^` is one of the next characters: the order it decides, 0 to step past both, None
    when neither is one. `~` sorts before anything; `^` after the end of a version, before anything else."""
    for mark, end_first in (("~", False), ("^", True)):
        if mark in (ta, tb):
            if ta == tb:
                return 0
            if ta == mark:
                return 1 if end_first and tb == "" else -1
            return -1 if end_first and ta == "" else 1
    return None


def vercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, the same as or newer than `b`."""
    if a == b:
        return 0
    i = j = 0
    while True:
        while i < len(a) and a[i] not in _ALNUM and a[i] not in "~^":
            i += 1
        while j < len(b) and b[j] not in _ALNUM and b[j] not in "~^":
            j += 1
        ta, tb = a[i : i + 1], b[j : j + 1]
        marked = _marks(ta, tb)
        if marked is not None:
            if marked:
                return marked
            i, j = i + 1, j + 1
            continue
        if not ta or not tb:
            return 0 if ta == tb else (1 if ta else -1)
        numeric = ta in _DIGITS
        if (tb in _DIGITS) != numeric:
            return 1 if numeric else -1  # a number is newer than letters
        (sa, i), (sb, j) = _segment(a, i), _segment(b, j)
        if numeric:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
