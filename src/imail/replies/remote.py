"""An optional OpenAI-compatible chat-completions endpoint in place of the local reply model.

Set `IMAIL_CLASSIFIER_URL` (the API base, e.g. `http://127.0.0.1:11434/v1`; `/chat/completions` is appended
unless the URL already ends with it), `IMAIL_CLASSIFIER_MODEL`, and if the server wants one
`IMAIL_CLASSIFIER_API_KEY`. The phrase rules still decide first (an unsubscribe request never depends on a
remote service); the endpoint replaces the local model, though the local model's unsubscribe reading still
suppresses (the safety net in `imail.replies.classifier`). Any failure — connection refused, timeout
(`IMAIL_CLASSIFIER_TIMEOUT`, for the whole exchange), an HTTP error, an answer that is not JSON or names an
unknown label — falls back to the local model.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import replace

import httpx
import structlog

from imail.config import Settings
from imail.mail.parsing import fold
from imail.mail.reply_rules import rule_label
from imail.replies.classifier import (
    LABELS,
    MAX_TEXT_CHARS,
    Classification,
    ReplyClassifier,
    default_classifier,
)

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You classify replies to cold sales emails. Answer with one JSON object and nothing else: "
    '{"label": "<label>", "confidence": <number between 0 and 1>}. Labels: '
    "interested (wants to learn more, talk, see a demo or pricing), "
    "not_interested (declines), "
    "meeting_booked (a meeting is booked, scheduled or an invite accepted), "
    "out_of_office (away, on leave, will reply later because absent), "
    "wrong_person (not the right contact, left the company, points to someone else), "
    "unsubscribe_request (asks to stop emailing or to be removed), "
    "neutral (anything else: acknowledgements, questions about who you are). "
    "The reply may be in any language."
)
DEFAULT_CONFIDENCE = 0.5  # when the endpoint names a label but no confidence


class RemoteClassifierError(Exception):
    """The endpoint could not give a usable answer (the caller falls back to the local model)."""


class RemoteClassifier:
    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteClassifier | None:
        if not settings.classifier_url or not settings.classifier_model:
            return None
        return cls(
            settings.classifier_url,
            settings.classifier_model,
            settings.classifier_api_key,
            settings.classifier_timeout,
        )

    async def classify(self, text: str, client: httpx.AsyncClient | None = None) -> Classification:
        """Ask the endpoint; raise RemoteClassifierError on anything but a well-formed answer."""
        try:
            return await asyncio.wait_for(self._classify(text, client), timeout=self.timeout)
        except RemoteClassifierError:
            raise
        except TimeoutError as exc:
            raise RemoteClassifierError(f"no answer within {self.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise RemoteClassifierError(f"{type(exc).__name__}: {exc}") from exc

    async def _classify(self, text: str, client: httpx.AsyncClient | None) -> Classification:
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": text[:MAX_TEXT_CHARS]},
            ],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        if client is None:
            async with httpx.AsyncClient(timeout=self.timeout) as own:
                response = await own.post(self.url, json=body, headers=headers)
        else:
            response = await client.post(self.url, json=body, headers=headers, timeout=self.timeout)
        if response.status_code != 200:
            raise RemoteClassifierError(f"HTTP {response.status_code}")
        return parse_answer(response.content)


def parse_answer(content: bytes | str) -> Classification:
    """A chat-completions response body → Classification, or RemoteClassifierError."""
    try:
        message = json.loads(content)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RemoteClassifierError("not a chat-completions response") from exc
    if not isinstance(message, str):
        raise RemoteClassifierError("the answer has no text content")
    found = re.search(r"\{.*\}", message, re.DOTALL)
    try:
        answer = json.loads(found.group(0) if found else message)
    except ValueError as exc:
        raise RemoteClassifierError("the answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise RemoteClassifierError("the answer is not a JSON object")
    label = str(answer.get("label", "")).strip().lower().replace(" ", "_").replace("-", "_")
    if label not in LABELS:
        raise RemoteClassifierError(f"unknown label {label!r}")
    raw_confidence = answer.get("confidence", DEFAULT_CONFIDENCE)
    try:
        confidence = float(raw_confidence)
    except (TypeError, ValueError):
        confidence = DEFAULT_CONFIDENCE
    if math.isnan(confidence):
        confidence = DEFAULT_CONFIDENCE
    return Classification(label, round(min(1.0, max(0.0, confidence)), 4), "remote")


async def classify_reply(
    text: str,
    settings: Settings | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    local: ReplyClassifier | None = None,
) -> Classification:
    """Rules, then the configured endpoint if any, else (or on any failure) the local model."""
    local = local or default_classifier()
    remote = RemoteClassifier.from_settings(settings) if settings is not None else None
    text = (text or "").strip()
    if remote is None or not text:
        return local.classify(text)
    decided = rule_label(fold(text[:MAX_TEXT_CHARS]))
    if decided:
        return local.classify(text)
    try:
        answer = await remote.classify(text, client)
    except RemoteClassifierError as exc:
        log.warning("classifier endpoint failed, using the local model", url=remote.url, error=str(exc))
        return local.classify(text, use_rules=False)
    except Exception as exc:  # never let the optional endpoint break inbound processing
        log.warning("classifier endpoint failed, using the local model", url=remote.url, error=repr(exc))
        return local.classify(text, use_rules=False)
    # The unsubscribe safety net never depends on the endpoint: the local model's reading counts too.
    opt_out = answer.label == "unsubscribe_request" or local.classify(text, use_rules=False).unsubscribe
    return replace(answer, unsubscribe=opt_out)
