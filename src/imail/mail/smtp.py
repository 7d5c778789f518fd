"""SMTP over aiosmtplib: log in (password or XOAUTH2) and hand messages over. Protocol only, no database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import aiosmtplib
from aiosmtplib import SMTPStatus

from imail.mail.addresses import ascii_address
from imail.mail.endpoint import (
    Endpoint,
    MailConnectionError,
    MailRejected,
    classify_os_error,
    connect_socket,
    tls_context,
)
from imail.mail.endpoint import describe as describe_failure

SIDE = "smtp"


def _library_words(error: BaseException) -> bool:
    """aiosmtplib's own messages ("SMTP STARTTLS extension not supported by server."); its response exceptions
    carry the server's text instead, and a line that is no SMTP reply at all comes quoted in one (code -1)."""
    return isinstance(error, aiosmtplib.SMTPException) and not isinstance(
        error, (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)
    )


def describe(exc: BaseException) -> str:
    return describe_failure(exc, _library_words)


def _is_reply(exc: aiosmtplib.SMTPResponseException) -> bool:
    """Whether the server answered with an SMTP reply at all (aiosmtplib reports a malformed line as code
    -1)."""
    return 200 <= exc.code < 600


def _response_words(exc: aiosmtplib.SMTPResponseException) -> str:
    """A refusal as the server put it: quoted only when it was an SMTP reply, from a server that greeted as
    one."""
    return f"{exc.code} {exc.message}"


def _client(endpoint: Endpoint, timeout: float, ca_file: str | None) -> aiosmtplib.SMTP:
    """The client, connected later on a socket of ours (see _open): `hostname` only names the server for
    TLS."""
    return aiosmtplib.SMTP(
        hostname=endpoint.host,
        use_tls=endpoint.security == "ssl",
        # done explicitly below, so a STARTTLS failure is told apart from a refused connection
        start_tls=False,
        tls_context=tls_context(ca_file),
        timeout=timeout,
    )


async def _open(client: aiosmtplib.SMTP, endpoint: Endpoint, allow_private: bool) -> None:
    sock = await connect_socket(endpoint, SIDE, allow_private=allow_private)
    try:
        await client.connect(sock=sock)
    except aiosmtplib.SMTPConnectResponseError as exc:
        sock.close()
        words = f"the server greeted with code {exc.code}, not 220" if _is_reply(exc) else ""
        raise MailConnectionError(SIDE, "protocol", endpoint, words) from exc
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        sock.close()  # ValueError: aiosmtplib could not parse the greeting as an SMTP reply
        raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc
    except BaseException:
        sock.close()
        raise
    if endpoint.security == "starttls":
        try:
            await client.starttls()
        except aiosmtplib.SMTPResponseException as exc:
            if not _is_reply(exc):
                raise MailConnectionError(SIDE, "protocol", endpoint) from exc
            raise MailConnectionError(
                SIDE, "tls", endpoint, f"the server refused STARTTLS (code {exc.code})"
            ) from exc
        except aiosmtplib.SMTPException as exc:
            stage = classify_os_error(exc)
            raise MailConnectionError(
                SIDE, "tls" if stage == "protocol" else stage, endpoint, describe(exc)
            ) from exc
        except (OSError, ValueError) as exc:
            raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc


async def _authenticate(client: aiosmtplib.SMTP, endpoint: Endpoint) -> None:
    if not endpoint.username and endpoint.oauth_token is None:
        return  # a relay that takes mail without a login (the operator's own server; inboxes always log in)
    try:
        if endpoint.oauth_token is not None:
            await client.auth_xoauth2(endpoint.username, endpoint.oauth_token)
        else:
            await client.login(endpoint.username, endpoint.password or "")
    except aiosmtplib.SMTPResponseException as exc:
        if not _is_reply(exc):
            raise MailConnectionError(SIDE, "protocol", endpoint) from exc
        raise MailConnectionError(SIDE, "auth", endpoint, _response_words(exc)) from exc
    except aiosmtplib.SMTPException as exc:
        # e.g. "No suitable authentication method found." or AUTH not offered without TLS
        stage = classify_os_error(exc)
        raise MailConnectionError(
            SIDE, "auth" if stage == "protocol" else stage, endpoint, describe(exc)
        ) from exc
    except (OSError, ValueError) as exc:
        raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc


