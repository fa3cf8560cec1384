"""The README's worked example is what the API answers on the demo data `make run` serves.

The requests run against the real app over the demo catalogue, seeded and trained exactly as
`vantage run` does (`seed_demo`). The README block between the `example:start` and
`example:end` markers must match the answers once the values that differ from run to run are
normalised (recommendation ids, timestamps, scores, the items the model picks around the pin).
`VANTAGE_UPDATE_README=1` rewrites the block from this run instead.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.settings import Settings
from tests.conftest import REPO, authed

README = REPO / "README.md"
START = "<!-- example:start"
END = "<!-- example:end -->"
MARKER = (
    "<!-- example:start: written by tests/integration/test_readme_example.py "
    "(VANTAGE_UPDATE_README=1 rewrites it) -->"
)
USER = "u-0001"
PINNED = "demo-0300"
RULE = {
    "action": "pin",
    "item_id": PINNED,
    "position": 3,
    "surfaces": ["homepage"],
    "note": "spring campaign",
}
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)
REC_ID = re.compile(r"\b[0-9a-f]{32}\b")


def _wait(cond: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _run_example(settings: Settings, embedder: Any, tmp_path: Path) -> dict[str, Any]:
    """Seed like `vantage run`, then send the example's requests; the answers by name."""
    from app.main import create_app
    from indexing.connect import build_stores
    from indexing.demo import generate_demo
    from indexing.worker import Worker
    from vantage.commands.run import seed_demo

    s = settings.model_copy(update={"data_dir": tmp_path / "data"})
    stores = build_stores(s, log_writer="import", embedder=embedder)
    try:
        assert seed_demo(stores, s)
        _, _, interactions = generate_demo()  # what seed_demo imported
        seen = {r["item_id"] for r in interactions if r["user_id"] == USER}
        assert PINNED not in seen
        worker = Worker(replace(stores, log=None), consumer="readme", block_ms=50)
        with authed(create_app(s), s) as client:
            rule = client.put("/v1/admin/rules/promo", json=RULE)
            assert rule.status_code in (200, 201), rule.text
            recs = client.get("/v1/recommendations", params={"user_id": USER, "limit": 5})
            assert recs.status_code == 200, recs.text
            body = recs.json()
            state = client.app.state.vantage  # type: ignore[attr-defined]
            rid = body["recommendation_id"]
            # The impression is written asynchronously; a click is attributed once it is there.
            _wait(lambda: state.redis.exists(state.keys.rec_info(rid)) == 1)
            assert state.impressions.flush()  # its counters too (summed for up to a second)
            click = {
                "user_id": USER,
                "item_id": body["items"][1]["item_id"],
                "type": "click",
                "recommendation_id": rid,
            }
            posted = client.post("/v1/interactions", json=click)
            assert posted.status_code == 202, posted.text
            worker.drain()
            metrics = client.get("/v1/admin/metrics/surfaces", params={"surface": "homepage"})
            assert metrics.status_code == 200, metrics.text
    finally:
        stores.redis.close()
        stores.items.client.close()
    return {"recommendations": body, "click": click, "metrics": metrics.json()}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _render_recommendations(body: dict[str, Any]) -> str:
    """The response laid out for reading: one item per two lines, valid JSON throughout."""
    top = [k for k in body if k != "items"]
    head = ["recommendation_id"]
    ids = ["user_id", "surface", "variant"]
    rest = [k for k in top if k not in head + ids]
    lines = ["{", f'  "recommendation_id": {_dumps(body["recommendation_id"])},']
    lines.append("  " + ", ".join(f'"{k}": {_dumps(body[k])}' for k in ids) + ",")
    lines.append('  "items": [')
    for n, item in enumerate(body["items"]):
        first = ["item_id", "score", "sources"]
        a = ", ".join(f'"{k}": {_dumps(item[k])}' for k in first)
        b = ", ".join(f'"{k}": {_dumps(v)}' for k, v in item.items() if k not in first)
        comma = "," if n < len(body["items"]) - 1 else ""
        lines += [f"    {{{a},", f"     {b}}}{comma}"]
    lines.append("  ],")
    lines.append("  " + ", ".join(f'"{k}": {_dumps(body[k])}' for k in rest))
    lines.append("}")
    return "\n".join(lines)


