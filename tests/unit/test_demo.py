"""Unit tests for indexing.demo: determinism, realism constraints and the generic round trip."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import pytest

from indexing.datasets import load_dataset
from indexing.demo import CATEGORIES, DEFAULT_NOW, VOCABULARY_FILE, generate_demo, write_demo

Record = dict[str, Any]
TWO_YEARS = 730 * 86_400
# Grammar words and the language note say nothing about the topic.
STOP_WORDS = frozenset({
    "a", "an", "the", "and", "of", "in", "on", "to", "with", "for", "from", "by", "its", "it",
    "as", "at", "this", "that", "how", "is", "are", "your", "one", "also", "explores",
    "presented", "spanish", "french",
})  # fmt: skip


@pytest.fixture(scope="module")
def demo() -> tuple[list[Record], list[Record], list[Record]]:
    return generate_demo()


def age_of(user: Record) -> int:
    """Age at the default reference time (the generator uses calendar-year ages)."""
    return datetime.fromtimestamp(DEFAULT_NOW, tz=UTC).year - user["birth_year"]


# --------------------------------------------------------------------------- determinism & shape


def test_generate_demo_is_deterministic() -> None:
    assert generate_demo(seed=3, n_items=120, n_users=20) == generate_demo(
        seed=3, n_items=120, n_users=20
    )
    assert generate_demo(seed=3, n_items=120, n_users=20) != generate_demo(
        seed=4, n_items=120, n_users=20
    )


def test_sizes_and_ids(demo: tuple[list[Record], list[Record], list[Record]]) -> None:
    items, users, _ = demo
    assert len(items) == 600 and len(users) == 200
    assert [i["item_id"] for i in items][:2] == ["demo-0001", "demo-0002"]
    assert all(re.fullmatch(r"demo-\d{4}", i["item_id"]) for i in items)
    assert all(re.fullmatch(r"u-\d{4}", u["user_id"]) for u in users)
    assert len({i["item_id"] for i in items}) == 600
    assert len({i["title"] for i in items}) == 600


def test_items_follow_the_canonical_shape(
    demo: tuple[list[Record], list[Record], list[Record]],
) -> None:
    items, _, _ = demo
    for item in items:
        assert isinstance(item["title"], str) and item["title"]
        assert isinstance(item["description"], str) and item["description"].endswith(".")
        assert item["categories"] and item["categories"][0] in CATEGORIES
        assert all(c == c.lower() for c in item["categories"])
        assert 2 <= len(item["tags"]) <= 4 and all(t == t.lower() for t in item["tags"])
        assert item["language"] in {"en", "es", "fr"}
        assert all(r == r.upper() and len(r) == 2 for r in item["regions"])
        assert isinstance(item["maturity"], int) and 0 <= item["maturity"] <= 18
        assert DEFAULT_NOW - TWO_YEARS <= item["published_at"] <= DEFAULT_NOW
        assert item["status"] in {"active", "hidden"}
        assert re.fullmatch(r"creator-\d{3}", item["creator_id"])


def test_catalogue_mix(demo: tuple[list[Record], list[Record], list[Record]]) -> None:
    items, _, _ = demo
    primaries = Counter(i["categories"][0] for i in items)
    assert len(primaries) == len(CATEGORIES) == 12
    assert max(primaries.values()) - min(primaries.values()) <= 1
    cross = sum(len(i["categories"]) > 1 for i in items)
    assert 20 <= cross <= 120
    languages = Counter(i["language"] for i in items)
    assert languages["en"] > 0.7 * len(items) and languages["es"] > 0 and languages["fr"] > 0
    restricted = [i["regions"] for i in items if i["regions"]]
    assert 0 < len(restricted) < 0.3 * len(items)
    assert ["US"] in restricted and ["FR", "BE"] in restricted
    assert sum(i["status"] == "hidden" for i in items) == 12
    assert all(i["maturity"] in (16, 18) for i in items if i["categories"][0] == "horror")
    assert {i["maturity"] for i in items if i["categories"][0] != "horror"} <= {0, 7, 12}
    per_creator = Counter(i["creator_id"] for i in items)
    assert len(per_creator) < len(items) / 4 and max(per_creator.values()) >= 5
    fr_items = [i for i in items if i["language"] == "fr"]
    assert all("Presented in French." in i["description"] for i in fr_items)


def test_now_is_a_parameter() -> None:
    items, _, events = generate_demo(n_items=50, n_users=5, now=2_000_000_000)
    assert all(2_000_000_000 - TWO_YEARS <= i["published_at"] <= 2_000_000_000 for i in items)
    assert all(ev["timestamp"] <= 2_000_000_000 for ev in events)


# --------------------------------------------------------------------------- users & interactions


def test_users(demo: tuple[list[Record], list[Record], list[Record]]) -> None:
    _, users, _ = demo
    minors = [u for u in users if age_of(u) < 18]
    assert 5 <= len(minors) <= 50
    for user in users:
        favourites = user["preferences"]["categories"]
        assert 1 <= len(favourites) <= 2 and set(favourites) <= set(CATEGORIES)
        assert user["language"] in {"en", "es", "fr"}
        assert isinstance(user["region"], str) and len(user["region"]) == 2
    assert all("horror" not in u["preferences"]["categories"] for u in minors)


def test_interactions_per_user(demo: tuple[list[Record], list[Record], list[Record]]) -> None:
    items, users, events = demo
    by_item = {i["item_id"]: i for i in items}
    by_user = {u["user_id"]: u for u in users}
    per_user: dict[str, list[Record]] = defaultdict(list)
    for ev in events:
        per_user[ev["user_id"]].append(ev)
    assert set(per_user) == set(by_user)
    on_favourite = 0
    for user_id, evs in per_user.items():
        user = by_user[user_id]
        assert 25 <= len(evs) <= 60
        stamps = [ev["timestamp"] for ev in evs]
        assert all(a < b for a, b in pairwise(stamps))
        for ev in evs:
            item = by_item[ev["item_id"]]
            assert item["status"] == "active"
            assert ev["timestamp"] >= item["published_at"]
            assert item["maturity"] <= age_of(user)
            assert not item["regions"] or user["region"] in item["regions"]
            favourite = bool(set(item["categories"]) & set(user["preferences"]["categories"]))
            on_favourite += favourite
            if ev["type"] in {"dislike", "skip"}:
                assert not favourite
    share = on_favourite / len(events)
    assert 0.72 <= share <= 0.9


def test_interaction_types_and_values(
    demo: tuple[list[Record], list[Record], list[Record]],
) -> None:
    _, _, events = demo
    kinds = Counter(ev["type"] for ev in events)
    assert kinds["view"] > kinds["click"] > kinds["watch"] > kinds["like"] > kinds["purchase"] > 0
    assert 0 < kinds["dislike"] < kinds["like"] and 0 < kinds["skip"] < kinds["like"]
    for ev in events:
        if ev["type"] == "rate":
            assert ev["value"] in {1.0, 2.0, 3.0, 4.0, 5.0}
        elif ev["type"] == "watch":
            assert 0.0 < ev["value"] <= 1.0
        else:
            assert ev["value"] is None
        assert isinstance(ev["timestamp"], float)


# --------------------------------------------------------------------------- pinned output

# sha256 of the output, taken before the vocabulary moved out of the code into demo.toml: the
# same seed must keep giving the same catalogue byte for byte (data sets, benchmarks and
# README figures are built from it). Change them only with a deliberate change of the output.
PINNED_GENERATED = {
    (7, 600, 200): "ecd0b2d34e74037eab252691c7a99f0c83fbf7839c0092c1f6b2a690f71a2bd2",
    # 2000 items exhaust the title vocabulary: covers the numbered-sequel path.
    (3, 2000, 30): "1f60b444bb20efc960b87ad0c27f16fd4a5f573d4a26cf4c4df59456dd97eeea",
}
PINNED_WRITTEN = "f07b544dc0e5e883207a32983ee8a1e620573e5d3dd2379c10259f587971a678"


def sha256_json(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize(("seed", "n_items", "n_users"), sorted(PINNED_GENERATED))
def test_generated_catalogue_and_events_are_pinned(seed: int, n_items: int, n_users: int) -> None:
    generated = generate_demo(seed=seed, n_items=n_items, n_users=n_users)
    assert sha256_json(generated) == PINNED_GENERATED[(seed, n_items, n_users)]


def test_written_files_are_pinned(tmp_path: Path) -> None:
    out = write_demo(tmp_path, seed=11, n_items=150, n_users=40)
    digest = hashlib.sha256()
    for name in ("items.jsonl", "users.jsonl", "interactions.csv"):
        digest.update((out / name).read_bytes())
    assert digest.hexdigest() == PINNED_WRITTEN


def test_the_vocabulary_file_ships_in_the_wheel() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert VOCABULARY_FILE.name in package_data[VOCABULARY_FILE.parent.name]
    assert VOCABULARY_FILE.is_file()


# --------------------------------------------------------------------------- round trip


def test_write_demo_round_trips_through_load_dataset(tmp_path: Path) -> None:
    out = write_demo(tmp_path / "demo", seed=11, n_items=80, n_users=15)
    assert out == tmp_path / "demo"
    items, users, events = generate_demo(seed=11, n_items=80, n_users=15)
    ds = load_dataset(out)
    assert ds.format == "generic"
    assert (ds.count_items(), ds.count_interactions()) == (80, len(events))
    assert list(ds.iter_items()) == items
    assert list(ds.iter_users()) == users
    assert list(ds.iter_interactions()) == events


# --------------------------------------------------------------------------- content similarity


def bag_of_words(item: Record) -> Counter[str]:
    words = re.findall(r"[a-z]+", f"{item['title']} {item['description']}".lower())
    return Counter(w for w in words if w not in STOP_WORDS)


def cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(count * b[word] for word, count in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def test_same_category_text_is_more_similar(
    demo: tuple[list[Record], list[Record], list[Record]],
) -> None:
    items, _, _ = demo
    single = [i for i in items if len(i["categories"]) == 1][::3]
    vectors = [(i["categories"][0], bag_of_words(i)) for i in single]
    same: list[float] = []
    cross: list[float] = []
    for (cat_a, vec_a), (cat_b, vec_b) in combinations(vectors, 2):
        (same if cat_a == cat_b else cross).append(cosine(vec_a, vec_b))
    mean_same, mean_cross = sum(same) / len(same), sum(cross) / len(cross)
    assert mean_same > 0.15
    assert mean_same > 10 * mean_cross
    # Nearest neighbour of most items is in the same category.
    hits = 0
    for idx, (cat, vec) in enumerate(vectors):
        others = [(cosine(vec, v), c) for j, (c, v) in enumerate(vectors) if j != idx]
        hits += max(others)[1] == cat
    assert hits / len(vectors) > 0.9
