"""The command line: ``python -m runner <command>``. Thin: parse, call a module, print, map errors to exit codes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import click
import psycopg
from click.core import ParameterSource
from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table
from rich.text import Text

from runner import (
    dashboard,
    database,
    dbt,
    due,
    generate,
    ledger,
    lineage,
    load,
    lock,
    marts,
    metrics,
    pipeline,
    quarantine,
    recovery,
    report,
    schema_guard,
    status,
)
from runner.errors import (
    EXIT_ENVIRONMENT,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    RunnerError,
    SchemaMismatchError,
    UsageError,
)
from runner.observability import configure_logging, log, stage
from runner.settings import PIPELINE, Settings

console = Console(soft_wrap=True)
# What main() needs after a command, to export metrics: the settings and the DSN the command used, if any.
_session: dict[str, object] = {}

DEMO_ORDERS = 3000
DEMO_START = date(2017, 1, 1)
DEMO_DAYS = 90
DEMO_SEED = 42


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dsn", envvar="OLIST_DW_DSN", help="PostgreSQL 15+ to use instead of the embedded server.")
@click.option(
    "--home",
    envvar="OLIST_DW_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the runner's state (embedded database, lineage events). Default: .runner/ in the project.",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), help="Log format (default: by terminal).")
@click.option("--pushgateway", metavar="URL", help="Also push the run's metrics to this Prometheus Pushgateway.")
@click.pass_context
def cli(
    ctx: click.Context, dsn: str | None, home: Path | None, log_format: str | None, pushgateway: str | None
) -> None:
    """olist-dw: load the Olist export into PostgreSQL and build its warehouse with dbt, window by window."""
    configure_logging(log_format)
    if dsn:
        parts = database.parse_dsn(dsn)
        if parts.get("password") and ctx.get_parameter_source("dsn") is ParameterSource.COMMANDLINE:
            log.warning(
                "--dsn carries a password, which every local user can read in the process list: set OLIST_DW_DSN, "
                "or keep the password in a password file (~/.pgpass or PGPASSFILE), instead"
            )
    ctx.obj = Settings.from_environment(dsn=dsn, home=home)
    # The command's name groups its metrics on a Pushgateway (see metrics.push).
    _session.update(settings=ctx.obj, pushgateway=pushgateway, command=ctx.invoked_subcommand)


def _bootstrap(settings: Settings) -> str:
    """Make the database ready (see pipeline.bootstrap) and remember its DSN for the metrics export."""
    dsn = pipeline.bootstrap(settings)
    _session["dsn"] = dsn
    return dsn


@cli.command("generate")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--orders", default=DEMO_ORDERS, show_default=True, type=click.IntRange(min=1))
@click.option("--start", default=DEMO_START.isoformat(), show_default=True, help="First purchase day.")
@click.option("--days", default=DEMO_DAYS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=DEMO_SEED, show_default=True, type=int)
@click.option("--dirty", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Rate of real-data quirks.")
@click.option(
    "--malformed", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Rate of rows breaking a row rule."
)
def generate_command(
    out_dir: Path, orders: int, start: str, days: int, seed: int, dirty: float, malformed: float
) -> None:
    """Write the nine Olist CSV files (Kaggle names and headers), deterministic for a seed."""
    first_day = pipeline.parse_bound(start, "--start").date()
    extract = generate.generate(generate.GenerateOptions(out_dir, orders, first_day, days, seed, dirty, malformed))
    for file_name, rows in extract.rows.items():
        console.print(f"{rows:>9,} rows  {out_dir / file_name}", markup=False)
    if extract.malformed:
        console.print(f"{len(extract.malformed):>9,} rows break a row rule (the quarantine should hold them)")


@cli.command("load")
@click.option("--source", "source_dir", required=True, type=click.Path(path_type=Path), help="Folder of Olist CSVs.")
@click.pass_obj
def load_command(settings: Settings, source_dir: Path) -> None:
    """COPY the Olist CSV files of a folder into raw.*, one transaction per file, skipping files already loaded."""
    if not source_dir.is_dir():
        raise UsageError(f"source folder not found: {source_dir}")
    dsn = _bootstrap(settings)
    _load(settings, dsn, source_dir)


def _load(settings: Settings, dsn: str, source_dir: Path) -> load.LoadReport:
    def on_file(result: load.FileResult) -> None:
        _print_file_result(result)
        if result.loaded:
            metrics.rows_loaded.labels(f"raw.{result.entity}").inc(result.row_count)
            lineage.emit_file_loaded(
                settings, dsn, source_dir / result.file_name, f"raw.{result.entity}", result.row_count
            )

    with database.connect(dsn) as connection, stage("load", source=str(source_dir)) as fields:
        report = load.load_directory(connection, source_dir, on_file=on_file)
        fields.update(batch_id=str(report.batch_id), rows=report.rows_loaded)
    for name in report.unknown_files:
        console.print(f"[yellow]left alone[/] {escape(name)}: not a file of the Olist layout")
    for name in report.absent_files:
        console.print(f"[yellow]absent[/]    {escape(name)}")
    return report


def _print_file_result(result: load.FileResult) -> None:
    if result.loaded:
        console.print(
            f"[green]loaded[/]    {escape(result.file_name)}: {result.row_count:,} rows into raw.{result.entity}"
        )
    else:
        console.print(
            f"[dim]skipped[/]   {escape(result.file_name)}: same content already loaded by batch {result.batch_id}"
        )


@cli.command("run")
@click.option(
    "--window", "window_text", metavar="START..END", help="The window [START, END), e.g. 2017-01-01..2017-02-01"
)
@click.option("--start", "start_text", metavar="START", help="Window start (with --end), instead of --window.")
@click.option("--end", "end_text", metavar="END", help="Window end (exclusive).")
@click.option("--step", type=click.Choice(pipeline.STEPS), help="Record the range as day, week or month windows.")
@click.option("--force", is_flag=True, help="Build the windows asked for even when they are up to date.")
@click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
@click.pass_obj
def run_command(
    settings: Settings,
    window_text: str | None,
    start_text: str | None,
    end_text: str | None,
    step: str | None,
    force: bool,
    wait: bool,
) -> None:
    """Build the due windows through staging, core and marts with dbt-ol, publish them and move the watermark.

    A window is due when a load placed rows in it since its last success, when it never succeeded, or when the
    dbt project changed since. With no window, builds every due window, oldest first; with one, builds those of
    the windows asked for that are due (all of them with --force) and says which are up to date.
    """
    if window_text and (start_text or end_text):
        raise UsageError("give either --window or --start/--end, not both")
    if bool(start_text) != bool(end_text):
        raise UsageError("--start and --end go together")
    window = None
    if window_text:
        window = pipeline.parse_window(window_text)
    elif start_text and end_text:
        window = pipeline.make_window(
            pipeline.parse_bound(start_text, "--start"), pipeline.parse_bound(end_text, "--end")
        )
    if force and window is None:
        raise UsageError("--force rebuilds the windows asked for: give --window (or --start/--end)")
    dsn = _bootstrap(settings)
    asked = pipeline.split(window, step) if window else None
    _run_due(settings, dsn, asked, step=step, force=force, wait=wait)


def _run_due(
    settings: Settings,
    dsn: str,
    asked: list[pipeline.Window] | None,
    *,
    step: str | None = None,
    force: bool = False,
    wait: bool = False,
) -> None:
    """Build what is due: among the windows asked for, or anywhere (None); say why, and which are up to date."""
    fingerprint = dbt.project_fingerprint(settings.project_dir)
    with database.connect(dsn) as connection:
        if asked is None:
            found = pipeline.due_windows(connection, fingerprint)
        elif force:
            found = [due.DueWindow(window.span, ["--force"]) for window in asked]
        else:
            found = pipeline.due_among(connection, asked, fingerprint)
    for item in found:
        window = pipeline.Window(item.span.start, item.span.end)
        console.print(f"[yellow]due[/]       window {window}: {status.reasons_text(item.reasons)}")
    due_spans = {item.span for item in found}
    for window in asked or []:
        if window.span not in due_spans:
            console.print(f"[dim]up to date[/] window {window}")
    windows = [
        piece
        for item in found
        for piece in pipeline.split(pipeline.Window(item.span.start, item.span.end), None if asked else step)
    ]
    if not windows:
        console.print("up to date: no window is due")
        return
    for group in pipeline.contiguous_groups(windows):
        _run(settings, dsn, group, wait=wait)


def _run(settings: Settings, dsn: str, windows: list[pipeline.Window], *, wait: bool = False) -> None:
    with (
        _quarantine_change(dsn),
        stage("run", windows=len(windows), first=str(windows[0]), last=str(windows[-1])) as fields,
    ):
        results = pipeline.run_windows(settings, dsn, windows, wait=wait)
        fields.update(runner_run_ids=[str(result.runner_run_id) for result in results])
    for result in results:
        for window in result.windows:
            console.print(f"[green]built[/]     window {window}")
        console.print(f"run {result.runner_run_id} (dbt invocation {result.invocation_id})")


@contextlib.contextmanager
def _quarantine_change(dsn: str) -> Iterator[None]:
    """After a build, stopped or not, say what it added to the quarantine (and took out), per entity and rule.

    A stopped build leaves its quarantine rows in place (they are why it stopped); a clean one can still add rows
    under the thresholds, or rows no window can place: either way the operator reads it here, not by chance.
    """
    with database.connect(dsn) as connection:
        before = quarantine.held(connection)
    try:
        yield
    finally:
        try:
            with database.connect(dsn) as connection:
                after = quarantine.held(connection)
        except psycopg.Error as error:  # the database went away: the build's own error says what happened
            log.warning("quarantine not read after the run", error=str(error))
        else:
            _print_quarantine_change(quarantine.changes(before, after), after)


def _print_quarantine_change(changes: list[quarantine.Change], after: list[quarantine.RuleCount]) -> None:
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


@cli.command("backfill")
@click.option("--from", "from_text", required=True, metavar="START", help="First day (or time) of the range.")
@click.option("--to", "to_text", required=True, metavar="END", help="End of the range (exclusive).")
@click.option("--step", type=click.Choice(pipeline.STEPS), default="day", show_default=True)
@click.option("--restate", is_flag=True, help="Re-run the windows that already succeeded too.")
@click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
@click.pass_obj
def backfill_command(settings: Settings, from_text: str, to_text: str, step: str, restate: bool, wait: bool) -> None:
    """Run the missing and failed windows of a range (all of them with --restate)."""
    window = pipeline.make_window(pipeline.parse_bound(from_text, "--from"), pipeline.parse_bound(to_text, "--to"))
    dsn = _bootstrap(settings)
    with database.connect(dsn) as connection:
        groups = pipeline.plan_backfill(
            connection, window, step, restate=restate, fingerprint=dbt.project_fingerprint(settings.project_dir)
        )
    if not groups:
        console.print(f"up to date: no {step} of {window} is due (--restate runs them again)")
        return
    with Progress(disable=not console.is_terminal, console=console) as progress:
        task = progress.add_task("backfill", total=sum(len(group) for group in groups))
        for group in groups:
            _run(settings, dsn, group, wait=wait)
            progress.advance(task, len(group))


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status_command(settings: Settings, as_json: bool) -> None:
    """Watermark, freshness, last runs, gaps, failed windows and rows per layer."""
    dsn = _bootstrap(settings)
    with database.connect(dsn) as connection:
        report = status.collect(connection, dbt.project_fingerprint(settings.project_dir))
    if as_json:
        click.echo(json.dumps(report, default=str, indent=2))
    else:
        status.render(console, report)


@cli.command("runs")
@click.option("--status", "run_status", type=click.Choice(["running", "succeeded", "failed"]))
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON array).")
@click.pass_obj
def runs_command(settings: Settings, run_status: str | None, limit: int, as_json: bool) -> None:
    """The window ledger, newest first."""
    dsn = _bootstrap(settings)
    with database.connect(dsn) as connection:
        runs = ledger.window_runs(connection, PIPELINE, status=run_status, limit=limit)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(run) for run in runs], default=str, indent=2))
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


@cli.group("rollback")
def rollback_group() -> None:
    """Undo a bad load (see `publish --rollback` for a bad mart deployment)."""


@rollback_group.command("batch")
@click.argument("batch_id")
@click.option("--dry-run", is_flag=True, help="Only list the rows and windows it would change.")
@click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
@click.pass_obj
def rollback_batch_command(settings: Settings, batch_id: str, dry_run: bool, wait: bool) -> None:
    """Remove a load batch from raw and rebuild the windows it reached, as if it had never been loaded.

    Safe to run again: after a crash it finishes the windows still to rebuild.
    """
    try:
        batch = uuid.UUID(batch_id)
    except ValueError as error:
        raise UsageError(f"a batch id is a UUID (see metadata.load_batches); got {batch_id!r}") from error
    dsn = _bootstrap(settings)
    if dry_run:
        with database.connect(dsn) as connection:
            impact = recovery.batch_impact(connection, batch)
    else:
        with stage("rollback_batch", batch_id=batch_id):
            impact = recovery.rollback_batch(settings, dsn, batch, wait=wait)
    verb = "would remove" if dry_run else "removed"
    if impact.rolled_back_at and dry_run:
        console.print(f"batch {batch} was rolled back at {impact.rolled_back_at}")
    for table, rows in impact.rows.items():
        if rows:
            console.print(f"{verb} {rows:>9,} rows from {table}")
    for start, end, orders in impact.windows:
        console.print(f"{'would rebuild' if dry_run else 'rebuilt'} window [{start}, {end}): {orders:,} orders touched")
    if not impact.windows:
        console.print("no built window holds this batch's rows: nothing to rebuild")


@cli.command("restore")
@click.argument("table", metavar="TABLE")
@click.option("--as-of", "as_of_text", required=True, metavar="TIMESTAMP", help="e.g. 2026-11-27T08:00:00+00:00")
@click.option("--dry-run", is_flag=True, help="Only print how many rows it would add, change and remove.")
@click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
@click.pass_obj
def restore_command(settings: Settings, table: str, as_of_text: str, dry_run: bool, wait: bool) -> None:
    """Rewrite a dimension (core.dim_customer, core.dim_product, core.dim_seller) as its snapshot held it.

    One transaction; grants, indexes and the views reading the table keep working. A time without an offset
    is in the database's time zone.
    """
    try:
        as_of = datetime.fromisoformat(as_of_text)
    except ValueError as error:
        raise UsageError(f"--as-of must be an ISO time like 2026-11-27T08:00:00+00:00; got {as_of_text!r}") from error
    dsn = _bootstrap(settings)
    with lock.pipeline_lock(dsn, PIPELINE, wait=wait), database.connect(dsn) as connection:
        plan = recovery.restore_dimension(connection, table, as_of, dry_run=dry_run)
    verb = "would" if dry_run else "did"
    console.print(
        f"{table} as of {as_of}: {verb} add {plan.added:,} rows, change {plan.changed:,}, remove {plan.removed:,}"
    )


@cli.command("publish")
@click.option("--rollback", "roll_back", is_flag=True, help="Return readers to the previous mart version.")
@click.option("--force", is_flag=True, help="Build a new version even if the mart models did not change.")
@click.option(
    "--keep-days",
    envvar="OLIST_DW_MART_KEEP_DAYS",
    default=7,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Drop parked mart versions retired longer ago than this.",
)
@click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
@click.pass_obj
def publish_command(settings: Settings, roll_back: bool, force: bool, keep_days: float, wait: bool) -> None:
    """Deploy the mart models blue/green: build a new version aside, check it, swap it in atomically.

    Readers of mart.* see the old version whole until the swap commits, then the new one whole.
    """
    dsn = _bootstrap(settings)
    with lock.pipeline_lock(dsn, PIPELINE, wait=wait), database.connect(dsn) as connection:
        if roll_back:
            publication = marts.rollback(connection)
        else:
            dbt.ensure_packages(settings)
            with stage("publish"):
                publication = marts.deploy(settings, dsn, connection, keep_for=timedelta(days=keep_days), force=force)
    if roll_back:
        console.print(f"mart version {publication.version} active again (version {publication.previous} parked)")
    elif publication.built:
        console.print(f"mart version {publication.version} published (previous: {publication.previous or 'none'})")
    else:
        console.print(f"mart version {publication.version} is current: the mart models did not change")
    for version in publication.dropped:
        console.print(f"dropped mart version {version} (retention {keep_days:g} days)")


@cli.command("batches")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON array).")
@click.pass_obj
def batches_command(settings: Settings, limit: int, as_json: bool) -> None:
    """The load batches, newest first: their ids (for `rollback batch`), sources, files and rows."""
    dsn = _bootstrap(settings)
    with database.connect(dsn) as connection:
        batches = ledger.load_batches(connection, limit=limit)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(batch) for batch in batches], default=str, indent=2))
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


@cli.command("check-schema")
@click.option("--against", "reference", required=True, help="A git ref (HEAD~1, main) or a saved manifest.json.")
@click.pass_obj
def check_schema_command(settings: Settings, reference: str) -> None:
    """Fail on a change that breaks readers: a removed or renamed column, a type change, a new NOT NULL."""
    dsn = _bootstrap(settings)
    dbt.ensure_packages(settings)
    with stage("check-schema"):
        before = schema_guard.contracts(schema_guard.manifest_at(settings, dsn, reference))
        after = schema_guard.contracts(schema_guard.current_manifest(settings, dsn))
    found = schema_guard.offences(before, after)
    if found:
        raise SchemaMismatchError(
            f"{len(found)} breaking change(s) against {reference}:\n" + "\n".join(f"  {line}" for line in found)
        )
    console.print(f"no breaking change against {reference} ({len(after)} model contracts checked)", markup=False)


@cli.group("quarantine")
def quarantine_group() -> None:
    """Look at the rows the row rules set aside (quarantine.<entity>); fix the source and re-run to clear them."""


@quarantine_group.command("list")
@click.option("--window", "window_text", help="Only rows of START..END (their order's purchase time).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON array).")
@click.pass_obj
def quarantine_list(settings: Settings, window_text: str | None, as_json: bool) -> None:
    """Rows quarantined per entity and rule, with the purchase times they span."""
    window = pipeline.parse_window(window_text) if window_text else None
    dsn = _bootstrap(settings)
    with database.connect(dsn) as connection:
        counts = quarantine.summary(connection, *(window.start, window.end) if window else ())
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(count) for count in counts], default=str, indent=2))
        return
    table = Table("entity", "rule", "rows", "in no window", "purchases from", "to", title="Quarantined rows")
    for count in counts:
        first = f"{count.first_purchase:%Y-%m-%d}" if count.first_purchase else ""
        last = f"{count.last_purchase:%Y-%m-%d}" if count.last_purchase else ""
        table.add_row(count.entity, count.rule, f"{count.rows:,}", f"{count.unplaced:,}", first, last)
    console.print(table if counts else "nothing quarantined")


@quarantine_group.command("show")
@click.argument("entity", type=click.Choice(quarantine.ENTITIES))
@click.option("--window", "window_text", help="Only rows of START..END (their order's purchase time).")
@click.option("--rule", help="Only rows set aside by this rule (see `quarantine list`).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON array).")
@click.pass_obj
def quarantine_show(
    settings: Settings, entity: str, window_text: str | None, rule: str | None, limit: int, as_json: bool
) -> None:
    """One entity's quarantined rows: file and line, rule, reason, and the values as loaded."""
    window = pipeline.parse_window(window_text) if window_text else None
    dsn = _bootstrap(settings)
    with database.connect(dsn) as connection:
        found = quarantine.rows(
            connection,
            entity,
            start=window.start if window else None,
            end=window.end if window else None,
            rule=rule,
            limit=limit,
        )
    if as_json:
        click.echo(json.dumps(found, default=str, indent=2))
        return
    for row in found:
        where = "no window" if row["order_purchased_at"] is None else f"purchased {row['order_purchased_at']}"
        source = escape(row["source_file"])
        console.print(f"[bold]{source}, line {row['source_line']}[/] ({where}, batch {row['batch_id']})")
        console.print(f"  {row['quarantine_rule']}: {row['quarantine_reason']}", markup=False)
        console.print(f"  {json.dumps(row['raw_values'], ensure_ascii=False)}", markup=False)
    if not found:
        console.print("nothing quarantined")


