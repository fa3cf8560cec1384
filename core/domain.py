"""Domain records shared by the API (validation) and the workers (decoding events).

Every id, string and list has a bound, so nothing unbounded reaches Redis or Milvus.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}$"
Id = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN),
    Field(description="1-128 chars: letters, digits and . _ : @ - (first char alphanumeric)"),
]
# A guest's session (before sign-in) is stored like a user under an owner id no user id can
# take: `~s:<session id>` (a user id starts with a letter or digit).
SESSION_PREFIX = "~s:"
OWNER_PATTERN = r"^(~s:)?[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}$"
OwnerId = Annotated[
    str,
    StringConstraints(pattern=OWNER_PATTERN),
    Field(description="a user id, or `~s:<session id>` for a guest's session"),
]


def session_owner(session_id: str) -> str:
    """The owner id a session's state is kept under."""
    return SESSION_PREFIX + session_id


def is_session(owner: str) -> bool:
    return owner.startswith(SESSION_PREFIX)


def session_of(owner: str) -> str | None:
    """The session id of a session's owner id (None for a user)."""
    return owner[len(SESSION_PREFIX) :] if is_session(owner) else None


# C0 controls, DEL and C1 controls are refused in text: invisible, they break logs, terminals
# and CSV exports. Patterns rather than validators, so the OpenAPI schema states the rule.
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
TEXT_PATTERN = rf"^[^{_CONTROLS}]*$"
# ... and with at least one character that is not a space (fields that are stripped).
NONBLANK_PATTERN = rf"^[^{_CONTROLS}]*[^\s{_CONTROLS}][^{_CONTROLS}]*$"
# Multi-line text keeps tab, line feed and carriage return.
MULTILINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

Label = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=64,
        pattern=NONBLANK_PATTERN,
    ),
]
Region = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{2}$")]
Language = Annotated[
    str,
    StringConstraints(to_lower=True, pattern=r"^([a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})?|und)$"),
    Field(description="ISO 639 code such as 'en' or 'pt-br'; 'und' when unknown"),
]

InteractionType = Literal["view", "click", "watch", "like", "dislike", "skip", "purchase", "rate"]
INTERACTION_TYPES: tuple[str, ...] = get_args(InteractionType)

# How strongly each event says "more like this". Negative events push a profile away.
EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "watch": 2.0,
    "like": 3.0,
    "purchase": 4.0,
    "skip": -0.5,
    "dislike": -3.0,
}
MAX_MATURITY = 18


def _json_number(v: object) -> object:
    # JSON has numbers: "18" and true are not 18 or 1, whatever Python would coerce.
    # (An integral float such as 18.0 is a JSON Schema integer and stays accepted.)
    if isinstance(v, bool):
        raise PydanticCustomError("number_type", "must be a number, not true or false")
    if isinstance(v, str | bytes):
        raise PydanticCustomError("number_type", "must be a number, not a string")
    return v


# Numbers as JSON has them; every numeric field of a request uses these. With bounds, put
# them after the Field: `Annotated[int, Field(ge=1), JSON_NUMBER]` (the schema keeps them).
JSON_NUMBER = BeforeValidator(_json_number)
Int = Annotated[int, JSON_NUMBER]
Number = Annotated[float, JSON_NUMBER]


# The devices a request or an interaction may name (experiment targeting, ranker context).
Device = Literal["mobile", "tablet", "web", "desktop", "tv", "console", "other"]
MAX_RATING = 5.0


def interaction_weight(kind: str, value: float | None) -> float:
    """Signed preference strength of one interaction (ratings: 1-2 negative, 3-5 positive)."""
    if kind == "rate":
        v = min(max(3.0 if value is None else float(value), 0.0), MAX_RATING)
        return (v - 2.5) / 1.25 if v >= 2.5 else (v - 2.5)
    return EVENT_WEIGHTS[kind]


