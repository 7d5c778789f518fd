"""Encryption at rest for secrets we must be able to read back (inbox passwords, OAuth refresh tokens, webhook
signing secrets, and the responses kept for `Idempotency-Key` retries, which may hold a new key's secret).

Fernet (AES-128-CBC + HMAC-SHA256, authenticated, with a timestamp) keyed by HKDF-SHA256 from
`IMAIL_SECRET_KEY`, one derived key per purpose so a token made for one use never opens in another.
Rotation: put the new value in IMAIL_SECRET_KEY and the old one in IMAIL_SECRET_KEYS_OLD (comma-separated);
reads try every key (MultiFernet), writes use the new one, and `imail secrets rotate` re-encrypts old rows.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from imail.config import Settings

CREDENTIALS = "credentials"
OAUTH_STATE = "oauth-state"
WEBHOOK_SECRETS = "webhook-secrets"
IDEMPOTENT_RESPONSES = "idempotent-responses"

__all__ = [
    "CREDENTIALS",
    "IDEMPOTENT_RESPONSES",
    "OAUTH_STATE",
    "WEBHOOK_SECRETS",
    "InvalidToken",
    "Rotation",
    "SecretBox",
    "rotate_column",
    "secret_box",
]


@lru_cache(maxsize=64)
def derive_key(secret: str, purpose: str) -> bytes:
    """A Fernet key (urlsafe base64 of 32 bytes) for one purpose, derived from a configured secret."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"imail/kit/crypto", info=f"imail:{purpose}:v1".encode()
    )
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


class SecretBox:
    """Encrypts with the current key; decrypts with the current key or any retired one."""

    OPENED_KEPT = 4096

    def __init__(self, current: str, retired: list[str] | tuple[str, ...] = (), purpose: str = CREDENTIALS):
        keys = [current, *(k for k in retired if k and k != current)]
        self._primary = Fernet(derive_key(current, purpose))
        self._multi = MultiFernet([Fernet(derive_key(k, purpose)) for k in keys])
        # Tokens opened without a ttl, kept: the sending worker opens each inbox's two passwords for every
        # batch (a tenth of its SMTP time went to Fernet), and the plaintexts live in its pooled connections
        # anyway.
        self._opened: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return self._primary.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str, ttl: int | None = None) -> str:
        """The plaintext; raises InvalidToken when no key opens it (or it is older than `ttl` seconds)."""
        if ttl is not None:
            return self._multi.decrypt(token.encode("ascii"), ttl=ttl).decode()
        plaintext = self._opened.get(token)
        if plaintext is None:
            plaintext = self._multi.decrypt(token.encode("ascii")).decode()
            if len(self._opened) >= self.OPENED_KEPT:
                self._opened.clear()
            self._opened[token] = plaintext
        return plaintext

    def encrypt_bytes(self, plaintext: bytes) -> bytes:
        return self._primary.encrypt(plaintext)

    def decrypt_bytes(self, token: bytes) -> bytes:
        """Not remembered, unlike `decrypt`: for one-off reads of data too large or too short-lived to
        keep."""
        return self._multi.decrypt(token)

    def is_current(self, token: str | bytes) -> bool:
        """Whether the current key opens this token (False: it needs `rotate`)."""
        try:
            self._primary.decrypt(token.encode("ascii") if isinstance(token, str) else token)
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same plaintext, re-encrypted under the current key."""
        return self._multi.rotate(token.encode("ascii")).decode("ascii")

    def rotate_bytes(self, token: bytes) -> bytes:
        return self._multi.rotate(token)


@dataclass
class Rotation:
    """What `imail secrets rotate` did to one encrypted column."""

    rows: int = 0
    rotated: int = 0  # re-encrypted under the current key
    current: int = 0  # already under the current key
    unreadable: list[str] = field(default_factory=list)  # ids of rows no configured key opens


async def rotate_column(
    database: Any, repository: Callable[[Any], Any], column: str, box: SecretBox, batch: int = 200
) -> Rotation:
    """Re-encrypt one column of every row under the current key, one transaction per batch;
    `repository(session)` gives the table's `batch_after`."""
    report = Rotation()
    after: str | None = None
    while True:
        async with database.transaction() as session:
            rows = await repository(session).batch_after(after, batch)
            for row in rows:
                report.rows += 1
                token = getattr(row, column)
                if not token:
                    continue
                if box.is_current(token):
                    report.current += 1
                    continue
                try:
                    rotated = box.rotate(token) if isinstance(token, str) else box.rotate_bytes(token)
                except InvalidToken:
                    report.unreadable.append(row.id)
                    continue
                setattr(row, column, rotated)
                report.rotated += 1
            await session.flush()
        if len(rows) < batch:
            return report
        after = rows[-1].id


def retired_keys(settings: Settings) -> list[str]:
    return [k.strip() for k in (settings.secret_keys_old or "").split(",") if k.strip()]


def secret_box(settings: Settings, purpose: str = CREDENTIALS) -> SecretBox:
    return _secret_box(settings.resolved_secret_key(), tuple(retired_keys(settings)), purpose)


@lru_cache(maxsize=16)
def _secret_box(current: str, retired: tuple[str, ...], purpose: str) -> SecretBox:
    return SecretBox(current, retired, purpose)
