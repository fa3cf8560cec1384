"""Deterministic synthetic catalogue ("demo") with readable, topic-specific text.

The text is built from per-category vocabularies so that content similarity is visible even
with a bag-of-words model: two cooking items share far more words than a cooking item and a
football item. Users favour one or two categories, which gives collaborative signals too.
Everything derives from one ``random.Random(seed)``, so the same arguments give the same output.
The vocabularies, languages, regions and event mixes are data, in ``demo.toml`` beside this
module, read once at import.
"""

from __future__ import annotations

import bisect
import csv
import json
import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]
Weighted = tuple[tuple[str, float], ...]

VOCABULARY_FILE = Path(__file__).with_name("demo.toml")

# 2025-01-01T00:00:00Z. A constant, not time.time(), so the default output never changes.
DEFAULT_NOW = 1_735_689_600
DAY = 86_400
CATALOGUE_SPAN = 730 * DAY  # items are published over the two years before `now`

HIDDEN_SHARE = 0.02
CROSS_CATEGORY_SHARE = 0.10
FAVOURITE_SHARE = 0.80
MINOR_SHARE = 0.12
ITEMS_PER_CREATOR = 8

# "{adj} {bare}" reads "endangered Amazon rainforest", not "endangered the Amazon rainforest".
_ARTICLE = re.compile(r"^(?:a|an|the) ", re.IGNORECASE)
_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) ([aeiouAEIOU])")
_SMALL_WORDS = frozenset({"a", "an", "the", "of", "and", "in", "on", "to", "with", "for", "by"})


@dataclass(frozen=True)
class Topic:
    """Vocabulary and policy defaults for one demo category."""

    name: str
    subjects: tuple[str, ...]
    adjectives: tuple[str, ...]
    extras: tuple[str, ...]
    formats: tuple[str, ...]
    titles: tuple[str, ...]
    sentences: tuple[str, ...]
    tags: tuple[str, ...]
    maturity: tuple[int, ...] = (0, 0, 7, 12)

    @classmethod
    def of(cls, table: Mapping[str, Any]) -> Topic:
        """A topic from one ``[[topics]]`` table of demo.toml."""
        words = ("subjects", "adjectives", "extras", "formats", "titles", "sentences", "tags")
        lists = {key: tuple(str(word) for word in table[key]) for key in words}
        maturity = tuple(int(age) for age in table.get("maturity", cls.maturity))
        return cls(name=str(table["name"]), maturity=maturity, **lists)


def _weights(table: Mapping[str, Any]) -> Weighted:
    """A TOML table of name = weight, in file order (the order the draws depend on)."""
    return tuple((str(name), weight) for name, weight in table.items())


_VOCABULARY = tomllib.loads(VOCABULARY_FILE.read_text(encoding="utf-8"))

TOPICS: tuple[Topic, ...] = tuple(Topic.of(table) for table in _VOCABULARY["topics"])
CATEGORIES: tuple[str, ...] = tuple(t.name for t in TOPICS)

# (type, weight); negative feedback (skip, dislike) only on items outside the favourites.
_FAVOURITE_EVENTS: Weighted = _weights(_VOCABULARY["events"]["favourite"])
_OTHER_EVENTS: Weighted = _weights(_VOCABULARY["events"]["other"])

# (language, share) for items and users; region restrictions per item language, where an
# empty regions list means "available everywhere".
_ITEM_LANGUAGES: Weighted = _weights(_VOCABULARY["languages"])
_LANGUAGE_NAMES: dict[str, str] = dict(_VOCABULARY["language_names"])
_RESTRICTIONS: dict[str, tuple[list[str], ...]] = {
    language: tuple(list(regions) for regions in choices)
    for language, choices in _VOCABULARY["restrictions"].items()
}
_RESTRICTED_SHARE: dict[str, float] = dict(_VOCABULARY["restricted_share"])
_USER_REGIONS: dict[str, Weighted] = {
    language: _weights(regions) for language, regions in _VOCABULARY["user_regions"].items()
}


# --------------------------------------------------------------------------- public API


def generate_demo(
    seed: int = 7, n_items: int = 600, n_users: int = 200, now: int = DEFAULT_NOW
) -> tuple[list[Record], list[Record], list[Record]]:
    """Return deterministic synthetic (items, users, interactions) in the canonical shapes."""
    if n_items < 1 or n_users < 0:
        raise ValueError("n_items must be >= 1 and n_users >= 0")
    rng = random.Random(seed)
    items = _generate_items(rng, n_items, now)
    users = [_generate_user(rng, i, now) for i in range(1, n_users + 1)]
    interactions = _generate_interactions(rng, items, users, now)
    return items, users, interactions


