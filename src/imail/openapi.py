"""The OpenAPI 3.1 document: FastAPI's, with the security scheme and the version header described."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from imail.auth.deps import current_caller
from imail.kit import versions

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorBody"}
# The request-context middleware answers this for any operation that takes a body.
BODY_ERRORS = {"413": "Request body larger than IMAIL_MAX_BODY_BYTES"}


def _integer_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


# Every response's headers, declared so that generated clients expose them.
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "This request's id (`req_…`); quote it to support.",
        "schema": {"type": "string"},
    },
    "Imail-Version": {
        "description": "The API snapshot that answered (see the `Imail-Version` request header).",
        "schema": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    },
    "X-RateLimit-Limit": _integer_header(
        "The bucket's size (burst): per API key, or per client address for requests no key answers for."
    ),
    "X-RateLimit-Remaining": _integer_header("Whole requests left in the bucket."),
    "X-RateLimit-Reset": _integer_header("Seconds until the bucket is full again."),
}
RETRY_AFTER = _integer_header("Seconds to wait before retrying.")
IDEMPOTENT_REPLAYED = {
    "description": "`true` when this is the kept response of an earlier request with the same "
    "`Idempotency-Key`.",
    "schema": {"type": "string", "enum": ["true"]},
}


def _declare_headers(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("headers", {})
    components.update(RESPONSE_HEADERS)
    components["Retry-After"] = RETRY_AFTER
    components["Idempotent-Replayed"] = IDEMPOTENT_REPLAYED
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            operation.setdefault("responses", {}).setdefault(
                "429",
                {
                    "description": "Rate limited; see Retry-After",
                    "content": {"application/json": {"schema": ERROR_SCHEMA}},
                },
            )
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                for name in RESPONSE_HEADERS:
                    headers[name] = {"$ref": f"#/components/headers/{name}"}
                if status in ("429", "503"):
                    headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
                if method == "post" and path.startswith("/v1/") and status.startswith("2"):
                    headers["Idempotent-Replayed"] = {"$ref": "#/components/headers/Idempotent-Replayed"}


def _needs_key(dependant: Dependant) -> bool:
    return dependant.call is current_caller or any(_needs_key(d) for d in dependant.dependencies)


def authenticated_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every operation whose dependencies authenticate the caller: read off the routes
    themselves, so a public route (the OAuth callback, status, public metrics) is never documented as needing
    a key and a new authenticated one never documented as public."""
    # iter_route_contexts: the routes of included routers too, with their dependencies.
    return {
        (route.path_format, method.lower())
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        and route.path_format is not None
        and _needs_key(route.dependant)
        for method in route.methods or ()
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    authenticated = authenticated_operations(app)
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        servers=[{"url": "http://127.0.0.1:8000", "description": "make run"}],
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `imk_live_…` or `imk_test_…` (test mode, a separate ledger).",
    }
    version_header = {
        "name": versions.HEADER,
        "in": "header",
        "required": False,
        "description": "Pin to a dated snapshot: " + ", ".join(s.isoformat() for s in versions.SNAPSHOTS),
        # A pattern, not `format: date`: a date-typed header defeats client generators, and the server reads
        # the text itself (a malformed date is 400 invalid_version).
        "schema": {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}$",
            "examples": [versions.LATEST.isoformat()],
        },
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _document_errors(operation)
            if path.startswith("/v1/"):
                operation.setdefault("parameters", []).append(dict(version_header))
            # An explicit empty list marks a public operation (OpenAPI 3.1 §4.8.10): no key is sent.
            operation["security"] = [{"bearerAuth": []}] if (path, method) in authenticated else []
            if method == "post" and path.startswith("/v1/"):
                operation.setdefault("parameters", []).append(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Retry-safe POST: the first response is kept 24 h and replayed for "
                        "the same body.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                )
    for operations in schema.get("webhooks", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)  # the receiver's answers are not FastAPI's
    _mark_deprecations(schema)
    _declare_headers(schema)
    _reuse_components(schema)
    _drop_unused_validation_schemas(schema)
    _name_components_by_title(schema)
    _fit_request_and_response_schemas(schema)
    return schema


def _mark_deprecations(schema: dict[str, Any]) -> None:
    """`deprecated: true` on what the snapshots deprecate: the operation, its query parameter or body property
    (in the body's component, which every operation sharing it then shows), or the event's webhook entry."""
    components = schema.get("components", {}).get("schemas", {})
    for deprecation in versions.DEPRECATIONS:
        sunset = (
            f" Deprecated on {deprecation.deprecated_on}; stops working on {deprecation.sunset}. "
            f"{deprecation.note}"
        )
        if deprecation.kind == "event":
            entry = schema.get("webhooks", {}).get(deprecation.target, {}).get("post")
            if entry is not None:
                entry["deprecated"] = True
                entry["description"] = entry.get("description", "") + sunset
            continue
        method, path = deprecation.route or ("", "")
        operation = schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            continue
        if deprecation.kind == "route":
            operation["deprecated"] = True
            operation["description"] = operation.get("description", "") + sunset
            continue
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "query" and parameter.get("name") == deprecation.field_name:
                parameter["deprecated"] = True
        body = (
            operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        )
        target = components.get(body.get("$ref", "").rpartition("/")[2], body)
        field = target.get("properties", {}).get(deprecation.field_name)
        if field is not None:
            field["deprecated"] = True
            field["description"] = (field.get("description", "") + sunset).strip()


def _reuse_components(schema: dict[str, Any]) -> None:
    """Replace a model's schema written inline (pydantic inlines `SkipValidation[Model]`) by a reference to
    the component of the same title and content, so clients get one class for it, not a look-alike."""
    components = schema.get("components", {}).get("schemas", {})

    def walk(node: Any, inside: str | None) -> Any:
        if isinstance(node, dict):
            title = node.get("title")
            if (
                isinstance(title, str)
                and title != inside
                and title in components
                and node == components[title]
            ):
                return {"$ref": f"#/components/schemas/{title}"}
            return {key: walk(value, inside) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, inside) for item in node]
        return node

    for name in list(components):
        components[name] = walk(components[name], name)
    for key in ("paths", "webhooks"):
        if key in schema:
            schema[key] = walk(schema[key], None)


