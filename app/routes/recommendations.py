from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import PrecomputedRecommendations, Recommendations
from app.services.catalog import NO_ATTRIBUTES, attributes_stored
from core.attributes import filter_errors
from core.domain import ID_PATTERN, Device, session_owner
from core.errors import Conflict, InvalidRequest, NotFound
from core.expr import FilterSyntaxError
from serving import itemmeta, paging
from serving.precomputed import precomputed
from serving.recommend import recommend
from serving.request import RecRequest, compiled

router = APIRouter(
    prefix="/v1",
    tags=["recommendations"],
    dependencies=[Depends(require("recommend"))],
    responses=error_responses(*AUTHED),
)


UserIdQ = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="who is asking (or `session_id` for a guest)"),
]
SessionIdQ = Annotated[
    str | None,
    Query(
        pattern=ID_PATTERN,
        description="a guest's session before sign-in (instead of user_id): its lists "
        "follow the session's own events",
    ),
]
SurfaceQ = Annotated[
    str,
    Query(
        pattern=r"^[a-z_]{1,32}$",
        description="where the list is shown: a configured surface (homepage, up_next, "
        "related, contextual, trending by default)",
    ),
]
LimitQ = Annotated[
    int | None,
    Query(ge=1, le=1000, description="items to return (default 20, at most serving.max_limit)"),
]
CategoryQ = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f]+$",
        description="only this primary category",
    ),
]
LanguageQ = Annotated[
    str | None,
    Query(
        pattern=r"^([a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})?|und)$",
        description="only items in this language",
    ),
]


ItemIdQ = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="context item (required for related)")
]
DebugQ = Annotated[
    bool, Query(description="add per-stage timings and per-source counts (not cached)")
]
DetailsQ = Annotated[
    bool, Query(description="add each item's current title and primary category (saves a read)")
]
PagesQ = Annotated[
    int,
    Query(
        ge=1,
        le=10,
        description="build the list for this many pages of `limit` (limit x pages at most "
        "serving.max_limit); the answer's `next_cursor` then leads to page 2",
    ),
]
CursorQ = Annotated[
    str | None,
    Query(
        min_length=4,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="a `next_cursor`: the next page of that same list (same recommendation_id, "
        "no item repeated, unchanged by events since); user_id and surface must be the list's, "
        "the other parameters are the list's own",
    ),
]
ProfilingQ = Annotated[
    bool,
    Query(
        description="false: a list built without any personal data (popularity, trending, "
        "editorial rules, the context item; safety still applied), marked `profiling: false`"
    ),
]
DeviceQ = Annotated[
    Device | None,
    Query(description="the device asking (experiment targeting; kept with the impression)"),
]
RegionQ = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z]{2}$",
        description="where the user is now (ISO 3166-1 alpha-2), overriding their profile's "
        "region for what is available to them (a user travelling)",
    ),
]
FilterQ = Annotated[
    str | None,
    Query(
        alias="filter",
        min_length=1,
        max_length=2000,
        description='a filter expression over item fields, e.g. `categories has any ["jazz", '
        '"blues"] and not tags has "live" and published_at >= 1700000000` (grammar: '
        "README, Filter expressions); a syntax error is a 422 naming the character",
    ),
]
LocalHourQ = Annotated[
    int | None, Query(ge=0, le=23, description="the user's local hour (experiment targeting)")
]


