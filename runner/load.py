"""Extract/Load: stream the Olist CSV files into ``raw.*`` with PostgreSQL COPY, one transaction per file.

The files are sent to COPY byte for byte (never read whole into memory): PostgreSQL's CSV parser already takes
what real exports contain (a byte-order mark in the skipped header, CRLF line endings, quoted fields spanning
lines, a last row without a newline). What the runner adds is what COPY cannot know: whether the header has the
expected columns (a new column is added to the raw table and recorded as a schema event; a missing or renamed
one stops the file), whether these bytes were loaded before, which batch a row came from, and where a bad row
sits in the file as a person would count lines.

A file is its author's, not the operator's: it is opened once (header, hash and rows come from that one handle,
and a symbolic link is refused), its header is read within bounds, a column it adds must have a plain name, and
whatever of it is quoted in a message, a log or the ledger is made printable and short first.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import stat
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter

from runner import database, faults, ledger, lineage, metrics
from runner.errors import DataError, SchemaMismatchError, UnreadableFile, UsageError, VersionConflict
from runner.observability import log, stage
from runner.olist import BY_FILE_NAME, SOURCE_FILES, SourceFile
from runner.settings import Settings

CHUNK_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"
COPY_CONTEXT = re.compile(r"line (?P<line>\d+)(?:, column (?P<column>[^:]+))?")

# A first line longer than this is no header: a file without line breaks is refused, not read whole.
MAX_HEADER_BYTES = 1 << 20
# PostgreSQL's limit on a table's columns: a header with more could never load.
MAX_HEADER_COLUMNS = 1600
# Columns one file may add to its raw table. Drift is a column or two; added columns are never dropped, and
# 1,600 is PostgreSQL's limit for good (a dropped column still counts), so a file may not spend many of them.
MAX_NEW_COLUMNS = 20
# What a message, a log line or the ledger quotes of a file: so much of one name, so many names, so much in all.
QUOTED_CHARACTERS = 64
QUOTED_NAMES = 10
MESSAGE_CHARACTERS = 2000

# SQLSTATE classes of a refused new column that are the file's doing, not the server's or the network's: a data
# exception (22), a syntax error or access rule violation (42: a duplicate column), a program limit (54: 1,600).
REFUSED_DEFINITION = frozenset({"22", "42", "54"})
# The SQLSTATE class of a program limit exceeded: a record past COPY's 1 GB, a value too big for an index.
PROGRAM_LIMIT = "54"

# A column the loader adds: lower-case, written unquoted in SQL and dbt, and kept whole by PostgreSQL (which
# truncates names past 63 bytes, so the next file with the same header would try to add it again).
COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# The system columns every table has (oid was one until PostgreSQL 12).
SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "oid"})
# The names the base models (models/staging/olist/base) give columns of their own next to a raw row's. The
# models select raw's columns by name, so a raw column can not collide with them there; refused all the same,
# so that raw_values, a quarantine reader and any later model see one meaning per name. tests/runner/test_load.py
# checks that this list holds every such name the models and their macros use.
MODEL_COLUMNS = frozenset(
    {
        "batch_id",
        "disposition",
        "has_any_order",
        "has_clean_order",
        "is_judged",
        "is_latest_of_key",
        "is_superseded",
        "key_rank",
        "latest_batch_id",
        "latest_batch_id_of_file",
        "line_breaks",
        "line_breaks_before",
        "loaded_at",
        "order_disposition",
        "order_purchased_at",
        "order_quarantine_rule",
        "quarantine_reason",
        "quarantine_rule",
        "raw_id",
        "raw_values",
        "source_file",
        "source_line",
    }
)


def printable(text: str, limit: int = QUOTED_CHARACTERS) -> str:
    """``text`` from a file, made safe to quote in a message, a log line or the ledger: escaped and short.

    A NUL can not be stored in PostgreSQL text (recording the error would fail with a traceback), a line break
    or terminal escape would forge lines in a log or on a terminal, and a megabyte of header would drown them:
    every character that is not printable is written as its escape, and at most ``limit`` characters are kept.
    """
    pieces: list[str] = []
    length = 0
    for character in text:
        piece = character if character.isprintable() else character.encode("unicode_escape").decode("ascii")
        if length + len(piece) > limit:
            return "".join(pieces) + "..."
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)


def listed(names: Sequence[str]) -> str:
    """Names from a file for a message: each printable, the first QUOTED_NAMES of them, then how many more."""
    shown = ", ".join(printable(name) for name in names[:QUOTED_NAMES])
    return shown + (f" and {len(names) - QUOTED_NAMES} more" if len(names) > QUOTED_NAMES else "")


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


def open_source(path: Path) -> BinaryIO:
    """Open a file of the folder to load, refusing anything but a regular file.

    A symbolic link would load (and quote in errors) whatever it points at, ``/etc/passwd`` as well as an
    export: ``O_NOFOLLOW`` refuses one at the open itself, so none can be swapped in after a check. ``O_NONBLOCK``
    keeps a FIFO put in a file's place from hanging the open; the check after it refuses one.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnreadableFile(
                f"{path.name}: is a symbolic link; the loader reads only regular files (copy the file in)"
            ) from error
        raise UnreadableFile(f"{path.name}: can not be opened ({error.strerror})") from error
    stream = os.fdopen(descriptor, "rb")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        stream.close()
        raise UnreadableFile(f"{path.name}: not a regular file")
    return stream


