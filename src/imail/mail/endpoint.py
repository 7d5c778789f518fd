"""What SMTP and IMAP adapters share: where to connect, how to authenticate, and how failures are told."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from imail.kit.exceptions import causes

Side = Literal["smtp", "imap"]
Stage = Literal["dns", "connect", "timeout", "tls", "auth", "protocol"]
SECURITIES = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class Endpoint:
    """One mail server login. `oauth_token` (an OAuth access token, XOAUTH2) replaces `password`."""

    host: str
    port: int
    security: str  # "ssl" (implicit TLS), "starttls" or "none"
    username: str
    password: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_server(spec: str) -> tuple[str, int, str]:
    """`host:port/security` (the settings' form for a fixed server) as (host, port, security)."""
    host, _, rest = spec.rpartition(":")
    port, _, security = rest.partition("/")
    return host, int(port), security


class MailConnectionError(Exception):
    """A server could not be reached, refused TLS, or refused the login. `detail` holds the server's own words."""

    def __init__(self, side: str, stage: Stage, endpoint: Endpoint | None, detail: str):
        self.side = side
        self.stage = stage
        self.endpoint = endpoint
        self.detail = " ".join(detail.split()) or "no detail given"
        super().__init__(self.message)

    @property
    def _wrong_name(self) -> bool:
        """The certificate is valid but for another name (`Hostname mismatch`, `IP address mismatch`)."""
        return self.stage == "tls" and "mismatch, certificate is not valid for" in self.detail

    @property
    def _untrusted(self) -> bool:
        """The certificate chain ends at a CA this server does not trust: self-signed or a private CA."""
        words = ("self-signed certificate", "self signed certificate", "local issuer")
        return self.stage == "tls" and any(word in self.detail for word in words)

    @property
    def field(self) -> str | None:
        """The request field most likely at fault."""
        if self.side not in ("smtp", "imap"):
            return None
        if self._wrong_name:
            return f"{self.side}_host"
        suffix = {"dns": "host", "connect": "port", "timeout": "port", "tls": "security", "auth": "password"}.get(self.stage)
        return f"{self.side}_{suffix}" if suffix else f"{self.side}_host"

    @property
    def message(self) -> str:
        side = self.side.upper() if self.side in ("smtp", "imap") else "OAuth"
        where = self.endpoint.address if self.endpoint else ""
        user = self.endpoint.username if self.endpoint else ""
        match self.stage:
            case "dns":
                return f"{side} host {self.endpoint.host if self.endpoint else ''} could not be resolved: {self.detail}"
            case "connect":
                return f"{side} server {where} could not be reached: {self.detail}; check {self.side}_host and {self.side}_port"
            case "timeout":
                return (
                    f"{side} server {where} did not answer in time ({self.detail}); check {self.side}_host, "
                    f"{self.side}_port and {self.side}_security (implicit TLS ports such as 465 and 993 need ssl)"
                )
            case "tls" if self._wrong_name:
                return (f"{side} TLS with {where} failed: {self.detail}; "
                        f"set {self.side}_host to a name the certificate is for")
            case "tls" if self._untrusted:
                return (
                    f"{side} TLS with {where} failed: {self.detail}; if the server's certificate is "
                    "self-signed or from a private CA, trust that CA with IMAIL_MAIL_CA_FILE on the imail server"
                )
            case "tls":
                return f"{side} TLS with {where} failed: {self.detail}; check {self.side}_security"
            case "auth":
                return f"{side} login to {where} as {user} failed; the server said: {self.detail}"
            case _:
                return f"{side} server {where} answered unexpectedly: {self.detail}"


class MailRejected(Exception):
    """The server took the login but refused a message (sender, recipients or data): not a connection problem."""

    def __init__(self, code: int | None, detail: str, recipients: list[str] | None = None):
        self.code = code
        self.detail = detail
        self.recipients = recipients or []
        super().__init__(f"{code or ''} {detail}".strip())


@lru_cache(maxsize=8)
def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate- and hostname-verifying client context; `ca_file` adds trusted CAs (IMAIL_MAIL_CA_FILE)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def classify_os_error(exc: BaseException) -> Stage:
    """Map a low-level failure (possibly wrapped by the client library) onto the stage it happened in."""
    chain = causes(exc)
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, socket.gaierror) for e in chain) or "Name or service not known" in text:
        return "dns"
    if any(isinstance(e, (ssl.SSLError, ssl.CertificateError)) for e in chain) or "[SSL:" in text:
        return "tls"
    if any(isinstance(e, TimeoutError) for e in chain):
        return "timeout"
    if any(isinstance(e, OSError) for e in chain):
        return "connect"
    return "protocol"


def describe(exc: BaseException) -> str:
    """The most specific message in an exception chain (the OS's or TLS library's own words)."""
    texts = [text for text in map(str, causes(exc)) if text]
    return texts[-1] if texts else type(exc).__name__
