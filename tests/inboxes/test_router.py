"""`/v1/inboxes` against a real SMTP server (aiosmtpd with AUTH) and a real IMAP server (Dovecot): logging in
over each security mode, then STARTTLS for the rest."""

from __future__ import annotations

import pytest

from imail.kit import crypto
from imail.models import Campaign, CampaignInbox
from tests.fixtures.factories import bearer, make_key
from tests.fixtures.security import each_security, encrypted
from tests.inboxes.conftest import Mailbox, events_of, inbox_rows, load_inbox, unique_email

PASSWORD_FIELDS = (
    "smtp_password",
    "imap_password",
    "smtp_password_encrypted",
    "imap_password_encrypted",
    "oauth_refresh_token_encrypted",
    "oauth_state_nonce",
)


async def create(client, workspace, body, live=True):
    return await client.post("/v1/inboxes", json=body, headers=workspace.headers(live=live))


# --- connecting -------------------------------------------------------------------------------------------


@each_security
async def test_a_good_inbox_connects_after_logging_in_to_both_servers(
    client, workspace, mailbox: Mailbox, dovecot, security
):
    response = await create(
        client, workspace, mailbox.body(daily_limit=40, sending_gap_minutes=7, signature="-- Ana")
    )
    assert response.status_code == 201, response.text
    inbox = response.json()
    assert (inbox["smtp_security"], inbox["smtp_port"]) == (security, mailbox.smtp.port)
    assert (inbox["imap_security"], inbox["imap_port"]) == (security, dovecot.port_for(security))
    # Both servers saw one login, encrypted exactly when the mode says so.
    assert mailbox.smtp.logins_over_tls(mailbox.email) == [encrypted(security)]
    assert dovecot.logins_over_tls(mailbox.email) == [encrypted(security)]
    assert inbox["id"].startswith("inb_") and inbox["object"] == "inbox"
    assert inbox["status"] == "connected" and inbox["last_error"] is None
    assert inbox["email"] == mailbox.email and inbox["provider"] == "custom"
    assert (inbox["daily_limit"], inbox["sending_gap_minutes"], inbox["signature"]) == (40, 7, "-- Ana")
    assert inbox["health_score"] == 70  # a new connected inbox is neutral
    assert inbox["warmup_status"] == "off" and inbox["setup_url"] is None
    assert inbox["smtp_username"] == mailbox.email
    assert not set(PASSWORD_FIELDS) & set(inbox), "secrets must never be returned"
    assert inbox["created_at"].endswith("Z")

    fetched = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert fetched["id"] == inbox["id"] and fetched["status"] == "connected"
    listed = (await client.get("/v1/inboxes", headers=workspace.headers())).json()
    assert [i["id"] for i in listed["data"]] == [inbox["id"]]
    assert listed["data"][0]["health_score"] == 70 and listed["data"][0]["warmup_status"] == "off"
    assert listed["pagination"] == {"next_cursor": None, "has_more": False}


@pytest.mark.parametrize(
    ("side", "field", "server_words"),
    [("smtp", "smtp_password", "535 5.7.8"), ("imap", "imap_password", "[AUTHENTICATIONFAILED]")],
)
async def test_a_wrong_password_is_a_400_naming_the_side_and_stores_nothing(
    client, workspace, mailbox: Mailbox, database, side, field, server_words
):
    response = await create(client, workspace, mailbox.body(**{field: "not-the-password"}))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_field" and error["field"] == field
    assert error["message"].startswith(f"{side.upper()} login to 127.0.0.1:")
    assert server_words in error["message"]  # the server's own words
    assert "not-the-password" not in response.text
    assert await inbox_rows(database) == []
    # The other side was fine, so only one side is blamed.
    other = "IMAP" if side == "smtp" else "SMTP"
    assert f"{other} login" not in error["message"]


async def test_both_sides_wrong_names_smtp_and_mentions_imap(client, workspace, mailbox: Mailbox, database):
    response = await create(client, workspace, mailbox.body(smtp_password="x", imap_password="y"))
    error = response.json()["error"]
    assert response.status_code == 400 and error["field"] == "smtp_password"
    assert "535" in error["message"] and "AUTHENTICATIONFAILED" in error["message"]
    assert await inbox_rows(database) == []


async def test_an_unreachable_server_is_a_400_naming_its_port(client, workspace, mailbox: Mailbox, database):
    mailbox.smtp.stop()
    response = await create(client, workspace, mailbox.body())
    error = response.json()["error"]
    assert response.status_code == 400 and error["field"] == "smtp_port"
    assert "could not be reached" in error["message"]
    assert await inbox_rows(database) == []


