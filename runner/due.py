"""Which windows are due, and why: the runner builds what the data or the project changed, and nothing else.

A window is due when
- it never succeeded (data loaded where no window has been built yet, or a window asked for by name),
- a run touching it failed since its last success (a crash, a rollback of a batch it held),
- a load placed rows in it that its last success did not see (a late order, a restated status, a late child row),
- or the dbt project changed since its last success.

What a success saw is the snapshot of the transaction that started it (``window_runs.data_snapshot``), compared
with each file's loading transaction. Where a file's rows land is worked out once per file, in purchase days
(``metadata.file_placements``). Purchase times outside the calendar (the dbt vars ``date_spine_start`` and
``date_spine_end``) or after the database's clock plus a day are implausible: those rows are quarantined by the
dbt project and never plan a window here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

import psycopg
import yaml
from psycopg import sql

from runner.settings import PIPELINE

# A purchase time later than the database's clock by more than this is a typo, not an order.
FUTURE_TOLERANCE = timedelta(days=1)
WINDOWED_CHILDREN = ("order_items", "order_payments", "order_reviews")
# The entities whose rows are placed by the purchase time of the orders they name; any other file is reference data.
PLACED_BY_ORDER = ("orders", "customers", *WINDOWED_CHILDREN)
ROLLED_BACK = "BatchRolledBack"


@dataclass(frozen=True)
class Span:
    """A half-open span of purchase time ``[start, end)``."""

    start: datetime
    end: datetime

    def contains(self, other: Span) -> bool:
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass
class DueWindow:
    """A window to build, with every reason it is due (a person reads them in ``status``)."""

    span: Span
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Calendar:
    """The purchase times that are plausible: inside the calendar, and not in the future."""

    start: datetime
    end: datetime

    @classmethod
    def of_project(cls, project_dir: Path) -> Calendar:
        """The calendar the dbt project judges purchase times by (its vars ``date_spine_start``/``_end``)."""
        variables = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
        return cls(_midnight(variables["date_spine_start"]), _midnight(variables["date_spine_end"]))

    def upper(self, connection: psycopg.Connection) -> datetime:
        """The end of plausible purchase times now: the calendar's end or the database's clock plus a day."""
        now = connection.execute("select localtimestamp").fetchone()[0]
        return min(self.end, now + FUTURE_TOLERANCE)


def _midnight(value: object) -> datetime:
    return datetime.combine(date.fromisoformat(str(value)), time())


@dataclass(frozen=True)
class Run:
    """One ledger row, as the plan reads it."""

    run_id: uuid.UUID
    span: Span
    status: str
    started_at: datetime
    fingerprint: str | None
    error_class: str | None
    error_message: str | None


Placement = tuple[date | None, datetime | None, datetime | None]


class Raw(Protocol):
    """Where the loaded rows are, as planning reads them: PostgreSQL's raw schema (``PostgresRaw``), or the Delta
    tables of a warehouse on Sail (``runner.delta.SailRaw``). The ledger is in PostgreSQL either way."""

    def placements(
        self, entity: str, first_raw_id: int, last_raw_id: int, calendar_start: datetime, upper: datetime
    ) -> list[Placement]:
        """One file's placements: (purchase day, first and last purchase time) per day its rows touch, and
        (None, None, None) when some of its rows touch no plausible purchase."""
        ...

    def purchase_range(self, start: datetime, end: datetime) -> tuple[datetime | None, datetime | None]:
        """The first and last purchase time of the raw orders in ``[start, end)``."""
        ...


@dataclass(frozen=True)
class PostgresRaw:
    """Planning's reads of PostgreSQL's raw tables (see Raw)."""

    connection: psycopg.Connection

    def placements(
        self, entity: str, first_raw_id: int, last_raw_id: int, calendar_start: datetime, upper: datetime
    ) -> list[Placement]:
        return self.connection.execute(
            placement_query(entity),
            {
                "first_raw_id": first_raw_id,
                "last_raw_id": last_raw_id,
                "calendar_start": calendar_start,
                "upper": upper,
            },
        ).fetchall()

    def purchase_range(self, start: datetime, end: datetime) -> tuple[datetime | None, datetime | None]:
        first, last = self.connection.execute(
            "select min(metadata.purchase_time(order_purchase_timestamp)),"
            " max(metadata.purchase_time(order_purchase_timestamp))"
            " from raw.orders where metadata.purchase_time(order_purchase_timestamp) >= %s"
            " and metadata.purchase_time(order_purchase_timestamp) < %s",
            (start, end),
        ).fetchone()
        return first, last


def place_new_files(connection: psycopg.Connection, calendar: Calendar, raw: Raw | None = None) -> int:
    """Work out where the rows of each file not placed yet land; one transaction per file, safe to run at once.

    Each file's rows are found by their raw ids (a file's rows have consecutive ids, and a BRIN index on them
    keeps this proportional to the file), the orders they touch by key, and every load of those orders by key.
    """
    raw = raw or PostgresRaw(connection)
    pending = connection.execute(
        "select batch_id, file_name, entity, first_raw_id, row_count from metadata.loaded_files"
        " where placed_at is null and rolled_back_at is null order by loaded_at"
    ).fetchall()
    upper = calendar.upper(connection)
    for batch_id, file_name, entity, first_raw_id, row_count in pending:
        with connection.transaction():
            claimed = connection.execute(
                "update metadata.loaded_files set placed_at = now()"
                " where batch_id = %s and file_name = %s and placed_at is null",
                (batch_id, file_name),
            ).rowcount
            if not (claimed and row_count and first_raw_id is not None):
                continue
            if entity in PLACED_BY_ORDER:
                found = raw.placements(entity, first_raw_id, first_raw_id + row_count - 1, calendar.start, upper)
            else:
                # Reference data (products, sellers, places, category names): every window rebuilds it.
                found = [(None, None, None)]
            with connection.cursor() as cursor:
                cursor.executemany(
                    "insert into metadata.file_placements"
                    " (batch_id, file_name, purchase_day, first_purchased_at, last_purchased_at)"
                    " values (%s, %s, %s, %s, %s)",
                    [(batch_id, file_name, *placement) for placement in found],
                )
    return len(pending)


def placement_query(entity: str) -> sql.Composed:
    """One orders or order-child file's placements: its purchase days, plus a day-less row when some rows have
    none (see Raw.placements)."""
    plausible = sql.SQL(
        "metadata.purchase_time(orders.order_purchase_timestamp) >= %(calendar_start)s"
        " and metadata.purchase_time(orders.order_purchase_timestamp) < %(upper)s"
    )
    file_rows = sql.SQL("select {key} from raw.{table} where _raw_id between %(first_raw_id)s and %(last_raw_id)s")
    if entity == "customers":
        rows = file_rows.format(key=sql.Identifier("customer_id"), table=sql.Identifier(entity))
        touched = sql.SQL(
            "select distinct orders.order_id from raw.orders as orders"
            " join file_rows on file_rows.customer_id = orders.customer_id"
        )
        unplaced = sql.SQL(
            "select from file_rows where not exists ("
            " select from raw.orders as orders where orders.customer_id = file_rows.customer_id and {plausible})"
        ).format(plausible=plausible)
    else:
        rows = file_rows.format(key=sql.Identifier("order_id"), table=sql.Identifier(entity))
        touched = sql.SQL("select distinct order_id from file_rows")
        unplaced = sql.SQL(
            "select from file_rows where not exists ("
            " select from raw.orders as orders where orders.order_id = file_rows.order_id and {plausible})"
        ).format(plausible=plausible)
    return sql.SQL(
        """
        with file_rows as ({rows}),
        touched as ({touched}),
        purchases as (
            select metadata.purchase_time(orders.order_purchase_timestamp) as purchased_at
            from raw.orders as orders
            where orders.order_id in (select order_id from touched) and {plausible}
        )
        select cast(purchased_at as date), min(purchased_at), max(purchased_at)
        from purchases
        group by cast(purchased_at as date)
        union all
        select null, null, null
        where exists ({unplaced})
        """
    ).format(rows=rows, touched=touched, unplaced=unplaced, plausible=plausible)


def ledger_runs(connection: psycopg.Connection) -> list[Run]:
    rows = connection.execute(
        "select run_id, window_start, window_end, status, started_at, project_fingerprint, error_class,"
        " error_message from metadata.window_runs where pipeline = %s order by started_at",
        (PIPELINE,),
    ).fetchall()
    return [Run(run_id, Span(start, end), *rest) for run_id, start, end, *rest in rows]


def last_success(runs: list[Run], span: Span) -> Run | None:
    """The newest succeeded run whose window holds all of ``span``."""
    covering = [run for run in runs if run.status == "succeeded" and run.span.contains(span)]
    return max(covering, key=lambda run: run.started_at, default=None)


def failure_reason(run: Run) -> str:
    if run.error_class == ROLLED_BACK and run.error_message:
        return run.error_message.split(";")[0]
    return f"a run failed since ({run.error_class or 'unknown error'})"


def judge(
    runs: list[Run], span: Span, fingerprint: str | None, *, never_built: str = "never built"
) -> tuple[Run | None, list[str]]:
    """A window's last success and the reasons it is due, the loads it missed aside (see unseen_batches).

    ``fingerprint`` None leaves the project out of the judgement (ledger-only plans, as in backfill's tests).
    """
    success = last_success(runs, span)
    if success is None:
        failed = [run for run in runs if run.status != "succeeded" and run.span.overlaps(span)]
        return None, [failure_reason(failed[-1]) if failed else never_built]
    reasons = []
    spoiled = [
        run
        for run in runs
        if run.status != "succeeded" and run.span.overlaps(span) and run.started_at > success.started_at
    ]
    if spoiled:
        reasons.append(failure_reason(spoiled[-1]))
    if fingerprint is not None and success.fingerprint != fingerprint:
        reasons.append("project changed")
    return success, reasons


def unseen_batches(
    connection: psycopg.Connection, judged: list[tuple[Span, Run]], *, unplaced_for: Span | None = None
) -> dict[Span, list[uuid.UUID]]:
    """For each window and its last success, the batches with rows placed in it that the success did not see.

    ``unplaced_for``: the window that also answers for rows no window places (the newest one).
    """
    if not judged:
        return {}
    found = connection.execute(
        """
        with judged as (
            select *
            from unnest(%(starts)s::timestamp[], %(ends)s::timestamp[], %(runs)s::uuid[])
                as judged (window_start, window_end, run_id)
        )
        select judged.window_start, judged.window_end, files.batch_id, min(files.loaded_at)
        from judged
        join metadata.window_runs as run on run.run_id = judged.run_id
        join metadata.file_placements as placement
            on (
                placement.purchase_day between cast(judged.window_start as date)
                    and cast(judged.window_end - interval '1 microsecond' as date)
                and placement.first_purchased_at < judged.window_end
                and placement.last_purchased_at >= judged.window_start
            )
            or (
                placement.purchase_day is null
                and judged.window_start = %(unplaced_start)s and judged.window_end = %(unplaced_end)s
            )
        join metadata.loaded_files as files
            on files.batch_id = placement.batch_id and files.file_name = placement.file_name
        where files.rolled_back_at is null
            and not case
                when run.data_snapshot is not null and files.loaded_xact is not null
                    then pg_visible_in_snapshot(files.loaded_xact, run.data_snapshot)
                else files.loaded_at < run.started_at
            end
        group by 1, 2, 3
        order by 4
        """,
        {
            "starts": [span.start for span, _ in judged],
            "ends": [span.end for span, _ in judged],
            "runs": [run.run_id for _, run in judged],
            "unplaced_start": unplaced_for.start if unplaced_for else None,
            "unplaced_end": unplaced_for.end if unplaced_for else None,
        },
    ).fetchall()
    batches: dict[Span, list[uuid.UUID]] = {}
    for start, end, batch_id, _ in found:
        batches.setdefault(Span(start, end), []).append(batch_id)
    return batches


def judge_windows(
    connection: psycopg.Connection, spans: list[Span], fingerprint: str | None, runs: list[Run] | None = None
) -> list[DueWindow]:
    """Each of ``spans`` that is due, with its reasons (spans asked for by name: never built means due)."""
    runs = ledger_runs(connection) if runs is None else runs
    verdicts = [(span, *judge(runs, span, fingerprint)) for span in spans]
    missed = unseen_batches(connection, [(span, success) for span, success, _ in verdicts if success is not None])
    due = []
    for span, _, reasons in verdicts:
        reasons = reasons + [f"new batch {batch_id}" for batch_id in missed.get(span, [])]
        if reasons:
            due.append(DueWindow(span, reasons))
    return due


def due_windows(
    connection: psycopg.Connection, calendar: Calendar, fingerprint: str, raw: Raw | None = None
) -> list[DueWindow]:
    """Every window due, oldest first: the ledger's windows that are stale, and loaded data no window covers.

    A window inside another due one is left out: building the larger one builds it too.
    """
    raw = raw or PostgresRaw(connection)
    place_new_files(connection, calendar, raw)
    runs = ledger_runs(connection)
    spans = sorted({run.span for run in runs}, key=lambda span: (span.start, span.end))
    verdicts = [(span, *judge(runs, span, fingerprint, never_built="")) for span in spans]
    succeeded = [(span, success) for span, success, _ in verdicts if success is not None]
    newest = max((span for span, _ in succeeded), key=lambda span: (span.end, span.start), default=None)
    missed = unseen_batches(connection, succeeded, unplaced_for=newest)
    due = []
    for span, _, reasons in verdicts:
        reasons = [reason for reason in reasons if reason]
        reasons += [f"new batch {batch_id}" for batch_id in missed.get(span, [])]
        if reasons:
            due.append(DueWindow(span, reasons))
    due += never_built(connection, calendar, [run.span for run in runs if run.status == "succeeded"], raw)
    merged: dict[Span, DueWindow] = {}
    for window in due:
        merged.setdefault(window.span, DueWindow(window.span)).reasons.extend(window.reasons)
    outermost = [
        window for span, window in merged.items() if not any(other != span and other.contains(span) for other in merged)
    ]
    return sorted(outermost, key=lambda window: (window.span.start, window.span.end))


def covered(spans: list[Span]) -> list[Span]:
    """The union of spans, as disjoint spans in order."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda span: span.start):
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged


def never_built(
    connection: psycopg.Connection, calendar: Calendar, built: list[Span], raw: Raw | None = None
) -> list[DueWindow]:
    """Loaded data outside every succeeded window, as windows that close the gaps around what is built.

    Before the first built window: from the day of the first such purchase; between two: the whole gap; after
    the last: to the end of the day of the newest plausible purchase.
    """
    raw = raw or PostgresRaw(connection)
    upper = calendar.upper(connection)
    done = covered(built)
    bounds = [calendar.start, *[edge for span in done for edge in (span.start, span.end)], upper]
    due = []
    for index in range(0, len(bounds), 2):
        gap = Span(bounds[index], bounds[index + 1])
        if gap.end <= gap.start:
            continue
        first, last = raw.purchase_range(gap.start, gap.end)
        if first is None or last is None:
            continue
        start = gap.start if index > 0 else datetime.combine(first.date(), time())
        end = gap.end if index + 2 < len(bounds) else datetime.combine(last.date() + timedelta(days=1), time())
        due.append(DueWindow(Span(start, end), ["never built"]))
    return due


def end_of_data(connection: psycopg.Connection, calendar: Calendar, raw: Raw | None = None) -> datetime | None:
    """The end of the day of the newest plausible purchase loaded; None before anything was loaded."""
    _, newest = (raw or PostgresRaw(connection)).purchase_range(calendar.start, calendar.upper(connection))
    return None if newest is None else datetime.combine(newest.date() + timedelta(days=1), time())


def watermark(
    connection: psycopg.Connection, calendar: Calendar, fingerprint: str, raw: Raw | None = None
) -> datetime | None:
    """How far the warehouse is complete: the start of the first due window, at most the end of the data."""
    end = end_of_data(connection, calendar, raw)
    if end is None:
        return None
    due = due_windows(connection, calendar, fingerprint, raw)
    return min([end, *(window.span.start for window in due)])
