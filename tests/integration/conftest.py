"""Everything under tests/integration runs against real Milvus and Redis servers."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def item_body(
    title: str, *, categories: list[str], description: str = "", **kw: Any
) -> dict[str, Any]:
    return {"title": title, "description": description, "categories": categories, **kw}


CATALOGUE: dict[str, dict[str, Any]] = {
    "space-1": item_body(
        "Voyage to the outer planets",
        categories=["space"],
        description="Probes explore Jupiter, Saturn and their moons.",
    ),
    "space-2": item_body(
        "Black holes explained",
        categories=["space"],
        description="How event horizons and galaxies shape the universe.",
    ),
    "space-3": item_body(
        "Life on the space station",
        categories=["space"],
        description="Astronauts orbit Earth aboard the ISS.",
    ),
    "space-4": item_body(
        "Telescopes and distant galaxies",
        categories=["space"],
        description="Astronomers observe nebulae and stars light years away.",
    ),
    "cook-1": item_body(
        "Perfect sourdough bread",
        categories=["cooking"],
        description="Bake a crusty loaf with a wild yeast starter.",
    ),
    "cook-2": item_body(
        "Weeknight pasta recipes",
        categories=["cooking"],
        description="Quick Italian dinners with tomato, garlic and basil.",
    ),
    "cook-3": item_body(
        "Mastering French pastry",
        categories=["cooking"],
        description="Croissants, butter and patience in the kitchen.",
    ),
    "cook-4": item_body(
        "Homemade bread and pastry recipes",
        categories=["cooking"],
        description="Bake loaves, croissants and pasta dough in your kitchen.",
    ),
    "horror-1": item_body(
        "The haunted asylum",
        categories=["horror"],
        maturity=18,
        description="A terrifying night among ghosts and blood.",
    ),
    "hidden-1": item_body(
        "Secret space documentary",
        categories=["space"],
        status="hidden",
        description="Rockets and astronauts on a mission to Mars.",
    ),
    "fr-1": item_body(
        "Les étoiles de l'hiver",
        categories=["space"],
        regions=["FR"],
        description="Stars and planets of the winter sky.",
        language="fr",
    ),
}
