"""Which step a lead gets next and how it reads: pure functions over the campaign's stored steps.

Steps are the normalized dicts the campaigns domain stores (subject, body, delay {amount, unit}, variants
[{label, subject, body, weight}], branches [{condition, next_step}]); `next_step` in a branch is 1-based.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from imail.sending.schedule import Window

UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}
END = -1


@dataclass(frozen=True)
class Behaviour:
    """What the lead did with the previous step's email."""

    opened: bool
    clicked: bool


def step_delay(step: dict[str, Any]) -> timedelta:
    delay = step.get("delay") or {}
    return timedelta(minutes=int(delay.get("amount", 0)) * UNIT_MINUTES[delay.get("unit", "days")])


def after_branches(steps: list[dict[str, Any]], previous_index: int, behaviour: Behaviour) -> int:
    """The 0-based step to send after `previous_index`, judged on the lead's behaviour; END to stop.
    The first branch whose condition holds wins; with none, the sequence goes on in order."""
    conditions = {
        "opened": behaviour.opened,
        "clicked": behaviour.clicked,
        "not_opened": not behaviour.opened,
        "not_clicked": not behaviour.clicked,
    }
    for branch in steps[previous_index].get("branches") or []:
        if conditions.get(branch.get("condition"), False):
            target = branch.get("next_step")
            return END if target is None else int(target) - 1
    following = previous_index + 1
    return following if following < len(steps) else END


def choose_variant(step: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """An A/B variant picked by weight (None when the step has none)."""
    variants = step.get("variants") or []
    if not variants:
        return None
    return rng.choices(variants, weights=[max(1, int(v.get("weight", 1))) for v in variants], k=1)[0]


def content(step: dict[str, Any], variant: dict[str, Any] | None) -> tuple[str | None, str]:
    """(subject template or None, body template) for a step and its chosen variant."""
    subject = step.get("subject")
    body = step.get("body") or ""
    if variant is not None:
        if variant.get("subject") is not None:
            subject = variant["subject"]
        if variant.get("body") is not None:
            body = variant["body"]
    return subject, body


def reply_subject(first_subject: str) -> str:
    """A follow-up without its own subject replies in the first email's thread."""
    return first_subject if first_subject.lower().startswith("re:") else f"Re: {first_subject}"


def window_for(send_window: dict[str, Any], lead_timezone: str | None) -> Window:
    zone = send_window.get("timezone", "lead")
    if zone == "lead":
        zone = lead_timezone or "UTC"
    return Window.of(
        zone,
        send_window.get("days") or ["mon", "tue", "wed", "thu", "fri"],
        send_window.get("start", "09:00"),
        "23:59:59.999999" if send_window.get("end") == "24:00" else send_window.get("end", "17:00"),
    )
