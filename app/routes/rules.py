"""Business rules (pin, boost, bury) applied by the policy layer; admin scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.services import rules
from core.rules import RULE_ID_PATTERN, RuleIn, RuleList, RuleOut

router = APIRouter(
    prefix="/v1/admin/rules",
    tags=["rules"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)
RuleId = Annotated[
    str,
    Path(
        pattern=RULE_ID_PATTERN,
        description="rule id: 1-64 letters, digits and . _ : - (first char alphanumeric)",
    ),
]


@router.put(
    "/{rule_id}",
    response_model=RuleOut,
    responses={201: {"model": RuleOut, "description": "Created"}, **error_responses(413)},
)
def put_rule(rule_id: RuleId, body: RuleIn, state: StateDep, response: Response) -> RuleOut:
    """Create (201) or replace (200) a rule; serving applies it within about a second.

    Replacing keeps `created_at`. The number of rules is capped (422 `too_many_rules`)."""
    rule, created = rules.put_rule(state, rule_id, body)
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/v1/admin/rules/{rule_id}"
    return rule


@router.get("", response_model=RuleList)
def list_rules(
    state: StateDep,
    surface: Annotated[
        str | None,
        Query(pattern=r"^[a-z_]{1,32}$", description="only rules that apply on this surface"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="rules per page")] = 100,
    after: Annotated[
        str | None,
        Query(
            pattern=RULE_ID_PATTERN, description="the previous page's next_after: the page after it"
        ),
    ] = None,
) -> RuleList:
    """Rules by id, a page at a time; expired ones included (flagged `expired`) until pruned."""
    return rules.list_rules(state, surface, limit=limit, after=after)


@router.get("/{rule_id}", response_model=RuleOut, responses=error_responses(404))
def get_rule(rule_id: RuleId, state: StateDep) -> RuleOut:
    """One rule."""
    return rules.get_rule(state, rule_id)


@router.delete("/{rule_id}", status_code=204, responses=error_responses(404))
def delete_rule(rule_id: RuleId, state: StateDep) -> Response:
    """Delete a rule for good."""
    rules.delete_rule(state, rule_id)
    return Response(status_code=204)
