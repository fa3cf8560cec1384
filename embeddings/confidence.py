"""How sure an interaction makes us that a (user, item) cell is a positive.

iALS, the item neighbours and the worker's fold-in all read interactions through
``confidence_weight``: one non-negative weight per event type, and a rating scheme for
ratings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# Non-negative confidence per event type. Unlike core.domain.interaction_weight (a signed
# preference), iALS needs "how sure are we this cell is a positive": stronger commitments
# count more, and negative feedback is simply not a positive (it stays an unobserved cell).
CONFIDENCE_WEIGHTS: dict[str, float] = {
    "purchase": 4.0,
    "like": 3.0,
    "watch": 2.0,
    "click": 1.0,
    "view": 0.5,
    "dislike": 0.0,
    "skip": 0.0,
}


def _rating_flat(value: float | None) -> float:
    return 1.0


def _rating_linear(value: float | None) -> float:
    # Scaled so an average MovieLens rating (~3.5) weighs about 1, like "flat".
    return (3.5 if value is None else float(value)) / 3.5


def _rating_boost(value: float | None) -> float:
    # Every rating is a positive; 4 and 5 stars are surer positives.
    return 1.0 + max((3.0 if value is None else float(value)) - 3.0, 0.0)


# Ratings -> confidence. ANCHORS treats every rating as relevant, so no scheme maps a rating
# to zero. "linear" is the default because the iALS baseline's inner-split search picks it on
# both ML-100K protocols; the worker folds in with the default, so it is one fixed choice.
RATING_SCHEMES: dict[str, Callable[[float | None], float]] = {
    "flat": _rating_flat,
    "linear": _rating_linear,
    "boost": _rating_boost,
}
DEFAULT_RATING_SCHEME = "linear"

RatingScheme = str | Callable[[float | None], float]


def rating_fn(scheme: RatingScheme) -> Callable[[float | None], float]:
    """The rating -> confidence function of a scheme name (or the function itself)."""
    if callable(scheme):
        return scheme
    try:
        return RATING_SCHEMES[scheme]
    except KeyError:
        known = sorted(RATING_SCHEMES)
        raise ValueError(f"unknown rating scheme {scheme!r}; known: {known}") from None


def confidence_weight(
    kind: str,
    value: float | None,
    *,
    weights: Mapping[str, float] = CONFIDENCE_WEIGHTS,
    rating_scheme: RatingScheme = DEFAULT_RATING_SCHEME,
) -> float:
    """Non-negative confidence weight of one interaction (0 = not a positive)."""
    if kind == "rate":
        return rating_fn(rating_scheme)(value)
    return float(weights.get(kind, 0.0))
