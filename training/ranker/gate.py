"""Stage 4: save the fitted ranker, and publish it only if it beat the order without one."""

from __future__ import annotations

import json
import logging
from typing import Any

from core.stores.canary import CanaryStore
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
    if better and params.canary_share > 0 and registry.current("ranker") is not None:
        _start_canary(registry, version, info, params, report)
        return
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


def _start_canary(
    registry: ModelRegistry,
    version: str,
    info: dict[str, Any],
    params: RankerParams,
    report: RankerReport,
) -> None:
    """Listed (not current) and served to `canary_share` of users until judged; a canary
    already running is left to finish, and this version waits unpublished."""
    registry.r.hset(
        registry.keys.model_versions("ranker"),
        version,
        json.dumps({**info, "published": False, "canary": "started"}),
    )
    try:
        CanaryStore(registry.r, registry.keys).start(
            version, params.canary_share, params.canary_margin, registry.current("ranker")
        )
    except ValueError as e:
        report.reason = f"passed the gate; not a canary: {e}"
        log.warning("ranker %s saved, not published: %s", version, report.reason)
        return
    report.reason = f"passed the gate; serving {params.canary_share:.0%} of users as a canary"
    log.info("ranker %s: canary started (%s)", version, info)
