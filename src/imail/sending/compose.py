"""Rendering one step for one lead into the bytes handed to SMTP: template, variant, signature, threading,
tracking links and pixel, List-Unsubscribe. Pure apart from the signer it is given."""

from __future__ import annotations

import html
import random
import re
import secrets
from dataclasses import dataclass
from typing import Any

from imail.kit.signing import Signer
from imail.mail import templates
from imail.mail.footer import UNSUBSCRIBE_VARIABLE, Footer, render_footer
from imail.mail.html import html_to_text, text_to_html
from imail.mail.mime import Outbound, build, domain_of, make_message_id
from imail.sending.sequence import choose_variant, content, reply_subject
from imail.tracking import mailto
from imail.tracking.links import add_pixel, rewrite_links

_HAS_TAG = re.compile(r"<[a-zA-Z][^>]*>")


@dataclass(frozen=True)
class Sender:
    email: str
    name: str
    signature: str


@dataclass(frozen=True)
class Thread:
    """The sent emails this one follows: the first subject, and every Message-ID so far, oldest first."""

    first_subject: str | None
    message_ids: tuple[str, ...]


@dataclass(frozen=True)
class Composed:
    subject: str
    variant: str | None
    message_id_header: str
    links: list[str]
    data: bytes


class TrackingUrls:
    """Links out of an email, each a signed token naming the message (and the link's position)."""

    def __init__(self, signer: Signer, public_url: str):
        self.signer = signer
        self.base = public_url.rstrip("/")

    def on(self, host: str | None) -> TrackingUrls:
        """These URLs on a tenant's verified tracking domain (always https), or on the public URL for None."""
        return self if host is None else TrackingUrls(self.signer, f"https://{host}")

    def pixel(self, message_id: str) -> str:
        return f"{self.base}/t/o/{self.signer.sign('open', message_id)}.gif"

    def click(self, message_id: str, index: int) -> str:
        return f"{self.base}/t/c/{self.signer.sign('click', f'{message_id}:{index}')}"

    def unsubscribe(self, message_id: str) -> str:
        return f"{self.base}/u/{self.signer.sign('unsubscribe', message_id)}"


def _signature_html(signature: str) -> str:
    return signature if _HAS_TAG.search(signature) else text_to_html(signature)


def compose(
    *,
    message_id: str,
    step: dict[str, Any],
    step_index: int,
    lead: Any,
    sender: Sender,
    thread: Thread,
    track_opens: bool,
    track_clicks: bool,
    text_only: bool,
    urls: TrackingUrls,
    footer: Footer | None = None,
) -> Composed:
    """One email as sent. `text_only`: a single text/plain part (no HTML, no open pixel; links as plain URLs,
    through the click redirect when click tracking is on). `footer`: the workspace's opt-out line and postal
    address, appended after the signature."""
    rng = random.Random(templates.stable_seed(lead.id, step_index))
    variant = choose_variant(step, rng)
    subject_template, body_template = content(step, variant)
    unsubscribe_url = urls.unsubscribe(message_id)
    # The body holds a stand-in for its unsubscribe link while click tracking rewrites the others: that link
    # stays the signed one of the List-Unsubscribe header, never a click redirect.
    placeholder = f"unsubscribe-{secrets.token_hex(8)}"
    values = templates.lead_values(lead) | {UNSUBSCRIBE_VARIABLE: placeholder}
    missing: list[str] = []  # variables a lead lacks render empty: the campaign was validated on save
    if subject_template and (step_index == 0 or not thread.first_subject or step.get("subject")):
        subject = (
            templates.render(subject_template, values, rng, missing=missing).strip().replace(placeholder, "")
        )
    else:
        subject = reply_subject(thread.first_subject or "")
    body = templates.render(body_template, values, rng, escape_html=True, missing=missing)
    if sender.signature.strip():
        body = f"{body}<br><br>{_signature_html(sender.signature)}"

    links: list[str] = []
    if track_clicks:  # in a text-only email the tracked URLs are written out as plain text
        body, links = rewrite_links(body, lambda index: urls.click(message_id, index))
    body = body.replace(placeholder, html.escape(unsubscribe_url, quote=True))
    if footer is not None:
        body += render_footer(footer, unsubscribe_url)
    text = html_to_text(body) + "\n"  # the preview's derivation, so previews match what is sent
    html_part = None
    if not text_only:
        html_part = add_pixel(body, urls.pixel(message_id)) if track_opens else body

    header_id = make_message_id(domain_of(sender.email))
    outbound = Outbound(
        from_email=sender.email,
        from_name=sender.name,
        to_email=lead.email,
        to_name=" ".join(
            p for p in (getattr(lead, "first_name", None), getattr(lead, "last_name", None)) if p
        ),
        subject=subject,
        text=text,
        html=html_part,
        message_id=header_id,
        in_reply_to=thread.message_ids[-1] if thread.message_ids else None,
        references=list(thread.message_ids),
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=mailto.address(sender.email, urls.signer.sign(mailto.PURPOSE, message_id)),
    )
    return Composed(subject, variant["label"] if variant else None, header_id, links, build(outbound))
