"""What each tier includes. A feature a tier lacks is 403 tier_gated, never 404."""

from __future__ import annotations

from dataclasses import dataclass

from imail.kit.ratelimit import Limit
from imail.models.workspace import Tier


@dataclass(frozen=True)
class TierPolicy:
    tier: Tier
    label: str
    api_access: bool
    rate_limit: Limit
    max_campaign_daily_limit: int


POLICIES: dict[str, TierPolicy] = {
    Tier.starter: TierPolicy(Tier.starter, "Starter", False, Limit(1, 1), 0),
    Tier.surge: TierPolicy(Tier.surge, "Surge", True, Limit(100, 240), 5000),
    Tier.velocity: TierPolicy(Tier.velocity, "Velocity", True, Limit(500, 1200), 20000),
    # Apex figures are negotiated; these apply until a workspace has its own (workspaces.rate_limit_*).
    Tier.apex: TierPolicy(Tier.apex, "Apex", True, Limit(2000, 5000), 100000),
}


def policy(tier: str) -> TierPolicy:
    return POLICIES[tier]


def rate_limit_for(tier: str, per_minute: int | None, burst: int | None) -> Limit:
    default = policy(tier).rate_limit
    return Limit(per_minute or default.per_minute, burst or default.burst)