def read_header(stream: BinaryIO, file_name: str) -> list[str]:
    """The header fields of the file's first line, without a byte-order mark or line ending.

    At most MAX_HEADER_BYTES are read, so a file without line breaks is refused rather than read whole. A file
    whose lines end in a carriage return alone is refused too: COPY would take it, but the runner counts lines
    by their line feeds (to name the line of a bad row), and CSV forbids a carriage return inside a name.
    """
    first_line = stream.readline(MAX_HEADER_BYTES + 1)
    if not first_line.strip():
        raise SchemaMismatchError(f"{file_name}: the file is empty; expected a header line")
    if len(first_line) > MAX_HEADER_BYTES and not first_line.endswith(b"\n"):
        raise SchemaMismatchError(
            f"{file_name}, line 1: no line break in the first {MAX_HEADER_BYTES >> 20} MiB; expected a header line"
        )
    content = first_line.removeprefix(BOM).removesuffix(b"\n").removesuffix(b"\r")
    if b"\r" in content:
        raise SchemaMismatchError(
            f"{file_name}, line 1: a carriage return inside the header (lines ending in CR alone?);"
            " save the file with LF or CRLF line ends"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{file_name}, line 1: the header is not UTF-8 ({error.reason})") from error
    try:
        header = next(csv.reader([text]))
    except csv.Error as error:
        raise SchemaMismatchError(f"{file_name}, line 1: the header can not be read as CSV ({error})") from error
    if len(header) > MAX_HEADER_COLUMNS:
        raise SchemaMismatchError(
            f"{file_name}, line 1: the header has {len(header):,} columns; a table holds at most {MAX_HEADER_COLUMNS:,}"
        )
    return header


def reserved_words(connection: psycopg.Connection) -> frozenset[str]:
    """The server's keywords that can not name a column unquoted: reserved, or reserved but for functions and types.

    Quoted, PostgreSQL would take them, but every model and every analyst's query would have to quote them too.
    """
    rows = connection.execute("select word from pg_get_keywords() where catcode in ('R', 'T')")
    return frozenset(row[0] for row in rows)


def unaddable(column: str, reserved: frozenset[str]) -> str | None:
    """Why the loader will not add ``column`` to a raw table, or None when it will."""
    if not COLUMN_NAME.fullmatch(column):
        return "not a lower-case name: a letter, then letters, digits or _, at most 63 in all"
    if column in SYSTEM_COLUMNS:
        return "a system column of every table"
    if column in reserved:
        return "a reserved word of SQL"
    if column in MODEL_COLUMNS:
        return "a name the models give a column of their own"
    return None


@dataclass(frozen=True)
class FileLayout:
    """A file's header as accepted: its columns in file order, and those the Olist layout does not have."""

    columns: tuple[str, ...]
    added: tuple[str, ...]


def check_header(header: list[str], file_name: str, source: SourceFile, reserved: frozenset[str]) -> FileLayout:
    """Accept the header when it has every expected column; stop the file, naming the columns, when not.

    Columns are matched by name, so an export that reorders them loads. A column the layout does not have is
    drift the warehouse can absorb (its raw table gains a text column) when its name is one the loader may add
    (``unaddable``); a missing one, or a renamed one (seen as missing plus unexpected), would silently empty a
    column downstream, so the file stops. The checks use sets: a wide header costs linear time, not quadratic.
    """
    expected = set(source.columns)
    present = set(header)
    missing = [column for column in source.columns if column not in present]
    unexpected = [column for column in header if column not in expected]
    if missing:
        details = f"missing columns: {listed(missing)}"
        if unexpected:
            details += f"; unexpected columns: {listed(unexpected)} (renamed?)"
        raise SchemaMismatchError(f"{file_name}: header does not match the Olist layout; {details}")
    repeated = sorted(column for column, count in Counter(header).items() if count > 1)
    if repeated:
        raise SchemaMismatchError(f"{file_name}: header repeats columns: {listed(repeated)}")
    refused = [(column, reason) for column in unexpected if (reason := unaddable(column, reserved))]
    if refused:
        names = ", ".join(f"'{printable(column)}' ({reason})" for column, reason in refused[:QUOTED_NAMES])
        if len(refused) > QUOTED_NAMES:
            names += f" and {len(refused) - QUOTED_NAMES} more"
        raise SchemaMismatchError(f"{file_name}: header has columns the loader can not add: {names}")
    return FileLayout(tuple(header), tuple(unexpected))


def add_raw_columns(
    connection: psycopg.Connection, source: SourceFile, layout: FileLayout, batch_id: uuid.UUID, file_name: str
) -> list[str]:
    """Give the raw table a text column for each new column of the file; record and return those added.

    A refusal by PostgreSQL (its 1,600-column limit, say) is the file's error, naming file and column: the
    transaction ends, so nothing of the file is loaded and no column is added.
    """
    existing = {
        row[0]
        for row in connection.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
            (source.entity,),
        )
    }
    added = [column for column in layout.added if column not in existing]
    if len(added) > MAX_NEW_COLUMNS:
        raise SchemaMismatchError(
            f"{file_name}: header has {len(added)} columns raw.{source.entity} does not have, more than the"
            f" {MAX_NEW_COLUMNS} one file may add: {listed(added)}"
        )
    for column in added:
        try:
            connection.execute(
                sql.SQL("alter table raw.{table} add column {column} text").format(
                    table=sql.Identifier(source.entity), column=sql.Identifier(column)
                )
            )
        except psycopg.DatabaseError as error:
            if error.sqlstate is None or error.sqlstate[:2] not in REFUSED_DEFINITION:
                raise
            reason = error.diag.message_primary or str(error).splitlines()[0]
            raise SchemaMismatchError(
                f"{file_name}: column {column} can not be added to raw.{source.entity}"
                f" ({printable(reason, MESSAGE_CHARACTERS)}); nothing of this file was loaded"
            ) from error
        connection.execute(
            "insert into metadata.schema_events (batch_id, file_name, table_name, column_name, event)"
            " values (%s, %s, %s, %s, 'column_added')",
            (batch_id, file_name, f"raw.{source.entity}", column),
        )
        log.warning("schema event", change="column_added", table=f"raw.{source.entity}", column=column, file=file_name)
    return added


