"""Offline evaluation: ANCHORS splits, full-ranking metrics and reference baselines."""

from __future__ import annotations

from vantage.evaluation.baselines import run_baselines
from vantage.evaluation.metrics import evaluate
from vantage.evaluation.splits import (
    PROTOCOLS,
    split_indices,
    split_records,
    stratified_split_indices,
    temporal_split_indices,
)

__all__ = [
    "PROTOCOLS",
    "evaluate",
    "run_baselines",
    "split_indices",
    "split_records",
    "stratified_split_indices",
    "temporal_split_indices",
]