def write_demo(dir: Path, **kw: Any) -> Path:
    """Write ``generate_demo(**kw)`` in the generic format into ``dir`` and return it."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    items, users, interactions = generate_demo(**kw)
    _write_jsonl(out / "items.jsonl", items)
    _write_jsonl(out / "users.jsonl", users)
    _write_interactions(out / "interactions.csv", interactions)
    return out


# --------------------------------------------------------------------------- items


def _title_case(text: str) -> str:
    """Capitalise words except short joiners; str.title() would mangle "chef's" -> "Chef'S"."""
    out: list[str] = []
    for word in text.split(" "):
        # A joiner stays lowercase unless it starts the title or follows a colon.
        keep = bool(out) and not out[-1].endswith(":") and word.lower() in _SMALL_WORDS
        out.append(word if keep or not word else word[0].upper() + word[1:])
    return " ".join(out)


def fill_template(template: str, topic: Topic, rng: random.Random, subject: str, adj: str) -> str:
    """Fill one title/sentence template with words from ``topic``."""
    extra, extra2 = rng.sample(topic.extras, 2)
    text = template.format(
        subject=subject,
        bare=_ARTICLE.sub("", subject),
        adj=adj,
        extra=extra,
        extra2=extra2,
        fmt=rng.choice(topic.formats),
    )
    return _A_BEFORE_VOWEL.sub(r"\1n \2", text)


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def _unique_title(rng: random.Random, topic: Topic, used: set[str]) -> tuple[str, str, str]:
    """Pick (title, subject, adjective) whose title is not in ``used`` yet."""
    for _ in range(50):
        subject, adj = rng.choice(topic.subjects), rng.choice(topic.adjectives)
        title = _title_case(fill_template(rng.choice(topic.titles), topic, rng, subject, adj))
        if title not in used:
            return title, subject, adj
    # Vocabulary exhausted (only for very large n_items): number the sequel instead.
    n = 2
    while f"{title} {n}" in used:
        n += 1
    return f"{title} {n}", subject, adj


def _description(
    rng: random.Random, topic: Topic, subject: str, adj: str, other: Topic | None
) -> str:
    """One or two sentences from ``topic``; cross-category items borrow a clause from ``other``."""
    first, second = rng.sample(topic.sentences, 2)
    parts = [fill_template(first, topic, rng, subject, adj)]
    if other is not None:
        o_subject, o_extra = rng.choice(other.subjects), rng.choice(other.extras)
        parts.append(f"It also explores {o_subject} and {o_extra}.")
    elif rng.random() < 0.5:
        parts.append(fill_template(second, topic, rng, subject, adj))
    return " ".join(_sentence_case(p) for p in parts)


def _weighted(rng: random.Random, options: Weighted) -> str:
    names = [name for name, _ in options]
    return rng.choices(names, weights=[weight for _, weight in options])[0]


def _item_locale(rng: random.Random) -> tuple[str, list[str]]:
    """Pick (language, regions) for an item: mostly English and unrestricted."""
    language = _weighted(rng, _ITEM_LANGUAGES)
    regions: list[str] = []
    if rng.random() < _RESTRICTED_SHARE[language]:
        regions = list(rng.choice(_RESTRICTIONS[language]))
    return language, regions


def _creator_pools(n_items: int) -> dict[str, list[str]]:
    """Category -> creator ids; each creator publishes in one category (about 8 items each)."""
    n_creators = max(len(TOPICS), round(n_items / ITEMS_PER_CREATOR))
    pools: dict[str, list[str]] = {t.name: [] for t in TOPICS}
    for i in range(n_creators):
        pools[TOPICS[i % len(TOPICS)].name].append(f"creator-{i + 1:03d}")
    return pools


def _generate_items(rng: random.Random, n_items: int, now: int) -> list[Record]:
    """Build ``n_items`` items spread evenly over the categories."""
    primaries = [TOPICS[i % len(TOPICS)] for i in range(n_items)]
    rng.shuffle(primaries)
    pools = _creator_pools(n_items)
    hidden = set(rng.sample(range(n_items), round(n_items * HIDDEN_SHARE)))
    used: set[str] = set()
    items = []
    for index, topic in enumerate(primaries):
        item = _generate_item(rng, index, topic, pools[topic.name], used, now)
        item["status"] = "hidden" if index in hidden else "active"
        items.append(item)
    return items


def _generate_item(
    rng: random.Random, index: int, topic: Topic, creators: list[str], used: set[str], now: int
) -> Record:
    """Build one ITEM of ``topic`` (status is set by the caller)."""
    other: Topic | None = None
    if rng.random() < CROSS_CATEGORY_SHARE:
        other = rng.choice([t for t in TOPICS if t is not topic])
    title, subject, adj = _unique_title(rng, topic, used)
    used.add(title)
    language, regions = _item_locale(rng)
    description = _description(rng, topic, subject, adj, other)
    if language in _LANGUAGE_NAMES:
        description += f" Presented in {_LANGUAGE_NAMES[language]}."
    tags = rng.sample(topic.tags, rng.randint(2, 3))
    if other is not None:
        tags.append(rng.choice(other.tags))
    # Earlier creators in a pool publish more, like real channels (a skewed distribution).
    weights = [1.0 / (rank + 1) for rank in range(len(creators))]
    return {
        "item_id": f"demo-{index + 1:04d}",
        "title": title,
        "description": description,
        "categories": [topic.name] + ([other.name] if other else []),
        "tags": list(dict.fromkeys(tags)),
        "language": language,
        "regions": regions,
        "maturity": rng.choice(topic.maturity),
        "published_at": now - rng.randint(0, CATALOGUE_SPAN),
        "status": "active",
        "creator_id": rng.choices(creators, weights=weights)[0],
    }


# --------------------------------------------------------------------------- users


def _generate_user(rng: random.Random, index: int, now: int) -> Record:
    """Build one USER with 1-2 favourite categories; minors never favour horror."""
    year = datetime.fromtimestamp(now, tz=UTC).year
    minor = rng.random() < MINOR_SHARE
    age = rng.randint(10, 17) if minor else rng.randint(18, 70)
    choices = [c for c in CATEGORIES if not (minor and c == "horror")]
    favourites = rng.sample(choices, rng.choice((1, 2)))
    language = _weighted(rng, _ITEM_LANGUAGES)
    return {
        "user_id": f"u-{index:04d}",
        "language": language,
        "region": _weighted(rng, _USER_REGIONS[language]),
        "birth_year": year - age,
        "preferences": {"categories": favourites},
    }


# --------------------------------------------------------------------------- interactions


@dataclass
class _Pool:
    """Items sorted by publication time, so "published before t" is a bisect."""

    items: list[Record]
    times: list[int]

    @classmethod
    def of(cls, items: list[Record]) -> _Pool:
        ordered = sorted(items, key=lambda it: (it["published_at"], it["item_id"]))
        return cls(ordered, [it["published_at"] for it in ordered])

    def pick(self, rng: random.Random, before: float) -> Record | None:
        available = bisect.bisect_right(self.times, before)
        return self.items[rng.randrange(available)] if available else None


def _eligible(item: Record, user: Record, age: int) -> bool:
    """Would the policy layer ever show ``item`` to ``user``?"""
    regions = item["regions"]
    return (
        item["status"] == "active"
        and item["maturity"] <= age
        and (not regions or user["region"] in regions)
    )


def _event_value(rng: random.Random, kind: str, favourite: bool) -> float | None:
    """Rating for "rate" (1-5), completion ratio for "watch" (0-1), else None."""
    if kind == "rate":
        return float(rng.choice((3, 4, 4, 5, 5)) if favourite else rng.choice((1, 2, 3)))
    if kind == "watch":
        low, high = (0.5, 1.0) if favourite else (0.05, 0.6)
        return round(rng.uniform(low, high), 2)
    return None


def _user_timestamps(rng: random.Random, count: int, now: int) -> list[float]:
    """Strictly increasing whole-second timestamps within the user's active period."""
    start = now - rng.randint(60 * DAY, 540 * DAY)
    offsets = sorted(rng.sample(range(now - start), count))
    return [float(start + offset) for offset in offsets]