def content_sha256(stream: BinaryIO) -> str:
    """The SHA-256 of the whole file, read from its start."""
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def record_line(stream: BinaryIO, copy_line: int) -> int:
    """The line a person looks at for the line COPY stopped at: the first line of the record it was reading.

    COPY names the physical line it had reached (it counts the line breaks inside quoted fields): the last line
    of a record over several lines, and the end of the file for a quote never closed, whose record starts on the
    quote's line. The scan splits records as COPY does: each quote character turns quoting on or off, and a line
    break inside quotes belongs to the field. COPY counts such a break only when it is the file's own line end
    (CRLF when the header ends in CRLF), and so does the scan, to find COPY's line among the file's.
    """
    stream.seek(0)
    line = counted = record_start = 1
    quoted = False
    crlf: bool | None = None
    quotes = 0
    ends_in_cr = False
    while chunk := stream.read(CHUNK_BYTES):
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            quotes += piece.count(b'"')
            ends_in_cr = piece.endswith(b"\r") if piece else ends_in_cr
            quoted ^= quotes % 2 == 1
            if crlf is None:
                crlf = ends_in_cr
            next_counted = counted + (1 if not quoted or not crlf or ends_in_cr else 0)
            if next_counted > copy_line:
                return record_start
            line, counted, quotes, ends_in_cr = line + 1, next_counted, 0, False
            if not quoted:
                record_start = line
        # The last piece is a line the next chunk goes on with.
        quotes += pieces[-1].count(b'"')
        ends_in_cr = pieces[-1].endswith(b"\r") if pieces[-1] else ends_in_cr
    return record_start


