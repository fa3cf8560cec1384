"""Dataset loaders that turn on-disk catalogues into canonical ITEM / INTERACTION / USER dicts.

Supported layouts (see ``detect_format``):

* ``generic``   - ``items.jsonl`` + optional ``interactions.csv`` + optional ``users.jsonl``
* ``ml-100k``   - MovieLens 100K (``u.item``, ``u.data``, optional ``u.user`` / ``u.genre``)
* ``ml-latest`` - MovieLens latest(-small) (``movies.csv``, ``ratings.csv``, optional ``tags.csv``)

Every loader is lazy: records are produced by generators that re-read the files on each
call, so a catalogue never has to fit in memory twice and a caller can iterate repeatedly.
"""

from __future__ import annotations

import calendar
import csv
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

Record = dict[str, Any]

FORMAT_GENERIC = "generic"
FORMAT_ML_100K = "ml-100k"
FORMAT_ML_LATEST = "ml-latest"

INTERACTION_TYPES: frozenset[str] = frozenset(
    {"view", "click", "watch", "like", "dislike", "skip", "purchase", "rate"}
)
ITEM_STATUSES: frozenset[str] = frozenset({"active", "hidden"})
MAX_MATURITY = 18
MAX_TAGS_PER_MOVIE = 10

# The 19 genre flags of u.item, in u.genre order; used when u.genre is absent.
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# ml-100k ages are relative to the collection period (Sept 1997 - April 1998).
ML100K_REFERENCE_YEAR = 1998
_ML100K_FIXED_FIELDS = 5  # id, title, release date, video release date, IMDb URL

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
# Accepts "Heat (1995)", trailing blanks and series ranges like "(2006-2007)" (en dash too).
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


class DatasetError(ValueError):
    """Raised when a dataset directory is missing files or holds malformed records."""


# --------------------------------------------------------------------------- public API


class DatasetSource(Protocol):
    """Format-specific reader behind a ``Dataset``."""

    def iter_items(self) -> Iterator[Record]: ...
    def iter_interactions(self) -> Iterator[Record]: ...
    def iter_users(self) -> Iterator[Record]: ...
    def count_items(self) -> int: ...
    def count_interactions(self) -> int: ...


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
    sources: dict[str, Callable[[Path], DatasetSource]] = {
        FORMAT_GENERIC: _GenericSource,
        FORMAT_ML_100K: _ML100KSource,
        FORMAT_ML_LATEST: _MLLatestSource,
    }
    return Dataset(
        name=name or root.resolve().name, format=fmt, root=root, source=sources[fmt](root)
    )


