"""Process-wide limits a long-running server sets for itself at start."""

from __future__ import annotations

import resource
from asyncio import sslproto


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one and return it. Each IMAP connection a worker keeps
    (one per IDLE-ing inbox), each pooled SMTP and database connection is a file descriptor, and many systems
    start processes with a soft limit of 1024 under a far higher hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError):
            return soft
    return soft


TLS_READ_BUFFER = 32 * 1024


def shrink_tls_read_buffers(size: int = TLS_READ_BUFFER) -> None:
    """asyncio gives every TLS connection a read buffer of `SSLProtocol.max_size` (256 KiB), allocated and
    zeroed up front and so resident for the connection's whole life: a worker keeping an IDLE-ing connection
    per inbox would hold a quarter of a gigabyte per thousand inboxes in buffers that stay nearly empty. IMAP
    and SMTP answers come in far smaller pieces, and a larger one just takes more reads."""
    # uvloop has its own TLS transport and ignores this; the worker runs on the stdlib's loop.
    if getattr(sslproto.SSLProtocol, "max_size", 0) > size:
        sslproto.SSLProtocol.max_size = size
