"""Surfaces as configuration: what each surface retrieves, how it fuses, ranks and polices.

The defaults live in `vantage/surfaces.toml` (checked in). `VANTAGE_SURFACES_FILE` points at
another file; single values are overridden by environment variables, deep-merged over the file:
``VANTAGE_SURFACES__HOMEPAGE__CACHE_TTL_S=5`` or
``VANTAGE_SURFACES__HOMEPAGE__POLICY__EXPLORATION_SHARE=0``.

A surface names its candidate sources (each with a quota and a fusion weight), how many fused
candidates the ranker re-scores, which ranker, its policy settings, cache TTL and time budget,
and optional experiment variants that override any of these for a share of users.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from core.domain import Device

DEFAULT_FILE = Path(__file__).with_name("surfaces.toml")
FILE_ENV = "VANTAGE_SURFACES_FILE"


SourceName = Literal[
    "personal",  # hybrid ANN over the user's content and collaborative vectors
    "preferences",  # ANN over the onboarding preference vector (users with no history yet)
    "popular",  # all-time popularity (in the user's region first, when known)
    "trending",  # time-decayed popularity: asked category, else the user's region, else all
    "fresh",  # recently published items nearest the user's vector (or newest popular)
    "similar_item",  # content ANN of the context item
    "item_neighbours",  # items co-consumed with the context item (interaction model)
    "contextual",  # ANN over the context item's vector blended with the user's
]
SOURCE_NAMES: tuple[str, ...] = get_args(SourceName)
ITEM_SOURCES = frozenset({"similar_item", "item_neighbours", "contextual"})


class SourceSpec(BaseModel):
    """One candidate source of a surface."""

    model_config = ConfigDict(extra="forbid")

    name: SourceName
    quota: int = Field(100, ge=1, le=5000, description="at most this many candidates from it")
    weight: float = Field(1.0, ge=0, le=100, description="weight in the fused (RRF) score")
    cold_only: bool = Field(
        False, description="only for users with little history (fewer than 20 interactions)"
    )


class PolicySpec(BaseModel):
    """Policy settings of a surface (rules run in the order documented in serving.policy)."""

    model_config = ConfigDict(extra="forbid")

    exclude_seen: bool = Field(True, description="never show items the user interacted with")
    seen_window_days: float | None = Field(
        None, gt=0, description="only interactions this recent count as seen (None: all kept)"
    )
    negative_similarity: float = Field(
        0.8, ge=0, le=1, description="items this close (cosine) to a disliked one are demoted"
    )
    negative_penalty: float = Field(0.3, ge=0, le=1, description="score taken off those")
    freshness_half_life_days: float = Field(30.0, gt=0)
    freshness_weight: float = Field(
        0.0, ge=0, le=1, description="score added to a just-published item (halves per half-life)"
    )
    new_days: float = Field(14.0, ge=0, description="items this young are explained as 'new'")
    mmr_lambda: float = Field(
        1.0, ge=0, le=1, description="relevance vs diversity in MMR (1 = relevance only)"
    )
    mmr_depth: int = Field(3, ge=1, le=20, description="MMR looks at limit x this candidates")
    mmr_taste_floor: bool = Field(
        False,
        description="MMR counts only similarity above the user's own taste's (the mean pairwise"
        " similarity of their recent items): a narrow taste keeps its near neighbours",
    )
    category_cap: int | None = Field(None, ge=1, description="at most this many per category")
    creator_cap: int | None = Field(None, ge=1, description="at most this many per creator")
    new_item_signals: float = Field(
        1.0, ge=0, description="items with less popularity than this have not earned signals"
    )
    new_item_cap: int | None = Field(
        None, ge=0, description="at most this many such unproven items per list"
    )
    exploration_share: float = Field(
        0.0, ge=0, le=0.5, description="chance each explorable slot shows an item from outside"
    )
    exploration_start: int = Field(4, ge=1, le=100, description="first explorable position")
    exploration_pool: int = Field(50, ge=1, le=1000, description="items it draws from")
    rules: bool = Field(True, description="apply business rules (pin, boost, bury)")


class SurfaceConfig(BaseModel):
    """Everything that defines one surface."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    needs_item: bool = Field(False, description="requests must name a context item_id")
    sources: list[SourceSpec] = Field(
        default_factory=lambda: [SourceSpec(name="personal"), SourceSpec(name="popular")],
        min_length=1,
    )
    hybrid_weights: dict[str, float] = Field(
        default_factory=lambda: {"content_vec": 0.0, "cf_vec": 1.0},
        description="fusion of the vector spaces in the personal source (0 = not searched)",
    )
    context_weight: float = Field(
        0.5, ge=0, le=1, description="contextual source: share of the context item in the query"
    )
    fresh_days: float = Field(30.0, gt=0, description="fresh source: published this recently")
    fusion_k: int = Field(20, ge=1, le=1000, description="k of the weighted RRF fusion")
    rank_depth: int = Field(300, ge=1, le=5000, description="fused candidates the ranker scores")
    ranker: str = Field(
        "none",
        pattern=r"^(none|current|[A-Za-z0-9._-]{1,64})$",
        description="'current', 'none' or a ranker version",
    )
    policy: PolicySpec = Field(default_factory=PolicySpec)
    cache_ttl_s: float = Field(30.0, ge=0)
    budget_ms: int = Field(
        500, ge=10, le=60_000, description="past this, remaining Milvus calls are skipped"
    )
    variants: dict[str, VariantSpec] = Field(default_factory=dict)
    _resolved: dict[str, SurfaceConfig] = PrivateAttr(default_factory=dict)

    @field_validator("hybrid_weights")
    @classmethod
    def _known_spaces(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"content_vec", "cf_vec"}
        if unknown or any(w < 0 for w in v.values()) or not any(w > 0 for w in v.values()):
            raise ValueError("hybrid_weights: content_vec/cf_vec weights >= 0, at least one > 0")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> SurfaceConfig:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"a source is listed twice: {names}")
        if not self.needs_item and ITEM_SOURCES & set(names):
            raise ValueError(f"sources {sorted(ITEM_SOURCES & set(names))} need needs_item=true")
        if sum(v.share for v in self.variants.values()) > 1.0 + 1e-9:
            raise ValueError("variant shares add up to more than 1")
        if "default" in self.variants:
            raise ValueError("'default' names the base configuration; pick another variant name")
        base = self.model_dump(exclude={"variants"})
        for name, spec in self.variants.items():
            try:
                self._resolved[name] = SurfaceConfig.model_validate(
                    _deep_merge(base, spec.overrides)
                )
            except ValueError as e:
                raise ValueError(f"variant {name!r}: {e}") from e
        return self

    def variant(
        self, user_id: str, surface: str, context: dict[str, Any] | None = None
    ) -> tuple[str, SurfaceConfig]:
        """The user's variant and its configuration (a stable hash of surface and user); a
        variant whose `target` the request's context does not match serves `default`."""
        if not self.variants:
            return "default", self
        h = hashlib.blake2b(f"{surface}\x1f{user_id}".encode(), digest_size=8).digest()
        point = int.from_bytes(h, "big") / 2**64
        edge = 0.0
        for name, spec in self.variants.items():
            edge += spec.share
            if point < edge:
                if spec.target is not None and not spec.target.matches(context or {}):
                    break  # outside the variant's audience: the base configuration
                return name, self._resolved[name]
        return "default", self

    def arm(self, name: str) -> SurfaceConfig:
        """The configuration of variant `name` ('default': this one); KeyError if unknown."""
        return self if name == "default" else self._resolved[name]

    def with_overrides(self, overrides: dict[str, Any]) -> SurfaceConfig:
        """This configuration with `overrides` merged in, as a variant's (ValueError if the
        result is not a valid surface)."""
        if "variants" in overrides:
            raise ValueError("overrides cannot define variants")
        merged = _deep_merge(self.model_dump(exclude={"variants"}), overrides)
        return SurfaceConfig.model_validate(merged)

    @property
    def ranked(self) -> bool:
        return self.ranker != "none"


