"""Every ORM model, imported here so Alembic and the drift test see the whole schema."""

from imail.models.analytics import AnalyticsCampaignDaily, AnalyticsDaily, AnalyticsRef
from imail.models.api_key import ApiKey
from imail.models.audit import AuditLog
from imail.models.base import Base
from imail.models.campaign import Campaign, CampaignInbox, CampaignStatus
from imail.models.deprecation import DeprecationNotice, DeprecationUsage
from imail.models.event import Event
from imail.models.idempotency import IdempotencyRecord
from imail.models.inbox import Inbox
from imail.models.job import Job, JobItem, JobKind, JobStatus
from imail.models.lead import InterestStatus, Lead, LeadStatus, LeadTag
from imail.models.mailbox_cursor import InboundReceipt, MailboxCursor, MailboxPoll
from imail.models.reply import Reply
from imail.models.reply_training import ReplyLabelCorrection, ReplyModel
from imail.models.sending import InboxPacing, Message, SendCounter, SequenceState
from imail.models.suppression import Suppression
from imail.models.tracking import TrackingWindow
from imail.models.warmup import InboxWarmup, WarmupDaily, WarmupMessage
from imail.models.webhook import WebhookDelivery, WebhookEndpoint
from imail.models.worker_heartbeat import WorkerHeartbeat
from imail.models.workspace import Tier, Workspace

__all__ = [
    "AnalyticsCampaignDaily",
    "AnalyticsDaily",
    "AnalyticsRef",
    "ApiKey",
    "AuditLog",
    "Base",
    "Campaign",
    "CampaignInbox",
    "CampaignStatus",
    "DeprecationNotice",
    "DeprecationUsage",
    "Event",
    "IdempotencyRecord",
    "InboundReceipt",
    "Inbox",
    "InboxPacing",
    "InboxWarmup",
    "InterestStatus",
    "Job",
    "JobItem",
    "JobKind",
    "JobStatus",
    "Lead",
    "LeadStatus",
    "LeadTag",
    "MailboxCursor",
    "MailboxPoll",
    "Message",
    "Reply",
    "ReplyLabelCorrection",
    "ReplyModel",
    "SendCounter",
    "SequenceState",
    "Suppression",
    "Tier",
    "TrackingWindow",
    "WarmupDaily",
    "WarmupMessage",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
    "Workspace",
]
