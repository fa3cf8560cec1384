"""Annotated dependency aliases used by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.vantage  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]
