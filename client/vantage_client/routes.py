"""Every route of the Vantage API the client calls, by client method name.

The one place paths are spelt: request builders look their route up here, and a test compares
this table with the server's OpenAPI schema both ways (so a new route without a client method,
or a method whose route is gone, fails the build).
"""

from __future__ import annotations

from typing import Final

ROUTES: Final[dict[str, tuple[str, str]]] = {
    # operations
    "health": ("GET", "/healthz"),
    "ready": ("GET", "/readyz"),
    "metrics": ("GET", "/metrics"),
    # catalogue
    "put_item": ("PUT", "/v1/items/{item_id}"),
    "put_items": ("POST", "/v1/items/batch"),
    "get_item": ("GET", "/v1/items/{item_id}"),
    "search_items": ("GET", "/v1/search/items"),
    "delete_item": ("DELETE", "/v1/items/{item_id}"),
    # users
    "put_user": ("PUT", "/v1/users/{user_id}"),
    "patch_user": ("PATCH", "/v1/users/{user_id}"),
    "get_user": ("GET", "/v1/users/{user_id}"),
    "erase_user": ("DELETE", "/v1/users/{user_id}"),
    "get_erasure": ("GET", "/v1/users/{user_id}/erasure"),
    "list_users": ("GET", "/v1/admin/users"),
    # users' own controls
    "get_controls": ("GET", "/v1/users/{user_id}/controls"),
    "patch_controls": ("PATCH", "/v1/users/{user_id}/controls"),
    "add_not_interested": ("POST", "/v1/users/{user_id}/not-interested"),
    "remove_not_interested": ("DELETE", "/v1/users/{user_id}/not-interested/{kind}/{value}"),
    "reset_history": ("POST", "/v1/users/{user_id}/history/reset"),
    # guests' sessions
    "merge_session": ("POST", "/v1/users/{user_id}/merge"),
    # events and recommendations
    "log_interactions": ("POST", "/v1/interactions"),
    "recommend": ("GET", "/v1/recommendations"),
    "why_not": ("GET", "/v1/recommendations/why-not"),
    "cached_recommendations": ("GET", "/v1/recommendations/cached"),
    # admin: jobs and models
    "reindex": ("POST", "/v1/admin/reindex"),
    "refresh_models": ("POST", "/v1/admin/models/refresh"),
    "list_models": ("GET", "/v1/admin/models"),
    "make_current": ("PUT", "/v1/admin/models/{kind}/current"),
    "ranker_drift": ("GET", "/v1/admin/models/ranker/drift"),
    "canary": ("GET", "/v1/admin/models/ranker/canary"),
    "start_canary": ("POST", "/v1/admin/models/ranker/canary"),
    "stop_canary": ("POST", "/v1/admin/models/ranker/canary/stop"),
    "evaluate_offline": ("POST", "/v1/admin/ope"),
    "list_ope_candidates": ("GET", "/v1/admin/ope/candidates"),
    "put_ope_candidate": ("PUT", "/v1/admin/ope/candidates/{name}"),
    "delete_ope_candidate": ("DELETE", "/v1/admin/ope/candidates/{name}"),
    "list_jobs": ("GET", "/v1/admin/jobs"),
    "get_job": ("GET", "/v1/admin/jobs/{job_id}"),
    # admin: the event queue
    "list_dead_letters": ("GET", "/v1/admin/dead-letters"),
    "replay_dead_letters": ("POST", "/v1/admin/dead-letters/replay"),
    "discard_dead_letter": ("DELETE", "/v1/admin/dead-letters/{dead_id}"),
    "queue": ("GET", "/v1/admin/queue"),
    # admin: business rules and analytics
    "put_rule": ("PUT", "/v1/admin/rules/{rule_id}"),
    "get_rule": ("GET", "/v1/admin/rules/{rule_id}"),
    "delete_rule": ("DELETE", "/v1/admin/rules/{rule_id}"),
    "list_rules": ("GET", "/v1/admin/rules"),
    "surface_metrics": ("GET", "/v1/admin/metrics/surfaces"),
    "surface_metrics_hourly": ("GET", "/v1/admin/metrics/surfaces/hourly"),
    "experiments": ("GET", "/v1/admin/experiments"),
    # API keys
    "me": ("GET", "/v1/auth/me"),
    "create_key": ("POST", "/v1/admin/keys"),
    "list_keys": ("GET", "/v1/admin/keys"),
    "get_key": ("GET", "/v1/admin/keys/{key_id}"),
    "revoke_key": ("POST", "/v1/admin/keys/{key_id}/revoke"),
}

# Routes the server serves but leaves out of its OpenAPI schema (Prometheus text, not JSON).
UNDOCUMENTED: Final[frozenset[str]] = frozenset({"metrics"})
