"""Operator actions: dead letters, the event queue, jobs and model versions."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from app.state import AppState
from core import events as ev
from core.connect import allowed_model as _allowed_model
from core.errors import Conflict, InvalidRequest, NotFound
from core.redis_typed import Fields, stream_range
from core.stores.jobs import JobStore
from core.stores.registry import load_ranker
from embeddings.text import ModelNotAllowed
from indexing.partitions import holders, live_workers
from indexing.worker import LAST_ACK_FIELD

log = logging.getLogger(__name__)
MODEL_KINDS = ("cf", "ranker")


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _dead_letter_out(p: int, eid: Any, fields: dict[Any, Any]) -> dict[str, Any]:
    f = {_s(k): _s(v) for k, v in fields.items()}
    t = f.get("t")
    return {
        "id": ev.event_id(_s(eid), p),
        "original_id": f.get("origin") or f.get("original_id"),
        "type": f.get("type"),
        "error": f.get("error", ""),
        "enqueued_at": float(t) if t and t.replace(".", "", 1).isdigit() else None,
        "data": f.get("data"),
    }


def _locate(dead_id: str, what: str) -> tuple[str, int]:
    """(entry id, partition) of a dead-letter id, or a 422 that says what is wrong. A
    partition this deployment does not have holds no dead letter (a 404 where one is named)."""
    try:
        return ev.split_id(dead_id)
    except ValueError as e:
        raise InvalidRequest(f"{what}: {e}") from e


def _order(item: dict[str, Any]) -> tuple[int, int, int]:
    entry, p = ev.split_id(item["id"])
    ms, seq = entry.split("-")
    return int(ms), int(seq), p


def list_dead_letters(state: AppState, *, limit: int, after: str | None) -> dict[str, Any]:
    """Every partition's dead letters, oldest first (by time, then partition); `after` is the
    last id of the previous page."""
    r, k = state.redis, state.keys
    entry, ap = _locate(after, "after") if after else ("", -1)
    items: list[dict[str, Any]] = []
    for p in range(k.partitions):
        # Past the cursor: later entries of partitions up to its own, the same time on later.
        start = "-" if not after else (f"({entry}" if p <= ap else entry)
        try:
            rows = stream_range(r.xrange(k.dead_letters(p), min=start, max="+", count=limit))
        except redis.ResponseError as e:
            raise InvalidRequest(f"after: not a dead-letter id ({e})") from e
        items += [_dead_letter_out(p, i, f) for i, f in rows]
    items = sorted(items, key=_order)[:limit]
    return {
        "items": items,
        "next": items[-1]["id"] if len(items) == limit else None,
        "total": sum(int(r.xlen(k.dead_letters(p))) for p in range(k.partitions)),
    }


def replay_dead_letters(state: AppState, ids: list[str]) -> dict[str, Any]:
    """Put dead letters back on the event stream of their partition under their original
    identity (a replayed interaction that had been applied is still applied only once)."""
    replayed, missing = [], []
    for did in dict.fromkeys(ids):
        entry, p = _locate(did, "ids")
        rows = []
        if p < state.keys.partitions:
            rows = stream_range(
                state.redis.xrange(state.keys.dead_letters(p), min=entry, max=entry)
            )
        if not rows:
            missing.append(did)
            continue
        event_id = _replay(state, p, entry, {_s(k): _s(v) for k, v in rows[0][1].items()})
        replayed.append({"dead_letter_id": did, "event_id": event_id})
    return {"replayed": replayed, "missing": missing}


def _replay(state: AppState, p: int, entry: str, f: dict[str, str]) -> str:
    """Append one dead letter to the partition its event routes to now, then drop it: one
    transaction when both are in one slot (the usual case: the partition it failed in)."""
    body: Fields = {"type": f.get("type", ""), "data": f.get("data", ""), "t": f.get("t", "0")}
    origin = f.get("origin") or f.get("original_id")
    if origin:
        body["origin"] = origin
    try:
        target = ev.partition_of(state.keys, f.get("type", ""), json.loads(f.get("data", "")))
    except (ValueError, AttributeError):
        target = p  # undecodable: back where it was (it will be dead-lettered again)
    one_slot = target == p or not ev.is_cluster(state.redis)
    pipe = state.redis.pipeline(transaction=one_slot)
    pipe.xadd(state.keys.stream(target), body)
    pipe.xdel(state.keys.dead_letters(p), entry)
    new_id, _ = pipe.execute()
    return ev.event_id(_s(new_id), target)


def discard_dead_letter(state: AppState, dead_id: str) -> None:
    entry, p = _locate(dead_id, "dead_id")
    if p >= state.keys.partitions or not state.redis.xdel(state.keys.dead_letters(p), entry):
        raise NotFound(f"no dead letter {dead_id}")


def _partition_status(state: AppState, p: int) -> dict[str, Any]:
    r, k, group = state.redis, state.keys, state.settings.worker.group
    stream = k.stream(p)
    out: dict[str, Any] = {
        "partition": p,
        "length": int(r.xlen(stream)),
        "dead_letters": int(r.xlen(k.dead_letters(p))),
        "pending": 0,
        "lag": 0,
        "consumers": [],
    }
    try:
        groups = {_s(g["name"]): g for g in r.xinfo_groups(stream)}
    except redis.ResponseError:  # no stream yet
        groups = {}
    g = groups.get(group)
    if g is None:
        out["lag"] = out["length"]
        return out
    out["pending"] = int(g["pending"])
    last = _s(g["last-delivered-id"])
    # Entries not yet delivered to any worker (Redis 7 reports it; count it on 6.x).
    out["lag"] = g.get("lag")
    if out["lag"] is None:
        out["lag"] = len(stream_range(r.xrange(stream, min=f"({last}", max="+", count=100_000)))
    out["consumers"] = [
        {"name": _s(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
        for c in r.xinfo_consumers(stream, group)
    ]
    return out


def queue_status(state: AppState) -> dict[str, Any]:
    """The event partitions: totals, each partition with its worker, and the live workers."""
    k = state.keys
    parts = [_partition_status(state, p) for p in range(k.partitions)]
    held = holders(state.redis, k)
    consumers: dict[str, dict[str, Any]] = {}
    for part in parts:
        part["worker"] = held.get(part["partition"])
        for c in part.pop("consumers"):
            seen = consumers.setdefault(c["name"], {**c, "pending": 0})
            seen["pending"] += c["pending"]
            seen["idle_ms"] = min(seen["idle_ms"], c["idle_ms"])
    return {
        "partitions": k.partitions,
        "group": state.settings.worker.group,
        **{f: sum(part[f] for part in parts) for f in ("length", "dead_letters", "pending", "lag")},
        "consumers": sorted(consumers.values(), key=lambda c: c["name"]),
        "workers": sorted(live_workers(state.redis, k)),
        "by_partition": parts,
    }


# A worker that has acknowledged nothing for this long while events wait is reported stuck.
STUCK_AFTER_S = 60.0


def worker_health(state: AppState) -> dict[str, Any]:
    """The indexing workers as `/readyz` reports them: live ones, events waiting (undelivered
    plus unacknowledged), seconds since any worker last acknowledged, and a status."""
    try:
        q = queue_status(state)
        last = state.redis.hget(state.keys.worker_stats, LAST_ACK_FIELD)
    except redis.RedisError as e:
        return {"status": "unknown", "error": f"{type(e).__name__}: {e}"[:300]}
    waiting = int(q["lag"]) + int(q["pending"])
    since = time.time() - int(last) / 1000 if last else None
    status = "ok"
    if not q["workers"]:
        status = "missing"
    elif waiting and (since is None or since > STUCK_AFTER_S):
        status = "stuck"
    return {
        "status": status,
        "live": len(q["workers"]),
        "waiting_events": waiting,
        "last_ack_s_ago": round(since, 1) if since is not None else None,
    }


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


def make_current(state: AppState, kind: str, version: str, *, force: bool) -> dict[str, Any]:
    """Serve an earlier `version` of `kind` again (a rollback); only the re-ranker, whose
    artefact is all it needs. A withdrawn version needs `force` (it was withdrawn for a reason)."""
    if kind != "ranker":
        raise Conflict(
            "only the re-ranker can be made current again: the interaction model's vectors live "
            "in Milvus and Redis, so roll it back by retraining (POST /v1/admin/models/refresh)"
        )
    registry = state.models
    info = registry.versions(kind).get(version)
    if info is None:
        raise NotFound(f"no {kind} version {version} (GET /v1/admin/models lists them)")
    previous = registry.current(kind)
    if previous == version:
        return {"kind": kind, "current": version, "previous": previous, "changed": False}
    if info.get("withdrawn") and not force:
        raise Conflict(
            f"{kind} {version} was withdrawn ({info['withdrawn']}); "
            "send force=true to serve it anyway"
        )
    try:
        load_ranker(registry.ranker_dir(version), version)
    except Exception as e:
        raise Conflict(f"{kind} {version} cannot be loaded ({type(e).__name__}: {e})") from e
    info = {k: v for k, v in info.items() if k != "withdrawn"}
    info.update(published=True, made_current_at=round(time.time(), 3), replaced=previous)
    registry.publish(kind, version, info)
    log.warning("%s %s made current by an operator (was %s)", kind, version, previous)
    return {"kind": kind, "current": version, "previous": previous, "changed": True}
