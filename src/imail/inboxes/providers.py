"""Google and Microsoft: OAuth endpoints, scopes and the XOAUTH2 mail servers, all from settings."""

from __future__ import annotations

from dataclasses import dataclass

from imail.config import Settings
from imail.mail.endpoint import parse_server

# Scopes that allow SMTP sending and IMAP reading with XOAUTH2 (and a refresh token).
SCOPES = {
    "google": "https://mail.google.com/",
    "microsoft": "offline_access https://outlook.office.com/SMTP.Send https://outlook.office.com/IMAP.AccessAsUser.All",
}
LABELS = {"google": "Google", "microsoft": "Microsoft"}


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    security: str

    @classmethod
    def parse(cls, spec: str) -> Server:
        return cls(*parse_server(spec))


@dataclass(frozen=True)
class OAuthProvider:
    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scope: str
    smtp: Server
    imap: Server

    @property
    def label(self) -> str:
        return LABELS[self.name]


def is_oauth(provider: str) -> bool:
    return provider in SCOPES


def oauth_provider(settings: Settings, name: str) -> OAuthProvider | None:
    """The provider's configuration, or None when this server has no client id/secret for it."""
    if name not in SCOPES:
        return None
    client_id = getattr(settings, f"{name}_client_id")
    client_secret = getattr(settings, f"{name}_client_secret")
    if not client_id or not client_secret:
        return None
    return OAuthProvider(
        name=name,
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=getattr(settings, f"{name}_authorize_url"),
        token_url=getattr(settings, f"{name}_token_url"),
        scope=SCOPES[name],
        smtp=Server.parse(getattr(settings, f"{name}_smtp_server")),
        imap=Server.parse(getattr(settings, f"{name}_imap_server")),
    )
