"""Deterministic synthetic catalogue ("demo") with readable, topic-specific text.

The text is built from per-category vocabularies so that content similarity is visible even
with a bag-of-words model: two cooking items share far more words than a cooking item and a
football item. Users favour one or two categories, which gives collaborative signals too.
Everything derives from one ``random.Random(seed)``, so the same arguments give the same output.
"""

from __future__ import annotations

import bisect
import csv
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]

# 2025-01-01T00:00:00Z. A constant, not time.time(), so the default output never changes.
DEFAULT_NOW = 1_735_689_600
DAY = 86_400
CATALOGUE_SPAN = 730 * DAY  # items are published over the two years before `now`

HIDDEN_SHARE = 0.02
CROSS_CATEGORY_SHARE = 0.10
FAVOURITE_SHARE = 0.80
MINOR_SHARE = 0.12
ITEMS_PER_CREATOR = 8

# "{adj} {bare}" reads "endangered Amazon rainforest", not "endangered the Amazon rainforest".
_ARTICLE = re.compile(r"^(?:a|an|the) ", re.IGNORECASE)
_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) ([aeiouAEIOU])")
_SMALL_WORDS = frozenset({"a", "an", "the", "of", "and", "in", "on", "to", "with", "for", "by"})
_LANGUAGE_NAMES = {"es": "Spanish", "fr": "French"}


@dataclass(frozen=True)
class Topic:
    """Vocabulary and policy defaults for one demo category."""

    name: str
    subjects: tuple[str, ...]
    adjectives: tuple[str, ...]
    extras: tuple[str, ...]
    formats: tuple[str, ...]
    titles: tuple[str, ...]
    sentences: tuple[str, ...]
    tags: tuple[str, ...]
    maturity: tuple[int, ...] = (0, 0, 7, 12)


