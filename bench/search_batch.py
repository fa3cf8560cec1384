"""Queries/s of one batched Milvus search against its batch size (`candidates.search_batch`).
Prints one JSON object; each batch size's result also goes to stderr as soon as measured.

The candidate-set refresher (core/candidate_sets.py) searches the queries of many users that
share a filter in one `ItemStore.search` call. On Milvus Lite a call pays a fixed share (Python
passes over every row: dedup by primary key, tombstones, the scalar filter) and a share per
query (the ANN search, one row materialised per hit, the hits' transfer). On a fresh Milvus
Lite server, the items collection is created by `prepare_collections` (the real schema and
AUTOINDEX indexes) and filled through `ItemStore.upsert` with `item_row` rows (what the
importer writes): `--rows` clustered unit-norm content vectors, cf vectors of the configured
dim, catalogue-like scalars (2% hidden, maturity 0-18, a few languages, region locks); then
flushed, so searches run on sealed, indexed segments. For each output-field mode and batch
size: one warm-up call, then `--repeats` timed calls with fresh query vectors (topic centroid
plus noise, as profiles are), `--limit` hits each, and the refresher's own filter
(`candidate_sets._filter`: active, maturity <= `--max-maturity`[, `--language`]).

Modes: `pk` asks for item_id, as the refresher does; `refresher` asks for no output fields, as
the refresher first did: Milvus Lite 3.2 reads that as "every field" and returns both vectors and
all scalars of every hit (2.6x slower, and over gRPC's 256 MB past ~98 long queries a call).
Reported per batch: median seconds per call, queries/s, ms per query; per mode `best_batch`,
`knee_batch` (smallest batch within 90% of the best queries/s) and a least-squares fit
`s_per_call = fixed + per_query * batch`; `recall` of one call against exact numpy search.

    python bench/search_batch.py [--rows 100000] [--batches 1,8,16,32,64,128,256,512]
        [--limit 300] [--repeats 3] [--no-filter] [--max-maturity 12] [--language en]
        [--field content_vec|cf_vec] [--modes pk,refresher] [--dim 384] [--seed 7]
        [--uri http://milvus:19530]

`--uri` measures on a Milvus server instead of a fresh Milvus Lite: the script creates its own
uniquely named collections there and drops them when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.candidate_sets import _filter as refresher_filter
from core.connect import connect_milvus, prepare_collections
from core.domain import Item
from core.filters import Filter
from core.settings import MilvusSettings, Settings
from core.stores.item_rows import item_row
from core.stores.items import ItemStore
from vantage.stack import start_milvus_lite

Stats = dict[str, Any]
Vecs = npt.NDArray[np.float32]

TOPICS = 64
HIDDEN_SHARE = 0.02
MATURITY = (0, 0, 0, 7, 12, 12, 16, 18)
LANGUAGES = ("en",) * 17 + ("fr", "de", "und")
ITEM_NOISE = 0.8  # noise norm around an item's topic centroid (cosine to it ~0.78)
QUERY_NOISE = 0.6
WRITE_BATCH = 1000
RECALL_QUERIES = 8
KNEE_SHARE = 0.9
# Output fields per call: the refresher asks for none (ids and scores on Milvus standalone;
# Milvus Lite 3.2 reads [] as every field, vectors included); `pk` asks for item_id only.
MODES: dict[str, tuple[str, ...]] = {"refresher": (), "pk": ("item_id",)}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batches", default="1,8,16,32,64,128,256,512", help="comma-separated")
    ap.add_argument("--limit", type=int, default=300, help="hits per query (candidates.per_source)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per batch size")
    ap.add_argument("--filter", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--max-maturity", type=int, default=12, help="the filter's maturity ceiling")
    ap.add_argument("--language", default=None, help="add the filter's language family clause")
    ap.add_argument("--field", default="content_vec", choices=["content_vec", "cf_vec"])
    ap.add_argument("--dim", type=int, default=384, help="content vector dimension")
    ap.add_argument("--modes", default="pk,refresher", help="output-field modes, see MODES")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--uri", default=None, help="a Milvus server (default: a fresh Milvus Lite)")
    args = ap.parse_args()
    args.batch_sizes = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    if not args.batch_sizes or min(args.batch_sizes) < 1 or args.rows < 1 or args.repeats < 1:
        ap.error("--rows, --repeats and every batch size must be >= 1")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or not set(args.modes) <= set(MODES):
        ap.error(f"--modes takes some of {', '.join(MODES)}")
    return args


# --------------------------------------------------------------------------- data


def _unit(x: npt.NDArray[np.float64]) -> Vecs:
    unit: Vecs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _near(
    rng: np.random.Generator, centroids: Vecs, topics: npt.NDArray[np.int64], noise: float
) -> Vecs:
    """Unit vectors around the centroids of `topics` (noise of norm ~`noise`)."""
    dim = centroids.shape[1]
    return _unit(centroids[topics] + rng.normal(0, noise / np.sqrt(dim), (len(topics), dim)))


class Catalogue:
    """Deterministic synthetic items: clustered vectors and realistic scalar fields."""

    def __init__(self, rows: int, dim: int, cf_dim: int, seed: int):
        self.rows, self.dim, self.cf_dim = rows, dim, cf_dim
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
        self.centroids = _unit(rng.normal(size=(TOPICS, dim)))
        self.cf_centroids = _unit(rng.normal(size=(TOPICS, cf_dim)))
        self.topic = rng.integers(TOPICS, size=rows)
        self.content = _near(rng, self.centroids, self.topic, ITEM_NOISE)
        self.maturity = rng.choice(np.array(MATURITY), size=rows)
        self.hidden = rng.random(rows) < HIDDEN_SHARE
        self.language = rng.choice(np.array(LANGUAGES), size=rows)
        self.locked = rng.random(rows) < 0.1
        self.published = 1_700_000_000 - rng.integers(0, 10 * 365 * 86_400, size=rows)
        self._cf_rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))

    def item(self, i: int) -> Item:
        t = int(self.topic[i])
        return Item(
            item_id=f"s{i:07d}",
            title=f"Synthetic item {i} about topic {t}",
            description=f"A generated catalogue entry in topic {t}, number {i}. " * 3,
            categories=[f"topic-{t}", f"facet-{t % 8}"],
            tags=[f"tag-{(i * 7) % 50}", f"tag-{t}"],
            language=str(self.language[i]),
            regions=["US"] if self.locked[i] else [],
            maturity=int(self.maturity[i]),
            status="hidden" if self.hidden[i] else "active",
            published_at=int(self.published[i]),
            creator_id=f"c{i % 997}",
            attributes={
                "brand": f"b{i % 40}",
                "price": float(i % 500),
                "in_stock": i % 3 != 0,
                "colours": [f"col-{i % 12}", f"col-{(i * 5) % 12}"],
            },
        )

    def row_batches(self) -> Iterator[list[dict[str, Any]]]:
        """`item_row` rows, `WRITE_BATCH` at a time."""
        for k in range(0, self.rows, WRITE_BATCH):
            ids = range(k, min(k + WRITE_BATCH, self.rows))
            cf = _near(self._cf_rng, self.cf_centroids, self.topic[k : ids.stop], ITEM_NOISE)
            yield [item_row(self.item(i), self.content[i], cf[i - k]) for i in ids]

    def allowed(self, args: argparse.Namespace) -> npt.NDArray[np.bool_]:
        """Rows the filter lets through (the language clause is not mirrored here)."""
        if not args.filter:
            return np.ones(self.rows, dtype=bool)
        ok: npt.NDArray[np.bool_] = ~self.hidden & (self.maturity <= args.max_maturity)
        return ok


# --------------------------------------------------------------------------- stack


@contextlib.contextmanager
def lite_server(uri: str | None = None) -> Iterator[Settings]:
    """A Milvus Lite server in a temp dir (or the server at `uri`); stopped and its files
    removed on any exit (on a server: this run's collections dropped)."""
    tmp = Path(tempfile.mkdtemp(prefix="vantage-bench-batch-"))
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally
    server = None
    tag = "b" + uuid.uuid4().hex[:8]
    try:
        if uri is None:
            server = start_milvus_lite(tmp / "milvus.db")
        milvus = MilvusSettings(
            uri=uri or server.url,
            items_alias=f"{tag}_items",
            users_collection=f"{tag}_users",
            timeout_s=600.0,
        )
        yield Settings(milvus=milvus, data_dir=tmp)
    finally:
        if server is not None:
            server.stop()
        elif uri is not None:
            _drop_tagged(uri, tag)
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(tmp, ignore_errors=True)


def _drop_tagged(uri: str, tag: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    for name in client.list_collections():
        if name.startswith(tag):
            for alias in client.list_aliases(collection_name=name).get("aliases", []):
                client.drop_alias(alias)
            client.drop_collection(name)
    client.close()


def _fill(store: ItemStore, cat: Catalogue) -> Stats:
    t = time.perf_counter()
    for rows in cat.row_batches():
        store.upsert(rows)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    store.flush()
    flush_s = time.perf_counter() - t
    count = store.count()
    if count != cat.rows:
        raise RuntimeError(f"{count} rows in Milvus, {cat.rows} written")
    return {
        "write_s": round(write_s, 1),
        "rows_per_s": round(cat.rows / write_s),
        "flush_s": round(flush_s, 1),
    }


# --------------------------------------------------------------------------- measure


def _search(
    store: ItemStore,
    queries: Vecs,
    args: argparse.Namespace,
    where: Filter | None,
    fields: tuple[str, ...] = ("item_id",),
) -> tuple[float, list[list[str]]]:
    t = time.perf_counter()
    hits = store.search(
        queries, field=args.field, filter=where, limit=args.limit, output_fields=fields
    )
    return time.perf_counter() - t, [[h.item_id for h in row] for row in hits]


class Queries:
    """Fresh query vectors for every call, like a batch of users' profiles."""

    def __init__(self, cat: Catalogue, field: str, seed: int):
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        self.centroids = cat.centroids if field == "content_vec" else cat.cf_centroids

    def draw(self, n: int) -> Vecs:
        return _near(self.rng, self.centroids, self.rng.integers(TOPICS, size=n), QUERY_NOISE)


def _measure(
    store: ItemStore,
    queries: Queries,
    batch: int,
    args: argparse.Namespace,
    where: Filter | None,
    fields: tuple[str, ...],
) -> Stats:
    first_s, _ = _search(store, queries.draw(batch), args, where, fields)  # warm-up, not counted
    times: list[float] = []
    hits: list[int] = []
    for _ in range(args.repeats):
        dt, rows = _search(store, queries.draw(batch), args, where, fields)
        times.append(dt)
        hits.extend(len(r) for r in rows)
    med = statistics.median(times)
    return {
        "batch": batch,
        "s_per_call": round(med, 4),
        "s_per_call_min": round(min(times), 4),
        "warmup_s": round(first_s, 4),
        "queries_per_s": round(batch / med, 1),
        "ms_per_query": round(1000 * med / batch, 3),
        "hits_per_query": round(statistics.fmean(hits), 1),
    }


def _mode(
    store: ItemStore,
    queries: Queries,
    args: argparse.Namespace,
    where: Filter | None,
    fields: tuple[str, ...],
) -> Stats:
    """Every batch size with these output fields; a batch that fails (e.g. a response over
    gRPC's 256 MB) is reported, and the larger ones are skipped."""
    results: list[Stats] = []
    failed: Stats | None = None
    for batch in args.batch_sizes:
        if failed is not None:
            r: Stats = {"batch": batch, "skipped": f"batch {failed['batch']} failed"}
        else:
            try:
                r = _measure(store, queries, batch, args, where, fields)
            except Exception as e:  # a failed size must not lose the sizes measured before it
                r = failed = {"batch": batch, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps({"output_fields": list(fields), **r}), file=sys.stderr, flush=True)
        results.append(r)
    ok = [r for r in results if "queries_per_s" in r]
    return {"output_fields": list(fields), "batches": results, **(_summary(ok) if ok else {})}


def _recall(
    store: ItemStore,
    cat: Catalogue,
    queries: Queries,
    args: argparse.Namespace,
    where: Filter | None,
) -> Stats:
    """Mean overlap of one call's hits with the exact filtered top `--limit` (numpy)."""
    if args.field != "content_vec" or args.language:
        return {"skipped": "exact search mirrors content_vec without a language clause only"}
    q = queries.draw(RECALL_QUERIES)
    _, got = _search(store, q, args, where)
    allowed = np.flatnonzero(cat.allowed(args))
    scores = q @ cat.content[allowed].T
    k = min(args.limit, len(allowed))
    overlap = []
    for row, s in zip(got, scores, strict=True):
        top = allowed[np.argpartition(-s, k - 1)[:k]]
        overlap.append(len({f"s{i:07d}" for i in top} & set(row)) / k)
    return {"queries": RECALL_QUERIES, "recall_at_limit": round(statistics.fmean(overlap), 4)}


def _summary(results: list[Stats]) -> Stats:
    """Best batch, the knee (smallest batch within 90% of the best) and a linear fit."""
    best = max(results, key=lambda r: r["queries_per_s"])
    knee = min(
        (r for r in results if r["queries_per_s"] >= KNEE_SHARE * best["queries_per_s"]),
        key=lambda r: r["batch"],
    )
    out: Stats = {
        "best_batch": best["batch"],
        "best_queries_per_s": best["queries_per_s"],
        "knee_batch": knee["batch"],
        "knee_queries_per_s": knee["queries_per_s"],
        "knee_rule": f"smallest batch with >= {KNEE_SHARE:.0%} of the best queries/s",
    }
    if len(results) >= 2:
        b = np.array([r["batch"] for r in results], dtype=float)
        s = np.array([r["s_per_call"] for r in results])
        per_query, fixed = np.polyfit(b, s, 1)
        out["fit"] = {
            "model": "s_per_call = fixed + per_query * batch (least squares over batch sizes)",
            "fixed_ms_per_call": round(1000 * float(fixed), 2),
            "ms_per_query": round(1000 * float(per_query), 3),
        }
    return out


def _environment() -> Stats:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    faiss = importlib.util.find_spec("faiss") is not None
    return {
        "python": platform.python_version(),
        "pymilvus": version("pymilvus"),
        "milvus_lite": version("milvus-lite"),
        "numpy": version("numpy"),
        "faiss_cpu": version("faiss-cpu") if faiss else None,
        "lite_autoindex": "HNSW (faiss)" if faiss else "brute force (numpy)",
        "nproc": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    args = _args()
    out: Stats = {"bench": "search_batch", "rows": args.rows, "dim": args.dim}
    where = refresher_filter(args.max_maturity, args.language) if args.filter else None
    with lite_server(args.uri) as base:
        settings = base.model_copy(
            update={"models": base.models.model_copy(update={"text_dim": args.dim})}
        )
        cf_dim = settings.models.cf_dim
        out.update(
            cf_dim=cf_dim,
            field=args.field,
            limit=args.limit,
            repeats=args.repeats,
            filter=str(where) if where else None,
            seed=args.seed,
            **_environment(),
        )
        client = connect_milvus(settings)
        store = ItemStore(client, prepare_collections(settings, client))
        t = time.perf_counter()
        cat = Catalogue(args.rows, args.dim, cf_dim, args.seed)
        out["generate_s"] = round(time.perf_counter() - t, 1)
        out["fill"] = _fill(store, cat)
        out["filter_pass_share"] = round(float(cat.allowed(args).mean()), 4)
        index = client.describe_index(store.collection, args.field) or {}
        out["index_type"] = index.get("index_type")
        queries = Queries(cat, args.field, args.seed)
        out["modes"] = {m: _mode(store, queries, args, where, MODES[m]) for m in args.modes}
        out["recall"] = _recall(store, cat, queries, args, where)
        client.close()
    out["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