@cli.command("deps")
@click.option("--force", is_flag=True, help="Reinstall even when the locked versions are present.")
@click.pass_obj
def deps_command(settings: Settings, force: bool) -> None:
    """Install the locked dbt packages (hub, else the offline store) and those of the Elementary CLI."""
    how = dbt.ensure_packages(settings, force=force)
    edr_dir = dbt.ensure_edr_packages(settings)
    console.print(f"dbt packages: {how}; Elementary CLI packages: {edr_dir}", markup=False)


@cli.command("report")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the HTML report.")
@click.pass_obj
def report_command(settings: Settings, out: Path | None) -> None:
    """Write Elementary's HTML quality report (offline) and print its path."""
    dsn = _bootstrap(settings)
    with stage("report"):
        path = report.elementary_report(settings, dsn, out)
    click.echo(str(path))


@cli.command("docs")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Only generate the site; print where it is.")
@click.pass_obj
def docs_command(settings: Settings, port: int, no_serve: bool) -> None:
    """Generate the dbt docs site (lineage from sources to the exposures) and serve it on localhost."""
    dsn = _bootstrap(settings)
    dbt.ensure_packages(settings)
    with stage("docs"):
        site = dbt.generate_docs(settings, dsn)
    if no_serve:
        click.echo(str(site / "index.html"))
        return
    console.print(f"serving dbt docs on http://127.0.0.1:{port} (Ctrl-C to stop)")
    dbt.serve_docs(settings, dsn, port)


