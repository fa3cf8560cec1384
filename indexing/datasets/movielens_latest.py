"""MovieLens latest(-small): ``movies.csv``, ``ratings.csv`` and optional ``tags.csv``."""

from __future__ import annotations

import calendar
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from indexing.datasets.files import count_lines, csv_rows
from indexing.datasets.records import Record, as_id, dedupe, interaction, line_error, movie

MAX_TAGS_PER_MOVIE = 10
# Accepts "Heat (1995)", trailing blanks and series ranges like "(2006-2007)" (en dash too).
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


def title_year(title: str) -> int:
    """Jan 1 (UTC) of the "(YYYY)" year at the end of a title, else 0."""
    match = _TITLE_YEAR.search(title)
    return calendar.timegm((int(match.group(1)), 1, 1, 0, 0, 0)) if match else 0


def most_frequent(counter: Counter[str], limit: int) -> list[str]:
    """Top ``limit`` keys by count; ties broken alphabetically so output is deterministic."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return [key for key, _ in ranked[:limit]]


class MLLatestSource:
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
        for lineno, row in csv_rows(self.tags_path, ("movieId", "tag")):
            # Collapse whitespace so "Dark  Comedy" and "dark comedy" count as one tag.
            # Labels are at most 64 chars in Vantage; a few MovieLens tags are sentences.
            tag = " ".join(row["tag"].lower().split())[:64].rstrip()
            movie_id = row["movieId"].strip()
            if not movie_id:
                raise line_error(self.tags_path, lineno, "movieId must not be empty")
            if tag:
                counts[movie_id][tag] += 1
        return {
            movie_id: most_frequent(counter, MAX_TAGS_PER_MOVIE)
            for movie_id, counter in counts.items()
        }

    def iter_items(self) -> Iterator[Record]:
        top_tags = self._top_tags()
        for lineno, row in csv_rows(self.movies_path, ("movieId", "title", "genres")):
            try:
                item_id = as_id(row["movieId"], "movieId")
            except ValueError as exc:
                raise line_error(self.movies_path, lineno, str(exc)) from None
            title = row["title"].strip()
            genres = [g.strip().lower() for g in row["genres"].split("|")]
            categories = dedupe([g for g in genres if g and g != "(no genres listed)"])
            tags = top_tags.get(item_id, [])
            yield movie(item_id, title, categories, tags, title_year(title))

    def iter_interactions(self) -> Iterator[Record]:
        columns = ("userId", "movieId", "rating", "timestamp")
        for lineno, row in csv_rows(self.ratings_path, columns):
            try:
                yield interaction(
                    row["userId"], row["movieId"], "rate", row["rating"], row["timestamp"]
                )
            except ValueError as exc:
                raise line_error(self.ratings_path, lineno, str(exc)) from None

    def iter_users(self) -> Iterator[Record]:
        return iter(())

    def count_items(self) -> int:
        return count_lines(self.movies_path, header=True)

    def count_interactions(self) -> int:
        return count_lines(self.ratings_path, header=True)
