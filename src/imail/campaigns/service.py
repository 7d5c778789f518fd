"""Campaign rules: validation (tier bounds, inboxes, steps and their templates), the status machine,
preview."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from imail.auth.service import Caller
from imail.auth.tiers import policy
from imail.campaigns.repository import CampaignRepository, InboxLookup
from imail.campaigns.schemas import (
    MAX_DELAY_MINUTES,
    MAX_VARIANTS,
    CampaignCreate,
    CampaignUpdate,
    PreviewRequest,
    SendWindow,
    StepIn,
)
from imail.campaigns.stats import CampaignStats, campaign_stats
from imail.errors import Conflict, InvalidField, NotFound
from imail.kit.clock import utcnow
from imail.kit.ids import has_prefix
from imail.kit.pagination import PageParams
from imail.kit.tenancy import Tenant
from imail.leads import timezones
from imail.leads.repository import LeadRepository
from imail.mail import templates
from imail.mail.footer import UNSUBSCRIBE_VARIABLE, Footer, render_footer
from imail.mail.html import html_to_text
from imail.models import Campaign, CampaignStatus
from imail.models.inbox import InboxStatus
from imail.sending import service as sending
from imail.sending.compose import TrackingUrls
from imail.workspaces.service import find_workspace

MAX_CUSTOM_VARIABLES = 50
USABLE_INBOX = InboxStatus.connected.value


# ---------------------------------------------------------------- reading


async def inbox_ids_of(
    session: AsyncSession, tenant: Tenant, campaign_ids: list[str]
) -> dict[str, list[str]]:
    """Each campaign's inbox ids, in their rotation order."""
    return await CampaignRepository(session, tenant).inbox_ids(campaign_ids)


async def get_campaign(session: AsyncSession, caller: Caller, campaign_id: str) -> Campaign:
    campaign = await CampaignRepository(session, caller.tenant).get(campaign_id)
    if campaign is None:
        raise NotFound(f"No campaign {campaign_id}")
    return campaign


async def list_campaigns(
    session: AsyncSession, caller: Caller, params: PageParams, status: str | None
) -> list[Campaign]:
    return await CampaignRepository(session, caller.tenant).list_page(params, status)


async def present(session: AsyncSession, caller: Caller, campaigns: list[Campaign]) -> list[dict[str, Any]]:
    """The API view of campaigns: stored fields plus inbox ids and the computed sending figures."""
    ids = [c.id for c in campaigns]
    inboxes = await CampaignRepository(session, caller.tenant).inbox_ids(ids)
    stats = await campaign_stats(session, caller.tenant, ids, utcnow())
    return [view(c, inboxes[c.id], stats.get(c.id, CampaignStats())) for c in campaigns]


async def present_one(session: AsyncSession, caller: Caller, campaign: Campaign) -> dict[str, Any]:
    return (await present(session, caller, [campaign]))[0]


def view(campaign: Campaign, inbox_ids: list[str], stats: CampaignStats) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "inbox_ids": inbox_ids,
        "steps": [step_view(i, s) for i, s in enumerate(campaign.steps)],
        "daily_limit": campaign.daily_limit,
        "send_window": campaign.send_window,
        "track_opens": campaign.track_opens,
        "track_clicks": campaign.track_clicks,
        "stop_on_reply": campaign.stop_on_reply,
        "text_only": campaign.text_only,
        "include_footer": campaign.include_footer,
        "custom_variables": campaign.custom_variables,
        "skip_verification": campaign.skip_verification,
        "livemode": campaign.livemode,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
        "sent_today": stats.sent_today,
        "reply_rate_7d": stats.reply_rate_7d,
    }


def _text(body: str | None) -> str | None:
    return None if body is None else html_to_text(body)


def step_view(index: int, step: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": index + 1,
        "subject": step.get("subject"),
        "body": step.get("body"),
        "text": _text(step.get("body")),
        "delay": step["delay"],
        "variants": [{**v, "text": _text(v.get("body"))} for v in step.get("variants", [])],
        "branches": step.get("branches", []),
    }


# ---------------------------------------------------------------- validation


def _daily_limit(caller: Caller, value: int | None) -> int:
    rules = policy(caller.tier)
    if value is None:
        return rules.max_campaign_daily_limit
    if not 1 <= value <= rules.max_campaign_daily_limit:
        raise InvalidField(
            f"daily_limit must be between 1 and {rules.max_campaign_daily_limit} on {rules.label} tier",
            "daily_limit",
        )
    return value


