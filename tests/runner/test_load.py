"""The COPY loader against a real PostgreSQL: what loads, what is refused, and that a refusal loads nothing."""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
from conftest import warehouse_checksums

from runner import generate, ledger, load, pipeline
from runner.errors import DataError, SchemaMismatchError, UsageError
from runner.olist import BY_ENTITY

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
    """Drift in a file changes nothing downstream: the warehouse equals one built from the files without it."""
    window = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 2, 1))
    generate.generate(generate.GenerateOptions(tmp_path / "clean", 150, date(2017, 1, 1), 31, seed=3))
    shutil.copytree(tmp_path / "clean", tmp_path / "drifted")
    add_column(tmp_path / "drifted" / ORDERS.file_name, "sales_channel", "app")
    add_column(tmp_path / "drifted" / BY_ENTITY["order_reviews"].file_name, "review_language", "pt")

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