@dataclass(frozen=True)
class Asker:
    """Who a list is for: a signed-in user, or a guest's session (stored as its owner id)."""

    owner: str
    session_id: str | None = None

    def answer(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """The response as the caller named the asker (a session: `session_id`, no user)."""
        if self.session_id is None:
            return dict(result)
        return {**result, "user_id": None, "session_id": self.session_id}


async def asker(user_id: UserIdQ = None, session_id: SessionIdQ = None) -> Asker:
    if (user_id is None) == (session_id is None):
        raise InvalidRequest("give exactly one of user_id (signed in) and session_id (a guest)")
    if session_id is not None:
        return Asker(session_owner(session_id), session_id)
    return Asker(str(user_id))


@dataclass(frozen=True)
class RequestContext:
    """What the request says about where and how it is asked (seed 004's context)."""

    device: str | None = None
    region: str | None = None
    local_hour: int | None = None
    filter: str | None = None

    def applied(self, req: RecRequest, **more: Any) -> RecRequest:
        return replace(
            req,
            device=self.device,
            region=self.region,
            local_hour=self.local_hour,
            filter=self.filter,
            **more,
        )


async def request_context(
    state: StateDep,
    device: DeviceQ = None,
    region: RegionQ = None,
    local_hour: LocalHourQ = None,
    filter_: FilterQ = None,
) -> RequestContext:
    region_now = region.upper() if region else None
    # Checking a filter may ask Milvus whether attributes are stored: a thread, then.
    checked = None if filter_ is None else await run_in_threadpool(checked_filter, state, filter_)
    return RequestContext(device, region_now, local_hour, checked)


def json_response(model: BaseModel) -> Response:
    """The validated answer serialised once, by pydantic-core. Returned as a model, FastAPI
    would dump it to a dict, validate that again against the response model, convert it
    for JSON and `json.dumps` it: 245 µs against 77 µs for a list of 20 (the same bytes).
    The route keeps its `response_model` for the OpenAPI schema."""
    return Response(model.model_dump_json(), media_type="application/json")


AskerDep = Annotated[Asker, Depends(asker)]
ContextDep = Annotated[RequestContext, Depends(request_context)]


@router.get("/recommendations", response_model=Recommendations, responses=error_responses(404))
async def get_recommendations(
    state: StateDep,
    who: AskerDep,
    context: ContextDep,
    surface: SurfaceQ = "homepage",
    item_id: ItemIdQ = None,
    limit: LimitQ = None,
    category: CategoryQ = None,
    language: LanguageQ = None,
    debug: DebugQ = False,
    details: DetailsQ = False,
    pages: PagesQ = 1,
    cursor: CursorQ = None,
    profiling: ProfilingQ = True,
) -> Response:
    """What `user_id` (or a guest's `session_id`) should see on `surface`; with `pages`, a
    list to page through."""
    # One hop to the thread pool for the whole (blocking) pipeline; the dependencies and the
    # response's serialisation run on the event loop.
    return await run_in_threadpool(
        _recommendations,
        state,
        who,
        context,
        RecQuery(surface, item_id, limit, category, language, debug, details, pages, cursor),
        profiling,
    )


@dataclass(frozen=True)
class RecQuery:
    """The list parameters of GET /v1/recommendations, as given."""

    surface: str
    item_id: str | None
    limit: int | None
    category: str | None
    language: str | None
    debug: bool
    details: bool
    pages: int
    cursor: str | None


def _recommendations(
    state: StateDep, who: Asker, context: RequestContext, q: RecQuery, profiling: bool
) -> Response:
    surface, debug, cursor = q.surface, q.debug, q.cursor
    if cursor is not None:
        if debug:
            raise InvalidRequest("debug=true does not page: ask without `cursor`")
        result: Any
        result, nxt = paging.page(state, cursor, who.owner, surface)
    else:
        req = rec_request(
            state, who.owner, surface, q.item_id, q.limit, q.category, q.language, debug
        )
        result, nxt = _paged(state, context.applied(req, profiling=profiling), q.pages)
    if q.details:  # new dicts: the answer may be the result cache's own
        result = {**result, "items": with_details(state, result["items"])}
    return json_response(Recommendations.model_validate({**who.answer(result), "next_cursor": nxt}))


@router.get(
    "/recommendations/cached",
    response_model=PrecomputedRecommendations,
    responses=error_responses(404),
)
def get_cached_recommendations(
    state: StateDep,
    who: AskerDep,
    context: ContextDep,
    surface: SurfaceQ = "homepage",
    item_id: ItemIdQ = None,
    limit: LimitQ = None,
    category: CategoryQ = None,
    language: LanguageQ = None,
    profiling: ProfilingQ = True,
) -> Response:
    """What is already computed for this request, without computing anything: the result
    cache entry it would hit now, else the user's candidate set (unranked, through the hard
    filters), with `generated_at` and `source`; 404 when neither exists."""
    req = rec_request(state, who.owner, surface, item_id, limit, category, language)
    got = precomputed(state, context.applied(req, profiling=profiling))
    if got is None:
        raise NotFound(
            "nothing precomputed for this request (no cached list, no candidate set): ask "
            "GET /v1/recommendations"
        )
    result, source = got
    return json_response(
        PrecomputedRecommendations.model_validate({**who.answer(result), "source": source})
    )


def checked_filter(state: StateDep, text: str | None) -> str | None:
    """The filter expression, once it parses and reads only declared attributes as their
    type (422 pointing at the character otherwise)."""
    if text is None:
        return None
    try:
        node = compiled(text)
    except FilterSyntaxError as e:
        where = {"field": "filter", "in": "query", "message": str(e), "position": e.position + 1}
        raise InvalidRequest(f"filter: {e}", details=[where]) from e
    wrong = filter_errors(node.attributes, state.settings.catalog.attributes)
    if wrong:
        details = [
            {"field": "filter", "in": "query", "message": m, "position": p + 1} for m, p in wrong
        ]
        raise InvalidRequest(
            f"filter: {wrong[0][0]} (character {wrong[0][1] + 1})", details=details
        )
    if node.attributes and not attributes_stored(state):
        raise Conflict(NO_ATTRIBUTES)
    return text


def _paged(state: StateDep, req: RecRequest, pages: int) -> tuple[Any, str | None]:
    """The first page of a list built for `pages` pages (and the cursor of the next)."""
    if pages == 1 or req.debug:
        return recommend(state, req), None
    max_limit = state.settings.serving.max_limit
    if req.limit * pages > max_limit:
        raise InvalidRequest(
            f"limit x pages must be at most {max_limit} (got {req.limit} x {pages}): ask for "
            "fewer or shorter pages"
        )
    full = recommend(state, replace(req, limit=req.limit * pages, page_size=req.limit))
    nxt = paging.remember(state, full, req.limit)
    return paging.first_page(full, req.limit), nxt


def with_details(state: StateDep, items: list[Any]) -> list[dict[str, Any]]:
    """Each item with its title and primary category, as the read path knows them now (the
    process's item cache: no Milvus read once it is warm). An item gone since keeps nulls."""
    meta = itemmeta.current(state, [it["item_id"] for it in items])
    return [
        {
            **it,
            "title": m.title if (m := meta.get(it["item_id"])) else None,
            "category": m.category if m else None,
        }
        for it in items
    ]


def rec_request(
    state: StateDep,
    user_id: str,
    surface: str,
    item_id: str | None,
    limit: int | None,
    category: str | None,
    language: str | None,
    debug: bool = False,
    item_param: str = "item_id",
) -> RecRequest:
    """The request, checked against the configuration (422 with what to fix; `item_param`:
    what the context item's parameter is called there)."""
    surfaces = state.settings.surfaces
    if surface not in surfaces:
        raise InvalidRequest(
            f"unknown surface {surface!r}; valid surfaces: {', '.join(sorted(surfaces))}"
        )
    max_limit = state.settings.serving.max_limit
    if limit is not None and limit > max_limit:
        raise InvalidRequest(f"limit must be at most {max_limit} (got {limit})")
    if surfaces[surface].needs_item and not item_id:
        raise InvalidRequest(f"{item_param} is required for surface={surface}")
    return RecRequest(
        user_id=user_id,
        surface=surface,
        item_id=item_id,
        limit=limit or state.settings.serving.default_limit,
        category=category.strip().lower() if category else None,
        language=language.lower() if language else None,  # stored lower-case
        debug=debug,
    )
