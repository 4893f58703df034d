"""The COPY loader against a real PostgreSQL: what loads, what is refused, and that a refusal loads nothing."""

from __future__ import annotations

import csv
import hashlib
import random
import re
import shutil
import threading
import time
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
from conftest import warehouse_checksums
from psycopg import sql

from runner import generate, ledger, load, pipeline
from runner.errors import (
    EXIT_SCHEMA_MISMATCH,
    DataError,
    SchemaMismatchError,
    UnreadableFile,
    UsageError,
    VersionConflict,
)
from runner.olist import BY_ENTITY
from runner.settings import PROJECT_DIR

ORDERS = BY_ENTITY["orders"]
HEADER = ",".join(ORDERS.columns)
ROW_1 = "e481f51cbdc54678b7cc49136f2d6af7,9ef432eb6251297304e76186b10a928d,delivered," + (
    "2017-01-02 10:56:33,2017-01-02 11:07:15,2017-01-04 19:55:00,2017-01-10 21:25:13,2017-01-18 00:00:00"
)
ROW_2 = '"53cdb2fc8bc7dce0b6741e2150273451",b0830fb4747a6c6d20dea0b8c802d7ef,shipped,' + (
    "2017-01-24 20:41:37,2017-01-26 03:24:27,2017-01-26 14:31:00,,2017-02-13 00:00:00"
)


