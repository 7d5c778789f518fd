"""Issue 26, item 1: inboxes reach Postfix (submission with STARTTLS, and with implicit TLS) and Dovecot (IMAP
with STARTTLS, and with implicit TLS) over verified TLS; a certificate for another name or from a CA imail
does not trust is a 400 naming the TLS stage, and so is a server that does not offer the STARTTLS an inbox
asked for. Nothing ever falls back to plain text."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.postfix import OTHER_ADDRESS, MailLab
from tests.lab.conftest import ANOTHER_CA, create_inbox

pytestmark = pytest.mark.usefixtures("mail_lab")


def _submissions_over_tls(lab: MailLab, email: str) -> list[str]:
    """The listeners (syslog names) where Postfix took a SASL login from `email`, each on a session Postfix
    says was encrypted: Postfix logs "… TLS connection established" before the login on the same process."""
    text = lab.log_file.read_text(errors="replace")
    logins = []
    for match in re.finditer(
        r"postfix/(\w+)/smtpd\[(\d+)\]: \w+: client=.*sasl_username=" + re.escape(email), text
    ):
        listener, pid = match.groups()
        before = text[: match.start()]
        if f"postfix/{listener}/smtpd[{pid}]: Anonymous TLS connection established" in before:
            logins.append(listener)
    return logins


@pytest.mark.parametrize(("smtp_security", "imap_security"), [("starttls", "starttls"), ("ssl", "ssl")])
async def test_an_inbox_connects_to_postfix_and_dovecot_over_tls(
    client, workspace, mail_lab: MailLab, smtp_security, imap_security
):
    user = mail_lab.add_user()
    body = mail_lab.inbox_body(user, smtp_security=smtp_security, imap_security=imap_security)
    response = await create_inbox(client, workspace, body)
    assert response.status_code == 201, response.text
    inbox = response.json()
    assert (inbox["smtp_security"], inbox["imap_security"]) == (smtp_security, imap_security)
    assert inbox["status"] == "connected"
    # Dovecot saw the IMAP login over TLS (its log, not imail's word).
    assert mail_lab.dovecot.logins_over_tls(user.email) == [True]


@pytest.mark.parametrize("mail_ca_file", [None, ANOTHER_CA])
@pytest.mark.parametrize("side", ["smtp", "imap"])
@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_a_certificate_from_a_ca_imail_does_not_trust_is_a_400_naming_tls(
    client, workspace, mail_lab: MailLab, mail_ca_file, side, security
):
    user = mail_lab.add_user()
    other = "imap" if side == "smtp" else "smtp"
    # Only `side` is reached with TLS: the other logs in over plain text, so the failure is this side's alone.
    securities = {f"{side}_security": security, f"{other}_security": "none"}
    body = mail_lab.inbox_body(user, **securities)
    response = await create_inbox(client, workspace, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_field" and error["field"] == f"{side}_security", error
    assert error["message"].startswith(f"{side.upper()} TLS with 127.0.0.1:"), error
    assert "IMAIL_MAIL_CA_FILE" in error["message"] and "nothing was saved" in error["message"]
    assert (await client.get("/v1/inboxes", headers=workspace.headers())).json()["data"] == []
    # Nothing went over plain text instead: no login reached the side that failed.
    if side == "imap":
        assert mail_lab.dovecot.logins_over_tls(user.email, at_least=1, timeout=0.5) == []
    else:
        assert _submissions_over_tls(mail_lab, user.email) == []


@pytest.mark.parametrize("side", ["smtp", "imap"])
async def test_a_certificate_for_another_name_is_a_400_naming_tls_and_the_host(
    client, workspace, mail_lab: MailLab, side
):
    user = mail_lab.add_user()
    body = mail_lab.inbox_body(user, **{f"{side}_host": OTHER_ADDRESS})
    response = await create_inbox(client, workspace, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == f"{side}_host", error
    assert error["message"].startswith(f"{side.upper()} TLS with {OTHER_ADDRESS}:"), error
    assert "mismatch" in error["message"] and "certificate is for" in error["message"]


async def test_starttls_asked_of_a_postfix_that_does_not_offer_it_is_a_400_not_plain_text(
    client, workspace, mail_lab: MailLab
):
    user = mail_lab.add_user()
    body = mail_lab.inbox_body(user, smtp_port=mail_lab.plain_port, smtp_security="starttls")
    response = await create_inbox(client, workspace, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "smtp_security" and error["message"].startswith("SMTP TLS with"), error
    assert "STARTTLS" in error["message"]
    # The login never happened, in plain text or otherwise.
    assert f"sasl_username={user.email}" not in mail_lab.log_file.read_text(errors="replace")


async def test_implicit_tls_against_a_plain_text_listener_is_a_400_naming_tls(
    client, workspace, mail_lab: MailLab
):
    user = mail_lab.add_user()
    body = mail_lab.inbox_body(user, smtp_port=mail_lab.submission_port, smtp_security="ssl")
    response = await create_inbox(client, workspace, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "smtp_security", error
