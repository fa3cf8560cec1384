"""The query parameters of the list routes (`GET /v1/recommendations`, `/cached`,
`/why-not`), each with the bounds and the description the OpenAPI schema shows."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from core.domain import ID_PATTERN, Device

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