def render(example: dict[str, Any]) -> str:
    """The README block for these answers (markers included)."""
    rule = _dumps(RULE).replace(", ", ",").replace(": ", ":")
    click = _dumps(example["click"]).replace(", ", ",").replace(": ", ":")
    rows = example["metrics"]["rows"]
    metrics = "\n".join(
        ['{"rows": ['] + [f"  {_dumps(r)}," for r in rows[:-1]] + [f"  {_dumps(rows[-1])}", "]}"]
    )
    return f"""{MARKER}
```bash
curl -s -H "$A" -X PUT localhost:8000/v1/admin/rules/promo -H 'content-type: application/json' \\
  -d '{rule}'
# the surface defaults to homepage
curl -s -H "$A" "localhost:8000/v1/recommendations?user_id={USER}&limit=5"
```

```json
{_render_recommendations(example["recommendations"])}
```

{USER} clicks the second item, citing the list; the click is attributed once to that surface,
its sources and the variant:

```bash
curl -s -H "$A" -X POST localhost:8000/v1/interactions -H 'content-type: application/json' \\
  -d '{click}'
curl -s -H "$A" "localhost:8000/v1/admin/metrics/surfaces?surface=homepage"
```

```json
{metrics}
```
{END}"""


def _block(text: str) -> str:
    start, end = text.find(START), text.find(END)
    assert 0 <= start < end, f"README.md has no {START} ... {END} block"
    return text[start : end + len(END)]


def _json_emptied(m: re.Match[str]) -> str:
    return "```json```" if m.group(1) == "json" else m.group(0)


def skeleton(block: str) -> dict[str, Any]:
    """What must match between the README and a run: everything but run-to-run noise."""
    fences = FENCE.findall(block)
    assert [lang for lang, _ in fences] == ["bash", "json", "bash", "json"], fences
    (_, request), (_, recs_text), (_, click_text), (_, metrics_text) = fences
    recs = json.loads(recs_text)
    items = recs["items"]
    listed = [i["item_id"] for i in items]
    # The click cites this very list and one of its items.
    click = json.loads(re.search(r"-d '(\{.*?\})'", click_text).group(1))  # type: ignore[union-attr]
    assert click["recommendation_id"] == recs["recommendation_id"], click
    assert click["item_id"] == listed[1], (click, listed)
    rows = json.loads(metrics_text)["rows"]
    total = [r for r in rows if r["source"] == "*"]
    pinned = [
        {"item_id": i["item_id"], "sources": i["sources"], "featured": "featured" in i["reasons"]}
        for i in items
        if i["item_id"] == PINNED
    ]
    return {
        # The prose and the commands, word for word.
        "text": REC_ID.sub(
            "<id>", FENCE.sub(_json_emptied, block).replace(click["item_id"], "<clicked>")
        ),
        "request": request,
        "top": sorted(recs),
        "ids": [recs["user_id"], recs["surface"], recs["variant"]],
        "flags": [recs["cached"], recs["degraded"], recs["degraded_reasons"]],
        "positions": [i["position"] for i in items],
        "item_keys": [sorted(i) for i in items],
        "types": [
            [type(i[k]).__name__ for k in ("score", "propensity", "explored")] for i in items
        ],
        "pinned": pinned,
        "pinned_at": [i["position"] for i in items if i["item_id"] == PINNED],
        "distinct": len(set(listed)) == len(listed),
        "click": {k: v for k, v in click.items() if k not in ("item_id", "recommendation_id")},
        "total_row": total,
        "row_keys": [sorted(r) for r in rows],
        "row_shape": sorted({(r["surface"], r["variant"]) for r in rows}),
        "rows_sane": all(0 <= r["clicks"] <= r["impressions"] for r in rows),
    }


def test_readme_worked_example_matches_the_api_on_the_demo_data(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    generated = render(_run_example(settings, embedder, tmp_path))
    text = README.read_text()
    if os.environ.get("VANTAGE_UPDATE_README") == "1":
        README.write_text(text.replace(_block(text), generated))
        return
    assert skeleton(_block(text)) == skeleton(generated), (
        "README.md's worked example no longer matches the API: "
        "rerun with VANTAGE_UPDATE_README=1 and review the diff"
    )


def test_readme_quick_start_says_how_to_change_the_port() -> None:
    text = README.read_text()
    quick_start = text[text.index("## Two commands") : text.index("## The API in curl")]
    assert "make run PORT=8100" in quick_start
    assert "vantage run --port 8100" in quick_start
    assert "VANTAGE_SERVING__PORT=8100" in quick_start
    makefile = (REPO / "Makefile").read_text()
    assert "PORT ?=" in makefile and "$(if $(PORT),--port $(PORT))" in makefile
