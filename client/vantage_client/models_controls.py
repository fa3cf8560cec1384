"""Typed answers of the users' own controls and of a guest session's merge (re-exported by
`models`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from vantage_client import inputs


class NotInterestedOut(inputs.NotInterested):
    model_config = ConfigDict(extra="allow")

    at: float


class UserControls(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: str
    paused: bool
    profiling: bool
    not_interested: list[NotInterestedOut]


class SessionMerge(BaseModel):
    """A guest session's merge into a user: `queued`, then `merged` with the events folded."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    user_id: str
    status: str
    event_ids: list[str]
    merged_events: int | None = None
