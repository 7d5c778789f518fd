from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, WithJsonSchema, field_validator
from typing_extensions import TypeAliasType

from imail.kit.schemas import RequestModel, ResponseModel
from imail.kit.text import StoredText
from imail.leads.tags import MAX_TAG_LENGTH, MAX_TAGS
from imail.models.lead import InterestStatus, LeadStatus, TimezoneSource, VerificationStatus

MAX_BULK = 5000
# Values are checked (scalars only) with the row, so that a bad one is reported as custom_variables.<name>.
# Named aliases are one schema component each, so generated clients get one well-named type per concept.
CustomVariables = TypeAliasType(
    "CustomVariables",
    Annotated[
        dict[str, Any],
        WithJsonSchema(
            {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}
        ),
    ],
)
VerificationFilter = TypeAliasType(
    "VerificationFilter", Literal["valid", "risky", "invalid", "unknown", "unverified"]
)
LeadStatusChange = TypeAliasType("LeadStatusChange", Literal["active", "paused"])
TAGS_DESCRIPTION = (
    f"Free labels, at most {MAX_TAGS}: trimmed and lower-cased (`VIP` and ` vip ` are one tag), "
    f"1–{MAX_TAG_LENGTH} "
    "characters, without `,` or `;`."
)
# Items are checked by leads.tags (so that a bad tag is reported as `tags`, row by row in bulk calls).
TAGS_SCHEMA: dict[str, Any] = {"items": {"type": "string", "maxLength": MAX_TAG_LENGTH}, "maxItems": MAX_TAGS}


class LeadInput(RequestModel):
    """One lead's fields (everything but the campaign)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    email: str = Field(max_length=320, description="Checked with email-validator; stored lower-case.")
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    company: str | None = Field(None, max_length=200)
    title: str | None = Field(None, max_length=200)
    phone: str | None = Field(
        None, max_length=40, description="International format (+14155550123) helps infer the zone."
    )
    country: str | None = Field(None, max_length=2, description="ISO 3166-1 alpha-2 code, like US or FR.")
    timezone: str | None = Field(
        None,
        max_length=64,
        description="IANA name. Default: inferred from phone or country, else the campaign's window zone, "
        "else UTC.",
    )
    custom_variables: CustomVariables = Field(
        default_factory=dict,
        description="Values for `{{name}}` in the steps (strings, numbers, booleans); names use letters, "
        "digits and _.",
    )
    tags: list[Any] = Field(default_factory=list, description=TAGS_DESCRIPTION, json_schema_extra=TAGS_SCHEMA)


class LeadCreate(LeadInput):
    campaign_id: str


class LeadBulkCreate(RequestModel):
    campaign_id: str
    # Rows are checked one by one (bad ones are reported, not fatal), so they are not validated as a whole
    # here.
    leads: list[SkipValidation[LeadInput]] = Field(description=f"1–{MAX_BULK} leads.")

    @field_validator("leads", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if isinstance(value, list) and not 1 <= len(value) <= MAX_BULK:
            raise ValueError(f"send 1–{MAX_BULK} leads per call (got {len(value)}); split larger lists")
        return value


class LeadImport(RequestModel):
    """The multipart/form-data fields of a CSV import."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # StoredText: form fields miss the request-level check JSON bodies get, so their text is checked here
    # (kit.text).
    campaign_id: StoredText = Field(description="The campaign to add the leads to.")
    file: UploadFile = Field(description="A CSV file (UTF-8) whose first row names the columns.")
    mapping: StoredText | None = Field(
        None,
        description='JSON object, lead field → column header: {"email": "Work Email", "first_name": "First", '
        '"custom_variables": {"city": "City"}}. Default: the columns named like lead fields.',
    )
    delimiter: StoredText | None = Field(
        None, description="`,` `;` `|` or `\\t`; default: guessed from the header row."
    )


class LeadUpdate(RequestModel):
    """Fields to change. `custom_variables` replaces the whole object; `timezone: null` infers it again."""

    model_config = ConfigDict(str_strip_whitespace=True)

    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    company: str | None = Field(None, max_length=200)
    title: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    country: str | None = Field(None, max_length=2)
    timezone: str | None = Field(None, max_length=64)
    custom_variables: CustomVariables | None = None
    status: LeadStatusChange | None = Field(None, description="Pause or resume this lead.")
    interest_status: InterestStatus | None = Field(
        None, description="Feeds the funnel. `unsubscribed` also adds the address to the suppression list."
    )
    tags: list[Any] | None = Field(
        None,
        description="Replaces the lead's tags (`[]` removes them all). " + TAGS_DESCRIPTION,
        json_schema_extra=TAGS_SCHEMA,
    )


