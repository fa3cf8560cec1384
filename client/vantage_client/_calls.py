"""One builder per API route (the client methods' signatures and docstrings come from here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx
from pydantic import BaseModel, TypeAdapter

from vantage_client import _params, inputs
from vantage_client import models as m
from vantage_client._requests import (
    Body,
    Call,
    Pager,
    adapted,
    body,
    build,
    new_idempotency_key,
    nothing,
    parse_model,
    text,
)

_MODEL_KINDS = TypeAdapter(dict[str, m.ModelKind])
_ACCEPTED = parse_model(m.Accepted)


def _accepted(response: httpx.Response) -> m.Accepted:
    """An `Accepted`, marked `replayed` when the server answered from a first attempt."""
    out = _ACCEPTED(response)
    out.replayed = response.headers.get("idempotent-replayed") == "true"
    return out


# operations


def health() -> Call[m.Health]:
    """Liveness: the API process answers (no key needed)."""
    return build("health", parse_model(m.Health))


def ready() -> Call[m.Health]:
    """Readiness of Redis and Milvus; `status` is `unavailable` (not an error) when one is down."""
    return build("ready", parse_model(m.Health), answers=frozenset({503}))


def metrics() -> Call[str]:
    """Prometheus metrics as text (scope admin unless the server made them public)."""
    return build("metrics", text)


# catalogue


def put_item(item_id: str, item: Body) -> Call[m.Accepted]:
    """Create or replace an item (`ItemFields` or a dict); indexed by a worker shortly."""
    return build("put_item", _accepted, {"item_id": item_id}, json=body(item, inputs.ItemFields))


def put_items(items: Iterable[Body]) -> Call[m.Accepted]:
    """Create or replace up to 1,000 items (`Item`s, with their `item_id`) in one call."""
    payload = {"items": [body(i, inputs.Item) for i in items]}
    # Upserts: a repeat writes the same items again, harmless.
    return build("put_items", _accepted, json=payload, retry_safe=True)


def get_item(item_id: str) -> Call[m.ItemOut]:
    """The stored item (NotFound for an unknown, deleted or not yet indexed item)."""
    return build("get_item", parse_model(m.ItemOut), {"item_id": item_id})


def delete_item(item_id: str) -> Call[m.Accepted]:
    """Remove an item: never recommended again from now on."""
    return build("delete_item", _accepted, {"item_id": item_id})


def search_items(q: str, *, limit: int = 10, category: str | None = None) -> Call[m.SearchResults]:
    """Items nearest in meaning to the text `q` (hidden ones included), best first."""
    params: dict[str, str | int | None] = {"q": q, "limit": limit, "category": category}
    return build("search_items", parse_model(m.SearchResults), params=params)


# users


def put_user(user_id: str, profile: Body) -> Call[m.UserOut]:
    """Create or **replace** a user's whole profile (`UserFields`); fields left out are cleared."""
    sent = body(profile, inputs.UserFields)
    return build("put_user", parse_model(m.UserOut), {"user_id": user_id}, json=sent)


def patch_user(user_id: str, changes: Body) -> Call[m.UserOut]:
    """Change only the fields set (None clears one); creates the profile if there is none."""
    sent = body(changes, inputs.UserFields)
    return build("patch_user", parse_model(m.UserOut), {"user_id": user_id}, json=sent)


def get_user(user_id: str) -> Call[m.UserOut]:
    """A user's profile and most recent interactions (admin key: personal data)."""
    return build("get_user", parse_model(m.UserOut), {"user_id": user_id})


def erase_user(user_id: str, *, wait_s: float = 10.0) -> Call[m.ErasureReceipt]:
    """Erase every trace of a user; the receipt is `pending` if not applied within `wait_s`."""
    return build(
        "erase_user",
        parse_model(m.ErasureReceipt),
        {"user_id": user_id},
        {"wait_s": wait_s},
        slow_s=wait_s,
    )


def get_erasure(user_id: str) -> Call[m.ErasureReceipt]:
    """The receipt of the user's latest erasure."""
    return build("get_erasure", parse_model(m.ErasureReceipt), {"user_id": user_id})


# events and recommendations