def write_orders(folder: Path, body: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ORDERS.file_name
    path.write_bytes(body)
    return path


def raw_order_ids(connection) -> list[str]:
    return [row[0] for row in connection.execute("select order_id from raw.orders order by _raw_id")]


def test_loads_rows_tagged_with_batch_file_and_time(connection, tmp_path):
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n{ROW_2}\n".encode())

    report = load.load_directory(connection, tmp_path / "in")

    assert [(result.file_name, result.loaded, result.row_count) for result in report.files] == [
        (ORDERS.file_name, True, 2)
    ]
    rows = connection.execute(
        "select order_id, order_delivered_customer_date, _batch_id, _source_file, _loaded_at is not null"
        " from raw.orders order by _raw_id"
    ).fetchall()
    assert rows == [
        ("e481f51cbdc54678b7cc49136f2d6af7", "2017-01-10 21:25:13", report.batch_id, ORDERS.file_name, True),
        ("53cdb2fc8bc7dce0b6741e2150273451", None, report.batch_id, ORDERS.file_name, True),
    ]
    status = connection.execute("select status from metadata.load_batches where batch_id = %s", (report.batch_id,))
    assert status.fetchone() == ("succeeded",)


def test_records_each_files_first_raw_id_and_the_migration_backfills_it(connection, tmp_path):
    """A file's rows get consecutive raw ids from the recorded first one; migration 0006 derives the same."""
    write_orders(tmp_path / "one", f"{HEADER}\n{ROW_1}\n".encode())
    write_orders(tmp_path / "two", f"{HEADER}\n{ROW_2}\n{ROW_1}\n".encode())
    load.load_directory(connection, tmp_path / "one")
    load.load_directory(connection, tmp_path / "two")
    recorded_query = "select batch_id, first_raw_id from metadata.loaded_files order by loaded_at"
    recorded = connection.execute(recorded_query).fetchall()
    assert (
        recorded
        == connection.execute(
            "select _batch_id, min(_raw_id) from raw.orders group by _batch_id order by min(_raw_id)"
        ).fetchall()
    )
    assert connection.execute(
        "select bool_and(_raw_id - first_raw_id = position - 1) from (select _raw_id, first_raw_id,"
        " row_number() over (partition by _batch_id order by _raw_id) as position from raw.orders"
        " join metadata.loaded_files on batch_id = _batch_id) as numbered"
    ).fetchone() == (True,)

    # A warehouse loaded before migration 0006 had no first_raw_id: the migration's backfill derives it.
    (migration,) = [migration for migration in ledger.migrations() if migration.version == 6]
    backfill = migration.sql[migration.sql.index("do $$") :]
    with connection.transaction():
        connection.execute("update metadata.loaded_files set first_raw_id = null")
        connection.execute(backfill.encode())
    assert connection.execute(recorded_query).fetchall() == recorded


def test_takes_the_forms_real_exports_have(connection, tmp_path):
    """Byte-order mark, CRLF endings, no final newline, a quoted field spanning lines: all load as they are."""
    multi_line = ROW_1.replace("delivered", '"deli\r\nvered"')
    body = "\ufeff" + "\r\n".join([HEADER, multi_line, ROW_2])
    write_orders(tmp_path / "in", body.encode())

    load.load_directory(connection, tmp_path / "in")

    statuses = [row[0] for row in connection.execute("select order_status from raw.orders order by _raw_id")]
    assert statuses == ["deli\r\nvered", "shipped"]


def test_same_content_is_loaded_once(connection, tmp_path):
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n".encode())
    first = load.load_directory(connection, tmp_path / "in")

    second = load.load_directory(connection, tmp_path / "in")

    assert second.files[0].loaded is False
    assert second.files[0].batch_id == first.batch_id
    assert raw_order_ids(connection) == ["e481f51cbdc54678b7cc49136f2d6af7"]


def test_changed_content_is_a_new_batch(connection, tmp_path):
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n".encode())
    first = load.load_directory(connection, tmp_path / "in")
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n{ROW_2}\n".encode())

    second = load.load_directory(connection, tmp_path / "in")

    assert second.files[0].loaded and second.batch_id != first.batch_id
    batches = connection.execute("select _batch_id, count(*) from raw.orders group by 1 order by 2").fetchall()
    assert batches == [(first.batch_id, 1), (second.batch_id, 2)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            HEADER.replace("order_status", "status"),
            r"missing columns: order_status; unexpected columns: status \(renamed\?\)",
        ),
        (HEADER.replace(",order_approved_at", ""), "missing columns: order_approved_at"),
        (
            HEADER.replace("customer_id,order_status", "order_state,customer_id"),
            "missing columns: order_status; unexpected columns: order_state",
        ),
        (HEADER + ",order_status", "header repeats columns: order_status"),
        (HEADER + ",_batch_id", "columns the loader can not add: '_batch_id'"),
        # A new column's name must be one SQL and dbt write unquoted, that PostgreSQL keeps whole, and that is
        # not PostgreSQL's own or the models'.
        (HEADER + ",Sales_Channel", r"'Sales_Channel' \(not a lower-case name"),
        (HEADER + ",sales-channel", r"'sales-channel' \(not a lower-case name"),
        (HEADER + ",sales channel", r"'sales channel' \(not a lower-case name"),
        (HEADER + ",c" + "x" * 63, r"'cx{63}' \(not a lower-case name: .* at most 63"),
        (HEADER + ",xmin", r"'xmin' \(a system column"),
        (HEADER + ",ctid", r"'ctid' \(a system column"),
        (HEADER + ",select", r"'select' \(a reserved word"),
        (HEADER + ",left", r"'left' \(a reserved word"),
        (HEADER + ",key_rank", r"'key_rank' \(a name the models give a column of their own\)"),
        (HEADER + ",raw_values,disposition", r"'raw_values' \(a name the models .*\), 'disposition' \(a name"),
    ],
)
def test_wrong_header_stops_the_file_and_names_the_columns(connection, tmp_path, header, expected):
    write_orders(tmp_path / "in", f"{header}\n{ROW_1}\n".encode())

    with pytest.raises(SchemaMismatchError, match=expected) as raised:
        load.load_directory(connection, tmp_path / "in")

    assert ORDERS.file_name in str(raised.value)
    assert raw_order_ids(connection) == []
    assert connection.execute("select count(*) from metadata.schema_events").fetchone() == (0,)


def test_reordered_columns_load_by_name(connection, tmp_path):
    swapped = HEADER.replace("customer_id,order_status", "order_status,customer_id")
    row = ROW_1.replace("9ef432eb6251297304e76186b10a928d,delivered", "delivered,9ef432eb6251297304e76186b10a928d")
    write_orders(tmp_path / "in", f"{swapped}\n{row}\n".encode())

    load.load_directory(connection, tmp_path / "in")

    assert connection.execute("select customer_id, order_status from raw.orders").fetchall() == [
        ("9ef432eb6251297304e76186b10a928d", "delivered")
    ]


