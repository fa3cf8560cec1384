"""MovieLens 100K: ``u.item`` (latin-1, '|'), ``u.data`` (tab), optional ``u.user``, ``u.genre``."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from pathlib import Path

from indexing.datasets.files import count_lines, text_lines
from indexing.datasets.records import Record, as_id, interaction, line_error, movie

# The 19 genre flags of u.item, in u.genre order; used when u.genre is absent.
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# ml-100k ages are relative to the collection period (Sept 1997 - April 1998).
ML100K_REFERENCE_YEAR = 1998
_FIXED_FIELDS = 5  # id, title, release date, video release date, IMDb URL

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}


def parse_release_date(text: str) -> int:
    """Parse "01-Jan-1995" into unix seconds (0 when missing); locale-independent."""
    text = text.strip()
    if not text:
        return 0
    parts = text.split("-")
    if len(parts) != 3 or parts[1].lower() not in _MONTHS:
        raise ValueError(f"invalid release date {text!r} (expected e.g. 01-Jan-1995)")
    day, month, year = int(parts[0]), _MONTHS[parts[1].lower()], int(parts[2])
    return calendar.timegm((year, month, day, 0, 0, 0))


def ml100k_item(fields: list[str], genres: tuple[str, ...]) -> Record:
    """Convert one split u.item line into an ITEM."""
    expected = _FIXED_FIELDS + len(genres)
    if len(fields) != expected:
        raise ValueError(f"expected {expected} '|'-separated fields, got {len(fields)}")
    flags = fields[_FIXED_FIELDS:]
    if any(flag not in ("0", "1") for flag in flags):
        raise ValueError("genre flags must be 0 or 1")
    picked = [g.lower() for g, flag in zip(genres, flags, strict=True) if flag == "1"]
    categories = [g for g in picked if g != "unknown"]
    item_id = as_id(fields[0], "movie id")
    return movie(item_id, fields[1].strip(), categories, [], parse_release_date(fields[2]))


class ML100KSource:
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
        for lineno, line in text_lines(self.genre_path):
            name, sep, index = line.strip().rpartition("|")
            if not sep or not index.isdigit():
                raise line_error(self.genre_path, lineno, "expected 'genre|index'")
            pairs.append((int(index), name))
        return tuple(name for _, name in sorted(pairs))

    def iter_items(self) -> Iterator[Record]:
        genres = self._genres()
        for lineno, line in text_lines(self.items_path):
            try:
                yield ml100k_item(line.rstrip("\r\n").split("|"), genres)
            except ValueError as exc:
                raise line_error(self.items_path, lineno, str(exc)) from None

    def iter_interactions(self) -> Iterator[Record]:
        for lineno, line in text_lines(self.data_path):
            fields = line.split()
            if len(fields) != 4:
                message = f"expected 4 tab-separated fields, got {len(fields)}"
                raise line_error(self.data_path, lineno, message)
            try:
                yield interaction(fields[0], fields[1], "rate", fields[2], fields[3])
            except ValueError as exc:
                raise line_error(self.data_path, lineno, str(exc)) from None

    def iter_users(self) -> Iterator[Record]:
        if not self.users_path.is_file():
            return
        for lineno, line in text_lines(self.users_path):
            fields = line.rstrip("\r\n").split("|")
            if len(fields) != 5 or not fields[1].strip().isdigit():
                raise line_error(self.users_path, lineno, "expected 'id|age|gender|occupation|zip'")
            yield {
                "user_id": fields[0].strip(),
                "language": None,
                "region": None,
                "birth_year": ML100K_REFERENCE_YEAR - int(fields[1]),
                "preferences": {"categories": []},
            }

    def count_items(self) -> int:
        return count_lines(self.items_path)

    def count_interactions(self) -> int:
        return count_lines(self.data_path)
