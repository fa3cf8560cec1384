"""Registered off-policy candidates (`/v1/admin/ope/candidates`): what serving shadows."""

from __future__ import annotations

from typing import Any

from app.state import AppState
from core.errors import Conflict, InvalidRequest, NotFound
from core.stores.shadow import ShadowCandidate, ShadowStore
from core.surfaces import SurfaceConfig
from serving.shadow import candidate_config


def store(state: AppState) -> ShadowStore:
    return ShadowStore(state.redis, state.keys)


def put(
    state: AppState, name: str, surface: str, overrides: dict[str, Any], share: float
) -> tuple[ShadowCandidate, bool]:
    """Register (or replace) candidate `name`; (it, whether it is new)."""
    base = state.settings.surfaces.get(surface)
    if base is None:
        raise InvalidRequest(
            f"unknown surface {surface!r}; known: {sorted(state.settings.surfaces)}"
        )
    try:
        cfg = candidate_config(base, overrides)
    except ValueError as e:
        raise InvalidRequest(f"overrides do not make a valid surface: {e}") from e
    known_ranker(state, cfg)
    try:
        return store(state).put(ShadowCandidate(name, surface, share, overrides))
    except ValueError as e:
        raise Conflict(str(e)) from e


def delete(state: AppState, name: str) -> None:
    if not store(state).delete(name):
        raise NotFound(f"no registered candidate {name!r}")


def known_ranker(state: AppState, cfg: SurfaceConfig) -> None:
    """Refuse a candidate pinned to a ranker version that does not exist: it would be served
    (or replayed) in the fused order under that ranker's name, an estimate of something else."""
    if cfg.ranker not in ("current", "none") and cfg.ranker not in state.models.versions("ranker"):
        raise InvalidRequest(
            f"no ranker version {cfg.ranker!r} (GET /v1/admin/models lists them; or 'current', "
            "'none')"
        )
