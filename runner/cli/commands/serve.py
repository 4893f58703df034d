"""Showing the warehouse to people and tools: dbt docs, the executive dashboard, Prometheus metrics, Elementary's
quality report."""

from __future__ import annotations

from pathlib import Path

import click

from runner import dashboard, database, dbt, metrics, report
from runner.cli import render
from runner.cli.session import Session, pass_session


@click.command("report")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the HTML report.")
@pass_session
def report_command(session: Session, out: Path | None) -> None:
    """Write Elementary's HTML quality report (offline) and print its path."""
    path = report.elementary_report(session.settings, session.bootstrap(), out)
    render.plain(str(path))


@click.command("docs")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Only generate the site; print where it is.")
@pass_session
def docs_command(session: Session, port: int, no_serve: bool) -> None:
    """Generate the dbt docs site (lineage from sources to the exposures) and serve it on localhost."""
    dsn = session.bootstrap()
    site = dbt.generate_docs(session.settings, dsn)
    if no_serve:
        render.plain(str(site / "index.html"))
        return
    render.serving_docs(port)
    dbt.serve_docs(session.settings, dsn, port)


@click.command("dashboard")
@click.option("--port", default=dashboard.DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@pass_session
def dashboard_command(session: Session, port: int) -> None:
    """Serve the executive dashboard (a marimo app over the marts) read-only on localhost, until interrupted.

    The address printed holds a new access token: only who opens it (or types the token in) sees the page.
    """
    dashboard.configured_stale_after()  # a bad OLIST_DW_DASHBOARD_STALE_HOURS fails here, not in the page
    dsn = database.resolve_dsn(session.settings)
    dashboard.check_reader(dsn)  # no database or no reader role: one line and exit code 6, rather than an error page
    token = dashboard.new_access_token()
    render.serving_dashboard(dashboard.address(port, token))
    dashboard.serve(session.settings, dsn, port, token)


@click.group("metrics")
def metrics_group() -> None:
    """Prometheus metrics (also written after every command to <home>/metrics/olist_dw.prom)."""


@metrics_group.command("serve")
@click.option("--port", default=9464, show_default=True, type=click.IntRange(1, 65535))
@pass_session
def metrics_serve(session: Session, port: int) -> None:
    """Serve the ledger's metrics on localhost for a Prometheus scraper, until interrupted."""
    server, thread = metrics.serve(session.bootstrap(), port)
    render.serving_metrics(port)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


COMMANDS = (report_command, docs_command, dashboard_command, metrics_group)
