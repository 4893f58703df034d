"""Windows end to end: bootstrap the database, plan the windows, build them with dbt, publish and record them.

Kept apart from the CLI so that tests, benchmarks and the demo call the same functions a command does: ``run``
is run_due, ``backfill`` is backfill, ``publish`` is deploy_marts (or roll_back_marts), each holding the pipeline's
lock. What they have to say as they go (due windows, windows built, the quarantine's change) they tell an
Observer, which the CLI prints.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import tenacity
from openlineage.client.event_v2 import RunState
from psycopg import sql

from runner import database, dbt, delta, due, faults, ledger, lineage, load, lock, marts, quarantine, sail_marts
from runner.errors import (
    DataQualityStop,
    PipelineFailure,
    ResourceFailure,
    TransientFailure,
    UnplacedRowsStop,
    UsageError,
)
from runner.observability import log, stage
from runner.settings import PIPELINE, PROJECT_DIR, Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WINDOW_SEPARATOR = ".."
# The runner builds everything but the marts with dbt, then refreshes and checks the marts itself, in the same
# transaction that records the windows (see publish_windows). The marts' unit tests run with `dbt build` by hand
# and in CI.
MART_MODELS_AND_DATA_TESTS = ("path:models/marts,resource_type:model", "path:models/marts,test_type:data")
# Built by the first window build of each version of the project on a database (see build_and_publish), not by
# every window: Elementary's own models (its results tables), and the unit tests, which test the SQL's logic on
# fixtures and so can only fail differently when the project changes.
ONCE_PER_PROJECT_VERSION = ("package:elementary", "resource_type:unit_test")
WINDOW_BUILD_EXCLUDES = (*MART_MODELS_AND_DATA_TESTS, *ONCE_PER_PROJECT_VERSION)
# dbt-project-evaluator needs no exclude: its models and seed are disabled unless CI enables them (dbt_project.yml).
# What dbt_project.yml says when it reads the window from the environment (see build_settings).
RUN_SETTINGS_MARKER = "env_var('OLIST_DW_WATERMARK_START'"


@dataclass(frozen=True)
class Window:
    """A half-open processing window ``[start, end)`` on order purchase time."""

    start: datetime
    end: datetime

    def as_dbt_vars(self) -> dict[str, str]:
        """The window as a person passes it to dbt by hand (``--vars``)."""
        return {"watermark_start": self.start.isoformat(sep=" "), "watermark_end": self.end.isoformat(sep=" ")}

    @property
    def span(self) -> due.Span:
        return due.Span(self.start, self.end)

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
    """A window asked for: it ends after it starts, inside the project's calendar (a typo'd year plans no windows)."""
    if end <= start:
        raise UsageError(
            f"the window must end after it starts; got {start.isoformat(sep=' ')}..{end.isoformat(sep=' ')}"
        )
    calendar = due.Calendar.of_project(PROJECT_DIR)
    if start < calendar.start or end > calendar.end:
        raise UsageError(
            f"the window {start.isoformat(sep=' ')}..{end.isoformat(sep=' ')} is outside the project's calendar, "
            f"{calendar.start:%Y-%m-%d}..{calendar.end:%Y-%m-%d} (vars date_spine_start and date_spine_end of "
            "dbt_project.yml)"
        )
    return Window(start, end)


STEPS = ("day", "week", "month")


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_windows(first: date, last: date) -> list[Window]:
    """Whole calendar-month windows covering the days ``first``..``last``."""
    start = datetime.combine(first.replace(day=1), time_of_day())
    return split(Window(start, datetime.combine(next_month(last), time_of_day())), "month")


def split(window: Window, step: str | None) -> list[Window]:
    """Cut a window into calendar days, ISO weeks or months (the first and last may be partial)."""
    if step is None:
        return [window]
    bounds = [window.start]
    cursor = window.start
    while True:
        if step == "day":
            cursor = datetime.combine(cursor.date() + timedelta(days=1), time_of_day())
        elif step == "week":
            cursor = datetime.combine(cursor.date() + timedelta(days=7 - cursor.weekday()), time_of_day())
        else:
            cursor = datetime.combine(next_month(cursor.date()), time_of_day())
        if cursor >= window.end:
            break
        bounds.append(cursor)
    bounds.append(window.end)
    return [Window(start, end) for start, end in itertools.pairwise(bounds)]


def plan_backfill(
    connection: psycopg.Connection,
    window: Window,
    step: str,
    *,
    restate: bool = False,
    fingerprint: str | None = None,
    raw: due.Raw | None = None,
) -> list[list[Window]]:
    """The windows of a range that are due (all with ``restate``), in groups built with one dbt invocation each.

    Due as runner/due.py says: never built, a run touching it failed, died or is running since its last
    success (a killed run over two months leaves both to build again), a load placed rows in it since, or (with
    ``fingerprint``) the dbt project changed since.
    """
    candidates = split(window, step)
    if restate:
        return contiguous_groups(candidates)
    found = due_among(connection, candidates, fingerprint, raw)
    return contiguous_groups([Window(item.span.start, item.span.end) for item in found])


def due_among(
    connection: psycopg.Connection, windows: list[Window], fingerprint: str | None, raw: due.Raw | None = None
) -> list[due.DueWindow]:
    """Which of the windows asked for are due, and why."""
    due.place_new_files(connection, due.Calendar.of_project(PROJECT_DIR), raw)
    return due.judge_windows(connection, [window.span for window in windows], fingerprint)


def due_windows(connection: psycopg.Connection, fingerprint: str, raw: due.Raw | None = None) -> list[due.DueWindow]:
    """Every due window, oldest first (see runner/due.py)."""
    return due.due_windows(connection, due.Calendar.of_project(PROJECT_DIR), fingerprint, raw)


@contextmanager
def raw_reader(settings: Settings, connection: psycopg.Connection) -> Iterator[due.Raw]:
    """Where planning reads the loaded rows: raw in PostgreSQL, or on Sail for the ``sail`` target."""
    if settings.target == "sail":
        with delta.session(settings) as spark:
            yield delta.SailRaw(spark)
    else:
        yield due.PostgresRaw(connection)


def contiguous_groups(windows: list[Window]) -> list[list[Window]]:
    """Distinct windows in order, grouped where each ends as the next starts (one dbt invocation per group)."""
    groups: list[list[Window]] = []
    for window in sorted(set(windows), key=lambda window: (window.start, window.end)):
        if groups and groups[-1][-1].end == window.start:
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups


def bootstrap(settings: Settings) -> str:
    """Make the database ready for any command: reachable, migrated, raw tables present, dbt profile written."""
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as connection:
        ledger.migrate(connection)
        load.ensure_raw_tables(connection)
    dbt.write_profile(settings, dsn)
    return dsn


@dataclass(frozen=True)
class RunResult:
    """One runner run: the windows it built together with one dbt invocation."""

    runner_run_id: uuid.UUID
    windows: list[Window]
    invocation_id: str | None
    row_counts: dict[str, dict[str, int]]


def run_window(settings: Settings, dsn: str, window: Window, *, wait: bool = False) -> RunResult:
    [result] = run_windows(settings, dsn, [window], wait=wait)
    return result


def run_windows(settings: Settings, dsn: str, windows: list[Window], *, wait: bool = False) -> list[RunResult]:
    """Build contiguous windows with one ``dbt-ol build`` and publish them, holding the pipeline's lock.

    One dbt invocation covers all the windows: dbt re-parses the project whenever its vars change, so a window per
    invocation would pay that for every window. Building ``[first.start, last.end)`` at once gives the same tables,
    because every stage replaces or merges exactly the window it is given. The ledger still records each window.
    When the database runs out of a resource (memory, statement time) the windows are built again in two halves,
    down to one window: the result is one RunResult per group that was built.
    """
    windows = sorted(windows, key=lambda window: window.start)
    for before, after in itertools.pairwise(windows):
        if before.end != after.start:
            raise UsageError(f"windows to build together must be contiguous: {before} then {after}")
    with lock.pipeline_lock(dsn, PIPELINE, wait=wait), database.connect(dsn) as connection:
        abandoned = ledger.abandon_running(connection, PIPELINE)
        if abandoned:
            log.warning("windows of a runner that died marked failed", windows=abandoned)
        dbt.ensure_packages(settings)
        if settings.target == "sail":
            with delta.session(settings) as spark:
                delta.ensure_tables(spark, connection)
                # The base models read the ledger there: current after a rollback in PostgreSQL too.
                delta.mirror_loaded_files(spark, connection)
                return build_and_publish(settings, dsn, connection, windows, spark)
        return build_and_publish(settings, dsn, connection, windows)


class Observer:
    """Whoever drives a command's work, told what happens as it happens; here each hook does nothing (tests,
    benchmarks), the CLI's printer shows each (runner/cli/render.py)."""

    def file_loaded(self, result: load.FileResult) -> None:
        """A file was loaded, or skipped as loaded before."""

    def loaded(self, report: load.LoadReport) -> None:
        """A folder was loaded; the report names the files it left alone and those absent."""

    def planned(self, plan: DuePlan) -> None:
        """The due windows were found, with why; so were those asked for that are up to date."""

    def backfill_planned(self, window: Window, step: str, groups: list[list[Window]]) -> None:
        """A backfill found the due windows of its range (none: nothing to do)."""

    def quarantine_changed(self, changes: list[quarantine.Change], held: list[quarantine.RuleCount]) -> None:
        """A build ended, stopped or not: what it added to the quarantine (and took out), and what it holds now."""

    def built(self, result: RunResult) -> None:
        """Windows were built and published together."""


