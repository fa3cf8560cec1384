"""API keys: `Authorization: Bearer <key>`, stored hashed, with scopes and per-key rate limits.

A key reads `vtg_<id>_<secret>`. Redis keeps, per id, the SHA-256 of the secret (never the
secret), its scopes, name and limits; the secret is shown once, at creation. Scopes:

    recommend   GET /v1/recommendations
    events      POST /v1/interactions, PUT /v1/users/...
    catalog     PUT/POST/DELETE/GET /v1/items/...
    admin       /v1/admin/..., /metrics, GET /v1/users/... (personal data); and all above
    (any)       GET /v1/auth/me: the calling key's own name, scopes and limits

Rate limits are token buckets in Redis (`core/scripts/token_bucket.lua`): `rate` requests per
second sustained, `burst` at once; over the limit -> 429 with Retry-After. Each API process takes
tokens in leases of up to `LEASE_S` of the key's rate (a quarter of its burst at most) and spends
them in-process, so a busy key costs one Lua call per lease, not per request; a lease unspent
after `LEASE_TTL_S` is dropped (never more than the key's limit overall, at most one lease per
process less). A key slower than 1/`LEASE_S` per second gets one token per call: exact.
Verified keys are cached in-process for a few seconds, so a revoked key stops working within
`cache_s`, and known keys keep working (without rate limits) while Redis is down:
recommendations must survive an outage.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app import metrics
from core.errors import DependencyUnavailable, VantageError
from core.keys import Keys
from core.scripts import TOKEN_BUCKET

SCOPES = ("recommend", "events", "catalog", "admin")
LEASE_S = 0.05  # a lease holds up to this many seconds of a key's rate
LEASE_TTL_S = 1.0
KEY_ID_PATTERN = r"^[0-9a-f]{12}$"
_TOKEN = re.compile(r"^vtg_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


class Unauthorized(VantageError):
    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(VantageError):
    status_code = 403
    code = "forbidden"


class RateLimited(VantageError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    rate: float
    burst: int
    created_at: float
    revoked_at: float | None = None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "rate_per_s": self.rate,
            "burst": self.burst,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(keys: Keys, key_id: str) -> str:
    return keys.api_key(key_id)


class KeyStore:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys

    def create(
        self, name: str, scopes: list[str] | tuple[str, ...], *, rate: float, burst: int
    ) -> tuple[str, ApiKey]:
        """A new key; returns (the token, shown only now, and its record)."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {scopes})")
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = time.time()
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            _key(self.keys, key_id),
            mapping={
                "name": name,
                "scopes": ",".join(dict.fromkeys(scopes)),
                "hash": _digest(secret),
                "rate": repr(float(rate)),
                "burst": int(burst),
                "created_at": repr(now),
            },
        )
        pipe.sadd(self.keys.api_keys, key_id)
        pipe.execute()
        rec = self.get(key_id)
        assert rec is not None
        return f"vtg_{key_id}_{secret}", rec

    def get(self, key_id: str) -> ApiKey | None:
        raw = self.r.hgetall(_key(self.keys, key_id))
        if not raw:
            return None
        f = {_text(k): _text(v) for k, v in raw.items()}
        return ApiKey(
            key_id=key_id,
            name=f.get("name", ""),
            scopes=tuple(s for s in f.get("scopes", "").split(",") if s),
            rate=float(f.get("rate", "10")),
            burst=int(f.get("burst", "20")),
            created_at=float(f.get("created_at", "0")),
            revoked_at=float(f["revoked_at"]) if f.get("revoked_at") else None,
        )

    def list(self) -> list[ApiKey]:
        ids = sorted(_text(i) for i in self.r.smembers(self.keys.api_keys))
        return [k for i in ids if (k := self.get(i)) is not None]

    def revoke(self, key_id: str) -> bool:
        if not self.r.exists(_key(self.keys, key_id)):
            return False
        self.r.hset(_key(self.keys, key_id), "revoked_at", repr(time.time()))
        return True

    def verify(self, token: str) -> ApiKey | None:
        """The live key this token belongs to, or None."""
        m = _TOKEN.match(token)
        if not m:
            return None
        key_id, secret = m.groups()
        stored = self.r.hget(_key(self.keys, key_id), "hash")
        if stored is None or not hmac.compare_digest(_text(stored), _digest(secret)):
            return None
        rec = self.get(key_id)
        return rec if rec is not None and rec.revoked_at is None else None


