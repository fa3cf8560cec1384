"""Typed request bodies, named as in the API's OpenAPI schema.

They catch a misspelt field where they are built (`extra="forbid"`) and send only the fields
you set. Bounds and formats are left to the server, which answers 422 with a message that
says what to fix. Every method also takes a plain dict, sent as it is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

InteractionType = Literal["view", "click", "watch", "like", "dislike", "skip", "purchase", "rate"]


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Interaction(InputModel):
    """One event of `POST /v1/interactions`, a signed-in `user_id`'s or a guest's
    `session_id`'s (exactly one); `timestamp` (unix s) defaults to now; `device`: what
    the user was on (the ranker learns their habits per device)."""

    user_id: str | None = None
    session_id: str | None = None
    item_id: str
    type: InteractionType
    value: float | None = None
    surface: str | None = None
    recommendation_id: str | None = None
    timestamp: float | None = None
    device: Literal["mobile", "tablet", "web", "desktop", "tv", "console", "other"] | None = None


class ItemFields(InputModel):
    """The body of `PUT /v1/items/{item_id}`: everything about an item but its id."""

    title: str
    description: str = ""
    categories: list[str] = Field(default_factory=list, description="the first is the primary")
    tags: list[str] = Field(default_factory=list)
    language: str = "und"
    regions: list[str] = Field(default_factory=list, description="empty: everywhere")
    maturity: int = 0
    published_at: int = 0
    status: Literal["active", "hidden"] = "active"
    creator_id: str = ""
    attributes: dict[str, bool | float | str | list[str]] = Field(
        default_factory=dict, description="custom attributes the catalogue declares"
    )


class Item(ItemFields):
    """An item of `POST /v1/items/batch`."""

    item_id: str


class Preferences(InputModel):
    categories: list[str] = Field(default_factory=list)


class UserFields(InputModel):
    """A user profile: PUT replaces it whole, PATCH sends only the fields set here."""

    language: str | None = None
    region: str | None = None
    birth_year: int | None = None
    preferences: Preferences = Field(default_factory=Preferences)


class RuleIn(InputModel):
    """A business rule: pin an item at a position, or boost or bury an item or a category."""

    action: Literal["pin", "boost", "bury"]
    item_id: str | None = None
    category: str | None = None
    position: int | None = None
    weight: float | None = None
    surfaces: list[str] = Field(default_factory=list, description="empty: every surface")
    expires_at: float | None = None
    note: str | None = None


Scope = Literal["recommend", "events", "catalog", "admin"]


class KeyIn(InputModel):
    """A new API key: who uses it, what it may do, and its limits (server defaults if unset)."""

    name: str
    scopes: list[Scope]
    rate_per_s: float | None = None
    burst: int | None = None


class OpeIn(InputModel):
    """An off-policy evaluation: the CTR a candidate would have had on a surface's logged
    lists. Name the candidate one way: `candidate` (registered: its shadow lists, exact),
    `variant` (a configured variant) or `overrides` (surface settings); the last two replay."""

    surface: str
    candidate: str | None = None
    variant: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    logged_variant: str = "default"
    reward: dict[str, float] | None = None
    hours: float = 24.0
    since: float | None = None
    max_lists: int = 2000
    min_support: float = 0.9
    min_ess: float = 30.0
    alpha: float = 0.05
    boots: int = 300
    seed: int = 0


class OpeCandidateIn(InputModel):
    """A candidate to shadow: the surface with `overrides`, beside `share` of its lists."""

    surface: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    share: float = 0.1


class NotInterested(InputModel):
    """The user is not interested in an item, a category or a creator."""

    kind: Literal["item", "category", "creator"]
    value: str


class ControlsPatch(InputModel):
    """Pause or resume the user's history; switch profiling off or on (None: unchanged)."""

    paused: bool | None = None
    profiling: bool | None = None