def parse_timestamp(raw: str | int | float) -> float:
    """Parse unix seconds or an ISO-8601 string (naive = UTC) into unix seconds."""
    if isinstance(raw, bool):
        raise ValueError(f"invalid timestamp {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = raw.strip()
        try:
            value = float(text)
        except ValueError:
            value = _parse_iso(text)
    if not math.isfinite(value):
        raise ValueError(f"invalid timestamp {raw!r}")
    return value


# --------------------------------------------------------------------------- shared helpers


def _error(path: Path, line: int, message: str) -> DatasetError:
    return DatasetError(f"{path}: line {line}: {message}")


def _parse_iso(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"invalid timestamp {text!r} (expected unix seconds or ISO-8601)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _count_lines(path: Path, header: bool = False) -> int:
    """Count non-blank lines; assumes no embedded newlines, which is fine for progress bars."""
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        total = sum(1 for line in handle if line.strip())
    return max(total - 1, 0) if header else total


def _year_start(year: int) -> int:
    return calendar.timegm((year, 1, 1, 0, 0, 0))


def _read_csv_header(reader: Any, path: Path, required: tuple[str, ...]) -> dict[str, int]:
    """Map column name -> index, failing loudly when a required column is missing."""
    header = next(reader, None)
    if header is None:
        raise _error(path, 1, "empty file, expected a header row")
    columns = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(header)}
    missing = [c for c in required if c not in columns]
    if missing:
        raise _error(path, 1, f"header is missing column(s) {', '.join(missing)}; got {header}")
    return columns


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row-as-dict) for a headed UTF-8 CSV, skipping blank rows."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        columns = _read_csv_header(reader, path, required)
        width = len(columns)
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != width:
                raise _error(path, reader.line_num, f"expected {width} fields, got {len(row)}")
            yield reader.line_num, {name: row[i] for name, i in columns.items()}


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file."""
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _error(path, lineno, f"invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise _error(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


# --------------------------------------------------------------------------- field coercion
# Coercers raise ValueError; callers re-raise as DatasetError with file and line.


def _as_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise ValueError(f"{field} must be a non-empty string or integer, got {value!r}")
    return str(value).strip()


def _as_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, got {value!r}")
    return value


def _as_str_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field} must be a list of strings, got {value!r}")
    return [v.strip() for v in value if v.strip()]


def _as_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{field} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{field} must be an integer, got {value!r}")


def _as_optional_int(value: Any, field: str) -> int | None:
    return None if value is None or value == "" else _as_int(value, field)


def _as_optional_str(value: Any, field: str) -> str | None:
    return None if value is None or value == "" else _as_str(value, field).strip()


def _dedupe(values: list[str]) -> list[str]:
    # Order matters (first category is the primary one), so no set().
    return list(dict.fromkeys(values))


# --------------------------------------------------------------------------- generic format


def _generic_item(obj: dict[str, Any]) -> Record:
    """Validate one items.jsonl object and fill the documented defaults."""
    for key in ("item_id", "title"):
        if key not in obj:
            raise ValueError(f"missing required field {key!r}")
    maturity = _as_int(obj.get("maturity", 0), "maturity")
    if not 0 <= maturity <= MAX_MATURITY:
        raise ValueError(f"maturity must be within 0..{MAX_MATURITY}, got {maturity}")
    status = _as_str(obj.get("status", "active"), "status").strip().lower()
    if status not in ITEM_STATUSES:
        raise ValueError(f"status must be one of {sorted(ITEM_STATUSES)}, got {status!r}")
    published = obj.get("published_at", 0)
    return {
        "item_id": _as_id(obj["item_id"], "item_id"),
        "title": _as_str(obj["title"], "title").strip(),
        "description": _as_str(obj.get("description", ""), "description").strip(),
        "categories": _dedupe(
            [c.lower() for c in _as_str_list(obj.get("categories", []), "categories")]
        ),
        "tags": _dedupe([t.lower() for t in _as_str_list(obj.get("tags", []), "tags")]),
        "language": (_as_str(obj.get("language") or "und", "language").strip().lower() or "und"),
        "regions": _dedupe([r.upper() for r in _as_str_list(obj.get("regions", []), "regions")]),
        "maturity": maturity,
        "published_at": 0 if published in (None, "") else int(parse_timestamp(published)),
        "status": status,
        "creator_id": str(obj.get("creator_id") or "").strip(),
    }


def _generic_user(obj: dict[str, Any]) -> Record:
    """Validate one users.jsonl object."""
    if "user_id" not in obj:
        raise ValueError("missing required field 'user_id'")
    prefs = obj.get("preferences") or {}
    if not isinstance(prefs, dict):
        raise ValueError(f"preferences must be an object, got {prefs!r}")
    language = _as_optional_str(obj.get("language"), "language")
    region = _as_optional_str(obj.get("region"), "region")
    categories = _as_str_list(prefs.get("categories", []), "preferences.categories")
    return {
        "user_id": _as_id(obj["user_id"], "user_id"),
        "language": language.lower() if language else None,
        "region": region.upper() if region else None,
        "birth_year": _as_optional_int(obj.get("birth_year"), "birth_year"),
        "preferences": {"categories": _dedupe([c.lower() for c in categories])},
    }


def _interaction(user_id: str, item_id: str, kind: str, value: str, timestamp: str) -> Record:
    """Build an INTERACTION from raw CSV cells."""
    kind = kind.strip().lower()
    if kind not in INTERACTION_TYPES:
        raise ValueError(f"type must be one of {sorted(INTERACTION_TYPES)}, got {kind!r}")
    parsed_value: float | None = None
    if value.strip():
        try:
            parsed_value = float(value)
        except ValueError:
            raise ValueError(f"value must be a number or empty, got {value!r}") from None
        if not math.isfinite(parsed_value):
            raise ValueError(f"value must be finite, got {value!r}")
    return {
        "user_id": _as_id(user_id, "user_id"),
        "item_id": _as_id(item_id, "item_id"),
        "type": kind,
        "value": parsed_value,
        "timestamp": parse_timestamp(timestamp),
    }


class _GenericSource:
    """items.jsonl + interactions.csv + users.jsonl (the last two optional)."""

    INTERACTION_COLUMNS = ("user_id", "item_id", "type", "timestamp")

    def __init__(self, root: Path) -> None:
        self.items_path = root / "items.jsonl"
        self.interactions_path = root / "interactions.csv"
        self.users_path = root / "users.jsonl"

    def iter_items(self) -> Iterator[Record]:
        seen: set[str] = set()
        for lineno, obj in _jsonl_objects(self.items_path):
            try:
                item = _generic_item(obj)
            except ValueError as exc:
                raise _error(self.items_path, lineno, str(exc)) from None
            if item["item_id"] in seen:
                raise _error(self.items_path, lineno, f"duplicate item_id {item['item_id']!r}")
            seen.add(item["item_id"])
            yield item

    def iter_interactions(self) -> Iterator[Record]:
        if not self.interactions_path.is_file():
            return
        for lineno, row in _csv_rows(self.interactions_path, self.INTERACTION_COLUMNS):
            try:
                yield _interaction(
                    row["user_id"],
                    row["item_id"],
                    row["type"],
                    row.get("value", ""),
                    row["timestamp"],
                )
            except ValueError as exc:
                raise _error(self.interactions_path, lineno, str(exc)) from None

    def iter_users(self) -> Iterator[Record]:
        if not self.users_path.is_file():
            return
        for lineno, obj in _jsonl_objects(self.users_path):
            try:
                yield _generic_user(obj)
            except ValueError as exc:
                raise _error(self.users_path, lineno, str(exc)) from None

    def count_items(self) -> int:
        return _count_lines(self.items_path)

    def count_interactions(self) -> int:
        return _count_lines(self.interactions_path, header=True)


# --------------------------------------------------------------------------- MovieLens 100K


def _parse_release_date(text: str) -> int:
    """Parse "01-Jan-1995" into unix seconds (0 when missing); locale-independent."""
    text = text.strip()
    if not text:
        return 0
    parts = text.split("-")
    if len(parts) != 3 or parts[1].lower() not in _MONTHS:
        raise ValueError(f"invalid release date {text!r} (expected e.g. 01-Jan-1995)")
    day, month, year = int(parts[0]), _MONTHS[parts[1].lower()], int(parts[2])
    return calendar.timegm((year, month, day, 0, 0, 0))


def _ml100k_item(fields: list[str], genres: tuple[str, ...]) -> Record:
    """Convert one split u.item line into an ITEM."""
    expected = _ML100K_FIXED_FIELDS + len(genres)
    if len(fields) != expected:
        raise ValueError(f"expected {expected} '|'-separated fields, got {len(fields)}")
    flags = fields[_ML100K_FIXED_FIELDS:]
    if any(flag not in ("0", "1") for flag in flags):
        raise ValueError("genre flags must be 0 or 1")
    picked = [g.lower() for g, flag in zip(genres, flags, strict=True) if flag == "1"]
    categories = [g for g in picked if g != "unknown"]
    title = fields[1].strip()
    return {
        "item_id": _as_id(fields[0], "movie id"),
        "title": title,
        # MovieLens has no descriptions; title, genres and tags are embedded from their own fields.
        "description": "",
        "categories": categories,
        "tags": [],
        "language": "und",
        "regions": [],
        "maturity": 0,
        "published_at": _parse_release_date(fields[2]),
        "status": "active",
        "creator_id": "",
    }


class _ML100KSource:
    """MovieLens 100K: u.item (latin-1, '|'), u.data (tab), optional u.user and u.genre."""

    def __init__(self, root: Path) -> None:
        self.items_path = root / "u.item"
        self.data_path = root / "u.data"
        self.users_path = root / "u.user"
        self.genre_path = root / "u.genre"

    def _genres(self) -> tuple[str, ...]:
        if not self.genre_path.is_file():
            return ML100K_GENRES
        # u.genre is "name|index"; order by index rather than trusting line order.
        pairs: list[tuple[int, str]] = []
        with self.genre_path.open(encoding="latin-1") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                name, sep, index = line.strip().rpartition("|")
                if not sep or not index.isdigit():
                    raise _error(self.genre_path, lineno, "expected 'genre|index'")
                pairs.append((int(index), name))
        return tuple(name for _, name in sorted(pairs))

    def iter_items(self) -> Iterator[Record]:
        genres = self._genres()
        with self.items_path.open(encoding="latin-1") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield _ml100k_item(line.rstrip("\r\n").split("|"), genres)
                except ValueError as exc:
                    raise _error(self.items_path, lineno, str(exc)) from None

    def iter_interactions(self) -> Iterator[Record]:
        with self.data_path.open(encoding="latin-1") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 4:
                    raise _error(
                        self.data_path,
                        lineno,
                        f"expected 4 tab-separated fields, got {len(fields)}",
                    )
                try:
                    yield _interaction(fields[0], fields[1], "rate", fields[2], fields[3])
                except ValueError as exc:
                    raise _error(self.data_path, lineno, str(exc)) from None

    def iter_users(self) -> Iterator[Record]:
        if not self.users_path.is_file():
            return
        with self.users_path.open(encoding="latin-1") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                fields = line.rstrip("\r\n").split("|")
                if len(fields) != 5 or not fields[1].strip().isdigit():
                    raise _error(self.users_path, lineno, "expected 'id|age|gender|occupation|zip'")
                yield {
                    "user_id": fields[0].strip(),
                    "language": None,
                    "region": None,
                    "birth_year": ML100K_REFERENCE_YEAR - int(fields[1]),
                    "preferences": {"categories": []},
                }

    def count_items(self) -> int:
        return _count_lines(self.items_path)

    def count_interactions(self) -> int:
        return _count_lines(self.data_path)


# --------------------------------------------------------------------------- MovieLens latest


def _title_year(title: str) -> int:
    """Jan 1 (UTC) of the "(YYYY)" year at the end of a title, else 0."""
    match = _TITLE_YEAR.search(title)
    return _year_start(int(match.group(1))) if match else 0


def _most_frequent(counter: Counter[str], limit: int) -> list[str]:
    """Top ``limit`` keys by count; ties broken alphabetically so output is deterministic."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return [key for key, _ in ranked[:limit]]


