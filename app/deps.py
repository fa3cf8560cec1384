"""Annotated dependency aliases used by the routes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from app.state import AppState


def state_of(request: Request) -> AppState:
    # Starlette's State takes attributes of any type; the lifespan (app.main) sets this one.
    return cast(AppState, request.app.state.vantage)


async def get_state(request: Request) -> AppState:
    # Async: no I/O, so no hop to the thread pool.
    return state_of(request)


StateDep = Annotated[AppState, Depends(get_state)]
