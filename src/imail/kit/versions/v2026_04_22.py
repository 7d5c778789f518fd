from datetime import date

from imail.kit.versions.base import VersionChange

CHANGE = VersionChange(
    date(2026, 4, 22),
    "New endpoint POST /v1/leads/bulk (up to 5000 per call).",
    endpoints=frozenset({("POST", "/v1/leads/bulk")}),
)