SCHEMA_REF = "#/components/schemas/"


def _rewrite_refs(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF) and ref[len(SCHEMA_REF) :] in renamed:
            node = {**node, "$ref": SCHEMA_REF + renamed[ref[len(SCHEMA_REF) :]]}
        return {key: _rewrite_refs(value, renamed) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item, renamed) for item in node]
    return node


def _name_components_by_title(schema: dict[str, Any]) -> None:
    """Key each component by its title: pydantic keys a generic model by its parameters (`Page_Lead_`), which
    generators that name types by key (openapi-typescript) hand to users as is; the title is the readable
    name the model chose (`LeadList`)."""
    components = schema.get("components", {}).get("schemas", {})
    renamed = {
        name: body["title"]
        for name, body in components.items()
        if isinstance(body.get("title"), str)
        and body["title"].isidentifier()
        and body["title"] != name
        and body["title"] not in components
    }
    if not renamed:
        return
    schema["components"]["schemas"] = {renamed.get(name, name): body for name, body in components.items()}
    for key in ("paths", "webhooks", "components"):
        if key in schema:
            schema[key] = _rewrite_refs(schema[key], renamed)


def _referenced(node: Any, components: dict[str, Any], found: set[str]) -> set[str]:
    """The components `node` refers to, directly or through other components."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            name = ref[len(SCHEMA_REF) :]
            if name not in found:
                found.add(name)
                _referenced(components[name], components, found)
        for value in node.values():
            _referenced(value, components, found)
    elif isinstance(node, list):
        for item in node:
            _referenced(item, components, found)
    return found


def _as_request(body: dict[str, Any]) -> dict[str, Any]:
    """A request schema: a property the server defaults may be left out, so its default moves to the
    description. Generators read `default` as "always present" (openapi-typescript's defaults make such a
    property required in the type), which holds for what the server sends, not for what a client sends."""
    if "properties" not in body:
        return body
    properties = {}
    for name, prop in body["properties"].items():
        if "default" in prop:
            prop = dict(prop)
            default = json.dumps(prop.pop("default"), ensure_ascii=False)
            prop["description"] = f"{prop.get('description', '').rstrip()} Default: `{default}`.".lstrip()
        properties[name] = prop
    return {**body, "properties": properties}


def _nullable(prop: dict[str, Any]) -> bool:
    types = prop.get("type")
    return (
        types == "null"
        or (isinstance(types, list) and "null" in types)
        or any(_nullable(option) for option in prop.get("anyOf", []) + prop.get("oneOf", []))
    )


def _as_response(body: dict[str, Any]) -> dict[str, Any]:
    """A success response or webhook payload: a field that defaults to a value (a `default`, or a factory,
    which leaves a non-nullable property out of `required`) is always sent, so `required` lists it. A
    nullable field without one defaults to null and may be left out of a body built by hand (a bulk result's
    import-only `line`): it stays optional."""
    if "properties" not in body:
        return body
    required = [
        name
        for name, prop in body["properties"].items()
        if name in body.get("required", []) or "default" in prop or not _nullable(prop)
    ]
    return {**body, "required": required}


def _fit_request_and_response_schemas(schema: dict[str, Any]) -> None:
    """Request schemas say what a client may leave out, success-response schemas what the server always
    sends. A component used on both sides whose two forms differ is split: the request side gets its own
    `<Name>In` copy (as `StepIn` is to `Step`). Error bodies are left as declared (`field` is sent only when
    the error names one)."""
    components = schema.get("components", {}).get("schemas", {})
    request_roots: list[Any] = []
    response_roots: list[Any] = []
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            request_roots.append(operation.get("requestBody"))
            response_roots.extend(
                r for status, r in operation.get("responses", {}).items() if status[0] in "23"
            )
    for operations in schema.get("webhooks", {}).values():
        for operation in operations.values():
            response_roots.append(operation.get("requestBody"))  # what the server sends to a receiver
    requests = _referenced(request_roots, components, set())
    responses = _referenced(response_roots, components, set())
    split: set[str] = set()
    for name in requests & responses:
        if _as_request(components[name]) != _as_response(components[name]):
            split.add(name)
    # A shared component that refers to a split one is split too, so each side's copy points at its own side.
    while grown := {
        n for n in (requests & responses) - split if _referenced(components[n], components, set()) & split
    }:
        split |= grown
    request_names = {name: f"{name}In" for name in split}
    clash = set(request_names.values()) & set(components)
    if clash:
        raise ValueError(f"request-side copies would replace existing components: {sorted(clash)}")
    fitted: dict[str, Any] = {}
    for name, body in components.items():
        if name in split:
            fitted[name] = _as_response(body)
            # Generators that name a class by the title (openapi-python-client) need it to differ too.
            copy = {**_as_request(body), "title": request_names[name]}
            fitted[request_names[name]] = _rewrite_refs(copy, request_names)
        elif name in requests:
            fitted[name] = _rewrite_refs(_as_request(body), request_names)
        elif name in responses:
            fitted[name] = _as_response(body)
        else:
            fitted[name] = body
    components.clear()
    components.update(fitted)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"] = _rewrite_refs(operation["requestBody"], request_names)


def _document_errors(operation: dict[str, Any]) -> None:
    """Every error is the JSON ErrorBody, whatever the success media type (an HTML page's 400 is JSON too).
    FastAPI's automatic 422 is dropped: validation failures are answered 400 (errors.validation_to_error)."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    if "requestBody" in operation:
        for status, description in BODY_ERRORS.items():
            responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {"application/json": {"schema": ERROR_SCHEMA}}


def _drop_unused_validation_schemas(schema: dict[str, Any]) -> None:
    schemas = schema.get("components", {}).get("schemas", {})
    text = json.dumps(schema["paths"]) + json.dumps(schema.get("webhooks", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
