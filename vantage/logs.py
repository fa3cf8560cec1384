"""Logging set-up shared by every entry point."""

from __future__ import annotations

import logging


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Third-party chatter that says nothing an operator acts on.
    for noisy in ("httpx", "sentence_transformers", "pymilvus", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
