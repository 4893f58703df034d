"""One processing window end to end: bootstrap the database, build the window with dbt, record it.

Kept apart from the CLI so that tests and the demo call the same functions a command does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

import psycopg

from runner import database, dbt, ledger, load
from runner.errors import RunnerError, UsageError
from runner.settings import PIPELINE, Settings

WINDOW_SEPARATOR = ".."


@dataclass(frozen=True)
class Window:
    """A half-open processing window ``[start, end)`` on order purchase time."""

    start: datetime
    end: datetime

    def as_dbt_vars(self) -> dict[str, str]:
        return {"watermark_start": self.start.isoformat(sep=" "), "watermark_end": self.end.isoformat(sep=" ")}

    def __str__(self) -> str:
        return f"[{self.start.isoformat(sep=' ')}, {self.end.isoformat(sep=' ')})"


def parse_bound(text: str, what: str) -> datetime:
    """A window bound: ``YYYY-MM-DD`` (midnight) or ``YYYY-MM-DD[ T]HH:MM[:SS]``."""
    text = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?", text):
        raise UsageError(f"{what} must look like 2017-01-01 or 2017-01-01T06:00, got {text!r}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"{what} is not a real date or time: {text!r} ({error})") from error
    return parsed


def parse_window(text: str) -> Window:
    """``START..END`` into a window; END must come after START."""
    start_text, separator, end_text = text.partition(WINDOW_SEPARATOR)
    if not separator or not start_text or not end_text:
        raise UsageError(f"--window must be START..END, e.g. 2017-01-01..2017-02-01; got {text!r}")
    return make_window(parse_bound(start_text, "window start"), parse_bound(end_text, "window end"))


def make_window(start: datetime, end: datetime) -> Window:
    if end <= start:
        raise UsageError(
            f"the window must end after it starts; got {start.isoformat(sep=' ')}..{end.isoformat(sep=' ')}"
        )
    return Window(start, end)


def month_windows(first: date, last: date) -> list[Window]:
    """Calendar-month windows covering the days ``first``..``last``."""
    windows = []
    cursor = date(first.year, first.month, 1)
    while cursor <= last:
        following = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        windows.append(Window(datetime.combine(cursor, time()), datetime.combine(following, time())))
        cursor = following
    return windows


def bootstrap(settings: Settings) -> str:
    """Make the database ready for any command: reachable, migrated, raw tables present, dbt profile written."""
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as connection:
        ledger.migrate(connection)
        load.ensure_raw_tables(connection)
    dbt.write_profile(settings, dsn)
    return dsn


@dataclass(frozen=True)
class WindowResult:
    window: Window
    run_id: str
    invocation_id: str | None


def run_window(settings: Settings, dsn: str, window: Window) -> WindowResult:
    """Build one window with ``dbt-ol build`` and record it; a failure is recorded and re-raised."""
    dbt.ensure_packages(settings)
    with database.connect(dsn) as connection:
        run_id = ledger.start_window(connection, PIPELINE, window.start, window.end)
        try:
            result = dbt.run_dbt(settings, ["build"], dsn=dsn, variables=window.as_dbt_vars())
        except (RunnerError, psycopg.Error) as error:
            ledger.fail_window(connection, run_id, str(error))
            raise
        ledger.succeed_window(connection, run_id, PIPELINE, window.end, result.invocation_id)
    return WindowResult(window, str(run_id), result.invocation_id)