TOPICS: tuple[Topic, ...] = (
    Topic(
        name="cooking",
        subjects=("risotto", "sourdough bread", "ramen", "paella", "green curry", "tacos",
                  "lasagna", "dumplings", "croissants", "pad thai", "ratatouille", "pho",
                  "gnocchi", "brisket", "tiramisu", "bouillabaisse"),
        adjectives=("rustic", "crispy", "slow-cooked", "spicy", "creamy", "smoky", "homemade",
                    "five-minute", "vegan", "golden"),
        extras=("garlic", "saffron", "fresh basil", "butter", "chili oil", "sea salt",
                "lemon zest", "parmesan", "ginger", "coriander", "caramelised onions",
                "olive oil", "miso", "smoked paprika"),
        formats=("Recipe", "Kitchen Masterclass", "Chef's Table", "Cook-Along"),
        titles=("{adj} {bare}: {fmt}", "How to Cook {adj} {bare}",
                "{subject} with {extra}", "The {adj} {bare} {fmt}"),
        sentences=("A chef shows how to cook {adj} {bare} with {extra} and {extra2}.",
                   "Learn the kitchen techniques behind {adj} {bare}: seasoning, simmering "
                   "and plating with {extra}.",
                   "Home cooks prepare {subject} from scratch, balancing {extra} and {extra2} "
                   "in a {adj} dinner recipe."),
        tags=("recipe", "chef", "kitchen", "baking", "dinner", "vegetarian", "food"),
        maturity=(0, 0, 0, 7),
    ),
    Topic(
        name="space",
        subjects=("black holes", "the Mars rovers", "the Andromeda galaxy", "exoplanets",
                  "neutron stars", "Saturn's rings", "the James Webb telescope", "solar flares",
                  "the Apollo missions", "dark matter", "comets", "the space station",
                  "supernovae", "Jupiter's moons"),
        adjectives=("distant", "cosmic", "mysterious", "infinite", "interstellar", "hidden",
                    "violent", "frozen", "ancient", "glowing"),
        extras=("telescopes", "astronauts", "orbits", "gravity", "nebulae", "rocket launches",
                "light-years", "galaxies", "astronomers", "spacecraft"),
        formats=("Space Documentary", "Explained", "Deep Dive", "Night Sky Guide"),
        titles=("{adj} {bare}: {fmt}", "Journey to {subject}", "The Secrets of {subject}",
                "{subject}, {extra} and the Universe"),
        sentences=("Astronomers explore {subject}, from {adj} {extra} to the {extra2} that "
                   "shape our universe.",
                   "A space documentary about {subject}, with telescope imagery of {extra} and "
                   "{extra2}.",
                   "How {extra} and {extra2} reveal the {adj} physics of {subject} in deep space."),
        tags=("astronomy", "space", "nasa", "science", "planets", "telescope", "cosmos"),
        maturity=(0, 0, 7),
    ),
    Topic(
        name="football",
        subjects=("the Champions League final", "the derby", "the World Cup",
                  "penalty shootouts", "the title race", "a relegation battle",
                  "goalkeeper saves", "free kicks", "the transfer window", "youth academies",
                  "counter-attacks", "high pressing"),
        adjectives=("dramatic", "legendary", "last-minute", "unbeaten", "fierce", "historic",
                    "stunning", "tactical"),
        extras=("strikers", "midfielders", "goalkeepers", "managers", "supporters", "stadiums",
                "goals", "defenders", "referees", "trophies"),
        formats=("Highlights", "Tactics Breakdown", "Match Review", "Season Review", "Top 10"),
        titles=("{adj} {bare}: {fmt}", "Inside {subject}", "{fmt}: {subject}",
                "The {adj} Story of {subject}"),
        sentences=("Relive {subject} with {adj} goals, {extra} and {extra2} from the pitch.",
                   "A football analysis of {subject}: how {extra} and {extra2} decided the match.",
                   "Supporters and {extra} recall the {adj} moments of {subject} in the stadium."),
        tags=("football", "soccer", "goals", "league", "match", "sports", "tactics"),
        maturity=(0, 0, 7),
    ),
    Topic(
        name="jazz",
        subjects=("bebop", "modal jazz", "the tenor saxophone", "swing bands", "jazz piano",
                  "trumpet solos", "big band arrangements", "cool jazz", "the double bass",
                  "New Orleans brass bands", "vocal jazz standards", "hard bop"),
        adjectives=("smoky", "late-night", "swinging", "soulful", "improvised", "mellow",
                    "legendary", "virtuosic"),
        extras=("saxophonists", "trumpeters", "drummers", "pianists", "chord changes",
                "blue notes", "melodies", "jazz clubs", "rhythm sections", "vinyl records"),
        formats=("Live Session", "Listening Guide", "Concert", "Jazz Masterclass"),
        titles=("{adj} {bare}: {fmt}", "A Night of {subject}", "The Sound of {subject}",
                "{subject} and {extra}"),
        sentences=("A {adj} live session of {subject}, featuring {extra} and {extra2} trading "
                   "solos.",
                   "The history of {subject}: how {extra} shaped jazz, from {adj} club nights "
                   "to classic records.",
                   "Jazz musicians break down {subject}, improvising over {extra} with {adj} "
                   "swing."),
        tags=("jazz", "music", "saxophone", "live", "improvisation", "piano", "concert"),
        maturity=(0, 0, 7),
    ),
    Topic(
        name="wildlife",
        subjects=("African elephants", "snow leopards", "humpback whales", "grey wolves",
                  "coral reefs", "orangutans", "bald eagles", "cheetahs", "sea turtles",
                  "emperor penguins", "grizzly bears", "the Amazon rainforest",
                  "migrating wildebeest"),
        adjectives=("wild", "endangered", "majestic", "elusive", "untamed", "fragile", "remote",
                    "nocturnal"),
        extras=("predators", "habitats", "herds", "savannas", "forests", "conservation", "cubs",
                "oceans", "rangers", "nature reserves"),
        formats=("Nature Documentary", "Safari", "Field Diary", "Wild Planet"),
        titles=("{adj} {bare}: {fmt}", "The Secret Life of {subject}",
                "Among {subject}", "{subject} in the Wild"),
        sentences=("A nature documentary following {adj} {bare} through {extra} and "
                   "{extra2}.",
                   "Wildlife filmmakers track {subject} in the wild, revealing how {extra} and "
                   "{extra2} survive.",
                   "Conservation rangers protect {adj} {bare} and their {extra} from "
                   "poaching and habitat loss."),
        tags=("wildlife", "nature", "animals", "conservation", "safari", "ocean", "habitat"),
        maturity=(0, 0, 7),
    ),
    Topic(
        name="history",
        subjects=("the Roman Empire", "the French Revolution", "ancient Egypt", "the Vikings",
                  "the Ottoman Empire", "medieval castles", "the Silk Road", "the Renaissance",
                  "the Cold War", "the Aztec Empire", "the Industrial Revolution",
                  "ancient Greece", "the samurai"),
        adjectives=("forgotten", "ancient", "turbulent", "lost", "medieval", "epic", "untold",
                    "imperial"),
        extras=("emperors", "kings", "battles", "dynasties", "archaeologists", "manuscripts",
                "armies", "revolutions", "pharaohs", "treaties"),
        formats=("History Documentary", "Chronicles", "History Lecture", "Untold Story"),
        titles=("{adj} {bare}: {fmt}", "The Fall of {subject}", "The Rise of {subject}",
                "{subject}: {extra} and {extra2}"),
        sentences=("Historians retell the {adj} story of {subject}, its {extra} and {extra2}.",
                   "Archaeologists uncover {subject}: {adj} {extra}, ruined temples and "
                   "{extra2} from centuries past.",
                   "A history lecture on how {extra} and {extra2} changed {subject}."),
        tags=("history", "ancient", "empire", "war", "archaeology", "civilization", "medieval"),
        maturity=(7, 12, 12, 0),
    ),
    Topic(
        name="programming",
        subjects=("Python", "Rust", "JavaScript", "Go", "SQL databases", "Kubernetes", "Git",
                  "React", "unit testing", "sorting algorithms", "data structures",
                  "compilers", "web APIs", "shell scripting"),
        adjectives=("practical", "advanced", "beginner-friendly", "fast", "modern", "clean",
                    "concurrent", "scalable"),
        extras=("functions", "variables", "debugging", "refactoring", "code reviews",
                "type systems", "performance profiling", "open source", "async code",
                "error handling"),
        formats=("Tutorial", "Crash Course", "Coding Workshop", "Live Coding"),
        titles=("{adj} {bare}: {fmt}", "Learn {subject} in One Hour",
                "{subject} for Developers", "{fmt}: {subject} and {extra}"),
        sentences=("A {adj} coding tutorial on {subject}: write, test and debug real code "
                   "with {extra} and {extra2}.",
                   "Software engineers explain {subject}, from {extra} to {extra2}, with "
                   "hands-on code examples.",
                   "Learn {subject} by building a {adj} software project, covering {extra} and "
                   "{extra2}."),
        tags=("programming", "coding", "software", "developer", "tutorial", "open-source"),
        maturity=(0, 0, 0, 12),
    ),
    Topic(
        name="fitness",
        subjects=("HIIT workouts", "yoga flows", "kettlebell training", "marathon running",
                  "core strength", "pilates", "stretching routines", "bodyweight circuits",
                  "cycling intervals", "strength training", "mobility drills", "boxing cardio"),
        adjectives=("intense", "20-minute", "full-body", "low-impact", "morning",
                    "fat-burning", "beginner", "advanced"),
        extras=("squats", "push-ups", "planks", "lunges", "cardio", "muscles", "endurance",
                "breathing", "warm-ups", "recovery"),
        formats=("Workout", "Training Plan", "Fitness Class", "30-Day Challenge"),
        titles=("{adj} {bare}: {fmt}", "{subject} at Home", "{fmt}: {subject}",
                "{subject} with {extra}"),
        sentences=("A {adj} workout built around {subject}, with {extra} and {extra2} to "
                   "build strength.",
                   "Personal trainers guide you through {subject}: warm-up, {extra}, {extra2} "
                   "and cool-down.",
                   "Burn calories and improve endurance with {adj} {bare} and sets of "
                   "{extra}."),
        tags=("fitness", "workout", "training", "health", "exercise", "cardio", "strength"),
        maturity=(0, 0, 0, 7),
    ),
    Topic(
        name="travel",
        subjects=("Lisbon", "Kyoto", "the Scottish Highlands", "Patagonia", "Marrakech",
                  "Iceland", "the Amalfi Coast", "Vietnam", "New Zealand", "Peru",
                  "the Greek islands", "Istanbul", "the Canadian Rockies"),
        adjectives=("hidden", "unforgettable", "budget", "scenic", "off-the-beaten-path",
                    "coastal", "vibrant", "weekend"),
        extras=("beaches", "old towns", "street markets", "hiking trails", "local food",
                "hostels", "train journeys", "viewpoints", "museums", "backpackers"),
        formats=("Travel Guide", "Road Trip", "Itinerary", "Travel Diary"),
        titles=("{adj} {bare}: {fmt}", "Seven Days in {subject}", "Discovering {subject}",
                "{subject} on a Budget"),
        sentences=("A {adj} travel guide to {subject}: {extra}, {extra2} and where to stay.",
                   "Backpackers explore {subject} on a budget, from {extra} to {extra2}.",
                   "Plan a {adj} trip through {subject} with tips on {extra}, flights and "
                   "{extra2}."),
        tags=("travel", "adventure", "destinations", "tourism", "backpacking", "vacation"),
        maturity=(0, 0, 0, 7),
    ),
    Topic(
        name="horror",
        subjects=("a haunted house", "a cursed doll", "the abandoned asylum",
                  "a demonic possession", "the night shift", "a cabin in the woods",
                  "the vampire", "the zombie outbreak", "an exorcism", "a masked killer",
                  "a ghost ship", "the basement"),
        adjectives=("terrifying", "bloody", "sinister", "haunted", "nightmarish", "creepy",
                    "deadly", "possessed"),
        extras=("screams", "shadows", "ghosts", "demons", "blood", "curses", "monsters",
                "nightmares", "victims", "graveyards"),
        formats=("Horror Film", "Midnight Screening", "Terror Tales", "Slasher"),
        titles=("{adj} {bare}: {fmt}", "{subject}: the Last Night", "Night of {subject}",
                "{subject} Returns"),
        sentences=("A {adj} horror film: {subject} unleashes {extra} and {extra2} on a "
                   "terrified family.",
                   "Survivors face {subject} as {extra} and {extra2} haunt them through one "
                   "{adj} night.",
                   "Terror, {extra} and {extra2} in this {adj} story about {subject}."),
        tags=("horror", "scary", "thriller", "supernatural", "gore", "slasher"),
        maturity=(16, 16, 18),
    ),
    Topic(
        name="animation",
        subjects=("a brave little dragon", "the talking animals", "the friendly robot",
                  "a magical unicorn", "the puppy detectives", "a pirate crew",
                  "the sleepy bear", "a dinosaur family", "the rainbow fairies",
                  "a tiny spaceship crew", "the singing vegetables"),
        adjectives=("cheerful", "funny", "magical", "colourful", "silly", "adventurous",
                    "cuddly", "musical"),
        extras=("friendship", "songs", "games", "sharing", "bedtime stories", "playgrounds",
                "colours", "counting", "giggles", "kindness"),
        formats=("Cartoon", "Animated Series", "Sing-Along", "Bedtime Story"),
        titles=("{adj} {bare}: {fmt}", "The Adventures of {subject}",
                "{subject} and the Magic of {extra}", "{fmt} with {subject}"),
        sentences=("A {adj} cartoon for kids about {subject}, {extra} and {extra2}.",
                   "Children follow {subject} on a {adj} animated adventure full of {extra} "
                   "and {extra2}.",
                   "Preschool fun with {subject}, {extra}, {extra2} and a {adj} song."),
        tags=("kids", "cartoon", "animation", "family", "children", "preschool"),
        maturity=(0,),
    ),
    Topic(
        name="finance",
        subjects=("index funds", "the stock market", "retirement savings", "cryptocurrency",
                  "personal budgeting", "inflation", "real estate investing",
                  "dividend stocks", "interest rates", "credit scores", "government bonds",
                  "startup valuation"),
        adjectives=("smart", "long-term", "beginner's", "risky", "passive", "practical",
                    "recession-proof", "simple"),
        extras=("portfolios", "investors", "savings accounts", "compound interest",
                "diversification", "taxes", "debt", "returns", "market crashes", "banks"),
        formats=("Money Guide", "Investing Explained", "Market Outlook", "Finance Podcast"),
        titles=("{adj} {bare}: {fmt}", "{subject} Explained", "Your Money and {subject}",
                "{fmt}: {subject} and {extra}"),
        sentences=("A {adj} guide to {subject}: how investors manage {extra} and {extra2}.",
                   "Financial analysts explain {subject}, {extra} and {extra2} for your money.",
                   "Build wealth with {adj} {bare}, covering {extra}, {extra2} and risk."),
        tags=("finance", "investing", "money", "stocks", "economics", "savings"),
        maturity=(0, 0, 0, 12),
    ),
)  # fmt: skip