@cli.command("dashboard")
@click.option("--port", default=dashboard.DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def dashboard_command(settings: Settings, port: int) -> None:
    """Serve the executive dashboard (a marimo app over the marts) read-only on localhost, until interrupted.

    The address printed holds a new access token: only who opens it (or types the token in) sees the page.
    """
    dashboard.configured_stale_after()  # a bad OLIST_DW_DASHBOARD_STALE_HOURS fails here, not in the page
    dsn = database.resolve_dsn(settings)
    dashboard.check_reader(dsn)  # no database or no reader role: one line and exit code 6, rather than an error page
    token = dashboard.new_access_token()
    console.print(f"serving the executive dashboard on {dashboard.address(port, token)} (Ctrl-C to stop)", markup=False)
    dashboard.serve(settings, dsn, port, token)


@cli.command("demo")
@click.option("--orders", default=DEMO_ORDERS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=DEMO_SEED, show_default=True, type=int)
@click.option(
    "--dirty",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Rate of real-data quirks, and of rows breaking a row rule (quarantined), to inject.",
)
@click.pass_obj
def demo_command(settings: Settings, orders: int, seed: int, dirty: float) -> None:
    """Generate a small dataset, load it and build it month by month; safe to run again."""
    data_dir = settings.home / ("demo-data-dirty" if dirty else "demo-data")
    generate.generate(generate.GenerateOptions(data_dir, orders, DEMO_START, DEMO_DAYS, seed, dirty, malformed=dirty))
    dsn = _bootstrap(settings)
    _load(settings, dsn, data_dir)
    last_day = DEMO_START + timedelta(days=DEMO_DAYS - 1)
    _run_due(settings, dsn, pipeline.month_windows(DEMO_START, last_day))
    table = Table("table", "rows", title="What each layer holds")
    with database.connect(dsn) as connection:
        for name, count in status.layer_row_counts(connection):
            table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"OpenLineage events: {settings.lineage_file}", markup=False)


