"""The mail lab's tests: imail against a real MTA (Postfix) and Dovecot on loopback (tests.fixtures.postfix),
started once per session by the first test that asks for `mail_lab`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from imail.config import Settings
from tests.conftest import make_settings
from tests.fixtures.certs import CertPair, make_self_signed
from tests.fixtures.postfix import LabUser, MailLab, mail_lab, mail_lab_session  # noqa: F401
from tests.fixtures.smtp import tls_cert  # noqa: F401

ANOTHER_CA = "another-ca"  # a `mail_ca_file` value: a CA of its own, which did not sign the lab's certificate


@pytest.fixture
def mail_ca_file(tls_cert: CertPair) -> str | None:  # noqa: F811
    """What imail trusts for mail servers (IMAIL_MAIL_CA_FILE): the lab's CA, unless a test parametrises it
    (None: the system's CAs only; ANOTHER_CA: a CA that did not sign the lab's certificate)."""
    return str(tls_cert.ca_file)


@pytest.fixture
def settings(database_url: str, mail_ca_file: str | None, tmp_path: Path) -> Settings:
    if mail_ca_file == ANOTHER_CA:
        mail_ca_file = str(make_self_signed(tmp_path / "another-ca").ca_file)
    return make_settings(
        database_url,
        mail_ca_file=mail_ca_file,
        mail_timeout=10.0,
        public_url="https://t.acme.test",
        sending_retry_seconds=60.0,
    )


async def create_inbox(client, workspace, body: dict):
    return await client.post("/v1/inboxes", json=body, headers=workspace.headers(live=True))


@dataclass
class LabMailbox:
    """A lab user as tests.sending's Outreach connects it (`body()`: the POST /v1/inboxes body)."""

    lab: MailLab
    user: LabUser
    smtp_security: str = "starttls"
    imap_security: str = "starttls"

    @property
    def email(self) -> str:
        return self.user.email

    def body(self) -> dict:
        return self.lab.inbox_body(
            self.user, smtp_security=self.smtp_security, imap_security=self.imap_security
        )


@pytest.fixture
def lab_mailbox(mail_lab: MailLab) -> LabMailbox:  # noqa: F811
    return LabMailbox(mail_lab, mail_lab.add_user())