async def test_wrong_tls_mode_is_a_400_naming_security(client, workspace, mailbox: Mailbox, dovecot):
    # Implicit TLS against Dovecot's plain-text port: the TLS handshake fails.
    response = await create(client, workspace, mailbox.body(imap_security="ssl"))
    error = response.json()["error"]
    assert response.status_code == 400 and error["field"] == "imap_security", error


async def test_the_stored_row_holds_no_plaintext_password(
    client, workspace, mailbox: Mailbox, database, settings
):
    response = await create(client, workspace, mailbox.body())
    assert response.status_code == 201
    rows = await inbox_rows(database)
    assert len(rows) == 1
    row = rows[0]
    stored = " ".join(str(value) for value in row.values())
    assert mailbox.smtp_password not in stored and mailbox.imap_password not in stored
    # What is stored is ciphertext that opens only with the server's key.
    box = crypto.secret_box(settings)
    assert box.decrypt(row["smtp_password_encrypted"]) == mailbox.smtp_password
    assert box.decrypt(row["imap_password_encrypted"]) == mailbox.imap_password
    other_key = crypto.SecretBox("another-secret-key-0123456789-abcdefghijklmn")
    with pytest.raises(crypto.InvalidToken):
        other_key.decrypt(row["smtp_password_encrypted"])


async def test_the_same_address_twice_is_409(client, workspace, mailbox: Mailbox, database):
    assert (await create(client, workspace, mailbox.body())).status_code == 201
    again = await create(client, workspace, mailbox.body(email=mailbox.email.upper()))
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "conflict" and again.json()["error"]["field"] == "email"
    assert len(await inbox_rows(database)) == 1


async def test_the_same_address_in_another_workspace_is_fine(
    client, workspace, other_workspace, mailbox: Mailbox
):
    assert (await create(client, workspace, mailbox.body())).status_code == 201
    assert (await create(client, other_workspace, mailbox.body())).status_code == 201


async def test_defaults_fill_ports_usernames_and_limits(
    client, workspace, make_smtp_server, make_mailbox, dovecot
):
    # Only the essentials: port and security come from each other, usernames from the address.
    smtps = make_smtp_server("ssl")
    box = make_mailbox(smtp=smtps)
    body = box.body(smtp_security=None, imap_security=None, smtp_port=smtps.port, imap_port=dovecot.ssl_port)
    body["smtp_security"] = "ssl"
    response = await create(client, workspace, body)
    assert response.status_code == 201, response.text
    inbox = response.json()
    assert inbox["imap_security"] == "ssl"  # port other than 143: implicit TLS
    assert (inbox["daily_limit"], inbox["sending_gap_minutes"]) == (50, 10)
    assert inbox["imap_username"] == box.email


# --- 4xx paths --------------------------------------------------------------------------------------------


BAD_CREATES = [
    ({"smtp_port": 70000}, "invalid_field", "smtp_port", "between 1 and 65535"),
    ({"imap_port": 0}, "invalid_field", "imap_port", "between 1 and 65535"),
    ({"smtp_security": "tls"}, "invalid_field", "smtp_security", "'ssl', 'starttls' or 'none'"),
    ({"sending_gap_minutes": 1441}, "invalid_field", "sending_gap_minutes", "between 0 and 1440"),
    ({"sending_gap_minutes": -1}, "invalid_field", "sending_gap_minutes", "between 0 and 1440"),
    ({"daily_limit": 5001}, "invalid_field", "daily_limit", "between 1 and 5000 on Surge tier"),
    ({"daily_limit": 0}, "invalid_field", "daily_limit", "at least 1"),
    ({"smtp_password": None}, "missing_field", "smtp_password", "required"),
    ({"imap_host": None}, "missing_field", "imap_host", "required"),
    ({"email": "not-an-address"}, "invalid_field", "email", "email"),
    ({"smtp_host": "smtp example.com"}, "invalid_field", "smtp_host", "host name"),
    ({"provider": "yahoo"}, "invalid_field", "provider", "'custom', 'google' or 'microsoft'"),
    ({"smtp_passwd": "typo"}, "invalid_field", "smtp_passwd", "Extra inputs"),
]


