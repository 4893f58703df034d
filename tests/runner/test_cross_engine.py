"""The same files built on PostgreSQL and on Sail give the same warehouse, row for row (issue: scaling out).

One generated extract of January to March is split into a base batch and a late one. Each engine's warehouse is
built by the runner as users run it: the base loaded, the three months built, the late batch loaded and the due
windows rebuilt; on Sail with ``--target sail`` (its ledger in a PostgreSQL database of its own, the rows in Delta
tables, the marts published as versions). Then every core table and mart is compared, audit columns aside (when
and how often a row was written). On Sail, a window built again by ``dbt build --target sail``, the way the
README's "dbt directly" runs it, must write nothing and publish the same marts.

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
        # What the runner said when it built the late batch's windows.
        self.late_run = ""

    def runner(self, *arguments: str) -> str:
        """``python -m runner … --target sail`` on this warehouse, as a user runs it."""
        return runner_cli(
            self.settings.home,
            "--dsn",
            self.dsn,
            *arguments,
            "--target",
            "sail",
            env={"OLIST_DW_SPARK_REMOTE": self.settings.spark_remote or ""},
        )

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

    def names(self, query: str, field: str) -> list[str]:
        """One field of each row a ``show`` or ``describe`` statement returns."""
        with delta.session(self.settings) as spark:
            return [row[field] for row in spark.sql(query).collect()]

    def mart_rows(self) -> dict[str, list[tuple[object, ...]]]:
        """Each published mart's rows, read through its view in ``mart``."""
        return {
            view: self.rows(f"mart.{view}", self.names(f"describe table mart.{view}", "col_name"))
            for view in sorted(self.names("show views in mart", "tableName"))
        }

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
    """The extract built on Sail by the runner: the base's three months, then the windows the late batch made due
    (January, which gains, restates and loses an order, and February, which gains the moved one)."""
    home = tmp_path_factory.mktemp("sail-warehouse-home")
    settings = replace(Settings.from_environment(), home=home, dsn=new_database(server_dsn), spark_remote=cluster)
    warehouse = SailWarehouse(settings, pipeline.bootstrap(settings))
    warehouse.runner("load", "--source", str(extract.base))
    warehouse.runner("run", "--window", f"{MONTHS[0][0]}..{MONTHS[-1][1]}", "--step", "month")
    warehouse.runner("load", "--source", str(extract.late))
    warehouse.late_run = warehouse.runner("run")
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


def test_the_late_batch_made_its_two_windows_due_on_sail(sail_warehouse):
    """Planned from the rows on Sail: the late batch touches January (a held-back order, a restated one, and the
    moved order's old place) and February (its new place), not March."""
    due = [line.partition("): ")[0] + ")" for line in sail_warehouse.late_run.splitlines() if line.startswith("due ")]
    assert due == [
        "due       window [2017-01-01 00:00:00, 2017-02-01 00:00:00)",
        "due       window [2017-02-01 00:00:00, 2017-03-01 00:00:00)",
    ], sail_warehouse.late_run
    assert "new batch" in sail_warehouse.late_run
    assert "up to date: no window is due" in sail_warehouse.runner("run")


def test_lineage_on_sail_names_the_spark_server(sail_warehouse, cluster):
    """The events of loads and runs on Sail name its tables after the Spark Connect server, as Spark's are named."""
    events = [json.loads(line) for line in sail_warehouse.settings.lineage_file.read_text().splitlines()]
    host_and_port = cluster.removeprefix("sc://")
    outputs = {f"{output['namespace']}/{output['name']}" for event in events for output in event.get("outputs") or []}
    assert f"spark://{host_and_port}/raw.orders" in outputs  # the runner's loads
    assert f"spark://{host_and_port}/core.fact_orders" in outputs
    assert any(name.startswith(f"spark://{host_and_port}/mart__v") for name in outputs)


def test_the_marts_on_sail_are_views_on_the_version_the_runner_published(sail_warehouse):
    """Each run built the marts as a new version, ``mart__v<N>``, and published it by re-creating the views of
    ``mart`` on it; the ledger records it active, and only it and the one before it are kept."""
    with psycopg.connect(sail_warehouse.dsn) as connection:
        versions = dict(connection.execute("select version, status from metadata.mart_versions").fetchall())
    active = next(version for version, status in versions.items() if status == "active")
    assert active == max(versions)
    kept = {version for version, status in versions.items() if status != "dropped"}
    assert kept == {active, active - 1}
    schemas = set(sail_warehouse.names("show schemas like 'mart__v*'", "name"))
    assert schemas == {f"mart__v{version}" for version in kept}
    published = sail_warehouse.mart_rows()
    assert len(published) == 6
    for view, rows in published.items():
        columns = sail_warehouse.names(f"describe table mart.{view}", "col_name")
        assert rows == sail_warehouse.rows(f"mart__v{active}.{view}", columns), view