def _send_window(window: SendWindow | None) -> dict[str, Any]:
    window = window or SendWindow()
    if window.timezone != "lead" and not timezones.is_zone(window.timezone):
        raise InvalidField(
            f"send_window.timezone: unknown time zone {window.timezone!r}; use an IANA name like "
            "Europe/Paris, "
            f'or "lead" for each lead\'s own zone',
            "send_window.timezone",
        )
    if window.start >= window.end:
        raise InvalidField(
            f"send_window.end ({window.end}) must be after send_window.start ({window.start})",
            "send_window.end",
        )
    return window.model_dump()


def _custom_variables(names: list[str]) -> list[str]:
    if len(names) > MAX_CUSTOM_VARIABLES:
        raise InvalidField(
            f"custom_variables: at most {MAX_CUSTOM_VARIABLES} names; got {len(names)}", "custom_variables"
        )
    seen: set[str] = set()
    for i, name in enumerate(names):
        field = f"custom_variables[{i}]"
        if not templates.NAME.match(name):
            raise InvalidField(f"{field}: {name!r} is not a variable name; use letters, digits and _", field)
        if name in templates.BUILTIN_VARIABLES:
            raise InvalidField(
                f"{field}: {name!r} is a built-in lead field; list only custom variables", field
            )
        if name == UNSUBSCRIBE_VARIABLE:
            raise InvalidField(
                f"{field}: {name!r} is filled in by imail (the email's unsubscribe link)", field
            )
        if name in seen:
            raise InvalidField(f"{field}: {name!r} is listed twice", field)
        seen.add(name)
    return names


def _check_template(text: str | None, field: str, where: str, known: frozenset[str]) -> None:
    if text is None:
        return
    try:
        templates.check(text, known)
    except templates.TemplateError as exc:
        raise InvalidField(f"{field}: {where}: {exc}", field) from None


def validate_steps(steps: list[StepIn], custom_variables: list[str]) -> list[dict[str, Any]]:
    """The steps as stored, or InvalidField naming the step, the part and the position at fault."""
    known = frozenset(templates.BUILTIN_VARIABLES) | {UNSUBSCRIBE_VARIABLE} | frozenset(custom_variables)
    count = len(steps)
    stored: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        number, prefix = i + 1, f"steps[{i}]"
        if step.delay.minutes > MAX_DELAY_MINUTES:
            raise InvalidField(
                f"{prefix}.delay: step {number} waits more than 365 days", f"{prefix}.delay.amount"
            )
        if len(step.variants) == 1 or len(step.variants) > MAX_VARIANTS:
            raise InvalidField(
                f"{prefix}.variants: step {number} has {len(step.variants)} variant(s); give "
                f"2–{MAX_VARIANTS}, or none",
                f"{prefix}.variants",
            )
        _check_template(step.subject, f"{prefix}.subject", f"step {number} subject", known)
        _check_template(step.body, f"{prefix}.body", f"step {number} body", known)
        variants: list[dict[str, Any]] = []
        for j, variant in enumerate(step.variants):
            label = chr(ord("A") + j)
            vprefix = f"{prefix}.variants[{j}]"
            _check_template(
                variant.subject, f"{vprefix}.subject", f"step {number} variant {label} subject", known
            )
            _check_template(variant.body, f"{vprefix}.body", f"step {number} variant {label} body", known)
            variants.append({"label": label, **variant.model_dump()})
        # Every way the step can be sent needs a body, and the first step a subject.
        for j, (subject, body) in enumerate(
            [
                (
                    v.subject if v.subject is not None else step.subject,
                    v.body if v.body is not None else step.body,
                )
                for v in step.variants
            ]
            or [(step.subject, step.body)]
        ):
            where = f"{prefix}.variants[{j}]" if step.variants else prefix
            if not (body or "").strip():
                raise InvalidField(f"{where}.body: step {number} needs a body (HTML)", f"{where}.body")
            if i == 0 and not (subject or "").strip():
                raise InvalidField(
                    f"{where}.subject: step 1 needs a subject (follow-ups may leave it out to reply in the "
                    "same thread)",
                    f"{where}.subject",
                )
        seen_conditions: set[str] = set()
        for k, branch in enumerate(step.branches):
            bprefix = f"{prefix}.branches[{k}]"
            if branch.condition in seen_conditions:
                raise InvalidField(
                    f"{bprefix}.condition: step {number} already branches on {branch.condition}",
                    f"{bprefix}.condition",
                )
            seen_conditions.add(branch.condition)
            target = branch.next_step
            if target is not None and not number < target <= count:
                allowed = (
                    f"to steps {number + 1}–{count}, or null to end the sequence"
                    if number < count
                    else "to null (end the sequence): it is the last step"
                )
                raise InvalidField(
                    f"{bprefix}.next_step: step {number} can only branch forward, {allowed}; got {target}",
                    f"{bprefix}.next_step",
                )
        stored.append(
            {
                "subject": step.subject,
                "body": step.body,
                "delay": step.delay.model_dump(),
                "variants": variants,
                "branches": [b.model_dump() for b in step.branches],
            }
        )
    return stored


