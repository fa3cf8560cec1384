"""The logged lists off-policy evaluation learns from: a window of the impression streams
(core/served_list.py) with the clicks the worker attributed to each item.

A list counts when it was computed for the request (a cached list repeats an earlier draw; a
degraded one was not served by the policy), names its propensities, and its attribution hash
still exists: clicks are kept for the attribution window (`impressions.ttl_s`, 24 h by
default), so older lists cannot say whether they were clicked and are skipped. For a
registered candidate, the list's hash also holds the candidate's shadow list (serving/shadow.py).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from app.state import AppState
from core.keys import RECS_SHARDS
from core.redis_typed import stream_range, text
from core.served_list import ServedList
from serving.shadow import FIELD_PREFIX

CHUNK = 1000
MAX_SCANNED_PER_SHARD = 200_000


@dataclass(frozen=True)
class Logged:
    record: ServedList
    rewards: dict[str, float]  # item -> its reward (items without one: 0)
    # The shadow list asked for (serving/shadow.py): the candidate's items, and whether the
    # logging policy could have shown each where the candidate does.
    shadow: tuple[list[str], list[bool]] | None = None


@dataclass
class LoggedLists:
    lists: list[Logged] = field(default_factory=list)  # newest first
    skipped: dict[str, int] = field(default_factory=dict)  # why lists were left out


def logged_lists(
    state: AppState,
    surface: str,
    variant: str,
    *,
    since: float,
    limit: int,
    shadow: str | None = None,
    reward: dict[str, float] | None = None,
) -> LoggedLists:
    """Up to `limit` of the newest lists of `surface` / `variant` served after `since` (with
    `shadow`, only those the candidate of that name shadowed, with its list), each item's
    reward: 1 if clicked (any attributed positive event), or with `reward` the sum of the
    weights of the event types the user had on it."""
    marks = [f"~ev:{kind}:" for kind in reward] if reward else ["~clicked:"]
    weights = list(reward.values()) if reward else [1.0]
    skipped: Counter[str] = Counter()
    records: list[ServedList] = []
    for shard in range(RECS_SHARDS):
        records += _shard(state, shard, surface, variant, since, limit, skipped)
    records.sort(key=lambda r: r.t, reverse=True)
    records = records[:limit]
    out = LoggedLists(skipped=dict(skipped))
    pipe = state.redis.pipeline(transaction=False)
    for rec in records:
        first = rec.items[0].item_id
        fields = [first, FIELD_PREFIX + (shadow or "")]
        fields += [m + it.item_id for it in rec.items for m in marks]
        pipe.hmget(state.keys.rec_info(rec.id), fields)
    for rec, got in zip(records, pipe.execute() if records else [], strict=True):
        if got[0] is None:  # the attribution hash expired: clicks unknown
            skipped["attribution_expired"] += 1
            continue
        shadowed = _shadow(got[1]) if shadow else None
        if shadow and shadowed is None:
            skipped["not_shadowed"] += 1
            continue
        rewards: dict[str, float] = {}
        for n, it in enumerate(rec.items):
            seen = got[2 + n * len(marks) : 2 + (n + 1) * len(marks)]
            value = sum(w for w, s in zip(weights, seen, strict=True) if s is not None)
            if value:
                rewards[it.item_id] = value
        out.lists.append(Logged(rec, rewards, shadowed))
    out.skipped = dict(skipped)
    return out


def _shard(
    state: AppState,
    shard: int,
    surface: str,
    variant: str,
    since: float,
    limit: int,
    skipped: Counter[str],
) -> list[ServedList]:
    """The shard's matching lists, newest first, scanning back to `since`."""
    stream, top, scanned = state.keys.impressions(shard), "+", 0
    out: list[ServedList] = []
    floor = str(int(since * 1000))
    while len(out) < limit and scanned < MAX_SCANNED_PER_SHARD:
        rows = stream_range(state.redis.xrevrange(stream, max=top, min=floor, count=CHUNK))
        for _, fields in rows:
            try:
                rec = ServedList.from_json(fields[b"data"])
            except (KeyError, ValueError, TypeError):
                skipped["malformed"] += 1
                continue
            if rec.surface != surface or rec.variant != variant:
                continue
            reason = _unusable(rec)
            if reason:
                skipped[reason] += 1
            else:
                out.append(rec)
        scanned += len(rows)
        if len(rows) < CHUNK:
            break
        top = "(" + text(rows[-1][0])
    return out


def _shadow(raw: bytes | None) -> tuple[list[str], list[bool]] | None:
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        items = [str(i) for i in d["items"]]
        possible = [bool(p) for p in d["possible"]]
    except (ValueError, KeyError, TypeError):
        return None
    return (items, possible) if len(items) == len(possible) else None


def _unusable(rec: ServedList) -> str | None:
    if rec.cached:
        return "cached"
    if rec.query and rec.query.get("profiling") == "off":
        return "no_profiling"  # built without personal data: not the policy under test
    if rec.degraded:
        return "degraded"
    if not rec.items:
        return "empty"
    if any(it.propensity is None or it.propensity <= 0 for it in rec.items):
        return "no_propensity"
    return None
