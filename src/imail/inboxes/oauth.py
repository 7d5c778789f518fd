"""The OAuth authorization-code flow for Google and Microsoft inboxes, and access tokens for XOAUTH2.

`state` is a Fernet token (encrypted and authenticated with a key derived from IMAIL_SECRET_KEY, purpose
"oauth-state") holding the inbox id, its tenant and a one-time nonce stored on the inbox: the callback is
unauthenticated, and the state is what binds it to one inbox. It expires after IMAIL_OAUTH_STATE_TTL.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from imail.config import Settings
from imail.inboxes.providers import OAuthProvider
from imail.kit import crypto
from imail.kit.tenancy import Tenant

CALLBACK_PATH = "/oauth/callback"


class OAuthError(Exception):
    """The provider refused (its own words in `detail`), or could not be reached."""

    def __init__(self, detail: str, *, invalid_grant: bool = False):
        self.detail = detail
        self.invalid_grant = invalid_grant  # the refresh token is dead: the user must consent again
        super().__init__(detail)


@dataclass(frozen=True)
class StateClaims:
    inbox_id: str
    tenant: Tenant
    nonce: str


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_in: int


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def redirect_uri(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + CALLBACK_PATH


def make_state(settings: Settings, inbox_id: str, tenant: Tenant, nonce: str) -> str:
    claims = {"i": inbox_id, "w": tenant.workspace_id, "l": tenant.livemode, "n": nonce}
    return crypto.secret_box(settings, crypto.OAUTH_STATE).encrypt(json.dumps(claims, separators=(",", ":")))


def read_state(settings: Settings, state: str) -> StateClaims | None:
    """The claims of a state this server issued and that has not expired; None otherwise."""
    try:
        raw = crypto.secret_box(settings, crypto.OAUTH_STATE).decrypt(state, ttl=settings.oauth_state_ttl)
        claims = json.loads(raw)
        return StateClaims(claims["i"], Tenant(claims["w"], bool(claims["l"])), claims["n"])
    except (crypto.InvalidToken, ValueError, KeyError, TypeError, UnicodeError):
        return None


def setup_url(
    settings: Settings, provider: OAuthProvider, inbox_id: str, tenant: Tenant, nonce: str, email: str
) -> str:
    query = {
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri(settings),
        "response_type": "code",
        "scope": provider.scope,
        "state": make_state(settings, inbox_id, tenant, nonce),
        "access_type": "offline",  # Google: issue a refresh token
        "prompt": "consent",  # and issue it again on re-consent
        "login_hint": email,
    }
    separator = "&" if "?" in provider.authorize_url else "?"
    return provider.authorize_url + separator + urlencode(query)


async def _token_request(
    http: httpx.AsyncClient, provider: OAuthProvider, form: dict[str, str], timeout: float
) -> TokenSet:
    try:
        response = await http.post(
            provider.token_url,
            data={**form, "client_id": provider.client_id, "client_secret": provider.client_secret},
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise OAuthError(
            f"{provider.label}'s token endpoint could not be reached: {exc or type(exc).__name__}"
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error") if isinstance(body, dict) else None
        description = body.get("error_description") if isinstance(body, dict) else None
        words = ": ".join(str(w) for w in (error, description) if w) or f"HTTP {response.status_code}"
        raise OAuthError(
            f"{provider.label} refused the token request: {words}", invalid_grant=error == "invalid_grant"
        )
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_in=int(body.get("expires_in") or 3600),
    )


async def exchange_code(
    http: httpx.AsyncClient, provider: OAuthProvider, settings: Settings, code: str, timeout: float
) -> TokenSet:
    tokens = await _token_request(
        http,
        provider,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(settings)},
        timeout,
    )
    if not tokens.refresh_token:
        raise OAuthError(
            f"{provider.label} granted access without a refresh token; remove imail's access in the "
            "account's "
            "security settings and open the setup_url again"
        )
    return tokens


async def refresh(
    http: httpx.AsyncClient, provider: OAuthProvider, refresh_token: str, timeout: float
) -> TokenSet:
    return await _token_request(
        http, provider, {"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout
    )


class AccessTokenCache:
    """Access tokens per inbox, reused until a minute before they expire (one process; a miss just
    refreshes)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, inbox_id: str, refresh_token_ciphertext: str) -> str | None:
        entry = self._tokens.get((inbox_id, refresh_token_ciphertext))
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def put(self, inbox_id: str, refresh_token_ciphertext: str, access_token: str, expires_in: int) -> None:
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[(inbox_id, refresh_token_ciphertext)] = (
            access_token,
            self._clock() + max(expires_in - 60, 0),
        )

    def forget(self, inbox_id: str) -> None:
        for key in [k for k in self._tokens if k[0] == inbox_id]:
            del self._tokens[key]


ACCESS_TOKENS = AccessTokenCache()
