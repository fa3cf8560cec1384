"""The API's state: the read path's on real servers, plus the API keys it checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.auth import Authenticator
from serving.state import ConnectedState


@dataclass(kw_only=True)
class AppState(ConnectedState):
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.auth = Authenticator(self.redis, self.keys)