async def _inbox_ids(session: AsyncSession, caller: Caller, inbox_ids: list[str]) -> dict[str, str]:
    """Check the ids are this tenant's inboxes; returns id → status."""
    seen: set[str] = set()
    for i, inbox_id in enumerate(inbox_ids):
        if inbox_id in seen:
            raise InvalidField(f"inbox_ids[{i}]: {inbox_id} is listed twice", f"inbox_ids[{i}]")
        seen.add(inbox_id)
    statuses = await InboxLookup(session, caller.tenant).statuses(
        [i for i in inbox_ids if has_prefix(i, "inb")]
    )
    for i, inbox_id in enumerate(inbox_ids):
        if inbox_id not in statuses:
            ledger = "live" if caller.livemode else "test"
            raise InvalidField(
                f"inbox_ids[{i}]: no inbox {inbox_id} in this workspace's {ledger} mode; list your inboxes "
                "with "
                f"GET /v1/inboxes",
                f"inbox_ids[{i}]",
            )
    return statuses


def _none_usable(statuses: dict[str, str], inbox_ids: list[str]) -> bool:
    return not any(statuses.get(i) == USABLE_INBOX for i in inbox_ids)


def _describe_unusable(statuses: dict[str, str], inbox_ids: list[str]) -> str:
    if not inbox_ids:
        return "it has no inboxes"
    return (
        "none of its inboxes is connected ("
        + ", ".join(f"{i} is {statuses.get(i, 'gone')}" for i in inbox_ids)
        + ")"
    )


async def workspace_footer(session: AsyncSession, caller: Caller) -> Footer | None:
    """The workspace's footer, or None while it has no postal address."""
    workspace = await find_workspace(session, caller.workspace_id)
    if workspace is None or workspace.postal_address is None or not workspace.postal_address.strip():
        return None
    return Footer(workspace.postal_address, workspace.footer_text)


async def _check_footer(session: AsyncSession, caller: Caller) -> None:
    if await workspace_footer(session, caller) is None:
        raise InvalidField(
            "include_footer: the workspace has no postal address for the footer; set it first with "
            'PATCH /v1/workspace {"postal_address": …}',
            "include_footer",
        )


# ---------------------------------------------------------------- writing


async def create_campaign(session: AsyncSession, caller: Caller, body: CampaignCreate) -> Campaign:
    daily_limit = _daily_limit(caller, body.daily_limit)
    custom_variables = _custom_variables(body.custom_variables)
    steps = validate_steps(body.steps, custom_variables)
    window = _send_window(body.send_window)
    await _inbox_ids(session, caller, body.inbox_ids)
    if body.include_footer:
        await _check_footer(session, caller)
    repo = CampaignRepository(session, caller.tenant)
    campaign = await repo.add(
        repo.new(
            name=body.name,
            status=CampaignStatus.draft.value,
            steps=steps,
            daily_limit=daily_limit,
            send_window=window,
            track_opens=body.track_opens,
            track_clicks=body.track_clicks,
            stop_on_reply=body.stop_on_reply,
            text_only=body.text_only,
            include_footer=body.include_footer,
            custom_variables=custom_variables,
            skip_verification=body.skip_verification,
        )
    )
    await repo.set_inboxes(campaign.id, body.inbox_ids)
    return campaign


NOT_NULL = (
    "name",
    "inbox_ids",
    "steps",
    "track_opens",
    "track_clicks",
    "stop_on_reply",
    "text_only",
    "include_footer",
    "custom_variables",
    "skip_verification",
)


