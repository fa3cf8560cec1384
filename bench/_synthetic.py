"""Synthetic catalogues with realistic structure for bench/scale.py, at any size.

* **Topics.** A topic is one of the demo's categories (indexing/demo.toml) narrowed to a facet: a
  disjoint slice of that category's subjects (12 categories x 4 facets = 48 topics by default).
  An item belongs to one topic, or two (`second_topic_share`); its title and description are
  composed from its topics' vocabularies, so the text model embeds items of a topic near each
  other, and items of one category nearer than items of two.
* **Popularity skew.** Each item gets a Zipf weight `(rank + 1) ** -zipf` over a random ranking;
  interactions pick items by that weight (within a topic or over the catalogue).
* **Users** favour 1-3 topics (80% of their events), with an activity that is log-normal around
  `events_per_user` (a few heavy users, many light ones); 8% are minors, who never touch items
  above their age.
* **Timestamps**: items are published over the two years before `now`; a user's events fall in
  their active window and never before the item was published. `interactions()` is time-ordered.

Everything derives from `seed` (item text from `(seed, item index)`), so one seed gives the same
catalogue; items, users and events draw from separate streams. Records stream out, so a million
items are never held as dicts. `SyntheticEmbedder` stands in for the text model when a benchmark
writes synthetic vectors (topic centroids plus noise, unit norm) instead of running the model.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from embeddings.text import compose_item_text
from indexing.demo import TOPICS, Topic, fill_template

Record = dict[str, Any]

DEFAULT_NOW = 1_735_689_600  # 2025-01-01T00:00:00Z: fixed, so a seed always gives the same data
DAY = 86_400
CATALOGUE_SPAN = 730 * DAY
HIDDEN_SHARE = 0.01
RESTRICTED_SHARE = 0.05  # items available in the US only
MINOR_SHARE = 0.08
PREFERENCES_SHARE = 0.5  # users who stated their favourite categories at sign-up
FAVOURITE_SHARE = 0.8
ITEMS_PER_CREATOR = 25

FAVOURITE_EVENTS = {"view": 40, "click": 25, "watch": 18, "like": 10, "rate": 3, "purchase": 4}
OTHER_EVENTS = {"view": 50, "click": 25, "watch": 5, "skip": 15, "dislike": 5}
REGIONS = {"US": 0.5, "GB": 0.2, "CA": 0.1, "AU": 0.1, "IE": 0.1}


@dataclass(frozen=True)
class FineTopic:
    """A demo category narrowed to a facet of its subjects."""

    index: int
    category: Topic
    subjects: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.category.name}/{self.index % 1000}"


def fine_topics(facets: int) -> tuple[FineTopic, ...]:
    """Every category split into `facets` disjoint slices of its subjects."""
    out: list[FineTopic] = []
    for cat in TOPICS:
        n = min(facets, len(cat.subjects))
        for f in range(n):
            out.append(FineTopic(len(out), cat, cat.subjects[f::n]))
    return tuple(out)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _draw(
    rng: np.random.Generator, cum: npt.NDArray[np.float64], size: int
) -> npt.NDArray[np.int64]:
    """Indices drawn with probabilities proportional to the weights behind `cum`."""
    u = rng.random(size) * cum[-1]
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


@dataclass
class SyntheticCatalogue:
    """A deterministic catalogue: items, users and time-ordered interactions as records."""

    n_items: int
    n_users: int
    seed: int = 42
    events_per_user: float = 20.0
    zipf: float = 1.0
    facets: int = 4
    second_topic_share: float = 0.3
    now: int = DEFAULT_NOW
    topics: tuple[FineTopic, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.n_items < 1 or self.n_users < 0 or self.events_per_user <= 0:
            raise ValueError("n_items >= 1, n_users >= 0 and events_per_user > 0 are required")
        self.topics = fine_topics(self.facets)
        self._items_arrays()
        self._users_arrays()

    # ------------------------------------------------------------------ arrays (cheap, numpy)

    def _rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, stream]))

    def _items_arrays(self) -> None:
        n, k = self.n_items, len(self.topics)
        rng = self._rng(1)
        # Topics differ in size too (a mild skew), as real catalogues' genres do.
        topic_w = 1.0 / np.sqrt(np.arange(1, k + 1))
        topic_w = topic_w[rng.permutation(k)]
        self.topic_weights = topic_w / topic_w.sum()
        self.primary = rng.choice(k, size=n, p=self.topic_weights).astype(np.int32)
        second = rng.choice(k, size=n, p=self.topic_weights).astype(np.int32)
        has_second = (rng.random(n) < self.second_topic_share) & (second != self.primary)
        self.secondary = np.where(has_second, second, -1).astype(np.int32)
        ranks = rng.permutation(n)
        self.popularity = (ranks + 1.0) ** -self.zipf
        self.hidden = rng.random(n) < HIDDEN_SHARE
        self.popularity[self.hidden] = 0.0
        self.published_at = (self.now - rng.integers(DAY, CATALOGUE_SPAN, size=n)).astype(np.int64)
        self.restricted = rng.random(n) < RESTRICTED_SHARE
        maturity = np.zeros(n, dtype=np.int32)
        draws = rng.random(n)
        for t, topic in enumerate(self.topics):
            levels = np.array(topic.category.maturity)
            sel = self.primary == t
            maturity[sel] = levels[(draws[sel] * len(levels)).astype(int)]
        self.maturity = maturity

    def _users_arrays(self) -> None:
        u = self.n_users
        rng = self._rng(2)
        sigma = 1.0
        mu = np.log(self.events_per_user) - sigma**2 / 2
        counts = np.rint(rng.lognormal(mu, sigma, size=u))
        self.activity = np.clip(counts, 2, 100 * self.events_per_user).astype(np.int64)
        self.n_favourites = rng.integers(1, 4, size=u)
        fav = np.stack(
            [rng.choice(len(self.topics), size=u, p=self.topic_weights) for _ in range(3)]
        )
        self.favourites = fav.T.astype(np.int32)  # only the first n_favourites[j] count
        self.minor = rng.random(u) < MINOR_SHARE
        self.age = np.where(self.minor, rng.integers(13, 18, size=u), rng.integers(18, 71, size=u))
        self.states_preferences = rng.random(u) < PREFERENCES_SHARE
        regions = list(REGIONS)
        self.region = rng.choice(len(regions), size=u, p=list(REGIONS.values()))

    # ------------------------------------------------------------------ ids and weights

    @staticmethod
    def item_id(i: int) -> str:
        return f"s{i:07d}"

    @staticmethod
    def user_id(j: int) -> str:
        return f"u{j:07d}"

    def item_topics(self, i: int) -> list[int]:
        s = int(self.secondary[i])
        return [int(self.primary[i])] + ([s] if s >= 0 else [])

    def user_favourites(self, j: int) -> list[int]:
        return list(dict.fromkeys(int(t) for t in self.favourites[j, : self.n_favourites[j]]))

    @cached_property
    def active_items(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(~self.hidden)

    # ------------------------------------------------------------------ items

    def item(self, i: int) -> Record:
        """Item `i` (deterministic: its text is drawn from `(seed, i)` alone)."""
        rng = random.Random(self.seed * 10_000_019 + i)
        topic = self.topics[int(self.primary[i])]
        s = int(self.secondary[i])
        other = self.topics[s] if s >= 0 else None
        cat = topic.category
        subject, adj = rng.choice(topic.subjects), rng.choice(cat.adjectives)
        title = _cap(fill_template(rng.choice(cat.titles), topic.category, rng, subject, adj))
        first, second = rng.sample(cat.sentences, 2)
        parts = [fill_template(first, topic.category, rng, subject, adj)]
        if other is not None:
            o_subject = rng.choice(other.subjects)
            o_extra = rng.choice(other.category.extras)
            parts.append(f"It also explores {o_subject} and {o_extra}.")
        elif rng.random() < 0.5:
            parts.append(fill_template(second, topic.category, rng, subject, adj))
        tags = rng.sample(cat.tags, rng.randint(2, 3))
        categories = [cat.name]
        if other is not None:
            tags.append(rng.choice(other.category.tags))
            categories.append(other.category.name)
        n_creators = max(1, self.n_items // (ITEMS_PER_CREATOR * len(self.topics)))
        creator = min(int(rng.paretovariate(1.2)) - 1, n_creators - 1)
        return {
            "item_id": self.item_id(i),
            "title": title,
            "description": " ".join(_cap(p) for p in parts),
            "categories": list(dict.fromkeys(categories)),
            "tags": list(dict.fromkeys(tags)),
            "language": "en",
            "regions": ["US"] if self.restricted[i] else [],
            "maturity": int(self.maturity[i]),
            "published_at": int(self.published_at[i]),
            "status": "hidden" if self.hidden[i] else "active",
            "creator_id": f"c-{topic.index}-{creator}",
        }

    def items(self) -> Iterator[Record]:
        for i in range(self.n_items):
            yield self.item(i)

    @staticmethod
    def text(record: Record) -> str:
        """The text the import embeds for an item record (the worker composes it the same way)."""
        return compose_item_text(
            title=record["title"],
            description=record["description"],
            categories=record["categories"],
            tags=record["tags"],
        )

    # ------------------------------------------------------------------ users

    def user(self, j: int) -> Record:
        year = datetime.fromtimestamp(self.now, tz=UTC).year
        cats = [self.topics[t].category.name for t in self.user_favourites(j)]
        prefs = list(dict.fromkeys(cats)) if self.states_preferences[j] else []
        return {
            "user_id": self.user_id(j),
            "language": "en",
            "region": list(REGIONS)[int(self.region[j])],
            "birth_year": year - int(self.age[j]),
            "preferences": {"categories": prefs},
        }

    def users(self) -> Iterator[Record]:
        for j in range(self.n_users):
            yield self.user(j)

    # ------------------------------------------------------------------ interactions

    @cached_property
    def _topic_pools(self) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Per topic: its items and the cumulative popularity over them."""
        pools = []
        for t in range(len(self.topics)):
            idx = np.flatnonzero((self.primary == t) | (self.secondary == t))
            w = self.popularity[idx] if len(idx) else np.zeros(0)
            if not len(idx) or w.sum() == 0:  # an empty topic: fall back to the catalogue
                idx, w = np.arange(self.n_items), self.popularity
            pools.append((idx, np.cumsum(w)))
        return pools

    def event_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Every event as columns (user, item, kind, value, ts), ordered by time."""
        rng = self._rng(3)
        user = np.repeat(np.arange(self.n_users), self.activity)
        n = len(user)
        favourite = rng.random(n) < FAVOURITE_SHARE
        slot = (rng.random(n) * self.n_favourites[user]).astype(np.int64)
        topic = self.favourites[user, slot]
        item = _draw(rng, np.cumsum(self.popularity), n)
        for t, (idx, cum) in enumerate(self._topic_pools):
            sel = np.flatnonzero(favourite & (topic == t))
            if len(sel):
                item[sel] = idx[_draw(rng, cum, len(sel))]
        # Nobody touches what the policy would never show them: minors, region-locked items.
        keep = (self.maturity[item] <= self.age[user]) & (
            ~self.restricted[item] | (self.region[user] == list(REGIONS).index("US"))
        )
        kinds = np.empty(n, dtype=object)
        values = np.full(n, np.nan)
        for mask, table, (lo, hi), (wlo, whi) in (
            (favourite, FAVOURITE_EVENTS, (3, 6), (0.5, 1.0)),
            (~favourite, OTHER_EVENTS, (1, 4), (0.05, 0.6)),
        ):
            names = list(table)
            p = np.array(list(table.values()), dtype=float)
            kinds[mask] = np.array(names, dtype=object)[
                rng.choice(len(names), mask.sum(), p=p / p.sum())
            ]
            rates = mask & (kinds == "rate")
            values[rates] = rng.integers(lo, hi, rates.sum())
            watches = mask & (kinds == "watch")
            values[watches] = np.round(rng.uniform(wlo, whi, watches.sum()), 2)
        start = self.now - rng.integers(30 * DAY, 365 * DAY, size=self.n_users)
        ts = start[user] + rng.random(n) * (self.now - start[user])
        ts = np.floor(np.maximum(ts, self.published_at[item] + 3600))
        order = np.lexsort((user, ts))
        order = order[keep[order]]
        return {
            "user": user[order],
            "item": item[order],
            "kind": kinds[order],
            "value": values[order],
            "ts": ts[order],
        }

    def interactions(self, cols: dict[str, npt.NDArray[Any]] | None = None) -> Iterator[Record]:
        """Every event as a record, ordered by time (`cols`: `event_arrays()` computed before)."""
        cols = self.event_arrays() if cols is None else cols
        for u, i, k, v, t in zip(
            cols["user"], cols["item"], cols["kind"], cols["value"], cols["ts"], strict=True
        ):
            yield {
                "user_id": self.user_id(int(u)),
                "item_id": self.item_id(int(i)),
                "type": k,
                "value": None if np.isnan(v) else float(v),
                "timestamp": float(t),
            }

    # ------------------------------------------------------------------ synthetic vectors

    def centroids(self, dim: int) -> npt.NDArray[np.float32]:
        """One unit vector per topic: its category's direction plus a facet offset."""
        rng = self._rng(4)
        cats = {c.name: n for n, c in enumerate(TOPICS)}
        base = rng.standard_normal((len(TOPICS), dim))
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        off = rng.standard_normal((len(self.topics), dim))
        off /= np.linalg.norm(off, axis=1, keepdims=True)
        c = base[[cats[t.category.name] for t in self.topics]] + 0.8 * off
        return (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class SyntheticEmbedder:
    """A `TextEmbedder` for a synthetic catalogue's texts: its topics' centroids plus noise.

    The vector is a function of the text (the same text always gets the same vector, as with a
    model): the text is looked up among the catalogue's item texts to find its topics, and the
    noise is seeded by the text's hash. A text that is not in the catalogue gets noise alone.
    """

    def __init__(self, catalogue: SyntheticCatalogue, dim: int, noise: float = 0.75):
        self.name = "synthetic-topics"
        self.dim = dim
        self.noise = noise
        self.catalogue = catalogue
        self._centroids = catalogue.centroids(dim)
        hashes = np.fromiter(
            (_text_hash(catalogue.text(rec)) for rec in catalogue.items()),
            dtype=np.uint64,
            count=catalogue.n_items,
        )
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]

    def _index(self, h: int) -> int | None:
        pos = int(np.searchsorted(self._hashes, np.uint64(h)))
        if pos < len(self._hashes) and int(self._hashes[pos]) == h:
            return int(self._order[pos])
        return None

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for n, text in enumerate(texts):
            h = _text_hash(text)
            noise = np.random.default_rng(h).standard_normal(self.dim)
            v = noise * (self.noise / np.sqrt(self.dim))
            i = self._index(h)
            if i is not None:
                topics = self.catalogue.item_topics(i)
                v = v + self._centroids[topics[0]]
                if len(topics) > 1:
                    v = v + 0.5 * self._centroids[topics[1]]
            out[n] = v / np.linalg.norm(v)
        return out
