from datetime import date

from imail.kit.versions.base import VersionChange

CHANGE = VersionChange(
    date(2026, 12, 6),
    "Added the api.deprecation_warning webhook event and GET /v1/changelog (this changelog as data). A date "
    "before "
    "2026-03-10 in Imail-Version now pins to the first snapshot instead of answering 400. The funnel's "
    "stages are "
    "named as in the reference: opened (unique human opens) and meeting (replies labelled meeting_booked), "
    "in place "
    "of opened_unique and meeting_booked.",
    endpoints=frozenset({("GET", "/v1/changelog")}),
    events=frozenset({"api.deprecation_warning"}),
)