def log_interactions(
    events: Body | Iterable[Body], *, idempotency_key: str | None = None
) -> Call[m.Accepted]:
    """Log one interaction or a list of up to 1,000 (`Interaction`s or dicts), each a
    signed-in `user_id`'s or a guest's `session_id`'s.

    Sent with an `Idempotency-Key` (a new UUID unless given) that every retry of this call
    reuses: the server answers a repeat from the first attempt and logs nothing twice."""
    key = idempotency_key or new_idempotency_key()
    batch = [events] if isinstance(events, BaseModel | Mapping) else list(events)
    return build(
        "log_interactions",
        _accepted,
        json=[body(e, inputs.Interaction) for e in batch],
        headers={"Idempotency-Key": key},
        retry_safe=True,
    )


def recommend(
    user_id: str | None = None,
    surface: str = "homepage",
    *,
    session_id: str | None = None,
    item_id: str | None = None,
    limit: int | None = None,
    category: str | None = None,
    language: str | None = None,
    debug: bool = False,
    details: bool = False,
    pages: int | None = None,
    cursor: str | None = None,
    profiling: bool = True,
    device: str | None = None,
    region: str | None = None,
    local_hour: int | None = None,
    filter: str | None = None,
) -> Call[m.Recommendations]:
    """What `user_id` (or a guest's `session_id`) should see on `surface` (`item_id` is the
    context of related, up_next...); `details=True` adds each item's title and primary
    category; `pages=N` builds the list for N pages and `cursor=answer.next_cursor` fetches
    the next one."""
    params = {
        **_params.asker(user_id, session_id),
        **_params.request(
            surface=surface,
            item_id=item_id,
            limit=limit,
            category=category,
            language=language,
            profiling=profiling,
        ),
        **_params.context(device=device, region=region, local_hour=local_hour, filter=filter),
        "pages": pages,
        "cursor": cursor,
        "debug": debug or None,
        "details": details or None,
    }
    return build("recommend", parse_model(m.Recommendations), params=params)


# admin: jobs and models


def reindex(*, model: str | None = None, batch_size: int | None = None) -> Call[m.JobOut]:
    """Re-embed the catalogue (with the text `model`, if given) into a new collection; the job.

    While a re-index is queued or running, the server answers with that job."""
    params = {"model": model, "batch_size": batch_size}
    sent = {k: v for k, v in params.items() if v is not None}
    return build("reindex", parse_model(m.JobOut), json=sent or None)


def refresh_models() -> Call[m.JobOut]:
    """Retrain the interaction model and the re-ranker in a worker; the job."""
    return build("refresh_models", parse_model(m.JobOut))


def list_models(*, limit: int = 20) -> Call[dict[str, m.ModelKind]]:
    """Per model kind: the current version, how many exist and the newest `limit`."""
    return build("list_models", adapted(_MODEL_KINDS), params={"limit": limit})


def make_current(kind: str, version: str, *, force: bool = False) -> Call[m.ModelCurrent]:
    """Serve an earlier `version` of a model `kind` again (a rollback; the re-ranker only).

    A version that was withdrawn needs `force=True`."""
    payload = {"version": version, "force": force}
    return build("make_current", parse_model(m.ModelCurrent), {"kind": kind}, json=payload)


def ranker_drift() -> Call[m.RankerDrift]:
    """PSI per feature of the live ranker, served rows vs training rows, most drifted first
    (the answering API process's traffic)."""
    return build("ranker_drift", parse_model(m.RankerDrift))


def list_jobs(*, limit: int = 20, kind: str | None = None) -> Call[m.JobList]:
    """The newest `limit` jobs (at most 100; the server keeps no older pages), newest first."""
    return build("list_jobs", parse_model(m.JobList), params={"limit": limit, "kind": kind})


def get_job(job_id: str) -> Call[m.JobOut]:
    """State, stage, progress, rate and ETA of one job."""
    return build("get_job", parse_model(m.JobOut), {"job_id": job_id})


# admin: the event queue


def list_dead_letters(*, limit: int = 100, after: str | None = None) -> Call[m.DeadLetterPage]:
    """One page of events that could not be applied, oldest first (`next` leads on)."""
    params = {"limit": limit, "after": after}
    return build("list_dead_letters", parse_model(m.DeadLetterPage), params=params)


