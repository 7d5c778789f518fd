"""Sending one delivery (the exact signed bytes, bounded in time) and deciding what its answer means."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog

from imail import __version__
from imail.config import Settings
from imail.kit.clock import rfc3339
from imail.webhooks.repository import DeliveryJob
from imail.webhooks.retry import next_attempt_at, parse_retry_after
from imail.webhooks.signing import signed_headers, standard_key
from imail.webhooks.urls import AddressGuard

log = structlog.get_logger("imail.webhooks")

USER_AGENT = f"imail-webhooks/{__version__}"
KEEP_RESPONSE_CHARS = 1000
READ_AT_MOST = 64 * 1024
GONE_REASON = (
    "Disabled at once: the endpoint answered 410 Gone. Re-enable it with POST /v1/webhooks/{id}/enable."
)


def render_body(job: DeliveryJob) -> bytes:
    """The contract's delivery body, as bytes: exactly what is signed and sent."""
    return orjson.dumps(
        {
            "id": job.event_id,
            "type": job.event_type,
            "created_at": rfc3339(job.event_created_at),
            "livemode": job.livemode,
            "data": job.data,
        }
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened on the wire: a status code, or an error instead."""

    status_code: int | None
    error: str | None
    response: str | None
    retry_after: str | None
    duration_ms: int


async def _read_some(response: httpx.Response) -> bytes:
    """Read the answer (so the connection can be reused) but never more than READ_AT_MOST of it."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        if len(kept) < READ_AT_MOST:
            kept += chunk
        else:
            break
    return bytes(kept)


async def send(
    http: httpx.AsyncClient, job: DeliveryJob, secret: str, timeout: float, guard: AddressGuard | None = None
) -> Attempt:
    """POST the event once, signed with `secret` (the endpoint's, opened): 10 s in all (connect, send, answer)
    by default; redirects are not followed."""
    started = time.perf_counter()
    if guard is not None:
        blocked = await guard.blocked(job.url)
        if blocked is not None:
            return Attempt(None, blocked, None, None, 0)
    body = render_body(job)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(secret, standard_key(secret), job.event_id, job.event_type, int(time.time()), body),
    }
    status: int | None = None
    error: str | None = None
    text: str | None = None
    retry_after: str | None = None
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(
                "POST", job.url, content=body, headers=headers, timeout=timeout, follow_redirects=False
            ) as response:
                raw = await _read_some(response)
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                if not 200 <= status < 300:
                    text = (
                        raw[: KEEP_RESPONSE_CHARS * 4].decode("utf-8", "replace")[:KEEP_RESPONSE_CHARS]
                        or None
                    )
    except TimeoutError:
        error = f"timed out after {timeout:g} s"
    except httpx.TimeoutException:
        error = f"timed out after {timeout:g} s"
    except httpx.ConnectError as exc:
        error = f"could not connect: {exc}" if str(exc) else "could not connect"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - one bad endpoint must not sink the batch it was claimed with
        log.warning("webhook send failed unexpectedly", url=job.url, error=repr(exc))
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if status is not None and error is not None:
        status = None  # the answer started but did not finish in time: a failure like any other
    return Attempt(
        status, error[:300] if error else None, text, retry_after, int((time.perf_counter() - started) * 1000)
    )


@dataclass
class DeliveryOutcome:
    """An attempt's consequences: the row update, and what it says about the endpoint."""

    row: dict[str, Any]
    succeeded: bool
    gone: bool


def judge(
    job: DeliveryJob,
    attempt: Attempt,
    attempted_at: datetime,
    settings: Settings,
    token: str,
    rand: Callable[[], float] = random.random,
) -> DeliveryOutcome:
    """Turn an attempt into the delivery's next state."""
    row: dict[str, Any] = {
        "b_id": job.delivery_id,
        "b_token": token,
        "b_now": attempted_at,
        "b_at": attempted_at,
        "b_inc": 1,
        "b_next": None,
        "b_code": None,
        "b_error": None,
        "b_response": None,
        "b_ms": None,
    }
    row.update(
        b_code=attempt.status_code,
        b_error=attempt.error,
        b_response=attempt.response,
        b_ms=attempt.duration_ms,
    )
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        row.update(b_status="succeeded")
        return DeliveryOutcome(row, True, False)
    if code == 410:
        row.update(b_status="failed", b_error="410 Gone: the endpoint was disabled")
        return DeliveryOutcome(row, False, True)
    if code is not None:
        row["b_error"] = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
    deadline = job.event_created_at + timedelta(seconds=settings.webhooks_give_up_after)
    next_at = next_attempt_at(
        job.attempts + 1,
        attempted_at,
        deadline,
        settings.webhooks_retry_schedule,
        settings.webhooks_retry_jitter,
        parse_retry_after(attempt.retry_after, attempted_at),
        rand,
    )
    row.update(b_status="pending" if next_at is not None else "failed", b_next=next_at)
    return DeliveryOutcome(row, False, False)
