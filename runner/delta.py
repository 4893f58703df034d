"""The data plane on Sail: the Olist files loaded into Delta tables, the control plane left in PostgreSQL.

A file loads onto Sail as it loads into PostgreSQL (runner/load.py): the same header checks and drift rules, the
same COPY parser and its errors naming file, line and column, the same ledger. The difference is where the rows
land. COPY fills a temporary landing table made like ``raw.<entity>``, which dies with the file's transaction;
its rows then go to the Delta table ``raw.<entity>`` on Sail in one commit, numbered on from the table's last raw
id; the ledger's record of the file commits last, in PostgreSQL. A file too big for one Spark Connect message
travels in pieces to the staging table ``landing.<entity>`` first (``staged_rows``), dropped once raw has the rows.

A crash between the Delta commit and the ledger's leaves rows on Sail that the ledger does not know: the next load
of that table deletes them before it writes (``remove_unrecorded_rows``), and until then the models do not see them,
as the base models read raw through the ledger's mirror on Sail, ``metadata.loaded_files`` (``mirror_loaded_files``).

The PostgreSQL tables of raw stay empty on this path: they define the layout the landing tables copy, and a
column a file adds is added there first, as always, then to the Delta table.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import psycopg
from psycopg import sql

from runner import database, due, faults, load, sail
from runner.errors import PipelineFailure, UsageError
from runner.olist import SOURCE_FILES, SourceFile
from runner.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

# raw's own columns after a file's: PostgreSQL's uuid and timestamptz are Spark's string and timestamp.
RAW_AUDIT_COLUMNS = (
    ("_batch_id", "string"),
    ("_source_file", "string"),
    ("_loaded_at", "timestamp"),
    ("_raw_id", "bigint"),
)
# A file's rows on their way to raw (see staged_rows): raw's own columns but the load time, set by the insert.
LANDING_AUDIT_COLUMNS = (("_batch_id", "string"), ("_source_file", "string"), ("_raw_id", "bigint"))
LANDING_SCHEMA = "landing"
# Rows per Arrow message to Sail: Spark Connect's client refuses a message over 128 MiB, and the rows of one
# DataFrame made from local data travel as one message. 100,000 of the widest file's rows (reviews) take about 40.
ROWS_PER_MESSAGE = 100_000
# The ledger's record of each file, as the base models read it (source `runner.loaded_files`).
LOADED_FILES_COLUMNS = (
    ("batch_id", "string"),
    ("file_name", "string"),
    ("entity", "string"),
    ("content_sha256", "string"),
    ("byte_count", "bigint"),
    ("row_count", "bigint"),
    ("first_raw_id", "bigint"),
    ("loaded_at", "timestamp"),
    ("rolled_back_at", "timestamp"),
)

# metadata.purchase_time's rule (the runner's migration 0006; the dbt macro spark__raw_purchase_time writes it out
# the same way, and test_delta checks the three agree): the export's `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`, an impossible
# date refused by try_cast.
PURCHASE_TIME_PATTERN = (
    "^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?)?$"
)


@contextmanager
def session(settings: Settings) -> Iterator[SparkSession]:
    """A Spark Connect session on the Sail endpoint in use (``OLIST_DW_SPARK_REMOTE``, else the local cluster)."""
    found = sail.endpoint(settings)
    if found is None:
        raise UsageError(
            "no Sail endpoint: start the local cluster (python -m runner sail start) or set OLIST_DW_SPARK_REMOTE"
        )
    sail.check_installation()
    # pyspark comes with the sail extra: imported here, where it is needed and known to be installed.
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    host, port = found
    spark = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    try:
        yield spark
    except PySparkException as error:
        # The engine's refusal or a lost connection: one line for the user, the trace in the log's cause.
        summary = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PipelineFailure(f"Sail at {host}:{port} failed: {summary}") from error
    finally:
        spark.stop()


def _column_list(columns: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    """Column definitions for a Spark ``create table``: each name quoted, then its type (one of ours)."""
    return ", ".join(f"{quoted(name)} {kind}" for name, kind in columns)


def raw_columns(connection: psycopg.Connection, entity: str) -> list[str]:
    """The file columns of ``raw.<entity>`` in PostgreSQL, in table order: the layout's, then any a file added."""
    rows = connection.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s"
        " and column_name not like '\\_%%' order by ordinal_position",
        (entity,),
    )
    return [row[0] for row in rows]


def ensure_tables(spark: SparkSession, connection: psycopg.Connection) -> None:
    """Create the Delta tables the models read (raw's and the ledger's mirror) where they do not exist, and give
    raw's the columns files added in PostgreSQL since: dbt's sources point at them before any load."""
    spark.sql("create schema if not exists raw")
    spark.sql("create schema if not exists metadata")
    for source in SOURCE_FILES:
        ensure_raw_table(spark, connection, source)
    spark.sql(f"create table if not exists metadata.loaded_files ({_column_list(LOADED_FILES_COLUMNS)}) using delta")