def iter_dead_letters(*, page_size: int = 100) -> Pager[m.DeadLetter, m.DeadLetterPage]:
    """Every dead letter, oldest first, fetched `page_size` at a time."""

    def following(page: m.DeadLetterPage) -> Call[m.DeadLetterPage] | None:
        return list_dead_letters(limit=page_size, after=page.next) if page.next else None

    return Pager(list_dead_letters(limit=page_size), lambda p: p.items, following)


def replay_dead_letters(ids: Iterable[str]) -> Call[m.Replayed]:
    """Put dead letters back on the queue under their original identity."""
    # An event keeps its identity when replayed, so a repeat never applies it twice.
    payload = {"ids": list(ids)}
    return build("replay_dead_letters", parse_model(m.Replayed), json=payload, retry_safe=True)


def discard_dead_letter(dead_id: str) -> Call[None]:
    """Drop one dead letter for good."""
    return build("discard_dead_letter", nothing, {"dead_id": dead_id})


def queue() -> Call[m.QueueStatus]:
    """The event partitions: lengths, pending and undelivered events, dead letters, workers."""
    return build("queue", parse_model(m.QueueStatus))


# admin: business rules and analytics


def put_rule(rule_id: str, rule: Body) -> Call[m.RuleOut]:
    """Create or replace a business rule (`RuleIn`); serving applies it within a second."""
    sent = body(rule, inputs.RuleIn)
    return build("put_rule", parse_model(m.RuleOut), {"rule_id": rule_id}, json=sent)


def get_rule(rule_id: str) -> Call[m.RuleOut]:
    """One rule."""
    return build("get_rule", parse_model(m.RuleOut), {"rule_id": rule_id})


def delete_rule(rule_id: str) -> Call[None]:
    """Delete a rule for good."""
    return build("delete_rule", nothing, {"rule_id": rule_id})


def list_rules(
    *, surface: str | None = None, limit: int = 100, after: str | None = None
) -> Call[m.RuleList]:
    """One page of rules by id (`next_after` leads on; `total` counts every page)."""
    params = {"surface": surface, "limit": limit, "after": after}
    return build("list_rules", parse_model(m.RuleList), params=params)


def iter_rules(*, surface: str | None = None, page_size: int = 100) -> Pager[m.RuleOut, m.RuleList]:
    """Every rule (that applies on `surface`, if given) by id, `page_size` at a time."""

    def following(page: m.RuleList) -> Call[m.RuleList] | None:
        if not page.next_after:
            return None
        return list_rules(surface=surface, limit=page_size, after=page.next_after)

    return Pager(list_rules(surface=surface, limit=page_size), lambda p: p.items, following)


def surface_metrics(
    *, surface: str | None = None, variant: str | None = None
) -> Call[m.SurfaceMetrics]:
    """Impressions, attributed clicks and CTR per surface, source and experiment variant."""
    params = {"surface": surface, "variant": variant}
    return build("surface_metrics", parse_model(m.SurfaceMetrics), params=params)


def surface_metrics_hourly(
    *,
    hours: int = 24,
    surface: str | None = None,
    variant: str | None = None,
    source: str | None = None,
) -> Call[m.HourlyMetrics]:
    """The same figures per hour for the last `hours` hours (kept 8 days), oldest first."""
    params = {"hours": hours, "surface": surface, "variant": variant, "source": source}
    return build("surface_metrics_hourly", parse_model(m.HourlyMetrics), params=params)


# Builders of the operators' routes live in `_calls_admin`; every builder is reachable here.
from vantage_client._calls_admin import (  # noqa: E402
    add_not_interested,
    cached_recommendations,
    canary,
    create_key,
    delete_ope_candidate,
    evaluate_offline,
    experiments,
    get_controls,
    get_key,
    list_keys,
    list_ope_candidates,
    list_users,
    me,
    merge_session,
    patch_controls,
    put_ope_candidate,
    remove_not_interested,
    reset_history,
    revoke_key,
    start_canary,
    stop_canary,
    why_not,
)

__all__ = [
    "add_not_interested",
    "cached_recommendations",
    "canary",
    "create_key",
    "delete_ope_candidate",
    "evaluate_offline",
    "experiments",
    "get_controls",
    "get_key",
    "list_keys",
    "list_ope_candidates",
    "list_users",
    "me",
    "merge_session",
    "patch_controls",
    "put_ope_candidate",
    "remove_not_interested",
    "reset_history",
    "revoke_key",
    "start_canary",
    "stop_canary",
    "why_not",
]
