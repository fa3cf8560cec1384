"""Property-based fuzzing of every operation in /openapi.json (schemathesis + hypothesis)
against the real app on real servers: whatever the input, never a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.main import create_app
from tests.conftest import admin_token
from tests.integration.test_reindex import serve
from vantage.config import Settings

EXAMPLES_PER_OPERATION = 25


def test_no_operation_answers_5xx(settings: Settings) -> None:
    import httpx

    app = create_app(settings)
    schema = schemathesis.openapi.from_dict(app.openapi())
    token = admin_token(settings)
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 15
    with serve(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        for op in operations:
            _fuzz(op, base, http, token, failures)
    assert not failures, failures[:10]


def _fuzz(op: Any, base: str, http: Any, token: str, failures: list[str]) -> None:
    @hsettings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=op.as_strategy(), auth=st.sampled_from(["good", "none", "garbage"]))
    def run(case: Any, auth: str) -> None:
        kw = case.as_transport_kwargs(base_url=base)
        headers = {k: v for k, v in (kw.get("headers") or {}).items() if k != "Authorization"}
        if auth == "good":
            headers["Authorization"] = f"Bearer {token}"
        elif auth == "garbage":
            headers["Authorization"] = "Bearer " + "x" * 40
        data = kw.get("data")
        res = http.request(
            kw["method"],
            kw["url"],
            params=kw.get("params"),
            headers=headers,
            json=kw.get("json"),
            content=data if isinstance(data, bytes | str) else None,
        )
        if res.status_code >= 500:
            failures.append(f"{op.label}: {res.status_code} {res.text[:300]}")

    run()
