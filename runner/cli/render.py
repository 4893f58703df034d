"""Everything the commands print: each table, each line, and the choice between JSON for machines and a table.

Text that comes from data (file and folder names, reasons, values) is escaped or printed without markup: it is
shown as it is written, never read as rich markup.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Column, Table
from rich.text import Text

from runner import database, generate, ledger, load, marts, pipeline, quarantine, recovery, sail

console = Console(soft_wrap=True)


def as_json(value: object) -> None:
    """Machine-readable output: one JSON document, dataclasses as objects, anything else as its text."""
    if isinstance(value, list):
        value = [dataclasses.asdict(item) if dataclasses.is_dataclass(item) else item for item in value]
    click.echo(json.dumps(value, default=str, indent=2))


def plain(text: str) -> None:
    """One value for a script to read (a path, an address), with nothing around it."""
    click.echo(text)


def generated(extract: generate.Extract, out_dir: Path) -> None:
    for file_name, rows in extract.rows.items():
        console.print(f"{rows:>9,} rows  {out_dir / file_name}", markup=False)
    if extract.malformed:
        console.print(f"{len(extract.malformed):>9,} rows break a row rule (the quarantine should hold them)")


def file_result(result: load.FileResult) -> None:
    if result.loaded:
        console.print(
            f"[green]loaded[/]    {escape(result.file_name)}: {result.row_count:,} rows into raw.{result.entity}"
        )
    else:
        console.print(
            f"[dim]skipped[/]   {escape(result.file_name)}: same content already loaded by batch {result.batch_id}"
        )


def load_report(report: load.LoadReport) -> None:
    for name in report.unknown_files:
        console.print(f"[yellow]left alone[/] {escape(name)}: not a file of the Olist layout")
    for name in report.absent_files:
        console.print(f"[yellow]absent[/]    {escape(name)}")


def reasons_text(reasons: list[str], shown: int = 3) -> str:
    """The reasons a window is due, the first few of them (a window can have hundreds of new batches)."""
    more = f" and {len(reasons) - shown} more" if len(reasons) > shown else ""
    return ", ".join(reasons[:shown]) + more


def due_plan(plan: pipeline.DuePlan) -> None:
    for item in plan.found:
        window = pipeline.Window(item.span.start, item.span.end)
        console.print(f"[yellow]due[/]       window {window}: {reasons_text(item.reasons)}")
    for window in plan.up_to_date:
        console.print(f"[dim]up to date[/] window {window}")
    if not plan.groups:
        console.print("up to date: no window is due")


def nothing_to_backfill(window: pipeline.Window, step: str) -> None:
    console.print(f"up to date: no {step} of {window} is due (--restate runs them again)")


def quarantine_change(changes: list[quarantine.Change], after: list[quarantine.RuleCount]) -> None:
    held = sum(count.rows for count in after)
    if not changes:
        console.print(f"quarantine: nothing added ({held:,} rows held)")
        return
    table = Table("entity", "rule", "added", "of which in no window", "now held", title="Quarantine: this run")
    for change in changes:
        added, unplaced = f"{change.added:+,}", f"{change.added_unplaced:+,}"
        table.add_row(change.entity, change.rule, added, unplaced, f"{change.now:,}")
    console.print(table)
    console.print(f"quarantine: {held:,} rows held (python -m runner quarantine list; quarantine show for the rows)")


def built(result: pipeline.RunResult) -> None:
    for window in result.windows:
        console.print(f"[green]built[/]     window {window}")
    console.print(f"run {result.runner_run_id} (dbt invocation {result.invocation_id})")


class Printer(pipeline.Observer):
    """Prints what a command's work tells as it goes; a backfill's progress bar too, on a terminal.

    Used as a context manager, so that the progress bar stops however the work ends.
    """

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> Printer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def file_loaded(self, result: load.FileResult) -> None:
        file_result(result)

    def loaded(self, report: load.LoadReport) -> None:
        load_report(report)

    def planned(self, plan: pipeline.DuePlan) -> None:
        due_plan(plan)

    def backfill_planned(self, window: pipeline.Window, step: str, groups: list[list[pipeline.Window]]) -> None:
        if not groups:
            nothing_to_backfill(window, step)
            return
        self.progress = Progress(disable=not console.is_terminal, console=console)
        self.progress.start()
        self.task = self.progress.add_task("backfill", total=sum(len(group) for group in groups))

    def quarantine_changed(self, changes: list[quarantine.Change], held: list[quarantine.RuleCount]) -> None:
        quarantine_change(changes, held)

    def built(self, result: pipeline.RunResult) -> None:
        built(result)
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, len(result.windows))


def layers(counts: list[tuple[str, int]], lineage_file: Path) -> None:
    """What each layer holds after the demo, and where its lineage went."""
    table = Table("table", "rows", title="What each layer holds")
    for name, count in counts:
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"OpenLineage events: {lineage_file}", markup=False)


def status(report: dict[str, Any], json_wanted: bool) -> None:
    """The pipeline's state (see runner/status.py): JSON, or for a person at a terminal."""
    if json_wanted:
        as_json(report)
        return
    console.print(f"pipeline {report['pipeline']}: watermark {report['watermark'] or 'not set'}")
    console.print(f"newest loaded purchase {report['newest_loaded_purchase']}, last load {report['last_load_at']}")
    console.print(f"last successful window {report['last_success_at'] or 'never'}")
    if report["processing_lag_seconds"]:
        console.print(f"[yellow]behind[/] the loaded data by {report['processing_lag_seconds'] / 86400:.1f} days")
    for window in report["due_windows"]:
        console.print(f"[yellow]due[/]       [{window['start']}, {window['end']}): {reasons_text(window['reasons'])}")
    if not report["due_windows"] and report["watermark"]:
        console.print("up to date: no window is due")
    for gap in report["gaps"]:
        console.print(f"[red]gap[/]       [{gap['start']}, {gap['end']}) was never processed")
    for window in report["failed_windows"]:
        console.print(f"[red]failed[/]    [{window['start']}, {window['end']}): {escape(str(window['reason']))}")
    for version in report["mart_versions"]:
        if version["status"] == "active":
            console.print(f"marts     version {version['version']} active since {version['activated_at']}")
    kept = [str(version["version"]) for version in report["mart_versions"] if version["status"] == "retired"]
    if kept:
        console.print(f"marts     kept to roll back to: version {', '.join(kept)}")
    runs = Table("window", "status", "finished", "error", title="Recent runs")
    for run in report["recent_runs"]:
        runs.add_row(
            f"{run['window_start']} .. {run['window_end']}",
            run["status"],
            str(run["finished_at"] or ""),
            run["error_class"] or "",
        )
    console.print(runs)
    if report["quarantine"]:
        held = Table("entity", "rule", "rows", "in no window", title="Quarantine (python -m runner quarantine list)")
        for count in report["quarantine"]:
            held.add_row(count["entity"], count["rule"], f"{count['rows']:,}", f"{count['unplaced']:,}")
        console.print(held)
    else:
        console.print("quarantine: empty")
    rows = Table("table", "rows", title="Rows per layer")
    for name, count in report["rows"].items():
        rows.add_row(name, f"{count:,}")
    console.print(rows)


