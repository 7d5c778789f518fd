from datetime import date

from imail.kit.versions.base import VersionChange

CHANGE = VersionChange(
    date(2026, 12, 7),
    "Added three webhook events: lead.unsubscribed (a lead opted out by one-click, link, mailto or reply, "
    "or its "
    "address was suppressed through the API), inbox.sending_paused (bounce protection, an SMTP policy "
    "rejection or "
    "a manual pause stopped an inbox's campaign sending) and job.completed (a background job finished). "
    "Added POST "
    "/v1/inboxes/{inbox_id}/sending/pause and …/sending/resume, and the inbox fields sending_paused, "
    "sending_paused_reason, sending_paused_detail and sending_paused_at.",
    events=frozenset({"lead.unsubscribed", "inbox.sending_paused", "job.completed"}),
    # Bounce protection's counterpart: an inbox's campaign sending paused and resumed by hand (issue 25).
    endpoints=frozenset(
        {("POST", "/v1/inboxes/{inbox_id}/sending/pause"), ("POST", "/v1/inboxes/{inbox_id}/sending/resume")}
    ),
)
