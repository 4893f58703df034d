"""Structured logs: one JSON event per stage with its duration, or readable lines for a person at a terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from runner import metrics

log = structlog.get_logger("olist_dw")


def configure_logging(log_format: str | None = None) -> None:
    """JSON when stderr is not a terminal (schedulers, CI), a console renderer when it is; ``log_format`` wins."""
    chosen = log_format or ("console" if sys.stderr.isatty() else "json")
    renderer = structlog.dev.ConsoleRenderer() if chosen == "console" else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


@contextmanager
def stage(name: str, **fields: object) -> Iterator[dict[str, object]]:
    """Log a stage's end with ``duration_ms`` and whatever the body adds to the yielded dict (row counts...)."""
    extra: dict[str, object] = {}
    started = time.perf_counter()
    try:
        yield extra
    except Exception as error:
        seconds = time.perf_counter() - started
        metrics.stage_duration.labels(name).observe(seconds)
        metrics.stage_failures.labels(name, type(error).__name__).inc()
        log.error(
            name,
            status="failed",
            error=str(error).splitlines()[0] if str(error) else type(error).__name__,
            error_class=type(error).__name__,
            duration_ms=round(seconds * 1000),
            **fields,
            **extra,
        )
        raise
    seconds = time.perf_counter() - started
    metrics.stage_duration.labels(name).observe(seconds)
    log.info(name, status="succeeded", duration_ms=round(seconds * 1000), **fields, **extra)
