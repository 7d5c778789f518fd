from datetime import date

from imail.kit.versions.base import VersionChange

CHANGE = VersionChange(
    date(2026, 5, 10),
    "Added email.bounced.soft and warmup.threshold_paused webhook events.",
    events=frozenset({"email.bounced.soft", "warmup.threshold_paused"}),
)
