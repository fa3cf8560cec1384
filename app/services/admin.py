"""Operator actions: dead letters, the event queue, jobs and model versions."""

from __future__ import annotations

from typing import Any

import redis

from app.state import AppState
from core.connect import allowed_model as _allowed_model
from core.errors import InvalidRequest, NotFound
from core.redis_typed import Fields, stream_range
from core.stores.jobs import JobStore
from embeddings.text import ModelNotAllowed

MODEL_KINDS = ("cf", "ranker")


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _dead_letter_out(eid: Any, fields: dict[Any, Any]) -> dict[str, Any]:
    f = {_s(k): _s(v) for k, v in fields.items()}
    t = f.get("t")
    return {
        "id": _s(eid),
        "original_id": f.get("origin") or f.get("original_id"),
        "type": f.get("type"),
        "error": f.get("error", ""),
        "enqueued_at": float(t) if t and t.replace(".", "", 1).isdigit() else None,
        "data": f.get("data"),
    }


def list_dead_letters(state: AppState, *, limit: int, after: str | None) -> dict[str, Any]:
    """Oldest first; `after` is the last id of the previous page."""
    key = state.keys.dead_letters
    start = f"({after}" if after else "-"
    try:
        rows = stream_range(state.redis.xrange(key, min=start, max="+", count=limit))
    except redis.ResponseError as e:
        raise InvalidRequest(f"after: not a dead-letter id ({e})") from e
    items = [_dead_letter_out(i, f) for i, f in rows]
    return {
        "items": items,
        "next": items[-1]["id"] if len(items) == limit else None,
        "total": int(state.redis.xlen(key)),
    }


def replay_dead_letters(state: AppState, ids: list[str]) -> dict[str, Any]:
    """Put dead letters back on the event stream under their original identity, atomically
    per letter (a replayed interaction that had been applied is still applied only once)."""
    key = state.keys.dead_letters
    replayed, missing = [], []
    for did in dict.fromkeys(ids):
        try:
            rows = stream_range(state.redis.xrange(key, min=did, max=did))
        except redis.ResponseError as e:
            raise InvalidRequest(f"ids: {did!r} is not a dead-letter id") from e
        if not rows:
            missing.append(did)
            continue
        f = {_s(k): _s(v) for k, v in rows[0][1].items()}
        body: Fields = {"type": f.get("type", ""), "data": f.get("data", ""), "t": f.get("t", "0")}
        origin = f.get("origin") or f.get("original_id")
        if origin:
            body["origin"] = origin
        pipe = state.redis.pipeline(transaction=True)
        pipe.xadd(state.keys.events, body)
        pipe.xdel(key, did)
        new_id, _ = pipe.execute()
        replayed.append({"dead_letter_id": did, "event_id": _s(new_id)})
    return {"replayed": replayed, "missing": missing}


def discard_dead_letter(state: AppState, dead_id: str) -> None:
    try:
        n = state.redis.xdel(state.keys.dead_letters, dead_id)
    except redis.ResponseError as e:
        raise InvalidRequest(f"{dead_id!r} is not a dead-letter id") from e
    if not n:
        raise NotFound(f"no dead letter {dead_id}")


def queue_status(state: AppState) -> dict[str, Any]:
    r, k = state.redis, state.keys
    group = state.settings.worker.group
    out: dict[str, Any] = {
        "stream": k.events,
        "length": int(r.xlen(k.events)),
        "dead_letters": int(r.xlen(k.dead_letters)),
        "group": group,
        "pending": 0,
        "lag": None,
        "consumers": [],
    }
    try:
        groups = {_s(g["name"]): g for g in r.xinfo_groups(k.events)}
    except redis.ResponseError:  # no stream yet
        return out
    g = groups.get(group)
    if g is None:
        return out
    out["pending"] = int(g["pending"])
    last = _s(g["last-delivered-id"])
    # Entries not yet delivered to any worker (Redis 7 reports it; count it on 6.x).
    out["lag"] = g.get("lag")
    if out["lag"] is None:
        out["lag"] = len(stream_range(r.xrange(k.events, min=f"({last}", max="+", count=100_000)))
    out["consumers"] = [
        {"name": _s(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
        for c in r.xinfo_consumers(k.events, group)
    ]
    return out


def allowed_model(state: AppState, name: str) -> str:
    """The text model a re-index may switch to (422 for anything not allow-listed)."""
    try:
        return _allowed_model(state.settings, name)
    except ModelNotAllowed as e:
        raise InvalidRequest(str(e)) from e


def jobs(state: AppState) -> JobStore:
    return JobStore(state.redis, state.keys)


def get_job(state: AppState, job_id: str) -> dict[str, Any]:
    job = jobs(state).get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id} (finished jobs are kept 7 days)")
    return job


def models(state: AppState, limit: int = 20) -> dict[str, Any]:
    """Per model kind: the current version, the newest `limit` versions and how many exist."""
    out: dict[str, Any] = {}
    for kind in MODEL_KINDS:
        versions = state.models.versions(kind)
        out[kind] = {
            "current": state.models.current(kind),
            "total": len(versions),
            "versions": [
                {"version": v, **info} for v, info in sorted(versions.items(), reverse=True)[:limit]
            ],
        }
    return out