def test_an_extra_column_is_added_to_the_raw_table_and_recorded(connection, tmp_path):
    write_orders(tmp_path / "in", f"{HEADER},sales_channel\n{ROW_1},app\n".encode())
    first = load.load_directory(connection, tmp_path / "in")
    write_orders(tmp_path / "in", f"{HEADER},sales_channel\n{ROW_2},web\n".encode())
    load.load_directory(connection, tmp_path / "in")
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n{ROW_2}\n".encode())
    load.load_directory(connection, tmp_path / "in")

    values = connection.execute("select sales_channel from raw.orders order by _raw_id").fetchall()
    assert values == [("app",), ("web",), (None,), (None,)]
    events = connection.execute(
        "select batch_id, file_name, table_name, column_name, event from metadata.schema_events"
    ).fetchall()
    assert events == [(first.batch_id, ORDERS.file_name, "raw.orders", "sales_channel", "column_added")]


def test_empty_file_is_refused(connection, tmp_path):
    write_orders(tmp_path / "in", b"")

    with pytest.raises(SchemaMismatchError, match=f"{ORDERS.file_name}: the file is empty"):
        load.load_directory(connection, tmp_path / "in")


def test_bad_row_names_file_line_and_column_and_loads_nothing(connection, tmp_path):
    # Line 2 is good, the record on lines 3-4 spans two lines, line 5 has one field too many.
    spanning = ROW_2.replace("shipped", '"ship\nped"')
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n{spanning}\n{ROW_1},surplus\n".encode())

    with pytest.raises(DataError) as raised:
        load.load_directory(connection, tmp_path / "in")

    message = str(raised.value)
    assert message.startswith(f"{ORDERS.file_name}, line 5")
    assert "extra data after last expected column" in message
    assert "nothing of this file was loaded" in message
    assert raw_order_ids(connection) == []
    failed = connection.execute("select status, error_message from metadata.load_batches").fetchone()
    assert failed[0] == "failed" and "line 5" in failed[1]


def test_invalid_utf8_names_the_line(connection, tmp_path):
    write_orders(
        tmp_path / "in", f"{HEADER}\n{ROW_1}\n".encode() + ROW_2.replace("shipped", "ship\xffped").encode("latin-1")
    )

    with pytest.raises(DataError, match=rf"{ORDERS.file_name}, line 3.*UTF8"):
        load.load_directory(connection, tmp_path / "in")


def test_unknown_files_are_reported_and_left_alone(connection, tmp_path):
    write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n".encode())
    (tmp_path / "in" / "notes.txt").write_text("not olist")

    report = load.load_directory(connection, tmp_path / "in")

    assert report.unknown_files == ["notes.txt"]
    assert "olist_customers_dataset.csv" in report.absent_files


def test_missing_folder_is_a_usage_error(connection, tmp_path):
    with pytest.raises(UsageError, match="source folder not found"):
        load.load_directory(connection, tmp_path / "nowhere")


