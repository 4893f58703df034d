"""The quarantine: raw rows that failed a row rule, as the dbt project keeps them in ``quarantine.<entity>``.

The rules live in the dbt project (``models/staging/olist/base``), so that a ``dbt build`` typed by hand and a
runner's window set the same rows aside. This module only reads what they kept: a summary per entity and rule
for ``runner quarantine list``, the rows themselves for ``runner quarantine show``, and the words that explain a
window stopped by the share of its rows quarantined.
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
    """How many rows of one entity one rule set aside, and the purchase times they span (None: no window)."""

    entity: str
    rule: str
    rows: int
    first_purchase: datetime | None
    last_purchase: datetime | None


def _union(select: str, entities: tuple[str, ...] = ENTITIES) -> sql.Composed:
    """One query over the quarantine tables; ``select`` is formatted with {entity} (a literal) and {table}."""
    return sql.SQL(" union all ").join(
        sql.SQL(select).format(entity=sql.Literal(entity), table=sql.Identifier("quarantine", entity))
        for entity in entities
    )


def _require_tables(connection: psycopg.Connection) -> None:
    missing = [
        entity
        for entity in ENTITIES
        if connection.execute("select to_regclass(%s)", (f"quarantine.{entity}",)).fetchone()[0] is None
    ]
    if missing:
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
    query = _union(
        "select {entity} as entity, quarantine_rule, count(*), min(order_purchased_at), max(order_purchased_at)"  # noqa: S608
        f" from {{table}} where {condition} group by quarantine_rule"
    )
    rows = connection.execute(query, parameters * len(ENTITIES)).fetchall()
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
    if rule is not None:
        condition += " and quarantine_rule = %s"
        parameters += (rule,)
    # The condition is built from _window_filter's constants; the values go as parameters.
    query = sql.SQL(
        "select source_file, source_line, quarantine_rule, quarantine_reason, order_purchased_at, batch_id,"  # noqa: S608
        " raw_values from {table} where " + condition + " order by loaded_at, source_file, source_line limit %s"
    ).format(table=sql.Identifier("quarantine", entity))
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, (*parameters, limit)).fetchall()


def over_threshold_message(connection: psycopg.Connection, start: datetime, end: datetime, max_share: float) -> str:
    """Why a window stopped: each entity over the threshold with its share, and the rules that filled it."""
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
    return (
        f"quarantined share of the window's rows over the {max_share:.1%} allowed (OLIST_DW_QUARANTINE_MAX_SHARE): "
        + ("; ".join(offences) or "see the dbt test output")
        + ". See python -m runner quarantine list"
    )