def describe_copy_error(stream: BinaryIO, file_name: str, error: psycopg.Error) -> str:
    """One line naming file, line and column of a row COPY refused."""
    reason = printable(error.diag.message_primary or str(error).splitlines()[0], MESSAGE_CHARACTERS)
    match = COPY_CONTEXT.search(error.diag.context or "")
    if not match:
        return f"{file_name}: {reason}"
    location = f"line {record_line(stream, int(match['line']))}"
    if match["column"]:
        location += f", column {match['column']}"
    return f"{file_name}, {location}: {reason}"


@dataclass(frozen=True)
class CopiedRows:
    """The rows one COPY wrote: how many, and the raw id of the first (None when the file had none); its bytes."""

    row_count: int
    first_raw_id: int | None
    byte_count: int


def copy_file(
    connection: psycopg.Connection,
    stream: BinaryIO,
    file_name: str,
    source: SourceFile,
    batch_id: uuid.UUID,
    columns: tuple[str, ...],
    expected_sha256: str,
    into: sql.Identifier | None = None,
) -> CopiedRows:
    """COPY one file, whose header holds ``columns``, from the start of ``stream`` in the caller's transaction,
    into its raw table or into ``into``, a table made like it (the landing table of a load onto Sail).

    The table is locked against other loaders (readers go on) until the transaction ends, so the file's rows get
    consecutive raw ids: the dbt project computes a row's line in its file from its raw id and the first one's.
    The bytes are hashed on their way to COPY and must be those whose header and hash the caller took: a file
    rewritten in place since then stops here, before its rows commit under another content's column order and
    hash.
    """
    raw_table = sql.Identifier("raw", source.entity)
    table = into or raw_table
    connection.execute(sql.SQL("lock table {} in share row exclusive mode").format(raw_table))
    connection.execute(
        "select set_config('olist_dw.batch_id', %s, true), set_config('olist_dw.source_file', %s, true)",
        (str(batch_id), file_name),
    )
    statement = sql.SQL("copy {table} ({columns}) from stdin with (format csv, header true, encoding 'UTF8')")
    statement = statement.format(
        table=table,
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in columns),
    )
    digest = hashlib.sha256()
    byte_count = 0
    stream.seek(0)
    with connection.cursor() as cursor:
        # psycopg's default writer queues up to 1,024 chunks for a background thread, so a reader faster than the
        # server would hold up to a GiB of the file in memory; the direct writer sends each chunk before the next
        # is read, so memory stays at one chunk whatever the file's size.
        with cursor.copy(statement, writer=LibpqWriter(cursor)) as copy:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
                byte_count += len(chunk)
                copy.write(chunk)
                faults.checkpoint("load.copy")
            if digest.hexdigest() != expected_sha256:
                raise VersionConflict(
                    f"{file_name}: the file changed while it was being loaded; nothing of it was loaded"
                    " (load it again once it is complete)"
                )
        row_count = cursor.rowcount
    if not row_count:
        return CopiedRows(0, None, byte_count)
    last_raw_id = connection.execute(
        "select currval(pg_get_serial_sequence(%s, '_raw_id'))", (table.as_string(connection),)
    ).fetchone()[0]
    return CopiedRows(row_count, last_raw_id - row_count + 1, byte_count)


# What writes a checked file's rows, inside the file's transaction (``copy_file``'s arguments and result):
# ``copy_file`` itself into PostgreSQL's raw, or runner/delta.py's writer into a Delta table on Sail.
RowWriter = Callable[[psycopg.Connection, BinaryIO, str, SourceFile, uuid.UUID, tuple[str, ...], str], CopiedRows]


