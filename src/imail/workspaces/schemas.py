from __future__ import annotations

from typing import Literal

from pydantic import Field

from imail.kit.schemas import RequestModel, ResponseModel
from imail.mail.footer import DEFAULT_FOOTER_TEXT, MAX_FOOTER_TEXT, MAX_POSTAL_ADDRESS
from imail.tracking_domains.schemas import (
    DOMAIN_DESCRIPTION,
    TrackingDomain,
    TrackingDomainCheckedAt,
    TrackingDomainReason,
    TrackingDomainStatusName,
)


class WorkspaceView(ResponseModel):
    id: str
    object: Literal["workspace"] = "workspace"
    name: str
    tier: str
    postal_address: str | None = Field(
        description="The sender's postal address, printed in the footer of campaigns with include_footer "
        "(CAN-SPAM)."
    )
    footer_text: str | None = Field(
        description=f"The footer's opt-out line, a template with {{{{unsubscribe_url}}}}; null: "
        f'"{DEFAULT_FOOTER_TEXT}".'
    )
    tracking_domain: TrackingDomain
    tracking_domain_status: TrackingDomainStatusName
    tracking_domain_checked_at: TrackingDomainCheckedAt
    tracking_domain_reason: TrackingDomainReason


class WorkspaceUpdate(RequestModel):
    postal_address: str | None = Field(
        None,
        max_length=MAX_POSTAL_ADDRESS,
        description="Lines separated by newlines; null or empty clears it.",
    )
    footer_text: str | None = Field(
        None,
        max_length=MAX_FOOTER_TEXT,
        description="Must contain {{unsubscribe_url}} (the email's signed unsubscribe link); null: the "
        "default line.",
    )
    tracking_domain: str | None = Field(
        None, max_length=300, description=DOMAIN_DESCRIPTION.format(owner="workspace")
    )
