"""What a re-ranker training run reports, and the per-stage timer that fills it in."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

# The package's logger: log lines name `training.ranker`, whichever stage writes them.
log = logging.getLogger("training.ranker")


@dataclass
class RankerReport:
    version: str | None
    published: bool = False
    users: int = 0
    groups: int = 0
    rows: int = 0
    positives: int = 0
    val_ndcg10_ranker: float = 0.0
    val_ndcg10_fallback: float = 0.0
    val_random_ndcg10_ranker: float = 0.0
    val_random_ndcg10_fallback: float = 0.0
    val_t: float = 0.0  # paired t statistic of the ranker's per-user lead over the fallback
    total_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)  # where the time went
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    withdrawn: str | None = None  # the previously published ranker this refusal retired
    namespace: str = ""  # the temporary namespace (dropped when training ends)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def not_trained(report: RankerReport, reason: str) -> RankerReport:
    """`report`, saying why no ranker was fitted."""
    report.reason = reason
    log.warning("ranker not trained: %s", reason)
    return report


class StageTimer:
    """Records, per stage name, the seconds since the previous stage ended."""

    def __init__(self, report: RankerReport):
        self.report = report
        self.lap = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.report.stage_s[name] = round(now - self.lap, 2)
        self.lap = now
