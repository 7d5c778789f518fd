"""SMTP connections kept open per inbox and reused across sends, with every answer sorted into an Outcome."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib
import structlog

from imail.mail import smtp
from imail.mail.endpoint import Endpoint, MailConnectionError, MailRejected
from imail.mail.refusals import classify_refusal
from imail.sending.service import AttemptTaken, Outcome, OutcomeKind

log = structlog.get_logger("imail.sending.smtp")


@dataclass
class _Connection:
    endpoint: Endpoint
    client: aiosmtplib.SMTP
    last_used: float


class SmtpPool:
    """One open connection per inbox; a send waits for its inbox's connection (sends per inbox are
    sequential)."""

    def __init__(
        self,
        timeout: float,
        ca_file: str | None = None,
        idle_seconds: float = 60.0,
        allow_private: bool = False,
    ):
        self.timeout = timeout
        self.ca_file = ca_file
        self.allow_private = allow_private  # IMAIL_MAIL_ALLOW_PRIVATE: the address policy holds at every dial
        self.idle_seconds = idle_seconds
        self._connections: dict[str, _Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, inbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(inbox_id, asyncio.Lock())

    async def _connection(self, inbox_id: str, endpoint: Endpoint) -> aiosmtplib.SMTP:
        current = self._connections.get(inbox_id)
        if current is not None and current.endpoint == endpoint and current.client.is_connected:
            return current.client
        if current is not None:
            await self._close(inbox_id)
        client = await smtp.open_session(
            endpoint, timeout=self.timeout, ca_file=self.ca_file, allow_private=self.allow_private
        )
        self._connections[inbox_id] = _Connection(endpoint, client, time.monotonic())
        return client

    def _is_open(self, inbox_id: str, endpoint: Endpoint) -> bool:
        current = self._connections.get(inbox_id)
        return current is not None and current.endpoint == endpoint and current.client.is_connected

    async def send(
        self,
        inbox_id: str,
        endpoint: Endpoint,
        message_id: str,
        sender: str,
        recipient: str,
        data: bytes,
        before_data: Callable[[], Awaitable[None]] | None = None,
    ) -> Outcome:
        """Hand one message over (the caller holds `lock(inbox_id)`). A pooled connection the server dropped
        while idle fails before any data goes out, so that case is retried once on a fresh connection."""
        for attempt in (1, 2):
            reused = self._is_open(inbox_id, endpoint)
            try:
                client = await self._connection(inbox_id, endpoint)
                reply = await smtp.deliver(
                    client,
                    endpoint,
                    sender,
                    [recipient],
                    data,
                    timeout=self.timeout,
                    before_data=before_data,
                    envid=message_id,  # delivery reports (DSN) lead back to the email
                )
            except MailRejected as exc:
                return _rejected(message_id, exc)
            except AttemptTaken:
                await self._close(
                    inbox_id
                )  # the envelope was given: drop the session rather than hand the data
                return Outcome(
                    message_id, OutcomeKind.taken, detail="its lease ran out and it was requeued before DATA"
                )
            except smtp.DeliveryInDoubt as exc:
                await self._close(inbox_id, polite=False)
                return Outcome(message_id, OutcomeKind.in_doubt, detail=exc.detail)
            except MailConnectionError as exc:
                await self._close(inbox_id, polite=False)
                if reused and attempt == 1 and exc.stage != "auth":
                    continue
                return Outcome(message_id, OutcomeKind.retry, detail=exc.message, inbox_failure_side="smtp")
            except BaseException:
                # Anything else (the before-DATA mark's database failing, cancellation) leaves the session
                # mid-transaction: reused, it would answer the next MAIL FROM with 503 and fail that email.
                await self._close(inbox_id, polite=False)
                raise
            self._connections[inbox_id].last_used = time.monotonic()
            return Outcome(message_id, OutcomeKind.sent, code=250, detail=reply)
        raise AssertionError("unreachable")

    async def _close(self, inbox_id: str, polite: bool = True) -> None:
        """Drop the inbox's session; `polite=False` after a failure, when a QUIT could only wait on a server
        that has stopped answering."""
        connection = self._connections.pop(inbox_id, None)
        if connection is not None:
            if polite:
                await smtp.close_session(connection.client)
            else:
                connection.client.close()

    async def close_idle(self) -> None:
        cutoff = time.monotonic() - self.idle_seconds
        for inbox_id in [
            i for i, c in self._connections.items() if c.last_used < cutoff and not self.lock(i).locked()
        ]:
            await self._close(inbox_id)

    async def close(self) -> None:
        for inbox_id in list(self._connections):
            await self._close(inbox_id)


POLICY = re.compile(r"^\s*5\.7\.\d{1,3}\b")


def _rejected(message_id: str, exc: MailRejected) -> Outcome:
    code = exc.code or 0
    detail = f"{exc.code or ''} {exc.detail}".strip()
    if code >= 500 and POLICY.match(exc.detail or ""):
        # 5.7.x (RFC 3463: security or policy status) from the inbox's own server: its provider is refusing
        # us, whichever recipient it was; the inbox pauses (imail.inboxes.pausing) and nobody is suppressed.
        return Outcome(message_id, OutcomeKind.policy, code=code, detail=detail)
    refusal = classify_refusal(exc.code, exc.detail, bool(exc.recipients) and code >= 500)
    if refusal.kind == "throttled":
        return Outcome(message_id, OutcomeKind.throttled, code=code, detail=detail)
    if 400 <= code < 500:
        return Outcome(message_id, OutcomeKind.retry, code=code, detail=detail)
    if refusal.kind == "hard_bounce":
        return Outcome(message_id, OutcomeKind.bounced, code=code, detail=detail)
    if refusal.kind == "soft_bounce":
        return Outcome(
            message_id, OutcomeKind.soft_bounced, code=code, detail=detail, category=refusal.category
        )
    # 5xx for the sender or the data, or a policy refusal: not this recipient's fault, so no suppression.
    return Outcome(message_id, OutcomeKind.failed, code=code or None, detail=detail)
