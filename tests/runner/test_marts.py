"""Blue/green marts on a real PostgreSQL with real dbt: build aside, swap whole, roll back, keep for a while.

A bad deployment is made for real: the tests run on a copy of the project whose mart model they edit.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from runner import faults, generate, load, marts, pipeline
from runner.errors import DataQualityStop, SchemaMismatchError
from runner.faults import InjectedFault
from runner.settings import Settings

WINDOW = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 3, 1))
KPIS = "mart.mart_executive_kpis"
CANCELED = "count(*) filter (where orders_by_month.order_status = 'canceled') as canceled_order_count"
# What a copy of the project leaves out: build output, state, and what the other worker may be writing meanwhile.
COPY_IGNORED = shutil.ignore_patterns(
    *("target", "dbt_packages", ".runner", ".venv", "logs", "edr_target", ".git"),
    *("__pycache__", "test-artifacts", ".bench"),
)


@pytest.fixture
def project(settings: Settings, connection: psycopg.Connection, tmp_path: Path) -> Settings:
    """A copy of the project (its models can be edited) with two months built by the runner."""
    copy = tmp_path / "project"
    shutil.copytree(settings.project_dir, copy, ignore=COPY_IGNORED)
    copied = replace(settings, project_dir=copy)
    data = tmp_path / "data"
    generate.generate(generate.GenerateOptions(data, 200, date(2017, 1, 1), 59, 7))
    load.load_directory(connection, data)
    pipeline.run_window(copied, copied.dsn, WINDOW)
    return copied


def edit_model(project: Settings, name: str, old: str, new: str) -> None:
    path = project.project_dir / "models" / "marts" / f"{name}.sql"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def kpis(connection: psycopg.Connection) -> list[tuple]:
    return connection.execute(f"select purchase_month, order_count from {KPIS} order by 1").fetchall()


@contextmanager
def reading(dsn: str) -> Iterator[list[object]]:
    """A reader querying the KPIs in a loop while the block runs; what it saw (results or errors), in order."""
    seen: list[object] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(dsn, autocommit=True) as reader:
            seen.append(kpis(reader))
            while not stop.is_set():
                try:
                    seen.append(kpis(reader))
                except psycopg.Error as error:  # any error a reader meets is a failure of the swap
                    seen.append(error)
            seen.append(kpis(reader))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


@pytest.mark.slow
def test_publish_swaps_a_new_version_in_whole_and_rollback_returns_to_the_old(project, connection):
    good = kpis(connection)
    doubled = [(month, count * 2) for month, count in good]
    assert marts.active(connection).version == 1
    # What operators hang on the marts: a role's privileges, and a view of their own that reads one.
    connection.execute("drop role if exists mart_reader")
    connection.execute("create role mart_reader")
    connection.execute(f"grant usage on schema mart to mart_reader; grant select on {KPIS} to mart_reader")
    connection.execute(f"create schema reporting; create view reporting.kpis as select * from {KPIS}")

    assert marts.deploy(project, project.dsn, connection, keep_for=timedelta(days=7)).built is False

    edit_model(project, "mart_executive_kpis", "count(*) as order_count", "count(*) * 2 as order_count")
    with reading(project.dsn) as seen:
        published = marts.deploy(project, project.dsn, connection, keep_for=timedelta(days=7))

    assert (published.version, published.previous, published.built) == (2, 1, True)
    # A reader querying all along saw the old version whole, then the new one whole, and never an error.
    assert seen[0] == good and seen[-1] == doubled and set(map(str, seen)) == {str(good), str(doubled)}
    assert kpis(connection) == doubled
    assert connection.execute("select purchase_month, order_count from reporting.kpis order by 1").fetchall() == doubled
    privileges = connection.execute(
        "select has_schema_privilege('mart_reader', 'mart', 'usage'), has_table_privilege('mart_reader', %s, 'select')",
        (KPIS,),
    ).fetchone()
    assert privileges == (True, True)
    assert connection.execute("select active_version from metadata.active_version").fetchone() == (2,)

    with reading(project.dsn) as seen:
        rolled_back = marts.rollback(connection)

    assert (rolled_back.version, rolled_back.previous) == (1, 2)
    assert seen[-1] == good and set(map(str, seen)) <= {str(good), str(doubled)}
    assert kpis(connection) == good
    assert connection.execute("select purchase_month, order_count from reporting.kpis order by 1").fetchall() == good
    statuses = dict(connection.execute("select version, status from metadata.mart_versions").fetchall())
    assert statuses == {1: "active", 2: "rolled_back"}
    # Rolled-back versions are not rolled back to; the parked one is dropped once its time is up.
    with pytest.raises(Exception, match="no earlier mart version"):
        marts.rollback(connection)
    edit_model(project, "mart_executive_kpis", "count(*) * 2 as order_count", "count(*) as order_count")
    published = marts.deploy(project, project.dsn, connection, keep_for=timedelta(0), force=True)
    assert (published.version, published.dropped) == (3, [1, 2])
    assert kpis(connection) == good
    assert {row[0] for row in connection.execute("select nspname from pg_namespace where nspname like 'mart%'")} == {
        "mart"
    }


@pytest.mark.slow
def test_a_version_that_fails_its_checks_or_its_swap_is_never_seen(project, connection, monkeypatch):
    good = kpis(connection)
    # More canceled orders than orders breaks one of the mart's tests: the new version must not reach readers.
    edit_model(project, "mart_executive_kpis", CANCELED, "count(*) + 1 as canceled_order_count")

    with pytest.raises(DataQualityStop, match="mart checks failed"):
        marts.deploy(project, project.dsn, connection, keep_for=timedelta(days=7))

    assert kpis(connection) == good
    assert marts.active(connection).version == 1
    # Kept parked for inspection, dropped by the next build.
    assert connection.execute("select count(*) from mart__v2.mart_executive_kpis").fetchone()[0] == len(good)

    edit_model(project, "mart_executive_kpis", "count(*) + 1 as canceled_order_count", CANCELED)
    monkeypatch.setenv(faults.ENVIRONMENT_VARIABLE, "publish.after_swap")
    with pytest.raises(InjectedFault):
        marts.deploy(project, project.dsn, connection, keep_for=timedelta(days=7), force=True)

    assert marts.active(connection).version == 1
    assert kpis(connection) == good
    # The failed version 2 was dropped by that build; version 3 never reached readers either.
    assert connection.execute("select to_regnamespace('mart__v2') is null").fetchone() == (True,)
    assert connection.execute("select status from metadata.mart_versions where version = 3").fetchone() == ("built",)


def test_a_version_that_breaks_its_contract_is_stopped(connection: psycopg.Connection) -> None:
    """dbt does not enforce contracts on materialized views; the runner checks each version it builds."""
    connection.execute("create schema mart__v9")
    connection.execute(
        "create materialized view mart__v9.mart_daily_orders as"
        " select current_date as order_date, 1::bigint as order_count, 'x'::text as renamed_column"
    )
    declared = [("order_date", "date"), ("order_count", "bigint"), ("delivered_count", "bigint")]

    marts.check_contracts(connection, "mart__v9", {"mart_daily_orders": [*declared[:2], ("renamed_column", "TEXT")]})
    with pytest.raises(SchemaMismatchError, match="mart_daily_orders: delivered_count bigint, renamed_column text"):
        marts.check_contracts(connection, "mart__v9", {"mart_daily_orders": declared})
