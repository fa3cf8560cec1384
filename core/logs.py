"""Logging set-up shared by every entry point: text for a terminal, JSON for machines.

Every record carries the id of the HTTP request it belongs to (`request_id`, "-" outside a
request), the same id the API returns in the `X-Request-ID` header.
"""

from __future__ import annotations

import contextvars
import logging
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestId())
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter that says nothing an operator acts on.
    for noisy in ("httpx", "sentence_transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pymilvus logs every failed call with its traceback (dozens a second while Milvus is
    # down); the error reaches our code as an exception, which says it once. DEBUG shows all.
    import pymilvus  # noqa: F401  # it configures its loggers on import: before, not after, this

    quiet = logging.getLevelName(level) > logging.DEBUG
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL if quiet else logging.DEBUG)