def add_column(path: Path, name: str, value: str) -> None:
    """The file as a drifted export writes it: one more column at the end, filled on every row."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*rows[0], name])
        writer.writerows([*row, value] for row in rows[1:])


@pytest.mark.slow
def test_downstream_builds_the_same_with_an_extra_column(settings, connection, new_database, tmp_path):
    """Drift in a file changes nothing downstream: the warehouse equals one built from the files without it.

    Nor do columns added to raw by hand under the names the base models give columns of their own (the loader
    refuses such names): the models read raw's columns by name, so none of raw's can be ambiguous to them.
    """
    window = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 2, 1))
    generate.generate(generate.GenerateOptions(tmp_path / "clean", 150, date(2017, 1, 1), 31, seed=3))
    shutil.copytree(tmp_path / "clean", tmp_path / "drifted")
    add_column(tmp_path / "drifted" / ORDERS.file_name, "sales_channel", "app")
    add_column(tmp_path / "drifted" / BY_ENTITY["order_reviews"].file_name, "review_language", "pt")
    for entity in ("customers", "orders", "order_items", "order_payments", "order_reviews"):
        columns = [
            sql.SQL("add column {} text default 'x'").format(sql.Identifier(name)) for name in load.MODEL_COLUMNS
        ]
        connection.execute(sql.SQL("alter table raw.{} {}").format(sql.Identifier(entity), sql.SQL(", ").join(columns)))

    load.load_directory(connection, tmp_path / "drifted")
    pipeline.run_window(settings, settings.dsn, window)
    reference = replace(settings, dsn=new_database(), home=tmp_path / "reference")
    pipeline.bootstrap(reference)
    with psycopg.connect(reference.dsn, autocommit=True) as clean_connection:
        load.load_directory(clean_connection, tmp_path / "clean")
    pipeline.run_window(reference, reference.dsn, window)

    assert warehouse_checksums(settings.dsn) == warehouse_checksums(reference.dsn)
    added = connection.execute("select table_name, column_name from metadata.schema_events order by 1").fetchall()
    assert added == [("raw.order_reviews", "review_language"), ("raw.orders", "sales_channel")]


def assert_one_clear_line(completed, exit_code: int, expected: str) -> None:
    """The CLI's answer to a user's mistake: its exit code and one line on stderr saying what, never a traceback."""
    assert completed.returncode == exit_code, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, completed.stderr
    assert re.search(expected, errors[0]), errors[0]


def failed_batch_error(connection) -> str:
    """The error the ledger recorded for the only load batch, which must have failed."""
    ((status, error),) = connection.execute("select status, error_message from metadata.load_batches").fetchall()
    assert status == "failed"
    return error


def test_a_file_adds_at_most_twenty_new_columns(connection, tmp_path):
    """Added columns are never dropped: one file may not spend many of PostgreSQL's 1,600 on drift."""
    extra = [f"extra_{number:02}" for number in range(1, 22)]
    write_orders(tmp_path / "in", f"{HEADER},{','.join(extra)}\n{ROW_1}{',x' * 21}\n".encode())

    with pytest.raises(SchemaMismatchError) as raised:
        load.load_directory(connection, tmp_path / "in")

    assert str(raised.value) == (
        f"{ORDERS.file_name}: header has 21 columns raw.orders does not have, more than the 20 one file may add:"
        " extra_01, extra_02, extra_03, extra_04, extra_05, extra_06, extra_07, extra_08, extra_09, extra_10"
        " and 11 more"
    )
    assert connection.execute("select count(*) from metadata.schema_events").fetchone() == (0,)

    # Twenty load; a later file with one more adds one, as the cap counts only the columns new to raw.
    write_orders(tmp_path / "in", f"{HEADER},{','.join(extra[:20])}\n{ROW_1}{',x' * 20}\n".encode())
    load.load_directory(connection, tmp_path / "in")
    write_orders(tmp_path / "in", f"{HEADER},{','.join(extra)}\n{ROW_2}{',y' * 21}\n".encode())
    load.load_directory(connection, tmp_path / "in")
    assert connection.execute("select count(*) from metadata.schema_events").fetchone() == (21,)


def test_a_column_postgresql_refuses_to_add_is_the_files_error(connection, tmp_path):
    """A table at PostgreSQL's 1,600-column limit: the file is refused naming itself and the column, loading nothing."""
    fillers = [sql.SQL("add column {} text").format(sql.Identifier(f"filler_{number}")) for number in range(1588)]
    connection.execute(sql.SQL("alter table raw.orders {}").format(sql.SQL(", ").join(fillers)))
    write_orders(tmp_path / "in", f"{HEADER},sales_channel\n{ROW_1},app\n".encode())

    with pytest.raises(SchemaMismatchError) as raised:
        load.load_directory(connection, tmp_path / "in")

    assert str(raised.value) == (
        f"{ORDERS.file_name}: column sales_channel can not be added to raw.orders"
        " (tables can have at most 1600 columns); nothing of this file was loaded"
    )
    assert raw_order_ids(connection) == []
    assert connection.execute("select count(*) from metadata.schema_events").fetchone() == (0,)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # No line break in the first MiB: refused without reading the rest.
        (b"order_id" * (1 << 18), r"line 1: no line break in the first 1 MiB; expected a header line"),
        # Lines ending in a carriage return alone.
        (f"{HEADER}\r{ROW_1}\r{ROW_2}\r".encode(), r"line 1: a carriage return inside the header"),
        # A name longer than Python's CSV field limit (128 KiB).
        (
            f"{HEADER},{'x' * 200_000}\n{ROW_1},x\n".encode(),
            r"line 1: the header can not be read as CSV \(field larger",
        ),
        # More columns than a table holds, repeated: refused at once (the duplicate check was quadratic).
        (
            f"{HEADER}{',a' * 20_000}\n{ROW_1}\n".encode(),
            r"line 1: the header has 20,008 columns; a table holds at most",
        ),
    ],
    ids=["no-line-break", "cr-only", "huge-name", "many-columns"],
)
def test_a_header_that_can_not_be_read_stops_the_file(connection, tmp_path, body, expected):
    write_orders(tmp_path / "in", body)

    started = time.monotonic()
    with pytest.raises(SchemaMismatchError, match=f"^{ORDERS.file_name}, {expected}"):
        load.load_directory(connection, tmp_path / "in")

    assert time.monotonic() - started < 10
    assert raw_order_ids(connection) == []
    assert failed_batch_error(connection).startswith(f"{ORDERS.file_name}, line 1: ")


