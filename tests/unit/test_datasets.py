"""Unit tests for indexing.datasets: format detection and the three loaders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from indexing.datasets import (
    Dataset,
    DatasetError,
    detect_format,
    load_dataset,
    parse_timestamp,
)

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"

ITEM_KEYS = {
    "item_id", "title", "description", "categories", "tags", "language", "regions",
    "maturity", "published_at", "status", "creator_id",
}  # fmt: skip
INTERACTION_KEYS = {"user_id", "item_id", "type", "value", "timestamp"}
USER_KEYS = {"user_id", "language", "region", "birth_year", "preferences"}


# --------------------------------------------------------------------------- helpers


def write_jsonl(path: Path, rows: list[Any]) -> None:
    """Write JSON-lines; str rows are written verbatim so tests can inject broken lines."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_generic(
    root: Path,
    items: list[Any],
    interactions: str | None = None,
    users: list[Any] | None = None,
) -> Path:
    """Create a generic-format dataset directory."""
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "items.jsonl", items)
    if interactions is not None:
        (root / "interactions.csv").write_text(interactions, encoding="utf-8")
    if users is not None:
        write_jsonl(root / "users.jsonl", users)
    return root


def genre_flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


def make_ml100k(root: Path, data: str | None = None) -> Path:
    """Create a tiny MovieLens 100K directory (u.item is latin-1 like the original)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        f"1|Toy Story (1995)|01-Jan-1995||http://x/toy|{genre_flags(3, 4, 5)}",
        f"2|Café Society (1995)|15-Mar-1996||http://x/cafe|{genre_flags(8)}",
        f"267|unknown||||{genre_flags(0)}",
    ]
    (root / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (root / "u.data").write_text(data or "196\t1\t3\t881250949\n22\t2\t5\t878887116\n")
    (root / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return root


def make_ml_latest(root: Path, tags: str | None = None, ratings: str | None = None) -> Path:
    """Create a tiny MovieLens latest directory (CRLF endings like the official files)."""
    root.mkdir(parents=True, exist_ok=True)
    movies = [
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation|Children",
        '11,"American President, The (1995)",Comedy|Drama|Romance',
        '12,"Dracula: Dead and Loving It (1995) ",Comedy|Horror',
        '13,"Say ""Hello"" (2001)",(no genres listed)',
        "40697,Babylon 5,Sci-Fi",
        "171749,Death Note: Desu nôto (2006\u20132007),(no genres listed)",
    ]
    (root / "movies.csv").write_bytes("\r\n".join([*movies, ""]).encode("utf-8"))
    (root / "ratings.csv").write_text(
        ratings or "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n2,11,3.5,964981247\r\n",
        encoding="utf-8",
        newline="",
    )
    if tags is not None:
        (root / "tags.csv").write_text(tags, encoding="utf-8", newline="")
    return root


# --------------------------------------------------------------------------- detection


def test_detect_format_recognises_each_layout(tmp_path: Path) -> None:
    assert (
        detect_format(make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}])) == "generic"
    )
    assert detect_format(make_ml100k(tmp_path / "m100")) == "ml-100k"
    assert detect_format(make_ml_latest(tmp_path / "mll")) == "ml-latest"


def test_detect_format_lists_expected_files(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n")  # ratings.csv missing
    with pytest.raises(DatasetError) as info:
        detect_format(tmp_path)
    message = str(info.value)
    for expected in ("items.jsonl", "u.item", "u.data", "movies.csv", "ratings.csv"):
        assert expected in message
    assert isinstance(info.value, ValueError)


def test_detect_format_rejects_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        detect_format(tmp_path / "nope")
    with pytest.raises(DatasetError):
        load_dataset(tmp_path / "nope")


# --------------------------------------------------------------------------- generic


def test_generic_item_defaults_and_normalisation(tmp_path: Path) -> None:
    root = make_generic(
        tmp_path / "shop",
        [
            {"item_id": 42, "title": " Minimal "},
            {
                "item_id": "b",
                "title": "Full",
                "description": "Desc",
                "categories": ["Cooking", "Travel", "cooking"],
                "tags": ["Spicy"],
                "language": "EN",
                "regions": ["fr", "be"],
                "maturity": 12,
                "published_at": "2024-01-01T00:00:00Z",
                "status": "hidden",
                "creator_id": "creator-001",
            },
        ],
    )
    ds = load_dataset(root)
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.format) == ("shop", "generic")
    minimal, full = list(ds.iter_items())
    assert minimal == {
        "item_id": "42",
        "title": "Minimal",
        "description": "",
        "categories": [],
        "tags": [],
        "language": "und",
        "regions": [],
        "maturity": 0,
        "published_at": 0,
        "status": "active",
        "creator_id": "",
    }
    assert full["categories"] == ["cooking", "travel"]
    assert full["tags"] == ["spicy"]
    assert full["language"] == "en"
    assert full["regions"] == ["FR", "BE"]
    assert full["published_at"] == 1704067200
    assert full["status"] == "hidden"
    assert set(full) == ITEM_KEYS


def test_generic_interactions_values_ids_and_iso_timestamps(tmp_path: Path) -> None:
    csv_text = (
        "user_id,item_id,type,value,timestamp\n"
        "7,42,VIEW,,1700000000\n"
        "u1,a,rate,4.5,2024-01-01T00:00:00Z\n"
        "u1,a,watch,0.75,2024-01-01T01:00:00+01:00\n"
        "u1,a,click,,2024-01-01 00:00:30\n"
        "\n"
    )
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}], interactions=csv_text)
    rows = list(load_dataset(root).iter_interactions())
    assert rows[0] == {
        "user_id": "7",
        "item_id": "42",
        "type": "view",
        "value": None,
        "timestamp": 1700000000.0,
    }
    assert rows[1]["value"] == 4.5 and rows[1]["timestamp"] == 1704067200.0
    assert rows[2]["timestamp"] == 1704067200.0  # offset honoured
    assert rows[3]["timestamp"] == 1704067230.0  # naive ISO is UTC
    assert all(set(r) == INTERACTION_KEYS and isinstance(r["timestamp"], float) for r in rows)


def test_generic_interactions_columns_may_be_reordered(tmp_path: Path) -> None:
    csv_text = "timestamp,type,item_id,user_id\n1700000000,like,a,u\n"
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}], interactions=csv_text)
    (row,) = load_dataset(root).iter_interactions()
    assert (row["user_id"], row["item_id"], row["type"], row["value"]) == ("u", "a", "like", None)


def test_generic_interactions_may_name_the_device(tmp_path: Path) -> None:
    csv_text = (
        "user_id,item_id,type,timestamp,device\nu,a,like,1700000000,TV\nu,a,view,1700000001,\n"
    )
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}], interactions=csv_text)
    on_tv, unsaid = load_dataset(root).iter_interactions()
    assert on_tv["device"] == "tv" and "device" not in unsaid


def test_generic_users(tmp_path: Path) -> None:
    users = [
        {"user_id": 5},
        {
            "user_id": "u2",
            "language": "FR",
            "region": "be",
            "birth_year": 2001,
            "preferences": {"categories": ["Jazz"]},
        },
    ]
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}], users=users)
    first, second = load_dataset(root).iter_users()
    assert first == {
        "user_id": "5",
        "language": None,
        "region": None,
        "birth_year": None,
        "preferences": {"categories": []},
    }
    assert second == {
        "user_id": "u2",
        "language": "fr",
        "region": "BE",
        "birth_year": 2001,
        "preferences": {"categories": ["jazz"]},
    }


def test_generic_optional_files_and_counts(tmp_path: Path) -> None:
    root = make_generic(
        tmp_path / "g", [{"item_id": "a", "title": "A"}, "", {"item_id": "b", "title": "B"}]
    )
    ds = load_dataset(root)
    assert ds.count_items() == 2 == ds.n_items
    assert ds.count_interactions() == 0 == ds.n_interactions
    assert list(ds.iter_interactions()) == []
    assert list(ds.iter_users()) == []
    # Iteration is repeatable: each call re-reads the files.
    assert [i["item_id"] for i in ds.iter_items()] == [i["item_id"] for i in ds.iter_items()]


@pytest.mark.parametrize(
    ("bad_line", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"item_id": "x"}', "title"),
        ('{"title": "no id"}', "item_id"),
        ('{"item_id": "x", "title": "X", "maturity": 21}', "maturity"),
        ('{"item_id": "x", "title": "X", "status": "deleted"}', "status"),
        ('{"item_id": "x", "title": "X", "categories": "cooking"}', "categories"),
        ('{"item_id": "x", "title": "X", "published_at": "yesterday"}', "timestamp"),
        ('{"item_id": "a", "title": "dup"}', "duplicate item_id"),
    ],
)
def test_generic_malformed_item_names_file_and_line(
    tmp_path: Path, bad_line: str, fragment: str
) -> None:
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}, "", bad_line])
    with pytest.raises(DatasetError) as info:
        list(load_dataset(root).iter_items())
    message = str(info.value)
    assert "items.jsonl" in message and "line 3" in message and fragment in message


@pytest.mark.parametrize(
    ("bad_row", "fragment"),
    [
        ("u,a,teleport,,1700000000", "type"),
        ("u,a,rate,five,1700000000", "value"),
        ("u,a,view,,next tuesday", "timestamp"),
        ("u,a,view,1700000000", "expected 5 fields"),
        (",a,view,,1700000000", "user_id"),
    ],
)
def test_generic_malformed_interaction_names_file_and_line(
    tmp_path: Path, bad_row: str, fragment: str
) -> None:
    csv_text = f"user_id,item_id,type,value,timestamp\nu,a,view,,1700000000\n{bad_row}\n"
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}], interactions=csv_text)
    with pytest.raises(DatasetError) as info:
        list(load_dataset(root).iter_interactions())
    message = str(info.value)
    assert "interactions.csv" in message and "line 3" in message and fragment in message


def test_generic_interactions_header_must_have_required_columns(tmp_path: Path) -> None:
    root = make_generic(
        tmp_path / "g", [{"item_id": "a", "title": "A"}], interactions="user,item\nu,a\n"
    )
    with pytest.raises(DatasetError, match=r"line 1: header is missing column\(s\) user_id"):
        list(load_dataset(root).iter_interactions())


def test_generic_malformed_user_names_file_and_line(tmp_path: Path) -> None:
    users = [{"user_id": "u1"}, {"user_id": "u2", "birth_year": "nineteen"}]
    root = make_generic(tmp_path / "g", [{"item_id": "a", "title": "A"}], users=users)
    with pytest.raises(DatasetError, match=r"users\.jsonl: line 2: birth_year"):
        list(load_dataset(root).iter_users())


# --------------------------------------------------------------------------- MovieLens 100K


def test_ml100k_items(tmp_path: Path) -> None:
    ds = load_dataset(make_ml100k(tmp_path / "ml-100k"))
    toy, cafe, unknown = ds.iter_items()
    assert toy == {
        "item_id": "1",
        "title": "Toy Story (1995)",
        "description": "",
        "categories": ["animation", "children's", "comedy"],
        "tags": [],
        "language": "und",
        "regions": [],
        "maturity": 0,
        "published_at": 788918400,
        "status": "active",
        "creator_id": "",
    }
    assert cafe["title"] == "Café Society (1995)"  # decoded as latin-1
    assert cafe["published_at"] == 826848000  # 1996-03-15
    assert cafe["description"] == ""  # MovieLens has no descriptions
    assert unknown["categories"] == [] and unknown["published_at"] == 0
    assert ds.count_items() == 3


def test_ml100k_interactions_and_users(tmp_path: Path) -> None:
    ds = load_dataset(make_ml100k(tmp_path / "ml-100k"))
    assert next(iter(ds.iter_interactions())) == {
        "user_id": "196",
        "item_id": "1",
        "type": "rate",
        "value": 3.0,
        "timestamp": 881250949.0,
    }
    assert ds.count_interactions() == 2
    users = list(ds.iter_users())
    assert users[0] == {
        "user_id": "1",
        "language": None,
        "region": None,
        "birth_year": 1974,
        "preferences": {"categories": []},
    }
    assert users[1]["birth_year"] == 1998 - 53


def test_ml100k_uses_u_genre_when_present(tmp_path: Path) -> None:
    root = make_ml100k(tmp_path / "ml-100k")
    # Indices decide the order, not line order.
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
              "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
              "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # fmt: skip
    lines = [f"{g}|{i}" for i, g in enumerate(genres)]
    (root / "u.genre").write_text("\n".join(reversed(lines)) + "\n\n")
    toy = next(load_dataset(root).iter_items())
    assert toy["categories"] == ["animation", "children's", "comedy"]


def test_ml100k_malformed_lines(tmp_path: Path) -> None:
    root = make_ml100k(tmp_path / "bad", data="1\t1\t3\t881250949\n1\t2\tthree\t881250949\n")
    with pytest.raises(DatasetError, match=r"u\.data: line 2: value"):
        list(load_dataset(root).iter_interactions())
    (root / "u.data").write_text("1\t1\t3\t881250949\n\n1\t2\n")
    with pytest.raises(DatasetError, match=r"u\.data: line 3: expected 4"):
        list(load_dataset(root).iter_interactions())
    (root / "u.item").write_text("1|Short|01-Jan-1995\n")
    with pytest.raises(DatasetError, match=r"u\.item: line 1: expected 24"):
        list(load_dataset(root).iter_items())
    (root / "u.item").write_text(f"1|Bad date|1995-01-01||url|{genre_flags(1)}\n")
    with pytest.raises(DatasetError, match=r"u\.item: line 1: invalid release date"):
        list(load_dataset(root).iter_items())


# --------------------------------------------------------------------------- MovieLens latest


def test_ml_latest_items_titles_years_and_genres(tmp_path: Path) -> None:
    ds = load_dataset(make_ml_latest(tmp_path / "ml-latest-small"))
    items = {item["item_id"]: item for item in ds.iter_items()}
    assert list(items) == ["1", "11", "12", "13", "40697", "171749"]
    assert items["1"]["categories"] == ["adventure", "animation", "children"]
    assert items["1"]["published_at"] == 788918400
    assert items["1"]["description"] == ""
    assert items["11"]["title"] == "American President, The (1995)"
    assert items["12"]["title"] == "Dracula: Dead and Loving It (1995)"
    assert items["12"]["published_at"] == 788918400
    assert items["13"]["title"] == 'Say "Hello" (2001)'
    assert items["13"]["categories"] == []
    assert items["13"]["published_at"] == 978307200
    assert items["40697"]["published_at"] == 0  # no year in the title
    assert items["171749"]["published_at"] == 1136073600  # range "(2006-2007)" -> 2006
    assert all(set(item) == ITEM_KEYS and item["tags"] == [] for item in items.values())
    assert list(ds.iter_users()) == []
    assert (ds.count_items(), ds.count_interactions()) == (6, 2)


def test_ml_latest_tag_aggregation(tmp_path: Path) -> None:
    rows = ["userId,movieId,tag,timestamp"]
    rows += [f"{u},1,Pixar,1" for u in range(3)] + ["9,1,pixar,1", "9,1,  Fun ,1", "8,1,fun,1"]
    rows += ["1,1,zany,1", "1,1,alpha,1", '5,1,"dark, comedy",1', "5,1,Dark,1"]
    rows += [f"2,11,tag{i:02d},1" for i in range(12)] + ["3,11,tag11,1", "3,11,,1"]
    root = make_ml_latest(tmp_path / "mll", tags="\r\n".join(rows) + "\r\n")
    items = {item["item_id"]: item for item in load_dataset(root).iter_items()}
    # Most frequent first; ties broken alphabetically; case and whitespace folded.
    assert items["1"]["tags"] == ["pixar", "fun", "alpha", "dark", "dark, comedy", "zany"]
    assert items["11"]["tags"] == ["tag11"] + [f"tag{i:02d}" for i in range(9)]
    assert len(items["11"]["tags"]) == 10
    assert items["12"]["tags"] == []


def test_ml_latest_ratings(tmp_path: Path) -> None:
    ds = load_dataset(make_ml_latest(tmp_path / "mll"))
    first, second = ds.iter_interactions()
    assert first == {
        "user_id": "1",
        "item_id": "1",
        "type": "rate",
        "value": 4.0,
        "timestamp": 964982703.0,
    }
    assert second["value"] == 3.5 and second["item_id"] == "11"


def test_ml_latest_malformed_rating_line(tmp_path: Path) -> None:
    ratings = "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,2,4.0\r\n"
    root = make_ml_latest(tmp_path / "mll", ratings=ratings)
    with pytest.raises(DatasetError, match=r"ratings\.csv: line 3: expected 4 fields"):
        list(load_dataset(root).iter_interactions())


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1700000000", 1700000000.0),
        ("1700000000.5", 1700000000.5),
        (1700000000, 1700000000.0),
        ("2024-01-01T00:00:00Z", 1704067200.0),
        ("2024-01-01T00:00:00+00:00", 1704067200.0),
        ("2024-01-01", 1704067200.0),
    ],
)
def test_parse_timestamp(raw: str | int, expected: float) -> None:
    assert parse_timestamp(raw) == expected


@pytest.mark.parametrize("raw", ["", "soon", "nan", "inf", True])
def test_parse_timestamp_rejects_garbage(raw: Any) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(raw)


# --------------------------------------------------------------------------- real MovieLens files


def real_dataset(name: str) -> Dataset:
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    return load_dataset(path)


@pytest.mark.datasets
def test_real_ml100k() -> None:
    ds = real_dataset("ml-100k")
    assert ds.format == "ml-100k"
    items = list(ds.iter_items())
    interactions = list(ds.iter_interactions())
    users = list(ds.iter_users())
    assert (len(items), len(interactions), len(users)) == (1682, 100_000, 943)
    assert (ds.count_items(), ds.count_interactions()) == (1682, 100_000)
    assert items[0]["title"] == "Toy Story (1995)"
    assert items[0]["categories"] == ["animation", "children's", "comedy"]
    assert len({i["item_id"] for i in items}) == 1682
    assert {i["user_id"] for i in interactions} == {u["user_id"] for u in users}
    assert all(
        isinstance(r["item_id"], str) and isinstance(r["user_id"], str) for r in interactions
    )
    assert {r["value"] for r in interactions} == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert all(set(i) == ITEM_KEYS for i in items)
    assert all(set(u) == USER_KEYS for u in users)


@pytest.mark.datasets
def test_real_ml_latest_small() -> None:
    ds = real_dataset("ml-latest-small")
    assert ds.format == "ml-latest"
    items = list(ds.iter_items())
    interactions = list(ds.iter_interactions())
    assert (len(items), len(interactions)) == (9742, 100_836)
    assert (ds.count_items(), ds.count_interactions()) == (9742, 100_836)
    assert list(ds.iter_users()) == []
    by_id = {i["item_id"]: i for i in items}
    assert len(by_id) == 9742
    assert by_id["1"]["tags"][:2] == ["pixar", "fun"]
    assert all(len(i["tags"]) <= 10 for i in items)
    assert all("(no genres listed)" not in i["categories"] for i in items)
    assert {r["item_id"] for r in interactions} <= set(by_id)
    assert min(r["timestamp"] for r in interactions) == 828124615.0
    assert max(r["timestamp"] for r in interactions) == 1537799250.0
    assert len({r["user_id"] for r in interactions}) == 610
