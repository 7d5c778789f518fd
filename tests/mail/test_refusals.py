"""What an SMTP refusal at submission means (imail.mail.refusals): the answers real MTAs give."""

from __future__ import annotations

import pytest

from imail.mail.refusals import classify_refusal


@pytest.mark.parametrize(
    ("code", "text", "at_rcpt", "kind", "status"),
    [
        (421, "4.7.0 Try again later, closing connection.", True, "throttled", "4.7.0"),
        (421, "Too many concurrent SMTP connections", False, "throttled", None),
        (450, "4.7.28 Sending rate for this sender exceeded", True, "throttled", "4.7.28"),
        (451, "4.7.1 Greylisted, please try again later", True, "greylisted", "4.7.1"),
        (450, "4.2.0 Greylisted, see https://postgrey.schweikert.ch/help", True, "greylisted", "4.2.0"),
        (451, "4.3.0 Temporary lookup failure", True, "retry", "4.3.0"),
        (
            550,
            "5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
            True,
            "hard_bounce",
            "5.1.1",
        ),
        (552, "5.2.2 <full@example.net>: Mailbox full", True, "soft_bounce", "5.2.2"),
        (550, "5.7.1 Message rejected as spam", True, "policy", "5.7.1"),
        (554, "5.7.1 <ana@example.com>: Sender address rejected: Access denied", False, "failed", "5.7.1"),
        (552, "5.3.4 Message size exceeds fixed limit", False, "failed", "5.3.4"),
    ],
)
def test_refusals(code, text, at_rcpt, kind, status):
    refusal = classify_refusal(code, text, at_rcpt)
    assert (refusal.kind, refusal.status_code) == (kind, status)
