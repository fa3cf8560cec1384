"""Request and response bodies of the HTTP API (domain records live in `core.domain`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from core.domain import JSON_NUMBER, InteractionIn, Item, UserFields

MAX_BATCH = 1000


class Accepted(BaseModel):
    """An accepted write: it is on the event stream and will be applied by a worker."""

    status: str = "queued"
    event_ids: list[str]


class ItemBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Item] = Field(min_length=1, max_length=MAX_BATCH)


class ItemOut(Item):
    updated_at: int | None = None


class HistoryEntry(BaseModel):
    item_id: str
    timestamp: float
    device: str | None = Field(
        None, description="the device of the item's newest use that named one (null: none did)"
    )


class UserOut(BaseModel):
    user_id: str
    profile: UserFields | None
    recent: list[HistoryEntry]
    has_profile_vector: bool


class ErasureLog(BaseModel):
    """When the durable event log is free of the user."""

    status: str = Field(description="`free`, or `pending_compaction` until `free_by`")
    lines_removed: int = Field(description="the user's lines removed from the log files")
    free_at: float | None = Field(description="when the log became free of the user (epoch s)")
    free_by: float | None = Field(description="while pending: the compaction is due by then")


class ErasureReceipt(BaseModel):
    """What erasing a user removed, from which store, and when."""

    user_id: str
    status: str = Field(description="`completed`, or `pending` until a worker has applied it")
    requested_at: float | None = Field(description="epoch seconds")
    completed_at: float | None = Field(description="epoch seconds; null while pending")
    removed: dict[str, int] = Field(
        description="per store: stream_events, dead_letters, redis_keys, index_entries, "
        "milvus_user_rows, impressions, attribution_records, cached_lists, model_artefacts"
    )
    event_log: ErasureLog
    kept: list[str] = Field(description="what is kept on purpose (aggregates), and why")


# The list bound is checked before its elements are validated (no work for 10^6 items).
InteractionsIn = Annotated[
    Annotated[InteractionIn, Tag("one")]
    | Annotated[list[InteractionIn], Field(min_length=1, max_length=MAX_BATCH), Tag("many")],
    # Validate against the branch the JSON type picks, so errors name the fields of that
    # branch only (not "function-after[...]" noise from both).
    Discriminator(lambda v: "many" if isinstance(v, list) else "one"),
]


class RecItem(BaseModel):
    item_id: str
    score: float
    sources: list[str]
    reasons: list[str]
    position: int = Field(0, description="1-based position in the list")
    explored: bool = Field(False, description="placed by exploration, not by its score")
    propensity: float | None = Field(
        None, description="probability the policy shows this item at this position"
    )
    title: str | None = Field(None, description="with details=true: the item's current title")
    category: str | None = Field(
        None, description="with details=true: the item's current primary category"
    )


class Recommendations(BaseModel):
    recommendation_id: str
    user_id: str | None = Field(description="who asked (null for a guest's session)")
    session_id: str | None = Field(None, description="the guest's session, if one asked")
    surface: str
    variant: str = Field("default", description="experiment variant the user is assigned to")
    items: list[RecItem]
    generated_at: float
    cached: bool = False
    degraded: bool = Field(
        False, description="true when a dependency failed and a fallback produced this list"
    )
    degraded_reasons: list[str] = Field(
        default_factory=list,
        description="why: redis_unavailable, milvus_timeout, milvus_circuit_open, "
        "ranker_failed, served_last_good_list, ...",
    )
    debug: dict[str, Any] | None = Field(
        None,
        description="with debug=true: variant, per-stage timings (ms), per-source counts, and the "
        "diversity caps relaxed to fill the list (`caps_relaxed`)",
    )
    profiling: bool = Field(
        True,
        description="false: built without personal data (profiling=false, or the user's own "
        "switch): popularity, trending, fresh items, the context item; safety still applied",
    )
    next_cursor: str | None = Field(
        None,
        description="with pages > 1: pass it as `cursor` for the next page of this list "
        "(null: the last page, or a list not built for paging)",
    )


class PrecomputedRecommendations(Recommendations):
    source: Literal["result_cache", "candidate_set"] = Field(
        description="result_cache: the list this request would be served from the cache now; "
        "candidate_set: the user's precomputed candidates, unranked, through the hard filters"
    )


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)


MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/@:-]{0,199}$"


class ReindexIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None,
        pattern=MODEL_NAME_PATTERN,
        description="sentence-transformers model to re-embed with (a name or local path the "
        "workers can load offline, same dimension); default: the live model",
    )
    batch_size: Annotated[int, Field(ge=16, le=4096), JSON_NUMBER] | None = Field(
        None, description="items per embedding batch"
    )


class JobOut(BaseModel):
    id: str
    kind: str
    state: str
    params: dict[str, Any] | None = None
    stage: str | None = None
    done: int = 0
    total: int = 0
    progress: float = 0.0
    rate: float | None = Field(None, description="units per second (items for a re-index)")
    eta_s: float | None = None
    attempts: int = 0
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    status_url: str = ""


class JobList(BaseModel):
    items: list[JobOut]


class DeadLetter(BaseModel):
    id: str
    original_id: str | None
    type: str | None
    error: str
    enqueued_at: float | None
    data: str | None = Field(None, description="the payload as it was received (JSON text)")


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    next: str | None = Field(None, description="pass as `after` for the next page")
    total: int


# An event id: a stream entry id (19 digits fit each of its 64-bit halves), then `-<partition>`
# on partitions other than 0.
EVENT_ID_PATTERN = r"^\d{1,19}-\d{1,19}(-\d{1,4})?$"


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[str, Field(pattern=EVENT_ID_PATTERN)]] = Field(
        min_length=1, max_length=MAX_BATCH, description="dead-letter ids to put back on the queue"
    )


class PartitionStatus(BaseModel):
    partition: int
    length: int = Field(description="entries in the partition's stream (trimmed once applied)")
    dead_letters: int
    pending: int = Field(description="delivered to a worker, not yet acknowledged")
    lag: int = Field(description="not yet delivered to any worker")
    worker: str | None = Field(description="the worker holding the partition's lease (None: free)")


class ConsumerStatus(BaseModel):
    name: str
    pending: int
    idle_ms: int = Field(description="since its last read, in its most recent partition")


class QueueStatus(BaseModel):
    partitions: int = Field(description="VANTAGE_REDIS__PARTITIONS")
    group: str
    length: int
    dead_letters: int
    pending: int
    lag: int
    consumers: list[ConsumerStatus]
    workers: list[str] = Field(description="workers whose heartbeat is current")
    by_partition: list[PartitionStatus]


class Replayed(BaseModel):
    replayed: list[dict[str, str]]
    missing: list[str]


class MakeCurrentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[0-9A-Za-z_.:-]{1,64}$", description="a listed version")
    force: bool = Field(False, description="serve it even though it was withdrawn")


class ModelCurrent(BaseModel):
    kind: str
    current: str
    previous: str | None = Field(description="the version served before (none: none was)")
    changed: bool = Field(description="false: it was current already")


class FeatureDrift(BaseModel):
    feature: str
    psi: float = Field(description="population stability index, served vs trained")
    level: str = Field(description="stable (< 0.1), shift (0.1-0.25), drift (> 0.25)")


class RankerDrift(BaseModel):
    version: str | None = Field(description="the ranker whose scored rows are counted")
    rows: float = Field(description="rows counted (decayed: recent traffic weighs most)")
    min_rows: int = Field(description="fewer rows than this: no figures yet")
    features: list[FeatureDrift] = Field(description="most drifted first")
