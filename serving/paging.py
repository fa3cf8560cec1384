"""Paged lists: `pages=N` computes one list `N x limit` long, shows its first `limit` items and
keeps the rest, so that `cursor=` hands out the next page of *the same list*: one
recommendation id, no item twice, and nothing reshuffled by events that arrive while the user
pages (the list is stored, not recomputed).

The later pages are kept in Redis (`keys.pages(recommendation_id)`, `serving.page_ttl_s`),
beside the list's attribution hash; a page is safety-checked again when served (an item
deleted or hidden since is left out) and logged as an impression of its own, positions
continuing from the page before, so clicks on page 2 are attributed to the list as page 1's
are. The cursor is opaque (the list's id and the page number, base64url); only the user the
list was computed for can page it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import redis

from core import jsontext
from core.errors import DependencyUnavailable, InvalidRequest, NotFound
from core.resilience import DependencyDown
from core.stores.items import SERVING_FIELDS
from serving.policy.safety import HardFilters, passes
from serving.request import RecItem, RecResult
from serving.retrieval import Candidate
from serving.state import ServingState

_CURSOR = re.compile(r"^([0-9a-f]{32})\.(\d{1,3})$")


def first_page(result: RecResult, page_size: int | None) -> RecResult:
    """The part of a computed list shown now (all of it when not paged)."""
    if page_size is None or len(result["items"]) <= page_size:
        return result
    return {**result, "items": result["items"][:page_size]}


def encode(rec_id: str, page: int) -> str:
    return base64.urlsafe_b64encode(f"{rec_id}.{page}".encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[str, int]:
    """(recommendation id, page number); 422 when it is not a cursor this API gave."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    m = _CURSOR.match(raw)
    if not m or int(m.group(2)) < 2:
        raise InvalidRequest("cursor is not one this API gave: pass `next_cursor` as it came")
    return m.group(1), int(m.group(2))


def remember(state: ServingState, result: RecResult, page_size: int) -> str | None:
    """Keep a computed list's later pages; the cursor of page 2 (None: one page only)."""
    rest = result["items"][page_size:]
    r = getattr(state, "redis", None)
    if not rest or r is None or result.get("degraded"):
        return None
    body = {
        "user": result["user_id"],
        "surface": result["surface"],
        "variant": result["variant"],
        "size": page_size,
        "profiling": result.get("profiling", True),
        "generated_at": result["generated_at"],
        "items": rest,
    }
    ttl = state.settings.serving.page_ttl_s
    try:
        r.set(state.keys.pages(result["recommendation_id"]), json.dumps(body), ex=ttl)
    except redis.RedisError:
        return None  # the first page still serves; there is just no next one
    return encode(result["recommendation_id"], 2)


def page(
    state: ServingState, cursor: str, user_id: str, surface: str
) -> tuple[RecResult, str | None]:
    """Page `n` of a remembered list, and the next page's cursor (None: the last)."""
    rec_id, n = decode(cursor)
    r = getattr(state, "redis", None)
    try:
        raw = r.get(state.keys.pages(rec_id)) if r is not None else None
    except redis.RedisError as e:
        raise DependencyUnavailable("redis is unavailable: the next page cannot be read") from e
    if raw is None:
        raise NotFound(
            f"the list this cursor pages through has expired (pages are kept "
            f"{state.settings.serving.page_ttl_s} s): ask again without `cursor`"
        )
    body: dict[str, Any] = jsontext.loads(raw)
    if body["user"] != user_id or body["surface"] != surface:
        raise InvalidRequest("this cursor belongs to another user or surface's list")
    size, rest = int(body["size"]), list(body["items"])
    start = (n - 2) * size
    if start >= len(rest):
        raise NotFound("no such page: the list has fewer pages")
    try:
        items = _still_allowed(state, user_id, rest[start : start + size])
    except DependencyDown as e:
        raise DependencyUnavailable(f"the page cannot be checked now ({e.reason})") from e
    more = start + size < len(rest)
    result: RecResult = {
        "recommendation_id": rec_id,
        "user_id": user_id,
        "surface": surface,
        "variant": body["variant"],
        "items": items,
        "generated_at": float(body["generated_at"]),
        "cached": True,  # part of a list computed earlier (not a draw of its own)
        "degraded": False,
        "degraded_reasons": [],
        "profiling": bool(body.get("profiling", True)),
    }
    state.impressions.log(result)
    return result, encode(rec_id, n + 1) if more else None


def _still_allowed(state: ServingState, user_id: str, items: list[RecItem]) -> list[RecItem]:
    """The page as the rules stand now: without items deleted or hidden since, items the user
    may no longer see (a maturity raised, a region restricted: their current metadata) and
    items they said since they are not interested in."""
    ids = [it["item_id"] for it in items]
    ctx = state.users.context(user_id, recent_n=0)
    gone = state.catalogue.tombstoned(ids)
    meta = state.items.get(ids, fields=SERVING_FIELDS)
    cfg = state.settings.serving
    hard = HardFilters(
        ctx.max_maturity(cfg.unknown_age_max_maturity),
        ctx.region,
        ctx.language if cfg.language_filter == "strict" else None,
        frozenset(gone),
        ctx.controls.blocked("item"),
        unwanted=ctx.unwanted,
    )
    return [
        it
        for it in items
        if it["item_id"] in meta and passes(Candidate(it["item_id"], meta[it["item_id"]], []), hard)
    ]


__all__ = ["decode", "encode", "first_page", "page", "remember"]
