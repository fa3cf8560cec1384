"""What each kind of filter clause costs (`filter=` on recommendations, core/expr.py).

    python bench/filters.py [--rows 20000] [--repeats 5] [--seed 7]

On a fresh Milvus Lite server filled with `--rows` synthetic items (bench/search_batch.py's
catalogue: 64 topics, categories, tags, creators, maturity, languages), one 384-d search of
100 hits with serving's base filter (active, maturity) is timed alone and with one clause of
each kind ANDed in (the median of `--repeats`), and the same clause's Python predicate is
timed per row (what the read path pays to re-check candidates in process). Prints one JSON
object: per kind, the clause, ms per search and its ratio to the base search, µs per row in
Python, and the share of rows it lets through.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search_batch import Catalogue, Queries, _fill, lite_server
from core.connect import connect_milvus, prepare_collections
from core.expr import parse
from core.filters import Filter
from core.stores.items import SERVING_FIELDS, ItemStore

CLAUSES = {
    "string =": 'category = "topic-3"',
    "string in": 'language in ["fr", "de"]',
    "string !=": 'creator != "c5"',
    "number range": "published_at >= 1500000000 and published_at < 1650000000",
    "number in": "maturity in [0, 7]",
    "list has": 'tags has "tag-7"',
    "list has any": 'categories has any ["topic-1", "topic-2", "topic-3", "facet-4"]',
    "list has all": 'tags has all ["tag-7", "tag-3"]',
    "not": 'not categories has "facet-0"',
    "or of two": 'category = "topic-3" or tags has "tag-7"',
    "attribute =": 'attr.brand = "b7"',
    "attribute range": "attr.price >= 100 and attr.price < 250",
    "attribute boolean": "attr.in_stock = true",
    "attribute in": 'attr.brand in ["b1", "b2", "b3"]',
    "attribute has": 'attr.colours has "col-3"',
    "not attribute": 'not attr.brand = "b7"',
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    out: dict[str, Any] = {"bench": "filters", "rows": args.rows}
    with lite_server() as settings:
        client = connect_milvus(settings)
        store = ItemStore(client, prepare_collections(settings, client))
        cat = Catalogue(args.rows, settings.models.text_dim, settings.models.cf_dim, args.seed)
        out["fill"] = _fill(store, cat)
        queries = Queries(cat, "content_vec", args.seed)
        rows = [
            {k: v for k, v in cat.item(i).model_dump().items() if k in SERVING_FIELDS}
            | {"category": cat.item(i).categories[0]}
            for i in range(min(args.rows, 5000))
        ]

        def search_ms(extra: str | None) -> float:
            where = Filter().eq("status", "active").le("maturity", 18)
            if extra:
                node = parse(extra)
                where.where(f"({node.milvus})", node.check)
            times = []
            for _ in range(args.repeats):
                q = queries.draw(1)
                t = time.perf_counter()
                store.search(q, field="content_vec", filter=where, limit=100)
                times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times)

        search_ms(None)  # warm-up
        base = search_ms(None)
        out["base_search_ms"] = round(base, 2)
        kinds = {}
        for kind, text in CLAUSES.items():
            node = parse(text)
            ms = search_ms(text)
            t = time.perf_counter()
            passed = sum(node.check(r) for r in rows)
            per_row_us = (time.perf_counter() - t) / len(rows) * 1e6
            kinds[kind] = {
                "clause": text,
                "search_ms": round(ms, 2),
                "vs_base": round(ms / base, 2),
                "python_us_per_row": round(per_row_us, 2),
                "passes": round(passed / len(rows), 3),
            }
            print(kind, kinds[kind], file=sys.stderr)
        out["kinds"] = kinds
        client.close()
    out["numpy"] = np.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
