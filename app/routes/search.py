"""The content team's search by meaning over the catalogue (scope catalog)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import ItemOut
from app.services import search
from core.domain import ID_PATTERN, NONBLANK_PATTERN

router = APIRouter(
    prefix="/v1/search",
    tags=["catalogue"],
    dependencies=[Depends(require("catalog"))],
    responses=error_responses(*AUTHED),
)


class SearchHit(ItemOut):
    score: float = Field(description="cosine similarity of the query and the item's text")


class SearchResults(BaseModel):
    model: str = Field(description="the live text model the query was embedded with")
    items: list[SearchHit]


@router.get("/items", response_model=SearchResults)
def search_items(
    state: StateDep,
    q: Annotated[
        str, Query(min_length=1, max_length=500, pattern=NONBLANK_PATTERN, description="text")
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    category: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="only items of this primary category")
    ] = None,
) -> SearchResults:
    """Items nearest in meaning to `q`: the query is embedded with the live text model and
    searched over the items' content vectors. Hidden items are included (with their status);
    deleted ones are not. The first search of a process loads the model (a few seconds)."""
    model, hits = search.search_items(state, q, limit=limit, category=category)
    return SearchResults(model=model, items=[SearchHit.model_validate(h) for h in hits])
