"""Extract/Load: stream the Olist CSV files into ``raw.*`` with PostgreSQL COPY, one transaction per file.

The files are sent to COPY byte for byte (never read whole into memory): PostgreSQL's CSV parser already takes
what real exports contain (a byte-order mark in the skipped header, CRLF line endings, quoted fields spanning
lines, a last row without a newline). What the runner adds is what COPY cannot know: whether the header has the
expected columns (a new column is added to the raw table and recorded as a schema event; a missing or renamed
one stops the file), whether these bytes were loaded before, which batch a row came from, and where a bad row
sits in the file as a person would count lines.
"""

from __future__ import annotations

import csv
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter

from runner import faults, ledger
from runner.errors import DataError, SchemaMismatchError, UsageError
from runner.observability import log
from runner.olist import BY_FILE_NAME, SOURCE_FILES, SourceFile

CHUNK_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"
COPY_CONTEXT = re.compile(r"line (?P<record>\d+)(?:, column (?P<column>[^:]+))?")


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: loaded (with its row count) or skipped as already loaded."""

    file_name: str
    entity: str
    loaded: bool
    row_count: int
    batch_id: uuid.UUID


@dataclass
class LoadReport:
    """One ``runner load``: its batch, each known file's result, and the files it left alone."""

    batch_id: uuid.UUID
    files: list[FileResult] = field(default_factory=list)
    unknown_files: list[str] = field(default_factory=list)
    absent_files: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(result.row_count for result in self.files if result.loaded)


def raw_table_ddl(source: SourceFile) -> sql.Composed:
    """``raw.<entity>``: the file's columns as text, plus the batch, file, load time and load order of each row.

    The batch and file come from transaction-local settings that the loader sets before COPY, so a row can not
    reach ``raw`` without saying where it came from, and COPY needs no second pass to tag rows.
    """
    data_columns = sql.SQL(",\n    ").join(
        sql.SQL("{} text").format(sql.Identifier(column)) for column in source.columns
    )
    return sql.SQL(
        """create table if not exists raw.{table} (
    {data_columns},
    _batch_id uuid not null default cast(current_setting('olist_dw.batch_id') as uuid),
    _source_file text not null default current_setting('olist_dw.source_file'),
    _loaded_at timestamptz not null default now(),
    _raw_id bigint generated always as identity
)"""
    ).format(table=sql.Identifier(source.entity), data_columns=data_columns)


# The indexes through which a window's run reads only the raw rows it judges (the dbt models base_olist__*): an
# order's rows, its children's and its customer's by key, the orders placed in the window by purchase time, and
# the line breaks before a review, which its line number needs. Each one's use is checked by
# tests/runner/test_window_scope.py.
RAW_INDEXES: dict[str, dict[str, str]] = {
    "orders": {
        "orders_order_id_idx": "(order_id)",
        "orders_customer_id_idx": "(customer_id)",
        "orders_purchase_time_idx": "(metadata.purchase_time(order_purchase_timestamp))",
    },
    "order_items": {"order_items_order_id_idx": "(order_id)"},
    "order_payments": {"order_payments_order_id_idx": "(order_id)"},
    "order_reviews": {
        "order_reviews_order_id_idx": "(order_id)",
        "order_reviews_line_breaks_idx": "(_batch_id, _source_file, _raw_id)"
        " where strpos(review_comment_title, chr(10)) > 0 or strpos(review_comment_message, chr(10)) > 0",
    },
    "customers": {"customers_customer_id_idx": "(customer_id)"},
}


# The runner's own read of raw: one file's rows by raw id, to work out which windows they land in (runner/due.py).
# A file's rows have consecutive ids and raw only grows, so a BRIN index finds them at almost no cost to COPY.
RAW_ID_INDEX = "{entity}_raw_id_idx"


def ensure_raw_tables(connection: psycopg.Connection) -> None:
    """Create the raw tables and indexes that do not exist yet (dbt's sources point at them before any load)."""
    with connection.transaction():
        connection.execute("create schema if not exists raw")
        for source in SOURCE_FILES:
            connection.execute(raw_table_ddl(source))
            for name, definition in RAW_INDEXES.get(source.entity, {}).items():
                connection.execute(
                    sql.SQL("create index if not exists {name} on raw.{table} {definition}").format(
                        name=sql.Identifier(name), table=sql.Identifier(source.entity), definition=sql.SQL(definition)
                    )
                )
            connection.execute(
                sql.SQL("create index if not exists {name} on raw.{table} using brin (_raw_id)").format(
                    name=sql.Identifier(RAW_ID_INDEX.format(entity=source.entity)), table=sql.Identifier(source.entity)
                )
            )