def window_runs(runs: list[ledger.WindowRun], json_wanted: bool) -> None:
    """The window ledger, newest first."""
    if json_wanted:
        as_json(runs)
        return
    table = Table("window", "status", "started", "duration", "rows (core orders)", "error")
    for run in runs:
        duration = f"{(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else ""
        table.add_row(
            f"{run.window_start:%Y-%m-%d %H:%M} .. {run.window_end:%Y-%m-%d %H:%M}",
            run.status,
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            duration,
            str(run.row_counts.get("merged_orders", "")),
            Text((run.error_class or "") + (f": {run.error_message.splitlines()[0]}" if run.error_message else "")),
        )
    console.print(table)


def load_batches(batches: list[ledger.LoadBatch], json_wanted: bool) -> None:
    """The load batches, newest first."""
    if json_wanted:
        as_json(batches)
        return
    # The id is what an operator copies: never shortened, whatever the terminal's width.
    table = Table(Column("batch", min_width=36, overflow="fold"), "started", "status", "files", "rows", "source")
    table.add_column("rolled back")
    for batch in batches:
        table.add_row(
            str(batch.batch_id),
            f"{batch.started_at:%Y-%m-%d %H:%M:%S}",
            batch.status,
            str(batch.files),
            f"{batch.rows:,}",
            Text(batch.source_dir),
            f"{batch.rolled_back_at:%Y-%m-%d %H:%M:%S}" if batch.rolled_back_at else "",
        )
    console.print(table)


def quarantine_summary(counts: list[quarantine.RuleCount], json_wanted: bool) -> None:
    """Rows quarantined per entity and rule."""
    if json_wanted:
        as_json(counts)
        return
    table = Table("entity", "rule", "rows", "in no window", "purchases from", "to", title="Quarantined rows")
    for count in counts:
        first = f"{count.first_purchase:%Y-%m-%d}" if count.first_purchase else ""
        last = f"{count.last_purchase:%Y-%m-%d}" if count.last_purchase else ""
        table.add_row(count.entity, count.rule, f"{count.rows:,}", f"{count.unplaced:,}", first, last)
    console.print(table if counts else "nothing quarantined")


def quarantined_rows(found: list[dict[str, Any]], json_wanted: bool) -> None:
    """One entity's quarantined rows: file and line, rule, reason, and the values as loaded."""
    if json_wanted:
        as_json(found)
        return
    for row in found:
        where = "no window" if row["order_purchased_at"] is None else f"purchased {row['order_purchased_at']}"
        source = escape(row["source_file"])
        console.print(f"[bold]{source}, line {row['source_line']}[/] ({where}, batch {row['batch_id']})")
        console.print(f"  {row['quarantine_rule']}: {row['quarantine_reason']}", markup=False)
        console.print(f"  {json.dumps(row['raw_values'], ensure_ascii=False)}", markup=False)
    if not found:
        console.print("nothing quarantined")


