"""The SMTP adapter against aiosmtpd: each security mode, password and XOAUTH2 logins, and every way to fail,
each told apart (stage, field) with the server's or the TLS library's own words."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from imail.mail import smtp
from imail.mail.endpoint import Endpoint, MailConnectionError, MailRejected
from tests.fixtures.certs import CertPair
from tests.fixtures.security import each_security, encrypted
from tests.fixtures.smtp import free_port, make_smtp_server, tls_cert  # noqa: F401

USER, PASSWORD = "ana@example.com", "smtp-secret"


def endpoint(server, security=None, password=PASSWORD, host="127.0.0.1", **kwargs) -> Endpoint:
    return Endpoint(host, server.port, security or server.security, USER, password=password, **kwargs)


async def fails(ep: Endpoint, ca_file: str | None, timeout: float = 5.0) -> MailConnectionError:
    with pytest.raises(MailConnectionError) as caught:
        await smtp.check_login(ep, allow_private=True, timeout=timeout, ca_file=ca_file)
    return caught.value


@each_security
async def test_login_and_send_in_each_security_mode(make_smtp_server, tls_cert: CertPair, security):  # noqa: F811
    server = make_smtp_server(security)
    server.add_user(USER, PASSWORD)
    ca = str(tls_cert.ca_file)
    await smtp.check_login(endpoint(server), allow_private=True, timeout=5, ca_file=ca)
    reply = await smtp.send_message(
        endpoint(server),
        USER,
        ["lead@example.org"],
        b"Subject: x\r\n\r\nhi\r\n",
        allow_private=True,
        timeout=5,
        ca_file=ca,
    )
    assert reply.startswith("2.0.0")
    [message] = server.messages
    assert (message.login, message.envelope_from, message.envelope_to) == (USER, USER, ["lead@example.org"])
    assert message.tls == encrypted(security) and server.logins_over_tls(USER) == [encrypted(security)] * 2
    assert message.message["Subject"] == "x"


async def test_wrong_password_is_an_auth_failure_in_the_servers_words(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls")
    server.add_user(USER, PASSWORD)
    error = await fails(endpoint(server, password="nope"), str(tls_cert.ca_file))
    assert (error.side, error.stage, error.field) == ("smtp", "auth", "smtp_password")
    assert "535 5.7.8 Authentication credentials invalid" in error.message
    assert "nope" not in error.message


async def test_xoauth2(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls", token_validator=lambda user, token: (user, token) == (USER, "good"))
    ca = str(tls_cert.ca_file)
    ok = Endpoint("127.0.0.1", server.port, "starttls", USER, oauth_token="good")
    await smtp.send_message(
        ok, USER, ["x@example.org"], b"Subject: o\r\n\r\n.\r\n", allow_private=True, timeout=5, ca_file=ca
    )
    assert server.messages[0].mechanism == "XOAUTH2"
    # The JSON challenge is answered, not waited out: waited out, it would end as a timeout, not an auth
    # failure.
    error = await fails(
        Endpoint("127.0.0.1", server.port, "starttls", USER, oauth_token="bad"), ca, timeout=30
    )
    assert error.stage == "auth" and "535" in error.message


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_an_untrusted_certificate_is_a_tls_failure_that_points_at_the_ca_setting(
    make_smtp_server, security
):
    server = make_smtp_server(security)
    error = await fails(endpoint(server), ca_file=None)
    assert (error.stage, error.field) == ("tls", "smtp_security")
    assert "CERTIFICATE_VERIFY_FAILED" in error.message and "IMAIL_MAIL_CA_FILE" in error.message


async def test_a_certificate_for_another_name_is_a_tls_failure_naming_the_host(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("ssl", host="127.0.0.2")  # the certificate is for localhost and 127.0.0.1
    error = await fails(endpoint(server, host="127.0.0.2"), str(tls_cert.ca_file))
    assert (error.stage, error.field) == ("tls", "smtp_host")
    assert "mismatch" in error.message and "set smtp_host to a name the certificate is for" in error.message


async def test_starttls_against_a_server_without_it(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("none")
    error = await fails(endpoint(server, security="starttls"), str(tls_cert.ca_file))
    assert (error.stage, error.field) == ("tls", "smtp_security")
    assert "STARTTLS" in error.message


async def test_a_refused_connection_names_the_port(tls_cert):  # noqa: F811
    ep = Endpoint("127.0.0.1", free_port(), "starttls", USER, password=PASSWORD)
    error = await fails(ep, str(tls_cert.ca_file))
    assert (error.stage, error.field) == ("connect", "smtp_port")
    assert "could not be reached" in error.message


async def test_an_unknown_host_names_the_host(tls_cert):  # noqa: F811
    error = await fails(Endpoint("no-such-host.invalid", 587, "starttls", USER, password=PASSWORD), None)
    assert (error.stage, error.field) == ("dns", "smtp_host")


async def test_a_silent_server_is_bounded_by_the_timeout():
    # Accepts connections and never says a word (like a plain-text client on an implicit-TLS port).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        ep = Endpoint("127.0.0.1", listener.getsockname()[1], "none", USER, password=PASSWORD)
        error = await fails(ep, None, timeout=0.5)  # the server never speaks: only the timeout can end this
        assert error.stage == "timeout" and error.field == "smtp_port"
        assert "0.5 s" in error.message
    finally:
        listener.close()


async def test_a_refused_recipient_is_a_rejection_not_a_connection_failure(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls")
    server.add_user(USER, PASSWORD)
    server.refuse_recipient("gone@example.org")
    with pytest.raises(MailRejected) as caught:
        await smtp.send_message(
            endpoint(server),
            USER,
            ["gone@example.org"],
            b"Subject: x\r\n\r\n.\r\n",
            allow_private=True,
            timeout=5,
            ca_file=str(tls_cert.ca_file),
        )
    assert caught.value.code == 550 and "User unknown" in caught.value.detail
    assert caught.value.recipients == ["gone@example.org"] and server.messages == []


async def test_a_server_stopped_and_started_again_answers_on_the_same_port(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls")
    server.add_user(USER, PASSWORD)
    port = server.port
    server.stop()
    assert (await fails(endpoint(server), str(tls_cert.ca_file))).stage == "connect"
    server.start()
    assert server.port == port
    await asyncio.wait_for(
        smtp.check_login(endpoint(server), allow_private=True, timeout=5, ca_file=str(tls_cert.ca_file)), 10
    )


async def _session(server, tls_cert):  # noqa: F811
    server.add_user(USER, PASSWORD)
    return await smtp.open_session(
        endpoint(server), allow_private=True, timeout=5, ca_file=str(tls_cert.ca_file)
    )


async def test_an_envelope_left_unanswered_is_a_timeout_before_any_data(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls")
    answer = threading.Event()
    # Blocks the server's loop until the test is over: RCPT TO goes unanswered however slow the machine is.
    server.rcpt_hook = lambda address: answer.wait(60) and None  # then accepted
    client = await _session(server, tls_cert)
    try:
        with pytest.raises(MailConnectionError) as caught:
            await smtp.deliver(
                client, endpoint(server), USER, ["lead@example.org"], b"Subject: x\r\n\r\nhi\r\n", timeout=0.3
            )
        assert caught.value.stage == "timeout" and "0.3 s" in caught.value.message
        assert server.messages == []
    finally:
        answer.set()
        client.close()


async def test_data_left_unanswered_is_in_doubt(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls")
    answer = threading.Event()
    server.data_hook = lambda received: (
        answer.wait(60) and None
    )  # the data goes unanswered until the test is over
    client = await _session(server, tls_cert)
    try:
        with pytest.raises(smtp.DeliveryInDoubt, match="no answer to the data within 0.3 s"):
            await smtp.deliver(
                client, endpoint(server), USER, ["lead@example.org"], b"Subject: x\r\n\r\nhi\r\n", timeout=0.3
            )
    finally:
        answer.set()
        client.close()


@pytest.mark.parametrize(
    "address",
    [
        "lead@example.org>\r\nRCPT TO:<other@example.org",
        "a b@example.org",
        '"x"@example.org',
        "jörg@example.org",
    ],
)
async def test_an_address_the_command_line_cannot_carry_fails_that_email_and_the_session_goes_on(
    make_smtp_server, tls_cert, address
):
    server = make_smtp_server("starttls")
    client = await _session(server, tls_cert)
    try:
        with pytest.raises(MailRejected) as caught:
            await smtp.deliver(
                client, endpoint(server), USER, [address], b"Subject: x\r\n\r\nhi\r\n", timeout=5
            )
        assert (
            caught.value.code is None
            and caught.value.detail.startswith("not sent:")
            and caught.value.recipients == []
        )
        await smtp.deliver(
            client, endpoint(server), USER, ["lead@example.org"], b"Subject: y\r\n\r\nhi\r\n", timeout=5
        )
        assert [m.envelope_to for m in server.wait_for_messages(1)] == [["lead@example.org"]]
    finally:
        client.close()


async def test_the_envelope_carries_the_addresses_as_given(make_smtp_server, tls_cert):  # noqa: F811
    server = make_smtp_server("starttls")
    client = await _session(server, tls_cert)
    try:
        reply = await smtp.deliver(
            client,
            endpoint(server),
            USER,
            ["Lead.Name+tag@example.org", "b@example.org"],
            b"Subject: x\r\n\r\nhi\r\n",
            timeout=5,
        )
        assert reply.startswith("250")
        (received,) = server.wait_for_messages(1)
        assert received.envelope_from == USER and received.envelope_to == [
            "Lead.Name+tag@example.org",
            "b@example.org",
        ]
    finally:
        client.close()


async def test_a_unicode_domain_goes_out_in_idna_form_and_a_unicode_local_part_is_refused(
    make_smtp_server, tls_cert
):
    server = make_smtp_server("starttls")
    server.add_user(USER, PASSWORD)
    ca = str(tls_cert.ca_file)
    await smtp.send_message(
        endpoint(server),
        USER,
        ["ana@bücher.example"],
        b"Subject: x\r\n\r\nhi\r\n",
        allow_private=True,
        timeout=5,
        ca_file=ca,
    )
    assert [m.envelope_to for m in server.wait_for_messages(1)] == [["ana@xn--bcher-kva.example"]]
    with pytest.raises(MailRejected):
        await smtp.send_message(
            endpoint(server),
            USER,
            ["jörg@example.org"],
            b"Subject: x\r\n\r\nhi\r\n",
            allow_private=True,
            timeout=5,
            ca_file=ca,
        )
    assert len(server.messages) == 1