async def update_campaign(
    session: AsyncSession, caller: Caller, campaign_id: str, body: CampaignUpdate
) -> Campaign:
    campaign = await get_campaign(session, caller, campaign_id)
    changes = body.model_dump(exclude_unset=True)
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            raise InvalidField(f"{name} cannot be null; leave it out to keep the current value", name)
    if campaign.status == CampaignStatus.archived.value:
        raise Conflict(f"Campaign {campaign.id} is archived and can no longer be changed")

    values: dict[str, Any] = {}
    if "daily_limit" in changes:  # null: back to the tier's maximum
        values["daily_limit"] = _daily_limit(caller, body.daily_limit)
    custom_variables = campaign.custom_variables
    if "custom_variables" in changes:
        custom_variables = values["custom_variables"] = _custom_variables(body.custom_variables or [])
    if "steps" in changes:
        values["steps"] = validate_steps(body.steps or [], custom_variables)
    elif "custom_variables" in changes:
        # Dropping a name the current steps use without a fallback is caught here, naming the step.
        validate_steps(
            [StepIn.model_validate(s | {"variants": _strip_labels(s)}) for s in campaign.steps],
            custom_variables,
        )
    if "send_window" in changes:
        values["send_window"] = _send_window(body.send_window)
    if changes.get("include_footer"):
        await _check_footer(session, caller)
    for name in (
        "name",
        "track_opens",
        "track_clicks",
        "stop_on_reply",
        "text_only",
        "include_footer",
        "skip_verification",
    ):
        if name in changes:
            values[name] = changes[name]
    if "inbox_ids" in changes:
        inbox_ids = body.inbox_ids or []
        statuses = await _inbox_ids(session, caller, inbox_ids)
        if campaign.status == CampaignStatus.active.value and _none_usable(statuses, inbox_ids):
            raise InvalidField(
                "inbox_ids: an active campaign needs at least one connected inbox; include one, or pause the "
                "campaign first",
                "inbox_ids",
            )
        await CampaignRepository(session, caller.tenant).set_inboxes(campaign.id, inbox_ids)

    old_zone = campaign.send_window.get("timezone")
    for name, value in values.items():
        setattr(campaign, name, value)
    campaign.updated_at = utcnow()
    await session.flush()
    new_zone = campaign.send_window.get("timezone")
    if new_zone != old_zone:
        # Leads that took their zone from the campaign follow it.
        zone, source = timezones.campaign_fallback(new_zone)
        await LeadRepository(session, caller.tenant).refresh_fallback_zones(campaign.id, zone, source.value)
    return campaign


def _strip_labels(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in variant.items() if k != "label"} for variant in step.get("variants", [])]


async def pause_campaign(session: AsyncSession, caller: Caller, campaign_id: str) -> Campaign:
    campaign = await get_campaign(session, caller, campaign_id)
    if campaign.status == CampaignStatus.archived.value:
        raise Conflict(f"Campaign {campaign.id} is archived; it cannot be paused or resumed")
    if campaign.status == CampaignStatus.draft.value:
        raise Conflict(
            f"Campaign {campaign.id} is a draft and has not started; POST "
            f"/v1/campaigns/{campaign.id}/resume starts it"
        )
    if campaign.status == CampaignStatus.active.value:
        campaign.status = CampaignStatus.paused.value
        campaign.updated_at = utcnow()
        await sending.campaign_running(session, caller.tenant, campaign.id, False)
        await session.flush()
    return campaign


async def resume_campaign(session: AsyncSession, caller: Caller, campaign_id: str) -> Campaign:
    campaign = await get_campaign(session, caller, campaign_id)
    if campaign.status == CampaignStatus.archived.value:
        raise Conflict(f"Campaign {campaign.id} is archived; it cannot be paused or resumed")
    if campaign.status == CampaignStatus.active.value:
        return campaign
    if not campaign.steps:
        raise Conflict(f"Campaign {campaign.id} cannot start: it has no steps; PATCH steps first", "steps")
    inbox_ids = (await CampaignRepository(session, caller.tenant).inbox_ids([campaign.id]))[campaign.id]
    statuses = await InboxLookup(session, caller.tenant).statuses(inbox_ids)
    if _none_usable(statuses, inbox_ids):
        raise Conflict(
            f"Campaign {campaign.id} cannot start: {_describe_unusable(statuses, inbox_ids)}; connect or "
            "reconnect "
            f"an inbox, or PATCH inbox_ids",
            "inbox_ids",
        )
    campaign.status = CampaignStatus.active.value
    campaign.updated_at = utcnow()
    await sending.campaign_running(session, caller.tenant, campaign.id, True)
    await session.flush()
    return campaign


