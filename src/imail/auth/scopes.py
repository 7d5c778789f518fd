"""Key scopes: `read` or `write` per resource family; a key without scopes may do everything."""

from __future__ import annotations

FAMILIES = (
    "campaigns",
    "leads",
    "inboxes",
    "analytics",
    "webhooks",
    "suppressions",
    "replies",
    "events",
    "keys",
    "workspace",
)
ACCESS = ("read", "write")
ALL_SCOPES = tuple(f"{family}:{access}" for family in FAMILIES for access in ACCESS)


def validate(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise ValueError(
            f"unknown scope {unknown[0]!r}; scopes look like 'campaigns:read' or 'webhooks:write'"
        )
    return sorted(set(scopes))


def allows(scopes: list[str] | None, family: str, access: str) -> bool:
    """Whether a key's scopes allow an access; `write` includes `read`."""
    if scopes is None:
        return True
    return f"{family}:{access}" in scopes or (access == "read" and f"{family}:write" in scopes)
