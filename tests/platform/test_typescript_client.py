"""A TypeScript client generated from the committed openapi.json, as a TypeScript user would make one:
openapi-typescript with its default options for the types, openapi-fetch for the calls, `tsc --strict` with no
hand edits. tests/typescript/src/flow.ts drives the whole flow against a real `imail serve` on a loopback
port: an inbox on the loopback SMTP (aiosmtpd) and IMAP (Dovecot) servers, a campaign created without the
fields the server defaults (which must type-check), bulk leads, resume, every lead through cursor pagination,
campaign analytics and the funnel after the sending worker sent, a webhook and its test delivery. The README's
TypeScript example is compiled with it.

The npm packages are pinned in tests/typescript/package-lock.json; `npm ci` runs only when it changed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from imail.db import Database
from imail.workers import webhooks as webhooks_worker
from tests.fixtures.api_servers import api_servers
from tests.fixtures.certs import CertPair
from tests.fixtures.client_flow import create_workspace, send_all_due, worker
from tests.fixtures.imap import DovecotServer, dovecot, dovecot_session  # noqa: F401
from tests.fixtures.services import missing_service
from tests.fixtures.smtp import SmtpServer, smtp_server, tls_cert  # noqa: F401
from tests.fixtures.webhook_receiver import Receiver
from tests.inboxes.conftest import Mailbox, make_mailbox  # noqa: F401

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "tests" / "typescript"
BIN = PROJECT / "node_modules" / ".bin"
LEADS = [f"{name}@example.org" for name in ("ana", "bob", "cy", "dee", "eve")]  # three pages of two
STEP_TIMEOUT = 120.0  # a deadline for a hung flow, not a speed check


def _run(*command: str | Path, timeout: float = 300) -> None:
    result = subprocess.run(
        [str(c) for c in command], check=False, cwd=PROJECT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(map(str, command))}:\n{result.stdout}\n{result.stderr}"


def _install() -> None:
    """`npm ci` when node_modules was not installed from this very lock file."""
    digest = hashlib.sha256((PROJECT / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = PROJECT / "node_modules" / f".installed-{digest}"
    if stamp.exists():
        return
    _run("npm", "ci", "--no-audit", "--no-fund")
    stamp.touch()


def _readme_example() -> str:
    """The README's TypeScript example (API conventions), which imports the types from `./imail.js`."""
    blocks = re.findall(
        r"^( *)```ts\n(.*?)^\1```", (REPO / "README.md").read_text(), re.DOTALL | re.MULTILINE
    )
    assert len(blocks) == 1, "the README has one TypeScript example"
    return textwrap.dedent(blocks[0][1])


@pytest.fixture(scope="module")
def compiled_flow() -> Path:
    """tests/typescript built from types generated now from openapi.json, with the README's example beside
    them so it type-checks too: the flow's entry point, to run with node."""
    if not (shutil.which("node") and shutil.which("npm")):
        missing_service("Node.js and npm (the generated TypeScript client)")
    _install()
    shutil.rmtree(PROJECT / "build", ignore_errors=True)
    shutil.rmtree(PROJECT / "src" / "generated", ignore_errors=True)
    _run(BIN / "openapi-typescript", REPO / "openapi.json", "--output", "src/generated/imail.ts")
    (PROJECT / "src" / "generated" / "readme_example.ts").write_text(_readme_example())
    _run(BIN / "tsc", "--strict")  # noEmitOnError: a type error leaves nothing to run
    return PROJECT / "build" / "flow.js"


async def _read_step(flow: asyncio.subprocess.Process, step: str) -> dict[str, Any]:
    assert flow.stdout is not None
    line = await asyncio.wait_for(flow.stdout.readline(), STEP_TIMEOUT)
    if not line:
        assert flow.stderr is not None
        await flow.wait()
        pytest.fail(
            f"flow exited with {flow.returncode} before `{step}`:\n{(await flow.stderr.read()).decode()}"
        )
    message = json.loads(line)
    assert message["step"] == step, message
    return message


async def test_a_whole_flow_through_the_generated_typescript_client(
    compiled_flow: Path,
    database: Database,  # empties the tables first
    database_url: str,
    tls_cert: CertPair,  # noqa: F811
    smtp_server: SmtpServer,  # noqa: F811
    make_mailbox,  # noqa: F811
) -> None:
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
            async with worker(database_url, tls_cert) as ctx:
                flow = await asyncio.create_subprocess_exec(
                    "node",
                    str(compiled_flow),
                    cwd=PROJECT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env={
                        **os.environ,
                        "IMAIL_URL": server.base_url,
                        "IMAIL_API_KEY": keys["live_key"],
                        "IMAIL_LEADS": ",".join(LEADS),
                        "MAILBOX_EMAIL": mailbox.email,
                        "SMTP_PORT": str(mailbox.smtp.port),
                        "SMTP_PASSWORD": mailbox.smtp_password,
                        "IMAP_PORT": str(mailbox.imap.port),
                        "IMAP_PASSWORD": mailbox.imap_password,
                        "WEBHOOK_URL": receiver.url(),
                    },
                )
                try:
                    resumed = await _read_step(flow, "resumed")
                    assert resumed["pages"] == 3

                    await send_all_due(ctx)
                    delivered = smtp_server.wait_for_messages(len(LEADS))
                    assert sorted(m.envelope_to[0] for m in delivered) == sorted(LEADS)
                    assert flow.stdin is not None
                    flow.stdin.write(b"sent\n")
                    await flow.stdin.drain()

                    done = await _read_step(flow, "done")
                    assert await asyncio.wait_for(flow.wait(), STEP_TIMEOUT) == 0
                finally:
                    if flow.returncode is None:
                        flow.kill()
                        await flow.wait()

                await webhooks_worker.deliver_webhooks(ctx)
                await receiver.wait_for(lambda: len(receiver.requests) == 1, timeout=10)
                assert receiver.requests[0].event_id == done["webhook_event_id"]
    finally:
        await receiver.close()
