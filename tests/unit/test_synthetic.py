"""The synthetic catalogue of bench/scale.py: deterministic, valid, and structured as documented."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bench._synthetic import SyntheticCatalogue, SyntheticEmbedder
from core.domain import Interaction, Item, User


@pytest.fixture(scope="module")
def cat() -> SyntheticCatalogue:
    return SyntheticCatalogue(n_items=400, n_users=60, seed=3)


@pytest.fixture(scope="module")
def events(cat: SyntheticCatalogue) -> list[dict]:
    return list(cat.interactions())


def test_same_seed_same_catalogue_other_seed_another(cat: SyntheticCatalogue, events) -> None:
    again = SyntheticCatalogue(n_items=400, n_users=60, seed=3)
    assert list(again.items()) == list(cat.items())
    assert list(again.users()) == list(cat.users())
    assert list(again.interactions()) == events
    other = SyntheticCatalogue(n_items=400, n_users=60, seed=4)
    assert list(other.items()) != list(cat.items())


def test_records_are_valid_api_records(cat: SyntheticCatalogue, events) -> None:
    items = [Item.model_validate(r) for r in cat.items()]
    assert len({i.item_id for i in items}) == cat.n_items
    for r in cat.users():
        User.model_validate(r)
    for r in events:
        Interaction.model_validate(r)


def test_items_belong_to_one_or_two_topics_named_in_their_categories(
    cat: SyntheticCatalogue,
) -> None:
    counts = Counter(len(cat.item_topics(i)) for i in range(cat.n_items))
    assert set(counts) == {1, 2} and counts[2] > 0.1 * cat.n_items
    for i in range(cat.n_items):
        rec = cat.item(i)
        names = [cat.topics[t].category.name for t in cat.item_topics(i)]
        assert rec["categories"] == list(dict.fromkeys(names))
        subjects = cat.topics[cat.item_topics(i)[0]].subjects
        assert any(s.lower() in cat.text(rec).lower() for s in subjects)


def test_popularity_is_skewed(cat: SyntheticCatalogue, events) -> None:
    per_item = Counter(e["item_id"] for e in events)
    top = sum(n for _, n in per_item.most_common(cat.n_items // 10))
    assert top > 0.35 * len(events)


def test_users_favour_their_topics_and_activity_varies(cat: SyntheticCatalogue, events) -> None:
    index = {cat.item_id(i): i for i in range(cat.n_items)}
    favourite = sum(
        bool(
            set(cat.item_topics(index[e["item_id"]]))
            & set(cat.user_favourites(int(e["user_id"][1:])))
        )
        for e in events
    )
    assert favourite > 0.7 * len(events)
    per_user = Counter(e["user_id"] for e in events)
    assert max(per_user.values()) > 3 * np.median(list(per_user.values()))


def test_events_are_time_ordered_after_publication_and_allowed(
    cat: SyntheticCatalogue, events
) -> None:
    ts = [e["timestamp"] for e in events]
    assert ts == sorted(ts) and max(ts) <= cat.now
    for e in events:
        i, j = int(e["item_id"][1:]), int(e["user_id"][1:])
        assert e["timestamp"] >= cat.published_at[i]
        assert not cat.hidden[i]
        assert cat.maturity[i] <= cat.age[j]


def test_synthetic_vectors_follow_topics(cat: SyntheticCatalogue) -> None:
    emb = SyntheticEmbedder(cat, dim=32)
    texts = [cat.text(cat.item(i)) for i in range(120)]
    v = emb.embed(texts)
    assert v.shape == (120, 32) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(emb.embed(texts[:5]), v[:5])  # a function of the text
    sims = v @ v.T
    same = cat.primary[:120, None] == cat.primary[None, :120]
    off_diagonal = ~np.eye(120, dtype=bool)
    assert sims[same & off_diagonal].mean() > sims[~same].mean() + 0.3
    unknown = emb.embed(["a text that is not in the catalogue"])
    assert np.isclose(np.linalg.norm(unknown), 1.0, atol=1e-5)