@pytest.mark.parametrize(
    ("name", "shown"),
    [("order_deliv\0ered_carrier_date", r"order_deliv\x00ered_carrier_date"), ("status\x1b[2J", r"status\x1b[2J")],
)
def test_control_characters_of_a_header_are_escaped_in_the_error_and_the_ledger(connection, tmp_path, name, shown):
    """A NUL can not be stored in PostgreSQL text; a terminal escape would act on the operator's terminal."""
    write_orders(tmp_path / "in", f"{HEADER.replace('order_delivered_carrier_date', name)}\n{ROW_1}\n".encode())

    with pytest.raises(SchemaMismatchError) as raised:
        load.load_directory(connection, tmp_path / "in")

    assert str(raised.value) == (
        f"{ORDERS.file_name}: header does not match the Olist layout; missing columns: order_delivered_carrier_date;"
        f" unexpected columns: {shown} (renamed?)"
    )
    assert failed_batch_error(connection) == str(raised.value)


def test_what_an_error_quotes_of_a_header_is_capped(connection, tmp_path):
    """A file that is no export at all (a password file, say) is not copied into stderr and the ledger."""
    first_line = "root:" + "x" * 5000 + "," + ",".join(f"field_{number}" for number in range(40))
    write_orders(tmp_path / "in", f"{first_line}\nmore\n".encode())

    with pytest.raises(SchemaMismatchError) as raised:
        load.load_directory(connection, tmp_path / "in")

    message = str(raised.value)
    assert f"unexpected columns: root:{'x' * 59}..., field_0, field_1, " in message
    assert message.endswith("field_8 and 31 more (renamed?)")
    assert len(message) < 600
    assert failed_batch_error(connection) == message


def test_a_symbolic_link_is_refused(connection, tmp_path):
    """Whatever a link points at (an export elsewhere, or /etc/passwd) is not loaded or quoted."""
    elsewhere = write_orders(tmp_path / "elsewhere", f"{HEADER}\n{ROW_1}\n".encode())
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / ORDERS.file_name).symlink_to(elsewhere)

    with pytest.raises(UnreadableFile, match=f"^{ORDERS.file_name}: is a symbolic link; the loader reads only regular"):
        load.load_directory(connection, tmp_path / "in")

    assert raw_order_ids(connection) == []