QUIET = Observer()


@dataclass(frozen=True)
class DuePlan:
    """What ``run`` builds: the due windows and why, the windows asked for that are up to date, and the windows to
    build in contiguous groups (one dbt invocation each)."""

    found: list[due.DueWindow]
    up_to_date: list[Window]
    groups: list[list[Window]]


def plan_due(
    settings: Settings, dsn: str, asked: list[Window] | None, *, step: str | None = None, force: bool = False
) -> DuePlan:
    """What is due among the windows asked for, or anywhere (None), cut by ``step`` (for windows found anywhere);
    with ``force``, every window asked for."""
    fingerprint = dbt.project_fingerprint(settings.project_dir)
    with database.connect(dsn) as connection, raw_reader(settings, connection) as raw:
        if asked is None:
            found = due_windows(connection, fingerprint, raw)
        elif force:
            found = [due.DueWindow(window.span, ["--force"]) for window in asked]
        else:
            found = due_among(connection, asked, fingerprint, raw)
    due_spans = {item.span for item in found}
    windows = [
        piece for item in found for piece in split(Window(item.span.start, item.span.end), None if asked else step)
    ]
    return DuePlan(
        found,
        [window for window in asked or [] if window.span not in due_spans],
        contiguous_groups(windows),
    )


def run_due(
    settings: Settings,
    dsn: str,
    asked: list[Window] | None,
    *,
    step: str | None = None,
    force: bool = False,
    wait: bool = False,
    observer: Observer = QUIET,
) -> list[RunResult]:
    """``runner run``: build what is due (see plan_due), group by group, saying why and which are up to date."""
    plan = plan_due(settings, dsn, asked, step=step, force=force)
    observer.planned(plan)
    return run_groups(settings, dsn, plan.groups, wait=wait, observer=observer)


