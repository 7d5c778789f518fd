"""The `mailto:` form of List-Unsubscribe: what the address is, and how an email sent to it is recognised.

The address is the sending inbox itself, with the email's signed unsubscribe token in the subject
(`mailto:ana@acme.com?subject=unsubscribe%20<token>`): mail clients that act on the mailto form (Gmail's and
Apple Mail's unsubscribe buttons, Outlook's) send exactly that subject, and the inbox's own mailbox is where
the reader already looks, whatever the provider (plus-addressing is not available on every host, and mail to
an address that does not exist bounces). The token says which email, hence which lead: a message carrying a
valid one unsubscribes that lead, whoever sends it (as the link in the email does), and never the sender
instead. The subject, not the body, is searched: a reply quoting our email quotes its footer's unsubscribe
link too.

When the token is lost (someone writes "unsubscribe" by hand), a message that is not a reply to one of our
emails, comes from an address this inbox emailed, and asks to unsubscribe in its subject or first lines (the
reply classifier's opt-out phrases, in the languages it knows) unsubscribes that address's lead.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from imail.kit.signing import BadSignature, Signer
from imail.mail.parsing import fold
from imail.mail.reply_rules import UNSUBSCRIBE

PURPOSE = "unsubscribe"  # the same signed token as the unsubscribe link's
SUBJECT_WORD = "unsubscribe"
# A signed token: base64url payload, a dot, a 16-byte base64url signature.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,200}\.[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])")
_BARE = re.compile(
    r"^\W*(unsubscribe|remove|opt[- ]?out|stop|cancel|abmelden|baja|desabonner|desinscrire)\W*$"
)
FIRST_CHARS = 500  # how much of the body may ask, in the token-lost case


def address(sender_email: str, token: str) -> str:
    """The target after `mailto:`: the inbox, with the token in the subject."""
    return f"{sender_email}?subject={quote(f'{SUBJECT_WORD} {token}', safe='')}"


def token_ids(signer: Signer, subject: str) -> list[str]:
    """The message ids named by valid unsubscribe tokens in a subject (forged or damaged ones are ignored)."""
    found: list[str] = []
    for candidate in _TOKEN.findall(subject or ""):
        try:
            message_id = signer.unsign(PURPOSE, candidate)
        except BadSignature:
            continue
        if message_id not in found:
            found.append(message_id)
    return found


def asks_to_unsubscribe(subject: str, text: str) -> bool:
    """Whether a message's subject, or the start of its new text, asks to stop the emails."""
    folded_subject = fold(subject or "")
    if _BARE.match(folded_subject) or UNSUBSCRIBE.search(folded_subject):
        return True
    return bool(UNSUBSCRIBE.search(fold((text or "")[:FIRST_CHARS])))