def batch_impact(impact: recovery.BatchImpact, dry_run: bool) -> None:
    """What rolling a batch back removed and rebuilt, or would."""
    verb = "would remove" if dry_run else "removed"
    if impact.rolled_back_at and dry_run:
        console.print(f"batch {impact.batch_id} was rolled back at {impact.rolled_back_at}")
    for table, rows in impact.rows.items():
        if rows:
            console.print(f"{verb} {rows:>9,} rows from {table}")
    for start, end, orders in impact.windows:
        console.print(f"{'would rebuild' if dry_run else 'rebuilt'} window [{start}, {end}): {orders:,} orders touched")
    if not impact.windows:
        console.print("no built window holds this batch's rows: nothing to rebuild")


def restore_plan(table: str, as_of: datetime, plan: recovery.RestorePlan, dry_run: bool) -> None:
    verb = "would" if dry_run else "did"
    console.print(
        f"{table} as of {as_of}: {verb} add {plan.added:,} rows, change {plan.changed:,}, remove {plan.removed:,}"
    )


def publication(publication: marts.Publication, rolled_back: bool, keep_days: float | None) -> None:
    """The mart version readers see after ``publish`` (or ``publish --rollback``), and the versions dropped
    (``keep_days`` None: by Sail's rule, which keeps the version before the active one)."""
    if rolled_back:
        console.print(f"mart version {publication.version} active again (version {publication.previous} parked)")
    elif publication.built:
        console.print(f"mart version {publication.version} published (previous: {publication.previous or 'none'})")
    else:
        console.print(f"mart version {publication.version} is current: the mart models did not change")
    for version in publication.dropped:
        kept = f"retention {keep_days:g} days" if keep_days is not None else "the previous version is kept"
        console.print(f"dropped mart version {version} ({kept})")


def no_breaking_change(reference: str, checked: int) -> None:
    console.print(f"no breaking change against {reference} ({checked} model contracts checked)", markup=False)


def packages(how: str, edr_dir: Path) -> None:
    console.print(f"dbt packages: {how}; Elementary CLI packages: {edr_dir}", markup=False)


def serving_docs(port: int) -> None:
    console.print(f"serving dbt docs on http://127.0.0.1:{port} (Ctrl-C to stop)")


def serving_dashboard(address: str) -> None:
    console.print(f"serving the executive dashboard on {address} (Ctrl-C to stop)", markup=False)


def serving_metrics(port: int) -> None:
    console.print(f"serving metrics on http://127.0.0.1:{port}/metrics (Ctrl-C to stop)")


def database_ready(redacted_dsn: str) -> None:
    console.print(redacted_dsn)


def migrations_applied(applied: list[ledger.Migration]) -> None:
    for migration in applied:
        console.print(f"applied   {migration.version:04d}_{migration.name}")
    if not applied:
        console.print("up to date")


def migrations(every: list[ledger.Migration], applied: dict[int, datetime]) -> None:
    """Each migration of the runner's schema: applied (with when) or pending."""
    for migration in every:
        when = applied.get(migration.version)
        state = f"applied {when:%Y-%m-%d %H:%M:%S %Z}" if when else "pending"
        console.print(f"{migration.version:04d}_{migration.name}  {state}")


def server_stopped(stopped: bool) -> None:
    console.print("stopped" if stopped else "not running")


def server_status(status: database.EmbeddedStatus) -> None:
    if status.running:
        console.print(
            f"running (pid {status.pid}), data in {status.pgdata}, socket in {status.socket_dir}", markup=False
        )
    else:
        console.print(f"not running, data in {status.pgdata}", markup=False)


def sail_stopped(stopped: list[str]) -> None:
    console.print(f"stopped {' and '.join(stopped)}" if stopped else "not running")


def sail_status(status: sail.SailStatus, json_wanted: bool) -> None:
    """The Sail target's endpoint, then each local process: running or not, pid, address, log."""
    if json_wanted:
        as_json({**dataclasses.asdict(status), "endpoint": status.endpoint})
        return
    if status.remote:
        answer = "answers" if status.remote_reachable else "does not answer"
        console.print(f"dbt target sail: external server {status.remote} ({answer})", markup=False)
    elif status.endpoint:
        shapes = {"local-cluster": f"local-cluster mode, {sail.WORKERS} workers", "local": "local mode, one process"}
        shape = shapes.get(status.mode or "", "mode unknown")
        console.print(f"dbt target sail: {status.endpoint} ({shape})", markup=False)
    else:
        console.print("dbt target sail: none (`python -m runner sail start` starts the local cluster)", markup=False)
    addresses = {
        sail.METASTORE: lambda port: f"thrift://{sail.HOST}:{port} (Derby; listens on every interface)",
        sail.SERVER: lambda port: f"sc://{sail.HOST}:{port}",
    }
    for process in (status.metastore, status.server):
        if process.running:
            where = addresses[process.name](process.port) if process.port else "port unknown"
            line = f"{process.name}: running (pid {process.pid}) on {where}, log {process.log}"
        else:
            line = f"{process.name}: not running, log {process.log}"
        console.print(line, markup=False)
    console.print(f"tables' files: {status.warehouse}", markup=False)