def backfill(
    settings: Settings,
    dsn: str,
    window: Window,
    step: str,
    *,
    restate: bool = False,
    wait: bool = False,
    observer: Observer = QUIET,
) -> list[RunResult]:
    """``runner backfill``: build the due windows of a range, cut by ``step`` (all of them with ``restate``)."""
    with database.connect(dsn) as connection, raw_reader(settings, connection) as raw:
        groups = plan_backfill(
            connection,
            window,
            step,
            restate=restate,
            fingerprint=dbt.project_fingerprint(settings.project_dir),
            raw=raw,
        )
    observer.backfill_planned(window, step, groups)
    return run_groups(settings, dsn, groups, wait=wait, observer=observer)


def run_groups(
    settings: Settings, dsn: str, groups: list[list[Window]], *, wait: bool = False, observer: Observer = QUIET
) -> list[RunResult]:
    """Build groups of contiguous windows one after the other (see run_group)."""
    return [result for group in groups for result in run_group(settings, dsn, group, wait=wait, observer=observer)]


def run_group(
    settings: Settings, dsn: str, windows: list[Window], *, wait: bool = False, observer: Observer = QUIET
) -> list[RunResult]:
    """Build contiguous windows (see run_windows) as the stage ``run``; then, stopped or not, tell what the build
    added to the quarantine, and the windows built."""
    with (
        watch_quarantine(dsn, observer) if settings.target == "postgres" else nullcontext(),
        stage("run", windows=len(windows), first=str(windows[0]), last=str(windows[-1])) as fields,
    ):
        results = run_windows(settings, dsn, windows, wait=wait)
        fields.update(runner_run_ids=[str(result.runner_run_id) for result in results])
    for result in results:
        observer.built(result)
    return results


