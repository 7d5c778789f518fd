"""Process-wide limits a long-running server sets for itself at start."""

from __future__ import annotations

import resource


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one and return it. Each IMAP connection a worker keeps (one
    per IDLE-ing inbox), each pooled SMTP and database connection is a file descriptor, and many systems start
    processes with a soft limit of 1024 under a far higher hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError):
            return soft
    return soft
