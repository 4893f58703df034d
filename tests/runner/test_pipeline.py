"""Windows end to end through real dbt on a real PostgreSQL: idempotence, corrections, atomicity, dbt by hand."""

from __future__ import annotations

import base64
import csv
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from runner import database, dbt, faults, ledger, load, pipeline, report
from runner.errors import DataQualityStop, PipelineFailure, UsageError
from runner.olist import BY_ENTITY
from runner.settings import PIPELINE

# What a copy of the project leaves out: build output, state, and what the other worker may be writing meanwhile.
COPY_IGNORED = shutil.ignore_patterns(
    *("target", "dbt_packages", ".runner", ".venv", "logs", "edr_target", ".git"),
    *("__pycache__", "test-artifacts", ".bench"),
)
JANUARY = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 2, 1))
FEBRUARY = pipeline.Window(datetime(2017, 2, 1), datetime(2017, 3, 1))
BUSINESS_COLUMNS = (
    "order_id, customer_id, order_status, delivery_days, is_delivered, is_late, purchase_date,"
    " estimated_delivery_date, purchased_at, approved_at, delivered_to_carrier_at, delivered_to_customer_at"
)


def order(order_id: str, purchased: str, status: str = "delivered", delivered: str = "") -> dict[str, str]:
    return {
        "order_id": order_id.ljust(32, "0"),
        "customer_id": ("c" + order_id).ljust(32, "0"),
        "order_status": status,
        "order_purchase_timestamp": purchased,
        "order_approved_at": purchased,
        "order_delivered_carrier_date": "",
        "order_delivered_customer_date": delivered,
        "order_estimated_delivery_date": "2017-03-15 00:00:00",
    }


def customer(order_row: dict[str, str]) -> dict[str, str]:
    """The customer an order() names, one person each."""
    customer_id = order_row["customer_id"]
    return {
        "customer_id": customer_id,
        "customer_unique_id": "d" + customer_id[1:],
        "customer_zip_code_prefix": "01310",
        "customer_city": "sao paulo",
        "customer_state": "SP",
    }


def write_file(folder: Path, entity: str, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = BY_ENTITY[entity]
    with (folder / source.file_name).open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=source.columns)
        writer.writeheader()
        writer.writerows(rows)


def load_orders(connection: psycopg.Connection, folder: Path, rows: list[dict[str, str]]) -> None:
    write_file(folder, "orders", rows)
    load.load_directory(connection, folder)


def table_state(connection: psycopg.Connection, table: str) -> list[tuple]:
    """Every row as text with its physical version (xmin): equal states mean no row was even rewritten."""
    return connection.execute(f"select t.xmin::text, t::text from {table} as t order by 2").fetchall()


def rows_of(connection: psycopg.Connection, table: str, columns: str) -> list[tuple]:
    return connection.execute(f"select {columns} from {table} order by 1").fetchall()


FIRST_LOAD = [
    order("a1", "2017-01-05 10:00:00", delivered="2017-01-20 10:00:00"),
    order("b2", "2017-01-20 09:30:00", status="shipped"),
    order("c3", "2017-02-03 12:00:00", delivered="2017-03-20 12:00:00"),
]
# The end of the day of the newest purchase loaded: the watermark never passes it.
END_OF_DATA = datetime(2017, 2, 4)


def test_parse_window_accepts_dates_and_times():
    assert pipeline.parse_window("2017-01-01..2017-02-01") == JANUARY
    assert pipeline.parse_window("2017-01-01T06:00..2017-01-01 18:30:00").end == datetime(2017, 1, 1, 18, 30)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2017-01-01", "must be START..END"),
        ("2017-01-01..", "must be START..END"),
        ("yesterday..today", "window start must look like"),
        ("2017-02-30..2017-03-01", "not a real date"),
        ("2017-02-01..2017-01-01", "must end after it starts"),
        ("2017-02-01..2017-02-01", "must end after it starts"),
    ],
)
def test_parse_window_refuses_malformed_windows(text, message):
    with pytest.raises(UsageError, match=message):
        pipeline.parse_window(text)


def test_month_windows_cover_the_days_by_calendar_month():
    windows = pipeline.month_windows(datetime(2017, 1, 15).date(), datetime(2017, 3, 1).date())
    assert [(window.start.month, window.end.month) for window in windows] == [(1, 2), (2, 3), (3, 4)]


