"""Webhook secrets and signatures: imail's own `X-Imail-Signature` and the Standard Webhooks headers.

A secret is stored encrypted with the server's key (kit.crypto, WEBHOOK_SECRETS) and opened only to sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from imail.config import Settings
from imail.kit import crypto

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def seal_secret(settings: Settings, secret: str) -> str:
    return crypto.secret_box(settings, crypto.WEBHOOK_SECRETS).encrypt(secret)


def open_secret(settings: Settings, sealed: str) -> str:
    """The secret as shown to the user; raises crypto.InvalidToken when no configured server key opens it."""
    return crypto.secret_box(settings, crypto.WEBHOOK_SECRETS).decrypt(sealed)


def imail_signature(secret: str, body: bytes) -> str:
    """`X-Imail-Signature`: hex HMAC-SHA256 of the raw body, keyed with the secret as shown (`whsec_…`)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key: the base64-decoded part after `whsec_`."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secret: str, key: bytes, event_id: str, event_type: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header a delivery carries besides Content-Type (the same event id on every attempt)."""
    return {
        "X-Imail-Signature": imail_signature(secret, body),
        "X-Imail-Event-Id": event_id,
        "X-Imail-Event-Type": event_type,
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(key, event_id, timestamp, body),
    }
