"""The audit log records inbox changes (real SMTP and IMAP logins) but never their passwords."""

from __future__ import annotations

import json

from sqlalchemy import select

from imail.models import AuditLog
from tests.inboxes.conftest import Mailbox


async def test_inbox_passwords_never_reach_the_audit_log(client, workspace, mailbox: Mailbox, database):
    h = workspace.headers()
    created = await client.post("/v1/inboxes", json=mailbox.body(), headers=h)
    assert created.status_code == 201, created.text
    inbox_id = created.json()["id"]
    # A failed change (a wrong password: the login is refused) is not recorded either.
    wrong = await client.patch(
        f"/v1/inboxes/{inbox_id}", json={"smtp_password": "wrong-password-123"}, headers=h
    )
    assert wrong.status_code >= 400, wrong.text

    async with database.transaction() as session:
        rows = list((await session.execute(select(AuditLog))).scalars())
    assert [(r.method, r.route, r.object_id) for r in rows] == [("POST", "/v1/inboxes", inbox_id)]
    dumped = json.dumps([{c.name: str(getattr(r, c.name)) for c in AuditLog.__table__.columns} for r in rows])
    for secret in (mailbox.smtp_password, mailbox.imap_password, "wrong-password-123"):
        assert secret not in dumped
    listed = await client.get("/v1/audit-logs", headers=h)
    assert mailbox.smtp_password not in listed.text and mailbox.imap_password not in listed.text