@pytest.mark.slow
def test_rerunning_windows_changes_nothing_and_a_correction_changes_just_what_changed(settings, connection, tmp_path):
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    pipeline.run_window(settings, settings.dsn, JANUARY)
    pipeline.run_window(settings, settings.dsn, FEBRUARY)
    before = {table: table_state(connection, table) for table in ("core.fact_orders", "mart.mart_daily_orders")}

    pipeline.run_window(settings, settings.dsn, JANUARY)

    assert {table: table_state(connection, table) for table in before} == before
    audit = "order_id, version, created_at, updated_at"
    audit_before = {row[0]: row for row in rows_of(connection, "core.fact_orders", audit)}

    # A corrected export: a1 is now canceled, and b2's rows are withdrawn from raw (as a batch rollback does).
    connection.execute("delete from raw.orders where order_id like 'b2%'")
    load_orders(connection, tmp_path / "batch2", [order("a1", "2017-01-05 10:00:00", status="canceled")])
    pipeline.run_window(settings, settings.dsn, JANUARY)

    audit_after = {row[0]: row for row in rows_of(connection, "core.fact_orders", audit)}
    a1, c3 = "a1".ljust(32, "0"), "c3".ljust(32, "0")
    assert set(audit_after) == {a1, c3}
    assert audit_after[a1][1] == 2
    assert audit_after[a1][2] == audit_before[a1][2]
    assert audit_after[a1][3] > audit_before[a1][3]
    assert audit_after[c3] == audit_before[c3]
    assert connection.execute("select order_status from core.fact_orders where order_id = %s", (a1,)).fetchone() == (
        "canceled",
    )
    marts = rows_of(connection, "mart.mart_daily_orders", "purchase_date, order_count, canceled_order_count")
    assert [(str(day), count, canceled) for day, count, canceled in marts] == [
        ("2017-01-05", 1, 1),
        ("2017-02-03", 1, 0),
    ]


def test_a_merge_into_a_table_without_statistics_analyzes_it_first(settings, connection, tmp_path):
    """A table dbt has just built has no statistics until autovacuum gets to it (a small one never), and the merge's
    version check joins all of a table merged whole: without statistics PostgreSQL plans that as a nested loop
    under LIMIT 1, quadratic in the table. merge_window analyzes a table without statistics before it merges."""
    if not connection.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]:
        pytest.skip("taking a table's statistics away needs a superuser (the embedded server's)")
    # ANALYZE writes no statistics for an empty table: the people must be there.
    write_file(tmp_path / "batch", "customers", [customer(row) for row in FIRST_LOAD])
    load_orders(connection, tmp_path / "batch", FIRST_LOAD)
    pipeline.run_window(settings, settings.dsn, JANUARY)
    assert connection.execute("select count(*) from core.dim_customer_person").fetchone()[0] == 2
    connection.execute("alter table core.dim_customer_person set (autovacuum_enabled = false)")
    connection.execute("delete from pg_statistic where starelid = 'core.dim_customer_person'::regclass")
    # The catalog itself, not pg_stat_user_tables' analyze_count: that counter reaches the view when a backend
    # flushes its statistics, which may be after dbt's connection has closed.
    statistics = "select count(*) from pg_statistic where starelid = 'core.dim_customer_person'::regclass"
    assert connection.execute(statistics).fetchone()[0] == 0

    pipeline.run_window(settings, settings.dsn, FEBRUARY)

    assert connection.execute(statistics).fetchone()[0] > 0


