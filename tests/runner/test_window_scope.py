"""A window's run reads raw through indexes, not by scanning the history: the plan checks of issue 8's indexes.

Each ``base_olist__*`` model judges only the raw rows its window needs, and finds them through the indexes that
``runner.load.RAW_INDEXES`` puts on the raw tables. These tests build real windows, then ask PostgreSQL for the
plan of each model's compiled SQL with whole-table reads priced out: an index that a predicate cannot use (a
function that differs from the index's, a cast on the column) would leave a sequential scan and fail the check.
They also check that judging a window's rows gives the verdicts that judging the whole history gives.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
import pytest

from runner import generate, load, pipeline
from runner.settings import Settings

START = date(2017, 1, 1)
WINDOWS = pipeline.month_windows(START, date(2017, 2, 28))

# The indexes each base model's statement must use.
PLANNED_INDEXES = {
    "base_olist__orders": {"orders_purchase_time_idx", "orders_order_id_idx", "orders_customer_id_idx"},
    "base_olist__order_items": {"order_items_order_id_idx"},
    "base_olist__order_payments": {"order_payments_order_id_idx"},
    "base_olist__order_reviews": {"order_reviews_order_id_idx", "order_reviews_line_breaks_idx"},
    "base_olist__customers": {"customers_customer_id_idx"},
}


@pytest.fixture
def built(settings: Settings, connection: psycopg.Connection, tmp_path: Path) -> Settings:
    """Two monthly windows built over a small dirty extract: raw holds rows of other windows to skip."""
    generate.generate(generate.GenerateOptions(tmp_path / "extract", 400, START, 59, seed=11, dirty=0.02))
    load.load_directory(connection, tmp_path / "extract")
    pipeline.run_windows(settings, settings.dsn, WINDOWS)
    connection.execute("analyze")
    return settings


def compiled_sql(settings: Settings, model: str) -> str:
    """The model's statement as the last build ran it (dbt writes it under target/compiled)."""
    base_dir = settings.target_dir / "compiled" / "olist_dw" / "models" / "staging" / "olist" / "base"
    return (base_dir / f"{model}.sql").read_text()


def plan_of(connection: psycopg.Connection, statement: str) -> str:
    """The plan when raw is large: no sequential scans, and joins that probe an index for each outer row.

    On a test-sized raw the planner rightly prefers to read whole tables; pricing that out shows whether each
    predicate can use its index, which is what decides the cost at scale.
    """
    with connection.transaction():
        for method in ("seqscan", "hashjoin", "mergejoin"):
            connection.execute(f"set local enable_{method} = off")
        rows = connection.execute(f"explain {statement}").fetchall()
    return "\n".join(row[0] for row in rows)


def test_every_raw_index_is_planned_by_a_base_model() -> None:
    declared = {name for indexes in load.RAW_INDEXES.values() for name in indexes}
    assert declared == set().union(*PLANNED_INDEXES.values())


@pytest.mark.slow
def test_each_base_model_reads_raw_through_its_indexes(built: Settings, connection: psycopg.Connection) -> None:
    for model, indexes in PLANNED_INDEXES.items():
        plan = plan_of(connection, compiled_sql(built, model))
        for index in indexes:
            assert index in plan, f"{model} does not use {index}:\n{plan}"


ENTITIES = ("orders", "order_items", "order_payments", "order_reviews", "customers")


def judged(settings: Settings, connection: psycopg.Connection, window: pipeline.Window) -> dict[str, set[tuple]]:
    """Build one window and read the verdicts its base tables give the rows placed in it or in none."""
    pipeline.run_windows(settings, settings.dsn, [window])
    return {
        entity: set(
            connection.execute(
                "select raw_id, disposition, quarantine_rule, source_line, order_purchased_at"
                f" from staging.base_olist__{entity}"
                " where order_purchased_at >= %s and order_purchased_at < %s or order_purchased_at is null",
                (window.start, window.end),
            ).fetchall()
        )
        for entity in ENTITIES
    }


@pytest.mark.slow
def test_a_windows_judgement_equals_the_whole_historys(built: Settings, connection: psycopg.Connection) -> None:
    """Judged a month at a time, every raw row gets the verdict, rule and line that one window over all gives."""
    by_month: dict[str, set[tuple]] = {entity: set() for entity in ENTITIES}
    for window in WINDOWS:
        for entity, rows in judged(built, connection, window).items():
            by_month[entity] |= rows
    whole = judged(built, connection, pipeline.Window(WINDOWS[0].start, WINDOWS[-1].end))
    assert whole == by_month
    assert all(whole.values())
