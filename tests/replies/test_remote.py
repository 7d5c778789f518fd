"""The optional OpenAI-compatible endpoint, against a real loopback HTTP server; every failure falls back."""

from __future__ import annotations

import httpx
import pytest

from imail.config import Settings, SettingsError, load_settings
from imail.replies.remote import RemoteClassifier, RemoteClassifierError, classify_reply, parse_answer
from tests.fixtures.api_servers import closed_port

INTERESTED_TEXT = "Sounds good, can you send pricing for ten seats?"


def settings_for(url: str | None, **extra) -> Settings:
    return Settings(classifier_url=url, classifier_model="tiny-model" if url else None, **extra)


async def test_the_endpoint_answers(completions_server):
    completions_server.answer('{"label": "meeting_booked", "confidence": 0.81}')
    settings = settings_for(completions_server.url, classifier_api_key="sk-test")
    result = await classify_reply(INTERESTED_TEXT, settings)
    assert (result.label, result.confidence, result.source) == ("meeting_booked", 0.81, "remote")
    [request] = completions_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "tiny-model" and body["temperature"] == 0
    assert body["messages"][0]["role"] == "system" and "unsubscribe_request" in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": INTERESTED_TEXT}


async def test_a_shared_client_is_used_when_given(completions_server):
    completions_server.answer('```json\n{"label": "Not Interested", "confidence": "0.7"}\n```')
    async with httpx.AsyncClient() as client:
        result = await classify_reply(INTERESTED_TEXT, settings_for(completions_server.url), client=client)
    assert (result.label, result.confidence, result.source) == ("not_interested", 0.7, "remote")
    assert "Authorization" not in completions_server.requests[0]["headers"]


async def test_rules_decide_before_the_endpoint(completions_server):
    result = await classify_reply("Please unsubscribe me.", settings_for(completions_server.url))
    assert (result.label, result.source) == ("unsubscribe_request", "rules")
    assert completions_server.requests == []


async def test_empty_text_never_calls_the_endpoint(completions_server):
    result = await classify_reply("  ", settings_for(completions_server.url))
    assert result.label == "neutral" and completions_server.requests == []


@pytest.mark.parametrize(
    "script",
    [
        ("fail", 500),
        ("fail", 401),
        ("raw", b"<html>not json</html>"),
        ("raw", b'{"choices": []}'),
        ("answer", "I think this person is interested!"),
        ("answer", '{"label": "maybe", "confidence": 0.9}'),
        ("answer", '["interested"]'),
    ],
)
async def test_bad_answers_fall_back_to_the_local_model(completions_server, script):
    getattr(completions_server, script[0])(script[1])
    result = await classify_reply(INTERESTED_TEXT, settings_for(completions_server.url))
    assert (result.label, result.source) == ("interested", "model")
    assert len(completions_server.requests) == 1


async def test_a_hanging_endpoint_times_out_and_falls_back(completions_server):
    completions_server.hang()
    settings = settings_for(completions_server.url, classifier_timeout=0.3)
    result = await classify_reply(INTERESTED_TEXT, settings)
    # The local model's answer: the endpoint's own (held back until teardown) never came.
    assert (result.label, result.source) == ("interested", "model")


async def test_nothing_listening_falls_back():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = await classify_reply(INTERESTED_TEXT, settings_for(url, classifier_timeout=2.0))
    assert (result.label, result.source) == ("interested", "model")


async def test_remote_errors_are_typed(completions_server):
    completions_server.fail(503)
    remote = RemoteClassifier(completions_server.url, "tiny-model", timeout=2.0)
    with pytest.raises(RemoteClassifierError, match="HTTP 503"):
        await remote.classify("hello")


async def test_without_settings_the_local_model_answers():
    result = await classify_reply(INTERESTED_TEXT, Settings())
    assert result.source == "model" and result.label == "interested"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1/chat/completions"),
        ("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1/chat/completions"),
        ("https://llm.example/v1/chat/completions", "https://llm.example/v1/chat/completions"),
    ],
)
def test_endpoint_url(url, expected):
    assert RemoteClassifier(url, "m").url == expected


def completion(content) -> bytes:
    import json

    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


@pytest.mark.parametrize(
    ("content", "label", "confidence"),
    [
        ('{"label": "neutral", "confidence": 0.4}', "neutral", 0.4),
        ('Sure: {"label": "wrong-person"}', "wrong_person", 0.5),  # no confidence: 0.5
        ('{"label": "interested", "confidence": 7}', "interested", 1.0),  # clamped
        ('{"label": "interested", "confidence": -1}', "interested", 0.0),
        ('{"label": "interested", "confidence": "high"}', "interested", 0.5),
        ('{"label": "interested", "confidence": NaN}', "interested", 0.5),
    ],
)
def test_parse_answer(content, label, confidence):
    result = parse_answer(completion(content))
    assert (result.label, result.confidence) == (label, confidence)


@pytest.mark.parametrize(
    "body", [b"", b"null", b'{"choices": [{"message": {"content": null}}]}', completion("{}")]
)
def test_parse_answer_rejects(body):
    with pytest.raises(RemoteClassifierError):
        parse_answer(body)


def test_settings_need_a_model_with_a_url(monkeypatch):
    monkeypatch.setenv("IMAIL_CLASSIFIER_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(SettingsError, match="IMAIL_CLASSIFIER_MODEL: must be set"):
        load_settings()
    monkeypatch.setenv("IMAIL_CLASSIFIER_URL", "ftp://127.0.0.1/v1")
    monkeypatch.setenv("IMAIL_CLASSIFIER_MODEL", "m")
    with pytest.raises(SettingsError, match="IMAIL_CLASSIFIER_URL: must start with http"):
        load_settings()
    monkeypatch.setenv("IMAIL_CLASSIFIER_URL", "http://127.0.0.1:9/v1")
    assert load_settings().classifier_model == "m"


async def test_the_local_unsubscribe_reading_suppresses_even_when_the_endpoint_says_otherwise(
    completions_server,
):
    completions_server.answer('{"label": "interested", "confidence": 0.9}')
    text = "Purge my address from your database."  # no phrase rule; the local model reads an opt-out
    result = await classify_reply(text, settings_for(completions_server.url))
    assert (result.label, result.source, result.unsubscribe) == ("interested", "remote", True)
    plain = await classify_reply(INTERESTED_TEXT, settings_for(completions_server.url))
    assert (plain.label, plain.unsubscribe) == ("interested", False)
