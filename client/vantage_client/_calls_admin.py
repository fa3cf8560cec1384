"""Builders of the operators' routes: API keys, experiments and the ranker canary (the rest
are in `_calls`, which re-exports these)."""

from __future__ import annotations

from vantage_client import _params, inputs
from vantage_client import models as m
from vantage_client._requests import Body, Call, body, build, nothing, parse_model

# API keys


def me() -> Call[m.Me]:
    """The calling key: its name, scopes and limits (any key may ask)."""
    return build("me", parse_model(m.Me))


def create_key(key: Body) -> Call[m.KeyCreated]:
    """Create an API key (`KeyIn`); the answer holds the key itself, shown only this once."""
    return build("create_key", parse_model(m.KeyCreated), json=body(key, inputs.KeyIn))


def list_keys(*, revoked: bool = False) -> Call[m.KeyList]:
    """Every key (never a secret); revoked ones too with `revoked=True`."""
    return build("list_keys", parse_model(m.KeyList), params={"revoked": revoked or None})


def get_key(key_id: str) -> Call[m.KeyOut]:
    """One key (never its secret)."""
    return build("get_key", parse_model(m.KeyOut), {"key_id": key_id})


def revoke_key(key_id: str) -> Call[m.KeyOut]:
    """Revoke a key (not the one this client uses: the server answers 409 `conflict`); the
    key's record, with the time it was revoked. Revoking twice changes nothing."""
    return build("revoke_key", parse_model(m.KeyOut), {"key_id": key_id}, retry_safe=True)


def experiments(*, surface: str | None = None, hours: int | None = None) -> Call[m.ExperimentList]:
    """Each surface's variants against default: CTR with always-valid intervals, guardrails
    and a decision (continue, ship, stop), over the last `hours` (server default if None)."""
    params = {"surface": surface, "hours": hours}
    return build("experiments", parse_model(m.ExperimentList), params=params)


# the ranker canary


def canary() -> Call[m.CanaryStatus]:
    """The latest ranker canary, its decisions, and (while it runs) what the evidence says."""
    return build("canary", parse_model(m.CanaryStatus))


def start_canary(
    version: str, *, share: float | None = None, margin: float | None = None
) -> Call[m.CanaryOut]:
    """Serve a saved re-ranker to `share` of users; promoted or rolled back automatically."""
    payload = {"version": version, "share": share, "margin": margin}
    sent = {k: v for k, v in payload.items() if v is not None}
    return build("start_canary", parse_model(m.CanaryOut), json=sent)


def stop_canary(*, reason: str | None = None) -> Call[m.CanaryOut]:
    """Roll the running canary back now."""
    sent = {"reason": reason} if reason else None
    return build("stop_canary", parse_model(m.CanaryOut), json=sent)


# why not this item?


def why_not(
    user_id: str | None,
    item_id: str,
    surface: str = "homepage",
    *,
    session_id: str | None = None,
    context_item_id: str | None = None,
    limit: int | None = None,
    category: str | None = None,
    language: str | None = None,
    recommendation_id: str | None = None,
    filter: str | None = None,
    region: str | None = None,
    device: str | None = None,
    local_hour: int | None = None,
    profiling: bool = True,
) -> Call[m.WhyNot]:
    """Why `item_id` is not in `user_id`'s (or `session_id`'s) list on `surface` (admin key):
    the stage that lost it and the numbers that decided; `recommendation_id` replays that
    list's exploration; `profiling=False` asks about the list built without personal data."""
    params = {
        **_params.asker(user_id, session_id),
        **_params.context(device=device, region=region, local_hour=local_hour, filter=filter),
        "item_id": item_id,
        "surface": surface,
        "context_item_id": context_item_id,
        "limit": limit,
        "category": category,
        "language": language,
        "recommendation_id": recommendation_id,
        "profiling": None if profiling else False,
    }
    return build("why_not", parse_model(m.WhyNot), params=params)


