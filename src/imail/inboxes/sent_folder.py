"""Whether what an inbox sends must be put in its Sent folder by imail. Gmail and Microsoft 365 file SMTP
submissions in Sent themselves; most other hosts (Postfix with Dovecot, cPanel hosting) do not, and then the
sender's mail client shows no conversation and the crash-recovery check that looks for a Message-ID in Sent
finds nothing. `auto` learns it once, after the first sends (are their Message-IDs in Sent?); an inbox's
`sent_folder_mode` (`append`, `provider`) overrides."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from imail.inboxes.repository import InboxRepository
from imail.kit.tenancy import Tenant
from imail.models import Inbox


def must_append(inbox: Inbox) -> bool | None:
    """True: append what this inbox sends to Sent; False: don't; None: look first (auto, not learned yet)."""
    if inbox.sent_folder_mode == "append":
        return True
    if inbox.sent_folder_mode == "provider":
        return False
    return None if inbox.sent_filed_by_provider is None else not inbox.sent_filed_by_provider


async def record_filing(
    session: AsyncSession, tenant: Tenant, inbox_id: str, filed_by_provider: bool
) -> None:
    """What the first sends showed: whether the provider filed them in Sent itself (learned once)."""
    inbox = await InboxRepository(session, tenant).get(inbox_id)
    if inbox is not None and inbox.sent_filed_by_provider is None:
        inbox.sent_filed_by_provider = filed_by_provider
