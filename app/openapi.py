"""The OpenAPI schema, completed with the bounds that depend on settings or on the date.

Route declarations are static; some limits are not: `limit` is capped by
`serving.max_limit`, `surface` must be one of the configured surfaces, `birth_year` may not
be after the current year and an event's `timestamp` not after the end of tomorrow (UTC).
The schema states the limits the runtime enforces, so a client generated from it (or a
fuzzer) sends nothing the server refuses for a reason the schema hides. Date-bound limits
move once a day; the schema is rebuilt when the UTC day changes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from core.domain import latest_timestamp
from core.settings import Settings

DAY = 86_400
# Routes that refuse an unknown surface (analytics filters by any name it has counted).
CHECKED_SURFACE_PARAMS = {
    "/v1/recommendations",
    "/v1/recommendations/why-not",
    "/v1/admin/rules",
}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    generate = app.openapi
    built_on = {"day": -1}

    def openapi() -> dict[str, Any]:
        today = int(time.time()) // DAY
        if app.openapi_schema is None or built_on["day"] != today:
            app.openapi_schema = None
            # A copy: routes share their `openapi_extra` parameters between apps, and
            # `complete` writes each app's own bounds into them.
            schema = copy.deepcopy(generate())
            complete(schema, settings)
            app.openapi_schema = schema
            built_on["day"] = today
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], settings: Settings) -> None:
    """Write the settings' and today's bounds into a generated schema (in place)."""
    surfaces = sorted(settings.surfaces)
    for path, ops in schema["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                s = param.get("schema", {})
                if param["name"] == "surface" and path in CHECKED_SURFACE_PARAMS:
                    _set_enum(s, surfaces)
                elif param["name"] == "limit" and path.startswith("/v1/recommendations"):
                    _set_bound(s, "integer", "maximum", settings.serving.max_limit)
    components = schema.get("components", {}).get("schemas", {})
    for name, props in _properties(components):
        if "birth_year" in props:
            _set_bound(props["birth_year"], "integer", "maximum", time.gmtime().tm_year)
        if name == "InteractionIn" and "timestamp" in props:
            _set_bound(props["timestamp"], "number", "maximum", latest_timestamp())
        if name == "RuleIn" and "surfaces" in props:
            _set_enum(props["surfaces"]["items"], surfaces)
        if name in ATTRIBUTE_BODIES and "attributes" in props:
            _declare(props["attributes"], settings.catalog.attributes)


# Request bodies whose `attributes` may hold only the declared attributes, each of its type
# (answers keep the general shape: an attribute no longer declared may still be stored).
ATTRIBUTE_BODIES = ("Item", "ItemFields")


def _declare(s: dict[str, Any], declared: dict[str, str]) -> None:
    """The catalogue's own attributes: exactly these names, each with its type's schema."""
    general: dict[str, Any] = next(iter(s.pop("patternProperties", {}).values()), {})
    by_kind = {_kind(b): b for b in general.get("anyOf", [])}
    s["properties"] = {n: by_kind[k] for n, k in declared.items() if k in by_kind}
    s["additionalProperties"] = False


def _kind(branch: dict[str, Any]) -> str:
    return {"boolean": "boolean", "number": "number", "string": "string", "array": "list"}[
        str(branch.get("type"))
    ]


def _branches(s: dict[str, Any]) -> list[dict[str, Any]]:
    # An optional field is {"anyOf": [{"type": ..., ...}, {"type": "null"}]}.
    return list(s.get("anyOf", [s]))


def _set_bound(s: dict[str, Any], kind: str, key: str, value: int) -> None:
    for branch in _branches(s):
        if branch.get("type") == kind:
            branch[key] = value


def _set_enum(s: dict[str, Any], values: list[str]) -> None:
    for branch in _branches(s):
        if branch.get("type") == "string":
            branch.pop("pattern", None)
            branch["enum"] = values


def _properties(components: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, component in components.items():
        props = component.get("properties")
        if isinstance(props, dict):
            yield name, props
