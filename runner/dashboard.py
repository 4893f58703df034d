"""The executive dashboard: a marimo app over the marts, served read-only on localhost.

The app (``dashboards/executive.py``) is the last node of the lineage (the dbt exposure ``executive_dashboard``).
It is served in marimo's run mode (no editor, no code shown) in this process, and every database session it opens
is read-only, so a dashboard can never change the warehouse it shows. The DSN reaches the app through the
environment, never through a file, so a password never lands on disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import conninfo

from runner import database, ledger
from runner.errors import UsageError
from runner.settings import PIPELINE, PROJECT_DIR, Settings

APP_FILE = PROJECT_DIR / "dashboards" / "executive.py"
HOST = "127.0.0.1"
DEFAULT_PORT = 2718
STALE_HOURS_VARIABLE = "OLIST_DW_DASHBOARD_STALE_HOURS"
DEFAULT_STALE_HOURS = 24.0
READ_ONLY_OPTION = "-c default_transaction_read_only=on"
APPLICATION_NAME = "olist-dw dashboard"
# What marimo would otherwise send home or fetch: its update check (edit mode only, off anyway) and usage stats.
NO_TELEMETRY = {"MARIMO_SKIP_UPDATE_CHECK": "1", "DO_NOT_TRACK": "1"}


def stale_after(value: str | None) -> timedelta:
    """OLIST_DW_DASHBOARD_STALE_HOURS: how long after the last successful run the page warns that it is stale."""
    if not value:
        return timedelta(hours=DEFAULT_STALE_HOURS)
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if hours <= 0:
        raise UsageError(f"{STALE_HOURS_VARIABLE} must be a positive number of hours, got {value!r}")
    return timedelta(hours=hours)


def configured_stale_after() -> timedelta:
    """The stale threshold this process is configured with (the CLI checks it before serving, the page uses it)."""
    return stale_after(os.environ.get(STALE_HOURS_VARIABLE))


def read_only_dsn(dsn: str) -> str:
    """The DSN with ``default_transaction_read_only`` on: the server itself refuses any write from the dashboard.

    Appended to the DSN's own ``options`` (a later ``-c`` wins), so a caller's other settings are kept.
    """
    parts = conninfo.conninfo_to_dict(dsn)
    options = str(parts.get("options") or "")
    if READ_ONLY_OPTION in options:
        return dsn
    return conninfo.make_conninfo(dsn, options=f"{options} {READ_ONLY_OPTION}".strip())


def connect(settings: Settings) -> psycopg.Connection:
    """A read-only connection with the runner's own settings: ``OLIST_DW_DSN``, else the embedded server."""
    dsn = database.resolve_dsn(settings)
    return database.connect(read_only_dsn(dsn), application_name=APPLICATION_NAME)


@dataclass(frozen=True)
class Freshness:
    """How current the marts are, from the runner's ledger (what ``runner status`` reports).

    The lag is the time since the last successful window run, on the database's clock: the demo data is from
    2017, so the time since the newest purchase would always be years and say nothing about the pipeline.
    """

    watermark: datetime | None
    last_success_at: datetime | None
    checked_at: datetime
    stale_after: timedelta

    @property
    def lag(self) -> timedelta | None:
        return self.checked_at - self.last_success_at if self.last_success_at else None

    @property
    def is_stale(self) -> bool:
        """Stale when no run ever succeeded, or the last success is older than the threshold."""
        return self.lag is None or self.lag > self.stale_after


def freshness(connection: psycopg.Connection, threshold: timedelta) -> Freshness:
    """Read the watermark and the last successful run; both unset on a database the runner never migrated."""
    checked_at = connection.execute("select now()").fetchone()[0]
    migrated = connection.execute(
        "select to_regclass('metadata.watermarks') is not null and to_regclass('metadata.window_runs') is not null"
    ).fetchone()[0]
    if not migrated:
        return Freshness(None, None, checked_at, threshold)
    return Freshness(
        ledger.watermark(connection, PIPELINE), ledger.last_success(connection, PIPELINE), checked_at, threshold
    )


def serve(settings: Settings, dsn: str, port: int) -> None:
    """Serve the app on localhost until interrupted, in marimo's run mode (read-only, code hidden).

    The app reads its settings from this process's environment (marimo runs its cells in this process), so
    the DSN given by flag or found for the embedded server is handed over as ``OLIST_DW_DSN``.
    """
    import marimo
    import uvicorn

    os.environ.update(NO_TELEMETRY)
    os.environ["OLIST_DW_DSN"] = read_only_dsn(dsn)
    os.environ["OLIST_DW_HOME"] = str(settings.home)
    app = marimo.create_asgi_app(quiet=True, include_code=False).with_app(path="", root=str(app_file())).build()
    uvicorn.run(app, host=HOST, port=port, log_level="warning")


def app_file() -> Path:
    """The app shipped with the project; a checkout without it is a broken install, said plainly."""
    if not APP_FILE.is_file():
        raise UsageError(f"the dashboard app is missing: {APP_FILE}")
    return APP_FILE