CATEGORIES: tuple[str, ...] = tuple(t.name for t in TOPICS)
_TOPIC_BY_NAME = {t.name: t for t in TOPICS}

# (type, weight). Weights follow real funnels: view > click > watch > like > purchase; negative
# feedback (skip, dislike) only shows up on items outside the user's favourites.
_FAVOURITE_EVENTS: tuple[tuple[str, float], ...] = (
    ("view", 40), ("click", 25), ("watch", 18), ("like", 10), ("rate", 3), ("purchase", 4),
)  # fmt: skip
_OTHER_EVENTS: tuple[tuple[str, float], ...] = (
    ("view", 45), ("click", 22), ("watch", 8), ("like", 3), ("skip", 12), ("dislike", 10),
)  # fmt: skip

# (language, share) for items and users; region restrictions per item language, where an
# empty regions list means "available everywhere".
_ITEM_LANGUAGES: tuple[tuple[str, float], ...] = (("en", 0.8), ("es", 0.1), ("fr", 0.1))
_RESTRICTIONS: dict[str, tuple[list[str], ...]] = {
    "en": (["US"], ["US"], ["GB", "IE"]),
    "es": (["ES", "MX"], ["ES"]),
    "fr": (["FR", "BE"], ["FR"]),
}
_RESTRICTED_SHARE = {"en": 0.08, "es": 0.35, "fr": 0.35}
_USER_REGIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "en": (("US", 0.5), ("GB", 0.25), ("CA", 0.1), ("IE", 0.05), ("AU", 0.1)),
    "es": (("ES", 0.6), ("MX", 0.4)),
    "fr": (("FR", 0.7), ("BE", 0.3)),
}


