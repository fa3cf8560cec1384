"""A ridge map from content vectors to cf item vectors.

Items nobody has interacted with yet have no iALS factor; their content vector projected by
this map gives them a ``cf_vec``, so collaborative retrieval can still reach them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from embeddings.artefacts import read_meta, write_meta

PROJECTION_FORMAT = "vantage-content-projection"
PROJECTION_FORMAT_VERSION = 1


class ContentProjection:
    """Ridge regression content vector -> cf item vector, for items without interactions."""

    def __init__(self) -> None:
        self.weights: npt.NDArray[np.float32] | None = None  # (content_dim, cf_dim)
        self.bias: npt.NDArray[np.float32] | None = None  # (cf_dim,)
        self.alpha = 0.0

    def fit(
        self, content: npt.ArrayLike, cf: npt.ArrayLike, alpha: float = 1.0
    ) -> ContentProjection:
        """Fit W, b minimising ||content W + b - cf||² + alpha ||W||² (bias unpenalised)."""
        x = np.asarray(content, dtype=np.float64)
        y = np.asarray(cf, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise ValueError("content and cf must be 2-d with the same number of rows")
        if alpha <= 0:
            raise ValueError("alpha must be positive")
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - x_mean, y - y_mean
        gram = xc.T @ xc + alpha * np.eye(x.shape[1])
        w = np.linalg.solve(gram, xc.T @ yc)
        self.weights = w.astype(np.float32)
        self.bias = (y_mean - x_mean @ w).astype(np.float32)
        self.alpha = float(alpha)
        return self

    def project(self, content: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Projected cf vectors for content vectors (one row per item)."""
        if self.weights is None or self.bias is None:
            raise RuntimeError("ContentProjection is not fitted")
        return np.asarray(content, dtype=np.float32) @ self.weights + self.bias

    def save(self, path: str | Path) -> Path:
        """Write ``projection.npz`` and ``meta.json`` into directory ``path``."""
        if self.weights is None or self.bias is None:
            raise RuntimeError("ContentProjection is not fitted")
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / "projection.npz", weights=self.weights, bias=self.bias)
        meta = {
            "format": PROJECTION_FORMAT,
            "version": PROJECTION_FORMAT_VERSION,
            "alpha": self.alpha,
            "content_dim": int(self.weights.shape[0]),
            "cf_dim": int(self.weights.shape[1]),
        }
        write_meta(root, meta)
        return root

    @classmethod
    def load(cls, path: str | Path) -> ContentProjection:
        """Read a projection written by ``save``."""
        root = Path(path)
        meta = read_meta(root / "meta.json", PROJECTION_FORMAT, PROJECTION_FORMAT_VERSION)
        proj = cls()
        with np.load(root / "projection.npz") as arrays:
            proj.weights, proj.bias = arrays["weights"], arrays["bias"]
        proj.alpha = float(meta["alpha"])
        return proj
