"""The client covers every route of the server's OpenAPI schema, and stays a client.

`vantage_client.routes.ROUTES` is compared with `app.openapi()` both ways; each entry is a
method of both clients; the package imports nothing of the server and keeps the repo's size
limits (tests/test_code_size.py walks only the server's packages).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel
from vantage_client import AsyncVantageClient, VantageClient, inputs, models
from vantage_client import _calls as calls
from vantage_client._endpoints import Endpoint, Endpoints, Pages
from vantage_client.routes import ROUTES, UNDOCUMENTED

from app.main import create_app
from core.settings import Settings
from tests.test_code_size import MAX_FUNCTION_LINES, MAX_MODULE_LINES, PACKAGES, ROOT, _functions

CLIENT = ROOT / "client" / "vantage_client"


# Client models whose name differs from their schema component; fields the client adds.
RENAMED = {
    "Profile": "UserFields",
    "ProfilePreferences": "Preferences",
    "Interaction": "InteractionIn",
    "SessionMerge": "SessionMerge",
}
CLIENT_ONLY = {"Accepted": {"replayed"}}
# Builder parameters that go in the request body (the schema's parameters are the others).
BODY_PARAMS = {"item", "items", "profile", "changes", "events", "rule", "ids"}
BODY_PARAMS |= {"model", "batch_size"}  # reindex: the fields of its body
BODY_PARAMS |= {"version", "force", "key"}  # make_current's body; create_key's
BODY_PARAMS |= {"share", "margin", "reason"}  # the canary's
BODY_PARAMS |= {"evaluation", "candidate"}  # off-policy evaluation's
BODY_PARAMS |= {"entry"}  # a "not interested"
BODY_PARAMS |= {"session"}  # a session's merge


def _schema() -> dict[str, Any]:
    return create_app(Settings(env="test")).openapi()


def _schema_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in _schema()["paths"].items() for method in ops}


def test_every_route_in_the_schema_has_a_client_method_and_no_method_is_stale() -> None:
    schema = _schema_routes()
    documented = {route for name, route in ROUTES.items() if name not in UNDOCUMENTED}
    assert schema - documented == set(), "routes without a client method (add them to ROUTES)"
    assert documented - schema == set(), "client routes the server no longer has"
    assert len(schema) >= 27  # an empty schema would pass the comparison


def test_the_models_have_the_fields_of_their_schema_components() -> None:
    components = _schema()["components"]["schemas"]
    checked = []
    for module in (models, inputs):
        for name, cls in vars(module).items():
            component = RENAMED.get(name, name)
            if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
                continue
            if component not in components:
                continue
            fields = set(cls.model_fields) - CLIENT_ONLY.get(name, set())
            assert fields == set(components[component]["properties"]), name
            checked.append(name)
    assert len(checked) >= 28, checked  # most models are checked, not skipped by a typo


def test_the_builders_take_the_parameters_of_their_operation() -> None:
    paths = _schema()["paths"]
    for name, (method, path) in ROUTES.items():
        if name in UNDOCUMENTED:
            continue
        op = paths[path][method.lower()]
        sent = {p["name"].lower().replace("-", "_") for p in op.get("parameters", [])}
        taken = set(inspect.signature(getattr(calls, name)).parameters)
        assert taken - BODY_PARAMS == sent, name
        assert bool(taken & BODY_PARAMS) == ("requestBody" in op), name
    reindex_body = _schema()["components"]["schemas"]["ReindexIn"]["properties"]
    assert set(inspect.signature(calls.reindex).parameters) == set(reindex_body)


def test_the_undocumented_routes_are_served_but_left_out_of_the_schema() -> None:
    app = create_app(Settings(env="test"))
    served = {
        (m, r.path)
        for r in app.routes
        if isinstance(getattr(r, "methods", None), set)
        for m in r.methods  # type: ignore[attr-defined]
    }
    for name in UNDOCUMENTED:
        assert ROUTES[name] in served
        assert ROUTES[name] not in _schema_routes()


def test_each_route_is_a_method_of_both_clients() -> None:
    declared = {
        name: attr for name, attr in vars(Endpoints).items() if isinstance(attr, Endpoint | Pages)
    }
    single = {name for name, attr in declared.items() if isinstance(attr, Endpoint)}
    assert single == set(ROUTES)
    # Each iterator follows a paged list the table has.
    pages = {name for name, attr in declared.items() if isinstance(attr, Pages)}
    assert pages == {"iter_rules", "iter_dead_letters"}
    assert {p.replace("iter_", "list_") for p in pages} <= set(ROUTES)
    for name in declared:
        assert getattr(Endpoints, name).__doc__, f"{name} has no docstring"
    # Bound to a client, the same declaration sends (sync) or makes a coroutine (async).
    with httpx.Client() as http:
        sync = VantageClient(http=http)
        assert sync.get_item.__name__ == "get_item" and callable(sync.iter_rules)
    http_async = httpx.AsyncClient()
    pending = AsyncVantageClient(http=http_async).health()
    assert inspect.iscoroutine(pending)
    pending.close()
    asyncio.run(http_async.aclose())


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_client_imports_nothing_of_the_server() -> None:
    modules = sorted(CLIENT.rglob("*.py"))
    assert len(modules) >= 10
    used = set().union(*(_imports(p) for p in modules))
    assert not used & set(PACKAGES), used & set(PACKAGES)
    stdlib = {"asyncio", "email", "functools", "inspect", "random", "time", "types", "typing"}
    stdlib |= {"collections", "dataclasses", "urllib", "uuid", "__future__"}
    assert used - stdlib == {"httpx", "pydantic", "vantage_client"}


def test_the_client_keeps_the_size_limits() -> None:
    for path in sorted(CLIENT.rglob("*.py")):
        source = path.read_text()
        assert len(source.splitlines()) <= MAX_MODULE_LINES, path
        for name, fn in _functions(ast.parse(source)):
            assert fn.end_lineno is not None
            length = fn.end_lineno - fn.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}: {name} has {length} lines"
