"""What warmup emails look like and how they are recognised: short plain-text notes between colleagues, each
carrying this deployment's marker header and its filter tag (a short word a user can filter on, as Instantly's
`warmup_custom_ftag`). Pure apart from the random source it is given."""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from functools import lru_cache

from imail.config import Settings
from imail.mail.mime import Outbound, build, domain_of, make_message_id
from imail.sending.sequence import reply_subject

HEADER = "X-Imail-Warmup"

SUBJECTS = (
    "Quick sync this week?",
    "Notes from today",
    "Following up on the plan",
    "Catching up",
    "Thoughts on the draft",
    "Next steps",
    "Checking in",
    "Agenda for Thursday",
    "A small update",
    "Question about the timeline",
    "Re-thinking the schedule",
    "Lunch next week?",
    "The numbers you asked for",
    "Idea for the team offsite",
)
OPENINGS = ("Hi", "Hello", "Hey", "Good morning", "Hi there")
BODIES = (
    (
        "I went through the notes from our last call and everything looks on track. Let me know if anything "
        "changed on "
        "your side."
    ),
    "Do you have twenty minutes later this week to go over the plan? Tuesday or Wednesday afternoon works "
    "for me.",
    "Just wanted to share a quick update: the first part is done and I am starting on the second today.",
    "I had a thought about the schedule we discussed. Could we move the review a few days earlier?",
    "Thanks again for your help last week, it made a real difference. Happy to return the favour any time.",
    "Could you send me the latest version when you get a chance? I want to make sure we are looking at the "
    "same one.",
    "I spoke with the team and they are happy with the direction. We can go ahead whenever you are ready.",
)
REPLIES = (
    "Thanks for the note, that works for me.",
    "Sounds good, let's do that.",
    "Great, thanks for the update!",
    "Sure, happy to help. I'll get back to you shortly.",
    "Perfect, talk soon.",
    "Good idea, I agree.",
    "Thanks! I'll take a look today.",
)
CLOSINGS = ("Best", "Thanks", "Cheers", "Kind regards", "Talk soon")


@lru_cache(maxsize=8)
def _derived(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"imail-warmup-{purpose}".encode(), hashlib.sha256).digest()


def marker(settings: Settings) -> str:
    """The X-Imail-Warmup value of this deployment: IMAIL_WARMUP_MARKER, else derived from the secret key (so
    two deployments never take each other's warmup mail for their own)."""
    return settings.warmup_marker or _derived(settings.resolved_secret_key(), "marker").hex()[:24]


def tag(settings: Settings) -> str:
    """The short filter tag in every warmup email's body: IMAIL_WARMUP_TAG, else derived from the secret
    key."""
    if settings.warmup_tag:
        return settings.warmup_tag
    digest = _derived(settings.resolved_secret_key(), "tag")
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "W" + "".join(alphabet[b % len(alphabet)] for b in digest[:6])


def should_reply(message_id_header: str, reply_rate: float) -> bool:
    """Whether the recipient answers this warmup email: a stable draw per message, true for a `reply_rate`
    share."""
    draw = int.from_bytes(hashlib.sha256(message_id_header.encode()).digest()[:4], "big") / 2**32
    return draw < reply_rate


def _first_name(name: str, email: str) -> str:
    return (name.split() or [email.split("@")[0].split(".")[0].capitalize()])[0]


@dataclass(frozen=True)
class Party:
    email: str
    name: str


@dataclass(frozen=True)
class Composed:
    subject: str
    message_id_header: str
    data: bytes


def _message(
    sender: Party,
    recipient: Party,
    subject: str,
    text: str,
    settings: Settings,
    in_reply_to: str | None = None,
) -> Composed:
    header = make_message_id(domain_of(sender.email))
    outbound = Outbound(
        from_email=sender.email,
        from_name=sender.name,
        to_email=recipient.email,
        to_name=recipient.name,
        subject=subject,
        text=text,
        message_id=header,
        in_reply_to=in_reply_to,
        references=[in_reply_to] if in_reply_to else [],
        headers={HEADER: marker(settings)},
    )
    return Composed(subject, header, bytes(build(outbound)))


def first_email(sender: Party, recipient: Party, settings: Settings, rng: random.Random) -> Composed:
    subject = rng.choice(SUBJECTS)
    text = (
        f"{rng.choice(OPENINGS)} {_first_name(recipient.name, recipient.email)},\n\n{rng.choice(BODIES)}\n\n"
        f"{rng.choice(CLOSINGS)},\n{_first_name(sender.name, sender.email)}\n\n{tag(settings)}\n"
    )
    return _message(sender, recipient, subject, text, settings)


def reply_email(
    sender: Party,
    recipient: Party,
    first_subject: str,
    in_reply_to: str,
    settings: Settings,
    rng: random.Random,
) -> Composed:
    subject = reply_subject(first_subject)
    text = (
        f"{rng.choice(OPENINGS)} {_first_name(recipient.name, recipient.email)},\n\n{rng.choice(REPLIES)}\n\n"
        f"{rng.choice(CLOSINGS)},\n{_first_name(sender.name, sender.email)}\n\n{tag(settings)}\n"
    )
    return _message(sender, recipient, subject, text, settings, in_reply_to)
