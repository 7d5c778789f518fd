from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from imail.apikeys import service
from imail.apikeys.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated
from imail.auth.deps import CallerDep, require_scope
from imail.db import SessionDep
from imail.idempotency.deps import Idempotent
from imail.kit.pagination import Page, PageParams, build_page, page_params

router = APIRouter(
    prefix="/keys", tags=["API keys"], dependencies=[Depends(require_scope("keys")), Idempotent]
)


@router.get("", response_model=Page[ApiKey])
async def list_api_keys(
    caller: CallerDep, session: SessionDep, params: Annotated[PageParams, Depends(page_params)]
):
    """List this workspace's API keys in the caller's ledger, newest first (redacted)."""
    return build_page(await service.list_keys(session, caller, params), params, ApiKey)


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(body: ApiKeyCreate, caller: CallerDep, session: SessionDep):
    """Create a key in the caller's workspace and ledger; its secret is shown only in this response."""
    issued = await service.create_key(session, caller, body.name, body.scopes)
    return ApiKeyCreated.model_validate(
        {**ApiKey.model_validate(issued.key).model_dump(), "secret": issued.secret}
    )


@router.delete("/{key_id}", response_model=ApiKey)
async def revoke_api_key(key_id: str, caller: CallerDep, session: SessionDep):
    """Revoke a key at once; requests made with it then answer 401."""
    return await service.revoke_key(session, caller, key_id)