@pytest.mark.parametrize("rewrite", ["in place", "by a new file"])
def test_a_file_rewritten_while_it_loads_loads_as_checked_or_not_at_all(connection, settings, tmp_path, rewrite):
    """Header, hash and rows come from one open file: a rewrite after the header check can not mix them up.

    The load is held (by the lock a loader takes on the content it hashed) between its header check and its
    COPY; meanwhile the file is rewritten with two columns swapped. Rewritten in place, the bytes COPY reads are
    not the ones checked and hashed: refused. Replaced by a new file (a rename), the open file is still the old
    one: it loads as checked, under its own hash.
    """
    path = write_orders(tmp_path / "in", f"{HEADER}\n{ROW_1}\n".encode())
    checked = path.read_bytes()
    swapped_header = HEADER.replace("customer_id,order_status", "order_status,customer_id")
    swapped_row = ROW_1.replace(
        "9ef432eb6251297304e76186b10a928d,delivered", "delivered,9ef432eb6251297304e76186b10a928d"
    )
    outcome: dict[str, object] = {}

    def load_in_background() -> None:
        try:
            outcome["report"] = load.load_directory(connection, tmp_path / "in")
        except Exception as error:  # the test looks at it below
            outcome["error"] = error

    lock_key = f"olist_dw.load.{hashlib.sha256(checked).hexdigest()}"
    with psycopg.connect(settings.dsn, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (lock_key,))
        loader = threading.Thread(target=load_in_background)
        loader.start()
        deadline = time.monotonic() + 60
        while not holder.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the load never reached its lock"
            time.sleep(0.05)
        if rewrite == "in place":
            path.write_bytes(f"{swapped_header}\n{swapped_row}\n".encode())
        else:
            (tmp_path / "new.tmp").write_bytes(f"{swapped_header}\n{swapped_row}\n".encode())
            (tmp_path / "new.tmp").replace(path)
        holder.execute("select pg_advisory_unlock(hashtext(%s))", (lock_key,))
        loader.join(60)

    if rewrite == "in place":
        assert isinstance(outcome.get("error"), VersionConflict), outcome
        assert str(outcome["error"]).startswith(f"{ORDERS.file_name}: the file changed while it was being loaded")
        assert raw_order_ids(connection) == []
    else:
        assert "error" not in outcome, outcome
        assert connection.execute("select customer_id, order_status from raw.orders").fetchall() == [
            ("9ef432eb6251297304e76186b10a928d", "delivered")
        ]
        recorded = connection.execute("select content_sha256, byte_count from metadata.loaded_files").fetchall()
        assert recorded == [(hashlib.sha256(checked).hexdigest(), len(checked))]


SPANNING = ROW_2.replace("shipped", '"ship\nped"')
# An order id too big for raw.orders' index, even compressed.
HUGE_ID = "".join(random.Random(17).choices("0123456789abcdef", k=16_000))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The quote opened on line 2 is never closed: COPY gives up at the end of the file, line 43.
        (
            f'{HEADER}\n"{ROW_1}\n' + f"{ROW_2}\n" * 41,
            "line 2: unterminated CSV quoted field",
        ),
        # A bad row after a record over two lines, with rows after it.
        (
            f"{HEADER}\n{ROW_1}\n{SPANNING}\n{ROW_1},surplus\n{ROW_1}\n{ROW_2}\n",
            "line 5: extra data after last expected column",
        ),
        # The record over two lines is the bad one: its first line.
        (
            f"{HEADER}\n{ROW_1}\n{SPANNING},surplus\n{ROW_1}\n{ROW_2}\n",
            "line 3: extra data after last expected column",
        ),
        # CRLF line ends, and a bare line feed in a quoted field, which COPY does not count as a line.
        (
            f"{HEADER}\r\n{ROW_1}\r\n{SPANNING}\r\n{ROW_1},surplus\r\n{ROW_2}\r\n{ROW_1}\r\n",
            "line 5: extra data after last expected column",
        ),
        # Doubled quotes inside the unterminated field do not move its start.
        (
            f'{HEADER}\n{ROW_1}\n{ROW_2.replace("shipped", chr(34) + "ship")}\nsaid ""hi""\n' + f"{ROW_1}\n" * 3,
            "line 3: unterminated CSV quoted field",
        ),
    ],
    ids=["unterminated-quote", "after-a-spanning-record", "spanning-record", "crlf", "doubled-quotes"],
)
def test_a_bad_record_is_named_by_the_line_it_starts_on(connection, tmp_path, body, expected):
    write_orders(tmp_path / "in", body.encode())

    with pytest.raises(DataError, match=f"^{ORDERS.file_name}, {expected}; nothing of this file was loaded$"):
        load.load_directory(connection, tmp_path / "in")

    assert raw_order_ids(connection) == []


