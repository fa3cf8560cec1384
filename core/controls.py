"""A user's own controls, as the read path and the API see them: what they are not
interested in (items, categories, creators), whether their history is paused and whether their
lists may use personal data at all (`profiling`). Stored by `core/stores/controls.py`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.redis_typed import text

Kind = Literal["item", "category", "creator"]
KINDS: tuple[Kind, ...] = ("item", "category", "creator")
PAUSED, PROFILING, PREFIX = "paused", "profiling", "ni:"


@dataclass(frozen=True)
class Controls:
    paused: bool = False
    profiling: bool = True
    # kind -> value -> when it was said
    not_interested: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Changes whenever the controls do (part of result-cache keys)."""
        parts = sorted(f"{k}:{v}" for k, vs in self.not_interested.items() for v in vs)
        digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=6).hexdigest()
        return f"{int(self.paused)}{int(self.profiling)}:{digest}"

    def blocked(self, kind: Kind) -> frozenset[str]:
        return frozenset(self.not_interested.get(kind, {}))

    @classmethod
    def parse(cls, raw: Mapping[Any, Any]) -> Controls:
        fields = {text(k): text(v) for k, v in raw.items()}
        ni: dict[str, dict[str, float]] = {}
        for k, v in fields.items():
            if k.startswith(PREFIX):
                kind, _, value = k[len(PREFIX) :].partition(":")
                ni.setdefault(kind, {})[value] = float(v)
        return cls(fields.get(PAUSED) == "1", fields.get(PROFILING) != "0", ni)

    def as_dict(self) -> dict[str, object]:
        return {
            "paused": self.paused,
            "profiling": self.profiling,
            "not_interested": [
                {"kind": kind, "value": value, "at": at}
                for kind in KINDS
                for value, at in sorted(self.not_interested.get(kind, {}).items())
            ],
        }
