"""Stage 4: save the fitted ranker, and publish it only if it beat the order without one."""

from __future__ import annotations

import logging
from typing import Any

from core.stores.registry import ModelRegistry, save_ranker
from serving.features import FEATURE_NAMES
from training.ranker.params import RankerParams
from training.ranker.report import RankerReport

# The package's logger: log lines name `training.ranker`, whichever stage writes them.
log = logging.getLogger("training.ranker")


def gate_and_publish(
    registry: ModelRegistry,
    model: Any,
    report: RankerReport,
    params: RankerParams,
    random_holdout: bool,
    publish_if_worse: bool,
    reference: dict[str, Any] | None = None,
) -> None:
    """Save the model (with its features' training distribution, `reference`); publish it,
    or (refused) withdraw the live ranker and say why."""
    version = registry.new_version()
    report.version = version
    better = (
        report.val_ndcg10_ranker > report.val_ndcg10_fallback and report.val_t >= params.gate_min_t
    ) and (
        not (random_holdout and params.random_holdout_gate)
        or report.val_random_ndcg10_ranker
        >= report.val_random_ndcg10_fallback - params.random_holdout_tolerance
    )
    info = {k: v for k, v in report.as_dict().items() if k != "params"}
    save_ranker(
        registry.ranker_dir(version),
        model.get_booster(),
        FEATURE_NAMES,
        {**info, "params": report.params},
        reference,
    )
    if better or publish_if_worse:
        report.published = True
        registry.publish("ranker", version, {**info, "published": True})
        log.info("ranker %s published: %s", version, info)
        return
    report.reason = (
        "did not beat the order without a ranker (blend, else retrieval) on held-out "
        f"users' held-out items by a credible margin (t {report.val_t} < {params.gate_min_t})"
    ) + (
        ", or ranked their randomly held-out items worse than that order does"
        if params.random_holdout_gate and random_holdout
        else ""
    )
    log.warning("ranker %s saved, not published: %s", version, info)
    # The gate just measured, on today's data, that a ranker trained this way does not beat
    # the order without one: an older ranker has no better claim, so it retires too.
    retired = registry.withdraw("ranker", f"refused successor {version}")
    if retired is not None:
        report.withdrawn = retired
        log.warning("ranker %s withdrawn: the blend orders the surfaces now", retired)
