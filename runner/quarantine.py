"""The quarantine: raw rows that failed a row rule, as the dbt project keeps them in ``quarantine.<entity>``.

The rules live in the dbt project (``models/staging/olist/base``), so that a ``dbt build`` typed by hand and a
runner's window set the same rows aside. This module only reads what they kept: a summary per entity and rule
for ``runner quarantine list`` and ``runner status``, what a run changed in it, the rows themselves for
``runner quarantine show``, and the words that explain a window stopped by a share of its rows quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from runner.errors import UsageError

ENTITIES = ("orders", "order_items", "order_payments", "order_reviews", "customers")
# The dbt test that stops a window quarantined over the threshold; its name appears in dbt's failure output.
SHARE_TEST = "quarantine_share_within_threshold"
WINDOW_COLUMNS = {entity: "purchased_at" if entity == "orders" else "order_purchased_at" for entity in ENTITIES}


@dataclass(frozen=True)
class RuleCount:
    """How many rows of one entity one rule set aside, and the purchase times they span (None: no window).

    ``unplaced`` of the rows have no window: their order is in no orders file, or its purchase time is unreadable.
    """

    entity: str
    rule: str
    rows: int
    unplaced: int
    first_purchase: datetime | None
    last_purchase: datetime | None


# Every quarantined row of the five entities, with its entity: the dbt model quarantine_olist__all_rows.
ALL_ROWS = sql.Identifier("quarantine", "all_rows")


def _require_tables(connection: psycopg.Connection) -> None:
    if connection.execute("select to_regclass('quarantine.all_rows')").fetchone()[0] is None:
        raise UsageError("no quarantine yet: the row rules run with the first window (python -m runner run)")


def _window_filter(start: datetime | None, end: datetime | None) -> tuple[str, tuple[Any, ...]]:
    """Rows of [start, end) on their order's purchase time, or all rows; those with no window only in the latter."""
    if start is None or end is None:
        return "true", ()
    return "order_purchased_at >= %s and order_purchased_at < %s", (start, end)


def summary(
    connection: psycopg.Connection, start: datetime | None = None, end: datetime | None = None
) -> list[RuleCount]:
    """Rows quarantined per entity and rule, in the window or in all."""
    _require_tables(connection)
    condition, parameters = _window_filter(start, end)
    # The condition is one of _window_filter's constants; the values go as parameters.
    query = sql.SQL(
        "select entity, quarantine_rule, count(*), count(*) filter (where order_purchased_at is null),"  # noqa: S608
        " min(order_purchased_at), max(order_purchased_at)"
        " from {all_rows} where " + condition + " group by entity, quarantine_rule"
    ).format(all_rows=ALL_ROWS)
    rows = connection.execute(query, parameters).fetchall()
    return sorted((RuleCount(*row) for row in rows), key=lambda count: (ENTITIES.index(count.entity), count.rule))


def rows(
    connection: psycopg.Connection,
    entity: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    rule: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """One entity's quarantined rows, in file order: where each came from, why, and its values as loaded."""
    _require_tables(connection)
    condition, parameters = _window_filter(start, end)
    condition += " and entity = %s"
    parameters += (entity,)
    if rule is not None:
        condition += " and quarantine_rule = %s"
        parameters += (rule,)
    # The condition is built from _window_filter's constants; the values go as parameters.
    query = sql.SQL(
        "select source_file, source_line, quarantine_rule, quarantine_reason, order_purchased_at, batch_id,"  # noqa: S608
        " raw_values from {all_rows} where " + condition + " order by loaded_at, source_file, source_line limit %s"
    ).format(all_rows=ALL_ROWS)
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, (*parameters, limit)).fetchall()


def held(connection: psycopg.Connection) -> list[RuleCount]:
    """What the quarantine holds now, or nothing before the first window made its tables."""
    try:
        return summary(connection)
    except UsageError:
        return []


@dataclass(frozen=True)
class Change:
    """What one run did to one entity's rows of one rule: rows it added (negative: rows that left), in no window."""

    entity: str
    rule: str
    added: int
    added_unplaced: int
    now: int


def changes(before: list[RuleCount], after: list[RuleCount]) -> list[Change]:
    """The difference between two readings of the quarantine, per entity and rule; unchanged ones left out."""
    was = {(count.entity, count.rule): count for count in before}
    now = {(count.entity, count.rule): count for count in after}
    found = []
    for key in sorted(was.keys() | now.keys(), key=lambda key: (ENTITIES.index(key[0]), key[1])):
        old, new = was.get(key), now.get(key)
        rows = (new.rows if new else 0) - (old.rows if old else 0)
        unplaced = (new.unplaced if new else 0) - (old.unplaced if old else 0)
        if rows or unplaced:
            found.append(Change(*key, rows, unplaced, new.rows if new else 0))
    return found


