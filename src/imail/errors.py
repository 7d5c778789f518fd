"""One error hierarchy; `register_error_handlers` renders every status >= 400 in the contract's shape."""

from __future__ import annotations

import json
from typing import Any

import structlog
from asyncpg.exceptions import ConnectionDoesNotExistError, PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from imail.config import get_settings
from imail.kit.exceptions import causes
from imail.kit.request_id import current_request_id
from imail.kit.responses import JSONBody

log = structlog.get_logger("imail.errors")


class ImailError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}


class InvalidJSON(ImailError):
    code = "invalid_json"


class InvalidField(ImailError):
    code = "invalid_field"


class MissingField(ImailError):
    code = "missing_field"


class InvalidVersion(ImailError):
    code = "invalid_version"


class Unauthorized(ImailError):
    status = 401
    code = "unauthorized"


class Forbidden(ImailError):
    status = 403
    code = "forbidden"


class TierGated(ImailError):
    status = 403
    code = "tier_gated"


class NotFound(ImailError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ImailError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(ImailError):
    status = 408
    code = "request_timeout"


class Conflict(ImailError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ImailError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ImailError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(ImailError):
    status = 429
    code = "rate_limited"


class InternalError(ImailError):
    status = 500
    code = "internal_error"


class ServiceUnavailable(ImailError):
    status = 503
    code = "service_unavailable"


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    doc: str


class ErrorBody(BaseModel):
    """The body of every response with a status >= 400."""

    error: ErrorDetail
    request_id: str


def database_unavailable(exc: BaseException) -> bool:
    """Whether this error, or one it was raised from, is the database being out of reach rather than a bug: a
    connection refused, reset or lost mid-statement (the driver's error, or SQLAlchemy's wrapping of it
    flagged connection_invalidated), or the pool timing out because every connection waits on an unreachable
    server."""
    return any(
        isinstance(
            e,
            (
                OperationalError,
                InterfaceError,
                SQLAlchemyTimeoutError,
                OSError,
                PostgresConnectionError,
                ConnectionDoesNotExistError,
            ),
        )
        or (isinstance(e, DBAPIError) and e.connection_invalidated)
        for e in causes(exc)
    )


def error_body(code: str, message: str, field: str | None = None, request_id: str | None = None) -> dict:
    error: dict = {"code": code, "message": message}
    if field:
        error["field"] = field
    error["doc"] = f"{get_settings().docs_url}/{code}"
    return {"error": error, "request_id": request_id or current_request_id()}


def error_response(exc: ImailError) -> JSONBody:
    return JSONBody(error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers)


def _field_path(loc: tuple) -> str | None:
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path", "header")
        else [str(p) for p in loc]
    )
    if not parts:
        return None
    path = parts[0]
    for part in parts[1:]:
        path += f"[{part}]" if part.isdigit() else f".{part}"
    return path


def validation_to_error(exc: RequestValidationError) -> ImailError:
    """Map pydantic's first complaint to invalid_json / missing_field / invalid_field with a readable
    message."""
    errors = exc.errors()
    first: dict[str, Any] = (
        errors[0] if errors else {"type": "value_error", "loc": (), "msg": "invalid request"}
    )
    kind = first.get("type", "")
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return InvalidJSON(
            f"Request body is not valid JSON: {first.get('ctx', {}).get('error', 'parse error')}"
        )
    field = _field_path(loc)
    if kind == "missing":
        if loc == ("body",):
            return InvalidJSON("Request body is required and must be a JSON object")
        return MissingField(f"{field} is required", field)
    if loc == ("body",):
        return InvalidJSON("Request body must be a JSON object")
    message = str(first.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    return InvalidField(f"{field}: {message}" if field else message, field)


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImailError)
    async def _imail_error(request: Request, exc: ImailError) -> JSONBody:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONBody:
        error = validation_to_error(exc)
        content_type = request.headers.get("content-type", "")
        if isinstance(error, InvalidJSON) and content_type and "json" not in content_type:
            error = InvalidJSON(
                f"Request bodies are JSON: send `Content-Type: application/json` (got {content_type!r})"
            )
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONBody:
        if isinstance(exc.__cause__, ImailError):
            # FastAPI turns anything raised while it reads the body into a bare 400; keep our own error (the
            # request-context middleware's 413 and NUL refusals are raised from the body stream).
            return error_response(exc.__cause__)
        if isinstance(exc.__cause__, RecursionError):
            # The JSON parser recursing past Python's limit: a body nested hundreds of levels deep.
            return error_response(InvalidJSON("Request body is nested too deeply"))
        if isinstance(exc.__cause__, UnicodeDecodeError):
            return error_response(InvalidJSON("Request body is not valid UTF-8"))
        if exc.status_code == 404:
            err: ImailError = NotFound(f"No route {request.method} {request.url.path}")
        elif exc.status_code == 405:
            err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
            err.headers = dict(exc.headers or {})
        else:
            err = ImailError(str(exc.detail))
            err.status = exc.status_code
            err.code = "invalid_request" if exc.status_code < 500 else "internal_error"
        return error_response(err)

    @app.exception_handler(json.JSONDecodeError)
    async def _bad_json(request: Request, exc: json.JSONDecodeError) -> JSONBody:
        return error_response(InvalidJSON(f"Request body is not valid JSON: {exc.msg}"))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _db_down(request: Request, exc: Exception) -> JSONBody:
        if not database_unavailable(exc):
            return await _unexpected(request, exc)
        log.warning("database unavailable", error=str(getattr(exc, "orig", None) or exc)[:200])
        return error_response(
            ServiceUnavailable("The database is unavailable; retry shortly", headers={"Retry-After": "5"})
        )

    @app.exception_handler(OSError)
    async def _conn_down(request: Request, exc: OSError) -> JSONBody:
        log.warning("backing service unavailable", error=str(exc)[:200])
        return error_response(
            ServiceUnavailable(
                "A backing service is unavailable; retry shortly", headers={"Retry-After": "5"}
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONBody:
        if database_unavailable(exc):  # a lost connection surfacing through another layer's exception
            return await _db_down(request, exc)
        log.exception("unhandled error", path=request.url.path)
        return error_response(
            InternalError("Something went wrong on our side; send the request_id to support")
        )
