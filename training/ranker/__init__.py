"""Training the XGBoost LambdaMART re-ranker (`vantage train`, after the interaction model).

Leakage-free by construction: each user's interactions are split (by time for the
"temporal" tune split: the newest ~20% are labels; at random for "random": a random 25%), the
rest (the feature period) are loaded into a temporary namespace on the same servers (item
rows copied from the live collection, interactions through the worker's apply functions, iALS
and item neighbours trained there with the live model's hyper-parameters), and the held-out
items are the labels. For a sample of users the API's own candidate generation
(`serving.stages.retrieve`) and feature code (`serving.features`) run against
that namespace, so training rows are what serving computes. The model is fitted grouped by
user, checked on held-out users against the order serving would use without it (the blend of
the interaction model's two views, else the retrieval order) on the same kind of holdout it
learned from, saved under `<data_dir>/models/ranker/<version>/` and published; the temporary
namespace is dropped whatever happens.

One module per stage, chained by `train.train_ranker`:

* `split`: feature period and labels, the users to learn from, the validation users;
* `candidates`: the temporary namespace and serving's own candidates and features there;
* `fit`: the XGBoost fit, validated on held-out users against the order without a ranker;
* `gate`: publish, or save only and withdraw the live ranker;
* `params` and `report`: the configuration and the report every stage fills in.
"""

from __future__ import annotations

from training.ranker.fit import ndcg_at, paired_t
from training.ranker.params import RankerParams
from training.ranker.report import RankerReport
from training.ranker.split import TimeSplit, split_by_time
from training.ranker.train import train_ranker

__all__ = [
    "RankerParams",
    "RankerReport",
    "TimeSplit",
    "ndcg_at",
    "paired_t",
    "split_by_time",
    "train_ranker",
]
