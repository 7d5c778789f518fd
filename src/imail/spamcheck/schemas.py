from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from imail.kit.schemas import RequestModel


class SpamCheckRequest(RequestModel):
    lead_id: str | None = Field(
        None,
        description="A lead of this campaign to render for; default: a sample lead (Alex Morgan, Example "
        "Inc).",
    )


class SpamRule(BaseModel):
    name: str = Field(description="SpamAssassin's rule name, like HTML_IMAGE_ONLY_16.")
    score: float = Field(description="Points it added (negative: it counted in the email's favour).")
    description: str


class StepScore(BaseModel):
    step: int = Field(description="1-based step number.")
    variant: str | None = Field(description="The A/B variant rendered (the one this lead would get).")
    subject: str
    score: float = Field(description="SpamAssassin's total for the email.")
    threshold: float = Field(
        description="The score from which spamd calls an email spam (its required_score)."
    )
    is_spam: bool
    rules: list[SpamRule] = Field(description="Every rule that fired, as spamd reported it.")


class SpamCheck(BaseModel):
    object: Literal["spam_check"] = "spam_check"
    campaign_id: str
    lead_id: str | None = Field(description="The lead rendered for; null for the sample lead.")
    steps: list[StepScore]
