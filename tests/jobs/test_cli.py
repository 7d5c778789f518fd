"""`imail leads import FILE`: the same job as a big upload, run by the command with a progress bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import func, select

from imail.models import Lead
from tests.conftest import TEST_SECRET
from tests.fixtures.outreach import create_campaign


def imail(*args: str, database_url: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")}
    env.update(IMAIL_DATABASE_URL=database_url, IMAIL_SECRET_KEY=TEST_SECRET, IMAIL_JOBS_CHUNK_ROWS="4")
    return subprocess.run(
        [sys.executable, "-m", "imail.cli", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


async def test_import_with_progress(client, workspace, database, database_url, tmp_path):
    campaign = await create_campaign(client, workspace.headers(), [])
    path = tmp_path / "leads.csv"
    path.write_text(
        "Email,First Name\n" + "".join(f"c{i}@example.com,C{i}\n" for i in range(10)) + "oops,X\n"
    )
    args = ("leads", "import", str(path), "--campaign", campaign["id"], "--workspace", workspace.workspace_id)

    ran = imail(*args, database_url=database_url, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "created" in ran.stdout and "10 created" in ran.stdout and "1 invalid" in ran.stdout
    assert "importing: 11/11 rows" in ran.stderr  # progress on stderr (a line per tenth when not a terminal)
    assert "line 12: invalid" in ran.stderr
    async with database.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Lead))).scalar_one() == 10

    job_id = ran.stdout.split(":")[0]
    listed = (await client.get(f"/v1/jobs/{job_id}", headers=workspace.headers())).json()
    assert listed["status"] == "succeeded" and listed["progress"] == {"done": 11, "total": 11}

    queued = imail(*args, "--background", "--json", database_url=database_url, cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["status"] == "queued"

    wrong = imail(
        "leads",
        "import",
        str(path),
        "--campaign",
        campaign["id"],
        "--workspace",
        "ws_nope",
        database_url=database_url,
        cwd=tmp_path,
    )
    assert wrong.returncode == 1 and "campaign_id: no campaign" in wrong.stderr
