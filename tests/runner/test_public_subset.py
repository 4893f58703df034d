"""The public Olist subset (``../shared/data/olist-public-subset``), loaded as-is and built, against a plain oracle.

A real slice of the public export, bytes unchanged (its PROVENANCE.md): quoted and unquoted ids in one column, a
CRLF review file with line breaks inside quoted messages, a translation file with a byte-order mark and no final
newline, and most cross-file references cut away, so about 96% of the items, payments and reviews name an order
that is not in the orders file. Those orphans belong to no window; the orphan threshold is raised for this slice.

Every figure is checked against an oracle that reads the same files with the csv module and ``Decimal``, and
counts lines from the raw bytes, without the runner's code: orders per status; every row of each windowed file in
core or in quarantine, row for row (its key, and the line where its record starts); the sums of price, freight
and payment value to the cent; every review's line as an editor counts it.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from runner.settings import Settings

SUBSET = Path("data", "olist-public-subset")
# The subset is cut that way: nearly every item, payment and review names an order the orders file does not hold.
SUBSET_ENV = {"OLIST_DW_UNPLACED_MAX_SHARE": "1"}

CR, LF, QUOTE = ord("\r"), ord("\n"), ord('"')


@dataclass(frozen=True)
class Record:
    """One data record of a file: the line where it starts (as an editor counts) and its fields by column."""

    line: int
    fields: dict[str, str]


def record_start_lines(data: bytes) -> list[int]:
    """The line where each record of a CSV file starts, header first, counted as an editor counts lines.

    A scan of the bytes: CRLF, LF or a lone CR ends a line, inside quotes as well (a message over three lines
    shows as three lines), and only a line end outside quotes ends a record. A doubled quote inside a quoted
    field toggles twice and changes nothing.
    """
    starts: list[int] = []
    line = 1
    quoted = False
    at_record_start = True
    position = 0
    while position < len(data):
        if at_record_start:
            starts.append(line)
            at_record_start = False
        byte = data[position]
        if byte == QUOTE:
            quoted = not quoted
        elif byte in (CR, LF):
            if byte == CR and data[position + 1 : position + 2] == b"\n":
                position += 1
            line += 1
            at_record_start = not quoted
        position += 1
    return starts


def read_records(path: Path) -> list[Record]:
    """The data records of an Olist file, each with the line where it starts."""
    data = path.read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    starts = record_start_lines(data)[1:]
    assert len(starts) == len(rows), f"{path.name}: the line scan and the csv module disagree on the records"
    return [Record(line, row) for line, row in zip(starts, rows, strict=True)]


@dataclass(frozen=True)
class Entity:
    """A windowed file of the subset: its key, and the core table its clean rows end in."""

    name: str
    file_name: str
    key: tuple[str, ...]
    core_table: str


ENTITIES = (
    Entity("orders", "olist_orders_dataset.csv", ("order_id",), "core.fact_orders"),
    Entity("order_items", "olist_order_items_dataset.csv", ("order_id", "order_item_id"), "core.fact_order_items"),
    Entity(
        "order_payments", "olist_order_payments_dataset.csv", ("order_id", "payment_sequential"), "core.fact_payments"
    ),
    Entity("order_reviews", "olist_order_reviews_dataset.csv", ("review_id", "order_id"), "core.fact_reviews"),
    Entity("customers", "olist_customers_dataset.csv", ("customer_id",), "core.dim_customer"),
)
BY_NAME = {entity.name: entity for entity in ENTITIES}


@dataclass(frozen=True)
class Quarantined:
    """A row of ``quarantine.<entity>``: its raw values as loaded, where it came from, and the rule it failed."""

    values: dict[str, str]
    source_file: str
    source_line: int
    rule: str


def quarantined_rows(connection: psycopg.Connection, entity: Entity) -> list[Quarantined]:
    rows = connection.execute(
        f"select raw_values, source_file, source_line, quarantine_rule from quarantine.{entity.name}"
    ).fetchall()
    return [Quarantined(*row) for row in rows]


def core_keys(connection: psycopg.Connection, entity: Entity) -> Counter[tuple[str, ...]]:
    columns = ", ".join(f"cast({column} as text)" for column in entity.key)
    return Counter(connection.execute(f"select {columns} from {entity.core_table}").fetchall())


def keyed(record_values: dict[str, str], entity: Entity) -> tuple[str, ...]:
    return tuple(record_values[column] for column in entity.key)


def cents(values: list[str]) -> Decimal:
    """The exact sum of amounts written as text."""
    return sum((Decimal(value) for value in values), Decimal("0.00"))


@pytest.mark.slow
def test_the_public_subset_loads_as_is_and_every_row_reaches_core_or_quarantine(
    shared_dir: Path, settings: Settings, connection: psycopg.Connection, run_cli
) -> None:
    source = shared_dir / SUBSET
    files = {entity.name: read_records(source / entity.file_name) for entity in ENTITIES}
    orders = files["orders"]
    order_ids = {record.fields["order_id"] for record in orders}
    env = {"OLIST_DW_DSN": settings.dsn, **SUBSET_ENV}

    loaded = run_cli("load", "--source", str(source), env=env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    built = run_cli("run", env=env)
    assert built.returncode == 0, built.stderr[-3000:]

    # Every window of the subset is built: none is due or failed, and the watermark is past its last purchase.
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert status["due_windows"] == []
    assert status["failed_windows"] == []
    last_purchase = max(datetime.fromisoformat(record.fields["order_purchase_timestamp"]) for record in orders)
    first_day_after = datetime.combine(last_purchase.date() + timedelta(days=1), datetime.min.time())
    assert datetime.fromisoformat(status["watermark"]) == first_day_after

    # Row for row: each file's records (key and line) are the core rows (key) plus the quarantined rows (key and
    # line, from the raw values as loaded), no more and no fewer.
    quarantine = {entity.name: quarantined_rows(connection, entity) for entity in ENTITIES}
    for entity in ENTITIES:
        in_file = Counter((keyed(record.fields, entity), record.line) for record in files[entity.name])
        assert {row.source_file for row in quarantine[entity.name]} <= {entity.file_name}
        set_aside = Counter((keyed(row.values, entity), row.source_line) for row in quarantine[entity.name])
        assert set_aside - in_file == Counter(), f"{entity.name}: quarantined rows the file does not hold there"
        staged = Counter(key for key, _ in (in_file - set_aside).elements())
        in_core = core_keys(connection, entity)
        assert in_core == staged, (
            f"{entity.name}: core lacks {sorted(staged - in_core)[:5]}, has extra {sorted(in_core - staged)[:5]}"
        )
        assert in_core.total() + set_aside.total() == len(files[entity.name])

    # What the slice cut away: a row whose order is not in the orders file is quarantined as an orphan, at its line.
    for name in ("order_items", "order_payments", "order_reviews"):
        entity = BY_NAME[name]
        orphans = Counter(
            (keyed(record.fields, entity), record.line)
            for record in files[name]
            if record.fields["order_id"] not in order_ids
        )
        as_orphans = Counter(
            (keyed(row.values, entity), row.source_line) for row in quarantine[name] if row.rule == "orphan_order"
        )
        assert orphans - as_orphans == Counter(), f"{name}: orphans not quarantined as orphan_order at their line"
        assert orphans.total() > 0.9 * len(files[name])

    # Orders per status, and each order's purchase time as written.
    statuses = Counter(
        dict(connection.execute("select order_status, count(*) from core.fact_orders group by order_status"))
    )
    statuses.update(row.values["order_status"] for row in quarantine["orders"])
    assert statuses == Counter(record.fields["order_status"] for record in orders)
    purchased = dict(connection.execute("select order_id, purchased_at from core.fact_orders"))
    for record in orders:
        if record.fields["order_id"] in purchased:
            written = datetime.fromisoformat(record.fields["order_purchase_timestamp"])
            assert purchased[record.fields["order_id"]] == written, record.fields["order_id"]

    # Money to the cent, core plus quarantine against the files.
    for name, column, core_sum in (
        ("order_items", "price", "select sum(price) from core.fact_order_items"),
        ("order_items", "freight_value", "select sum(freight_value) from core.fact_order_items"),
        ("order_payments", "payment_value", "select sum(payment_value) from core.fact_payments"),
    ):
        in_core = connection.execute(core_sum).fetchone()[0] or Decimal("0.00")
        set_aside = cents([row.values[column] for row in quarantine[name]])
        assert in_core + set_aside == cents([record.fields[column] for record in files[name]]), column

    # Review lines as an editor counts them: the file is CRLF with CRLF inside quoted messages too, so records
    # past the first multi-line message start lower than their position. Quarantine keeps each row's line; the
    # base table of the run's window keeps the line of every review it judged, the staged ones too.
    reviews_file = (source / BY_NAME["order_reviews"].file_name).read_bytes()
    assert reviews_file.count(b"\r\n") == reviews_file.count(b"\n")
    reviews = files["order_reviews"]
    assert any(record.line != position + 2 for position, record in enumerate(reviews))
    review_lines = Counter(((record.fields["review_id"], record.fields["order_id"]), record.line) for record in reviews)
    judged = Counter(
        ((review_id, order_id), line)
        for review_id, order_id, line in connection.execute(
            "select review_id, order_id, source_line from staging.base_olist__order_reviews"
        )
    )
    assert judged - review_lines == Counter(), "reviews judged at a line where the file does not hold them"
    assert judged.total() == len(reviews)