def cached_recommendations(
    user_id: str | None = None,
    surface: str = "homepage",
    *,
    session_id: str | None = None,
    item_id: str | None = None,
    limit: int | None = None,
    category: str | None = None,
    language: str | None = None,
    profiling: bool = True,
    device: str | None = None,
    region: str | None = None,
    local_hour: int | None = None,
    filter: str | None = None,
) -> Call[m.PrecomputedRecommendations]:
    """What is already computed for this request (the result cache, else the user's
    candidate set), without computing; `NotFound` when nothing is."""
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
    }
    model = parse_model(m.PrecomputedRecommendations)
    return build("cached_recommendations", model, params=params)


# off-policy evaluation


def evaluate_offline(evaluation: Body) -> Call[m.OpeOut]:
    """The CTR a candidate would have had on a surface's logged lists (`OpeIn`): estimates
    with intervals, or `refused` with the reason."""
    sent = body(evaluation, inputs.OpeIn)
    return build("evaluate_offline", parse_model(m.OpeOut), json=sent, retry_safe=True)


def list_ope_candidates() -> Call[m.OpeCandidates]:
    """The registered candidates serving shadows."""
    return build("list_ope_candidates", parse_model(m.OpeCandidates))


def put_ope_candidate(name: str, candidate: Body) -> Call[m.OpeCandidateOut]:
    """Register (or replace) a candidate to shadow (`OpeCandidateIn`)."""
    sent = body(candidate, inputs.OpeCandidateIn)
    return build("put_ope_candidate", parse_model(m.OpeCandidateOut), {"name": name}, json=sent)


def delete_ope_candidate(name: str) -> Call[None]:
    """Stop shadowing a candidate."""
    return build("delete_ope_candidate", nothing, {"name": name})


# users' own controls


def get_controls(user_id: str) -> Call[m.UserControls]:
    """The user's controls: paused, profiling, and what they are not interested in."""
    return build("get_controls", parse_model(m.UserControls), {"user_id": user_id})


def patch_controls(user_id: str, changes: Body) -> Call[m.UserControls]:
    """Pause or resume history, switch profiling off or on (`ControlsPatch`)."""
    sent = body(changes, inputs.ControlsPatch)
    return build("patch_controls", parse_model(m.UserControls), {"user_id": user_id}, json=sent)


def add_not_interested(user_id: str, entry: Body) -> Call[m.UserControls]:
    """The user is not interested in an item, category or creator (`NotInterested`)."""
    sent = body(entry, inputs.NotInterested)
    path = {"user_id": user_id}
    return build(
        "add_not_interested", parse_model(m.UserControls), path, json=sent, retry_safe=True
    )


def remove_not_interested(user_id: str, kind: str, value: str) -> Call[None]:
    """Take a "not interested" back."""
    path = {"user_id": user_id, "kind": kind, "value": value}
    return build("remove_not_interested", nothing, path)


def merge_session(user_id: str, session: str) -> Call[m.SessionMerge]:
    """Fold the guest session `session` into `user_id` once they sign in (exactly once: a
    repeat answers the same merge; `Conflict` if it went to another user)."""
    payload = {"session_id": session}
    model = parse_model(m.SessionMerge)
    return build("merge_session", model, {"user_id": user_id}, json=payload, retry_safe=True)


def reset_history(user_id: str) -> Call[m.Accepted]:
    """Start the user's learned profile from scratch (applied by a worker)."""
    return build("reset_history", parse_model(m.Accepted), {"user_id": user_id})


# users


def list_users(*, prefix: str = "", limit: int = 50, cursor: str = "0") -> Call[m.UserPage]:
    """Known user ids (by `prefix`), a page of about `limit`; `next_cursor` leads on."""
    params = {"prefix": prefix or None, "limit": limit, "cursor": cursor}
    return build("list_users", parse_model(m.UserPage), params=params)