# --------------------------------------------------------------------------- public API


def generate_demo(
    seed: int = 7, n_items: int = 600, n_users: int = 200, now: int = DEFAULT_NOW
) -> tuple[list[Record], list[Record], list[Record]]:
    """Return deterministic synthetic (items, users, interactions) in the canonical shapes."""
    if n_items < 1 or n_users < 0:
        raise ValueError("n_items must be >= 1 and n_users >= 0")
    rng = random.Random(seed)
    items = _generate_items(rng, n_items, now)
    users = [_generate_user(rng, i, now) for i in range(1, n_users + 1)]
    interactions = _generate_interactions(rng, items, users, now)
    return items, users, interactions


def write_demo(dir: Path, **kw: Any) -> Path:
    """Write ``generate_demo(**kw)`` in the generic format into ``dir`` and return it."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    items, users, interactions = generate_demo(**kw)
    _write_jsonl(out / "items.jsonl", items)
    _write_jsonl(out / "users.jsonl", users)
    _write_interactions(out / "interactions.csv", interactions)
    return out


# --------------------------------------------------------------------------- items


def _title_case(text: str) -> str:
    """Capitalise words except short joiners; str.title() would mangle "chef's" -> "Chef'S"."""
    out: list[str] = []
    for word in text.split(" "):
        # A joiner stays lowercase unless it starts the title or follows a colon.
        keep = bool(out) and not out[-1].endswith(":") and word.lower() in _SMALL_WORDS
        out.append(word if keep or not word else word[0].upper() + word[1:])
    return " ".join(out)


def _fill(template: str, topic: Topic, rng: random.Random, subject: str, adj: str) -> str:
    """Fill one title/sentence template with words from ``topic``."""
    extra, extra2 = rng.sample(topic.extras, 2)
    text = template.format(
        subject=subject,
        bare=_ARTICLE.sub("", subject),
        adj=adj,
        extra=extra,
        extra2=extra2,
        fmt=rng.choice(topic.formats),
    )
    return _A_BEFORE_VOWEL.sub(r"\1n \2", text)


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def _unique_title(rng: random.Random, topic: Topic, used: set[str]) -> tuple[str, str, str]:
    """Pick (title, subject, adjective) whose title is not in ``used`` yet."""
    for _ in range(50):
        subject, adj = rng.choice(topic.subjects), rng.choice(topic.adjectives)
        title = _title_case(_fill(rng.choice(topic.titles), topic, rng, subject, adj))
        if title not in used:
            return title, subject, adj
    # Vocabulary exhausted (only for very large n_items): number the sequel instead.
    n = 2
    while f"{title} {n}" in used:
        n += 1
    return f"{title} {n}", subject, adj


def _description(
    rng: random.Random, topic: Topic, subject: str, adj: str, other: Topic | None
) -> str:
    """One or two sentences from ``topic``; cross-category items borrow a clause from ``other``."""
    first, second = rng.sample(topic.sentences, 2)
    parts = [_fill(first, topic, rng, subject, adj)]
    if other is not None:
        o_subject, o_extra = rng.choice(other.subjects), rng.choice(other.extras)
        parts.append(f"It also explores {o_subject} and {o_extra}.")
    elif rng.random() < 0.5:
        parts.append(_fill(second, topic, rng, subject, adj))
    return " ".join(_sentence_case(p) for p in parts)


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*options, strict=True)
    return rng.choices(names, weights=weights)[0]


def _item_locale(rng: random.Random) -> tuple[str, list[str]]:
    """Pick (language, regions) for an item: mostly English and unrestricted."""
    language = _weighted(rng, _ITEM_LANGUAGES)
    regions: list[str] = []
    if rng.random() < _RESTRICTED_SHARE[language]:
        regions = list(rng.choice(_RESTRICTIONS[language]))
    return language, regions


def _creator_pools(n_items: int) -> dict[str, list[str]]:
    """Category -> creator ids; each creator publishes in one category (about 8 items each)."""
    n_creators = max(len(TOPICS), round(n_items / ITEMS_PER_CREATOR))
    pools: dict[str, list[str]] = {t.name: [] for t in TOPICS}
    for i in range(n_creators):
        pools[TOPICS[i % len(TOPICS)].name].append(f"creator-{i + 1:03d}")
    return pools


def _generate_items(rng: random.Random, n_items: int, now: int) -> list[Record]:
    """Build ``n_items`` items spread evenly over the categories."""
    primaries = [TOPICS[i % len(TOPICS)] for i in range(n_items)]
    rng.shuffle(primaries)
    pools = _creator_pools(n_items)
    hidden = set(rng.sample(range(n_items), round(n_items * HIDDEN_SHARE)))
    used: set[str] = set()
    items = []
    for index, topic in enumerate(primaries):
        item = _generate_item(rng, index, topic, pools[topic.name], used, now)
        item["status"] = "hidden" if index in hidden else "active"
        items.append(item)
    return items


def _generate_item(
    rng: random.Random, index: int, topic: Topic, creators: list[str], used: set[str], now: int
) -> Record:
    """Build one ITEM of ``topic`` (status is set by the caller)."""
    other: Topic | None = None
    if rng.random() < CROSS_CATEGORY_SHARE:
        other = rng.choice([t for t in TOPICS if t is not topic])
    title, subject, adj = _unique_title(rng, topic, used)
    used.add(title)
    language, regions = _item_locale(rng)
    description = _description(rng, topic, subject, adj, other)
    if language in _LANGUAGE_NAMES:
        description += f" Presented in {_LANGUAGE_NAMES[language]}."
    tags = rng.sample(topic.tags, rng.randint(2, 3))
    if other is not None:
        tags.append(rng.choice(other.tags))
    # Earlier creators in a pool publish more, like real channels (a skewed distribution).
    weights = [1.0 / (rank + 1) for rank in range(len(creators))]
    return {
        "item_id": f"demo-{index + 1:04d}",
        "title": title,
        "description": description,
        "categories": [topic.name] + ([other.name] if other else []),
        "tags": list(dict.fromkeys(tags)),
        "language": language,
        "regions": regions,
        "maturity": rng.choice(topic.maturity),
        "published_at": now - rng.randint(0, CATALOGUE_SPAN),
        "status": "active",
        "creator_id": rng.choices(creators, weights=weights)[0],
    }


# --------------------------------------------------------------------------- users


def _generate_user(rng: random.Random, index: int, now: int) -> Record:
    """Build one USER with 1-2 favourite categories; minors never favour horror."""
    year = datetime.fromtimestamp(now, tz=UTC).year
    minor = rng.random() < MINOR_SHARE
    age = rng.randint(10, 17) if minor else rng.randint(18, 70)
    choices = [c for c in CATEGORIES if not (minor and c == "horror")]
    favourites = rng.sample(choices, rng.choice((1, 2)))
    language = _weighted(rng, _ITEM_LANGUAGES)
    return {
        "user_id": f"u-{index:04d}",
        "language": language,
        "region": _weighted(rng, _USER_REGIONS[language]),
        "birth_year": year - age,
        "preferences": {"categories": favourites},
    }


# --------------------------------------------------------------------------- interactions


@dataclass
class _Pool:
    """Items sorted by publication time, so "published before t" is a bisect."""

    items: list[Record]
    times: list[int]

    @classmethod
    def of(cls, items: list[Record]) -> _Pool:
        ordered = sorted(items, key=lambda it: (it["published_at"], it["item_id"]))
        return cls(ordered, [it["published_at"] for it in ordered])

    def pick(self, rng: random.Random, before: float) -> Record | None:
        available = bisect.bisect_right(self.times, before)
        return self.items[rng.randrange(available)] if available else None


def _eligible(item: Record, user: Record, age: int) -> bool:
    """Would the policy layer ever show ``item`` to ``user``?"""
    regions = item["regions"]
    return (
        item["status"] == "active"
        and item["maturity"] <= age
        and (not regions or user["region"] in regions)
    )


def _event_value(rng: random.Random, kind: str, favourite: bool) -> float | None:
    """Rating for "rate" (1-5), completion ratio for "watch" (0-1), else None."""
    if kind == "rate":
        return float(rng.choice((3, 4, 4, 5, 5)) if favourite else rng.choice((1, 2, 3)))
    if kind == "watch":
        low, high = (0.5, 1.0) if favourite else (0.05, 0.6)
        return round(rng.uniform(low, high), 2)
    return None


def _user_timestamps(rng: random.Random, count: int, now: int) -> list[float]:
    """Strictly increasing whole-second timestamps within the user's active period."""
    start = now - rng.randint(60 * DAY, 540 * DAY)
    offsets = sorted(rng.sample(range(now - start), count))
    return [float(start + offset) for offset in offsets]


