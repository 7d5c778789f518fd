"""A Python client generated from the committed openapi.json with openapi-python-client drives a whole flow
against a real `imail serve` on a loopback port: a workspace key from the CLI, an inbox on the loopback SMTP
(aiosmtpd) and IMAP (Dovecot) servers, a campaign, bulk leads, resume, the sending worker's sends, analytics
and a webhook. The generated module and class names are checked too: they are what client users type."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from imail.db import Database
from imail.workers import webhooks as webhooks_worker
from tests.fixtures.api_servers import api_servers
from tests.fixtures.certs import CertPair
from tests.fixtures.client_flow import create_workspace, send_all_due, worker
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session  # noqa: F401
from tests.fixtures.smtp import SmtpServer, smtp_server, tls_cert  # noqa: F401
from tests.fixtures.webhook_receiver import Receiver
from tests.inboxes.conftest import Mailbox, make_mailbox  # noqa: F401
from tests.sending.conftest import ALL_DAY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "imail_client"
LEADS = ["ana@example.org", "bob@example.org", "cy@example.org"]
# Names a generator falls back to when the schema leaves them to chance (route paths, inline enums, bodies).
UNREADABLE = re.compile(r"_v1_|_(get|post|patch|delete)$|Type\d|^Body|Out$|^Page|_")


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("generated")
    generator = Path(sys.executable).with_name("openapi-python-client")
    # The generator formats its output with ruff, which it looks for on PATH (it is installed beside it).
    env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(REPO / "openapi.json"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_generated_names_read_well(client_package: ModuleType) -> None:
    document = json.loads((REPO / "openapi.json").read_text())
    operation_ids = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    api_dir = Path(client_package.__file__).parent / "api"
    modules = {p.stem for p in api_dir.glob("*/*.py") if p.stem != "__init__"}
    assert modules == operation_ids
    assert not [m for m in modules if re.search(r"_v1_|_(get|post|patch|delete)$", m)]
    models = _module("models")
    names = [name for name in models.__all__]
    assert {
        "Campaign",
        "CampaignCreate",
        "Inbox",
        "InboxCreate",
        "Lead",
        "LeadBulkCreate",
        "Webhook",
        "ErrorBody",
        "ConnectionSecurity",
        "CustomVariables",
        "SendWindow",
        "SendWindowIn",
    } <= set(names)
    assert [n for n in names if UNREADABLE.search(n)] == []


async def test_a_whole_flow_through_the_generated_client(
    client_package: ModuleType,
    database: Database,  # empties the tables first
    database_url: str,
    tls_cert: CertPair,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    make_mailbox,  # noqa: F811
) -> None:
    models = _module("models")
    create_inbox = _module("api.inboxes.create_inbox")
    create_campaign, resume_campaign, get_campaign = (
        _module(f"api.campaigns.{n}") for n in ("create_campaign", "resume_campaign", "get_campaign")
    )
    create_leads_bulk = _module("api.leads.create_leads_bulk")
    get_campaign_analytics = _module("api.analytics.get_campaign_analytics")
    create_webhook, test_webhook, list_webhook_deliveries = (
        _module(f"api.webhooks.{n}") for n in ("create_webhook", "test_webhook", "list_webhook_deliveries")
    )
    keys = create_workspace(database_url)
    mailbox: Mailbox = make_mailbox()
    env = {
        "IMAIL_DATABASE_URL": database_url,
        "IMAIL_MAIL_CA_FILE": str(tls_cert.ca_file),
        "IMAIL_WEBHOOKS_ALLOW_PRIVATE": "1",  # the webhook receiver listens on loopback
    }
    receiver = await Receiver().start()
    try:
        with api_servers(1, env) as (server,):
            async with (
                client_package.AuthenticatedClient(base_url=server.base_url, token=keys["live_key"]) as api,
                worker(database_url, tls_cert) as ctx,
            ):
                inbox = await create_inbox.asyncio(
                    client=api,
                    body=models.InboxCreate(
                        email=mailbox.email,
                        name="Ana Lima",
                        daily_limit=50,
                        sending_gap_minutes=0,
                        smtp_host="127.0.0.1",
                        smtp_port=mailbox.smtp.port,
                        smtp_password=mailbox.smtp_password,
                        smtp_security=models.ConnectionSecurity.STARTTLS,
                        imap_host="127.0.0.1",
                        imap_port=mailbox.imap.port,
                        imap_password=mailbox.imap_password,
                        imap_security=models.ConnectionSecurity.STARTTLS,
                    ),
                )
                assert isinstance(inbox, models.Inbox), inbox
                assert inbox.status == models.InboxStatus.CONNECTED

                campaign = await create_campaign.asyncio(
                    client=api,
                    body=models.CampaignCreate(
                        name="Q4 outbound",
                        inbox_ids=[inbox.id],
                        steps=[
                            models.StepIn(
                                subject="Hi {{first_name|there}}", body="<p>Hello {{first_name|there}}</p>"
                            )
                        ],
                        send_window=models.SendWindowIn.from_dict(ALL_DAY),
                    ),
                )
                assert isinstance(campaign, models.Campaign), campaign

                added = await create_leads_bulk.asyncio(
                    client=api,
                    body=models.LeadBulkCreate(
                        campaign_id=campaign.id,
                        leads=[
                            models.LeadInput(email=email, first_name=email.split("@")[0].title())
                            for email in LEADS
                        ],
                    ),
                )
                assert isinstance(added, models.LeadBulkResult), added
                assert added.created == len(LEADS)

                resumed = await resume_campaign.asyncio(campaign.id, client=api)
                assert isinstance(resumed, models.Campaign), resumed
                assert resumed.status == models.CampaignStatus.ACTIVE

                await send_all_due(ctx)
                delivered = smtp_server.wait_for_messages(len(LEADS))
                assert sorted(m.envelope_to[0] for m in delivered) == LEADS

                report = await get_campaign_analytics.asyncio(campaign.id, client=api)
                assert isinstance(report, models.CampaignAnalytics), report
                assert report.totals.sent == len(LEADS)

                webhook = await create_webhook.asyncio(
                    client=api,
                    body=models.WebhookCreate(
                        url=receiver.url(),
                        events=[models.WebhookEventType.EMAIL_SENT],
                    ),
                )
                assert isinstance(webhook, models.WebhookCreated), webhook
                assert webhook.secret.startswith("whsec_")
                queued = await test_webhook.asyncio(webhook.id, client=api)
                assert isinstance(queued, models.WebhookDelivery), queued
                assert queued.status == models.DeliveryStatus.PENDING
                log = await list_webhook_deliveries.asyncio(webhook.id, client=api)
                assert [d.id for d in log.data] == [queued.id]
                await webhooks_worker.deliver_webhooks(ctx)
                await receiver.wait_for(lambda: len(receiver.requests) == 1, timeout=10)
                assert receiver.requests[0].event_id == queued.event_id

                # Errors arrive typed, as the contract's body.
                missing = await get_campaign.asyncio("cmp_missing", client=api)
                assert isinstance(missing, models.ErrorBody), missing
                assert missing.error.code == "not_found"
    finally:
        await receiver.close()