def ensure_raw_table(spark: SparkSession, connection: psycopg.Connection, source: SourceFile) -> list[str]:
    """``raw.<entity>`` on Sail with every file column PostgreSQL's has (text as string), plus raw's own; return
    the file columns."""
    columns = raw_columns(connection, source.entity)
    definition = [(column, "string") for column in columns] + list(RAW_AUDIT_COLUMNS)
    ensure_table(spark, quoted("raw", source.entity), definition)
    return columns


def ensure_table(spark: SparkSession, table: str, columns: list[tuple[str, str]]) -> None:
    """A Delta table with at least ``columns``: created when missing, given the columns it lacks (a file added
    one since) at the end."""
    spark.sql(f"create table if not exists {table} ({_column_list(columns)}) using delta")
    present = {field.name for field in spark.table(table).schema.fields}
    added = [(name, kind) for name, kind in columns if name not in present]
    if added:
        spark.sql(f"alter table {table} add columns ({_column_list(added)})")


def remove_unrecorded_rows(spark: SparkSession, connection: psycopg.Connection, source: SourceFile) -> None:
    """Delete the rows on Sail of ``source``'s table that a load left after its Delta commit and before the ledger's
    (killed, or failed between the two): rows of a batch this ledger opened and never finished well, of a file it has
    no record of. Called under ``copy_file``'s lock on the table, so no other loader is between its two commits there;
    a batch that succeeded recorded all of its files, so its rows are never looked at."""
    unfinished = connection.execute(
        "select cast(batch_id as text) from metadata.load_batches where status <> 'succeeded'"
    ).fetchall()
    if not unfinished:
        return
    recorded = {
        (str(batch_id), file_name)
        for batch_id, file_name in connection.execute(
            "select batch_id, file_name from metadata.loaded_files where entity = %s and rolled_back_at is null",
            (source.entity,),
        )
    }
    table = quoted("raw", source.entity)
    batches = ", ".join(literal(batch_id) for (batch_id,) in unfinished)
    for row in spark.sql(
        f"select distinct _batch_id, _source_file from {table} where _batch_id in ({batches})"
    ).collect():
        if (row["_batch_id"], row["_source_file"]) not in recorded:
            spark.sql(
                f"delete from {table} where _batch_id = {literal(row['_batch_id'])}"
                f" and _source_file = {literal(row['_source_file'])}"
            )