@dataclass(frozen=True)
class Offences:
    """Why a window stopped on the quarantine: entities over the window's share, files over the unplaced share."""

    window: list[str]
    files: list[str]
    max_share: float
    unplaced_max_share: float

    @classmethod
    def find(
        cls,
        connection: psycopg.Connection,
        start: datetime,
        end: datetime,
        max_share: float,
        unplaced_max_share: float,
    ) -> Offences:
        return cls(
            window_offences(connection, start, end, max_share),
            unplaced_offences(connection, unplaced_max_share),
            max_share,
            unplaced_max_share,
        )

    @property
    def message(self) -> str:
        """The stop in figures: share, threshold and the rules that filled it, per entity or file."""
        parts = []
        if self.window:
            parts.append(
                f"quarantined share of the window's rows over the {self.max_share:.1%} allowed"
                " (OLIST_DW_QUARANTINE_MAX_SHARE): " + "; ".join(self.window)
            )
        if self.files:
            parts.append(
                f"rows no window can place over the {self.unplaced_max_share:.1%} of their file allowed"
                " (OLIST_DW_UNPLACED_MAX_SHARE): " + "; ".join(self.files)
            )
        return "\n".join(parts or ["quarantined share over the threshold: see the dbt test output"]) + (
            ". See python -m runner quarantine list"
        )


def window_offences(connection: psycopg.Connection, start: datetime, end: datetime, max_share: float) -> list[str]:
    """Each entity whose quarantined share of the window's rows is over the threshold, with the rules that filled it."""
    counts = summary(connection, start, end)
    offences = []
    for entity in ENTITIES:
        staged = connection.execute(
            sql.SQL("select count(*) from {table} where {column} >= %s and {column} < %s").format(
                table=sql.Identifier("staging", f"stg_olist__{entity}"),
                column=sql.Identifier(WINDOW_COLUMNS[entity]),
            ),
            (start, end),
        ).fetchone()[0]
        rules = [count for count in counts if count.entity == entity]
        quarantined = sum(count.rows for count in rules)
        total = staged + quarantined
        if quarantined > max_share * total:
            worst = ", ".join(f"{count.rule} {count.rows:,}" for count in sorted(rules, key=lambda count: -count.rows))
            offences.append(f"{entity} {quarantined / total:.1%} ({quarantined:,} of {total:,}: {worst})")
    return offences


def unplaced_offences(connection: psycopg.Connection, max_share: float) -> list[str]:
    """Each loaded file whose rows no window can place are over the threshold: its share, batch and rules.

    Judged per file (an entity's rows of one load batch), as the dbt test judges it: a few orphans whose order
    comes later are normal, a file of them is an incident.
    """
    query = sql.SQL(
        "select quarantined.entity, quarantined.source_file, quarantined.batch_id, quarantined.quarantine_rule,"
        " count(*), min(files.row_count) from {all_rows} as quarantined join metadata.loaded_files as files"
        " on files.batch_id = quarantined.batch_id and files.file_name = quarantined.source_file"
        " where quarantined.order_purchased_at is null and files.rolled_back_at is null"
        " group by quarantined.entity, quarantined.source_file, quarantined.batch_id, quarantined.quarantine_rule"
    ).format(all_rows=ALL_ROWS)
    by_file: dict[tuple[str, str, Any], tuple[int, dict[str, int]]] = {}
    for entity, source_file, batch_id, rule, rows, file_rows in connection.execute(query).fetchall():
        _, rules = by_file.setdefault((entity, source_file, batch_id), (file_rows, {}))
        rules[rule] = rows
    offences = []
    for (entity, source_file, batch_id), (file_rows, rules) in by_file.items():
        unplaced = sum(rules.values())
        if unplaced > max_share * file_rows:
            worst = ", ".join(f"{rule} {rows:,}" for rule, rows in sorted(rules.items(), key=lambda item: -item[1]))
            offences.append(
                f"{entity}: {source_file} of batch {batch_id} {unplaced / file_rows:.1%}"
                f" ({unplaced:,} of {file_rows:,}: {worst})"
            )
    return sorted(offences)
