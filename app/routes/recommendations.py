from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth import require
from app.deps import StateDep
from app.errors import InvalidRequest
from app.pipeline.recommend import RecRequest, Surface, recommend
from app.schemas import Recommendations
from indexing.models import ID_PATTERN

router = APIRouter(
    prefix="/v1", tags=["recommendations"], dependencies=[Depends(require("recommend"))]
)


@router.get("/recommendations", response_model=Recommendations)
def get_recommendations(
    state: StateDep,
    user_id: Annotated[str, Query(pattern=ID_PATTERN, description="who is asking")],
    surface: Annotated[Surface, Query(description="where the list is shown")] = "homepage",
    item_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="context item (required for related)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=100, description="items to return")] = None,
    category: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[^\x00-\x1f]+$",
            description="only this primary category",
        ),
    ] = None,
    language: Annotated[
        str | None,
        Query(
            pattern=r"^([a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})?|und)$",
            description="only items in this language",
        ),
    ] = None,
) -> Recommendations:
    """What `user_id` should see on `surface`."""
    if surface == "related" and not item_id:
        raise InvalidRequest("item_id is required for surface=related")
    req = RecRequest(
        user_id=user_id,
        surface=surface,
        item_id=item_id,
        limit=limit or state.settings.serving.default_limit,
        category=category.strip().lower() if category else None,
        language=language.lower() if language else None,  # stored lower-case
    )
    return Recommendations.model_validate(recommend(state, req))