@asynccontextmanager
async def smtp_session(
    endpoint: Endpoint, *, timeout: float, ca_file: str | None = None, allow_private: bool = False
) -> AsyncIterator[aiosmtplib.SMTP]:
    """A connected, TLS-secured (unless security is none) and authenticated client; closed on exit.

    Connecting and logging in are bounded by `timeout` as a whole; failures raise MailConnectionError.
    Loopback and private addresses are dialled only with `allow_private` (IMAIL_MAIL_ALLOW_PRIVATE); see
    connect_socket.
    """
    client = _client(endpoint, timeout, ca_file)
    try:
        try:
            async with asyncio.timeout(timeout):
                await _open(client, endpoint, allow_private)
                await _authenticate(client, endpoint)
        except TimeoutError as exc:
            raise MailConnectionError(SIDE, "timeout", endpoint, f"no answer within {timeout:g} s") from exc
        yield client
    finally:
        if client.is_connected:
            try:
                async with asyncio.timeout(min(timeout, 5.0)):
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


async def check_login(
    endpoint: Endpoint, *, timeout: float, ca_file: str | None = None, allow_private: bool = False
) -> None:
    """Connect, secure and log in for real, then quit; raises MailConnectionError (a refused login in the
    server's words)."""
    async with smtp_session(endpoint, timeout=timeout, ca_file=ca_file, allow_private=allow_private):
        pass