@pytest.mark.slow
def test_dbt_build_by_hand_gives_the_same_tables_as_the_runner(settings, connection, tmp_path, server_dsn):
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    for window in (JANUARY, FEBRUARY):
        pipeline.run_window(settings, settings.dsn, window)

    # The same raw data in a second database, built by a person with plain `dbt build` and no runner.
    by_hand_dsn = psycopg.conninfo.make_conninfo(settings.dsn, dbname=connection.info.dbname + "_by_hand")
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{connection.info.dbname}_by_hand"')
    try:
        by_hand = settings.__class__(settings.project_dir, tmp_path / "by-hand", by_hand_dsn, settings.package_store)
        pipeline.bootstrap(by_hand)
        with psycopg.connect(by_hand_dsn, autocommit=True) as other:
            load_orders(other, tmp_path / "batch1", FIRST_LOAD)
            variables = '{"watermark_start": "2017-01-01", "watermark_end": "2017-03-01"}'
            completed = subprocess.run(
                [
                    str(Path(sys.executable).with_name("dbt")),
                    "build",
                    "--vars",
                    variables,
                    "--profiles-dir",
                    str(by_hand.profiles_dir),
                    "--target-path",
                    str(tmp_path / "by-hand-target"),
                ],
                cwd=settings.project_dir,
                # The profile of a configured server reads its password from the environment (README, dbt directly).
                env={
                    **os.environ,
                    "DBT_LOG_PATH": str(tmp_path / "by-hand-logs"),
                    "OLIST_DW_DB_PASSWORD": database.password_of(by_hand_dsn),
                },
                capture_output=True,
                text=True,
                check=False,
            )
            assert completed.returncode == 0, completed.stdout[-3000:]
            for table, columns in (("core.fact_orders", BUSINESS_COLUMNS), ("mart.mart_daily_orders", "*")):
                assert rows_of(other, table, columns) == rows_of(connection, table, columns)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{connection.info.dbname}_by_hand" with (force)')


@pytest.mark.slow
def test_a_failure_inside_the_window_replace_leaves_the_previous_window(settings, connection, tmp_path):
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    pipeline.run_window(settings, settings.dsn, JANUARY)
    staged_before = table_state(connection, "staging.stg_olist__orders")
    core_before = table_state(connection, "core.fact_orders")
    # A real failure between the DELETE and the INSERT of replace_window: the INSERT is refused.
    connection.execute(
        """
        create function staging.refuse_insert() returns trigger language plpgsql as
        $$ begin raise exception 'injected failure during the window insert'; end $$;
        create trigger refuse_insert before insert on staging.stg_olist__orders
        for each statement execute function staging.refuse_insert();
        """
    )
    load_orders(connection, tmp_path / "batch2", [order("a1", "2017-01-05 10:00:00", status="canceled")])

    with pytest.raises(PipelineFailure, match="injected failure during the window insert"):
        pipeline.run_window(settings, settings.dsn, JANUARY)

    assert table_state(connection, "staging.stg_olist__orders") == staged_before
    assert table_state(connection, "core.fact_orders") == core_before
    statuses = [row[0] for row in connection.execute("select status from metadata.window_runs order by started_at")]
    assert statuses == ["succeeded", "failed"]


def test_duplicate_keys_are_refused_before_merging_naming_the_key(settings, connection):
    pipeline.bootstrap(settings)
    dbt.ensure_packages(settings)
    connection.execute(
        "create table public.incoming as select * from (values ('k1', 1), ('k1', 2), ('k2', 3), ('k3', 4), ('k3', 5))"
        " as rows (order_id, amount)"
    )

    with pytest.raises(PipelineFailure, match=r"duplicate order_id in public.incoming: \(k1\) 2 rows; \(k3\) 2 rows"):
        dbt.run_dbt(
            settings,
            ["run-operation", "assert_unique_key", "--args", "{relation: public.incoming, unique_key: order_id}"],
            dsn=settings.dsn,
            lineage=False,
        )


