"""The command line: ``python -m runner <command>``. Thin: parse, call a module, print, map errors to exit codes."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import click
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from runner import database, dbt, generate, load, pipeline
from runner.errors import EXIT_UNEXPECTED, EXIT_USAGE, RunnerError, UsageError
from runner.observability import configure_logging, stage
from runner.settings import Settings

console = Console(soft_wrap=True)

DEMO_ORDERS = 3000
DEMO_START = date(2017, 1, 1)
DEMO_DAYS = 90
DEMO_SEED = 42
LAYER_SCHEMAS = ("raw", "staging", "core", "snapshots", "mart")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dsn", envvar="OLIST_DW_DSN", help="PostgreSQL 15+ to use instead of the embedded server.")
@click.option(
    "--home",
    envvar="OLIST_DW_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the runner's state (embedded database, lineage events). Default: .runner/ in the project.",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), help="Log format (default: by terminal).")
@click.pass_context
def cli(ctx: click.Context, dsn: str | None, home: Path | None, log_format: str | None) -> None:
    """olist-dw: load the Olist export into PostgreSQL and build its warehouse with dbt, window by window."""
    configure_logging(log_format)
    ctx.obj = Settings.from_environment(dsn=dsn, home=home)


@cli.command("generate")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--orders", default=DEMO_ORDERS, show_default=True, type=click.IntRange(min=1))
@click.option("--start", default=DEMO_START.isoformat(), show_default=True, help="First purchase day.")
@click.option("--days", default=DEMO_DAYS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=DEMO_SEED, show_default=True, type=int)
@click.option("--dirty", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Rate of real-data defects.")
def generate_command(out_dir: Path, orders: int, start: str, days: int, seed: int, dirty: float) -> None:
    """Write the nine Olist CSV files (Kaggle names and headers), deterministic for a seed."""
    first_day = pipeline.parse_bound(start, "--start").date()
    counts = generate.generate(generate.GenerateOptions(out_dir, orders, first_day, days, seed, dirty))
    for file_name, rows in counts.items():
        console.print(f"{rows:>9,} rows  {out_dir / file_name}")


@cli.command("load")
@click.option("--source", "source_dir", required=True, type=click.Path(path_type=Path), help="Folder of Olist CSVs.")
@click.pass_obj
def load_command(settings: Settings, source_dir: Path) -> None:
    """COPY the Olist CSV files of a folder into raw.*, one transaction per file, skipping files already loaded."""
    if not source_dir.is_dir():
        raise UsageError(f"source folder not found: {source_dir}")
    dsn = pipeline.bootstrap(settings)
    _load(dsn, source_dir)


def _load(dsn: str, source_dir: Path) -> load.LoadReport:
    with database.connect(dsn) as connection, stage("load", source=str(source_dir)) as fields:
        report = load.load_directory(connection, source_dir, on_file=_print_file_result)
        fields.update(batch_id=str(report.batch_id), rows=report.rows_loaded)
    for name in report.unknown_files:
        console.print(f"[yellow]left alone[/] {name}: not a file of the Olist layout")
    for name in report.absent_files:
        console.print(f"[yellow]absent[/]    {name}")
    return report


def _print_file_result(result: load.FileResult) -> None:
    if result.loaded:
        console.print(f"[green]loaded[/]    {result.file_name}: {result.row_count:,} rows into raw.{result.entity}")
    else:
        console.print(f"[dim]skipped[/]   {result.file_name}: same content already loaded by batch {result.batch_id}")


@cli.command("run")
@click.option("--window", "window_text", required=True, metavar="START..END", help="e.g. 2017-01-01..2017-02-01")
@click.pass_obj
def run_command(settings: Settings, window_text: str) -> None:
    """Build one window [START, END) through staging, core and marts with dbt-ol, then move the watermark."""
    window = pipeline.parse_window(window_text)
    dsn = pipeline.bootstrap(settings)
    _run(settings, dsn, window)


def _run(settings: Settings, dsn: str, window: pipeline.Window) -> pipeline.WindowResult:
    with stage("window", window=str(window)) as fields:
        result = pipeline.run_window(settings, dsn, window)
        fields.update(run_id=result.run_id, dbt_invocation_id=result.invocation_id)
    console.print(f"[green]built[/]     window {window} (dbt invocation {result.invocation_id})")
    return result


@cli.command("deps")
@click.option("--force", is_flag=True, help="Reinstall even when the locked versions are present.")
@click.pass_obj
def deps_command(settings: Settings, force: bool) -> None:
    """Install the locked dbt packages (hub, else the offline store) and those of the Elementary CLI."""
    how = dbt.ensure_packages(settings, force=force)
    edr_dir = dbt.ensure_edr_packages(settings)
    console.print(f"dbt packages: {how}; Elementary CLI packages: {edr_dir}")


@cli.command("demo")
@click.option("--orders", default=DEMO_ORDERS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=DEMO_SEED, show_default=True, type=int)
@click.pass_obj
def demo_command(settings: Settings, orders: int, seed: int) -> None:
    """Generate a small dataset, load it and build it month by month; safe to run again."""
    data_dir = settings.home / "demo-data"
    generate.generate(generate.GenerateOptions(data_dir, orders, DEMO_START, DEMO_DAYS, seed))
    dsn = pipeline.bootstrap(settings)
    _load(dsn, data_dir)
    last_day = DEMO_START + timedelta(days=DEMO_DAYS - 1)
    for window in pipeline.month_windows(DEMO_START, last_day):
        _run(settings, dsn, window)
    table = Table("table", "rows", title="What each layer holds")
    with database.connect(dsn) as connection:
        for name, count in layer_row_counts(connection):
            table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"OpenLineage events: {settings.lineage_file}")


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


@cli.group("db")
def db_group() -> None:
    """Manage the embedded PostgreSQL (ignored when --dsn / OLIST_DW_DSN is set)."""


@db_group.command("start")
@click.pass_obj
def db_start(settings: Settings) -> None:
    """Start the embedded server (or find it running), migrate it and write the dbt profile for it."""
    console.print(database.redact(pipeline.bootstrap(settings)))


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
        console.print(f"running (pid {status.pid}), data in {status.pgdata}, socket in {status.socket_dir}")
    else:
        console.print(f"not running, data in {status.pgdata}")


@db_group.command("url")
@click.pass_obj
def db_url(settings: Settings) -> None:
    """Print the DSN of the database in use (starting the embedded server if needed)."""
    click.echo(database.redact(database.resolve_dsn(settings)))


def main() -> None:
    """Run the CLI; a user's mistake becomes one line on stderr and its exit code, never a traceback."""
    try:
        code = cli.main(prog_name="python -m runner", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code if error.exit_code else EXIT_USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_UNEXPECTED)
    except RunnerError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
