"""Settings from IMAIL_* environment variables (and a .env file)."""

from __future__ import annotations

import secrets
import ssl
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imail.kit.dns import parse_nameservers
from imail.mail.spamd import SpamdAddress

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///./imail.db"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMAIL_", env_file=".env", extra="ignore")

    # database
    database_url: str = EMBEDDED_DATABASE_URL
    database_pool_size: int = Field(
        20,
        ge=1,
        le=200,
        description="connections each process keeps open (plus half as many more under bursts)",
    )
    database_timeout: float = Field(5.0, gt=0, description="seconds to wait for a connection")
    # A statement still unanswered after this is abandoned (503), so a partitioned database can't hang
    # requests.
    database_command_timeout: float = Field(30.0, gt=0, description="seconds one SQL statement may take")

    # redis (unset: in-process rate limiter and caches, single process only)
    redis_url: str | None = None

    # security
    secret_key: str | None = Field(None, min_length=32)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # Requests no API key answers for (public endpoints, tracking links, 401s): a token bucket per client
    # address. Generous: a mailbox provider's image proxy fetches the pixels of many recipients from one
    # address.
    public_rate_limit_per_minute: int = Field(
        1200, ge=1, description="sustained requests/min per client address"
    )
    public_rate_limit_burst: int = Field(2400, ge=1, description="burst per client address")
    # A request's headers must arrive whole within this many seconds of its first byte, and its body may pause
    # no longer than this between two reads (nginx's client_header_timeout / client_body_timeout); past it:
    # 408, closed.
    request_stall_seconds: float = Field(
        30.0, gt=0, le=600, description="seconds before a stalled request is closed"
    )
    # The public tracking and unsubscribe routes, per client address (429 past it), on top of the public limit
    # above. Generous: image proxies (Gmail's) fetch every recipient's pixel from a few shared addresses.
    tracking_rate_limit_per_minute: int = Field(
        600, ge=1, description="tracking hits per minute per client address"
    )
    tracking_rate_limit_burst: int = Field(
        1200, ge=1, description="tracking hits allowed at once per client address"
    )

    # public URLs (tracking, unsubscribe, docs links in errors)
    # RFC 8058 one-click unsubscribe needs an https List-Unsubscribe URL: http is refused for any host but
    # loopback unless this is set (then GET /v1/status/full warns).
    allow_http_public_url: bool = False
    public_url: str = "http://127.0.0.1:8000"
    docs_url: str = "https://api.imail.now/docs/errors"

    # webhooks
    webhooks_allow_private: bool = False
    # seconds between attempts (Svix-like); after the last, one final attempt at webhooks_give_up_after
    webhooks_retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0]
    )
    webhooks_retry_jitter: float = Field(0.1, ge=0, lt=1)
    webhooks_give_up_after: float = Field(
        86400.0, gt=0, description="seconds after the event: last attempt, then failed"
    )
    webhooks_disable_after: float = Field(
        86400.0, gt=0, description="seconds of failing every attempt before disabling"
    )
    webhooks_timeout: float = Field(10.0, gt=0)
    webhooks_lease: float = Field(
        60.0, gt=0, description="seconds a claimed delivery stays invisible to other workers"
    )
    webhooks_batch_size: int = Field(
        50, ge=1, le=1000, description="deliveries each worker loop claims at a time"
    )
    # at most this many requests in flight per worker loop; more are opened only while answers are slow
    webhooks_concurrency: int = Field(
        8, ge=1, le=200, description="most requests a worker loop has in flight"
    )
    webhooks_retention_days: int = Field(30, ge=1, description="days the delivery log is kept")

    # inboxes: mail server logins, credential encryption, OAuth providers (see imail.inboxes)
    secret_keys_old: str = Field(
        "", description="comma-separated retired IMAIL_SECRET_KEY values, still decrypted"
    )
    mail_timeout: float = Field(15.0, gt=0, le=120, description="seconds for one SMTP or IMAP connect+login")
    mail_ca_file: str | None = Field(
        None,
        description="extra CA bundle (PEM) trusted for SMTP/IMAP TLS, for self-signed or private-CA servers",
    )
    # Off: mail servers on loopback or private addresses are refused (400), so inbox settings can't probe the
    # server's own network. A self-hoster whose mail server is on the LAN turns it on; link-local, metadata
    # and the like stay refused either way.
    mail_allow_private: bool = Field(
        False, description="allow SMTP/IMAP servers on loopback and private addresses"
    )
    # Logins, sends and OAuth exchanges that API requests make to mail servers and providers, in flight at
    # once per workspace (across processes when Redis is configured); past it a request is answered 429.
    outbound_concurrency: int = Field(
        4, ge=1, le=1000, description="outbound mail operations per workspace at once"
    )
    inbox_check_interval: float = Field(300.0, ge=5, description="seconds between two checks of one inbox")
    oauth_state_ttl: int = Field(3600, ge=60, description="seconds an OAuth setup_url stays valid")
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_smtp_server: str = "smtp.gmail.com:465/ssl"
    google_imap_server: str = "imap.gmail.com:993/ssl"
    microsoft_client_id: str | None = None
    microsoft_client_secret: str | None = None
    microsoft_authorize_url: str = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    microsoft_token_url: str = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    microsoft_smtp_server: str = "smtp.office365.com:587/starttls"
    microsoft_imap_server: str = "outlook.office365.com:993/ssl"

    # The operator's own mail server, for notices to workspaces (deprecation warnings); unset: none are
    # emailed.
    system_smtp_server: str | None = Field(
        None, description="host:port/security, e.g. smtp.example.com:587/starttls"
    )
    system_smtp_username: str = Field("", description="empty: the server takes mail without a login")
    system_smtp_password: str | None = None
    system_mail_from: str = Field("imail@localhost", description="From address of the operator's notices")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str, info: ValidationInfo) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute https:// URL, like https://t.example.com")
        if (
            parts.scheme == "http"
            and not is_loopback(parts.hostname)
            and not info.data.get("allow_http_public_url")
        ):
            raise ValueError(
                f"{value} is http: List-Unsubscribe one-click (RFC 8058) needs https; use https://, or set "
                "IMAIL_ALLOW_HTTP_PUBLIC_URL=1 to accept it anyway"
            )
        return value

    def public_url_warnings(self) -> list[str]:
        """Operator-facing warnings about the public URL (shown by GET /v1/status/full)."""
        parts = urlsplit(self.public_url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            return [
                (
                    "IMAIL_PUBLIC_URL is http (allowed by IMAIL_ALLOW_HTTP_PUBLIC_URL): List-Unsubscribe "
                    "links are not "
                    "https, so mailbox providers ignore one-click unsubscribe (RFC 8058); serve it over https"
                )
            ]
        return []

    @field_validator("mail_ca_file")
    @classmethod
    def _mail_ca_file(cls, value: str | None) -> str | None:
        """Loaded once now: a missing or unreadable bundle would otherwise fail only the TLS connections,
        later and every time (plain text never reads it)."""
        if not value:
            return None
        try:
            ssl.create_default_context().load_verify_locations(cafile=value)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ValueError(f"{value} cannot be read as a PEM CA bundle: {exc}") from None
        return value

    @field_validator(
        "google_smtp_server",
        "google_imap_server",
        "microsoft_smtp_server",
        "microsoft_imap_server",
        "system_smtp_server",
    )
    @classmethod
    def _mail_server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, rest = value.rpartition(":")
        port, _, security = rest.partition("/")
        if (
            not host
            or not port.isdigit()
            or not 0 < int(port) < 65536
            or security not in ("ssl", "starttls", "none")
        ):
            raise ValueError("must look like host:port/security with security ssl, starttls or none")
        return value

    # sending engine (see imail.sending)
    sending_batch_size: int = Field(400, ge=1, le=5000, description="sequence states claimed per iteration")
    sending_lease_seconds: float = Field(300.0, ge=10, description="an attempt older than this is in doubt")
    sending_max_attempts: int = Field(
        5, ge=1, le=50, description="temporary failures before a send is failed"
    )
    sending_retry_seconds: float = Field(300.0, gt=0, description="first retry delay; doubles per attempt")
    sending_smtp_concurrency: int = Field(64, ge=1, le=1000, description="inboxes sending at once per worker")
    sending_sent_folder_concurrency: int = Field(
        8, ge=1, le=1000, description="inboxes whose Sent folder a worker opens at once (an IMAP login each)"
    )
    sending_idle_seconds: float = Field(
        60.0, gt=0, description="pooled SMTP connections idle longer are closed"
    )
    # A worker process beats every 5 s (workers.registry); one unseen for IMAIL_WORKER_DEAD_SECONDS is taken
    # for dead and its sending claims are taken over by the others, instead of waiting out
    # sending_lease_seconds (which still bounds a claim whose worker looks alive).
    worker_dead_seconds: float = Field(
        20.0,
        ge=15,
        le=600,
        description="a worker process unseen this long is dead: its claims are taken over",
    )

    # inbound: the IMAP reader of replies and bounces (see imail.intake)
    # A reply to an inbox without IDLE waits up to one interval plus the read: under 45 s keeps the worst
    # case under a minute, measured at 1,000 polled inboxes on one worker (bench/scale.py --no-server-idle).
    inbound_poll_interval: float = Field(
        45.0, ge=1, description="seconds between reads of an inbox without IMAP IDLE"
    )
    inbound_idle: bool = Field(True, description="wait on IMAP IDLE where the server offers it")
    # A push can be missed (a connection dropped silently by a NAT): each IDLE-ing inbox is read in full this
    # often anyway. Every full read costs the worker CPU and the database a transaction, for every connected
    # inbox.
    inbound_idle_recheck: float = Field(
        1200.0, ge=5, le=1740, description="seconds between full reads of an IDLE inbox"
    )
    inbound_batch_inboxes: int = Field(20, ge=1, le=1000, description="inboxes claimed per reader iteration")
    inbound_concurrency: int = Field(10, ge=1, le=500, description="inboxes read at once per worker")
    # One IDLE-ing connection per inbox up to this many per worker (beyond it, the least recently used are
    # closed and those inboxes polled every inbound_poll_interval): see "Capacity" in the README.
    inbound_max_connections: int = Field(
        2000, ge=1, le=20000, description="IMAP connections kept open per worker"
    )
    inbound_fetch_batch: int = Field(
        100, ge=1, le=1000, description="messages per FETCH and per transaction (a backlog joins up to 3)"
    )
    inbound_max_messages: int = Field(1000, ge=1, description="messages read from one inbox per iteration")
    inbound_pass_seconds: float = Field(
        10.0,
        ge=0,
        le=120,
        description="how long a pass over a backlog may go on past inbound_max_messages while the worker has "
        "a read slot free for other inboxes (0: a pass stops at inbound_max_messages)",
    )
    inbound_parse_processes: int = Field(
        1,
        ge=0,
        le=64,
        description="child processes that parse a backlog's next batch while the worker acts on the one "
        "before (0: the worker parses everything itself); see imail.intake.parser_pool",
    )
    inbound_parse_pool_from: int = Field(
        20, ge=1, description="messages in one FETCH from which they are parsed in a child process"
    )
    inbound_lease_seconds: float = Field(
        300.0, ge=10, description="an inbox being read is left alone this long"
    )
    inbound_read_failure_limit: int = Field(
        5,
        ge=1,
        le=100,
        description="reads failed in a row (retried after the poll interval, doubling) that disconnect an "
        "inbox",
    )
    inbound_soft_bounce_retries: int = Field(
        2, ge=0, le=10, description="resends of one email after soft bounces"
    )
    inbound_soft_bounce_retry_seconds: float = Field(3600.0, gt=0, description="first resend delay; doubles")

    # bounce protection (imail.sending.protection): an inbox whose hard bounces pass this share of its latest
    # campaign sends stops sending campaigns until resumed
    bounce_protection_rate: float = Field(
        0.05, gt=0, le=1, description="hard-bounce share of an inbox's latest campaign sends that pauses it"
    )
    bounce_protection_window: int = Field(
        100, ge=1, le=10_000, description="latest campaign sends of an inbox judged by bounce protection"
    )
    bounce_protection_min_sends: int = Field(
        20,
        ge=1,
        le=10_000,
        description="sends (since the last resume) before bounce protection judges an inbox",
    )

    # warmup: the pool of warming inboxes (see imail.warmup)
    warmup_marker: str | None = Field(
        None,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="X-Imail-Warmup header value; default derived from IMAIL_SECRET_KEY",
    )
    warmup_tag: str | None = Field(
        None,
        min_length=4,
        max_length=16,
        pattern=r"^[A-Za-z0-9-]+$",
        description="short tag in every warmup email, to filter on; default derived",
    )
    warmup_window: str = Field("08:00-18:00", description="UTC hours a day's warmup sends are spread over")
    warmup_reply_delay: float = Field(1800.0, ge=0, description="seconds before a warmup reply is due")
    warmup_threshold_sends: int = Field(
        20, ge=1, le=1000, description="last N warmup sends judged for auto-pause"
    )
    warmup_spam_threshold: float = Field(
        0.2, gt=0, le=1, description="spam share of those that pauses warmup"
    )
    warmup_bounce_threshold: float = Field(
        0.05, gt=0, le=1, description="bounce share of those that pauses warmup"
    )
    warmup_batch_inboxes: int = Field(50, ge=1, le=1000, description="warming inboxes claimed per iteration")

    @field_validator("warmup_window")
    @classmethod
    def _warmup_window(cls, value: str) -> str:
        from datetime import time

        start, sep, end = value.partition("-")
        try:
            opens, closes = (
                time.fromisoformat(start.strip()),
                time.fromisoformat(end.strip()) if end.strip() != "24:00" else None,
            )
        except ValueError:
            raise ValueError("must look like 08:00-18:00 (UTC)") from None
        if not sep or (closes is not None and closes <= opens):
            raise ValueError("must look like 08:00-18:00 (UTC), the end after the start")
        return value

    # replies: an optional OpenAI-compatible endpoint replacing the local reply model (see
    # imail.replies.remote)
    classifier_url: str | None = Field(
        None, description="API base, e.g. http://127.0.0.1:11434/v1; unset: local"
    )
    classifier_model: str | None = Field(None, validate_default=True)
    classifier_api_key: str | None = None
    classifier_timeout: float = Field(
        10.0, gt=0, le=120, description="seconds for one classification request"
    )

    @field_validator("classifier_url")
    @classmethod
    def _classifier_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("classifier_model")
    @classmethod
    def _classifier_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("classifier_url") and not value:
            raise ValueError(
                "must be set when IMAIL_CLASSIFIER_URL is set (the model name the endpoint serves)"
            )
        return value or None

    # POST /v1/campaigns/{id}/spam-check: SpamAssassin's spamd (Debian's spamd package); unset, the check
    # answers 409
    spamd_url: str | None = Field(None, description="spamd://host:port, e.g. spamd://127.0.0.1:783")
    spamd_timeout: float = Field(30.0, gt=0, le=300, description="seconds spamd may take to score one email")

    @field_validator("spamd_url")
    @classmethod
    def _spamd_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        SpamdAddress.parse(value)
        return value

    # DNS for tracking-domain checks and lead verification: host[:port], comma-separated; unset, the system's
    dns_resolver: str | None = Field(None, description="e.g. 127.0.0.1:5353; unset uses /etc/resolv.conf")
    dns_timeout: float = Field(5.0, gt=0, le=60, description="seconds one DNS lookup may take")

    @field_validator("dns_resolver")
    @classmethod
    def _dns_resolver(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parse_nameservers(value)
        return value

    # Custom tracking domains (see imail.tracking_domains): verified as a CNAME to IMAIL_PUBLIC_URL's host,
    # or, for a name that cannot be a CNAME (a zone apex, a provider's CNAME flattening), A/AAAA records all
    # among these.
    tracking_domain_addresses: str | None = Field(
        None,
        description="comma-separated IP addresses of this server a tracking domain may point to (A/AAAA)",
    )
    tracking_domain_check_interval: float = Field(
        3600.0, ge=60, description="seconds between two DNS re-checks of one tracking domain"
    )

    @field_validator("tracking_domain_addresses")
    @classmethod
    def _tracking_domain_addresses(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        for part in value.split(","):
            try:
                ip_address(part.strip())
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not an IP address") from None
        return value

    def tracking_addresses(self) -> frozenset[str]:
        """IMAIL_TRACKING_DOMAIN_ADDRESSES, each address in its canonical text."""
        if not self.tracking_domain_addresses:
            return frozenset()
        return frozenset(str(ip_address(p.strip())) for p in self.tracking_domain_addresses.split(","))

    # workers
    # On SIGTERM: in-flight requests may finish for this long, then running worker iterations for as long
    # again.
    shutdown_grace: float = Field(20.0, gt=0, le=600, description="seconds of each graceful-shutdown phase")
    worker_poll_interval: float = Field(1.0, gt=0)
    idempotency_ttl_hours: int = Field(24, ge=1)
    # How long the audit log keeps an entry (pruned by the maintenance worker).
    audit_log_retention_days: int = Field(365, ge=1)

    # background jobs (see imail.jobs): a CSV import of more data rows than this (or any, sent with `Prefer:
    # respond-async`) answers 202 with a job
    import_job_threshold: int = Field(
        10_000, ge=0, description="data rows above which POST /v1/leads/import runs as a background job"
    )
    jobs_chunk_rows: int = Field(500, ge=1, le=5000, description="rows a job processes per transaction")
    # A worker renews its lease with every chunk; a chunk must finish well within it.
    jobs_lease_seconds: float = Field(
        60.0, ge=1, description="seconds a job stays with a worker that stopped renewing its claim"
    )
    jobs_max_errors: int = Field(
        1000, ge=0, le=100000, description="failed rows listed on a job (all are counted)"
    )
    jobs_max_attempts: int = Field(5, ge=1, description="crashed attempts in a row after which a job fails")
    # lead verification (see imail.leads.verification): DNS look-ups in flight at once, per job chunk
    verification_concurrency: int = Field(10, ge=1, le=100, description="domains looked up at once")

    # Prometheus scrape endpoint /metrics: off (404) unless a token is set; scrape with `Authorization: Bearer
    # <token>`
    metrics_token: str | None = Field(None, min_length=16)

    # logging
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("webhooks_retry_schedule")
    @classmethod
    def _schedule(cls, value: list[float]) -> list[float]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("must be a JSON list of positive seconds, e.g. [5, 300, 1800]")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The embedded database's file, or None for PostgreSQL or an in-memory SQLite."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1]
        return None if path in ("", ":memory:") else Path(path)

    def resolved_secret_key(self) -> str:
        """IMAIL_SECRET_KEY, or for the embedded default a key created once and kept beside the database."""
        if self.secret_key:
            return self.secret_key
        db_path = self.sqlite_path()
        if db_path is None:
            raise SettingsError(
                "IMAIL_SECRET_KEY: must be set (at least 32 characters) outside the embedded default"
            )
        key_file = db_path.with_name(db_path.name + ".secret")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


def load_settings() -> Settings:
    """Build Settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "IMAIL_" + str(first["loc"][0]).upper() if first["loc"] else "IMAIL_*"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
