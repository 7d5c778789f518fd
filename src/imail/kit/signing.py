"""Compact HMAC-signed tokens for links that leave the server (tracking, unsubscribe, OAuth state).

A token is `<payload>.<signature>`, both base64url; the signature covers a purpose string too, so a token
minted for one purpose (say, an open pixel) is refused for another (an unsubscribe).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_BYTES = 16


class BadSignature(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: str):
        self._key = hashlib.sha256(("imail-signing:" + secret).encode()).digest()

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.digest(self._key, purpose.encode() + b"\0" + payload, "sha256")[:SIGNATURE_BYTES]

    def sign(self, purpose: str, payload: str) -> str:
        raw = payload.encode()
        return f"{_b64(raw)}.{_b64(self._mac(purpose, raw))}"

    def unsign(self, purpose: str, token: str) -> str:
        try:
            encoded, signature = token.split(".", 1)
            raw = _unb64(encoded)
            given = _unb64(signature)
        except (ValueError, TypeError):
            raise BadSignature("malformed token") from None
        if not hmac.compare_digest(given, self._mac(purpose, raw)):
            raise BadSignature("bad signature")
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise BadSignature("malformed token") from None
