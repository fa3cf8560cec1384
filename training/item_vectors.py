"""Training's write of every item's `cf_vec`: its iALS factor, or for a cold item (no
interactions) its content vector projected by a ridge map learned on the trained ones.

Where Milvus merges partial upserts (Milvus 2.6.2+, Milvus Lite 3) only that field is written
(`ItemStore.set_vectors`): nothing is read back but the content vectors of the cold items an
edit touched while training ran, and no metadata is ever written back. Before 2.6.2 (the
default image of compose.yaml is 2.5.10) whole rows are re-read and rewritten, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from core.stores.items import ITEM_ROW_FIELDS
from embeddings.matrix import InteractionMatrix
from embeddings.projection import ContentProjection
from indexing.apply import Stores
from indexing.reindex import redis_ms

BATCH = 1000


@dataclass
class WrittenVectors:
    """What `write_item_vectors` wrote: items given their factor, items given a projection."""

    projection: ContentProjection | None
    trained: int = 0
    projected: int = 0


def write_item_vectors(
    stores: Stores,
    matrix: InteractionMatrix,
    item_factors: npt.NDArray[np.float32],
    *,
    projection_alpha: float,
    progress: bool,
) -> WrittenVectors:
    """Give every item of the catalogue its new cf_vec; an item deleted meanwhile is skipped."""
    # Writes stamped since then may have landed after the scan read their item (a write is
    # stamped when claimed, and lands within its lease).
    since_ms = redis_ms(stores.redis) - stores.item_lease_ms
    content: dict[str, list[float]] = {}
    for batch in stores.items.iter_rows(("content_vec",)):
        content.update((r["item_id"], r["content_vec"]) for r in batch)
    trained = [i for i in content if i in matrix.item_index]
    out = WrittenVectors(None)
    if trained:
        out.projection = ContentProjection().fit(
            np.asarray([content[i] for i in trained], dtype=np.float32),
            item_factors[[matrix.item_index[i] for i in trained]],
            alpha=projection_alpha,
        )
    partial = stores.items.partial_updates
    ids = list(content)
    with tqdm(total=len(ids), unit="item", desc="cf vectors", disable=not progress) as bar:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            vectors = {
                i: item_factors[matrix.item_index[i]] for i in chunk if i in matrix.item_index
            }
            cold = [i for i in chunk if i not in vectors]
            if cold and out.projection is not None:
                vectors.update(_projected(stores, out.projection, cold, content, since_ms))
            if partial:
                written = stores.items.set_vectors(vectors, "cf_vec")
            else:
                written = _rewrite_rows(stores, vectors)
            n_trained = sum(1 for i in written if i in matrix.item_index)
            out.trained += n_trained
            out.projected += len(written) - n_trained
            bar.update(len(chunk))
    return out


def _projected(
    stores: Stores,
    projection: ContentProjection,
    ids: list[str],
    content: Mapping[str, list[float]],
    since_ms: int,
) -> dict[str, npt.NDArray[np.float32]]:
    """Cold items' cf vectors, projected from their current content vectors: an item the change
    log says was written since `since_ms` is read again (an edit changes its text, so its
    vector), and left out if deleted meanwhile; the others keep the scan's vector."""
    stamps = stores.redis.zmscore(stores.keys.item_changes, ids)
    changed = [i for i, ms in zip(ids, stamps, strict=True) if ms is not None and ms >= since_ms]
    fresh = stores.items.get(changed, ("content_vec",), strong=True) if changed else {}
    current = {i: fresh[i]["content_vec"] if i in fresh else content[i] for i in ids}
    for i in set(changed) - set(fresh):
        del current[i]
    if not current:
        return {}
    projected = projection.project(np.asarray(list(current.values()), dtype=np.float32))
    return dict(zip(current, projected, strict=True))


def _rewrite_rows(stores: Stores, vectors: Mapping[str, npt.NDArray[np.float32]]) -> list[str]:
    """Without partial updates: the items' whole current rows, with the new cf_vec."""
    rows = _fresh_rows(stores, list(vectors))
    for r in rows:
        r["cf_vec"] = np.asarray(vectors[r["item_id"]], dtype=np.float32).tolist()
    stores.items.upsert(rows)
    return [r["item_id"] for r in rows]


def _fresh_rows(stores: Stores, ids: list[str], attempts: int = 5) -> list[dict[str, Any]]:
    """Current rows of these items, read strongly; rows an item write touched during the read
    (per the change log) are read again, so training never writes back outdated metadata."""
    r, k = stores.redis, stores.keys
    rows: dict[str, dict[str, Any]] = {}
    todo = list(ids)
    for _ in range(attempts):
        t0 = redis_ms(r)
        for i in todo:  # a row deleted meanwhile must not be written back
            rows.pop(i, None)
        rows.update(stores.items.get(todo, ITEM_ROW_FIELDS, strong=True))
        stamps = r.zmscore(k.item_changes, todo) if todo else []
        todo = [i for i, ms in zip(todo, stamps, strict=True) if ms is not None and ms >= t0]
        if not todo:
            break
    return [rows[i] for i in ids if i in rows and i not in todo]