def read_header(path: Path) -> list[str]:
    """The file's header fields, without a byte-order mark or line ending."""
    with path.open("rb") as stream:
        first_line = stream.readline()
    if not first_line.strip():
        raise SchemaMismatchError(f"{path.name}: the file is empty; expected a header line")
    try:
        text = first_line.removeprefix(BOM).decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise DataError(f"{path.name}, line 1: the header is not UTF-8 ({error.reason})") from error
    return next(csv.reader([text]))


@dataclass(frozen=True)
class FileLayout:
    """A file's header as accepted: its columns in file order, and those the Olist layout does not have."""

    columns: tuple[str, ...]
    added: tuple[str, ...]


def check_header(path: Path, source: SourceFile) -> FileLayout:
    """Accept the header when it has every expected column; stop the file, naming the columns, when not.

    Columns are matched by name, so an export that reorders them loads. A column the layout does not have is
    drift the warehouse can absorb (its raw table gains a text column); a missing one, or a renamed one (seen as
    missing plus unexpected), would silently empty a column downstream, so the file stops.
    """
    header = read_header(path)
    missing = [column for column in source.columns if column not in header]
    unexpected = [column for column in header if column not in source.columns]
    if missing:
        details = f"missing columns: {', '.join(missing)}"
        if unexpected:
            details += f"; unexpected columns: {', '.join(unexpected)} (renamed?)"
        raise SchemaMismatchError(f"{path.name}: header does not match the Olist layout; {details}")
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise SchemaMismatchError(f"{path.name}: header repeats columns: {', '.join(repeated)}")
    reserved = [column for column in unexpected if not column.strip() or column.startswith("_")]
    if reserved:
        names = ", ".join(repr(column) for column in reserved)
        raise SchemaMismatchError(
            f"{path.name}: header has columns the loader can not add: {names} (empty, or starting with _ like its own)"
        )
    return FileLayout(tuple(header), tuple(unexpected))


def add_raw_columns(
    connection: psycopg.Connection, source: SourceFile, layout: FileLayout, batch_id: uuid.UUID, file_name: str
) -> list[str]:
    """Give the raw table a text column for each new column of the file; record and return those added."""
    existing = {
        row[0]
        for row in connection.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
            (source.entity,),
        )
    }
    added = [column for column in layout.added if column not in existing]
    for column in added:
        connection.execute(
            sql.SQL("alter table raw.{table} add column {column} text").format(
                table=sql.Identifier(source.entity), column=sql.Identifier(column)
            )
        )
        connection.execute(
            "insert into metadata.schema_events (batch_id, file_name, table_name, column_name, event)"
            " values (%s, %s, %s, %s, 'column_added')",
            (batch_id, file_name, f"raw.{source.entity}", column),
        )
        log.warning("schema event", change="column_added", table=f"raw.{source.entity}", column=column, file=file_name)
    return added


