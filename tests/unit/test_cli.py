"""The CLI's parser stays cheap: `vantage --help` loads neither torch nor the servers' code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Loaded only when a command runs (each `cmd_*` imports what it needs).
HEAVY = ("torch", "sentence_transformers", "xgboost", "uvicorn", "fastapi", "pymilvus", "redis")
LAYERS = ("app", "serving", "indexing", "training", "embeddings")


def test_help_loads_no_heavy_module() -> None:
    script = (
        "import json, sys\n"
        "from vantage.cli import build_parser\n"
        "try:\n"
        "    build_parser().parse_args(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "vantage" in loaded
    assert not loaded & {*HEAVY, *LAYERS}, sorted(loaded & {*HEAVY, *LAYERS})