def literal(text: str) -> str:
    """A Spark SQL string literal (Sail takes no query parameters): quoted, a quote or backslash escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(*names: str) -> str:
    """A Spark SQL identifier, dotted: each name in backticks (doubled within), as Spark quotes them."""
    return ".".join("`" + name.replace("`", "``") + "`" for name in names)


def write_rows(
    spark: SparkSession,
    connection: psycopg.Connection,
    stream: BinaryIO,
    file_name: str,
    source: SourceFile,
    batch_id: uuid.UUID,
    columns: tuple[str, ...],
    expected_sha256: str,
    *,
    warehouse: Path | None,
) -> load.CopiedRows:
    """The row writer (``load.RowWriter``, ``spark`` and ``warehouse`` bound) of a load onto Sail: COPY into a
    landing table that dies with the transaction, then the rows to the Delta table in one commit, their raw ids
    following the table's last. ``warehouse``: the tables' folder when it is on this machine (see drop_table).

    ``copy_file`` locks PostgreSQL's ``raw.<entity>`` until the transaction ends, so two loaders of one table
    number their rows one after the other here too.
    """
    landing = sql.Identifier(f"landing_{source.entity}")
    connection.execute(
        sql.SQL(
            "create temporary table {landing} (like raw.{table} including defaults including identity) on commit drop"
        ).format(landing=landing, table=sql.Identifier(source.entity))
    )
    copied = load.copy_file(connection, stream, file_name, source, batch_id, columns, expected_sha256, into=landing)
    if not copied.row_count:
        return copied
    file_columns = ensure_raw_table(spark, connection, source)
    remove_unrecorded_rows(spark, connection, source)
    table = quoted("raw", source.entity)
    first_raw_id = spark.sql(f"select coalesce(max(_raw_id), 0) + 1 as next_id from {table}").first()["next_id"]
    query = sql.SQL(
        "select {columns}, cast(_batch_id as text), _source_file, _raw_id - {landed} + {numbered}"
        " from {landing} order by _raw_id"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in file_columns),
        landed=sql.Literal(copied.first_raw_id),
        numbered=sql.Literal(first_raw_id),
        landing=landing,
    )
    pieces = arrow_pieces(connection, query, file_columns)
    with staged_rows(spark, source, file_columns, pieces, warehouse) as rows:
        selected = ", ".join(quoted(name) for name in [*file_columns, "_batch_id", "_source_file"])
        spark.sql(
            f"insert into {table} ({selected}, `_loaded_at`, `_raw_id`)"
            f" select {selected}, current_timestamp(), `_raw_id` from {rows}"
        )
    faults.checkpoint("load.delta")
    return load.CopiedRows(copied.row_count, first_raw_id, copied.byte_count)


def arrow_pieces(connection: psycopg.Connection, query: sql.Composed, file_columns: list[str]) -> Iterator[pa.Table]:
    """The landed rows, read with a server-side cursor, as Arrow tables of at most ROWS_PER_MESSAGE rows each."""
    import pyarrow as pa

    names = [*file_columns, "_batch_id", "_source_file", "_raw_id"]
    with connection.cursor(name="landed_rows") as cursor:
        cursor.execute(query)
        while rows := cursor.fetchmany(ROWS_PER_MESSAGE):
            yield pa.table(
                {
                    name: pa.array(column, pa.int64() if name == "_raw_id" else pa.string())
                    for name, column in zip(names, zip(*rows, strict=True), strict=True)
                }
            )


@contextmanager
def staged_rows(
    spark: SparkSession,
    source: SourceFile,
    file_columns: list[str],
    pieces: Iterator[pa.Table],
    warehouse: Path | None,
) -> Iterator[str]:
    """Where the insert into raw reads a file's rows: a temporary view of them when they travel in one message;
    else the Delta table ``landing.<entity>``, made anew (a crashed load's dropped first), filled one message at a
    time (the models never read it), so that raw still takes the whole file in one commit, and dropped after."""
    view = f"landing_{source.entity}"
    first = next(pieces)
    second = next(pieces, None)
    if second is None:
        spark.createDataFrame(first).createOrReplaceTempView(view)
        yield view
        return
    staging = quoted(LANDING_SCHEMA, source.entity)
    spark.sql(f"create schema if not exists {LANDING_SCHEMA}")
    drop_table(spark, LANDING_SCHEMA, source.entity, warehouse)
    columns = [(column, "string") for column in file_columns] + list(LANDING_AUDIT_COLUMNS)
    spark.sql(f"create table {staging} ({_column_list(columns)}) using delta")
    names = ", ".join(quoted(name) for name, _ in columns)
    for piece in itertools.chain([first, second], pieces):
        spark.createDataFrame(piece).createOrReplaceTempView(view)
        spark.sql(f"insert into {staging} ({names}) select {names} from {view}")
    try:
        yield staging
    finally:
        drop_table(spark, LANDING_SCHEMA, source.entity, warehouse)


def drop_table(spark: SparkSession, schema: str, table: str, warehouse: Path | None) -> None:
    """Drop a Delta table, and its files when ``warehouse`` (the local cluster's tables folder) is given: Sail's
    catalog leaves a dropped table's files behind, even with ``purge``, and has no ``vacuum``. A remote server's
    files are its operator's to clean."""
    spark.sql(f"drop table if exists {quoted(schema, table)}")
    if warehouse is not None:
        shutil.rmtree(warehouse / f"{schema}.db" / table, ignore_errors=True)


def local_warehouse(settings: Settings) -> Path | None:
    """The local cluster's tables folder (``runner sail start``'s), or None on a server given by
    ``OLIST_DW_SPARK_REMOTE``, whose files this machine does not hold."""
    return sail.warehouse_folder(settings) if settings.spark_remote is None else None


def mirror_loaded_files(spark: SparkSession, connection: psycopg.Connection) -> None:
    """Replace ``metadata.loaded_files`` on Sail with the ledger's rows, in one commit: the base models read where
    each file's rows start, and which batch loaded a file last, from it."""
    import pyarrow as pa

    names = [name for name, _ in LOADED_FILES_COLUMNS]
    rows = connection.execute(
        sql.SQL("select {} from metadata.loaded_files").format(
            sql.SQL(", ").join(
                sql.SQL("cast({} as text)").format(sql.Identifier(name)) if name == "batch_id" else sql.Identifier(name)
                for name in names
            )
        )
    ).fetchall()
    types = {"string": pa.string(), "bigint": pa.int64(), "timestamp": pa.timestamp("us", tz="UTC")}
    values = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    arrow = pa.table(
        {name: pa.array(column, types[kind]) for (name, kind), column in zip(LOADED_FILES_COLUMNS, values, strict=True)}
    )
    spark.createDataFrame(arrow).createOrReplaceTempView("ledger_loaded_files")
    spark.sql(
        f"insert overwrite table metadata.loaded_files select {', '.join(quoted(name) for name in names)}"
        " from ledger_loaded_files"
    )


def load_source(
    settings: Settings, dsn: str, source_dir: Path, on_file: Callable[[load.FileResult], None] | None = None
) -> load.LoadReport:
    """``runner load`` onto Sail (``dsn``: the bootstrapped ledger): the folder loaded as ``load.load_source``
    loads it, each file's rows written to Delta; then the ledger is mirrored there, also after a file failed."""
    settings = replace(settings, target="sail")  # whoever calls, the rows land on Sail (and lineage says so)
    with session(settings) as spark:
        with database.connect(dsn) as connection:
            ensure_tables(spark, connection)
        try:
            writer = partial(write_rows, spark, warehouse=local_warehouse(settings))
            return load.load_source(settings, dsn, source_dir, on_file, write_rows=writer)
        finally:
            with database.connect(dsn) as connection:
                mirror_loaded_files(spark, connection)


def purchase_time(column: str) -> str:
    """A raw purchase time as a Spark timestamp, null when it is not one (see PURCHASE_TIME_PATTERN)."""
    return f"case when {column} rlike {literal(PURCHASE_TIME_PATTERN)} then try_cast({column} as timestamp) end"


def timestamp(value: datetime) -> str:
    """A Spark timestamp literal."""
    return f"timestamp {literal(value.isoformat(sep=' '))}"


@dataclass(frozen=True)
class SailRaw:
    """Planning's reads of the raw Delta tables on Sail (see due.Raw): the queries of due.PostgresRaw, in Spark SQL.

    Rows a crashed load left (see remove_unrecorded_rows) can be read here until the next load of their table
    removes them: at worst they make a window due that did not need to be, never one missed.
    """

    spark: SparkSession

    def placements(
        self, entity: str, first_raw_id: int, last_raw_id: int, calendar_start: datetime, upper: datetime
    ) -> list[due.Placement]:
        purchased = purchase_time("orders.order_purchase_timestamp")
        plausible = f"{purchased} >= {timestamp(calendar_start)} and {purchased} < {timestamp(upper)}"
        key = "customer_id" if entity == "customers" else "order_id"
        file_rows = f"select {key} from {quoted('raw', entity)} where _raw_id between {first_raw_id} and {last_raw_id}"
        touched = (
            "select distinct orders.order_id from raw.orders as orders"
            " join file_rows on file_rows.customer_id = orders.customer_id"
            if entity == "customers"
            else "select distinct order_id from file_rows"
        )
        rows = self.spark.sql(
            f"""
            with file_rows as ({file_rows}),
            touched as ({touched}),
            purchases as (
                select {purchased} as purchased_at
                from raw.orders as orders
                where orders.order_id in (select order_id from touched) and {plausible}
            ),
            placed as (
                select cast(purchased_at as date) as purchase_day, min(purchased_at) as first_purchased_at,
                    max(purchased_at) as last_purchased_at
                from purchases
                group by cast(purchased_at as date)
            ),
            unplaced as (
                select count(*) as row_count
                from file_rows
                left anti join (select {key} from raw.orders as orders where {plausible}) as plausible_orders
                    on plausible_orders.{key} = file_rows.{key}
            )
            select purchase_day, first_purchased_at, last_purchased_at from placed
            union all
            select cast(null as date), cast(null as timestamp), cast(null as timestamp)
            from unplaced where row_count > 0
            """
        ).collect()
        return [(row[0], row[1], row[2]) for row in rows]

    def purchase_range(self, start: datetime, end: datetime) -> tuple[datetime | None, datetime | None]:
        purchased = purchase_time("order_purchase_timestamp")
        row = self.spark.sql(
            f"select min(purchased_at), max(purchased_at) from (select {purchased} as purchased_at from raw.orders)"
            f" where purchased_at >= {timestamp(start)} and purchased_at < {timestamp(end)}"
        ).first()
        return (row[0], row[1]) if row else (None, None)


def window_row_counts(
    spark: SparkSession, windows: Sequence[tuple[datetime, datetime]], tables: dict[str, tuple[str, str, str]]
) -> list[dict[str, int]]:
    """Rows per layer of each window on Sail (pipeline.window_row_counts' figures), in one query: raw orders
    loaded for it, then what staging and core hold of it. ``tables``: each count's schema, table and window
    column."""
    counted = [("loaded_orders", "raw", "orders", purchase_time("order_purchase_timestamp"))] + [
        (name, schema, table, quoted(column)) for name, (schema, table, column) in tables.items()
    ]
    parts = [
        f"select {literal(name)} as counted, {index} as window_index, count(*) as row_count"
        f" from {quoted(schema, table)} where {column} >= {timestamp(start)} and {column} < {timestamp(end)}"
        for name, schema, table, column in counted
        for index, (start, end) in enumerate(windows)
    ]
    counts: list[dict[str, int]] = [{} for _ in windows]
    for row in spark.sql(" union all ".join(parts)).collect():
        counts[row["window_index"]][row["counted"]] = row["row_count"]
    return counts