@cli.group("db")
def db_group() -> None:
    """Manage the embedded PostgreSQL (ignored when --dsn / OLIST_DW_DSN is set)."""


@db_group.command("start")
@click.pass_obj
def db_start(settings: Settings) -> None:
    """Start the embedded server (or find it running), migrate it and write the dbt profile for it."""
    console.print(database.redact(_bootstrap(settings)))


@db_group.command("migrate")
@click.pass_obj
def db_migrate(settings: Settings) -> None:
    """Apply the runner's pending schema migrations (forward-only; safe to run twice, or by two runners at once)."""
    dsn = settings.dsn or database.start_embedded(settings)
    with database.connect(dsn) as connection:
        applied = ledger.migrate(connection)
    for migration in applied:
        console.print(f"applied   {migration.version:04d}_{migration.name}")
    if not applied:
        console.print("up to date")


@db_group.command("migrations")
@click.pass_obj
def db_migrations(settings: Settings) -> None:
    """List the runner's schema migrations: applied (with when) or pending."""
    dsn = settings.dsn or database.start_embedded(settings)
    with database.connect(dsn) as connection:
        applied = ledger.applied_migrations(connection)
    for migration in ledger.migrations():
        when = applied.get(migration.version)
        state = f"applied {when:%Y-%m-%d %H:%M:%S %Z}" if when else "pending"
        console.print(f"{migration.version:04d}_{migration.name}  {state}")