@pytest.mark.slow
def test_windows_built_together_and_publish_atomic_with_the_ledger(settings, connection, tmp_path, monkeypatch):
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    [result] = pipeline.run_windows(settings, settings.dsn, [JANUARY, FEBRUARY])
    ledger_rows = connection.execute(
        "select window_start, status, runner_run_id, dbt_invocation_id, row_counts->>'merged_orders'"
        " from metadata.window_runs order by window_start"
    ).fetchall()
    assert [(row[0], row[1], row[4]) for row in ledger_rows] == [
        (JANUARY.start, "succeeded", "2"),
        (FEBRUARY.start, "succeeded", "1"),
    ]
    assert {(row[2], row[3]) for row in ledger_rows} == {(result.runner_run_id, result.invocation_id)}
    marts_before = table_state(connection, "mart.mart_daily_orders")

    # A correction, then a failure inside the publish transaction after the marts were refreshed.
    load_orders(connection, tmp_path / "batch2", [order("a1", "2017-01-05 10:00:00", status="canceled")])
    monkeypatch.setenv("OLIST_DW_FAIL_AT", "publish.before_commit")
    with pytest.raises(faults.InjectedFault):
        pipeline.run_window(settings, settings.dsn, JANUARY)

    assert table_state(connection, "mart.mart_daily_orders") == marts_before
    latest = connection.execute(
        "select status, error_class from metadata.window_runs order by started_at desc limit 1"
    ).fetchone()
    assert latest == ("failed", "InjectedFault")
    # The watermark stops at the end of the data: the day of c3, the newest purchase, not the end of February.
    assert connection.execute("select watermark from metadata.watermarks").fetchone() == (END_OF_DATA,)

    # A failure before dbt even starts leaves the same: marts as they were, the window failed, the watermark put.
    monkeypatch.setenv("OLIST_DW_FAIL_AT", "build")
    with pytest.raises(faults.InjectedFault):
        pipeline.run_window(settings, settings.dsn, FEBRUARY)
    assert table_state(connection, "mart.mart_daily_orders") == marts_before
    assert connection.execute("select watermark from metadata.watermarks").fetchone() == (END_OF_DATA,)

    # A transient error (serialization failure) in the same place is retried, and the window succeeds.
    monkeypatch.setenv("OLIST_DW_FAIL_AT", "publish.before_commit:transient")
    pipeline.run_window(settings, settings.dsn, JANUARY)

    canceled = connection.execute(
        "select canceled_order_count from mart.mart_daily_orders where purchase_date = '2017-01-05'"
    )
    assert canceled.fetchone() == (1,)
    assert ledger.failed_windows(connection, PIPELINE) == [(FEBRUARY.start, FEBRUARY.end)]


def test_backfill_plans_missing_and_failed_windows_in_contiguous_groups(connection):
    days = pipeline.split(pipeline.Window(datetime(2017, 1, 1), datetime(2017, 1, 8)), "day")
    done = ledger.start_windows(connection, PIPELINE, [(days[1].start, days[3].end)], runner_run_id=uuid.uuid4())
    with connection.transaction():
        ledger.record_success(
            connection, done, PIPELINE, days[3].end, invocation_id=None, stage_durations_ms={}, row_counts={}
        )
    failed = ledger.start_windows(connection, PIPELINE, [(days[2].start, days[2].end)], runner_run_id=uuid.uuid4())
    ledger.record_failure(connection, failed, error_class="PipelineFailure", message="boom")
    week = pipeline.Window(days[0].start, days[-1].end)

    groups = pipeline.plan_backfill(connection, week, "day")
    restated = pipeline.plan_backfill(connection, week, "day", restate=True)

    assert [[window.start.day for window in group] for group in groups] == [[1], [3], [5, 6, 7]]
    assert [[window.start.day for window in group] for group in restated] == [[1, 2, 3, 4, 5, 6, 7]]


def test_backfill_rebuilds_days_a_later_run_over_them_failed_or_died_in(connection):
    days = pipeline.split(pipeline.Window(datetime(2017, 1, 1), datetime(2017, 1, 4)), "day")
    runs = ledger.start_windows(
        connection, PIPELINE, [(day.start, day.end) for day in days], runner_run_id=uuid.uuid4()
    )
    with connection.transaction():
        ledger.record_success(
            connection, runs, PIPELINE, days[-1].end, invocation_id=None, stage_durations_ms={}, row_counts={}
        )
    # A run over days 2 and 3 together was killed: its ledger row says 'running' until the next runner comes.
    ledger.start_windows(connection, PIPELINE, [(days[1].start, days[2].end)], runner_run_id=uuid.uuid4())

    planned = pipeline.plan_backfill(connection, pipeline.Window(days[0].start, days[-1].end), "day")
    abandoned = ledger.abandon_running(connection, PIPELINE)

    assert [[window.start.day for window in group] for group in planned] == [[2, 3]]
    assert abandoned == 1
    assert ledger.failed_windows(connection, PIPELINE) == [(days[1].start, days[2].end)]


def test_split_cuts_ranges_into_calendar_steps():
    window = pipeline.Window(datetime(2017, 1, 30, 12), datetime(2017, 3, 2))
    assert [(w.start.isoformat(), w.end.isoformat()) for w in pipeline.split(window, "month")] == [
        ("2017-01-30T12:00:00", "2017-02-01T00:00:00"),
        ("2017-02-01T00:00:00", "2017-03-01T00:00:00"),
        ("2017-03-01T00:00:00", "2017-03-02T00:00:00"),
    ]
    weeks = pipeline.split(pipeline.Window(datetime(2017, 1, 4), datetime(2017, 1, 17)), "week")
    assert [w.start.day for w in weeks] == [4, 9, 16]
    assert pipeline.split(window, None) == [window]


