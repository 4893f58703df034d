"""The same files built on PostgreSQL and on Sail give the same warehouse, row for row (issue: scaling out).

One generated extract of January to March is split into a base batch and a late one. PostgreSQL's warehouse is
built by the runner as users run it: the base loaded, the three months built, the late batch loaded and the due
windows rebuilt. Sail's is loaded by ``runner/delta.py`` (its own ledger in PostgreSQL, the rows in Delta tables)
and built by ``dbt build --target sail`` window by window, the way the README's "dbt directly" runs it. Then every
core table and mart is compared, audit columns aside (when and how often a row was written), and on Sail a window
built again must write nothing.

Sail runs as ``runner sail start`` starts it by default: a local cluster of a driver and two workers, each a process
of its own, and a Hive metastore keeping the catalog between dbt invocations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from conftest import AUDIT_COLUMNS, read_rows, write_rows
from psycopg import conninfo

from runner import delta, generate, pipeline
from runner.olist import SOURCE_FILES
from runner.settings import PROJECT_DIR, Settings

pytestmark = pytest.mark.slow

ORDERS = 300
START = date(2017, 1, 1)
DAYS = 90
MONTHS = (("2017-01-01", "2017-02-01"), ("2017-02-01", "2017-03-01"), ("2017-03-01", "2017-04-01"))
MOVED_BY = timedelta(days=10)
# Seconds a dbt build or a runner command may take before the test gives up on it.
COMMAND_SECONDS = 900


class Extract:
    """The base batch, and a late batch: a January order held back, a January order restated as canceled, and a
    late-January order whose times all move ten days on, into February (January's replace must take it out)."""

    def __init__(self, folder: Path) -> None:
        generate.generate(generate.GenerateOptions(folder / "all", ORDERS, START, DAYS, seed=31))
        orders = read_rows(folder / "all", "orders")
        january = [row for row in orders if row["order_purchase_timestamp"].startswith("2017-01")]
        delivered = [row for row in january if row["order_status"] == "delivered"]
        self.held_back = january[0]["order_id"]
        self.restated = delivered[0]["order_id"]
        moved = next(row for row in delivered if row["order_purchase_timestamp"] >= "2017-01-25")
        self.moved = moved["order_id"]
        self.moved_to = datetime.fromisoformat(moved["order_purchase_timestamp"]) + MOVED_BY
        self.base = folder / "base"
        for source in SOURCE_FILES:
            rows = read_rows(folder / "all", source.entity)
            if "order_id" in source.columns:
                rows = [row for row in rows if row["order_id"] != self.held_back]
            write_rows(self.base, source.entity, rows)
        self.late = folder / "late"
        late_orders = [row for row in orders if row["order_id"] == self.held_back]
        late_orders.append(
            {
                **next(row for row in orders if row["order_id"] == self.restated),
                "order_status": "canceled",
                "order_delivered_customer_date": "",
            }
        )
        late_orders.append({column: moved_on(column, value) for column, value in moved.items()})
        write_rows(self.late, "orders", late_orders)
        for source in SOURCE_FILES:
            if "order_id" in source.columns and source.entity != "orders":
                rows = read_rows(folder / "all", source.entity)
                write_rows(self.late, source.entity, [row for row in rows if row["order_id"] == self.held_back])


def moved_on(column: str, value: str) -> str:
    """An order's time moved on by MOVED_BY (its other columns as they are)."""
    if column.startswith("order_") and column.endswith(("_timestamp", "_at", "_date")) and value:
        return (datetime.fromisoformat(value) + MOVED_BY).strftime("%Y-%m-%d %H:%M:%S")
    return value


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Extract:
    return Extract(tmp_path_factory.mktemp("extract"))


def succeeded(command: list[str], environment: dict[str, str]) -> str:
    """A command run in the project's folder, as a user runs it; its output, failing on a non-zero exit."""
    completed = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, check=False, timeout=COMMAND_SECONDS
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-3000:]
    return completed.stdout


def runner_cli(home: Path, *arguments: str, env: dict[str, str] | None = None) -> str:
    """``python -m runner`` with its own home."""
    return succeeded(
        [sys.executable, "-m", "runner", *arguments], {**os.environ, "OLIST_DW_HOME": str(home), **(env or {})}
    )


def new_database(server_dsn: str) -> str:
    name = f"olist_engine_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    return conninfo.make_conninfo(server_dsn, dbname=name)


@contextmanager
def running_cluster(home: Path) -> Iterator[str]:
    """A local Sail cluster of two workers and its metastore (catalog and tables under ``home``); yields its Spark
    Connect URL."""
    try:
        runner_cli(home, "sail", "start", env={"OLIST_DW_SAIL_MODE": ""})
        status = json.loads(runner_cli(home, "sail", "status", "--json"))
        assert status["mode"] == "local-cluster"
        yield status["endpoint"]
    finally:
        runner_cli(home, "sail", "stop")


