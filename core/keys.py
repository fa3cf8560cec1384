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

    @property
    def worker_stats(self) -> str:
        """Hash of running totals all workers add to (applied:<type>, embedded, embed_s)."""
        return f"{self.prefix}:stats"

    def done(self, event_id: str) -> str:
        """Marker that an event's effects were applied (makes redelivery harmless)."""
        return f"{self.prefix}:done:{event_id}"

    def user(self, user_id: str) -> str:
        """Hash: profile (JSON), cvec (float32 bytes), pvec (float32 bytes, from onboarding
        preferences), ver (bumped on every applied event)."""
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

    # Jobs (re-index, model refresh): a stream workers consume, one hash per job.
    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def jobs_index(self) -> str:
        """Sorted set job id -> creation time (newest last)."""
        return f"{self.prefix}:jobs:index"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def job_active(self, kind: str) -> str:
        """The id of the queued or running job of this kind (at most one per kind)."""
        return f"{self.prefix}:jobs:active:{kind}"

    @property
    def job_lock(self) -> str:
        """Held by the one job that is running anywhere (jobs never overlap)."""
        return f"{self.prefix}:jobs:lock"

    # Item writes, as seen by a re-index running beside them.
    @property
    def item_changes(self) -> str:
        """Sorted set item -> time (ms, Redis clock) of its last applied write or delete."""
        return f"{self.prefix}:itemchg"

    @property
    def item_writers(self) -> str:
        """Sorted set writer -> lease expiry (ms): item writes in flight."""
        return f"{self.prefix}:itemwriters"

    @property
    def item_freeze(self) -> str:
        """Set while a re-index swaps the alias: item writers wait (expires by itself)."""
        return f"{self.prefix}:itemfreeze"

    @property
    def text_model(self) -> str:
        """The text model the live items collection was embedded with (set by re-index)."""
        return f"{self.prefix}:textmodel"

    @property
    def collection_drops(self) -> str:
        """Sorted set physical collection -> time after which it is dropped."""
        return f"{self.prefix}:drops"

    @property
    def trending_epoch(self) -> str:
        return f"{self.prefix}:trend:epoch"

    @property
    def trending_scopes(self) -> str:
        """Set of the trending scopes that exist (for trimming and rebasing)."""
        return f"{self.prefix}:trend:scopes"

    @property
    def item_categories(self) -> str:
        """Hash item -> its categories (unit-separated), for per-category trending."""
        return f"{self.prefix}:itemcats"

    def trending(self, scope: str = "all") -> str:
        """Sorted set item -> time-decayed interaction weight (`all`, `cat:<c>`, `region:<r>`)."""
        return f"{self.prefix}:trend:{scope}"

    # Policy and attribution (surfaces issue).
    @property
    def rules(self) -> str:
        """Hash rule id -> JSON business rule (pin, boost, bury)."""
        return f"{self.prefix}:rules"

    @property
    def rules_version(self) -> str:
        """Counter bumped on every rule change (part of result-cache keys)."""
        return f"{self.prefix}:rules:ver"

    def idempotency(self, key_digest: str) -> str:
        """String 'fingerprint|event ids' of a write sent with an Idempotency-Key (expires)."""
        return f"{self.prefix}:idem:{key_digest}"

    def negatives(self, user_id: str) -> str:
        """Sorted set item -> time of the user's last dislike or skip of it (never served)."""
        return f"{self.prefix}:neg:{user_id}"

    @property
    def impressions(self) -> str:
        """Stream of served lists (recommendation id, user, surface, variant, items)."""
        return f"{self.prefix}:impressions"

    def rec_info(self, recommendation_id: str) -> str:
        """Hash item -> JSON (sources, position, surface, variant, explored, propensity) of one
        served list, and `~clicked:<item>` -> time of its attributed click (expires)."""
        return f"{self.prefix}:recinfo:{recommendation_id}"

    @property
    def surface_stats(self) -> str:
        """Hash 'imp|click' + '|surface|source|variant' -> count."""
        return f"{self.prefix}:surfstats"

    def candidates(self, owner: str) -> str:
        """A precomputed candidate set: JSON; owner `u:<user_id>` or `i:<item_id>`."""
        return f"{self.prefix}:cand:{owner}"

    @property
    def candidates_stale(self) -> str:
        """Owners whose candidate sets are due a refresh: zset, score = when first marked (or
        when due, for an owner inside its refresh interval)."""
        return f"{self.prefix}:cand:stale"

    @property
    def candidates_taken(self) -> str:
        """Hash of the queued owners a refresher has taken (a new mark replaces theirs)."""
        return f"{self.prefix}:cand:taken"

    @property
    def candidates_next(self) -> str:
        """Owners rebuilt lately: zset, score = when their set may be rebuilt again."""
        return f"{self.prefix}:cand:next"

    @property
    def candidates_built(self) -> str:
        """The tag (collection|model) every held set was last queued for a bulk refresh."""
        return f"{self.prefix}:cand:bulk"
