"""Every Redis key Vantage uses, in one place, under one configurable prefix.

Every key reads `{<prefix>:<owner>}:<name>`: the part in braces is its Redis Cluster hash tag,
so keys of one owner share a slot and a script or transaction over them is single-slot.
Owners: `u:<user>` (a user's state, candidate set and exactly-once markers), `p<n>` (event
partition n: its stream, dead letters, idempotency records and worker lease), `workers` (the
live workers), `cat` (the catalogue: tombstones, item versions and changes, re-index
coordination), `boards` (popularity, trending, the users index), `recs<k>` (served lists,
their attribution and surface counters, in 16 shards), `jobs`, `rules`, `auth`, `cand` (the
candidate refresh queue), `erase` (erasure receipts), `models` (every kind's current version,
read in one MGET per request), `stats`; and single-key owners
(`rc:<digest>` cached lists, `i:<item>` candidate sets, `rl:<key id>` rate limits). A
single Redis ignores the braces. `scan_pattern` matches every key of the deployment.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

RECS_SHARDS = 16


def crc16(text: str) -> int:
    """CRC-16 (XMODEM) of a string: stable across processes and hosts, unlike `hash()`."""
    return binascii.crc_hqx(text.encode(), 0)


@dataclass(frozen=True)
class Keys:
    prefix: str
    # Event stream partitions: a user's events (and an item's) always go to the same one.
    partitions: int = 1

    @classmethod
    def of(cls, redis_settings: Any) -> Keys:
        """The keys of a deployment's `RedisSettings` (prefix and partition count)."""
        return cls(redis_settings.key_prefix, redis_settings.partitions)

    def tag(self, owner: str) -> str:
        """The hash tag of one owner's keys."""
        return f"{{{self.prefix}:{owner}}}"

    @property
    def scan_pattern(self) -> str:
        """SCAN MATCH pattern of every key of this deployment (braces are literal in globs)."""
        return f"{{{self.prefix}:*"

    def partition_of(self, routing_key: str) -> int:
        """The partition of a user's (or an item's) events."""
        return crc16(routing_key) % self.partitions

    def stream(self, partition: int) -> str:
        """One partition's stream of accepted events (interactions, item and user changes)."""
        return f"{self.tag(f'p{partition}')}:events"

    def dead_letters(self, partition: int) -> str:
        """Events of one partition that can never be applied, with the error."""
        return f"{self.tag(f'p{partition}')}:dead"

    def partition_lease(self, partition: int) -> str:
        """The worker consuming one partition (a lease that expires unless renewed)."""
        return f"{self.tag(f'p{partition}')}:lease"

    @property
    def live_workers(self) -> str:
        """Sorted set worker -> expiry (ms) of its last heartbeat: who shares the partitions."""
        return f"{self.tag('workers')}:live"

    @property
    def popularity(self) -> str:
        """Sorted set item -> accumulated positive interaction weight."""
        return f"{self.tag('boards')}:pop"

    @property
    def tombstones(self) -> str:
        """Sorted set item -> time it was deleted or hidden; serving excludes these."""
        return f"{self.tag('cat')}:tomb"

    @property
    def item_versions(self) -> str:
        """Hash item -> stream id of the last applied write (stale writes are skipped)."""
        return f"{self.tag('cat')}:itemver"

    @property
    def users_index(self) -> str:
        return f"{self.tag('boards')}:users"

    @property
    def worker_stats(self) -> str:
        """Hash of running totals all workers add to (applied:<type>, embedded, embed_s)."""
        return self.tag("stats")

    def done(self, user_id: str, event_id: str) -> str:
        """Marker that an interaction's effects were applied (makes redelivery harmless); in
        its user's slot, beside the state it guards."""
        return f"{self.tag('u:' + user_id)}:done:{event_id}"

    def counted(self, event_id: str) -> str:
        """Marker that an interaction was added to the global counters (`boards` slot)."""
        return f"{self.tag('boards')}:done:{event_id}"

    def user(self, user_id: str) -> str:
        """Hash: profile (JSON), cvec (float32 bytes), pvec (float32 bytes, from onboarding
        preferences), ver (bumped on every applied event)."""
        return f"{self.tag('u:' + user_id)}:user"

    def controls(self, user_id: str) -> str:
        """Hash of the user's own controls (core/stores/controls.py): `paused`, `profiling`,
        and `ni:<kind>:<value>` -> time, what they said they are not interested in."""
        return f"{self.tag('u:' + user_id)}:ctl"

    def history(self, user_id: str) -> str:
        """Sorted set item -> last interaction time."""
        return f"{self.tag('u:' + user_id)}:hist"

    def devices(self, user_id: str) -> str:
        """Hash item -> the device of the history item's newest use (when the event said)."""
        return f"{self.tag('u:' + user_id)}:dev"

    def affinity(self, user_id: str) -> str:
        """Hash item -> summed signed interaction weight."""
        return f"{self.tag('u:' + user_id)}:aff"

    def confidence(self, user_id: str) -> str:
        """Hash item -> summed iALS confidence (the input of fold-in)."""
        return f"{self.tag('u:' + user_id)}:conf"

    def model(self, kind: str) -> str:
        """The current version of a model kind (cf, ranker)."""
        return f"{self.tag('models')}:current:{kind}"

    @property
    def canary(self) -> str:
        """Hash: the ranker canary (version, share, margin, baseline, state, times, reason),
        in the models' slot so a promotion and the publish are one transaction."""
        return f"{self.tag('models')}:canary"

    @property
    def canary_log(self) -> str:
        """List of the canary's decisions, newest first (JSON, the last 100)."""
        return f"{self.tag('models')}:canary:log"

    @property
    def shadow_candidates(self) -> str:
        """Hash name -> JSON of a registered off-policy candidate (surface, overrides, share):
        serving computes its list beside a share of the surface's lists (serving/shadow.py)."""
        return f"{self.tag('models')}:ope:candidates"

    def model_versions(self, kind: str) -> str:
        """Hash version -> JSON metadata (metrics, sizes, time)."""
        return f"{self.tag('models')}:versions:{kind}"

    def result_cache(self, digest: str) -> str:
        return self.tag("rc:" + digest)

    # Jobs (re-index, model refresh): a stream workers consume, one hash per job.
    @property
    def jobs(self) -> str:
        return f"{self.tag('jobs')}:stream"

    @property
    def jobs_index(self) -> str:
        """Sorted set job id -> creation time (newest last)."""
        return f"{self.tag('jobs')}:index"

    def job(self, job_id: str) -> str:
        return f"{self.tag('jobs')}:job:{job_id}"

    def job_active(self, kind: str) -> str:
        """The id of the queued or running job of this kind (at most one per kind)."""
        return f"{self.tag('jobs')}:active:{kind}"

    @property
    def job_lock(self) -> str:
        """Held by the one job that is running anywhere (jobs never overlap)."""
        return f"{self.tag('jobs')}:lock"

    # Item writes, as seen by a re-index running beside them.
    @property
    def item_changes(self) -> str:
        """Sorted set item -> time (ms, Redis clock) of its last applied write or delete."""
        return f"{self.tag('cat')}:itemchg"

    @property
    def catalogue_feed(self) -> str:
        """Stream of the ids whose tombstone or change-log entry was just written: serving
        processes follow it to keep both sorted sets in memory (`core/stores/catalogue.py`)."""
        return f"{self.tag('cat')}:feed"

    @property
    def item_writers(self) -> str:
        """Sorted set writer -> lease expiry (ms): item writes in flight."""
        return f"{self.tag('cat')}:itemwriters"

    @property
    def item_freeze(self) -> str:
        """Set while a re-index swaps the alias: item writers wait (expires by itself)."""
        return f"{self.tag('cat')}:itemfreeze"

    @property
    def text_model(self) -> str:
        """The text model the live items collection was embedded with (set by re-index)."""
        return f"{self.tag('cat')}:textmodel"

    @property
    def collection_drops(self) -> str:
        """Sorted set physical collection -> time after which it is dropped."""
        return f"{self.tag('cat')}:drops"

    @property
    def trending_epoch(self) -> str:
        return f"{self.tag('boards')}:trend-epoch"

    @property
    def trending_scopes(self) -> str:
        """Set of the trending scopes that exist (for trimming and rebasing)."""
        return f"{self.tag('boards')}:trend-scopes"

    @property
    def item_categories(self) -> str:
        """Hash item -> its categories (unit-separated), for per-category trending."""
        return f"{self.tag('cat')}:itemcats"

    def trending(self, scope: str = "all") -> str:
        """Sorted set item -> time-decayed interaction weight (`all`, `cat:<c>`, `region:<r>`)."""
        return f"{self.tag('boards')}:trend:{scope}"

    # Policy and attribution (surfaces issue).
    @property
    def rules(self) -> str:
        """Hash rule id -> JSON business rule (pin, boost, bury)."""
        return f"{self.tag('rules')}:all"

    @property
    def rules_version(self) -> str:
        """Counter bumped on every rule change (part of result-cache keys)."""
        return f"{self.tag('rules')}:ver"

    def idempotency(self, partition: int, key_digest: str) -> str:
        """String 'fingerprint|event ids' of the part of a write sent with an Idempotency-Key
        that went to one partition (expires)."""
        return f"{self.tag(f'p{partition}')}:idem:{key_digest}"

    def negatives(self, user_id: str) -> str:
        """Sorted set item -> time of the user's last dislike or skip of it (never served)."""
        return f"{self.tag('u:' + user_id)}:neg"

    # Served lists, their attribution and the surface counters are spread over RECS_SHARDS
    # owners `recs<k>` by recommendation id: on a cluster no one node holds every served list.
    def rec_shard(self, recommendation_id: str) -> int:
        """The shard of a served list (stable: CRC-16 of its id)."""
        return crc16(recommendation_id) % RECS_SHARDS

    def impressions(self, shard: int) -> str:
        """Stream of one shard's served lists (recommendation id, user, surface, variant,
        items)."""
        return f"{self.tag(f'recs{shard}')}:impressions"

    def rec_info(self, recommendation_id: str) -> str:
        """Hash item -> JSON (sources, position, surface, variant, explored, propensity) of one
        served list, `~clicked:<item>` -> time of its attributed click, `~ev:<type>:<item>` ->
        time of its first attributed event of that type, `~shadow:<name>` -> a candidate's
        shadow list (serving/shadow.py); expires after the attribution window."""
        return f"{self.tag(f'recs{self.rec_shard(recommendation_id)}')}:recinfo:{recommendation_id}"

    def pages(self, recommendation_id: str) -> str:
        """JSON of a paged list's later pages (owner, surface, page size, items), expiring
        (serving/paging.py); beside the list's attribution hash."""
        return f"{self.tag(f'recs{self.rec_shard(recommendation_id)}')}:pages:{recommendation_id}"

    def surface_stats(self, shard: int) -> str:
        """Hash 'imp|click' + '|surface|source|variant' -> count, of one shard's lists (the
        totals are the sums over every shard)."""
        return f"{self.tag(f'recs{shard}')}:surfstats"

    def surface_stats_hour(self, shard: int, hour: int) -> str:
        """The same fields as `surface_stats`, counted in one hour (`hour` = unix time // 3600;
        expires `served_list.HOURLY_KEEP_S` after it began)."""
        return f"{self.tag(f'recs{shard}')}:surfstats:h:{hour}"

    def served_items_hour(self, surface: str, hour: int, variant: str | None = None) -> str:
        """HyperLogLog of the distinct items served on `surface` (to `variant`'s users, if
        given) in one hour (catalogue coverage); all in one slot, so a union is one PFCOUNT."""
        tail = f":{variant}" if variant is not None else ""
        return f"{self.tag('recs0')}:served:h:{hour}:{surface}{tail}"

    def candidates(self, owner: str) -> str:
        """A precomputed candidate set: JSON; owner `u:<user_id>` or `i:<item_id>`."""
        return f"{self.tag(owner)}:cand"

    def candidate_owner(self, key: str) -> str:
        """The owner a `candidates` key belongs to."""
        head, tail = f"{{{self.prefix}:", "}:cand"
        if not (key.startswith(head) and key.endswith(tail)):
            raise ValueError(f"not a candidate-set key: {key!r}")
        return key[len(head) : -len(tail)]

    @property
    def candidates_stale(self) -> str:
        """Owners whose candidate sets are due a refresh: zset, score = when first marked (or
        when due, for an owner inside its refresh interval)."""
        return f"{self.tag('cand')}:stale"

    @property
    def candidates_taken(self) -> str:
        """Hash of the queued owners a refresher has taken (a new mark replaces theirs)."""
        return f"{self.tag('cand')}:taken"

    @property
    def candidates_next(self) -> str:
        """Owners rebuilt lately: zset, score = when their set may be rebuilt again."""
        return f"{self.tag('cand')}:next"

    @property
    def candidates_built(self) -> str:
        """The tag (collection|model) every held set was last queued for a bulk refresh."""
        return f"{self.tag('cand')}:bulk"

    def erasure(self, user_digest: str) -> str:
        """Hash: the receipt of a user's erasure, under the SHA-256 of the user id (the id
        itself is what was erased): status, times, and `n:<store>` counts of what went."""
        return f"{self.tag('erase')}:{user_digest}"

    @property
    def erasure_latest(self) -> str:
        """String: when the latest erasure was asked for (a digest is hex: never `latest`).
        The impression writer reads it once per batch to know whether to look closer."""
        return f"{self.tag('erase')}:latest"

    @property
    def history_resets(self) -> str:
        """Hash user id -> when they last reset their history: training leaves out their
        events logged before it."""
        return f"{self.tag('boards')}:resets"

    @property
    def sessions(self) -> str:
        """Sorted set session id -> time of its last accepted event (the expiry sweep's)."""
        return f"{self.tag('sessions')}:last"

    def session_merge(self, session_id: str) -> str:
        """JSON of a session's merge into a user (user_id, event ids, at; applied once done),
        in the sessions slot; expires with sessions.ttl_s."""
        return f"{self.tag('sessions')}:merge:{session_id}"

    def session_journal(self, owner: str) -> str:
        """List of a session's newest events as applied (JSON), in the session owner's slot:
        what a merge folds into the user."""
        return f"{self.tag('u:' + owner)}:journal"

    def user_key_pattern(self, user_id: str) -> str:
        """SCAN MATCH pattern of every key in a user's slot (ids hold no glob characters)."""
        return f"{self.tag('u:' + user_id)}:*"

    def api_key(self, key_id: str) -> str:
        """Hash of one API key: digest of its secret, scopes, name, limits, revoked_at."""
        return f"{self.tag('auth')}:key:{key_id}"

    @property
    def api_keys(self) -> str:
        """Set of every API key id."""
        return f"{self.tag('auth')}:keys"

    def rate_limit(self, key_id: str) -> str:
        """Token bucket of one API key (its own slot: the busiest key on every request)."""
        return self.tag("rl:" + key_id)
