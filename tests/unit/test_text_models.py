"""Which text models a re-index may load: allow-listed names or directories under one root."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.text import ModelNotAllowed, allowed_text_model


def test_allowed_names_and_directories_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "text-models"
    (root / "mine").mkdir(parents=True)
    ok = dict(allowed=["org/approved"], models_dir=root)
    assert allowed_text_model("default", **ok) == "default"
    assert allowed_text_model("all-MiniLM-L6-v2", **ok) == "all-MiniLM-L6-v2"
    assert allowed_text_model("org/approved", **ok) == "org/approved"
    assert allowed_text_model("mine", **ok) == str((root / "mine").resolve())
    assert allowed_text_model(str(root / "mine"), **ok) == str((root / "mine").resolve())
    assert allowed_text_model("mine/../mine", **ok) == str((root / "mine").resolve())


@pytest.mark.parametrize(
    "name", ["org/other", "../outside", "data/../../../../etc", "/etc", ".", "escape", "absent"]
)
def test_everything_else_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "text-models"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(ModelNotAllowed, match="not allowed"):
        allowed_text_model(name, allowed=[], models_dir=root)
