"""The tracking-domain fields shared by the workspace and inbox schemas (annotated types, so each schema keeps
its own field order)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field
from typing_extensions import TypeAliasType

DOMAIN_DESCRIPTION = (
    "A custom host for this {owner}'s links, open pixel and unsubscribe URLs, e.g. track.acme.com: a CNAME "
    "to this "
    "server's public host, served over https. Checked in DNS at once and then periodically; used only while "
    "`verified`. null or empty removes it."
)

TrackingDomain = Annotated[
    str | None, Field(description="The custom tracking host, or null (links use the server's public URL).")
]
TrackingDomainStatus = TypeAliasType("TrackingDomainStatus", Literal["pending", "verified", "failed"])
TrackingDomainStatusName = Annotated[
    TrackingDomainStatus | None,
    Field(
        description="`pending`: set, not yet confirmed in DNS (or DNS did not answer); `verified`: in use; "
        "`failed`: DNS shows it pointing elsewhere (see tracking_domain_reason). Only `verified` is used."
    ),
]
TrackingDomainCheckedAt = Annotated[datetime | None, Field(description="When DNS was last asked.")]
TrackingDomainReason = Annotated[
    str | None,
    Field(description="Why the domain is not verified (what DNS answered, or that it could not be asked)."),
]
