"""What serving knows about the user asking: profile, vectors, recent history, dislikes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.controls import Controls
from core.domain import UserFields, age_max_maturity


@dataclass
class UserContext:
    user_id: str
    profile: UserFields | None
    content_vec: np.ndarray | None
    cf_vec: np.ndarray | None = None
    recent: list[str] = field(default_factory=list)  # most recent first
    version: int = 0
    recent_ts: list[float] = field(default_factory=list)  # times of `recent`
    negatives: list[str] = field(default_factory=list)  # disliked or skipped, most recent first
    pref_vec: np.ndarray | None = None  # from onboarding preferences.categories
    controls: Controls = field(default_factory=Controls)  # the user's own (not interested...)
    region_override: str | None = None  # the request's `region` (a user travelling)
    local_hour: int | None = None  # the request's local hour (a ranker feature)
    device: str | None = None  # the request's device (a ranker feature)
    # When the request was asked (None: now); replays and ranker training set a past moment.
    asked_at: float | None = None
    # The whole history's length, when the context read the history (`recent` is its head).
    history_len: int | None = None

    @property
    def unwanted(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """(categories, creators) the user said they are not interested in (None: none)."""
        cats, creators = self.controls.blocked("category"), self.controls.blocked("creator")
        return (cats, creators) if cats or creators else None

    def seen(self, window_s: float | None, now: float) -> list[str]:
        """Items interacted with (within the window, if one is set), most recent first."""
        if window_s is None:
            return list(self.recent)
        cutoff = now - window_s
        return [i for i, t in zip(self.recent, self.recent_ts, strict=True) if t >= cutoff]

    @property
    def language(self) -> str | None:
        """The user's language; None when unknown ('und' included): no language filter."""
        lang = self.profile.language if self.profile else None
        return None if lang in (None, "und") else lang

    @property
    def known(self) -> bool:
        return self.profile is not None or bool(self.recent)

    def max_maturity(self, unknown_age: int) -> int:
        return age_max_maturity(self.profile.birth_year if self.profile else None, unknown_age)

    @property
    def region(self) -> str | None:
        """Where the user is: the request's override (travelling), else their profile's."""
        if self.region_override:
            return self.region_override
        return self.profile.region if self.profile else None

    @property
    def picks(self) -> list[str]:
        """The categories the user picked at onboarding (their preferences)."""
        return list(self.profile.preferences.categories) if self.profile else []