def _user_interactions(
    rng: random.Random, user: Record, items: list[Record], now: int
) -> list[Record]:
    """25-60 events, ~80% on favourite-category items, never before an item was published."""
    age = datetime.fromtimestamp(now, tz=UTC).year - user["birth_year"]
    favourites = set(user["preferences"]["categories"])
    eligible = [it for it in items if _eligible(it, user, age)]
    liked = _Pool.of([it for it in eligible if favourites & set(it["categories"])])
    others = _Pool.of([it for it in eligible if not favourites & set(it["categories"])])
    events = []
    for ts in _user_timestamps(rng, rng.randint(25, 60), now):
        favourite = rng.random() < FAVOURITE_SHARE
        item = (liked if favourite else others).pick(rng, ts)
        if item is None:  # nothing published yet in that pool; fall back to the other one
            favourite = not favourite
            item = (liked if favourite else others).pick(rng, ts)
        if item is None:
            continue
        kind = _weighted(rng, _FAVOURITE_EVENTS if favourite else _OTHER_EVENTS)
        events.append(
            {
                "user_id": user["user_id"],
                "item_id": item["item_id"],
                "type": kind,
                "value": _event_value(rng, kind, favourite),
                "timestamp": ts,
            }
        )
    return events


def _generate_interactions(
    rng: random.Random, items: list[Record], users: list[Record], now: int
) -> list[Record]:
    """All users' events merged into one log ordered by time."""
    events = [ev for user in users for ev in _user_interactions(rng, user, items, now)]
    events.sort(key=lambda ev: (ev["timestamp"], ev["user_id"]))
    return events


# --------------------------------------------------------------------------- writing


def _write_jsonl(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_interactions(path: Path, interactions: list[Record]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "type", "value", "timestamp"])
        for ev in interactions:
            value = "" if ev["value"] is None else repr(ev["value"])
            writer.writerow([ev["user_id"], ev["item_id"], ev["type"], value, int(ev["timestamp"])])