def load_file(
    connection: psycopg.Connection,
    path: Path,
    batch_id: uuid.UUID,
    reserved: frozenset[str],
    write_rows: RowWriter = copy_file,
) -> FileResult:
    """Load one known file in one transaction: all of its rows, or none and a clear error.

    Header, hash and rows are all read from one open file, so a file replaced after its header was checked
    still loads as checked; one rewritten in place is caught by ``copy_file``. The ledger's record of the file
    commits with the transaction, so whatever ``write_rows`` wrote elsewhere is the file's only once it does.
    """
    source = BY_FILE_NAME[path.name]
    with open_source(path) as stream:
        layout = check_header(read_header(stream, path.name), path.name, source, reserved)
        digest = content_sha256(stream)
        try:
            with connection.transaction():
                # Two loaders given the same bytes at once: the second waits here, then sees them loaded.
                connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"olist_dw.load.{digest}",))
                earlier_batch = ledger.loaded_file_batch(connection, digest)
                if earlier_batch is not None:
                    return FileResult(path.name, source.entity, False, 0, earlier_batch)
                add_raw_columns(connection, source, layout, batch_id, path.name)
                copied = write_rows(connection, stream, path.name, source, batch_id, layout.columns, digest)
                ledger.record_file(
                    connection,
                    batch_id=batch_id,
                    file_name=path.name,
                    entity=source.entity,
                    content_sha256=digest,
                    byte_count=copied.byte_count,
                    row_count=copied.row_count,
                    first_raw_id=copied.first_raw_id,
                )
        except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as error:
            raise DataError(
                describe_copy_error(stream, path.name, error) + "; nothing of this file was loaded"
            ) from error
        except psycopg.OperationalError as error:
            # A record over COPY's 1 GB line buffer (a quote never closed), a value too big for an index: the
            # file's fault, not a lost database, and no retry will get it through.
            if error.sqlstate is None or not error.sqlstate.startswith(PROGRAM_LIMIT):
                raise
            raise UnreadableFile(
                describe_copy_error(stream, path.name, error)
                + "; beyond PostgreSQL's limits for one record; nothing of this file was loaded"
            ) from error
    return FileResult(path.name, source.entity, True, copied.row_count, batch_id)


def load_directory(
    connection: psycopg.Connection,
    source_dir: Path,
    on_file: Callable[[FileResult], None] | None = None,
    write_rows: RowWriter = copy_file,
) -> LoadReport:
    """Load every known Olist file of a folder as one batch; unknown files are reported and left alone.

    Files commit one by one. When one fails, the files before it stay loaded (and are skipped as already
    loaded when the folder is loaded again), the batch is marked failed, and the error names the file.
    A symbolic link with a known file's name is that file's error (see ``open_source``), not an absent file.
    """
    if not source_dir.is_dir():
        raise UsageError(f"source folder not found: {source_dir}")
    present = {path.name: path for path in sorted(source_dir.iterdir()) if path.is_file() or path.is_symlink()}
    reserved = reserved_words(connection)
    report = LoadReport(batch_id=ledger.start_batch(connection, str(source_dir.resolve())))
    report.unknown_files = [name for name in present if name not in BY_FILE_NAME]
    report.absent_files = [source.file_name for source in SOURCE_FILES if source.file_name not in present]
    try:
        for source in SOURCE_FILES:
            if source.file_name in present:
                result = load_file(connection, present[source.file_name], report.batch_id, reserved, write_rows)
                report.files.append(result)
                if on_file:
                    on_file(result)
    except Exception as error:
        ledger.finish_batch(connection, report.batch_id, error=printable(str(error), MESSAGE_CHARACTERS))
        raise
    ledger.finish_batch(connection, report.batch_id)
    return report


def load_source(
    settings: Settings,
    dsn: str,
    source_dir: Path,
    on_file: Callable[[FileResult], None] | None = None,
    write_rows: RowWriter = copy_file,
) -> LoadReport:
    """``runner load``: load a folder (see load_directory) as the stage ``load``, each loaded file counted in the
    metrics and sent as lineage (the file feeding its raw table); ``on_file`` hears of each file first."""

    def loaded(result: FileResult) -> None:
        if on_file:
            on_file(result)
        if result.loaded:
            metrics.rows_loaded.labels(f"raw.{result.entity}").inc(result.row_count)
            lineage.emit_file_loaded(
                settings, dsn, source_dir / result.file_name, f"raw.{result.entity}", result.row_count
            )

    with database.connect(dsn) as connection, stage("load", source=str(source_dir)) as fields:
        report = load_directory(connection, source_dir, on_file=loaded, write_rows=write_rows)
        fields.update(batch_id=str(report.batch_id), rows=report.rows_loaded)
    return report