class _MLLatestSource:
    """MovieLens latest(-small): movies.csv, ratings.csv and optional tags.csv."""

    def __init__(self, root: Path) -> None:
        self.movies_path = root / "movies.csv"
        self.ratings_path = root / "ratings.csv"
        self.tags_path = root / "tags.csv"

    def _top_tags(self) -> dict[str, list[str]]:
        """movieId -> up to 10 most frequent lowercase tags (ties broken alphabetically)."""
        counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        if not self.tags_path.is_file():
            return {}
        for lineno, row in _csv_rows(self.tags_path, ("movieId", "tag")):
            # Collapse whitespace so "Dark  Comedy" and "dark comedy" count as one tag.
            # Labels are at most 64 chars in Vantage; a few MovieLens tags are sentences.
            tag = " ".join(row["tag"].lower().split())[:64].rstrip()
            movie = row["movieId"].strip()
            if not movie:
                raise _error(self.tags_path, lineno, "movieId must not be empty")
            if tag:
                counts[movie][tag] += 1
        return {
            movie: _most_frequent(counter, MAX_TAGS_PER_MOVIE) for movie, counter in counts.items()
        }

    def iter_items(self) -> Iterator[Record]:
        top_tags = self._top_tags()
        for lineno, row in _csv_rows(self.movies_path, ("movieId", "title", "genres")):
            try:
                item_id = _as_id(row["movieId"], "movieId")
            except ValueError as exc:
                raise _error(self.movies_path, lineno, str(exc)) from None
            title = row["title"].strip()
            genres = [g.strip().lower() for g in row["genres"].split("|")]
            categories = _dedupe([g for g in genres if g and g != "(no genres listed)"])
            tags = top_tags.get(item_id, [])
            yield {
                "item_id": item_id,
                "title": title,
                "description": "",
                "categories": categories,
                "tags": tags,
                "language": "und",
                "regions": [],
                "maturity": 0,
                "published_at": _title_year(title),
                "status": "active",
                "creator_id": "",
            }

    def iter_interactions(self) -> Iterator[Record]:
        columns = ("userId", "movieId", "rating", "timestamp")
        for lineno, row in _csv_rows(self.ratings_path, columns):
            try:
                yield _interaction(
                    row["userId"], row["movieId"], "rate", row["rating"], row["timestamp"]
                )
            except ValueError as exc:
                raise _error(self.ratings_path, lineno, str(exc)) from None

    def iter_users(self) -> Iterator[Record]:
        return iter(())

    def count_items(self) -> int:
        return _count_lines(self.movies_path, header=True)

    def count_interactions(self) -> int:
        return _count_lines(self.ratings_path, header=True)
