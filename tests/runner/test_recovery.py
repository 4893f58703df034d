"""Recovery on a real PostgreSQL with real dbt: roll a bad batch back, restore a dimension, optimistic locking."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import read_rows, warehouse_checksums, write_rows

from runner import dbt, generate, load, pipeline, recovery
from runner.errors import PipelineFailure, UsageError
from runner.olist import BY_ENTITY
from runner.settings import Settings

WINDOW = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 3, 1))


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    data = tmp_path / "good"
    generate.generate(generate.GenerateOptions(data, 200, date(2017, 1, 1), 59, 11))
    return data


TIMES = [column for column in BY_ENTITY["orders"].columns if column.endswith(("_timestamp", "_at", "_date"))]


def later(text: str) -> str:
    """A timestamp of the export a month later (empty stays empty)."""
    return str(datetime.fromisoformat(text) + timedelta(days=31)) if text else text


def bad_batch(extract: Path, directory: Path) -> Path:
    """A re-export gone wrong: orders canceled, one moved to another month, new orders with items."""
    orders = read_rows(extract, "orders")
    items = read_rows(extract, "order_items")
    changed = [{**row, "order_status": "canceled"} for row in orders[:10]]
    january = next(row for row in orders[10:] if row["order_purchase_timestamp"].startswith("2017-01-0"))
    moved = {**january, **{column: later(january[column]) for column in TIMES}}
    new_orders = [{**row, "order_id": uuid.uuid4().hex} for row in orders[20:23]]
    new_items = [{**items[0], "order_id": row["order_id"]} for row in new_orders]
    write_rows(directory, "orders", [*changed, moved, *new_orders])
    write_rows(directory, "order_items", new_items)
    return directory


def build(settings: Settings, extract: Path) -> None:
    pipeline.bootstrap(settings)
    with psycopg.connect(settings.dsn, autocommit=True) as connection:
        load.load_directory(connection, extract)
    pipeline.run_window(settings, settings.dsn, WINDOW)


@pytest.mark.slow
def test_rolling_a_batch_back_leaves_the_warehouse_as_if_it_was_never_loaded(
    settings, connection, extract, tmp_path, new_database
):
    clean = replace(settings, home=tmp_path / "clean", dsn=new_database())
    build(clean, extract)
    build(settings, extract)
    with_bad = load.load_directory(connection, bad_batch(extract, tmp_path / "bad"))
    pipeline.run_window(settings, settings.dsn, WINDOW)
    assert warehouse_checksums(settings.dsn) != warehouse_checksums(clean.dsn)

    impact = recovery.batch_impact(connection, with_bad.batch_id)
    assert impact.rows["raw.orders"] == 14 and impact.rows["raw.order_items"] == 3
    assert [(start, end) for start, end, _ in impact.windows] == [(WINDOW.start, WINDOW.end)]
    assert impact.windows[0][2] == 14
    assert connection.execute("select count(*) from raw.orders").fetchone()[0] == 214  # the dry run changed nothing

    # Cut short after its first transaction (a crash): raw is clean and the window is marked for rebuilding.
    recovery.remove_batch(connection, impact)
    assert recovery.windows_to_rebuild(connection, with_bad.batch_id) == [(WINDOW.start, WINDOW.end)]
    failed = connection.execute("select error_class from metadata.window_runs where status = 'failed'").fetchall()
    assert failed == [(recovery.ROLLED_BACK,)]
    # Running the command again finishes the job.
    recovery.rollback_batch(settings, settings.dsn, with_bad.batch_id)

    assert warehouse_checksums(settings.dsn) == warehouse_checksums(clean.dsn)
    assert (
        connection.execute("select count(*) from raw.orders where _batch_id = %s", (with_bad.batch_id,)).fetchone()[0]
        == 0
    )
    assert recovery.windows_to_rebuild(connection, with_bad.batch_id) == []
    # Again: nothing left to do, nothing changes; and the same bytes may be loaded again on purpose.
    recovery.rollback_batch(settings, settings.dsn, with_bad.batch_id)
    assert warehouse_checksums(settings.dsn) == warehouse_checksums(clean.dsn)
    assert load.load_directory(connection, tmp_path / "bad").rows_loaded == 17


@pytest.mark.slow
def test_restore_rewrites_a_dimension_as_of_a_time_keeping_its_identity(settings, connection, extract, tmp_path):
    build(settings, extract)
    with pytest.raises(UsageError, match="cannot be restored"):
        recovery.restore_dimension(connection, "core.fact_orders", datetime(2030, 1, 1), dry_run=True)
    with pytest.raises(UsageError, match="no row valid at"):
        recovery.restore_dimension(connection, "core.dim_seller", datetime(2000, 1, 1), dry_run=False)
    before = warehouse_checksums(settings.dsn)["core.dim_customer"]
    customers = connection.execute("select count(*) from core.dim_customer").fetchone()[0]
    as_of = connection.execute("select now()").fetchone()[0]
    identity = connection.execute(
        "select 'core.dim_customer'::regclass::oid, (select array_agg(indexrelid::regclass::text order by 1)"
        " from pg_index where indrelid = 'core.dim_customer'::regclass)"
    ).fetchone()
    connection.execute("drop role if exists dimension_reader")
    connection.execute("create role dimension_reader")
    connection.execute("grant select on core.dim_customer to dimension_reader")
    connection.execute("create schema reporting")
    connection.execute("create view reporting.cities as select customer_id, customer_city from core.dim_customer")
    # The damage: a bad fix by hand, written under the optimistic locking rules, then snapshotted as history.
    connection.execute(
        "update core.dim_customer set customer_city = 'corrupted', updated_at = now(), version = version + 1"
        " where customer_id in (select customer_id from core.dim_customer order by 1 limit 10)"
    )
    connection.execute(
        "delete from core.dim_customer"
        " where customer_id in (select customer_id from core.dim_customer order by 1 desc limit 3)"
    )
    dbt.run_dbt(settings, ["snapshot", "--select", "dim_customer_snapshot"], dsn=settings.dsn, lineage=False)

    plan = recovery.restore_dimension(connection, "core.dim_customer", as_of, dry_run=True)
    assert (plan.added, plan.changed, plan.removed) == (3, 10, 0)
    assert connection.execute(
        "select count(*) from core.dim_customer where customer_city = 'corrupted'"
    ).fetchone() == (10,)

    recovery.restore_dimension(connection, "core.dim_customer", as_of, dry_run=False)

    assert warehouse_checksums(settings.dsn)["core.dim_customer"] == before
    assert (
        connection.execute(
            "select 'core.dim_customer'::regclass::oid, (select array_agg(indexrelid::regclass::text order by 1)"
            " from pg_index where indrelid = 'core.dim_customer'::regclass)"
        ).fetchone()
        == identity
    )
    assert connection.execute(
        "select has_table_privilege('dimension_reader', 'core.dim_customer', 'select')"
    ).fetchone() == (True,)
    assert connection.execute("select count(*) from reporting.cities where customer_city = 'corrupted'").fetchone() == (
        0,
    )
    assert connection.execute("select count(*) from reporting.cities").fetchone()[0] == customers
    # The restore is history too: restored rows are new versions, and a second restore has nothing to do.
    first_ten = "select customer_id from core.dim_customer order by 1 limit 10"
    assert connection.execute(
        f"select min(version) from core.dim_customer where customer_id in ({first_ten})"
    ).fetchone() == (3,)
    assert recovery.restore_dimension(connection, "core.dim_customer", as_of, dry_run=True).counts() == {
        "added": 0,
        "changed": 0,
        "removed": 0,
    }


@pytest.mark.slow
def test_the_merge_never_overwrites_a_row_changed_since_it_read_it(settings, connection, extract, monkeypatch):
    build(settings, extract)
    order_id, version = connection.execute(
        "select order_id, version from core.fact_orders order by 1 limit 1"
    ).fetchone()
    # A correction in raw that the merge will want to write over the same row.
    connection.execute("update raw.orders set order_status = 'canceled' where order_id = %s", (order_id,))
    monkeypatch.setenv("OLIST_DW_PAUSE_AT", "merge_window.fact_orders")
    monkeypatch.setenv("OLIST_DW_PAUSE_SECONDS", "5")
    failures: list[Exception] = []

    def merge() -> None:
        try:
            dbt.run_dbt(
                settings,
                ["run", "--select", "stg_olist__orders", "fact_orders"],
                dsn=settings.dsn,
                variables=WINDOW.as_dbt_vars(),
                lineage=False,
            )
        except PipelineFailure as error:
            failures.append(error)

    merging = threading.Thread(target=merge)
    merging.start()
    wait_for_pause(connection, "merge_window.fact_orders")
    # Someone else's write, made by the rules: update the version read, to the next.
    written = connection.execute(
        "update core.fact_orders set order_status = 'unavailable', version = version + 1"
        " where order_id = %s and version = %s",
        (order_id, version),
    ).rowcount
    merging.join()

    assert written == 1
    [failure] = failures
    assert f'version conflict on "{connection.info.dbname}"."core"."fact_orders" (order_id)=({order_id})' in str(
        failure
    )
    assert f"version {version} read, version {version + 1} now" in str(failure)
    assert connection.execute(
        "select order_status, version from core.fact_orders where order_id = %s", (order_id,)
    ).fetchone() == ("unavailable", version + 1)


def wait_for_pause(connection: psycopg.Connection, point: str, timeout: float = 120) -> int:
    """Wait until a dbt statement sleeps at a fault point; return its backend's pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = connection.execute(
            "select pid from pg_stat_activity where wait_event = 'PgSleep' and query like %s",
            (f"%olist_dw pause: {point} %",),
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.2)
    raise AssertionError(f"dbt never reached the fault point {point}")
