"""What SMTP and IMAP adapters share: where to connect (and where never to), how to authenticate, and how
failures are told — in our words: text a peer sent is only ever quoted from a mail server refusing a login."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from imail.kit.exceptions import causes
from imail.kit.network import ALWAYS_REFUSED, check_host

Side = Literal["smtp", "imap"]
Stage = Literal["address", "dns", "connect", "timeout", "tls", "auth", "protocol"]
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
    """A server could not be reached (or may not be: stage `address`), refused TLS, or refused the login.
    `detail` says what happened in our words; only a refused login quotes the server."""

    def __init__(self, side: str, stage: Stage, endpoint: Endpoint | None, detail: str = ""):
        self.side = side
        self.stage = stage
        self.endpoint = endpoint
        self.detail = " ".join(detail.split()) or _STAGE_WORDS.get(stage, "no detail given").format(
            side=side.upper()
        )
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
        suffix = {
            "dns": "host",
            "connect": "port",
            "timeout": "port",
            "tls": "security",
            "auth": "password",
        }.get(self.stage)
        return f"{self.side}_{suffix}" if suffix else f"{self.side}_host"

    @property
    def message(self) -> str:
        side = self.side.upper() if self.side in ("smtp", "imap") else "OAuth"
        where = self.endpoint.address if self.endpoint else ""
        user = self.endpoint.username if self.endpoint else ""
        match self.stage:
            case "address":
                return f"{side} host {self.endpoint.host if self.endpoint else ''} is refused: {self.detail}"
            case "dns":
                return (
                    f"{side} host {self.endpoint.host if self.endpoint else ''} could not be resolved: "
                    f"{self.detail}"
                )
            case "connect":
                return (
                    f"{side} server {where} could not be reached: {self.detail}; check {self.side}_host "
                    f"and {self.side}_port"
                )
            case "timeout":
                return (
                    f"{side} server {where} did not answer in time ({self.detail}); check {self.side}_host, "
                    f"{self.side}_port and {self.side}_security (implicit TLS ports such as 465 and 993 "
                    "need ssl)"
                )
            case "tls" if self._wrong_name:
                return (
                    f"{side} TLS with {where} failed: {self.detail}; "
                    f"set {self.side}_host to a name the certificate is for"
                )
            case "tls" if self._untrusted:
                return (
                    f"{side} TLS with {where} failed: {self.detail}; if the server's certificate is "
                    "self-signed or from a private CA, trust that CA with IMAIL_MAIL_CA_FILE on the imail "
                    "server"
                )
            case "tls":
                return f"{side} TLS with {where} failed: {self.detail}; check {self.side}_security"
            case "auth":
                return f"{side} login to {where} as {user} failed; the server said: {self.detail}"
            case _:
                return f"{side} server {where} answered unexpectedly: {self.detail}"


class MailRejected(Exception):
    """The server took the login but refused a message (sender, recipients or data): not a connection
    problem."""

    def __init__(self, code: int | None, detail: str, recipients: list[str] | None = None):
        self.code = code
        self.detail = detail
        self.recipients = recipients or []
        super().__init__(f"{code or ''} {detail}".strip())


# What happened, when no OS or TLS library message says it better (see `describe`).
_STAGE_WORDS = {
    "dns": "the name does not resolve",
    "timeout": "no answer",
    "connect": "the connection failed",
    "tls": "the TLS handshake failed",
    "auth": "the login was refused",
    "protocol": "the server did not answer as an {side} server",
}


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


def describe(exc: BaseException, library_words: Callable[[BaseException], bool] | None = None) -> str:
    """The most specific account of a failure that is ours to give: the OS's words (an errno), the TLS
    library's, or the client library's own (`library_words`: its exceptions whose text never quotes the peer)
    — never a message built from bytes the other side sent (a parse error can quote them, and a non-mail
    service would then be read through our error messages). Empty when there is none: the stage says what
    happened."""
    for error in reversed(causes(exc)):
        if isinstance(error, (ssl.SSLError, ssl.CertificateError, socket.gaierror)):
            return str(error)
        if library_words is not None and library_words(error):
            return str(error)
        if isinstance(error, OSError) and error.errno is not None:
            return str(error)
    return ""


async def check_address(
    endpoint: Endpoint, side: str, *, allow_private: bool, resolve_names: bool = True
) -> tuple[str, ...]:
    """The addresses the server may be dialled at (empty: the name does not resolve); raises
    MailConnectionError (stage `address`, naming the host) when the address policy (imail.kit.network) refuses
    any of them."""
    checked = await check_host(
        endpoint.host, endpoint.port, allow_private=allow_private, resolve_names=resolve_names
    )
    if checked.refusal is not None:
        hint = (
            ""
            if allow_private or checked.kind in ALWAYS_REFUSED
            else (" (an operator whose mail server is on its own network can set IMAIL_MAIL_ALLOW_PRIVATE=1)")
        )
        raise MailConnectionError(
            side,
            "address",
            endpoint,
            f"{checked.refusal}, and imail does not connect to loopback, link-local, private, metadata or "
            f"other internal addresses{hint}",
        )
    return checked.addresses


async def connect_socket(endpoint: Endpoint, side: str, *, allow_private: bool) -> socket.socket:
    """A TCP socket connected to the server, under the address policy (imail.kit.network): the host is
    resolved once, every address it has is judged, and only a checked address is dialled — the client library
    never resolves the name again, so a name answering differently a second time (DNS rebinding) gains
    nothing. TLS still verifies the certificate against `endpoint.host`. Raises MailConnectionError (stage
    `address`, `dns` or `connect`)."""
    addresses = await check_address(endpoint, side, allow_private=allow_private)
    if not addresses:
        raise MailConnectionError(side, "dns", endpoint)
    loop = asyncio.get_running_loop()
    failure: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, endpoint.port))
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
        except BaseException:
            sock.close()
            raise
    assert failure is not None
    raise MailConnectionError(side, "connect", endpoint, describe(failure)) from failure
