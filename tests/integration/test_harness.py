"""The evaluation harness scores the real pipeline next to the baselines on one split."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from indexing.demo import write_demo
from training.harness import evaluate_dataset, markdown_table


def test_pipeline_beats_popularity_on_taste_clusters(settings: Settings, tmp_path: Path) -> None:
    data = write_demo(tmp_path / "demo", n_items=120, n_users=60)
    res = evaluate_dataset(settings, data, "temporal", progress=False)
    models = res["models"]
    # The same pipeline the other way: live retrieval if sets are on (the default), else sets.
    other = "vantage_live" if settings.candidates.enabled else "vantage_sets"
    assert set(models) == {
        "vantage",
        "vantage_policy_off",
        other,
        "MostPop",
        "ItemKNN",
        "EASE",
        "iALS",
    }
    assert res["n_users"] > 30 and res["vantage"]["cf_model"]
    # Demo users have one or two favourite topics: personalisation must beat popularity.
    assert models["vantage"]["ndcg@10"] > models["MostPop"]["ndcg@10"]
    assert models[other]["ndcg@10"] > models["MostPop"]["ndcg@10"]
    assert 0 < models["vantage"]["coverage@10"] <= 1
    # Same models, policy rules off: the harness reports what the policy costs and buys.
    cost = res["vantage"]["policy_cost"]
    assert set(cost) == {"ndcg@10_change", "coverage@10_change", "diversity@10_change"}
    table = markdown_table([res])
    assert "| demo | temporal | **vantage** |" in table
    # The evaluation namespace is gone afterwards.
    from core.connect import connect_milvus

    m = connect_milvus(settings)
    assert not [c for c in m.list_collections() if c.startswith("eval")]
    m.close()
