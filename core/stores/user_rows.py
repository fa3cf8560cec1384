"""The Milvus users collection: the durable copy of user vectors and profiles (serving reads
users from Redis, core/stores/users.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pymilvus import MilvusClient

from core.stores.schema import CollectionNames


class UserStore:
    """Users collection: the durable copy of user vectors and profiles."""

    def __init__(self, client: MilvusClient, names: CollectionNames):
        self.client = client
        self.names = names

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.client.upsert(self.names.users, list(rows))

    def flush(self) -> None:
        self.client.flush(self.names.users)

    def delete(self, user_ids: Sequence[str]) -> int:
        """Delete users' rows; how many there were."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return 0
        found = len(self.client.get(self.names.users, ids=ids, output_fields=["user_id"]))
        self.client.delete(self.names.users, ids=ids)
        return found

    def get(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = self.client.get(
            self.names.users,
            ids=ids,
            output_fields=["user_id", "profile", "content_vec", "updated_at"],
        )
        return {r["user_id"]: dict(r) for r in rows}