@contextmanager
def watch_quarantine(dsn: str, observer: Observer) -> Iterator[None]:
    """After a build, stopped or not, tell what it added to the quarantine (and took out), per entity and rule.

    A stopped build leaves its quarantine rows in place (they are why it stopped); a clean one can still add rows
    under the thresholds, or rows no window can place: either way the operator reads it, not by chance.
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
            observer.quarantine_changed(quarantine.changes(before, after), after)


def deploy_marts(
    settings: Settings, dsn: str, *, keep_for: timedelta, force: bool = False, wait: bool = False
) -> marts.Publication:
    """``runner publish``: deploy the checked-out mart models blue/green (see marts.deploy; on Sail, a new version:
    sail_marts.publish), as the stage ``publish``, holding the pipeline's lock so that no window run refreshes the
    marts meanwhile."""
    with lock.pipeline_lock(dsn, PIPELINE, wait=wait), database.connect(dsn) as connection:
        dbt.ensure_packages(settings)
        with stage("publish"):
            if settings.target == "sail":
                with delta.session(settings) as spark:
                    return sail_marts.publish(settings, dsn, connection, spark)
            return marts.deploy(settings, dsn, connection, keep_for=keep_for, force=force)


def roll_back_marts(settings: Settings, dsn: str, *, wait: bool = False) -> marts.Publication:
    """``runner publish --rollback``: readers back on the previous mart version (see marts.rollback; on Sail,
    sail_marts.roll_back), holding the pipeline's lock."""
    with lock.pipeline_lock(dsn, PIPELINE, wait=wait), database.connect(dsn) as connection:
        if settings.target == "sail":
            dbt.ensure_packages(settings)
            with delta.session(settings) as spark:
                return sail_marts.roll_back(settings, dsn, connection, spark)
        return marts.rollback(connection)


