"""The IMAP adapter against a real Dovecot: implicit TLS, STARTTLS (which aioimaplib lacks), plain, XOAUTH2
with the challenge answered, and failures told apart with the server's own words."""

from __future__ import annotations

import time

import pytest

from imail.mail import imap
from imail.mail.endpoint import Endpoint, MailConnectionError
from tests.fixtures.certs import CertPair
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session, make_dovecot  # noqa: F401
from tests.fixtures.oauth import OAuthTestProvider, oauth_provider  # noqa: F401
from tests.fixtures.security import each_security, encrypted
from tests.fixtures.smtp import free_port, tls_cert  # noqa: F401


def account(server: DovecotServer, name: str) -> tuple[str, str]:
    user, password = f"{name}-{time.monotonic_ns()}@example.com", "imap-secret"
    server.add_user(user, password)
    return user, password


async def fails(ep: Endpoint, ca_file: str | None, timeout: float = 5.0) -> MailConnectionError:
    with pytest.raises(MailConnectionError) as caught:
        await imap.check_login(ep, allow_private=True, timeout=timeout, ca_file=ca_file)
    return caught.value


@each_security
async def test_login_in_each_security_mode(dovecot: DovecotServer, tls_cert: CertPair, security):  # noqa: F811
    user, password = account(dovecot, security)
    ep = Endpoint("127.0.0.1", dovecot.port_for(security), security, user, password=password)
    async with imap.imap_session(ep, allow_private=True, timeout=5, ca_file=str(tls_cert.ca_file)) as client:
        assert (await client.select("INBOX")).result == "OK"
    assert dovecot.logins_over_tls(user) == [encrypted(security)]


async def test_the_session_reads_what_the_fixture_appended(dovecot: DovecotServer, tls_cert):  # noqa: F811
    user, password = account(dovecot, "reader")
    dovecot.append(user, b"From: lead@example.org\r\nSubject: Re: hello\r\n\r\nSounds good.\r\n")
    assert len(dovecot.fetch_all(user)) == 1
    ep = Endpoint("127.0.0.1", dovecot.port, "starttls", user, password=password)
    async with imap.imap_session(ep, allow_private=True, timeout=5, ca_file=str(tls_cert.ca_file)) as client:
        await client.select("INBOX")
        fetched = await client.fetch("1", "(BODY.PEEK[])")
    assert fetched.result == "OK" and any(b"Sounds good." in bytes(line) for line in fetched.lines)


async def test_wrong_password_is_an_auth_failure_in_the_servers_words(dovecot: DovecotServer, tls_cert):  # noqa: F811
    user, _ = account(dovecot, "wrong")
    error = await fails(
        Endpoint("127.0.0.1", dovecot.port, "starttls", user, password="nope"), str(tls_cert.ca_file)
    )
    assert (error.side, error.stage, error.field) == ("imap", "auth", "imap_password")
    assert "NO [AUTHENTICATIONFAILED] Authentication failed." in error.message


async def test_an_untrusted_certificate_and_a_wrong_tls_mode_are_tls_failures(
    dovecot: DovecotServer, tls_cert
):
    user, password = account(dovecot, "tls")
    for security in ("ssl", "starttls"):
        untrusted = await fails(
            Endpoint("127.0.0.1", dovecot.port_for(security), security, user, password=password), None
        )
        assert (untrusted.stage, untrusted.field) == ("tls", "imap_security")
        assert "IMAIL_MAIL_CA_FILE" in untrusted.message  # where a self-signed server's CA goes
    implicit_on_plain = await fails(
        Endpoint("127.0.0.1", dovecot.port, "ssl", user, password=password), str(tls_cert.ca_file)
    )
    assert implicit_on_plain.stage == "tls"


async def test_a_refused_connection_names_the_port():
    error = await fails(Endpoint("127.0.0.1", free_port(), "none", "u", password="p"), None)
    assert (error.stage, error.field) == ("connect", "imap_port")


async def test_a_stopped_and_restarted_dovecot(make_dovecot, tls_cert):  # noqa: F811
    server = make_dovecot()
    user, password = account(server, "restart")
    ep = Endpoint("127.0.0.1", server.port, "none", user, password=password)
    server.stop()
    assert (await fails(ep, None)).stage == "connect"
    server.start()
    await imap.check_login(ep, allow_private=True, timeout=5)


async def test_xoauth2_through_dovecots_oauth2_passdb(
    make_dovecot, oauth_provider: OAuthTestProvider, tls_cert
):
    server = make_dovecot(oauth_introspection_url=oauth_provider.introspection_url)
    email = "oauth-user@example.com"
    token = oauth_provider._issue(email)["access_token"]
    ca = str(tls_cert.ca_file)
    await imap.check_login(
        Endpoint("127.0.0.1", server.port, "starttls", email, oauth_token=token),
        allow_private=True,
        timeout=5,
        ca_file=ca,
    )
    assert ("POST", "/introspect", {"token": token}) in oauth_provider.requests  # Dovecot asked the provider
    # The continuation is answered, not waited out: waited out, it would end as a timeout, not an auth
    # failure.
    error = await fails(
        Endpoint("127.0.0.1", server.port, "starttls", email, oauth_token="revoked"), ca, timeout=30
    )
    assert error.stage == "auth" and "AUTHENTICATIONFAILED" in error.message