# Custom item attributes (declared per catalogue, core/settings.py CatalogSettings).
MAX_ATTRIBUTES = 32
ATTRIBUTE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
AttributeName = Annotated[str, StringConstraints(pattern=ATTRIBUTE_NAME_PATTERN)]
AttributeValue = (
    StrictBool
    | Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False), JSON_NUMBER]
    | Annotated[str, StringConstraints(max_length=256, pattern=TEXT_PATTERN)]
    | Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=TEXT_PATTERN)]],
        Field(max_length=50),
    ]
)


class ItemFields(BaseModel):
    """Everything about an item except its id (the body of `PUT /v1/items/{item_id}`)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=500, pattern=NONBLANK_PATTERN
        ),
    ]
    description: Annotated[str, StringConstraints(max_length=5000, pattern=MULTILINE_PATTERN)] = ""
    categories: list[Label] = Field(default_factory=list, max_length=20)
    tags: list[Label] = Field(default_factory=list, max_length=50)
    language: Language = "und"
    regions: list[Region] = Field(
        default_factory=list, max_length=250, description="empty = available everywhere"
    )
    maturity: Int = Field(0, ge=0, le=MAX_MATURITY, description="minimum viewer age")
    # Negative values are real: films and books from before 1970.
    published_at: Int = Field(
        0, ge=-62_135_596_800, le=32_503_680_000, description="unix seconds (0 when unknown)"
    )
    status: Literal["active", "hidden"] = "active"
    creator_id: Annotated[str, StringConstraints(max_length=128, pattern=TEXT_PATTERN)] = ""
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="custom attributes declared for the catalogue (VANTAGE_CATALOG__ATTRIBUTES: "
        "name -> string, number, boolean or list), usable in `filter=` as `attr.<name>`",
    )

    @field_validator("categories", "tags", "regions")
    @classmethod
    def _dedupe(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @property
    def category(self) -> str:
        """The primary category (first listed), used by scalar filters."""
        return self.categories[0] if self.categories else ""


class Item(ItemFields):
    item_id: Id


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories: list[Label] = Field(default_factory=list, max_length=50)


class UserFields(BaseModel):
    """The body of `PUT /v1/users/{user_id}`."""

    model_config = ConfigDict(extra="forbid")

    language: Language | None = None
    region: Region | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100), JSON_NUMBER] | None = Field(
        None, description="at most the current year (the schema states it)"
    )
    preferences: Preferences = Field(default_factory=Preferences)

    @field_validator("birth_year")
    @classmethod
    def _not_future(cls, v: int | None) -> int | None:
        if v is not None and v > time.gmtime().tm_year:
            raise ValueError("birth_year is in the future")
        return v


class User(UserFields):
    user_id: Id


class InteractionFields(BaseModel):
    """What an interaction says besides whose it is."""

    model_config = ConfigDict(
        extra="forbid",
        # The schema states the rating range too (OpenAPI 3.1 is JSON Schema 2020-12).
        json_schema_extra={
            "if": {"properties": {"type": {"const": "rate"}}, "required": ["type"]},
            "then": {
                "properties": {
                    "value": {
                        "anyOf": [
                            {"type": "number", "minimum": 0, "maximum": MAX_RATING},
                            {"type": "null"},
                        ]
                    }
                }
            },
        },
    )

    item_id: Id
    type: InteractionType
    value: Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False), JSON_NUMBER] | None = None
    surface: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None = None
    recommendation_id: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None
    ) = None
    timestamp: Annotated[float, Field(ge=0, allow_inf_nan=False), JSON_NUMBER] | None = Field(
        None, description="unix seconds; default: now; at most the end of tomorrow (UTC)"
    )
    device: Device | None = Field(
        None,
        description="the device the user was on; kept with the history item for the ranker's "
        "device habit feature (what this user takes on the device a request names)",
    )

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    @model_validator(mode="after")
    def _rating_in_range(self) -> InteractionFields:
        # One request must not be able to outweigh thousands of real events.
        if self.type == "rate" and self.value is not None and not 0 <= self.value <= MAX_RATING:
            raise ValueError(f"value of a rate event must be between 0 and {MAX_RATING:g}")
        return self

    @field_validator("timestamp")
    @classmethod
    def _not_far_future(cls, v: float | None) -> float | None:
        if v is not None and v > latest_timestamp():
            raise ValueError("timestamp is after the end of tomorrow (UTC)")
        return v

    @property
    def weight(self) -> float:
        return interaction_weight(self.type, self.value)


class Interaction(InteractionFields):
    """One interaction as the workers apply it: `user_id` is its owner, a user or a guest's
    session (`~s:<session id>`)."""

    user_id: OwnerId
    merged_from: OwnerId | None = Field(
        None,
        description="a copy of a session's event folded into the user at a merge: its "
        "popularity, trending and clicks were counted when the session sent it",
    )


_ID_SCHEMA = {"type": "string", "pattern": ID_PATTERN, "maxLength": 128}


class UserInteraction(InteractionFields):
    """A signed-in user's interaction (a bulk import's rows: no sessions there)."""

    user_id: Id

    def internal(self) -> Interaction:
        return Interaction.model_validate(self.model_dump())


class InteractionIn(InteractionFields):
    """One interaction event as accepted by `POST /v1/interactions`: a signed-in user's
    (`user_id`) or a guest's (`session_id`), never both."""

    model_config = ConfigDict(
        json_schema_extra={
            **InteractionFields.model_config.get("json_schema_extra", {}),  # type: ignore[dict-item]
            "oneOf": [{"required": ["user_id"]}, {"required": ["session_id"]}],
        }
    )

    # Left out rather than null (the schema says string): `_not_null` refuses an explicit null.
    user_id: Annotated[Id | None, WithJsonSchema(_ID_SCHEMA)] = Field(
        None, description="a signed-in user (instead of session_id)"
    )
    session_id: Annotated[Id | None, WithJsonSchema(_ID_SCHEMA)] = Field(
        None,
        description="a guest's session before sign-in (instead of user_id): its events "
        "personalise the session's lists at once and expire with it (sessions.ttl_s); "
        "POST /v1/users/{user_id}/merge folds them into the user",
    )

    @field_validator("user_id", "session_id", mode="before")
    @classmethod
    def _not_null(cls, v: object) -> object:
        if v is None:  # defaults are not validated: this None was sent
            raise ValueError("must be a string; leave the field out instead of null")
        return v

    @model_validator(mode="after")
    def _one_owner(self) -> InteractionIn:
        if (self.user_id is None) == (self.session_id is None):
            raise ValueError("give exactly one of user_id (signed in) and session_id (a guest)")
        return self

    @property
    def owner(self) -> str:
        return self.user_id if self.user_id is not None else session_owner(str(self.session_id))

    def internal(self) -> Interaction:
        """The event as the workers apply it (its owner in `user_id`)."""
        data = self.model_dump(exclude={"user_id", "session_id"})
        return Interaction.model_validate({**data, "user_id": self.owner})


def latest_timestamp(now: float | None = None) -> int:
    """The latest event time accepted: the end of tomorrow, UTC (clock skew and time zones
    within a day). A whole-day bound, so the OpenAPI schema can state it exactly."""
    day = 86_400
    return (int(time.time() if now is None else now) // day + 2) * day


def age_max_maturity(birth_year: int | None, unknown: int, *, now: float | None = None) -> int:
    """Highest item maturity a user of this birth year may see."""
    if birth_year is None:
        return unknown
    # Without a birth date, assume the birthday has not come yet this year: a 17-year-old
    # born in December must not see 18-rated items from January on.
    age = time.gmtime(now).tm_year - birth_year - 1
    return max(0, min(MAX_MATURITY, age))