def build_and_publish(
    settings: Settings,
    dsn: str,
    connection: psycopg.Connection,
    windows: list[Window],
    spark: SparkSession | None = None,
) -> list[RunResult]:
    """One group of contiguous windows under the caller's lock; split in halves on a resource failure.

    With ``spark`` (the ``sail`` target) dbt builds on Sail, the marts included, as a new mart version that dbt
    publishes itself (see sail_marts), and the runner records it with the windows.
    """
    span = Window(windows[0].start, windows[-1].end)
    runner_run_id = uuid.uuid4()
    fingerprint = dbt.project_fingerprint(settings.project_dir)
    run_ids = ledger.start_windows(
        connection,
        PIPELINE,
        [(window.start, window.end) for window in windows],
        runner_run_id=runner_run_id,
        openlineage_run_id=runner_run_id,
        project_fingerprint=fingerprint,
    )
    # The first build of a version of the project on this database also builds Elementary's own models, runs the
    # unit tests and uploads the project's artifacts (models, tests, columns: what Elementary's report describes);
    # the others skip all three, which cost a third of a window's build and change only with the project.
    version = dbt.project_fingerprint(settings.project_dir, data_only=False)
    deployed = ledger.is_deployed(connection, version)
    run_settings = {**build_settings(settings, span), "OLIST_DW_SKIP_ARTIFACTS_UPLOAD": str(deployed).lower()}
    if spark is None:
        arguments = ["build", "--exclude", *(WINDOW_BUILD_EXCLUDES if deployed else MART_MODELS_AND_DATA_TESTS)]
    else:
        mart_version = sail_marts.start_version(connection, fingerprint)
        arguments = ["build", "--target", "sail", *(["--exclude", *ONCE_PER_PROJECT_VERSION] if deployed else [])]
        run_settings[sail_marts.SCHEMA_SETTING] = marts.parked_schema(mart_version)
    durations: dict[str, int] = {}
    emit_lineage(settings, RunState.START, runner_run_id)
    try:
        with timed(durations, "build"):
            for attempt in transient_retries():
                with attempt:
                    faults.checkpoint("build")
                    result = dbt.run_dbt(
                        settings,
                        arguments,
                        dsn=dsn,
                        variables=window_vars_for_older_projects(settings, span),
                        run_settings=run_settings,
                        parent_run_id=runner_run_id,
                    )
        if not deployed:
            ledger.record_deployment(connection, version)
        built = list(zip(run_ids, windows, strict=True))
        with timed(durations, "publish"):
            if spark is None:
                counts = publish_windows(
                    settings,
                    dsn,
                    connection,
                    built,
                    durations,
                    invocation_id=result.invocation_id,
                    runner_run_id=runner_run_id,
                    fingerprint=fingerprint,
                )
            else:
                counts = record_windows_on_sail(
                    settings,
                    spark,
                    connection,
                    built,
                    durations,
                    invocation_id=result.invocation_id,
                    mart_version=mart_version,
                    fingerprint=fingerprint,
                )
    except Exception as failure:
        error = failure
        if spark is None:
            # Both read the failing rows and the quarantine in PostgreSQL; on Sail, dbt's own summary says it.
            error = explain_quarantine_stop(settings, connection, span, error)
            error = explain_test_failures(settings, connection, error)
        try:
            ledger.record_failure(
                connection, run_ids, error_class=type(error).__name__, message=str(error), stage_durations_ms=durations
            )
        except psycopg.OperationalError as lost:
            # The database went away: the windows stay 'running' until the next runner marks them abandoned.
            log.error("failure not recorded: the database is unreachable", error=str(lost))
            raise error from None
        emit_lineage(settings, RunState.FAIL, runner_run_id)
        # Out of a resource, smaller groups may fit; stopped by data quality, halves find the window(s) at fault.
        # Not so for files over the unplaced share: every window judges them, every half would stop the same way.
        splittable = isinstance(error, (ResourceFailure, DataQualityStop)) and not isinstance(error, UnplacedRowsStop)
        if splittable and len(windows) > 1:
            half = len(windows) // 2
            log.warning("splitting windows", windows=len(windows), into=[half, len(windows) - half])
            return build_and_publish(settings, dsn, connection, windows[:half], spark) + build_and_publish(
                settings, dsn, connection, windows[half:], spark
            )
        if error is failure:
            raise
        raise error from failure
    faults.checkpoint("publish.after_commit")
    emit_lineage(settings, RunState.COMPLETE, runner_run_id)
    return [RunResult(runner_run_id, windows, result.invocation_id, counts)]


FAILING_ROWS_SHOWN = 3


def explain_test_failures(settings: Settings, connection: psycopg.Connection, failure: Exception) -> Exception:
    """A stop by failed tests, told with what failed: the first rows each failed test returns.

    For a model's ``row_invariants`` that is each failed invariant, how many rows fail it and the key of one; for
    any other test, its own failure rows. dbt's summary alone names the test and the count of failing rows.
    """
    results = settings.target_dir / "run_results.json"
    if not isinstance(failure, DataQualityStop) or not results.exists():
        return failure
    lines = []
    for result in json.loads(results.read_text(encoding="utf-8"))["results"]:
        if result["status"] != "fail" or not result.get("compiled_code"):
            continue
        try:
            with connection.transaction():
                cursor = connection.execute(
                    sql.SQL("select * from ({}) as failures limit {}").format(
                        sql.SQL(result["compiled_code"]), sql.Literal(FAILING_ROWS_SHOWN)
                    )
                )
                columns = [column.name for column in cursor.description or []]
                rows = cursor.fetchall()
        except psycopg.Error:
            continue
        described = "; ".join(
            ", ".join(f"{name}={value}" for name, value in zip(columns, row, strict=True)) for row in rows
        )
        lines.append(f"  {result['unique_id'].split('.')[2]}: {described}")
    if not lines:
        return failure
    return type(failure)(f"{failure}\nwhat failed:\n" + "\n".join(lines))


