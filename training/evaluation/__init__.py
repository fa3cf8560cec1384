"""Offline evaluation: ANCHORS splits, full-ranking metrics and reference baselines."""

from __future__ import annotations

from training.evaluation.baselines import run_baselines
from training.evaluation.metrics import evaluate
from training.evaluation.splits import (
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
