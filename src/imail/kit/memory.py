"""Giving freed heap memory back to the operating system, for long-running processes (glibc; elsewhere
no-ops).

What a worker frees (a batch's rows and messages, TLS buffers of closed SMTP and IMAP sessions) goes back to
malloc, not to the system; with every executor thread (DNS lookups) on its own arena the freed pages stay
resident and the RSS creeps for the first half hour while the heap of live objects stays flat (tracemalloc in
the soak)."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

M_ARENA_MAX = -8  # glibc's mallopt parameter number


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(count: int = 2) -> bool:
    """At process start: at most `count` malloc arenas, so threads share (and reuse) freed memory."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, count))


def release_free_memory() -> bool:
    """Return free heap pages to the system (`malloc_trim`): whether anything was released."""
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))
