"""The data plane on Sail: the Olist files loaded into Delta tables, the control plane left in PostgreSQL.

A file loads onto Sail as it loads into PostgreSQL (runner/load.py): the same header checks and drift rules, the
same COPY parser and its errors naming file, line and column, the same ledger. The difference is where the rows
land. COPY fills a temporary landing table made like ``raw.<entity>``, which dies with the file's transaction;
its rows then go to the Delta table ``raw.<entity>`` on Sail in one commit, numbered on from the table's last raw
id; the ledger's record of the file commits last, in PostgreSQL.

A crash between the Delta commit and the ledger's leaves rows on Sail that the ledger does not know: the next load
of that table deletes them before it writes (``remove_unrecorded_rows``), and until then the models do not see them,
as the base models read raw through the ledger's mirror on Sail, ``metadata.loaded_files`` (``mirror_loaded_files``).

The PostgreSQL tables of raw stay empty on this path: they define the layout the landing tables copy, and a
column a file adds is added there first, as always, then to the Delta table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import psycopg
from psycopg import sql

from runner import database, faults, load, sail
from runner.errors import PipelineFailure, UsageError
from runner.olist import SOURCE_FILES, SourceFile
from runner.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# raw's own columns after a file's: PostgreSQL's uuid and timestamptz are Spark's string and timestamp.
RAW_AUDIT_COLUMNS = (
    ("_batch_id", "string"),
    ("_source_file", "string"),
    ("_loaded_at", "timestamp"),
    ("_raw_id", "bigint"),
)
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
    table = quoted("raw", source.entity)
    definition = _column_list([(column, "string") for column in columns] + list(RAW_AUDIT_COLUMNS))
    spark.sql(f"create table if not exists {table} ({definition}) using delta")
    present = {field.name for field in spark.table(table).schema.fields}
    added = [column for column in columns if column not in present]
    if added:
        spark.sql(f"alter table {table} add columns ({_column_list([(column, 'string') for column in added])})")
    return columns


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
) -> load.CopiedRows:
    """The row writer (``load.RowWriter``) of a load onto Sail: COPY into a landing table that dies with the
    transaction, then the rows to the Delta table in one commit, their raw ids following the table's last.

    ``copy_file`` locks PostgreSQL's ``raw.<entity>`` until the transaction ends, so two loaders of one table
    number their rows one after the other here too.
    """
    import pyarrow as pa

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
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "select {columns}, cast(_batch_id as text), _source_file, _raw_id - %s + %s"
                " from {landing} order by _raw_id"
            ).format(columns=sql.SQL(", ").join(sql.Identifier(column) for column in file_columns), landing=landing),
            (copied.first_raw_id, first_raw_id),
        )
        names = [*file_columns, "_batch_id", "_source_file", "_raw_id"]
        values = list(zip(*cursor.fetchall(), strict=True))
    arrow = pa.table(
        {
            name: pa.array(column, pa.int64() if name == "_raw_id" else pa.string())
            for name, column in zip(names, values, strict=True)
        }
    )
    spark.createDataFrame(arrow).createOrReplaceTempView(f"landing_{source.entity}")
    selected = ", ".join(quoted(name) for name in [*file_columns, "_batch_id", "_source_file"])
    spark.sql(
        f"insert into {table} ({selected}, `_loaded_at`, `_raw_id`)"
        f" select {selected}, current_timestamp(), `_raw_id` from landing_{source.entity}"
    )
    faults.checkpoint("load.delta")
    return load.CopiedRows(copied.row_count, first_raw_id, copied.byte_count)


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
    with session(settings) as spark:
        with database.connect(dsn) as connection:
            ensure_tables(spark, connection)
        try:
            return load.load_source(settings, dsn, source_dir, on_file, write_rows=partial(write_rows, spark))
        finally:
            with database.connect(dsn) as connection:
                mirror_loaded_files(spark, connection)
