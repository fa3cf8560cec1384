"""Reference apps for bench/serve.py, under the same uvicorn set-up as the API.

`ceiling_app`: the least a FastAPI endpoint can do (this machine's ceiling).
`naive_app`: the naive design: one Milvus search per request, no cache, no policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI

from core.connect import collection_names, connect_milvus, connect_redis
from core.keys import Keys
from core.settings import Settings
from core.stores.items import ItemStore


def ceiling_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def naive_app() -> FastAPI:
    settings = Settings()
    app = FastAPI()
    items = ItemStore(connect_milvus(settings), collection_names(settings))
    r = connect_redis(settings)
    keys = Keys.of(settings.redis)

    @app.get("/naive")
    def naive(
        user_id: str, surface: str = "homepage", item_id: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        if surface == "related" and item_id:
            vec = np.asarray(items.vectors([item_id])[item_id], dtype=np.float32)
            space = "content_vec"
        else:
            raw = r.hget(keys.user(user_id), "cfvec")
            vec, space = np.frombuffer(raw, dtype=np.float32), "cf_vec"
        hits = items.search(vec, field=space, limit=limit)[0]
        return {"items": [{"item_id": h.item_id, "score": h.score} for h in hits]}

    return app
