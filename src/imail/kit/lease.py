"""The one way a worker holds rows it claimed: a lease, `until` a time, by a `holder` (the worker's instance
id or a claim token). Every claim (sending attempts, webhook deliveries, IMAP readers) is built with
`Lease.starting` and its rows are tested with `free` / `ran_out` / `held_by`, so "is this claim still mine?"
reads the same everywhere.

A lease only bounds how long a worker that looks alive may keep rows; a dead one is noticed sooner where it
matters (sending: by heartbeat, `IMAIL_WORKER_DEAD_SECONDS`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_


@dataclass(frozen=True)
class Lease:
    holder: str
    until: datetime

    @classmethod
    def starting(cls, holder: str, now: datetime, seconds: float) -> Lease:
        return cls(holder, now + timedelta(seconds=seconds))


def ran_out(until: Any, now: datetime) -> Any:
    """A lease column past its end (a held row whose holder did not finish in time)."""
    return until < now


def free(until: Any, now: datetime) -> Any:
    """No lease, or one that ran out: the row may be claimed."""
    return or_(until.is_(None), ran_out(until, now))


def held_by(until: Any, holder: Any, lease: Lease) -> Any:
    """The row is still under exactly this lease (not taken over and claimed again meanwhile)."""
    return and_(holder == lease.holder, until == lease.until)
