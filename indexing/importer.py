"""Bulk import of a data set (generic format or MovieLens) through the same apply functions
the worker uses, with progress bars. Records that fail validation are skipped and reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from tqdm import tqdm

from core.domain import Item, User, UserInteraction
from core.events import INTERACTION_LOGGED
from indexing.apply import (
    Stores,
    apply_interactions,
    apply_item_upserts,
    apply_user_updates,
    refresh_profiles,
)
from indexing.datasets import load_dataset

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


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


def _chunks(records: Iterable[T], n: int) -> Iterator[list[T]]:
    it = iter(records)
    while chunk := list(islice(it, n)):
        yield chunk


def _validated(
    model: type[M], records: Sequence[Mapping[str, Any]], report: ImportReport
) -> list[M]:
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
    progress: bool = True,
    limit_items: int | None = None,
) -> ImportReport:
    """Load items, users and interactions from the data set at `path`."""
    ds = load_dataset(Path(path))
    n_items = ds.n_items if limit_items is None else min(ds.n_items, limit_items)
    return import_records(
        stores,
        name=ds.name,
        items=islice(ds.iter_items(), limit_items),
        users=ds.iter_users(),
        interactions=ds.iter_interactions(),
        n_items=n_items,
        n_interactions=ds.n_interactions,
        progress=progress,
    )


def import_records(
    stores: Stores,
    *,
    name: str,
    items: Iterable[Mapping[str, Any]],
    users: Iterable[Mapping[str, Any]] = (),
    interactions: Iterable[Mapping[str, Any]] = (),
    n_items: int | None = None,
    n_interactions: int | None = None,
    item_batch: int = 256,
    event_batch: int = 5000,
    progress: bool = True,
) -> ImportReport:
    """Validate and apply records through the worker's apply functions, with progress bars."""
    report = ImportReport(dataset=name)
    started = time.perf_counter()
    with tqdm(total=n_items, unit="item", desc="items", disable=not progress) as bar:
        for chunk in _chunks(items, item_batch):
            valid_items = _validated(Item, chunk, report)
            apply_item_upserts(stores, valid_items)
            report.items += len(valid_items)
            bar.update(len(chunk))
    for chunk in _chunks(users, 1000):
        valid_users = _validated(User, chunk, report)
        apply_user_updates(stores, valid_users)
        report.users += len(valid_users)
    touched: set[str] = set()
    with tqdm(total=n_interactions, unit="event", desc="interactions", disable=not progress) as bar:
        for chunk in _chunks(interactions, event_batch):
            events = [e.internal() for e in _validated(UserInteraction, chunk, report)]
            # No stream ids: a bulk import applies each record once by construction.
            apply_interactions(stores, [(None, e) for e in events], refresh=False)
            if stores.log is not None:
                # Deterministic ids: importing the same file twice logs nothing new.
                stores.log.append(
                    {
                        "id": f"import:{name}:{report.interactions + n}",
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
        for user_ids in _chunks(users_sorted, 200):
            refresh_profiles(stores, user_ids)
            bar.update(len(user_ids))
    stores.sync_users_if_due(force=True)
    stores.flush_if_due(force=True)
    report.seconds = round(time.perf_counter() - started, 2)
    if report.skipped:
        log.warning("skipped %d invalid records, e.g. %s", report.skipped, report.errors[:3])
    return report
