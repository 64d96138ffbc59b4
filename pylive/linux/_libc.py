"""libc through ctypes, and OSErrors named after the syscall that failed."""

from __future__ import annotations

import ctypes
import errno
import os

TYPE_CHECKING = False  # typing stays unimported at run time (start-up)
if TYPE_CHECKING:
    from typing import NoReturn

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def oserror(syscall: str, filename: str | None = None) -> NoReturn:
    code = ctypes.get_errno()
    raise OSError(code, f"{syscall}: {os.strerror(code)}" if code else f"{syscall} failed", filename)


def is_errno(e: OSError, *codes: int) -> bool:
    return e.errno in codes


__all__ = ["libc", "oserror", "is_errno", "errno"]
