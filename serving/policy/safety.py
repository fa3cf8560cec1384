"""Rule 1, safety and availability: the hard filters every result passes, on every path.

Whichever source, cache or fallback produced a candidate, it is dropped when it is deleted or
hidden, above the user's maturity ceiling, unavailable in their region, in a language they do
not read, already seen, or disliked. Nothing later in the policy can bring it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from serving.retrieval import Candidate, speaks


@dataclass(frozen=True)
class HardFilters:
    """What `allowed` checks; built once per request."""

    max_maturity: int
    region: str | None = None
    language: str | None = None  # the user's language (None: every language)
    tombstoned: Set[str] = field(default_factory=frozenset)
    exclude: Set[str] = field(default_factory=frozenset)
    # (categories, creators) the user said they are not interested in (core/stores/controls)
    unwanted: tuple[Set[str], Set[str]] | None = None

    @property
    def visibility(self) -> dict[str, Any]:
        """The arguments of `visible`: what may never reach this user."""
        return {"max_maturity": self.max_maturity, "region": self.region}

    @property
    def checks(self) -> dict[str, Any]:
        """The arguments of `allowed` (and of `apply_policy`'s hard filters)."""
        return {
            **self.visibility,
            "tombstoned": self.tombstoned,
            "exclude": self.exclude,
            "language": self.language,
            "unwanted": self.unwanted,
        }


def allowed(
    c: Candidate,
    *,
    max_maturity: int,
    region: str | None,
    tombstoned: Set[str],
    exclude: Set[str],
    language: str | None = None,
    unwanted: tuple[Set[str], Set[str]] | None = None,
) -> bool:
    """Safety and availability rules, and the user's own "not interested"; a candidate
    failing any of them is never returned."""
    f = c.fields
    if c.item_id in tombstoned or c.item_id in exclude:
        return False
    if not visible(f, max_maturity=max_maturity, region=region):
        return False
    if unwanted is not None and not_wanted(f, unwanted):
        return False
    return not language or speaks(language, str(f.get("language") or "und"))


def not_wanted(fields: Mapping[str, Any], unwanted: tuple[Set[str], Set[str]]) -> bool:
    """Whether an item is in a category or by a creator the user is not interested in."""
    cats = set(fields.get("categories") or []) | {str(fields.get("category") or "")}
    return bool(cats & set(unwanted[0])) or str(fields.get("creator_id") or "") in unwanted[1]


def visible(fields: Mapping[str, Any], *, max_maturity: int, region: str | None) -> bool:
    """Whether a user with this maturity ceiling and region may see an item at all (status,
    maturity, regions): what may never reach them in any field, context items included."""
    if fields.get("status", "active") != "active":
        return False
    if int(fields.get("maturity", 0)) > max_maturity:
        return False
    regions = fields.get("regions") or []
    # Fail closed: a user whose region is unknown only sees items available everywhere.
    return not regions or region in regions


def passes(c: Candidate, hf: HardFilters) -> bool:
    return allowed(
        c,
        max_maturity=hf.max_maturity,
        region=hf.region,
        tombstoned=hf.tombstoned,
        exclude=hf.exclude,
        language=hf.language,
        unwanted=hf.unwanted,
    )


def apply_policy(
    candidates: Sequence[Candidate],
    *,
    limit: int,
    max_maturity: int,
    region: str | None,
    tombstoned: Set[str],
    exclude: Set[str],
    language: str | None = None,
    unwanted: tuple[Set[str], Set[str]] | None = None,
) -> list[Candidate]:
    """Keep the allowed candidates in their given order, at most `limit` of them."""
    kept = [
        c
        for c in candidates
        if allowed(
            c,
            max_maturity=max_maturity,
            region=region,
            tombstoned=tombstoned,
            exclude=exclude,
            language=language,
            unwanted=unwanted,
        )
    ]
    return kept[:limit]
