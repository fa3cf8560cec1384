"""Typed answers of the users' own controls (re-exported by `models`)."""

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