async def test_bad_input_is_a_structured_4xx_and_writes_nothing(
    client, workspace, mailbox: Mailbox, database
):
    for overrides, code, field, words in BAD_CREATES:
        response = await create(client, workspace, mailbox.body(**overrides))
        assert response.status_code == 400, (overrides, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (code, field), overrides
        assert words in error["message"], (overrides, error["message"])
    assert mailbox.smtp.messages == []
    assert await inbox_rows(database) == []


async def test_another_workspaces_inbox_is_404_everywhere(
    client, workspace, other_workspace, mailbox: Mailbox
):
    inbox = (await create(client, workspace, mailbox.body())).json()
    theirs = other_workspace.headers()
    for method, path, kwargs in [
        ("GET", f"/v1/inboxes/{inbox['id']}", {}),
        ("PATCH", f"/v1/inboxes/{inbox['id']}", {"json": {"name": "x"}}),
        ("DELETE", f"/v1/inboxes/{inbox['id']}", {}),
        ("POST", f"/v1/inboxes/{inbox['id']}/reconnect", {}),
        ("POST", f"/v1/inboxes/{inbox['id']}/warmup/start", {}),
    ]:
        response = await client.request(method, path, headers=theirs, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.get("/v1/inboxes", headers=theirs)).json()["data"] == []
    # Untouched for its owner.
    mine = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert mine["name"] == "Ana Lima"


async def test_a_test_key_cannot_see_a_live_inbox(client, workspace, mailbox: Mailbox):
    inbox = (await create(client, workspace, mailbox.body())).json()
    test_headers = workspace.headers(live=False)
    assert (await client.get(f"/v1/inboxes/{inbox['id']}", headers=test_headers)).status_code == 404
    assert (await client.get("/v1/inboxes", headers=test_headers)).json()["data"] == []
    assert (await client.delete(f"/v1/inboxes/{inbox['id']}", headers=test_headers)).status_code == 404


async def test_test_mode_never_opens_a_connection(client, workspace, database):
    # No server listens at this address: in test mode the inbox is created without logging in.
    body = {
        "email": unique_email(),
        "smtp_host": "smtp.example.invalid",
        "smtp_password": "a",
        "imap_host": "imap.example.invalid",
        "imap_password": "b",
    }
    response = await create(client, workspace, body, live=False)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "connected" and response.json()["livemode"] is False
    assert (
        await client.get(f"/v1/inboxes/{response.json()['id']}", headers=workspace.headers())
    ).status_code == 404
    reconnected = await client.post(
        f"/v1/inboxes/{response.json()['id']}/reconnect", headers=workspace.headers(live=False)
    )
    assert reconnected.json()["status"] == "connected"


async def test_a_read_only_key_can_list_but_not_connect(client, workspace, database, mailbox: Mailbox):
    key = await make_key(database, workspace.workspace_id, scopes=["inboxes:read"])
    assert (await client.get("/v1/inboxes", headers=bearer(key))).status_code == 200
    response = await client.post("/v1/inboxes", json=mailbox.body(), headers=bearer(key))
    assert response.status_code == 403 and "inboxes:write" in response.json()["error"]["message"]
    other = await make_key(database, workspace.workspace_id, scopes=["campaigns:read"])
    assert (await client.get("/v1/inboxes", headers=bearer(other))).status_code == 403


async def test_list_pages_with_cursors(client, workspace):
    ids = []
    for _ in range(3):
        body = {
            "email": unique_email(),
            "smtp_host": "h.invalid",
            "smtp_password": "a",
            "imap_host": "h.invalid",
            "imap_password": "b",
        }
        ids.append((await create(client, workspace, body, live=False)).json()["id"])
    headers = workspace.headers(live=False)
    first = (await client.get("/v1/inboxes?limit=2", headers=headers)).json()
    assert [i["id"] for i in first["data"]] == ids[::-1][:2] and first["pagination"]["has_more"] is True
    second = (
        await client.get(f"/v1/inboxes?limit=2&cursor={first['pagination']['next_cursor']}", headers=headers)
    ).json()
    assert [i["id"] for i in second["data"]] == ids[:1] and second["pagination"]["has_more"] is False


# --- PATCH ------------------------------------------------------------------------------------------------


async def test_patch_changes_limits_name_and_signature_without_logging_in(
    client, workspace, mailbox: Mailbox
):
    inbox = (await create(client, workspace, mailbox.body())).json()
    mailbox.smtp.stop()  # no login needed for these fields
    response = await client.patch(
        f"/v1/inboxes/{inbox['id']}",
        json={"daily_limit": 120, "sending_gap_minutes": 0, "name": "Ana L.", "signature": "Cheers"},
        headers=workspace.headers(),
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (
        changed["daily_limit"],
        changed["sending_gap_minutes"],
        changed["name"],
        changed["signature"],
    ) == (120, 0, "Ana L.", "Cheers")
    assert changed["status"] == "connected"


async def test_patch_rejects_bad_values_and_keeps_the_inbox(client, workspace, mailbox: Mailbox):
    inbox = (await create(client, workspace, mailbox.body())).json()
    for patch, field in [
        ({"sending_gap_minutes": 2000}, "sending_gap_minutes"),
        ({"daily_limit": 10**6}, "daily_limit"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"name": None}, "name"),
        ({"email": "b@example.com"}, "email"),
        ({"imap_security": "ssl3"}, "imap_security"),
        ({"smtp_password": None}, "smtp_password"),
    ]:
        response = await client.patch(f"/v1/inboxes/{inbox['id']}", json=patch, headers=workspace.headers())
        assert response.status_code == 400 and response.json()["error"]["field"] == field, (
            patch,
            response.text,
        )
    after = (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).json()
    assert after == inbox


async def test_patch_credentials_logs_in_again_first(client, workspace, mailbox: Mailbox, database, settings):
    inbox = (await create(client, workspace, mailbox.body())).json()
    url = f"/v1/inboxes/{inbox['id']}"
    wrong = await client.patch(url, json={"smtp_password": "wrong"}, headers=workspace.headers())
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "smtp_password"
    box = crypto.secret_box(settings)
    assert box.decrypt((await inbox_rows(database))[0]["smtp_password_encrypted"]) == mailbox.smtp_password

    mailbox.smtp.add_user(mailbox.email, "rotated-password")
    right = await client.patch(url, json={"smtp_password": "rotated-password"}, headers=workspace.headers())
    assert right.status_code == 200, right.text
    assert box.decrypt((await inbox_rows(database))[0]["smtp_password_encrypted"]) == "rotated-password"
    # The IMAP password was kept (and still works: the login check used it).
    assert box.decrypt((await inbox_rows(database))[0]["imap_password_encrypted"]) == mailbox.imap_password


async def test_patch_to_working_credentials_reconnects_a_disconnected_inbox(
    client, workspace, mailbox: Mailbox, database
):
    inbox = (await create(client, workspace, mailbox.body())).json()
    mailbox.smtp.add_user(mailbox.email, "changed-on-the-server")
    down = await client.post(f"/v1/inboxes/{inbox['id']}/reconnect", headers=workspace.headers())
    assert down.json()["status"] == "disconnected"
    fixed = await client.patch(
        f"/v1/inboxes/{inbox['id']}",
        json={"smtp_password": "changed-on-the-server"},
        headers=workspace.headers(),
    )
    assert (
        fixed.status_code == 200
        and fixed.json()["status"] == "connected"
        and fixed.json()["last_error"] is None
    )
    assert len(await events_of(database, "inbox.disconnected", inbox["id"])) == 1
    assert len(await events_of(database, "inbox.reconnected", inbox["id"])) == 1


# --- reconnect --------------------------------------------------------------------------------------------


async def test_reconnect_answers_with_the_new_status(client, workspace, mailbox: Mailbox, database):
    inbox = (await create(client, workspace, mailbox.body())).json()
    url = f"/v1/inboxes/{inbox['id']}/reconnect"
    mailbox.smtp.stop()
    down = await client.post(url, headers=workspace.headers())
    assert down.status_code == 200
    assert down.json()["status"] == "disconnected"
    assert down.json()["last_error"].startswith("SMTP server 127.0.0.1:")
    assert down.json()["health_score"] == 18  # 70 × 0.25, rounded half up
    again = await client.post(url, headers=workspace.headers())
    assert again.json()["status"] == "disconnected"
    mailbox.smtp.start()
    up = await client.post(url, headers=workspace.headers())
    assert up.json()["status"] == "connected" and up.json()["last_error"] is None
    disconnected = await events_of(database, "inbox.disconnected", inbox["id"])
    assert len(disconnected) == 1 and disconnected[0].data["side"] == "smtp"
    assert len(await events_of(database, "inbox.reconnected", inbox["id"])) == 1


# --- warmup -----------------------------------------------------------------------------------------------


async def test_warmup_start_and_pause(client, workspace, mailbox: Mailbox):
    inbox = (await create(client, workspace, mailbox.body())).json()
    base = f"/v1/inboxes/{inbox['id']}/warmup"
    paused_early = await client.post(f"{base}/pause", headers=workspace.headers())
    assert paused_early.status_code == 409
    started = (await client.post(f"{base}/start", headers=workspace.headers())).json()
    assert started["warmup_status"] == "active" and started["warmup_started_at"].endswith("Z")
    assert (await client.post(f"{base}/start", headers=workspace.headers())).json() == started  # idempotent
    paused = (await client.post(f"{base}/pause", headers=workspace.headers())).json()
    assert paused["warmup_status"] == "paused"
    assert (await client.post(f"{base}/pause", headers=workspace.headers())).json()[
        "warmup_status"
    ] == "paused"
    resumed = (await client.post(f"{base}/start", headers=workspace.headers())).json()
    assert resumed["warmup_status"] == "active"
    assert resumed["warmup_started_at"] == started["warmup_started_at"]  # resuming keeps the start date
    listed = (await client.get("/v1/inboxes", headers=workspace.headers())).json()["data"][0]
    assert listed["warmup_status"] == "active"


async def test_warmup_needs_a_connected_inbox(client, workspace, mailbox: Mailbox):
    inbox = (await create(client, workspace, mailbox.body())).json()
    mailbox.smtp.stop()
    await client.post(f"/v1/inboxes/{inbox['id']}/reconnect", headers=workspace.headers())
    response = await client.post(f"/v1/inboxes/{inbox['id']}/warmup/start", headers=workspace.headers())
    assert response.status_code == 409 and "connected" in response.json()["error"]["message"]


# --- DELETE -----------------------------------------------------------------------------------------------


async def _campaign(database, workspace, inbox_ids: list[str], status: str = "active") -> str:
    async with database.transaction() as session:
        campaign = Campaign(
            workspace_id=workspace.workspace_id,
            livemode=True,
            name="Q2",
            status=status,
            steps=[],
            daily_limit=100,
            send_window={},
            custom_variables=[],
        )
        session.add(campaign)
        await session.flush()
        for position, inbox_id in enumerate(inbox_ids):
            session.add(CampaignInbox(campaign_id=campaign.id, inbox_id=inbox_id, position=position))
    return campaign.id


async def test_delete_removes_the_inbox_and_its_secrets(client, workspace, mailbox: Mailbox, database):
    inbox = (await create(client, workspace, mailbox.body())).json()
    response = await client.delete(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())
    assert response.status_code == 200 and response.json() == {
        "id": inbox["id"],
        "object": "inbox",
        "deleted": True,
    }
    assert (await client.get(f"/v1/inboxes/{inbox['id']}", headers=workspace.headers())).status_code == 404
    assert await inbox_rows(database) == []


async def test_delete_is_refused_while_an_active_campaign_sends_only_from_it(
    client, workspace, make_mailbox, database
):
    only = (await create(client, workspace, make_mailbox().body())).json()
    campaign_id = await _campaign(database, workspace, [only["id"]])
    refused = await client.delete(f"/v1/inboxes/{only['id']}", headers=workspace.headers())
    assert refused.status_code == 409, refused.text
    assert (
        campaign_id in refused.json()["error"]["message"]
        and "force=true" in refused.json()["error"]["message"]
    )
    assert (await client.get(f"/v1/inboxes/{only['id']}", headers=workspace.headers())).status_code == 200

    forced = await client.delete(f"/v1/inboxes/{only['id']}?force=true", headers=workspace.headers())
    assert forced.status_code == 200
    assert await inbox_rows(database) == []


async def test_delete_is_allowed_when_the_campaign_has_another_connected_inbox_or_is_paused(
    client, workspace, make_mailbox, database
):
    first = (await create(client, workspace, make_mailbox().body())).json()
    second = (await create(client, workspace, make_mailbox("bob").body())).json()
    third = (await create(client, workspace, make_mailbox("cy").body())).json()
    await _campaign(database, workspace, [first["id"], second["id"]])
    await _campaign(database, workspace, [third["id"]], status="paused")
    assert (await client.delete(f"/v1/inboxes/{first['id']}", headers=workspace.headers())).status_code == 200
    assert (await client.delete(f"/v1/inboxes/{third['id']}", headers=workspace.headers())).status_code == 200
    # Now the active campaign's last inbox: refused.
    assert (
        await client.delete(f"/v1/inboxes/{second['id']}", headers=workspace.headers())
    ).status_code == 409


async def test_health_score_drops_when_disconnected(client, workspace, mailbox: Mailbox, database):
    inbox = (await create(client, workspace, mailbox.body())).json()
    mailbox.smtp.stop()
    await client.post(f"/v1/inboxes/{inbox['id']}/reconnect", headers=workspace.headers())
    listed = (await client.get("/v1/inboxes", headers=workspace.headers())).json()["data"][0]
    assert listed["status"] == "disconnected" and listed["health_score"] < 70
    stored = await load_inbox(database, inbox["id"])
    assert stored.last_error_side == "smtp"
