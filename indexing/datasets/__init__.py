"""Dataset loaders that turn on-disk catalogues into canonical ITEM / INTERACTION / USER dicts.

Supported layouts (see ``detect_format``), one module each:

* ``generic``   - ``items.jsonl`` + optional ``interactions.csv`` + optional ``users.jsonl``
  (``generic.py``)
* ``ml-100k``   - MovieLens 100K (``u.item``, ``u.data``, optional ``u.user`` / ``u.genre``)
  (``movielens_100k.py``)
* ``ml-latest`` - MovieLens latest(-small) (``movies.csv``, ``ratings.csv``, optional
  ``tags.csv``) (``movielens_latest.py``)

They share the field coercers (``records.py``) and the CSV / JSON-lines readers (``files.py``).
Every loader is lazy: records are produced by generators that re-read the files on each
call, so a catalogue never has to fit in memory twice and a caller can iterate repeatedly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from indexing.datasets.generic import GenericSource
from indexing.datasets.movielens_100k import ML100K_GENRES, ML100K_REFERENCE_YEAR, ML100KSource
from indexing.datasets.movielens_latest import MAX_TAGS_PER_MOVIE, MLLatestSource
from indexing.datasets.records import (
    INTERACTION_TYPES,
    ITEM_STATUSES,
    MAX_MATURITY,
    DatasetError,
    Record,
    parse_timestamp,
)

__all__ = [
    "FORMAT_GENERIC",
    "FORMAT_ML_100K",
    "FORMAT_ML_LATEST",
    "INTERACTION_TYPES",
    "ITEM_STATUSES",
    "MAX_MATURITY",
    "MAX_TAGS_PER_MOVIE",
    "ML100K_GENRES",
    "ML100K_REFERENCE_YEAR",
    "Dataset",
    "DatasetError",
    "DatasetSource",
    "Record",
    "detect_format",
    "load_dataset",
    "parse_timestamp",
]

FORMAT_GENERIC = "generic"
FORMAT_ML_100K = "ml-100k"
FORMAT_ML_LATEST = "ml-latest"


class DatasetSource(Protocol):
    """Format-specific reader behind a ``Dataset``."""

    def iter_items(self) -> Iterator[Record]: ...
    def iter_interactions(self) -> Iterator[Record]: ...
    def iter_users(self) -> Iterator[Record]: ...
    def count_items(self) -> int: ...
    def count_interactions(self) -> int: ...


_SOURCES: dict[str, Callable[[Path], DatasetSource]] = {
    FORMAT_GENERIC: GenericSource,
    FORMAT_ML_100K: ML100KSource,
    FORMAT_ML_LATEST: MLLatestSource,
}


@dataclass(frozen=True)
class Dataset:
    """A lazily readable catalogue: items, interactions and (possibly no) users."""

    name: str
    format: str
    root: Path
    source: DatasetSource

    def iter_items(self) -> Iterator[Record]:
        """Yield canonical ITEM dicts, re-reading the files on every call."""
        return self.source.iter_items()

    def iter_interactions(self) -> Iterator[Record]:
        """Yield canonical INTERACTION dicts in file order."""
        return self.source.iter_interactions()

    def iter_users(self) -> Iterator[Record]:
        """Yield canonical USER dicts; empty when the format has no user file."""
        return self.source.iter_users()

    def count_items(self) -> int:
        """Cheap item count (line count) for progress bars."""
        return self.source.count_items()

    def count_interactions(self) -> int:
        """Cheap interaction count (line count) for progress bars."""
        return self.source.count_interactions()

    @cached_property
    def n_items(self) -> int:
        """Cached ``count_items()``."""
        return self.count_items()

    @cached_property
    def n_interactions(self) -> int:
        """Cached ``count_interactions()``."""
        return self.count_interactions()


def detect_format(path: Path) -> str:
    """Return "generic", "ml-100k" or "ml-latest" for a dataset directory."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"dataset path {path} is not a directory")
    if (path / "items.jsonl").is_file():
        return FORMAT_GENERIC
    if (path / "u.item").is_file() and (path / "u.data").is_file():
        return FORMAT_ML_100K
    if (path / "movies.csv").is_file() and (path / "ratings.csv").is_file():
        return FORMAT_ML_LATEST
    raise DatasetError(
        f"cannot detect dataset format of {path}: expected items.jsonl (generic), "
        "u.item + u.data (MovieLens 100K) or movies.csv + ratings.csv (MovieLens latest)"
    )


def load_dataset(path: str | Path, name: str | None = None) -> Dataset:
    """Open the dataset directory at ``path`` (format auto-detected); nothing is read yet."""
    root = Path(path).expanduser()
    fmt = detect_format(root)
    return Dataset(
        name=name or root.resolve().name, format=fmt, root=root, source=_SOURCES[fmt](root)
    )