def test_a_value_beyond_postgresqls_limits_is_the_files_error(connection, tmp_path):
    """An order id of 16,000 characters does not fit raw.orders' index (SQLSTATE 54000): not a lost database."""
    write_orders(
        tmp_path / "in", f"{HEADER}\n{ROW_1}\n{ROW_2.replace('53cdb2fc8bc7dce0b6741e2150273451', HUGE_ID)}\n".encode()
    )

    with pytest.raises(UnreadableFile) as raised:
        load.load_directory(connection, tmp_path / "in")

    message = str(raised.value)
    assert message.startswith(f"{ORDERS.file_name}, line 3: ")
    assert message.endswith("; beyond PostgreSQL's limits for one record; nothing of this file was loaded")
    assert raw_order_ids(connection) == []


def symlinked(folder: Path) -> None:
    elsewhere = write_orders(folder.parent / "elsewhere", f"{HEADER}\n{ROW_1}\n".encode())
    folder.mkdir()
    (folder / ORDERS.file_name).symlink_to(elsewhere)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda folder: write_orders(folder, (HEADER.replace("order_status", "order_st\0atus") + "\n").encode()),
            r"unexpected columns: order_st\\x00atus \(renamed\?\)$",
        ),
        (lambda folder: write_orders(folder, f"{HEADER}\r{ROW_1}\r".encode()), "line 1: a carriage return"),
        (
            lambda folder: write_orders(folder, f"{HEADER},{'x' * 200_000}\n".encode()),
            r"line 1: the header can not be read as CSV",
        ),
        (
            lambda folder: write_orders(
                folder, f"{HEADER}\n{ROW_1}\n{ROW_1.replace('e481f51cbdc54678b7cc49136f2d6af7', HUGE_ID)}\n".encode()
            ),
            "line 3: .*; beyond PostgreSQL's limits for one record",
        ),
        (symlinked, "is a symbolic link"),
    ],
    ids=["nul", "cr-only", "huge-name", "huge-value", "symlink"],
)
def test_a_bad_file_gets_one_line_and_the_schema_code(run_cli, dsn, tmp_path, make, expected):
    make(tmp_path / "in")

    completed = run_cli("--dsn", dsn, "load", "--source", str(tmp_path / "in"))

    assert_one_clear_line(completed, EXIT_SCHEMA_MISMATCH, f"^error: {ORDERS.file_name}[,:] .*{expected}")


@pytest.mark.slow
def test_a_record_over_a_gigabyte_is_the_files_error(run_cli, dsn, tmp_path):
    """A quote never closed makes the rest of the file one record: past COPY's 1 GB it is the file's error (exit 4)."""
    path = write_orders(tmp_path / "in", f'{HEADER}\n{ROW_1}\n"{ROW_2}\n'.encode())
    with path.open("ab") as stream:
        for _ in range(1030):
            stream.write(b"x" * (1 << 20))

    completed = run_cli("--dsn", dsn, "load", "--source", str(tmp_path / "in"))

    assert_one_clear_line(
        completed,
        EXIT_SCHEMA_MISMATCH,
        f"^error: {ORDERS.file_name}, line 3: .*; beyond PostgreSQL's limits for one record; nothing of this file",
    )


def test_the_loader_refuses_every_name_the_base_models_give_their_own_columns():
    """load.MODEL_COLUMNS holds each column alias of the base models and the macros they call."""
    base = PROJECT_DIR / "models" / "staging" / "olist" / "base"
    texts = [path.read_text(encoding="utf-8") for path in sorted(base.glob("*.sql"))]
    macros = {path.stem: path for path in (PROJECT_DIR / "macros").rglob("*.sql")}
    called = {name for text in texts for name in re.findall(r"\b([a-z_]+)\(", text)}
    texts += [macros[name].read_text(encoding="utf-8") for name in called if name in macros]
    # A column's alias ends its select item, and so its line: `... as name,`. A cast's type is followed by a
    # parenthesis, a CTE's name by its body; a table's alias follows `from`, `join` or a subquery's lone `)`.
    aliases = {
        match[1]
        for text in texts
        for line in text.splitlines()
        if (match := re.search(r"\bas\s+([a-z_][a-z0-9_]*),?\s*$", line))
        and not re.search(r"\b(from|join)\b|^\s*\)\s*as\b", line)
    }

    assert {"key_rank", "source_line", "raw_values", "disposition", "is_superseded", "line_breaks_before"} <= aliases
    assert aliases <= load.MODEL_COLUMNS
