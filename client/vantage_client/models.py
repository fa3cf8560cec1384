"""Typed answers of the API, named as in its OpenAPI schema (`/openapi.json`); answers that
echo a request body extend its model in `inputs`.

Fields a newer server adds are kept (`extra="allow"`, read them with `model_extra`), so an
older client reads a newer server's answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vantage_client import inputs


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class Accepted(ApiModel):
    """An accepted write: on the event stream, applied by a worker shortly."""

    status: str = "queued"
    event_ids: list[str]
    replayed: bool = Field(
        False, description="set by the client: the server answered a retry from its first attempt"
    )


class ItemOut(inputs.Item):
    """A stored item: the fields it was written with, and when it was last applied."""

    model_config = ConfigDict(extra="allow")

    updated_at: int | None = None


class ProfilePreferences(inputs.Preferences):
    model_config = ConfigDict(extra="allow")


class Profile(inputs.UserFields):
    """A stored user profile (`UserFields` in the API's schema)."""

    model_config = ConfigDict(extra="allow")

    preferences: ProfilePreferences = Field(default_factory=ProfilePreferences)


class HistoryEntry(ApiModel):
    item_id: str
    timestamp: float
    device: str | None = None


class UserOut(ApiModel):
    user_id: str
    profile: Profile | None
    recent: list[HistoryEntry]
    has_profile_vector: bool


class ErasureLog(ApiModel):
    status: str
    lines_removed: int
    free_at: float | None
    free_by: float | None


class ErasureReceipt(ApiModel):
    """What erasing a user removed, from which store, and when."""

    user_id: str
    status: str
    requested_at: float | None
    completed_at: float | None
    removed: dict[str, int]
    event_log: ErasureLog
    kept: list[str]


class RecItem(ApiModel):
    item_id: str
    score: float
    sources: list[str]
    reasons: list[str]
    position: int = 0
    explored: bool = False
    propensity: float | None = None
    title: str | None = Field(None, description="with details=True")
    category: str | None = Field(None, description="with details=True: the primary category")


class Recommendations(ApiModel):
    recommendation_id: str
    user_id: str | None = Field(description="who asked (None for a guest's session)")
    session_id: str | None = None
    surface: str
    variant: str = "default"
    items: list[RecItem]
    generated_at: float
    cached: bool = False
    degraded: bool = False
    degraded_reasons: list[str] = Field(default_factory=list)
    debug: dict[str, Any] | None = None
    profiling: bool = True
    next_cursor: str | None = None


class PrecomputedRecommendations(Recommendations):
    source: str = Field(description="result_cache or candidate_set")


class Health(ApiModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)


class JobOut(ApiModel):
    id: str
    kind: str
    state: str
    params: dict[str, Any] | None = None
    stage: str | None = None
    done: int = 0
    total: int = 0
    progress: float = 0.0
    rate: float | None = None
    eta_s: float | None = None
    attempts: int = 0
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    status_url: str = ""


class JobList(ApiModel):
    items: list[JobOut]


class ModelVersion(ApiModel):
    """One trained version; its training metrics are the extra fields."""

    version: str


class ModelKind(ApiModel):
    current: str | None
    total: int
    versions: list[ModelVersion]


class DeadLetter(ApiModel):
    id: str
    original_id: str | None
    type: str | None
    error: str
    enqueued_at: float | None
    data: str | None = None


class DeadLetterPage(ApiModel):
    items: list[DeadLetter]
    next: str | None = None
    total: int


class Replayed(ApiModel):
    replayed: list[dict[str, str]]
    missing: list[str]


class PartitionStatus(ApiModel):
    partition: int
    length: int
    dead_letters: int
    pending: int
    lag: int
    worker: str | None


class ConsumerStatus(ApiModel):
    name: str
    pending: int
    idle_ms: int


class QueueStatus(ApiModel):
    partitions: int
    group: str
    length: int
    dead_letters: int
    pending: int
    lag: int
    consumers: list[ConsumerStatus]
    workers: list[str]
    by_partition: list[PartitionStatus]


class RuleOut(inputs.RuleIn):
    """A stored rule: its fields, id and times; expired rules are ignored until pruned."""

    model_config = ConfigDict(extra="allow")

    rule_id: str
    created_at: float
    updated_at: float
    expired: bool = False


class RuleList(ApiModel):
    items: list[RuleOut]
    total: int
    version: int
    next_after: str | None = None


class SurfaceRow(ApiModel):
    surface: str
    source: str
    variant: str
    impressions: int
    clicks: int
    ctr: float


class SurfaceMetrics(ApiModel):
    rows: list[SurfaceRow]


class HourlyRow(SurfaceRow):
    hour: int


class HourlyMetrics(ApiModel):
    hours: int
    rows: list[HourlyRow]


class SearchHit(ItemOut):
    score: float


class SearchResults(ApiModel):
    model: str
    items: list[SearchHit]


class ModelCurrent(ApiModel):
    kind: str
    current: str
    previous: str | None
    changed: bool


class KeyOut(ApiModel):
    key_id: str
    name: str
    scopes: list[str]
    rate_per_s: float
    burst: int
    created_at: float
    revoked_at: float | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the key itself: shown once, store it now")


class KeyList(ApiModel):
    items: list[KeyOut]


class Me(ApiModel):
    auth_enabled: bool
    key: KeyOut | None
    scopes: list[str]


class FeatureDrift(ApiModel):
    feature: str
    psi: float
    level: str


class RankerDrift(ApiModel):
    version: str | None
    rows: float
    min_rows: int
    features: list[FeatureDrift]


class ArmOut(ApiModel):
    variant: str
    share: float
    impressions: int
    clicks: int
    ctr: float
    lists: int
    degraded_share: float
    p95_ms: float | None
    distinct_items: int
    safety_per_list: float


class GuardrailOut(ApiModel):
    name: str
    value: float | None
    default: float | None
    limit: float | None
    breached: bool | None


class ComparisonOut(ApiModel):
    variant: str
    ctr_diff: float
    ctr_diff_low: float
    ctr_diff_high: float
    p_value: float
    decision: str = Field(description="continue, ship or stop")
    reason: str
    guardrails: list[GuardrailOut]


class ExperimentOut(ApiModel):
    surface: str
    window_hours: int
    since: int
    arms: list[ArmOut]
    comparisons: list[ComparisonOut]


class ExperimentList(ApiModel):
    items: list[ExperimentOut]


class WhyNot(ApiModel):
    """Where an item left a user's list: the stage, why, and the numbers that decided."""

    item_id: str
    user_id: str | None
    session_id: str | None = None
    surface: str
    variant: str
    profiling: bool
    stage: str
    served: bool
    detail: str
    numbers: dict[str, Any]
    items: list[str]


class CanaryOut(ApiModel):
    version: str
    share: float
    margin: float
    baseline: str | None
    started_at: float
    state: str = Field(description="running, promoted or rolled_back")
    decided_at: float | None = None
    reason: str = ""


class CanaryStatus(ApiModel):
    canary: CanaryOut | None
    log: list[dict[str, Any]]
    now: dict[str, Any] | None = None


# Off-policy evaluation answers live in their own module.
from vantage_client.models_controls import NotInterestedOut as NotInterestedOut  # noqa: E402
from vantage_client.models_controls import SessionMerge as SessionMerge  # noqa: E402
from vantage_client.models_controls import UserControls as UserControls  # noqa: E402
from vantage_client.models_ope import OpeCandidateOut as OpeCandidateOut  # noqa: E402
from vantage_client.models_ope import OpeCandidates as OpeCandidates  # noqa: E402
from vantage_client.models_ope import OpeEstimate as OpeEstimate  # noqa: E402
from vantage_client.models_ope import OpeInterval as OpeInterval  # noqa: E402
from vantage_client.models_ope import OpeOut as OpeOut  # noqa: E402


class UserPage(ApiModel):
    items: list[str]
    next_cursor: str | None
