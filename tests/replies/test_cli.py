"""`imail replies classify`, run as an operator would: one message on stdin, JSON on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MESSAGES = Path(__file__).resolve().parents[1] / "data" / "messages"


@pytest.fixture
def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IMAIL_")}


def classify(data: bytes, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imail.cli", "replies", "classify", *args],
        input=data,
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_latin1_message(cli_env, tmp_path):
    raw = (MESSAGES / "reply_latin1_de.eml").read_bytes()
    assert b"best\xe4tigt" in raw  # really Latin-1 on the wire
    done = classify(raw, cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"label": "meeting_booked", "confidence": 0.95, "auto_reply": False}
    assert list(tmp_path.iterdir()) == []  # classifying writes nothing (no database, no key file)


def test_plain_text(cli_env, tmp_path):
    done = classify("Merci, mais ça ne nous intéresse pas.\n".encode(), cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert set(body) == {"label", "confidence", "auto_reply"}
    assert body["label"] == "not_interested" and body["auto_reply"] is False
    assert 0 < body["confidence"] <= 1


def test_out_of_office_auto_reply_with_explanation(cli_env, tmp_path):
    done = classify((MESSAGES / "ooo_de_abwesenheit.eml").read_bytes(), cli_env, tmp_path, "--explain")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert (body["label"], body["auto_reply"], body["source"]) == ("out_of_office", True, "auto_reply")
    assert body["return_date"] == "2026-12-15"
    assert "header auto-submitted: auto-replied" in body["auto_reply_signals"]
    assert body["from_email"] == "joerg.mueller@beispiel.example"


def test_a_bounce_is_explained_as_one(cli_env, tmp_path):
    done = classify((MESSAGES / "dsn_postfix_511.eml").read_bytes(), cli_env, tmp_path, "--explain")
    body = json.loads(done.stdout)
    assert body["auto_reply"] is True and body["source"] == "bounce"
    assert body["bounce"]["kind"] == "hard" and body["bounce"]["status_code"] == "5.1.1"


def test_empty_stdin_is_an_error(cli_env, tmp_path):
    done = classify(b"", cli_env, tmp_path)
    assert done.returncode == 1 and done.stdout == b""
    assert b"nothing on stdin" in done.stderr


def test_garbage_bytes_still_get_an_answer(cli_env, tmp_path):
    done = classify(bytes(range(256)) * 4, cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] == "neutral"


def test_bad_setting_exits_2(cli_env, tmp_path):
    done = classify(b"hello", {**cli_env, "IMAIL_CLASSIFIER_URL": "http://127.0.0.1:9/v1"}, tmp_path)
    assert done.returncode == 2 and b"IMAIL_CLASSIFIER_MODEL" in done.stderr


def test_configured_endpoint_answers_and_failures_log_to_stderr(cli_env, tmp_path, completions_server):
    env = {**cli_env, "IMAIL_CLASSIFIER_URL": completions_server.url, "IMAIL_CLASSIFIER_MODEL": "tiny-model"}
    completions_server.answer('{"label": "wrong_person", "confidence": 0.66}')
    done = classify(b"Hmm, this one is for my colleague I think.", env, tmp_path)
    assert json.loads(done.stdout) == {"label": "wrong_person", "confidence": 0.66, "auto_reply": False}
    assert (
        completions_server.requests[0]["body"]["messages"][1]["content"]
        == "Hmm, this one is for my colleague I think."
    )

    completions_server.fail(500)
    done = classify(b"Sounds good, can you send pricing for ten seats?", env, tmp_path)
    assert done.returncode == 0
    assert json.loads(done.stdout)["label"] == "interested"  # the local model, and stdout is still only JSON
    assert b"classifier endpoint failed" in done.stderr