def _user_interactions(
    rng: random.Random, user: Record, items: list[Record], now: int
) -> list[Record]:
    """25-60 events, ~80% on favourite-category items, never before an item was published."""
    age = datetime.fromtimestamp(now, tz=UTC).year - user["birth_year"]
    favourites = set(user["preferences"]["categories"])
    eligible = [it for it in items if _eligible(it, user, age)]
    liked = _Pool.of([it for it in eligible if favourites & set(it["categories"])])
    others = _Pool.of([it for it in eligible if not favourites & set(it["categories"])])
    events = []
    for ts in _user_timestamps(rng, rng.randint(25, 60), now):
        favourite = rng.random() < FAVOURITE_SHARE
        item = (liked if favourite else others).pick(rng, ts)
        if item is None:  # nothing published yet in that pool; fall back to the other one
            favourite = not favourite
            item = (liked if favourite else others).pick(rng, ts)
        if item is None:
            continue
        kind = _weighted(rng, _FAVOURITE_EVENTS if favourite else _OTHER_EVENTS)
        events.append(
            {
                "user_id": user["user_id"],
                "item_id": item["item_id"],
                "type": kind,
                "value": _event_value(rng, kind, favourite),
                "timestamp": ts,
            }
        )
    return events


def _generate_interactions(
    rng: random.Random, items: list[Record], users: list[Record], now: int
) -> list[Record]:
    """All users' events merged into one log ordered by time."""
    events = [ev for user in users for ev in _user_interactions(rng, user, items, now)]
    events.sort(key=lambda ev: (ev["timestamp"], ev["user_id"]))
    return events


# --------------------------------------------------------------------------- writing


def _write_jsonl(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_interactions(path: Path, interactions: list[Record]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "type", "value", "timestamp"])
        for ev in interactions:
            value = "" if ev["value"] is None else repr(ev["value"])
            writer.writerow([ev["user_id"], ev["item_id"], ev["type"], value, int(ev["timestamp"])])
