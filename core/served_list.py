"""The served-list record: what the impression log stores for every list it serves, and what
the write path reads back to attribute clicks. Defined once, here.

`serving/impressions.py` writes, per list:

- one entry of the stream `keys.impressions(keys.rec_shard(id))`, field `data` =
  `ServedList.to_json()`:
  {"id", "user", "surface", "variant", "t", "cached", "degraded",
  "items": [[item_id, sources, position, explored, propensity], ...],
  "q": {"limit", "item_id"?, "category"?, "language"?} (the request, for replays)};
- the hash `keys.rec_info(id)`: item id -> `Attribution.to_json()` = {"user", "sources",
  "position", "surface", "variant", "explored", "propensity"}, expiring after the attribution
  window.

The attribution script (`core/scripts/attribute_click.lua`, run by the worker for each
positive interaction citing a list) decodes the cited item's `rec_info` field and reads the
`ATTRIBUTION_FIELDS`: `surface` and `variant` (strings, else nothing is attributed), `user`
(the only user whose clicks count; empty = anyone) and `sources` (a list of names). It adds 1
to the `click|...` fields `stats_fields` names, beside the `imp|...` fields the impression
log counts, in `keys.surface_stats(keys.rec_shard(id))` (totals: the sum over shards), and
in `keys.surface_stats_hour(shard, hour_of(t))` for the hour it counted them in (impressions:
the hour the list was served; clicks: the hour the worker attributed them), kept
`HOURLY_KEEP_S`.
Names in those fields are `stats_name`s (no `|`, at most `MAX_NAME` characters), so a field
always splits back into kind, surface, source and variant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

HOURLY_KEEP_S = 8 * 86_400  # hourly counts kept 8 days: a week-on-week comparison has a day spare
SERVED_ITEMS_KEEP_S = HOURLY_KEEP_S  # distinct-items sketches: as long as the counts beside them
MAX_NAME = 64  # characters of a surface, source or variant name in a stats field
ATTRIBUTION_FIELDS = ("user", "surface", "variant", "sources")  # what the script reads
_COMPACT = (",", ":")
# `json.dumps(x, separators=_COMPACT)` without building an encoder on every call
_ENCODE = json.JSONEncoder(separators=_COMPACT).encode


def stats_name(value: object, default: str) -> str:
    """A name usable in a `kind|surface|source|variant` field (no separator, bounded)."""
    text = str(value)[:MAX_NAME].replace("|", "_") if value is not None else ""
    return text or default


def hour_of(t: float) -> int:
    """The hour bucket (`keys.surface_stats_hour`) of unix time `t`."""
    return int(t // 3600)


def hourly_ttl(hour: int, now: float) -> int:
    """Seconds an hour bucket has left to live (at least 1)."""
    return max(1, int(hour * 3600 + HOURLY_KEEP_S - now))


LATENCY_BUCKETS_MS = (10, 25, 50, 100, 200, 500, 1000, 2500)  # upper bounds; then "inf"


def list_fields(
    surface: str, variant: str, degraded: bool, ms: float | None, safety: int | None = None
) -> list[str]:
    """The hourly `surface_stats` fields one served list adds 1 to, whatever its items (an
    experiment's guardrails): `list`, `degraded` if it was, its latency bucket as the source
    part of `lat|<surface>|<bucket ms or inf>|<variant>`, and for a list computed afresh
    `fresh` and `safety` once per candidate the safety rule dropped."""
    out = [f"list|{surface}|*|{variant}"]
    if safety is not None:
        out += [f"fresh|{surface}|*|{variant}"] + [f"safety|{surface}|*|{variant}"] * safety
    if degraded:
        out.append(f"degraded|{surface}|*|{variant}")
    if ms is not None:
        bucket = next((str(b) for b in LATENCY_BUCKETS_MS if ms <= b), "inf")
        out.append(f"lat|{surface}|{bucket}|{variant}")
    return out


def stats_fields(kind: str, surface: str, variant: str, sources: Sequence[str]) -> list[str]:
    """The `surface_stats` fields one item of a list adds 1 to (per source, then the total)."""
    return [*(f"{kind}|{surface}|{s}|{variant}" for s in sources), f"{kind}|{surface}|*|{variant}"]


class ServedItem(NamedTuple):
    """One item of a served list, as the list showed it (a tuple: built 20 times a request)."""

    item_id: str
    sources: tuple[str, ...]
    position: int
    explored: bool
    propensity: float | None

    def row(self) -> list[Any]:
        return [self.item_id, list(self.sources), self.position, self.explored, self.propensity]


@dataclass(frozen=True)
class Attribution:
    """What a click on one served item is attributed to (a field of the list's hash)."""

    user: str
    sources: tuple[str, ...]
    position: int
    surface: str
    variant: str
    explored: bool
    propensity: float | None

    def to_json(self) -> str:
        body = {
            "user": self.user,
            "sources": list(self.sources),
            "position": self.position,
            "surface": self.surface,
            "variant": self.variant,
            "explored": self.explored,
            "propensity": self.propensity,
        }
        return _ENCODE(body)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Attribution:
        d = json.loads(raw)
        return cls(
            user=str(d["user"]),
            sources=tuple(str(s) for s in d["sources"]),
            position=int(d["position"]),
            surface=str(d["surface"]),
            variant=str(d["variant"]),
            explored=bool(d["explored"]),
            propensity=None if d["propensity"] is None else float(d["propensity"]),
        )


@dataclass(frozen=True)
class ServedList:
    """One served list: who got it, where, under which variant, and its items in order."""

    id: str
    user: str
    surface: str
    variant: str
    t: float
    cached: bool
    degraded: bool
    items: tuple[ServedItem, ...]
    # How long the request took (ms) and, computed afresh, how many candidates the safety rule
    # dropped: for the experiment guardrails; not in the stream record.
    ms: float | None = None
    safety: int | None = None
    # What the request asked besides user and surface (limit, context item, filters): for
    # replaying it (off-policy evaluation); None in records written before it was kept.
    query: dict[str, Any] | None = None

    def to_json(self) -> str:
        """The impression stream's `data` field."""
        body = {
            "id": self.id,
            "user": self.user,
            "surface": self.surface,
            "variant": self.variant,
            "t": self.t,
            "cached": self.cached,
            "degraded": self.degraded,
            "items": [it.row() for it in self.items],
        }
        if self.query:
            body["q"] = self.query
        return _ENCODE(body)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ServedList:
        d = json.loads(raw)
        items = tuple(
            ServedItem(
                item_id=str(i),
                sources=tuple(str(s) for s in sources),
                position=int(position),
                explored=bool(explored),
                propensity=None if propensity is None else float(propensity),
            )
            for i, sources, position, explored, propensity in d["items"]
        )
        return cls(
            id=str(d["id"]),
            user=str(d["user"]),
            surface=str(d["surface"]),
            variant=str(d["variant"]),
            t=float(d["t"]),
            cached=bool(d["cached"]),
            degraded=bool(d["degraded"]),
            items=items,
            query=dict(d["q"]) if isinstance(d.get("q"), dict) else None,
        )

    def attributions(self) -> dict[str, str]:
        """The list's hash: item id -> its `Attribution` JSON, byte for byte what
        `Attribution.to_json()` writes, with the list's own fields encoded once."""
        user, surface, variant = (_ENCODE(v) for v in (self.user, self.surface, self.variant))
        head = f'{{"user":{user},"sources":'
        tail = f',"surface":{surface},"variant":{variant},"explored":'
        sources: dict[tuple[str, ...], str] = {}  # a list has a few distinct source sets
        out: dict[str, str] = {}
        for it in self.items:
            src = sources.get(it.sources)
            if src is None:
                src = sources[it.sources] = _ENCODE(list(it.sources))
            explored = "true" if it.explored else "false"
            out[it.item_id] = (
                f'{head}{src},"position":{int(it.position)}{tail}{explored},'
                f'"propensity":{_number(it.propensity)}}}'
            )
        return out


def _number(value: float | None) -> str:
    """A float as `json.dumps` writes it (`repr` when finite), or `null`."""
    if value is None:
        return "null"
    return repr(float(value)) if math.isfinite(value) else _ENCODE(value)