class Target(BaseModel):
    """Who a variant is for, by the request's context (unset: anyone); a request outside it
    gets `default` (the variant's share of other requests is unaffected)."""

    model_config = ConfigDict(extra="forbid")

    devices: list[Device] | None = Field(None, min_length=1)
    regions: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] | None = Field(None, min_length=1)
    hours: tuple[int, int] | None = Field(
        None, description="[from, to) local hours, 0-24; from > to wraps past midnight"
    )

    def matches(self, ctx: dict[str, Any]) -> bool:
        if self.devices is not None and ctx.get("device") not in self.devices:
            return False
        if self.regions is not None and ctx.get("region") not in self.regions:
            return False
        if self.hours is not None:
            hour, (lo, hi) = ctx.get("local_hour"), self.hours
            if hour is None:
                return False
            h = int(hour)
            return lo <= h < hi if lo <= hi else (h >= lo or h < hi)
        return True


class VariantSpec(BaseModel):
    """An experiment arm: a share of users and the settings that differ for them."""

    model_config = ConfigDict(extra="forbid")

    share: float = Field(gt=0, le=1)
    target: Target | None = Field(
        None, description="only requests with this context (device, region, local hour)"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="any surface settings, e.g. {policy = {mmr_lambda = 0.7}}"
    )

    @field_validator("overrides")
    @classmethod
    def _no_nesting(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "variants" in v:
            raise ValueError("a variant cannot define variants")
        return v


SurfaceConfig.model_rebuild()


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def surfaces_file() -> Path:
    return Path(os.environ.get(FILE_ENV) or DEFAULT_FILE)


def load_surfaces_file(path: Path | None = None) -> dict[str, Any]:
    """The raw `[surfaces.*]` tables of a surfaces file (validated by Settings)."""
    path = path or surfaces_file()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ValueError(f"surfaces file {path} does not exist ({FILE_ENV})") from e
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"surfaces file {path}: {e}") from e
    surfaces = data.get("surfaces")
    if not isinstance(surfaces, dict) or not surfaces:
        raise ValueError(f"surfaces file {path} defines no [surfaces.<name>] tables")
    return surfaces
