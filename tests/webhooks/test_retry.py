"""The retry schedule and the signatures, as pure functions (no database, no sleeping)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from imail.config import Settings
from imail.webhooks.retry import next_attempt_at, parse_retry_after
from imail.webhooks.signing import imail_signature, new_secret, signed_headers, standard_key

EVENT_AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEADLINE = EVENT_AT + timedelta(hours=24)
DEFAULT = Settings(secret_key="x" * 40).webhooks_retry_schedule


def walk(schedule, rand, failure_delay=timedelta(0)):
    """Fail every attempt: the times at which attempts happen, from the event to giving up."""
    times = [EVENT_AT]
    while True:
        nxt = next_attempt_at(len(times), times[-1] + failure_delay, DEADLINE, schedule, 0.1, None, rand)
        if nxt is None:
            return times
        times.append(nxt)


def test_the_default_schedule_is_svix_like_then_a_final_attempt_at_24h():
    assert DEFAULT == [5, 300, 1800, 7200, 18000, 36000]
    times = walk(DEFAULT, rand=lambda: 0.5)  # no jitter
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert gaps[:6] == [5, 300, 1800, 7200, 18000, 36000]
    assert times[-1] == DEADLINE
    assert len(times) == 8  # the first attempt, six retries, the final one at 24 h


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.9), (1.0, 1.1), (0.25, 0.95)])
def test_jitter_is_within_ten_percent(rand, factor):
    nxt = next_attempt_at(2, EVENT_AT, DEADLINE, DEFAULT, 0.1, None, lambda: rand)
    assert nxt == EVENT_AT + timedelta(seconds=300 * factor)


def test_jitter_spreads_retries():
    import random

    rng = random.Random(7)
    delays = {
        (next_attempt_at(1, EVENT_AT, DEADLINE, [100.0], 0.1, None, rng.random) - EVENT_AT).total_seconds()
        for _ in range(200)
    }
    assert min(delays) >= 90 and max(delays) <= 110 and len(delays) > 150


def test_retry_after_is_never_undercut_but_cannot_pass_the_deadline():
    at = EVENT_AT + timedelta(hours=1)
    assert next_attempt_at(1, at, DEADLINE, DEFAULT, 0, 600.0) == at + timedelta(seconds=600)
    assert next_attempt_at(4, at, DEADLINE, DEFAULT, 0, 1.0) == at + timedelta(
        seconds=7200
    )  # schedule is later
    assert next_attempt_at(1, at, DEADLINE, DEFAULT, 0, 10 * 86400.0) == DEADLINE
    assert (
        next_attempt_at(9, at, DEADLINE, DEFAULT, 0, 60.0) == DEADLINE
    )  # past the schedule: the final attempt


def test_an_attempt_at_or_after_the_deadline_is_the_last():
    assert next_attempt_at(1, DEADLINE, DEADLINE, DEFAULT) is None
    assert next_attempt_at(3, DEADLINE + timedelta(hours=5), DEADLINE, DEFAULT) is None
    # Late in the day, the next retry is clamped to the deadline rather than skipped.
    late = DEADLINE - timedelta(minutes=1)
    assert next_attempt_at(5, late, DEADLINE, DEFAULT, 0) == DEADLINE


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Mon, 01 Jun 2026 12:02:00 GMT", 120.0),
        ("Mon, 01 Jun 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_parsing(header, seconds):
    assert parse_retry_after(header, EVENT_AT) == seconds


def test_signatures_match_an_independent_computation():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    body = b'{"id":"evt_1","type":"email.sent"}'
    headers = signed_headers(secret, standard_key(secret), "evt_1", "email.sent", 1767225600, body)
    assert headers["X-Imail-Signature"] == hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Imail-Signature"] == imail_signature(secret, body)
    expected = base64.b64encode(
        hmac.new(base64.b64decode(secret[6:]), b"evt_1.1767225600." + body, hashlib.sha256).digest()
    ).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("evt_1", "1767225600")
    assert headers["X-Imail-Event-Id"] == "evt_1" and headers["X-Imail-Event-Type"] == "email.sent"


def test_schedule_setting_rejects_nonsense():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(secret_key="x" * 40, webhooks_retry_schedule=[])
    with pytest.raises(ValidationError):
        Settings(secret_key="x" * 40, webhooks_retry_schedule=[5, 0])
