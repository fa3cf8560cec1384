"""The API's state: the read path's, plus the API keys it checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.auth import Authenticator
from serving.state import ServingState


@dataclass
class AppState(ServingState):
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.auth = Authenticator(self.redis, self.keys)
