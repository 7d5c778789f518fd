"""Claiming an idempotency key, replaying its response, and recording it.

A record belongs to one API key: the claim is a row insert under a unique (api key, Idempotency-Key)
constraint, committed before the request runs, so of two concurrent requests with one key exactly one inserts
and executes and the other sees the row. Another API key never sees the row: its request is its own. The
stored body is encrypted with the server's key (kit.crypto), since a response may carry a secret shown only
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from imail.auth.service import Caller
from imail.db import Database
from imail.errors import Conflict
from imail.idempotency.repository import IdempotencyMaintenance, IdempotencyRepository
from imail.kit import crypto
from imail.kit.clock import utcnow
from imail.models import IdempotencyRecord


@dataclass(frozen=True)
class Claimed:
    record_id: str
    caller: Caller


@dataclass(frozen=True)
class Replay:
    status: int
    headers: dict[str, str]
    body: bytes


def _box(database: Database) -> crypto.SecretBox:
    return crypto.secret_box(database.settings, crypto.IDEMPOTENT_RESPONSES)


async def claim(
    database: Database, caller: Caller, key: str, request_hash: str, ttl: timedelta
) -> Claimed | Replay:
    for _ in range(2):
        try:
            async with database.transaction() as session:
                repo = IdempotencyRepository(session, caller.tenant)
                record = repo.new(
                    api_key_id=caller.key_id, key=key, request_hash=request_hash, created_at=utcnow()
                )
                await repo.add(record)
                return Claimed(record.id, caller)
        except IntegrityError:
            pass
        async with database.transaction() as session:
            existing = await IdempotencyRepository(session, caller.tenant).by_key(caller.key_id, key)
            if existing is None:
                continue
            if existing.created_at < utcnow() - ttl:
                await IdempotencyMaintenance(session).delete_id(existing.id)
                continue
            return _replay_or_conflict(database, existing, request_hash)
    raise Conflict("Idempotency-Key is being claimed by another request; retry shortly", "Idempotency-Key")


def _replay_or_conflict(database: Database, existing: IdempotencyRecord, request_hash: str) -> Replay:
    if existing.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request; use a new key for a new request",
            "Idempotency-Key",
        )
    if existing.response_status is None:
        raise Conflict(
            "A request with this Idempotency-Key is still in progress (or was interrupted); "
            "retry later or use a new key",
            "Idempotency-Key",
        )
    sealed = existing.response_body_encrypted
    try:
        body = _box(database).decrypt_bytes(sealed) if sealed else b""
    except crypto.InvalidToken:
        # Written under a server key that has since been retired and dropped: nothing can be replayed, and
        # running the request again could do it twice.
        raise Conflict(
            "The response kept for this Idempotency-Key can no longer be read; use a new key",
            "Idempotency-Key",
        ) from None
    return Replay(existing.response_status, dict(existing.response_headers or {}), body)


async def complete(
    database: Database, claimed: Claimed, status: int, headers: dict[str, str], body: bytes
) -> None:
    async with database.transaction() as session:
        record = await IdempotencyRepository(session, claimed.caller.tenant).get(claimed.record_id)
        if record is not None:
            record.response_status = status
            record.response_headers = headers
            record.response_body_encrypted = _box(database).encrypt_bytes(body)
            record.completed_at = utcnow()


async def release(database: Database, claimed: Claimed) -> None:
    """Forget a claim whose request failed, so that a retry may execute."""
    async with database.transaction() as session:
        await IdempotencyMaintenance(session).delete_id(claimed.record_id)


async def purge_expired(database: Database, ttl: timedelta) -> int:
    async with database.transaction() as session:
        return await IdempotencyMaintenance(session).delete_created_before(utcnow() - ttl)


async def rotate_responses(database: Database, batch: int = 200) -> crypto.Rotation:
    """Re-encrypt every kept response under the current IMAIL_SECRET_KEY (`imail secrets rotate`)."""
    return await crypto.rotate_column(
        database, IdempotencyMaintenance, "response_body_encrypted", _box(database), batch
    )
