"""Sparse data sets for the quality harness, written in the generic layout (items.jsonl +
interactions.csv) into a directory outside the repository (MovieLens licences forbid copies).

    python bench/sparse_data.py --out /tmp/sparse      # then bench/quality.py --dataset ...

* `ml-100k-sparse`: ML-100K with each user cut to a random 3-10 of their ratings (about 7, as
  on a young shop), and each film keeping only its first genre (items share few categories).
* `ml-latest-small-sparse`: the same cut of ml-latest-small (9,742 items, 610 users).
* `shop-sparse`: a generated shop: 900 products of 180 product types (5 per type: a product
  type is the only category), titles and descriptions from brand, type and features, 1,400
  customers with 2-14 rated purchases (about 7), 1-5 stars. A customer shops in 1-2
  departments (groups of 10 types) and rates what suits their taste higher.
* `shop-departments`: the same shop with the department as the only category (18 categories
  of 50 items): a customer's candidates crowd into one or two categories, where per-category
  caps bind.

Everything is seeded: the same command writes the same files. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import DATASETS
from indexing.datasets import load_dataset

SEED = 20261203

DEPARTMENTS = {
    "audio": ["headphones", "earbuds", "speaker", "soundbar", "turntable", "microphone",
              "amplifier", "radio", "subwoofer", "headphone stand"],
    "kitchen": ["coffee grinder", "espresso machine", "kettle", "toaster", "blender",
                "chef knife", "cutting board", "frying pan", "stock pot", "rice cooker"],
    "running": ["running shoes", "running socks", "running jacket", "hydration vest",
                "sports watch", "running shorts", "headlamp", "energy gels", "foam roller",
                "compression sleeves"],
    "camping": ["tent", "sleeping bag", "camping stove", "trekking poles", "backpack",
                "water filter", "camping chair", "cooler box", "lantern", "camp mat"],
    "office": ["desk lamp", "office chair", "monitor arm", "notebook", "fountain pen",
               "standing desk", "keyboard", "mouse", "webcam", "desk organiser"],
    "garden": ["garden hose", "pruning shears", "lawn mower", "seed tray", "watering can",
               "garden gloves", "compost bin", "hedge trimmer", "plant pots", "bird feeder"],
    "baby": ["stroller", "baby carrier", "high chair", "baby monitor", "changing bag",
             "bottle warmer", "cot mattress", "play mat", "teething toy", "baby bath"],
    "gaming": ["gaming mouse", "gamepad", "gaming headset", "capture card", "gaming chair",
               "mechanical keyboard", "racing wheel", "vr headset", "controller charger",
               "mouse pad"],
    "bath": ["bath towel", "shower head", "bath mat", "toothbrush", "hair dryer", "shaver",
             "bathrobe", "soap dispenser", "scale", "shower caddy"],
    "pets": ["dog bed", "cat tree", "dog lead", "pet fountain", "cat litter box", "dog toy",
             "pet carrier", "grooming brush", "aquarium filter", "bird cage"],
    "bike": ["bike helmet", "bike lights", "bike lock", "bike pump", "cycling gloves",
             "saddle bag", "bike computer", "cycling jersey", "chain oil", "mudguards"],
    "home": ["duvet", "pillow", "curtains", "rug", "floor lamp", "throw blanket",
             "picture frame", "wall clock", "vase", "door mat"],
    "travel": ["suitcase", "travel adapter", "neck pillow", "packing cubes", "passport wallet",
               "luggage scale", "toiletry bag", "travel towel", "eye mask", "daypack"],
    "tools": ["cordless drill", "screwdriver set", "tape measure", "spirit level", "hammer",
              "socket set", "stud finder", "utility knife", "workbench", "clamp set"],
    "photo": ["camera bag", "tripod", "memory card", "lens filter", "camera strap",
              "flash", "lens cleaning kit", "reflector", "photo printer", "gimbal"],
    "beauty": ["face cream", "serum", "sunscreen", "lip balm", "nail kit", "hair straightener",
               "makeup brushes", "perfume", "cleanser", "face mask"],
    "toys": ["building blocks", "puzzle", "board game", "doll house", "toy car",
             "science kit", "plush bear", "kite", "train set", "art set"],
    "music": ["acoustic guitar", "ukulele", "guitar strings", "capo", "keyboard stand",
              "drum pads", "metronome", "guitar tuner", "music stand", "violin"],
}  # fmt: skip
BRANDS = ["Acorn", "Bolt", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
          "Juniper", "Kestrel", "Lumen", "Maple", "Nimbus", "Orbit", "Pioneer"]  # fmt: skip
FEATURES = ["lightweight", "waterproof", "compact", "heavy-duty", "quiet", "rechargeable",
            "foldable", "premium", "eco-friendly", "adjustable", "wireless", "classic"]  # fmt: skip


def cut_movielens(source: Path, out: Path, *, seed: int = SEED) -> dict[str, Any]:
    """A MovieLens set with 3-10 ratings per user and one genre per film."""
    ds = load_dataset(source)
    items = []
    for it in ds.iter_items():
        items.append({**_jsonable(it), "categories": list(it.get("categories") or [])[:1]})
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in ds.iter_interactions():
        by_user[str(r["user_id"])].append(r)
    rng = random.Random(seed)
    kept = []
    for user in sorted(by_user):
        rows = by_user[user]
        kept += rng.sample(rows, min(len(rows), rng.randint(3, 10)))
    return _write(out, items, kept)


def shop(out: Path, *, seed: int = SEED, n_users: int = 1400, by: str = "type") -> dict[str, Any]:
    """The generated shop (see the module doc); `by`: an item's category is its product type
    (180 small categories) or its department (18 large ones, 50 items each)."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    kinds = [(dept, kind) for dept, ks in DEPARTMENTS.items() for kind in ks]
    quality: dict[str, float] = {}
    for dept, kind in kinds:
        for n in range(5):
            brand, feats = rng.choice(BRANDS), rng.sample(FEATURES, 2)
            item_id = f"p{len(items) + 1:04d}"
            quality[item_id] = rng.gauss(0, 1)
            items.append(
                {
                    "item_id": item_id,
                    "title": f"{brand} {feats[0]} {kind} {['S', 'M', 'X', 'Pro', 'Go'][n]}",
                    "description": f"A {feats[0]}, {feats[1]} {kind} by {brand} for {dept} "
                    f"lovers. Model {n + 1} of the {brand} {kind} range.",
                    "categories": [kind if by == "type" else dept],
                    "creator_id": brand.lower(),
                    "published_at": 1_700_000_000 + rng.randint(0, 300) * 86_400,
                }
            )
    by_dept: dict[str, list[str]] = defaultdict(list)
    for k, it in enumerate(items):
        by_dept[kinds[k // 5][0]].append(it["item_id"])
    events = []
    depts = sorted(by_dept)
    for u in range(1, n_users + 1):
        favourite = rng.sample(depts, rng.choice((1, 1, 2)))
        t = 1_730_000_000 + rng.randint(0, 200) * 86_400
        chosen: set[str] = set()
        for _ in range(max(2, min(14, round(rng.lognormvariate(1.8, 0.5))))):
            pool = (
                by_dept[rng.choice(favourite)]
                if rng.random() < 0.85
                else [i for d in depts for i in by_dept[d]]
            )
            # Better products sell more: a weighted draw by quality.
            weights = [2.0 ** quality[i] for i in pool]
            item = rng.choices(pool, weights)[0]
            if item in chosen:
                continue
            chosen.add(item)
            stars = min(5, max(1, round(3.4 + quality[item] + rng.gauss(0, 0.8))))
            t += rng.randint(1, 20) * 86_400
            events.append(
                {"user_id": f"c{u:04d}", "item_id": item, "type": "rate", "value": stars,
                 "timestamp": t}
            )  # fmt: skip
    return _write(out, items, events)


def _jsonable(it: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("item_id", "title", "description", "categories", "tags", "language", "regions",
            "maturity", "published_at", "status", "creator_id")  # fmt: skip
    return {k: it[k] for k in keep if k in it}


def _write(
    out: Path, items: list[dict[str, Any]], events: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "items.jsonl").open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    rows = sorted(events, key=lambda r: (float(r["timestamp"]), str(r["user_id"])))
    with (out / "interactions.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "type", "value", "timestamp"])
        for r in rows:
            value = "" if r.get("value") is None else r["value"]
            w.writerow([r["user_id"], r["item_id"], r["type"], value, int(float(r["timestamp"]))])
    users = {str(r["user_id"]) for r in rows}
    cats = {c for it in items for c in it.get("categories", [])}
    return {
        "path": str(out),
        "items": len(items),
        "users": len(users),
        "interactions": len(rows),
        "per_user": round(len(rows) / max(len(users), 1), 2),
        "categories": len(cats),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="directory for the data sets (not the repo)")
    args = ap.parse_args()
    out = Path(args.out)
    made = {
        "shop-sparse": shop(out / "shop-sparse"),
        "shop-departments": shop(out / "shop-departments", by="department"),
    }
    for name in ("ml-100k", "ml-latest-small"):
        if (DATASETS / name).is_dir():
            made[f"{name}-sparse"] = cut_movielens(DATASETS / name, out / f"{name}-sparse")
    print(json.dumps({"bench": "sparse_data", "datasets": made}))


if __name__ == "__main__":
    main()
