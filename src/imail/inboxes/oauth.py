"""The OAuth authorization-code flow for Google and Microsoft inboxes, and access tokens for XOAUTH2.

`state` is a Fernet token (encrypted and authenticated with a key derived from IMAIL_SECRET_KEY, purpose
"oauth-state") holding the inbox id, its tenant and a one-time nonce stored on the inbox: the callback is
unauthenticated, and the state is what binds it to one inbox. It expires after IMAIL_OAUTH_STATE_TTL.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
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

    def __init__(self, detail: str, *, invalid_grant: bool = False, transient: bool = False):
        self.detail = detail
        self.invalid_grant = invalid_grant  # the refresh token is dead: the user must consent again
        # The endpoint failed, not the request (a 5xx or 429, no answer, a timeout): the same request may
        # work later. Any other refusal (invalid_client, unauthorized_client…) will not, until someone
        # changes something.
        self.transient = transient
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
            f"{provider.label}'s token endpoint could not be reached: {exc or type(exc).__name__}",
            transient=True,
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error") if isinstance(body, dict) else None
        description = body.get("error_description") if isinstance(body, dict) else None
        said = ": ".join(str(w) for w in (error, description) if w)
        if response.status_code >= 500 or response.status_code == 429:
            raise OAuthError(
                f"{provider.label}'s token endpoint failed: HTTP {response.status_code}"
                + (f" ({said})" if said else ""),
                transient=True,
            )
        words = said or f"HTTP {response.status_code}"
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
    refreshes). Also, per process: one token request at a time per refresh token (the sending, warmup and
    reading loops that all need the inbox at once share its answer), and the refresh tokens the provider
    declared dead (invalid_grant), so that a copy of the inbox read before it was disconnected does not ask
    again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._requests: dict[tuple[str, str], asyncio.Future[TokenSet]] = {}
        self._dead: set[tuple[str, str]] = set()

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

    def clear(self) -> None:
        self._tokens.clear()
        self._dead.clear()

    def is_dead(self, inbox_id: str, refresh_token_ciphertext: str) -> bool:
        return (inbox_id, refresh_token_ciphertext) in self._dead

    async def refresh_once(
        self, inbox_id: str, refresh_token_ciphertext: str, request: Callable[[], Awaitable[TokenSet]]
    ) -> TokenSet:
        """`request()`'s answer, shared with every caller that asks for the same refresh token meanwhile."""
        key = (inbox_id, refresh_token_ciphertext)
        running = self._requests.get(key)
        if running is None:
            running = self._requests[key] = asyncio.ensure_future(request())
            running.add_done_callback(lambda done: self._settled(key, done))
        # Shielded: a caller that is cancelled (its worker stopping) does not cancel the others' request.
        return await asyncio.shield(running)

    def _settled(self, key: tuple[str, str], done: asyncio.Future[TokenSet]) -> None:
        self._requests.pop(key, None)
        if done.cancelled():
            return
        error = done.exception()  # retrieved here too, so a request nobody awaits any more is not reported
        if isinstance(error, OAuthError) and error.invalid_grant:
            if len(self._dead) > 10_000:
                self._dead.clear()
            self._dead.add(key)


ACCESS_TOKENS = AccessTokenCache()