def content_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def physical_line(path: Path, record_number: int) -> int:
    """The line a person sees for COPY's record number (1 = header): records may span lines in quoted fields."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream)
            end_of_previous = 0
            for index, _ in enumerate(reader, start=1):
                if index == record_number:
                    return end_of_previous + 1
                end_of_previous = reader.line_num
    except (UnicodeDecodeError, csv.Error):
        pass
    return record_number


def describe_copy_error(path: Path, error: psycopg.Error) -> str:
    """One line naming file, line and column of a row COPY refused."""
    reason = error.diag.message_primary or str(error).splitlines()[0]
    match = COPY_CONTEXT.search(error.diag.context or "")
    if not match:
        return f"{path.name}: {reason}"
    location = f"line {physical_line(path, int(match['record']))}"
    if match["column"]:
        location += f", column {match['column']}"
    return f"{path.name}, {location}: {reason}"


@dataclass(frozen=True)
class CopiedRows:
    """The rows one COPY wrote: how many, and the raw id of the first (None when the file had none)."""

    row_count: int
    first_raw_id: int | None


def copy_file(
    connection: psycopg.Connection, path: Path, source: SourceFile, batch_id: uuid.UUID, columns: tuple[str, ...]
) -> CopiedRows:
    """COPY one file, whose header holds ``columns``, into its raw table in the caller's transaction.

    The table is locked against other loaders (readers go on) until the transaction ends, so the file's rows get
    consecutive raw ids: the dbt project computes a row's line in its file from its raw id and the first one's.
    """
    table = sql.Identifier(source.entity)
    connection.execute(sql.SQL("lock table raw.{} in share row exclusive mode").format(table))
    connection.execute(
        "select set_config('olist_dw.batch_id', %s, true), set_config('olist_dw.source_file', %s, true)",
        (str(batch_id), path.name),
    )
    statement = sql.SQL("copy raw.{table} ({columns}) from stdin with (format csv, header true, encoding 'UTF8')")
    statement = statement.format(
        table=table,
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in columns),
    )
    with connection.cursor() as cursor:
        # psycopg's default writer queues up to 1,024 chunks for a background thread, so a reader faster than the
        # server would hold up to a GiB of the file in memory; the direct writer sends each chunk before the next
        # is read, so memory stays at one chunk whatever the file's size.
        with cursor.copy(statement, writer=LibpqWriter(cursor)) as copy, path.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                copy.write(chunk)
                faults.checkpoint("load.copy")
        row_count = cursor.rowcount
    if not row_count:
        return CopiedRows(0, None)
    last_raw_id = connection.execute(
        "select currval(pg_get_serial_sequence(%s, '_raw_id'))", (f"raw.{source.entity}",)
    ).fetchone()[0]
    return CopiedRows(row_count, last_raw_id - row_count + 1)


def load_file(connection: psycopg.Connection, path: Path, batch_id: uuid.UUID) -> FileResult:
    """Load one known file in one transaction: all of its rows, or none and a clear error."""
    source = BY_FILE_NAME[path.name]
    layout = check_header(path, source)
    digest = content_sha256(path)
    try:
        with connection.transaction():
            # Two loaders given the same bytes at once: the second waits here, then sees them loaded.
            connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"olist_dw.load.{digest}",))
            earlier_batch = ledger.loaded_file_batch(connection, digest)
            if earlier_batch is not None:
                return FileResult(path.name, source.entity, False, 0, earlier_batch)
            add_raw_columns(connection, source, layout, batch_id, path.name)
            copied = copy_file(connection, path, source, batch_id, layout.columns)
            ledger.record_file(
                connection,
                batch_id=batch_id,
                file_name=path.name,
                entity=source.entity,
                content_sha256=digest,
                byte_count=path.stat().st_size,
                row_count=copied.row_count,
                first_raw_id=copied.first_raw_id,
            )
    except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as error:
        raise DataError(describe_copy_error(path, error) + "; nothing of this file was loaded") from error
    return FileResult(path.name, source.entity, True, copied.row_count, batch_id)


def load_directory(
    connection: psycopg.Connection,
    source_dir: Path,
    on_file: Callable[[FileResult], None] | None = None,
) -> LoadReport:
    """Load every known Olist file of a folder as one batch; unknown files are reported and left alone.

    Files commit one by one. When one fails, the files before it stay loaded (and are skipped as already
    loaded when the folder is loaded again), the batch is marked failed, and the error names the file.
    """
    if not source_dir.is_dir():
        raise UsageError(f"source folder not found: {source_dir}")
    present = {path.name: path for path in sorted(source_dir.iterdir()) if path.is_file()}
    report = LoadReport(batch_id=ledger.start_batch(connection, str(source_dir.resolve())))
    report.unknown_files = [name for name in present if name not in BY_FILE_NAME]
    report.absent_files = [source.file_name for source in SOURCE_FILES if source.file_name not in present]
    try:
        for source in SOURCE_FILES:
            if source.file_name in present:
                result = load_file(connection, present[source.file_name], report.batch_id)
                report.files.append(result)
                if on_file:
                    on_file(result)
    except Exception as error:
        ledger.finish_batch(connection, report.batch_id, error=str(error))
        raise
    ledger.finish_batch(connection, report.batch_id)
    return report
