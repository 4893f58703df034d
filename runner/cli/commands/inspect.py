"""Looking: the pipeline's state, the window ledger, the load batches, the quarantined rows."""

from __future__ import annotations

import click

from runner import database, dbt, ledger, pipeline, quarantine, status
from runner.cli import render
from runner.cli.options import json_option
from runner.cli.session import Session, pass_session
from runner.settings import PIPELINE


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def status_command(session: Session, as_json: bool) -> None:
    """Watermark, freshness, last runs, gaps, failed windows and rows per layer."""
    dsn = session.bootstrap()
    with database.connect(dsn) as connection:
        report = status.collect(connection, dbt.project_fingerprint(session.settings.project_dir))
    render.status(report, as_json)


@click.command("runs")
@click.option("--status", "run_status", type=click.Choice(["running", "succeeded", "failed"]))
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@json_option
@pass_session
def runs_command(session: Session, run_status: str | None, limit: int, as_json: bool) -> None:
    """The window ledger, newest first."""
    with database.connect(session.bootstrap()) as connection:
        runs = ledger.window_runs(connection, PIPELINE, status=run_status, limit=limit)
    render.window_runs(runs, as_json)


@click.command("batches")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@json_option
@pass_session
def batches_command(session: Session, limit: int, as_json: bool) -> None:
    """The load batches, newest first: their ids (for `rollback batch`), sources, files and rows."""
    with database.connect(session.bootstrap()) as connection:
        batches = ledger.load_batches(connection, limit=limit)
    render.load_batches(batches, as_json)


@click.group("quarantine")
def quarantine_group() -> None:
    """Look at the rows the row rules set aside (quarantine.<entity>); fix the source and re-run to clear them."""


window_option = click.option("--window", "window_text", help="Only rows of START..END (their order's purchase time).")


@quarantine_group.command("list")
@window_option
@json_option
@pass_session
def quarantine_list(session: Session, window_text: str | None, as_json: bool) -> None:
    """Rows quarantined per entity and rule, with the purchase times they span."""
    window = pipeline.parse_window(window_text) if window_text else None
    with database.connect(session.bootstrap()) as connection:
        counts = quarantine.summary(connection, *(window.start, window.end) if window else ())
    render.quarantine_summary(counts, as_json)


@quarantine_group.command("show")
@click.argument("entity", type=click.Choice(quarantine.ENTITIES))
@window_option
@click.option("--rule", help="Only rows set aside by this rule (see `quarantine list`).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@json_option
@pass_session
def quarantine_show(
    session: Session, entity: str, window_text: str | None, rule: str | None, limit: int, as_json: bool
) -> None:
    """One entity's quarantined rows: file and line, rule, reason, and the values as loaded."""
    window = pipeline.parse_window(window_text) if window_text else None
    with database.connect(session.bootstrap()) as connection:
        found = quarantine.rows(
            connection,
            entity,
            start=window.start if window else None,
            end=window.end if window else None,
            rule=rule,
            limit=limit,
        )
    render.quarantined_rows(found, as_json)


COMMANDS = (status_command, runs_command, batches_command, quarantine_group)
