from datetime import date

from imail.kit.versions.base import VersionChange

CHANGE = VersionChange(date(2026, 3, 10), "v1 stable. Public OpenAPI 3.1 spec at /openapi.json.")
