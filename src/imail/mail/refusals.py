"""What an SMTP refusal during submission means for the email and for the inbox that sent it. No database.

- `throttled`: the server asks this sender to slow down: any 421, and a 4.7.x that is not greylisting. The
inbox
  backs off; the email waits for it, not counted as an attempt.
- `greylisted`: 450/451 greylisting (wording, or the classic `451 4.7.1`): retried after a delay.
- `retry`: any other 4xx: retried after a delay, a bounded number of times.
- `hard_bounce`: a recipient refused at RCPT with a permanent status (5.1.1 unknown user…): bounced at once.
- `soft_bounce`: a recipient refused at RCPT for something that may pass (5.2.2 / 552 mailbox full): retried.
- `policy`: a 5.7.x (policy, spam, authentication) refusal of a recipient: not the address's fault, so no
  suppression; the email fails.
- `failed`: a 5xx for the sender or the data: the email fails, nothing is suppressed.

Hard and soft are told apart as delivery reports are (imail.mail.bounces.classify).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from imail.mail.bounces import SoftCategory, classify

RefusalKind = Literal["throttled", "greylisted", "retry", "hard_bounce", "soft_bounce", "policy", "failed"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    status_code: str | None  # the enhanced status, e.g. "4.7.0"
    category: SoftCategory | None = None


def enhanced_status(text: str) -> str | None:
    match = _ENHANCED.match(text or "")
    return ".".join(match.groups()) if match else None


def classify_refusal(code: int | None, text: str, recipient_refused: bool) -> Refusal:
    """`text` is the server's reply after the code ("4.7.0 Try again later"); `recipient_refused`: at RCPT."""
    status = enhanced_status(text)
    if code == 421:
        return Refusal("throttled", status)
    if code is not None and 400 <= code < 500:
        _, category = classify(status, code, text, None)
        if category == "greylisted":
            return Refusal("greylisted", status, category)
        if status is not None and status.startswith("4.7."):
            return Refusal("throttled", status, category)
        return Refusal("retry", status, category)
    if not recipient_refused:
        return Refusal("failed", status)
    kind, category = classify(status, code, text, None)
    if kind == "hard":
        return Refusal("hard_bounce", status)
    if category == "policy":
        return Refusal("policy", status, category)
    return Refusal("soft_bounce", status, category)
