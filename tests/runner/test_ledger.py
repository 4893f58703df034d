"""Runner-owned state: migrations are idempotent and safe to run at once; the watermark never moves back."""

from __future__ import annotations

import threading
from datetime import datetime

import psycopg

from runner import ledger
from runner.settings import PIPELINE


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


def test_watermark_moves_forward_only(connection):
    later, earlier = datetime(2017, 3, 1), datetime(2017, 2, 1)
    for start, end in [(datetime(2017, 2, 1), later), (datetime(2017, 1, 1), earlier)]:
        run_id = ledger.start_window(connection, PIPELINE, start, end)
        ledger.succeed_window(connection, run_id, PIPELINE, end, invocation_id=None)

    assert ledger.watermark(connection, PIPELINE) == later


def test_failed_window_keeps_its_error_and_does_not_move_the_watermark(connection):
    run_id = ledger.start_window(connection, PIPELINE, datetime(2017, 1, 1), datetime(2017, 2, 1))

    ledger.fail_window(connection, run_id, "boom")

    row = connection.execute("select status, error_message from metadata.window_runs").fetchone()
    assert row == ("failed", "boom")
    assert ledger.watermark(connection, PIPELINE) is None
