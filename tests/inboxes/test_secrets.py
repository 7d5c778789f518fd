"""Key rotation for stored inbox secrets: `imail secrets rotate` re-encrypts every row under the current
key."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from sqlalchemy import select

from imail.inboxes.service import rotate_secrets
from imail.kit import crypto
from imail.models import IdempotencyRecord, Inbox, WebhookEndpoint
from tests.conftest import TEST_SECRET, make_settings
from tests.inboxes.conftest import Mailbox, inbox_rows

NEW_KEY = "brand-new-secret-key-0123456789-abcdefghijklmnop"
SECRET_COLUMNS = ("smtp_password_encrypted", "imap_password_encrypted")


async def test_rotation_re_encrypts_every_row_under_the_new_key(
    client, workspace, mailbox: Mailbox, database, database_url
):
    assert (
        await client.post("/v1/inboxes", json=mailbox.body(), headers=workspace.headers())
    ).status_code == 201
    before = (await inbox_rows(database))[0]

    rotated_settings = make_settings(database_url, secret_key=NEW_KEY, secret_keys_old=TEST_SECRET)
    report = await rotate_secrets(database, rotated_settings, batch=1)
    assert (report.inboxes, report.rotated, report.current, report.unreadable) == (1, 2, 0, [])

    after = (await inbox_rows(database))[0]
    only_new = crypto.SecretBox(NEW_KEY)  # the old key is no longer needed
    for column in SECRET_COLUMNS:
        assert after[column] != before[column]
    assert only_new.decrypt(after["smtp_password_encrypted"]) == mailbox.smtp_password
    assert only_new.decrypt(after["imap_password_encrypted"]) == mailbox.imap_password

    again = await rotate_secrets(database, rotated_settings)
    assert (again.rotated, again.current) == (0, 2)


async def test_rows_no_key_opens_are_reported(database, workspace, database_url):
    async with database.transaction() as session:
        session.add(
            Inbox(
                workspace_id=workspace.workspace_id,
                livemode=True,
                email="lost@example.com",
                smtp_password_encrypted=crypto.SecretBox("a-key-nobody-configured-0123456789-xyz").encrypt(
                    "x"
                ),
            )
        )
    report = await rotate_secrets(database, make_settings(database_url, secret_key=NEW_KEY))
    assert report.rotated == 0 and len(report.unreadable) == 1


async def test_the_cli_command(client, workspace, mailbox: Mailbox, database, database_url, tmp_path):
    """Every encrypted column: inbox credentials, a webhook's signing secret, a response kept for a retry."""
    assert (
        await client.post("/v1/inboxes", json=mailbox.body(), headers=workspace.headers())
    ).status_code == 201
    hook = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/h", "events": ["*"]},
        headers=workspace.headers(**{"Idempotency-Key": "rotate-me"}),
    )
    assert hook.status_code == 201
    env = {
        **os.environ,
        "IMAIL_DATABASE_URL": database_url,
        "IMAIL_SECRET_KEY": NEW_KEY,
        "IMAIL_SECRET_KEYS_OLD": TEST_SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imail.cli",
        "secrets",
        "rotate",
        "--json",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {
        "inboxes": 1,
        "webhooks": 1,
        "idempotency_records": 1,
        "rotated": 4,
        "already_current": 0,
        "unreadable": [],
    }
    row = (await inbox_rows(database))[0]
    assert crypto.SecretBox(NEW_KEY).decrypt(row["smtp_password_encrypted"]) == mailbox.smtp_password
    async with database.read() as session:
        sealed = (await session.execute(select(WebhookEndpoint.secret_encrypted))).scalar_one()
        kept = (await session.execute(select(IdempotencyRecord.response_body_encrypted))).scalar_one()
    assert crypto.SecretBox(NEW_KEY, purpose=crypto.WEBHOOK_SECRETS).decrypt(sealed) == hook.json()["secret"]
    replay = crypto.SecretBox(NEW_KEY, purpose=crypto.IDEMPOTENT_RESPONSES).decrypt_bytes(kept)
    assert json.loads(replay)["secret"] == hook.json()["secret"]
