"""What a recommendation request asks, and the typed list the pipeline answers with."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NotRequired, TypedDict

from core.expr import Node, parse


@dataclass(frozen=True)
class RecRequest:
    user_id: str
    surface: str
    limit: int
    item_id: str | None = None
    category: str | None = None
    language: str | None = None
    debug: bool = False
    # Paging: the list is computed `limit` long, but only its first `page_size` items are shown
    # (and logged as shown) now; the rest waits for the cursor (serving/paging.py).
    page_size: int | None = None
    # False: a list built without personal data (the user's own switch can also say so).
    profiling: bool = True
    # Request context (seed 004): the device, where the user is now (overrides the profile's
    # region for availability: a user travelling), their local hour; experiment targeting.
    device: str | None = None
    region: str | None = None
    local_hour: int | None = None
    filter: str | None = None  # a filter expression (core/expr.py), checked by the API

    @property
    def expr(self) -> Node | None:
        """The filter compiled (cached per text)."""
        return compiled(self.filter) if self.filter else None

    def context(self) -> dict[str, Any]:
        """The request context set, for variant targeting and the impression log."""
        got = {"device": self.device, "region": self.region, "local_hour": self.local_hour}
        return {k: v for k, v in got.items() if v is not None}

    def query(self) -> dict[str, Any]:
        """What the impression log keeps of the request to replay it (off-policy evaluation):
        the limit, and the context item and filters it set."""
        asked = {"item_id": self.item_id, "category": self.category, "language": self.language}
        asked["filter"] = self.filter
        asked |= self.context()
        if not self.profiling:
            asked["profiling"] = "off"
        return {"limit": self.limit, **{k: v for k, v in asked.items() if v is not None}}

    def shape(self) -> list[Any]:
        """What identifies the list asked for, whoever asks and whatever their state."""
        return [self.user_id, self.surface, self.item_id, self.category, self.language] + (
            ([] if self.profiling else ["no-profiling"])
            + ([self.region] if self.region else [])
            + ([f"filter:{self.filter}"] if self.filter else [])
        )


@lru_cache(maxsize=1024)
def compiled(text: str) -> Node:
    return parse(text)


class RecItem(TypedDict):
    item_id: str
    score: float
    sources: list[str]
    reasons: list[str]
    position: int
    explored: bool
    propensity: float | None


class RecResult(TypedDict):
    """The pipeline's answer, as the API returns it (and as the result cache stores it)."""

    recommendation_id: str
    user_id: str
    surface: str
    variant: str
    items: list[RecItem]
    generated_at: float
    cached: bool
    degraded: bool
    degraded_reasons: list[str]
    profiling: NotRequired[bool]  # False: built without personal data (serving/nonprofiling.py)
    debug: NotRequired[dict[str, Any]]
