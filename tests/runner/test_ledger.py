"""Runner-owned state: migrations are idempotent and safe to run at once; the watermark never moves back."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime

import psycopg

from runner import ledger, load
from runner.settings import PIPELINE

JAN, FEB, MAR, APR = (datetime(2017, month, 1) for month in (1, 2, 3, 4))


def test_migrate_twice_applies_nothing_the_second_time(connection):
    assert ledger.migrate(connection) == []
    versions = [row[0] for row in connection.execute("select version from metadata.schema_migrations")]
    assert versions == [migration.version for migration in ledger.migrations()]


def test_two_runners_migrating_at_once_both_succeed(dsn):
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            with psycopg.connect(dsn) as connection:
                ledger.migrate(connection)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with psycopg.connect(dsn) as connection:
        count = connection.execute("select count(*) from metadata.schema_migrations").fetchone()[0]
    assert count == len(ledger.migrations())


def record_windows(connection, windows, status="succeeded"):
    run_ids = ledger.start_windows(connection, PIPELINE, windows, runner_run_id=uuid.uuid4())
    if status == "succeeded":
        with connection.transaction():
            ledger.record_success(
                connection,
                run_ids,
                PIPELINE,
                max(end for _, end in windows),
                invocation_id=None,
                stage_durations_ms={"build": 1},
                row_counts={},
            )
    else:
        ledger.record_failure(connection, run_ids, error_class="PipelineFailure", message="boom")
    return run_ids


def test_watermark_moves_forward_only(connection):
    record_windows(connection, [(FEB, MAR)])
    record_windows(connection, [(JAN, FEB)])

    assert ledger.watermark(connection, PIPELINE) == MAR


def test_failed_window_keeps_its_error_and_does_not_move_the_watermark(connection):
    record_windows(connection, [(JAN, FEB)], status="failed")

    row = connection.execute("select status, error_class, error_message from metadata.window_runs").fetchone()
    assert row == ("failed", "PipelineFailure", "boom")
    assert ledger.watermark(connection, PIPELINE) is None
    assert ledger.failed_windows(connection, PIPELINE) == [(JAN, FEB)]


def test_a_later_success_clears_a_failed_window(connection):
    record_windows(connection, [(JAN, FEB)], status="failed")
    record_windows(connection, [(JAN, FEB), (FEB, MAR)])

    assert ledger.failed_windows(connection, PIPELINE) == []


def test_gaps_are_the_stretches_no_succeeded_window_covers(connection):
    record_windows(connection, [(JAN, FEB)])
    record_windows(connection, [(MAR, APR)])
    record_windows(connection, [(FEB, datetime(2017, 2, 15))], status="failed")

    assert ledger.gaps(connection, PIPELINE) == [(FEB, MAR)]


def test_window_runs_lists_newest_first_and_filters_by_status(connection):
    record_windows(connection, [(JAN, FEB)])
    record_windows(connection, [(FEB, MAR)], status="failed")

    runs = ledger.window_runs(connection, PIPELINE)
    assert [(run.window_start, run.status) for run in runs] == [(FEB, "failed"), (JAN, "succeeded")]
    assert [run.window_start for run in ledger.window_runs(connection, PIPELINE, status="succeeded")] == [JAN]


def test_db_migrations_lists_then_migrate_applies_once(dsn, run_cli):
    before = run_cli("--dsn", dsn, "db", "migrations")
    first = run_cli("--dsn", dsn, "db", "migrate")
    second = run_cli("--dsn", dsn, "db", "migrate")
    after = run_cli("--dsn", dsn, "db", "migrations")

    names = [f"{migration.version:04d}_{migration.name}" for migration in ledger.migrations()]
    assert before.stdout.splitlines() == [f"{name}  pending" for name in names]
    assert first.stdout.splitlines() == [f"applied   {name}" for name in names]
    assert second.stdout.strip() == "up to date"
    assert all(line.split("  ")[1].startswith("applied ") for line in after.stdout.splitlines())


def test_batches_lists_each_load_with_its_files_and_rows(connection, dsn, run_cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "olist_sellers_dataset.csv").write_text(
        "seller_id,seller_zip_code_prefix,seller_city,seller_state\ns1,01001,sao paulo,SP\ns2,01002,sao paulo,SP\n"
    )
    loaded = load.load_directory(connection, folder)

    completed = run_cli("--dsn", dsn, "batches", "--json")

    assert completed.returncode == 0, completed.stderr
    [batch] = json.loads(completed.stdout)
    assert (batch["batch_id"], batch["files"], batch["rows"], batch["rolled_back_at"]) == (
        str(loaded.batch_id),
        1,
        2,
        None,
    )
