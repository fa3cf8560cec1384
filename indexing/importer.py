"""Bulk import of a data set (generic format or MovieLens) through the same apply functions
the worker uses, with progress bars. Records that fail validation are skipped and reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from tqdm import tqdm

from indexing.apply import (
    Stores,
    apply_interactions,
    apply_item_upserts,
    apply_user_updates,
    refresh_profiles,
)
from indexing.datasets import load_dataset
from indexing.events import INTERACTION_LOGGED
from indexing.models import Interaction, Item, User

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass
class ImportReport:
    dataset: str
    items: int = 0
    users: int = 0
    interactions: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"} | {
            "first_errors": self.errors[:5]
        }


def _chunks(it: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(it)
    while chunk := list(islice(it, n)):
        yield chunk


def _validated(model: type[M], records: Sequence[dict[str, Any]], report: ImportReport) -> list[M]:
    out: list[M] = []
    for rec in records:
        try:
            out.append(model.model_validate(rec))
        except ValidationError as e:
            report.skipped += 1
            if len(report.errors) < 20:
                first = e.errors()[0]
                report.errors.append(
                    f"{model.__name__} {rec.get('item_id') or rec.get('user_id')}: "
                    f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
                )
    return out


def import_dataset(
    stores: Stores,
    path: str | Path,
    *,
    item_batch: int = 256,
    event_batch: int = 5000,
    progress: bool = True,
    limit_items: int | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Load items, users and interactions from `path` into Milvus and Redis."""
    ds = load_dataset(Path(path))
    report = ImportReport(dataset=ds.name)
    started = time.perf_counter()
    n_items = ds.n_items if limit_items is None else min(ds.n_items, limit_items)
    with tqdm(total=n_items, unit="item", desc="items", disable=not progress) as bar:
        for chunk in _chunks(islice(ds.iter_items(), limit_items), item_batch):
            items = _validated(Item, chunk, report)
            apply_item_upserts(stores, items)
            report.items += len(items)
            bar.update(len(chunk))
            if on_progress:
                on_progress("items", report.items)
    for chunk in _chunks(ds.iter_users(), 1000):
        users = _validated(User, chunk, report)
        apply_user_updates(stores, users)
        report.users += len(users)
    touched: set[str] = set()
    with tqdm(
        total=ds.n_interactions, unit="event", desc="interactions", disable=not progress
    ) as bar:
        for chunk in _chunks(ds.iter_interactions(), event_batch):
            events = _validated(Interaction, chunk, report)
            # No stream ids: a bulk import applies each record once by construction.
            apply_interactions(stores, [(None, e) for e in events], refresh=False)
            if stores.log is not None:
                # Deterministic ids: importing the same file twice logs nothing new.
                stores.log.append(
                    {
                        "id": f"import:{ds.name}:{report.interactions + n}",
                        "type": INTERACTION_LOGGED,
                        "data": e.model_dump(mode="json"),
                    }
                    for n, e in enumerate(events)
                )
            touched.update(e.user_id for e in events)
            report.interactions += len(events)
            bar.update(len(chunk))
    users_sorted = sorted(touched)
    with tqdm(total=len(users_sorted), unit="user", desc="profiles", disable=not progress) as bar:
        for chunk in _chunks(users_sorted, 200):
            refresh_profiles(stores, chunk)
            bar.update(len(chunk))
    report.seconds = round(time.perf_counter() - started, 2)
    if report.skipped:
        log.warning("skipped %d invalid records, e.g. %s", report.skipped, report.errors[:3])
    return report
