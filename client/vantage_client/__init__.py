"""Python client for the Vantage recommendation API: sync and async, typed, with safe retries.

    from vantage_client import VantageClient, AsyncVantageClient, Interaction

Every route of the API is a method (the table is `vantage_client.routes.ROUTES`); answers are
pydantic models (`vantage_client.models`), error answers raise the exception of their `code`
(`vantage_client.errors`), and calls are retried as `vantage_client.retry.Retry` says.
"""

from vantage_client.aio import AsyncVantageClient
from vantage_client.errors import (
    APIError,
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TooManyRules,
    Unauthorized,
    UnexpectedResponse,
    UnsupportedMediaType,
    VantageConnectionError,
    VantageError,
)
from vantage_client.inputs import Interaction, Item, ItemFields, Preferences, RuleIn, UserFields
from vantage_client.models import (
    Accepted,
    DeadLetter,
    DeadLetterPage,
    ErasureReceipt,
    Health,
    ItemOut,
    JobList,
    JobOut,
    ModelKind,
    QueueStatus,
    RecItem,
    Recommendations,
    Replayed,
    RuleList,
    RuleOut,
    SurfaceMetrics,
    UserOut,
)
from vantage_client.retry import Retry
from vantage_client.routes import ROUTES
from vantage_client.sync import VantageClient

__version__ = "0.1.0"
__all__ = [
    "ROUTES",
    "APIError",
    "Accepted",
    "AsyncVantageClient",
    "BadRequest",
    "Conflict",
    "DeadLetter",
    "DeadLetterPage",
    "DependencyUnavailable",
    "ErasureReceipt",
    "Forbidden",
    "Health",
    "Interaction",
    "InvalidRequest",
    "Item",
    "ItemFields",
    "ItemOut",
    "JobList",
    "JobOut",
    "MethodNotAllowed",
    "ModelKind",
    "NotFound",
    "PayloadTooLarge",
    "Preferences",
    "QueueStatus",
    "RateLimited",
    "RecItem",
    "Recommendations",
    "Replayed",
    "Retry",
    "RuleIn",
    "RuleList",
    "RuleOut",
    "ServerError",
    "SurfaceMetrics",
    "TooManyRules",
    "Unauthorized",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "UserFields",
    "UserOut",
    "VantageClient",
    "VantageConnectionError",
    "VantageError",
]