@pytest.mark.slow
def test_a_resource_failure_builds_the_windows_again_in_halves(settings, connection, tmp_path, monkeypatch):
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    monkeypatch.setenv("OLIST_DW_FAIL_AT", "build:resource")

    results = pipeline.run_windows(settings, settings.dsn, [JANUARY, FEBRUARY])

    assert [result.windows for result in results] == [[JANUARY], [FEBRUARY]]
    rows = connection.execute(
        "select window_start, window_end, status, error_class from metadata.window_runs"
        " order by started_at, window_start"
    ).fetchall()
    assert rows == [
        (JANUARY.start, JANUARY.end, "failed", "ResourceFailure"),
        (FEBRUARY.start, FEBRUARY.end, "failed", "ResourceFailure"),
        (JANUARY.start, JANUARY.end, "succeeded", None),
        (FEBRUARY.start, FEBRUARY.end, "succeeded", None),
    ]
    assert ledger.failed_windows(connection, PIPELINE) == []
    assert connection.execute("select count(*) from core.fact_orders").fetchone() == (3,)


@pytest.mark.slow
def test_a_failed_row_invariant_stops_the_window_naming_model_invariant_and_key(settings, connection, tmp_path):
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    pipeline.run_window(settings, settings.dsn, JANUARY)
    marts_before = table_state(connection, "mart.mart_daily_orders")
    # A writer that breaks an invariant of core.fact_orders on every row the merge writes (version must be >= 1).
    connection.execute(
        """
        create function core.break_version() returns trigger language plpgsql as
        $$ begin new.version := 0; return new; end $$;
        create trigger break_version before insert or update on core.fact_orders
        for each row execute function core.break_version();
        """
    )
    load_orders(connection, tmp_path / "batch2", [order("a1", "2017-01-05 10:00:00", status="canceled")])

    with pytest.raises(DataQualityStop) as stop:
        pipeline.run_window(settings, settings.dsn, JANUARY)

    assert stop.value.exit_code == 3
    message = str(stop.value)
    assert "row_invariants_fact_orders" in message
    assert "invariant=version_positive, failing_rows=1, example_key=" + "a1".ljust(32, "0") in message
    assert table_state(connection, "mart.mart_daily_orders") == marts_before
    latest = connection.execute("select status from metadata.window_runs order by started_at desc limit 1").fetchone()
    assert latest == ("failed",)


@pytest.mark.slow
def test_elementary_and_its_report_follow_a_project_change(settings, connection, tmp_path):
    """Elementary's models and the project's artifacts are deployed once per project version, not per window."""
    copy = tmp_path / "project"
    shutil.copytree(settings.project_dir, copy, ignore=COPY_IGNORED)
    project = replace(settings, project_dir=copy)
    load_orders(connection, tmp_path / "batch1", FIRST_LOAD)
    pipeline.run_window(project, project.dsn, JANUARY)
    pipeline.run_window(project, project.dsn, FEBRUARY)
    assert connection.execute("select count(*) from metadata.project_deployments").fetchone() == (1,)

    # A new test in the project: the next window deploys the new version first, then builds.
    new_test = copy / "tests" / "core" / "test_fact_orders__purchased_after_2016.sql"
    new_test.write_text("select order_id from {{ ref('fact_orders') }} where purchased_at < '2016-01-01'\n")
    pipeline.run_window(project, project.dsn, JANUARY)

    assert connection.execute("select count(*) from metadata.project_deployments").fetchone() == (2,)
    known = connection.execute(
        "select count(*) from elementary.dbt_tests where name = 'test_fact_orders__purchased_after_2016'"
    ).fetchone()
    result = connection.execute(
        "select status from elementary.elementary_test_results"
        " where test_unique_id like '%test_fact_orders__purchased_after_2016%'"
    ).fetchall()
    assert known == (1,)
    assert result == [("pass",)]
    html = report.elementary_report(project, project.dsn, tmp_path / "report.html").read_text()
    data = base64.b64decode(re.search(r"elementaryData = JSON.parse\(atob\('([^']+)'\)\)", html)[1]).decode()
    assert "test_fact_orders__purchased_after_2016" in data