def explain_quarantine_stop(
    settings: Settings, connection: psycopg.Connection, span: Window, failure: Exception
) -> Exception:
    """A stop by a quarantine threshold, told in figures (share, threshold, worst rules); any other as it came."""
    if not isinstance(failure, DataQualityStop) or quarantine.SHARE_TEST not in str(failure):
        return failure
    try:
        offences = quarantine.Offences.find(
            connection, span.start, span.end, settings.quarantine_max_share, settings.unplaced_max_share
        )
    except psycopg.Error:
        return failure
    return (UnplacedRowsStop if offences.files else DataQualityStop)(offences.message)


def build_settings(settings: Settings, span: Window) -> dict[str, str]:
    """The environment of a window build: its bounds, the quarantine thresholds, and "now" for Elementary.

    dbt_project.yml reads them in its ``vars:`` block; passed this way rather than with ``--vars``, a new window
    keeps dbt's saved parse state (one partial parse instead of a full one per build). Elementary's anomaly tests
    compare the latest days with the ones before them, the latest days being those before the run's start time;
    a window of history is judged as of its own end instead of today. The project's artifacts are uploaded by
    the first build of each project version only (see build_and_publish).
    """
    return {
        "OLIST_DW_WATERMARK_START": span.start.isoformat(sep=" "),
        "OLIST_DW_WATERMARK_END": span.end.isoformat(sep=" "),
        "OLIST_DW_QUARANTINE_MAX_SHARE": str(settings.quarantine_max_share),
        "OLIST_DW_UNPLACED_MAX_SHARE": str(settings.unplaced_max_share),
        "OLIST_DW_RUN_STARTED_AT": span.end.isoformat(),
        "OLIST_DW_SKIP_ARTIFACTS_UPLOAD": "true",
    }


def window_vars_for_older_projects(settings: Settings, span: Window) -> dict[str, str | float] | None:
    """The window as ``--vars`` for a dbt project that does not read it from the environment, else None.

    Releases before change-driven runs took the window as ``--vars`` only; the runner builds such a checkout (an
    upgrade from a warehouse an older release built) the way that release did.
    """
    if RUN_SETTINGS_MARKER in (settings.project_dir / "dbt_project.yml").read_text(encoding="utf-8"):
        return None
    return {
        **span.as_dbt_vars(),
        "quarantine_max_share": settings.quarantine_max_share,
        "custom_run_started_at": span.end.isoformat(),
    }


def emit_lineage(settings: Settings, state: RunState, runner_run_id: uuid.UUID) -> None:
    """The run's own lineage event."""
    without_failing(lambda: lineage.emit_run(settings, state, runner_run_id))


def without_failing(emit: Callable[[], None]) -> None:
    """Send lineage; a lineage backend that is down is logged and never fails (or un-succeeds) the run."""
    try:
        emit()
    except Exception as error:  # the transport's errors vary (HTTP, file system); all are reported the same way
        log.warning("lineage event not sent", error=str(error))


@contextmanager
def timed(durations: dict[str, int], stage_name: str) -> Iterator[None]:
    """Time a stage into ``durations`` (milliseconds) and log it, whether it succeeds or fails."""
    started = time.perf_counter()
    with stage(stage_name):
        try:
            yield
        finally:
            durations[stage_name] = round((time.perf_counter() - started) * 1000)