async def archive_campaign(session: AsyncSession, caller: Caller, campaign_id: str) -> Campaign:
    campaign = await get_campaign(session, caller, campaign_id)
    if campaign.status != CampaignStatus.archived.value:
        campaign.status = CampaignStatus.archived.value
        campaign.updated_at = utcnow()
        await sending.campaign_running(session, caller.tenant, campaign.id, False)
        await session.flush()
    return campaign


# ---------------------------------------------------------------- preview


PREVIEW_MESSAGE_ID = "msg_preview"


async def preview(
    session: AsyncSession, caller: Caller, campaign_id: str, body: PreviewRequest, urls: TrackingUrls
) -> dict[str, Any]:
    campaign = await get_campaign(session, caller, campaign_id)
    lead = await LeadRepository(session, caller.tenant).get(body.lead_id)
    if lead is None:
        raise InvalidField(f"lead_id: no lead {body.lead_id}", "lead_id")
    if lead.campaign_id != campaign.id:
        raise InvalidField(
            f"lead_id: lead {lead.id} belongs to campaign {lead.campaign_id}, not {campaign.id}", "lead_id"
        )
    if body.step > len(campaign.steps):
        raise InvalidField(
            f"step: campaign {campaign.id} has {len(campaign.steps)} step(s); got {body.step}", "step"
        )
    step = campaign.steps[body.step - 1]
    label, subject, html_body = pick(step, body.variant)
    seed = body.seed if body.seed is not None else templates.stable_seed(lead.id, body.step, label)
    rng = random.Random(seed)
    unsubscribe_url = urls.unsubscribe(PREVIEW_MESSAGE_ID)
    values = templates.lead_values(lead) | {UNSUBSCRIBE_VARIABLE: unsubscribe_url}
    missing: list[str] = []
    if body.step > 1 and not (subject or "").strip():
        first_label, first_subject, _ = pick(
            campaign.steps[0], label if _has_label(campaign.steps[0], label) else None
        )
        # The first email's subject as that lead got it: step 1 renders its subject first, with this seed.
        first_seed = body.seed if body.seed is not None else templates.stable_seed(lead.id, 1, first_label)
        subject_text = "Re: " + templates.render(
            first_subject or "", values, random.Random(first_seed), missing=missing
        )
    else:
        subject_text = templates.render(subject or "", values, rng, missing=missing)
    rendered = templates.render(html_body or "", values, rng, escape_html=True, missing=missing)
    footer = await workspace_footer(session, caller) if campaign.include_footer else None
    if campaign.include_footer:
        # Sending adds the opt-out line even while the workspace has no postal address (it was cleared later).
        rendered += render_footer(footer or Footer(""), unsubscribe_url)
    return {
        "campaign_id": campaign.id,
        "lead_id": lead.id,
        "step": body.step,
        "variant": label,
        "subject": subject_text,
        "body": None if campaign.text_only else rendered,
        "text": html_to_text(rendered),
        "text_only": campaign.text_only,
        "unsubscribe_url": unsubscribe_url,
        "missing_variables": missing,
    }


def _has_label(step: dict[str, Any], label: str | None) -> bool:
    return label is not None and any(v["label"] == label for v in step.get("variants", []))


def pick(step: dict[str, Any], label: str | None) -> tuple[str | None, str | None, str | None]:
    """(label, subject, body) of one way to send a step: a variant by label (default the first), or the
    step."""
    variants = step.get("variants", [])
    if not variants:
        if label is not None:
            raise InvalidField(
                f"variant: this step has no variants; leave variant out (got {label!r})", "variant"
            )
        return None, step.get("subject"), step.get("body")
    chosen = variants[0] if label is None else next((v for v in variants if v["label"] == label), None)
    if chosen is None:
        labels = ", ".join(v["label"] for v in variants)
        raise InvalidField(f"variant: this step's variants are {labels}; got {label!r}", "variant")
    subject = chosen["subject"] if chosen.get("subject") is not None else step.get("subject")
    body = chosen["body"] if chosen.get("body") is not None else step.get("body")
    return chosen["label"], subject, body
