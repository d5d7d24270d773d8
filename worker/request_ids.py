"""Request ids: one per request, in its response header, its error body and every log line it causes.

A client may send its own ``X-Request-Id`` (a proxy's or the SDK's) so its logs and ours share one
id; anything but 8-128 characters of ``A-Z a-z 0-9 . _ : -`` is replaced by a fresh id, so a
client cannot write arbitrary text into our logs. The id of the running request lives in a
context variable that :class:`LogContext` adds to every log record of the ``telestack`` loggers.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar

from worker.http import Request

HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
#: the id of the request this code runs for; "-" outside any request (sweeps, start-up)
current: ContextVar[str] = ContextVar("request_id", default="-")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"


def of(request: Request) -> str:
    """The client's id when it is sane, else a fresh 32-hex-digit one."""
    supplied = request.header(HEADER)
    if supplied is not None and _SANE.match(supplied):
        return supplied
    return secrets.token_hex(16)


class LogContext(logging.Filter):
    """Adds ``request_id`` (the running request's, or "-") to each record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current.get()
        return True


def configure_logging(level: str | int = logging.WARNING) -> None:
    """The entrypoints' log set-up: ``telestack.*`` records to stderr, each with its request id."""
    logger = logging.getLogger("telestack")
    if any(isinstance(f, LogContext) for h in logger.handlers for f in h.filters):
        return  # once per process or isolate
    handler = logging.StreamHandler()
    handler.addFilter(LogContext())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
