"""Query parameters shared by the builders of the recommendation routes."""

from __future__ import annotations

from typing import Any


def asker(user_id: str | None, session_id: str | None) -> dict[str, Any]:
    """Who asks: a signed-in user or a guest's session, exactly one."""
    if (user_id is None) == (session_id is None):
        raise ValueError("give exactly one of user_id (signed in) and session_id (a guest)")
    return {"user_id": user_id, "session_id": session_id}


def context(
    *,
    device: str | None,
    region: str | None,
    local_hour: int | None,
    filter: str | None,
) -> dict[str, Any]:
    """Where and how the list is asked for (seed 004's request context) and its filter."""
    return {"device": device, "region": region, "local_hour": local_hour, "filter": filter}


def request(
    *,
    surface: str,
    item_id: str | None,
    limit: int | None,
    category: str | None,
    language: str | None,
    profiling: bool,
) -> dict[str, Any]:
    """The list asked for (profiling=True is the server's default, so left out)."""
    return {
        "surface": surface,
        "item_id": item_id,
        "limit": limit,
        "category": category,
        "language": language,
        "profiling": None if profiling else False,
    }