def test_a_window_built_again_on_sail_writes_nothing(sail_warehouse):
    """January built once more from the same data, by ``dbt build`` by hand: every core row keeps its version and
    its update time, and the marts it publishes (its own tables, in ``mart__dbt``) hold what the runner's did."""

    def core_state() -> dict[str, list[tuple[object, ...]]]:
        return {
            relation: sail_warehouse.rows(relation, columns)
            for relation, columns in (
                ("core.fact_orders", ["order_id", "version", "updated_at"]),
                ("core.fact_order_items", ["order_id", "order_item_id", "version", "updated_at"]),
                ("core.dim_customer", ["customer_id", "version", "updated_at"]),
            )
        }

    before, published = core_state(), sail_warehouse.mart_rows()
    sail_warehouse.build(*MONTHS[0])
    assert core_state() == before
    assert sail_warehouse.mart_rows() == published
    assert set(sail_warehouse.names("show tables in mart__dbt", "tableName")) == set(published)


def test_the_marts_on_sail_roll_back_to_the_kept_version_and_publish_again(sail_warehouse):
    """``publish --rollback --target sail`` points the views back at the version kept before the active one;
    ``publish --target sail`` builds a new version from core and moves them onto it."""
    with psycopg.connect(sail_warehouse.dsn) as connection:
        active = connection.execute("select version from metadata.mart_versions where status = 'active'").fetchone()[0]
    expected = sail_warehouse.mart_rows()
    assert f"mart version {active - 1} active again" in sail_warehouse.runner("publish", "--rollback")
    assert sail_warehouse.mart_rows() == {
        view: sail_warehouse.rows(
            f"mart__v{active - 1}.{view}", sail_warehouse.names(f"describe table mart.{view}", "col_name")
        )
        for view in expected
    }
    assert f"mart version {active + 1} published" in sail_warehouse.runner("publish")
    assert sail_warehouse.mart_rows() == expected
    with psycopg.connect(sail_warehouse.dsn) as connection:
        statuses = dict(connection.execute("select version, status from metadata.mart_versions").fetchall())
    assert (statuses[active - 1], statuses[active], statuses[active + 1]) == ("retired", "dropped", "active")


def test_a_file_of_many_messages_lands_in_raw_in_one_commit(sail_ready, server_dsn, extract, tmp_path, monkeypatch):
    """Spark Connect carries at most 128 MiB a message: a file of more rows than one message takes goes to Sail in
    pieces, through the staging table ``landing.<entity>``, and still reaches raw in one Delta commit, numbered
    as one. The staging table is dropped after, and on the local cluster its files are deleted too."""
    monkeypatch.setattr(delta, "ROWS_PER_MESSAGE", 40)
    customers = len(read_rows(extract.base, "customers"))
    assert customers > 3 * delta.ROWS_PER_MESSAGE
    home = tmp_path / "sail-home"
    with running_cluster(home):
        # The cluster's own home and no remote: the runner knows it is the local cluster, whose files it may delete.
        settings = replace(Settings.from_environment(), home=home, dsn=new_database(server_dsn), spark_remote=None)
        delta.load_source(settings, pipeline.bootstrap(settings), extract.base)
        with delta.session(settings) as spark:
            numbered = spark.sql(
                "select count(*) as n, min(_raw_id) as first, max(_raw_id) as last from raw.customers"
            ).first()
            location = spark.sql("show schemas like 'raw'").first()["locationUri"]
            staging_schemas = spark.sql("show schemas like 'landing'").collect()
            staging_tables = spark.sql("show tables in landing").collect()
    assert (numbered["n"], numbered["first"], numbered["last"]) == (customers, 1, customers)
    commits = sorted((Path(location.removeprefix("file:")) / "customers" / "_delta_log").glob("*.json"))
    assert [commit.name for commit in commits] == ["00000000000000000000.json", "00000000000000000001.json"]
    assert staging_schemas, "the file did not go through the staging table"
    assert staging_tables == []
    assert not list((Path(location.removeprefix("file:")).parent / "landing.db").glob("*/*"))


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