class Authenticator:
    """Verifies bearer tokens (cached briefly in-process) and enforces per-key rate limits."""

    def __init__(self, r: redis.Redis, keys: Keys, *, cache_s: float = 5.0, stale_s: float = 900):
        self.store = KeyStore(r, keys)
        self.keys = keys
        self.r = r
        self.cache_s = cache_s
        self.stale_s = stale_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[int, float]] = {}  # key id -> (tokens left, until)

    def known(self, token: str) -> tuple[bool, ApiKey | None]:
        """(True, the key or None) when this process can answer without Redis: a malformed
        token, or one verified in the last `cache_s`; (False, None) otherwise."""
        if not _TOKEN.match(token):
            return True, None  # malformed: no Redis call, and nothing cached
        hit = self._cache.get(_digest(token))
        if hit is not None and time.monotonic() - hit[0] < self.cache_s:
            return True, hit[1]
        return False, None

    def key_for(self, token: str) -> ApiKey | None:
        answered, cached = self.known(token)
        if answered:
            return cached
        now = time.monotonic()
        ck = _digest(token)
        hit = self._cache.get(ck)
        try:
            rec = self.store.verify(token)
        except redis.RedisError:
            # Redis down: a key verified in the last `stale_s` keeps working.
            if hit is not None and hit[1] is not None and now - hit[0] < self.stale_s:
                return hit[1]
            raise
        with self._lock:
            if rec is None:
                # Unknown or revoked: forget it (no outage grace for it) and cache nothing, so
                # a flood of bad keys cannot evict good ones.
                self._cache.pop(ck, None)
                return None
            if len(self._cache) > 10_000:
                oldest = min(self._cache, key=lambda k: self._cache[k][0])
                del self._cache[oldest]
            self._cache[ck] = (now, rec)
        return rec

    def forget(self, key_id: str) -> None:
        """Drop `key_id` from this process's cache (a revocation here takes effect at once;
        other processes see it within `cache_s`)."""
        with self._lock:
            for ck in [ck for ck, (_, rec) in self._cache.items() if rec and rec.key_id == key_id]:
                del self._cache[ck]
            self._leases.pop(key_id, None)

    def check_rate(self, key: ApiKey) -> None:
        if self.spend_lease(key.key_id):
            return
        want = max(1, min(int(key.rate * LEASE_S), key.burst // 4))
        try:
            taken, wait_ms = TOKEN_BUCKET(
                self.r,
                keys={"bucket": self.keys.rate_limit(key.key_id)},
                args={"rate": key.rate, "burst": key.burst, "want": want},
            )
        except redis.RedisError:
            return  # fail open: an outage must not lock every client out
        if int(taken) > 1:
            with self._lock:
                self._leases[key.key_id] = (int(taken) - 1, time.monotonic() + LEASE_TTL_S)
        if not int(taken):
            metrics.RATE_LIMITED.labels(key.key_id).inc()
            raise RateLimited(
                f"rate limit of key {key.key_id} exceeded ({key.rate:g}/s, burst {key.burst}); "
                "retry after the Retry-After seconds",
                int(wait_ms) / 1000,
            )

    def spend_lease(self, key_id: str) -> bool:
        """Spend one token of this process's lease for `key_id` (in memory); False when the
        lease is spent or expired: `check_rate` then asks Redis."""
        with self._lock:
            left, until = self._leases.get(key_id, (0, 0.0))
            if left <= 0 or until <= time.monotonic():
                self._leases.pop(key_id, None)
                return False
            self._leases[key_id] = (left - 1, until)
            return True


# Declares the scheme in the OpenAPI document (the "Authorize" button of /docs).
_bearer = HTTPBearer(auto_error=False, description="an API key: vtg_<id>_<secret>")


async def _authenticate(
    request: Request, creds: HTTPAuthorizationCredentials | None
) -> ApiKey | None:
    """The caller's live key (None while auth is off), or 401/503. A key verified in the last
    few seconds is answered on the event loop; only a cache miss reads Redis, in a thread."""
    state = getattr(request.app.state, "vantage", None)
    if state is None:
        raise DependencyUnavailable("the service is starting; retry shortly")
    if not state.settings.auth.enabled:
        return None
    token = creds.credentials.strip() if creds is not None else ""
    if not token:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    auth: Authenticator = state.auth
    answered, key = auth.known(token)
    if not answered:
        try:
            key = await run_in_threadpool(auth.key_for, token)
        except redis.RedisError as e:
            raise DependencyUnavailable("cannot verify the API key right now; retry") from e
    if key is None:
        raise Unauthorized("invalid or revoked API key")
    return key


async def _within_rate(request: Request, key: ApiKey) -> None:
    """The key's rate limit: from this process's lease (in memory) while it lasts, else one
    token-bucket call to Redis, in a thread."""
    request.state.api_key = key
    auth: Authenticator = request.app.state.vantage.auth
    if not auth.spend_lease(key.key_id):
        await run_in_threadpool(auth.check_rate, key)


def require(scope: str) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency: a valid key with `scope` (or admin), within its rate limit.

    Async, like every dependency of the hot routes: a sync dependency costs each request a
    hop to the thread pool and back (about 0.1 ms of CPU under load on this machine)."""
    if scope not in SCOPES:
        raise ValueError(scope)

    async def check(
        request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> None:
        key = await _authenticate(request, creds)
        if key is None:
            return
        if not key.allows(scope):
            raise Forbidden(
                f"this key ({key.name or key.key_id}) lacks the '{scope}' scope; "
                f"it has: {', '.join(key.scopes)}"
            )
        await _within_rate(request, key)

    return check


async def any_key(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> ApiKey | None:
    """A FastAPI dependency: any valid key, whatever its scopes (within its rate limit); the
    key, or None while auth is off."""
    key = await _authenticate(request, creds)
    if key is not None:
        await _within_rate(request, key)
    return key
