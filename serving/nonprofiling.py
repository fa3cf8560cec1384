"""Lists built without profiling (EU DSA Art. 38): when the request says `profiling=false`, or
the user switched profiling off for themselves (core/controls.py), the list uses no personal
data: no history, vectors, stated interests or dislikes; only sources that do not read the
user (popularity, trending, fresh items, the context item's neighbours), no ranker (its
features are the user's), nothing excluded as "seen". Safety still applies from the profile's
birth year and region (what may never reach the user is not a recommendation signal), and
so do the user's explicit "not interested" choices (a control, not a profile).
"""

from __future__ import annotations

import dataclasses

from core.context import UserContext
from core.surfaces import SourceSpec, SurfaceConfig
from serving.request import RecRequest

# Sources that read nothing about the user (trending reads their region: availability).
SOURCES = frozenset({"popular", "trending", "fresh", "similar_item", "item_neighbours"})


def wanted(req: RecRequest, ctx: UserContext) -> bool:
    """Whether this list must be built without profiling."""
    return not req.profiling or not ctx.controls.profiling


def context(ctx: UserContext) -> UserContext:
    """The user's context with only what safety needs (birth year, region, language)."""
    profile = ctx.profile
    if profile is not None:
        profile = profile.model_copy(update={"preferences": type(profile.preferences)()})
    return dataclasses.replace(
        ctx,
        profile=profile,
        content_vec=None,
        cf_vec=None,
        pref_vec=None,
        recent=[],
        recent_ts=[],
        negatives=[],
    )


def config(cfg: SurfaceConfig) -> SurfaceConfig:
    """The surface's configuration with only non-personal sources, no ranker."""
    sources = [s for s in cfg.sources if s.name in SOURCES] or [
        SourceSpec(name="popular", quota=100)
    ]
    sources = [s.model_copy(update={"cold_only": False}) for s in sources]
    policy = cfg.policy.model_copy(update={"exclude_seen": False})
    return cfg.model_copy(update={"sources": sources, "ranker": "none", "policy": policy})
