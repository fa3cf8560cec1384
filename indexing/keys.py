"""Every Redis key Vantage uses, in one place, under one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def events(self) -> str:
        """Stream of accepted events (interactions, item and user changes)."""
        return f"{self.prefix}:events"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:events:dead"

    @property
    def popularity(self) -> str:
        """Sorted set item -> accumulated positive interaction weight."""
        return f"{self.prefix}:pop"

    @property
    def tombstones(self) -> str:
        """Sorted set item -> time it was deleted or hidden; serving excludes these."""
        return f"{self.prefix}:tomb"

    @property
    def item_versions(self) -> str:
        """Hash item -> stream id of the last applied write (stale writes are skipped)."""
        return f"{self.prefix}:itemver"

    @property
    def users_index(self) -> str:
        return f"{self.prefix}:users"

    def done(self, event_id: str) -> str:
        """Marker that an event's effects were applied (makes redelivery harmless)."""
        return f"{self.prefix}:done:{event_id}"

    def user(self, user_id: str) -> str:
        """Hash: profile (JSON), cvec (float32 bytes), ver (bumped on every applied event)."""
        return f"{self.prefix}:user:{user_id}"

    def history(self, user_id: str) -> str:
        """Sorted set item -> last interaction time."""
        return f"{self.prefix}:hist:{user_id}"

    def affinity(self, user_id: str) -> str:
        """Hash item -> summed signed interaction weight."""
        return f"{self.prefix}:aff:{user_id}"

    def confidence(self, user_id: str) -> str:
        """Hash item -> summed iALS confidence (the input of fold-in)."""
        return f"{self.prefix}:conf:{user_id}"

    def model(self, kind: str) -> str:
        """The current version of a model kind (cf, ranker)."""
        return f"{self.prefix}:model:{kind}"

    def model_versions(self, kind: str) -> str:
        """Hash version -> JSON metadata (metrics, sizes, time)."""
        return f"{self.prefix}:model:{kind}:versions"

    def result_cache(self, digest: str) -> str:
        return f"{self.prefix}:rec:{digest}"
