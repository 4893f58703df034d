"""What an operator asks first: how far has the pipeline got, how fresh is it, what failed, what is missing."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from psycopg import sql

from runner import due, ledger, marts, quarantine
from runner.settings import PIPELINE, PROJECT_DIR

LAYER_SCHEMAS = ("raw", "staging", "core", "snapshots", "mart")
RECENT_RUNS = 5


def layer_row_counts(connection: psycopg.Connection) -> list[tuple[str, int]]:
    """Rows in every table and materialized view of the warehouse's layers, layer by layer."""
    relations = connection.execute(
        "select namespace.nspname, class.relname from pg_class as class"
        " join pg_namespace as namespace on namespace.oid = class.relnamespace"
        " where class.relkind in ('r', 'm') and namespace.nspname = any(%s)"
        " order by array_position(%s, namespace.nspname::text), class.relname",
        (list(LAYER_SCHEMAS), list(LAYER_SCHEMAS)),
    ).fetchall()
    counts = []
    for schema, name in relations:
        query = sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
        counts.append((f"{schema}.{name}", connection.execute(query).fetchone()[0]))
    return counts


def collect(connection: psycopg.Connection, fingerprint: str | None = None) -> dict[str, Any]:
    """The pipeline's state, from the ledger and the warehouse alone; with the project's fingerprint, what is due."""
    newest_purchase, last_load = connection.execute(
        "select (select max(metadata.purchase_time(order_purchase_timestamp)) from raw.orders),"
        " (select max(loaded_at) from metadata.loaded_files)"
    ).fetchone()
    last_success = ledger.last_success(connection, PIPELINE)
    watermark = ledger.watermark(connection, PIPELINE)
    lag = newest_purchase - watermark if newest_purchase and watermark and newest_purchase > watermark else None
    return {
        "pipeline": PIPELINE,
        "watermark": watermark,
        "newest_loaded_purchase": newest_purchase,
        "last_load_at": last_load,
        "last_success_at": last_success,
        # How much loaded data the watermark has not reached yet (None when it is caught up).
        "processing_lag_seconds": lag.total_seconds() if lag else None,
        # What the next `run` builds, and why (new batch, never built, project changed, a failed run).
        "due_windows": [
            {"start": window.span.start, "end": window.span.end, "reasons": window.reasons}
            for window in (
                due.due_windows(connection, due.Calendar.of_project(PROJECT_DIR), fingerprint) if fingerprint else []
            )
        ],
        "gaps": [{"start": start, "end": end} for start, end in ledger.gaps(connection, PIPELINE)],
        "failed_windows": [
            {"start": start, "end": end, "reason": reason} for start, end, reason in failure_reasons(connection)
        ],
        # Blue/green marts: the version readers see, and the versions kept to roll back to.
        "mart_versions": [dataclasses.asdict(version) for version in marts.versions(connection)],
        "recent_runs": [dataclasses.asdict(run) for run in ledger.window_runs(connection, PIPELINE, limit=RECENT_RUNS)],
        # What the row rules hold, per entity and rule; `unplaced` of them no window can place (orphans).
        "quarantine": [dataclasses.asdict(count) for count in quarantine.held(connection)],
        "rows": dict(layer_row_counts(connection)),
    }


def failure_reasons(connection: psycopg.Connection) -> list[tuple[Any, Any, str]]:
    """The failed windows with the error class and first line of their latest failure."""
    reasons = []
    for start, end in ledger.failed_windows(connection, PIPELINE):
        error_class, message = connection.execute(
            "select error_class, error_message from metadata.window_runs where pipeline = %s and status = 'failed'"
            " and window_start = %s and window_end = %s order by started_at desc limit 1",
            (PIPELINE, start, end),
        ).fetchone()
        reasons.append((start, end, f"{error_class}: {(message or '').strip().splitlines()[0] if message else ''}"))
    return reasons