class Lead(ResponseModel):
    id: str
    object: Literal["lead"] = "lead"
    campaign_id: str
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    phone: str | None
    country: str | None
    timezone: str
    timezone_source: TimezoneSource = Field(description="Where the zone came from.")
    custom_variables: CustomVariables
    tags: list[str] = Field(description="Sorted, normalized.")
    status: LeadStatus
    interest_status: InterestStatus | None
    verification_status: VerificationStatus | None = Field(
        None, description="The last verification's outcome (POST /v1/leads/verify); null: never verified."
    )
    verification_reasons: list[str] | None = Field(
        None,
        description="Why: syntax, domain_not_found, null_mx, no_mx_a_fallback, dns_unavailable, "
        "disposable_domain, role_address.",
    )
    verified_at: datetime | None = None
    livemode: bool
    created_at: datetime
    updated_at: datetime


class LeadVerify(RequestModel):
    """Which leads to verify: a campaign's, given ones, or given ones of a campaign."""

    campaign_id: str | None = Field(None, description="Every lead of this campaign.")
    lead_ids: list[str] | None = Field(None, description=f"These leads (1–{MAX_BULK}).")
    only_unverified: bool = Field(False, description="Leave out leads verified before.")

    @field_validator("lead_ids")
    @classmethod
    def _size(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not 1 <= len(value) <= MAX_BULK:
            raise ValueError(f"give 1–{MAX_BULK} lead ids (got {len(value)})")
        return value


class LeadDeleted(BaseModel):
    id: str
    object: Literal["lead"] = "lead"
    deleted: Literal[True] = True
    suppression_id: str = Field(description="The suppression entry that now holds the address.")


RowStatus = Literal["created", "duplicate", "suppressed", "invalid"]


class LeadRowResult(BaseModel):
    index: int = Field(
        description="0-based position in `leads` (bulk) or among the file's data rows (import)."
    )
    status: RowStatus
    id: str | None = Field(description="The new lead's id (created rows).")
    email: str | None = Field(description="The normalized address, when it could be read.")
    reason: str | None = Field(description="Why the row was not created.")
    field: str | None = Field(description="The lead field at fault (invalid rows).")
    line: int | None = Field(
        None, description="Import only: the file line the row ends on (the header is line 1)."
    )


class LeadBulkResult(BaseModel):
    object: Literal["lead_bulk_result", "lead_import_result"]
    campaign_id: str
    total: int
    created: int
    duplicates: int
    suppressed: int
    invalid: int
    results: list[LeadRowResult] = Field(description="One entry per row, in order.")


class LeadFilter(RequestModel):
    """Which leads: the filters of `GET /v1/leads`. Every filter given must hold (`tags`: every tag
    listed)."""

    campaign_id: str | None = None
    status: LeadStatus | None = None
    interest_status: InterestStatus | None = None
    email: str | None = Field(None, max_length=320, description="An exact address (any casing).")
    tags: list[Any] = Field(
        default_factory=list,
        description="Leads carrying every one of these tags.",
        json_schema_extra=TAGS_SCHEMA,
    )
    verification_status: VerificationFilter | None = Field(
        None, description="The last verification's outcome, or `unverified` (never verified)."
    )


class LeadTagChange(RequestModel):
    """Add and remove tags on every lead a filter matches, in one transaction."""

    filter: LeadFilter = Field(description="The leads to change; `{}` means every lead of this ledger.")
    add: list[Any] = Field(default_factory=list, description="Tags to add.", json_schema_extra=TAGS_SCHEMA)
    remove: list[Any] = Field(
        default_factory=list, description="Tags to remove.", json_schema_extra=TAGS_SCHEMA
    )


class LeadTagChangeResult(ResponseModel):
    object: Literal["lead_tag_change"] = "lead_tag_change"
    matched: int = Field(description="Leads the filter matched.")
    added: int = Field(description="Tags added (a lead that already had a tag does not count).")
    removed: int = Field(description="Tags removed.")
