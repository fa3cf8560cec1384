"""Settings groups of the product's features: the catalogue's custom attributes, guests'
sessions, candidate sets, experiments and the ranker canary (re-exported by `core.settings`,
which composes them)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

ATTRIBUTE_TYPES = ("string", "number", "boolean", "list")
# Names the filter grammar and the item already use (an attribute is `attr.<name>` in a
# filter, but one named like a field would only confuse).
RESERVED_ATTRIBUTES = frozenset(
    {"category", "categories", "creator", "creator_id", "language", "maturity", "published_at"}
    | {"regions", "status", "tags", "title", "description", "item_id", "updated_at"}
)


class CatalogSettings(BaseModel):
    """The catalogue's custom item attributes: name -> type (string, number, boolean, list)."""

    attributes: dict[str, str] = Field(
        default_factory=dict,
        description='custom item attributes, e.g. {"brand": "string", "price": '
        '"number"}: settable on items, usable in filters as attr.<name>',
    )

    @field_validator("attributes")
    @classmethod
    def _declared(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 32:
            raise ValueError(f"at most 32 custom attributes, got {len(v)}")
        for name, kind in v.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
                raise ValueError(
                    f"attribute name {name!r}: lower-case letters, digits and _ (first a "
                    "letter), at most 32"
                )
            if name in RESERVED_ATTRIBUTES:
                raise ValueError(f"attribute name {name!r} is an item field already")
            if kind not in ATTRIBUTE_TYPES:
                raise ValueError(
                    f"attribute {name!r}: type {kind!r} is not one of {', '.join(ATTRIBUTE_TYPES)}"
                )
        return v


class SessionSettings(BaseModel):
    """Guests' sessions (`session_id` before sign-in): kept like a user's state, in Redis only."""

    ttl_s: int = Field(
        24 * 3600,
        ge=60,
        le=30 * 86_400,
        description="a session this long without an event is deleted (its state and journal)",
    )
    journal_len: int = Field(
        500, ge=1, le=10_000, description="a session's newest events kept for a merge"
    )


class CandidateSettings(BaseModel):
    """Candidate sets: retrieval done ahead of requests (per user, per context item)."""

    # On: the same ML-100K quality as live retrieval (bench/quality.py scores both in one
    # run), 1.85x live's cold throughput at 10k items, and flat from 10k to 100k items
    # (bench/serve.py --candidates, bench/scale.py). Off: every request retrieves live.
    enabled: bool = Field(True, description="serve from candidate sets (off: retrieve live)")
    per_source: int = Field(300, ge=10, le=5000, description="candidates kept per source")
    ttl_s: float = Field(7 * 86_400.0, gt=0, description="a set unused this long expires")
    # bench/search_batch.py, Milvus Lite at 100k rows: 5.1 queries/s alone, 31 at 64, 37 at 128
    # (the knee), 40 at 256.
    search_batch: int = Field(
        128, ge=1, le=4096, description="users or items per batched Milvus search on refresh"
    )
    refresh_batch: int = Field(
        256, ge=1, le=100_000, description="stale owners a worker takes per refresh round"
    )
    # A request re-scores its set with the user's state after their last event and adds the
    # neighbours of their recent items, so a set a few seconds old loses nothing; rebuilding
    # it after every batch of a busy user starved the worker's apply loop (bench/freshness.py
    # at 1,000 events/s: 24 of 30 clicks not visible within 10 s).
    refresh_interval_s: float = Field(
        5.0, ge=0, le=3600, description="at most one rebuild of an owner's set per interval"
    )
    warm_item_cache: bool = Field(
        True, description="the API reads the catalogue's metadata into memory at start"
    )


class ExperimentSettings(BaseModel):
    """Sequential A/B tests of surface variants (`GET /v1/admin/experiments`)."""

    alpha: float = Field(0.05, gt=0, lt=0.5, description="error rate of the always-valid intervals")
    mixing_sd: float = Field(
        0.01, gt=0, le=0.5, description="CTR difference the test finds fastest (mSPRT mixture sd)"
    )
    min_impressions: int = Field(1000, ge=1, description="per arm, before any decision")
    window_hours: int = Field(168, ge=1, le=192, description="hours of counts read (kept 8 days)")
    min_lists: int = Field(100, ge=1, description="per arm, before a guardrail is judged")
    max_latency_ratio: float = Field(
        1.25, gt=1, description="guardrail: p95 over default's times this (and 10 ms more)"
    )
    max_degraded_increase: float = Field(
        0.01, ge=0, le=1, description="guardrail: degraded share this far above default's"
    )
    min_coverage_ratio: float = Field(
        0.8, gt=0, le=1, description="guardrail: distinct items under this share of default's"
    )


class CanarySettings(BaseModel):
    """A newly trained ranker first serves a share of traffic; promoted or rolled back on the
    sequential test (core.experiments.canary_verdict)."""

    share: float = Field(
        0.0, ge=0, lt=1, description="share of users a new ranker serves first (0: publish at once)"
    )
    margin: float = Field(
        0.002, ge=0, le=0.1, description="non-inferiority margin on CTR (absolute difference)"
    )
    check_s: float = Field(60.0, ge=1, description="how often the API judges a running canary")
    max_hours: float = Field(168.0, gt=0, description="undecided after this long: rolled back")
