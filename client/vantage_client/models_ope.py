"""Typed answers of the off-policy evaluation routes (re-exported by `models`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vantage_client import inputs


class _Api(BaseModel):
    model_config = ConfigDict(extra="allow")


class OpeInterval(_Api):
    ctr: float
    low: float
    high: float


class OpeEstimate(OpeInterval):
    estimator: str = Field(description="ips, snips or dr")
    ess: float


class OpeOut(_Api):
    """A candidate's estimated CTR on the logged lists, or why none is given (`refused`)."""

    surface: str
    logged_variant: str
    method: str = Field(description="shadow (exact) or replay")
    reward: dict[str, float] | None = None
    candidate: dict[str, Any]
    since: float
    until: float
    lists: int
    skipped: dict[str, int]
    positions: int | None = None
    clicks: int | None = None
    reward_total: float | None = None
    matched: int | None = None
    support: float | None = None
    replay_consistent: float | None = None
    ess: float | None = None
    logged: OpeInterval | None = None
    estimates: list[OpeEstimate]
    chosen: str
    refused: str | None
    replays: int | None = None
    elapsed_ms: float

    def best(self) -> OpeEstimate | None:
        """The estimate of the `chosen` estimator (None when refused)."""
        return next((e for e in self.estimates if e.estimator == self.chosen), None)


class OpeCandidateOut(inputs.OpeCandidateIn, _Api):
    model_config = ConfigDict(extra="allow")

    name: str
    created_at: float


class OpeCandidates(_Api):
    candidates: list[OpeCandidateOut]