@pytest.fixture(scope="module")
def cluster(sail_ready, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The cluster the module's warehouse is built on."""
    with running_cluster(tmp_path_factory.mktemp("sail-home")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def postgres_warehouse(server_dsn: str, extract: Extract, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The extract built on PostgreSQL by the runner: the base's three months, then the late batch's windows."""
    dsn = new_database(server_dsn)
    home = tmp_path_factory.mktemp("postgres-home")
    runner_cli(home, "--dsn", dsn, "load", "--source", str(extract.base))
    runner_cli(home, "--dsn", dsn, "run", "--window", f"{MONTHS[0][0]}..{MONTHS[-1][1]}", "--step", "month")
    runner_cli(home, "--dsn", dsn, "load", "--source", str(extract.late))
    runner_cli(home, "--dsn", dsn, "run")
    return dsn


class SailWarehouse:
    """A warehouse on Sail: its ledger in a PostgreSQL database of its own, its data in Delta tables."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.dsn = dsn

    def load(self, folder: Path) -> None:
        delta.load_source(self.settings, self.dsn, folder)

    def build(self, start: str, end: str) -> str:
        """``dbt build --target sail`` of the window [start, end), as the README's "dbt directly" runs it."""
        return succeeded(
            [str(Path(sys.executable).with_name("dbt")), "build", "--target", "sail"],
            {
                **os.environ,
                "DBT_PROFILES_DIR": str(self.settings.profiles_dir),
                "DBT_TARGET_PATH": str(self.settings.home / "sail-target"),
                "DBT_LOG_PATH": str(self.settings.home / "sail-logs"),
                "OLIST_DW_WATERMARK_START": start,
                "OLIST_DW_WATERMARK_END": end,
            },
        )

    def rows(self, relation: str, columns: list[str]) -> list[tuple[object, ...]]:
        with delta.session(self.settings) as spark:
            selected = ", ".join(delta.quoted(column) for column in columns)
            schema, name = relation.split(".")
            found = spark.sql(f"select {selected} from {delta.quoted(schema, name)}").collect()
        return sorted((tuple(normalized(value) for value in row) for row in found), key=repr)


@pytest.fixture(scope="module")
def sail_warehouse(
    cluster: str, server_dsn: str, extract: Extract, tmp_path_factory: pytest.TempPathFactory
) -> SailWarehouse:
    """The extract built on Sail: the base's three months, then the late batch's two windows (January, which
    gains, restates and loses an order, and February, which gains the moved one)."""
    home = tmp_path_factory.mktemp("sail-warehouse-home")
    settings = replace(Settings.from_environment(), home=home, dsn=new_database(server_dsn), spark_remote=cluster)
    warehouse = SailWarehouse(settings, pipeline.bootstrap(settings))
    warehouse.load(extract.base)
    for start, end in MONTHS:
        warehouse.build(start, end)
    warehouse.load(extract.late)
    for start, end in MONTHS[:2]:
        warehouse.build(start, end)
    return warehouse


def normalized(value: object) -> object:
    """A value as both engines can agree on it: numbers to 6 decimals (PostgreSQL's numeric is Spark's decimal or
    double), times in UTC without a zone, identifiers as text."""
    if isinstance(value, bool) or value is None or (isinstance(value, str | date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, Decimal | float | int):
        return round(float(value), 6)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def postgres_relations(dsn: str) -> dict[str, list[str]]:
    """Every core table and published mart, with its columns but the audit ones."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        found = connection.execute(
            "select namespace.nspname || '.' || class.relname,"
            " array_agg(attribute.attname order by attribute.attnum)"
            " from pg_class as class"
            " join pg_namespace as namespace on namespace.oid = class.relnamespace"
            " join pg_attribute as attribute on attribute.attrelid = class.oid"
            " where namespace.nspname in ('core', 'mart') and class.relkind in ('r', 'm')"
            " and attribute.attnum > 0 and not attribute.attisdropped"
            " group by 1 order by 1"
        ).fetchall()
    return {relation: [column for column in columns if column not in AUDIT_COLUMNS] for relation, columns in found}


def postgres_rows(dsn: str, relation: str, columns: list[str]) -> list[tuple[object, ...]]:
    schema, name = relation.split(".")
    query = psycopg.sql.SQL("select {} from {}").format(
        psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns)), psycopg.sql.Identifier(schema, name)
    )
    with psycopg.connect(dsn, autocommit=True) as connection:
        found = connection.execute(query).fetchall()
    return sorted((tuple(normalized(value) for value in row) for row in found), key=repr)


def test_sail_builds_the_warehouse_postgresql_builds(postgres_warehouse, sail_warehouse):
    relations = postgres_relations(postgres_warehouse)
    assert {relation.split(".")[0] for relation in relations} == {"core", "mart"}
    assert len([relation for relation in relations if relation.startswith("mart.")]) == 6
    differences = []
    for relation, columns in relations.items():
        expected = postgres_rows(postgres_warehouse, relation, columns)
        found = sail_warehouse.rows(relation, columns)
        if found != expected:
            missing = [row for row in expected if row not in found][:3]
            extra = [row for row in found if row not in expected][:3]
            differences.append(
                f"{relation}: {len(expected)} rows on PostgreSQL, {len(found)} on Sail;"
                f" only on PostgreSQL {missing}; only on Sail {extra}"
            )
    assert not differences, "\n".join(differences)


def test_the_late_batch_reached_sail(sail_warehouse, extract):
    """The late batch's three changes, in core on Sail: a held-back order, a restated status, and an order whose
    window moved (January's replace took it out of January's staging rows, February's merge put it there)."""
    orders = {
        row[0]: row[1:] for row in sail_warehouse.rows("core.fact_orders", ["order_id", "order_status", "purchased_at"])
    }
    assert extract.held_back in orders
    assert orders[extract.restated][0] == "canceled"
    assert orders[extract.moved][1] == extract.moved_to
    assert extract.moved_to.month == 2
    staged = sail_warehouse.rows("staging.stg_olist__orders", ["order_id", "purchased_at"])
    assert [row for row in staged if row[0] == extract.moved] == [(extract.moved, extract.moved_to)]


def test_a_window_built_again_on_sail_writes_nothing(sail_warehouse):
    """January built once more from the same data: every core row keeps its version and its update time."""

    def core_state() -> dict[str, list[tuple[object, ...]]]:
        return {
            relation: sail_warehouse.rows(relation, columns)
            for relation, columns in (
                ("core.fact_orders", ["order_id", "version", "updated_at"]),
                ("core.fact_order_items", ["order_id", "order_item_id", "version", "updated_at"]),
                ("core.dim_customer", ["customer_id", "version", "updated_at"]),
            )
        }

    before = core_state()
    sail_warehouse.build(*MONTHS[0])
    assert core_state() == before


def test_a_load_onto_sail_killed_between_its_two_commits_converges(sail_ready, server_dsn, extract, tmp_path):
    """Killed after a file's Delta commit, before the ledger's: the rows on Sail belong to no recorded file, the
    models can not see them, and the next load deletes them and loads the file once."""
    with running_cluster(tmp_path / "sail-home") as endpoint:
        home = tmp_path / "home"
        dsn = new_database(server_dsn)
        environment = {**os.environ, "OLIST_DW_HOME": str(home), "OLIST_DW_SPARK_REMOTE": endpoint}
        command = [
            sys.executable,
            "-m",
            "runner",
            "--dsn",
            dsn,
            "load",
            "--source",
            str(extract.base),
            "--target",
            "sail",
        ]
        killed = subprocess.run(
            command,
            cwd=PROJECT_DIR,
            env={**environment, "OLIST_DW_FAIL_AT": "load.delta:crash"},
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_SECONDS,
        )
        assert killed.returncode == -9, killed.stderr[-2000:]
        settings = replace(Settings.from_environment(), home=home, dsn=dsn, spark_remote=endpoint)
        customers = len(read_rows(extract.base, "customers"))
        with delta.session(settings) as spark:
            assert spark.sql("select count(*) as n from raw.customers").first()["n"] == customers
            assert spark.sql("select count(*) as n from metadata.loaded_files").first()["n"] == 0
        with psycopg.connect(dsn) as connection:
            assert connection.execute("select count(*) from metadata.loaded_files").fetchone() == (0,)

        succeeded(command, environment)
        with psycopg.connect(dsn) as connection:
            recorded = connection.execute(
                "select cast(batch_id as text), first_raw_id, row_count from metadata.loaded_files"
                " where entity = 'customers'"
            ).fetchall()
        with delta.session(settings) as spark:
            found = spark.sql(
                "select _batch_id, min(_raw_id) as first_raw_id, count(*) as row_count from raw.customers"
                " group by _batch_id"
            ).collect()
            mirrored = spark.sql("select count(*) as n from metadata.loaded_files").first()["n"]
        assert [tuple(row) for row in found] == recorded
        assert recorded[0][2] == customers
        assert mirrored == len(SOURCE_FILES)