@db_group.command("stop")
@click.pass_obj
def db_stop(settings: Settings) -> None:
    """Stop the embedded server."""
    console.print("stopped" if database.stop_embedded(settings) else "not running")


@db_group.command("status")
@click.pass_obj
def db_status(settings: Settings) -> None:
    """Say whether the embedded server runs, with its pid and data folder."""
    status = database.embedded_status(settings)
    if status.running:
        console.print(
            f"running (pid {status.pid}), data in {status.pgdata}, socket in {status.socket_dir}", markup=False
        )
    else:
        console.print(f"not running, data in {status.pgdata}", markup=False)


@db_group.command("url")
@click.pass_obj
def db_url(settings: Settings) -> None:
    """Print the DSN of the database in use (starting the embedded server if needed)."""
    click.echo(database.redact(database.resolve_dsn(settings)))


@cli.group("metrics")
def metrics_group() -> None:
    """Prometheus metrics (also written after every command to <home>/metrics/olist_dw.prom)."""


@metrics_group.command("serve")
@click.option("--port", default=9464, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def metrics_serve(settings: Settings, port: int) -> None:
    """Serve the ledger's metrics on localhost for a Prometheus scraper, until interrupted."""
    registry = CollectorRegistry()
    registry.register(metrics.LedgerCollector(_bootstrap(settings)))
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    console.print(f"serving metrics on http://127.0.0.1:{port}/metrics (Ctrl-C to stop)")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


def _export_metrics() -> None:
    """Write (and push) the metrics of the command that just ran; a metrics failure never hides its outcome."""
    settings = _session.get("settings")
    if not isinstance(settings, Settings):
        return
    try:
        metrics.export(settings.metrics_file, _session.get("dsn"), _session.get("pushgateway"), _session.get("command"))
    except Exception as error:  # a metrics failure is reported; the command's own exit code stands
        click.echo(f"warning: metrics not written: {error}", err=True)


def main() -> None:
    """Run the CLI; a user's mistake becomes one line on stderr and its exit code, never a traceback."""
    # Everything the runner and its children (dbt, edr) create is the owner's only: the state folder, generated
    # CSVs, logs, lineage events, reports and profiles.yml hold data, and some of them secrets.
    os.umask(0o077)
    try:
        code = cli.main(prog_name="python -m runner", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code if error.exit_code else EXIT_USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_UNEXPECTED)
    except RunnerError as error:
        metrics.errors.labels(type(error).__name__).inc()
        _export_metrics()
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except psycopg.OperationalError as error:
        # The database went away mid-command (stopped, crashed, network): environment, not a bug.
        metrics.errors.labels("DatabaseUnreachable").inc()
        click.echo(f"error: lost the database: {str(error).strip().splitlines()[0]}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    _export_metrics()
    sys.exit(code if isinstance(code, int) else 0)
