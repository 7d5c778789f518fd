"""Every background worker, in one list: name, function, interval and concurrency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from imail.workers import imap_reader, inbox_connections, jobs, maintenance, sending, warmup, webhooks
from imail.workers.context import WorkerContext


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    run: Callable[[WorkerContext], Awaitable[int]]
    interval: float  # seconds to wait after an iteration that found nothing to do
    concurrency: int = 1


WORKERS: tuple[WorkerSpec, ...] = (
    # Every 5 s: a process unseen for IMAIL_WORKER_DEAD_SECONDS (20 s) is dead and its sending claims are
    # taken over.
    WorkerSpec("heartbeat", maintenance.heartbeat, interval=5.0),
    WorkerSpec("idempotency_purge", maintenance.purge_idempotency_records, interval=600.0),
    # Audit log entries past IMAIL_AUDIT_LOG_RETENTION_DAYS.
    WorkerSpec("audit_log_prune", maintenance.prune_audit_log, interval=3600.0),
    # Monthly emails and events to workspaces still using something deprecated (see imail.deprecations).
    WorkerSpec("deprecation_warnings", maintenance.warn_deprecation_users, interval=3600.0),
    # Freed heap pages back to the system once a minute (see imail.kit.memory).
    WorkerSpec("release_memory", maintenance.release_memory, interval=60.0),
    # Custom tracking domains asked again in DNS every IMAIL_TRACKING_DOMAIN_CHECK_INTERVAL
    # (imail.tracking_domains).
    WorkerSpec("tracking_domains", maintenance.recheck_tracking_domains, interval=60.0),
    # Logs in to live inboxes due a check (IMAIL_INBOX_CHECK_INTERVAL, or at once after a reported failure).
    WorkerSpec("inbox_connections", inbox_connections.monitor_inbox_connections, interval=5.0),
    # Claims due sequence steps in batches and sends them over pooled SMTP connections (see imail.sending).
    # Two loops per process: one claims and renders its next batch while the other's is on the wire.
    WorkerSpec("sending", sending.send_due, interval=1.0, concurrency=2),
    # Takes over the attempts of dead workers (heartbeat) and of leases run out: within seconds of a crash.
    WorkerSpec("sending_in_doubt", sending.resolve_in_flight, interval=5.0),
    # Reads replies and bounces over IMAP (IDLE where offered, else every IMAIL_INBOUND_POLL_INTERVAL; see
    # imail.intake).
    WorkerSpec("inbound", imap_reader.read_inboxes, interval=1.0),
    # Sends the warmup pool's due emails and replies (ramp slots spread over IMAIL_WARMUP_WINDOW; see
    # imail.warmup).
    WorkerSpec("warmup", warmup.send_warmup, interval=5.0),
    # Two loops per process, so a slow endpoint holding up one loop's batch doesn't stop deliveries.
    WorkerSpec("webhook_deliveries", webhooks.deliver_webhooks, interval=0.5, concurrency=2),
    WorkerSpec("webhook_log_purge", webhooks.purge_webhook_deliveries, interval=3600.0),
    # Background jobs (big CSV imports, verification runs): one job at a time per loop, chunk by chunk under a
    # lease, so a job outlives the worker that started it (see imail.jobs.service).
    WorkerSpec("jobs", jobs.run_jobs, interval=1.0),
)
