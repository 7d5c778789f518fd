"""API key material: generation, hashing and the shape check, free of any storage."""

from __future__ import annotations

import hashlib
import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SECRET_LENGTH = 32  # 160 bits
PREFIXES = {True: "imk_live_", False: "imk_test_"}


def generate(livemode: bool) -> str:
    return PREFIXES[livemode] + "".join(secrets.choice(CROCKFORD) for _ in range(SECRET_LENGTH))


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def redact(token: str) -> str:
    return token[:9] + "…" + token[-4:]


def parse(token: str) -> bool | None:
    """The key's livemode if it is shaped like one of our keys, else None."""
    for livemode, prefix in PREFIXES.items():
        if token.startswith(prefix) and len(token) == len(prefix) + SECRET_LENGTH:
            return livemode
    return None
