"""What an operator asks first: how far has the pipeline got, how fresh is it, what failed, what is missing."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from runner import ledger
from runner.settings import PIPELINE

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


def collect(connection: psycopg.Connection) -> dict[str, Any]:
    """The pipeline's state, from the ledger and the warehouse alone."""
    newest_purchase, last_load = connection.execute(
        "select (select max(cast(nullif(order_purchase_timestamp, '') as timestamp)) from raw.orders),"
        " (select max(loaded_at) from metadata.loaded_files)"
    ).fetchone()
    last_success = connection.execute(
        "select max(finished_at) from metadata.window_runs where pipeline = %s and status = 'succeeded'", (PIPELINE,)
    ).fetchone()[0]
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
        "gaps": [{"start": start, "end": end} for start, end in ledger.gaps(connection, PIPELINE)],
        "failed_windows": [{"start": start, "end": end} for start, end in ledger.failed_windows(connection, PIPELINE)],
        "recent_runs": [dataclasses.asdict(run) for run in ledger.window_runs(connection, PIPELINE, limit=RECENT_RUNS)],
        "rows": dict(layer_row_counts(connection)),
    }


def render(console: Console, report: dict[str, Any]) -> None:
    """The report for a person at a terminal."""
    console.print(f"pipeline {report['pipeline']}: watermark {report['watermark'] or 'not set'}")
    console.print(f"newest loaded purchase {report['newest_loaded_purchase']}, last load {report['last_load_at']}")
    console.print(f"last successful window {report['last_success_at'] or 'never'}")
    if report["processing_lag_seconds"]:
        console.print(f"[yellow]behind[/] the loaded data by {report['processing_lag_seconds'] / 86400:.1f} days")
    for gap in report["gaps"]:
        console.print(f"[red]gap[/]       [{gap['start']}, {gap['end']}) was never processed")
    for window in report["failed_windows"]:
        console.print(f"[red]failed[/]    [{window['start']}, {window['end']})")
    runs = Table("window", "status", "finished", "error", title="Recent runs")
    for run in report["recent_runs"]:
        runs.add_row(
            f"{run['window_start']} .. {run['window_end']}",
            run["status"],
            str(run["finished_at"] or ""),
            run["error_class"] or "",
        )
    console.print(runs)
    rows = Table("table", "rows", title="Rows per layer")
    for name, count in report["rows"].items():
        rows.add_row(name, f"{count:,}")
    console.print(rows)