async def send_message(
    endpoint: Endpoint,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    *,
    timeout: float,
    ca_file: str | None = None,
    allow_private: bool = False,
) -> str:
    """Hand one message to the server; returns its reply to DATA (e.g. "250 2.0.0 Ok: queued as …").

    Connection and login problems raise MailConnectionError (report them to the inbox monitor);
    a refused sender, recipient or message raises MailRejected.
    """
    async with smtp_session(
        endpoint, timeout=timeout, ca_file=ca_file, allow_private=allow_private
    ) as client:
        try:
            _refused, reply = await client.sendmail(
                ascii_address(sender) or sender,
                [ascii_address(r) or r for r in recipients],
                data,
                timeout=timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            raise MailRejected(
                first.code if first else None,
                first.message if first else "all recipients refused",
                [r.recipient for r in exc.recipients],
            ) from exc
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError) as exc:
            raise MailRejected(exc.code, exc.message) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailRejected(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise MailConnectionError(SIDE, classify_os_error(exc), endpoint, describe(exc)) from exc
        except ValueError as exc:  # aiosmtplib refuses to put a malformed address on the wire
            raise MailRejected(None, str(exc), list(recipients)) from exc
        # Some (not all) recipients refused: the message went to the others, so this is still a send.
        return reply


# --- pooled sending: a session kept open by the caller, one message at a time ---------------------------


class DeliveryInDoubt(Exception):
    """The connection failed after the message data went out: the server may have accepted it. Never resend
    on this alone; look for the Message-ID in the Sent folder instead."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


async def open_session(
    endpoint: Endpoint, *, timeout: float, ca_file: str | None = None, allow_private: bool = False
) -> aiosmtplib.SMTP:
    """A connected and authenticated client that the caller keeps and closes with `close_session`."""
    client = _client(endpoint, timeout, ca_file)
    try:
        async with asyncio.timeout(timeout):
            await _open(client, endpoint, allow_private)
            await _authenticate(client, endpoint)
    except TimeoutError as exc:
        client.close()
        raise MailConnectionError(SIDE, "timeout", endpoint, f"no answer within {timeout:g} s") from exc
    except BaseException:
        client.close()
        raise
    return client


async def close_session(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            async with asyncio.timeout(5.0):
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


_UNSAFE_IN_PATH = re.compile(r'[\s<>"\x00-\x1f\x7f]')


def _path(address: str) -> bytes:
    """An address as the path of a MAIL or RCPT command, its domain in IDNA form. aiosmtplib's mail() and
    rcpt() re-parse every address with email.utils.parseaddr, a visible part of the engine's CPU per email;
    ours were validated when stored, so only what could break the command line is refused here."""
    if _UNSAFE_IN_PATH.search(address):
        raise ValueError(f"{address!r} contains characters not permitted in an SMTP mailbox")
    encoded = ascii_address(address)
    if encoded is None:
        raise ValueError(f"{address!r} is not ASCII before the @, which needs SMTPUTF8 (not supported)")
    return b"<" + encoded.encode("ascii") + b">"


def _xtext(value: str) -> bytes:
    """RFC 3461 xtext, for ENVID: "+", "=" and anything outside printable ASCII as "+HH"."""
    return "".join(
        c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    ).encode("ascii")


# What a delivery status notification (RFC 3461) asks for: the headers only back, and a report on success
# (`email.delivered`), on failure (a hard bounce) and on delay (nothing yet).
DSN_RET = b" RET=HDRS"
DSN_NOTIFY = b" NOTIFY=SUCCESS,FAILURE,DELAY"


def offers_dsn(client: aiosmtplib.SMTP) -> bool:
    return client.supports_extension("dsn")


async def _envelope(
    client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str], envid: str | None = None
) -> None:
    """MAIL FROM and RCPT TO, answered as aiosmtplib's mail() and rcpt() would. No per-command timeout: the
    caller's one deadline covers the envelope, and a session that misses it is dropped. With `envid`, and a
    server that offers DSN, delivery reports are asked for, carrying `envid` back (ENVID)."""
    dsn = envid is not None and offers_dsn(client)
    mail = b"FROM:" + _path(sender) + (DSN_RET + b" ENVID=" + _xtext(envid) if dsn and envid else b"")
    response = await client.execute_command(b"MAIL", mail, timeout=None)
    if response.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
    for recipient in recipients:
        rcpt = b"TO:" + _path(recipient) + (DSN_NOTIFY if dsn else b"")
        response = await client.execute_command(b"RCPT", rcpt, timeout=None)
        if response.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)


async def deliver(
    client: aiosmtplib.SMTP,
    endpoint: Endpoint,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    *,
    timeout: float,
    before_data: Callable[[], Awaitable[None]] | None = None,
    envid: str | None = None,
) -> str:
    """Send one message on an open session, phase by phase, so a failure is known to be before the data
    (safe to retry: MailConnectionError / MailRejected) or after it (DeliveryInDoubt). `before_data` runs
    once the envelope is accepted, just before the DATA command: the caller's last chance to record that the
    message is about to leave. `envid`: ask a server that offers DSN for delivery reports naming it."""
    try:
        async with asyncio.timeout(timeout):
            await _envelope(client, sender, recipients, envid)
    except aiosmtplib.SMTPRecipientRefused as exc:
        await _reset(client)
        raise MailRejected(exc.code, exc.message, [exc.recipient]) from exc
    except aiosmtplib.SMTPResponseException as exc:
        await _reset(client)
        raise MailRejected(exc.code, exc.message) from exc
    except (
        ValueError
    ) as exc:  # an address the command line cannot carry: this email fails, the session goes on
        await _reset(client)
        raise MailRejected(None, f"not sent: {exc}") from exc
    except TimeoutError as exc:
        raise MailConnectionError(SIDE, "timeout", endpoint, f"no answer within {timeout:g} s") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailConnectionError(
            SIDE, classify_os_error(exc), endpoint, describe(exc) or "no answer"
        ) from exc
    if before_data is not None:
        await before_data()
    try:
        async with asyncio.timeout(timeout):
            response = await client.data(data, timeout=None)
    except aiosmtplib.SMTPResponseException as exc:
        raise MailRejected(exc.code, exc.message, list(recipients) if exc.code < 500 else []) from exc
    except TimeoutError as exc:
        raise DeliveryInDoubt(f"no answer to the data within {timeout:g} s") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise DeliveryInDoubt(describe(exc) or "connection lost during DATA") from exc
    return f"{response.code} {response.message}"


async def _reset(client: aiosmtplib.SMTP) -> None:
    try:
        async with asyncio.timeout(5.0):
            await client.rset()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