def publish_windows(
    settings: Settings,
    dsn: str,
    connection: psycopg.Connection,
    windows: list[tuple[uuid.UUID, Window]],
    durations: dict[str, int],
    *,
    invocation_id: str | None,
    runner_run_id: uuid.UUID,
    fingerprint: str,
) -> dict[str, dict[str, int]]:
    """Refresh the marts, check them, mark the windows done and move the watermark: one transaction.

    There is no moment at which the ledger says a window is done and the marts do not show it, or the reverse:
    a failed mart check rolls the refresh back with the ledger update. When the marts are missing (a new
    database, a new mart, core rebuilt by hand) a new version is built first and activated in that transaction.
    Changed mart definitions are not deployed by a window run: ``runner publish`` does that, as its own step.
    """
    definitions = marts.definitions(settings, dsn)
    tables = windowed_tables(settings.target_dir / "manifest.json")
    new_version = None
    current = marts.active(connection)
    if not set(definitions.names) <= marts.materialized_views(connection, marts.SCHEMA):
        new_version = marts.build(settings, dsn, connection, definitions)
    elif current is not None and current.definition_sha256 != definitions.sha256:
        log.warning(
            "mart definitions changed since the active version; `runner publish` deploys them",
            active_version=current.version,
        )
    for attempt in transient_retries():
        with attempt, connection.transaction():
            if new_version is not None:
                marts.activate(connection, new_version)
            else:
                if current is None:
                    marts.adopt(connection, definitions.sha256)
                marts.refresh(connection)
            faults.checkpoint("publish.after_refresh")
            marts.check(
                connection,
                definitions,
                unpublished=new_version is None
                and current is not None
                and current.definition_sha256 != definitions.sha256,
            )
            counts = {str(run_id): window_row_counts(connection, window, tables) for run_id, window in windows}
            record_windows(
                settings, connection, windows, durations, counts, invocation_id=invocation_id, fingerprint=fingerprint
            )
            faults.checkpoint("publish.before_commit")
    for mart in definitions.names:
        parents = definitions.parents.get(mart, [])
        without_failing(
            lambda mart=mart, parents=parents: lineage.emit_mart_published(
                settings, dsn, f"{marts.SCHEMA}.{mart}", parents, runner_run_id
            )
        )
    # The marts' consumers (dbt's exposures) now read the new data: the lineage graph ends at them.
    without_failing(
        lambda: lineage.emit_exposures(
            settings, dsn, lineage.exposures(settings.target_dir / "manifest.json"), runner_run_id
        )
    )
    return counts


def record_windows(
    settings: Settings,
    connection: psycopg.Connection,
    windows: list[tuple[uuid.UUID, Window]],
    durations: dict[str, int],
    counts: dict[str, dict[str, int]],
    *,
    invocation_id: str | None,
    fingerprint: str,
    raw: due.Raw | None = None,
) -> None:
    """Mark the windows succeeded with their figures and move the watermark, in the caller's transaction.

    The watermark is a fact about the data: as far as every window is built and not due, and never past the
    newest plausible purchase (a mistyped year is quarantined, it plans nothing).
    """
    ledger.record_success(
        connection,
        [run_id for run_id, _ in windows],
        PIPELINE,
        None,
        invocation_id=invocation_id,
        stage_durations_ms=durations,
        row_counts={run_id: counts[str(run_id)] for run_id, _ in windows},
    )
    calendar = due.Calendar.of_project(settings.project_dir)
    built_until = max(window.end for _, window in windows)
    complete_until = due.watermark(connection, calendar, fingerprint, raw)
    ledger.advance_watermark(
        connection,
        PIPELINE,
        min(built_until, complete_until or built_until),
        cap=due.end_of_data(connection, calendar, raw),
    )


def record_windows_on_sail(
    settings: Settings,
    spark: SparkSession,
    connection: psycopg.Connection,
    windows: list[tuple[uuid.UUID, Window]],
    durations: dict[str, int],
    *,
    invocation_id: str | None,
    mart_version: int,
    fingerprint: str,
) -> dict[str, dict[str, int]]:
    """The ``sail`` target's publish: record the mart version dbt built and published (see sail_marts) with the
    windows it holds, in one PostgreSQL transaction; then drop the versions before the previous one.

    A crash after dbt moved the views and before this commit leaves the windows running, so the next run marks
    them failed and builds them again, into a newer version; readers meanwhile read the version dbt published,
    which is whole and tested.
    """
    tables = windowed_tables(settings.target_dir / "manifest.json")
    figures = delta.window_row_counts(
        spark,
        [(window.start, window.end) for _, window in windows],
        {name: (table.schema, table.table, table.window_column) for name, table in tables.items()},
    )
    counts = {str(run_id): found for (run_id, _), found in zip(windows, figures, strict=True)}
    raw = delta.SailRaw(spark)
    for attempt in transient_retries():
        with attempt, connection.transaction():
            sail_marts.record_published(connection, mart_version)
            record_windows(
                settings,
                connection,
                windows,
                durations,
                counts,
                invocation_id=invocation_id,
                fingerprint=fingerprint,
                raw=raw,
            )
            faults.checkpoint("publish.before_commit")
    sail_marts.drop_old_versions(settings, spark, connection)
    return counts


