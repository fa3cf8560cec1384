"""Request and response bodies of the HTTP API (domain records live in `indexing.models`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from indexing.models import Interaction, Item, UserFields

MAX_BATCH = 1000


class Accepted(BaseModel):
    """An accepted write: it is on the event stream and will be applied by a worker."""

    status: str = "queued"
    event_ids: list[str]


class ItemBatch(BaseModel):
    items: list[Item] = Field(min_length=1, max_length=MAX_BATCH)


class ItemOut(Item):
    updated_at: int | None = None


class HistoryEntry(BaseModel):
    item_id: str
    timestamp: float


class UserOut(BaseModel):
    user_id: str
    profile: UserFields | None
    recent: list[HistoryEntry]
    has_profile_vector: bool


# The list bound is checked before its elements are validated (no work for 10^6 items).
InteractionsIn = (
    Interaction | Annotated[list[Interaction], Field(min_length=1, max_length=MAX_BATCH)]
)


class RecItem(BaseModel):
    item_id: str
    score: float
    sources: list[str]
    reasons: list[str]


class Recommendations(BaseModel):
    recommendation_id: str
    user_id: str
    surface: str
    items: list[RecItem]
    generated_at: float
    cached: bool = False


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)
