"""Claiming an idempotency key, replaying its response, and recording it.

The claim is a row insert under a unique (workspace, ledger, key) constraint, committed before the request
runs: of two concurrent requests with one key, exactly one inserts and executes; the other sees the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from imail.db import Database
from imail.errors import Conflict
from imail.idempotency.repository import IdempotencyMaintenance, IdempotencyRepository
from imail.kit.clock import utcnow
from imail.kit.tenancy import Tenant
from imail.models import IdempotencyRecord


@dataclass(frozen=True)
class Claimed:
    record_id: str


@dataclass(frozen=True)
class Replay:
    status: int
    headers: dict[str, str]
    body: bytes


async def claim(database: Database, tenant: Tenant, key: str, request_hash: str, ttl: timedelta) -> Claimed | Replay:
    for _ in range(2):
        try:
            async with database.transaction() as session:
                record = IdempotencyRepository(session, tenant).new(key=key, request_hash=request_hash, created_at=utcnow())
                await IdempotencyRepository(session, tenant).add(record)
                return Claimed(record.id)
        except IntegrityError:
            pass
        async with database.transaction() as session:
            existing = await IdempotencyRepository(session, tenant).by_key(key)
            if existing is None:
                continue
            if existing.created_at < utcnow() - ttl:
                await IdempotencyMaintenance(session).delete_id(existing.id)
                continue
            return _replay_or_conflict(existing, request_hash)
    raise Conflict("Idempotency-Key is being claimed by another request; retry shortly", "Idempotency-Key")


def _replay_or_conflict(existing: IdempotencyRecord, request_hash: str) -> Replay:
    if existing.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request; use a new key for a new request",
            "Idempotency-Key",
        )
    if existing.response_status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still in progress (or was interrupted); retry later or use a new key",
            "Idempotency-Key",
        )
    return Replay(existing.response_status, dict(existing.response_headers or {}), existing.response_body or b"")


async def complete(database: Database, tenant: Tenant, record_id: str, status: int, headers: dict[str, str], body: bytes) -> None:
    async with database.transaction() as session:
        record = await IdempotencyRepository(session, tenant).get(record_id)
        if record is not None:
            record.response_status = status
            record.response_headers = headers
            record.response_body = body
            record.completed_at = utcnow()


async def release(database: Database, record_id: str) -> None:
    """Forget a claim whose request failed on our side, so that a retry may execute."""
    async with database.transaction() as session:
        await IdempotencyMaintenance(session).delete_id(record_id)


async def purge_expired(database: Database, ttl: timedelta) -> int:
    async with database.transaction() as session:
        return await IdempotencyMaintenance(session).delete_created_before(utcnow() - ttl)