TRANSIENT_ERRORS = (
    TransientFailure,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.LockNotAvailable,
)


def transient_retries() -> tenacity.Retrying:
    """Attempts for a transaction that may lose a race: retried with exponential backoff, each retry logged."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TRANSIENT_ERRORS),
        wait=tenacity.wait_exponential(multiplier=0.5, max=10),
        stop=tenacity.stop_after_attempt(5),
        before_sleep=lambda state: log.warning(
            "retrying",
            attempt=state.attempt_number,
            error=str(state.outcome.exception()) if state.outcome else None,
        ),
        reraise=True,
    )


# The rows per layer a window's run records (the ledger's row_counts, read by `runs`, `status` and the metrics):
# each count's name and the model it counts. Where each model's table is and which column decides its window are
# the model's own config (its relation, and `meta.window_column`), read from dbt's manifest.
WINDOW_COUNTED_MODELS = {
    "staged_orders": "stg_olist__orders",
    "staged_order_items": "stg_olist__order_items",
    "staged_order_payments": "stg_olist__order_payments",
    "staged_order_reviews": "stg_olist__order_reviews",
    "staged_customers": "stg_olist__customers",
    "merged_orders": "fact_orders",
    "merged_order_items": "fact_order_items",
    "merged_payments": "fact_payments",
    "merged_reviews": "fact_reviews",
    "merged_customers": "dim_customer",
    "quarantined_orders": "quarantine_olist__orders",
    "quarantined_order_items": "quarantine_olist__order_items",
    "quarantined_order_payments": "quarantine_olist__order_payments",
    "quarantined_order_reviews": "quarantine_olist__order_reviews",
    "quarantined_customers": "quarantine_olist__customers",
}


@dataclass(frozen=True)
class WindowedTable:
    """A windowed model's table and the column that decides its window, as its config declares them."""

    schema: str
    table: str
    window_column: str


def windowed_tables(manifest: Path) -> dict[str, WindowedTable]:
    """The table and window column of each counted model, from the manifest of the project's last dbt command."""
    parsed = json.loads(manifest.read_text(encoding="utf-8"))
    project = parsed["metadata"]["project_name"]
    tables = {}
    for name, model in WINDOW_COUNTED_MODELS.items():
        node = parsed["nodes"].get(f"model.{project}.{model}")
        # Projects of earlier releases set window_column as a config key of its own (before it moved into meta,
        # dbt >= 1.10 warning of custom config keys); the runner still builds them (runner check-schema, upgrades).
        config = node["config"] if node else {}
        window_column = config.get("meta", {}).get("window_column") or config.get("window_column")
        if not window_column:
            raise PipelineFailure(f"{manifest}: model {model} is missing or declares no meta.window_column")
        tables[name] = WindowedTable(node["schema"], node["alias"], window_column)
    return tables


def window_row_counts(
    connection: psycopg.Connection, window: Window, tables: dict[str, WindowedTable]
) -> dict[str, int]:
    """Rows per layer for one window: raw orders loaded for it, then what staging and core hold of it."""
    counts = {
        "loaded_orders": connection.execute(
            "select count(*) from raw.orders where metadata.purchase_time(order_purchase_timestamp)"
            " >= %s and metadata.purchase_time(order_purchase_timestamp) < %s",
            (window.start, window.end),
        ).fetchone()[0]
    }
    for name, table in tables.items():
        query = sql.SQL("select count(*) from {} where {} >= %s and {} < %s").format(
            sql.Identifier(table.schema, table.table),
            sql.Identifier(table.window_column),
            sql.Identifier(table.window_column),
        )
        counts[name] = connection.execute(query, (window.start, window.end)).fetchone()[0]
    return counts
