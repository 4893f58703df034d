"""Which windows are due, from the ledger and the loads alone (no dbt): late orders, restatements, late children,
reference data, a mistyped year, a changed project, a failed run, and windows asked for by name."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from conftest import write_rows

from runner import due, ledger, load, pipeline
from runner.settings import PIPELINE, PROJECT_DIR

JAN, FEB, MAR, APR = (datetime(2017, month, 1) for month in (1, 2, 3, 4))
CALENDAR = due.Calendar.of_project(PROJECT_DIR)
PROJECT = "project-a"


def order(order_id: str, purchased: str, status: str = "delivered") -> dict[str, str]:
    return {
        "order_id": order_id,
        "customer_id": f"c-{order_id}",
        "order_status": status,
        "order_purchase_timestamp": purchased,
    }


def load_batch(connection: psycopg.Connection, folder: Path, **files: list[dict[str, str]]) -> uuid.UUID:
    for entity, rows in files.items():
        write_rows(folder, entity, rows)
    return load.load_directory(connection, folder).batch_id


def succeed(connection: psycopg.Connection, *windows: tuple[datetime, datetime], project: str = PROJECT) -> None:
    """Record windows as built now, as a run does: their snapshot is taken when they start."""
    run_ids = ledger.start_windows(
        connection, PIPELINE, list(windows), runner_run_id=uuid.uuid4(), project_fingerprint=project
    )
    with connection.transaction():
        ledger.record_success(
            connection, run_ids, PIPELINE, None, invocation_id=None, stage_durations_ms={}, row_counts={}
        )


def plan(connection: psycopg.Connection, project: str = PROJECT) -> list[tuple[datetime, datetime, list[str]]]:
    return [
        (window.span.start, window.span.end, window.reasons)
        for window in due.due_windows(connection, CALENDAR, project)
    ]


@pytest.fixture
def built(connection: psycopg.Connection, tmp_path: Path) -> uuid.UUID:
    """January to March loaded and built as three monthly windows; returns the batch."""
    batch = load_batch(
        connection,
        tmp_path / "first",
        orders=[
            order("a", "2017-01-10 10:00:00"),
            order("b", "2017-02-10 10:00:00"),
            order("c", "2017-03-31 22:00:00"),
        ],
        order_items=[{"order_id": "a", "order_item_id": "1"}],
    )
    succeed(connection, (JAN, FEB), (FEB, MAR), (MAR, APR))
    return batch


def test_nothing_is_due_after_a_build_and_the_watermark_ends_with_the_data(connection, built):
    assert plan(connection) == []
    assert due.watermark(connection, CALENDAR, PROJECT) == APR


def test_loaded_data_no_window_covers_is_never_built(connection, tmp_path):
    load_batch(
        connection, tmp_path / "b", orders=[order("a", "2017-01-10 10:00:00"), order("b", "2017-02-03 10:00:00")]
    )

    assert plan(connection) == [(JAN.replace(day=10), datetime(2017, 2, 4), ["never built"])]


def test_late_orders_make_their_window_due_and_only_it(connection, built, tmp_path):
    late = load_batch(connection, tmp_path / "late", orders=[order("d", "2017-02-20 08:00:00")])

    assert plan(connection) == [(FEB, MAR, [f"new batch {late}"])]
    assert due.watermark(connection, CALENDAR, PROJECT) == FEB
    succeed(connection, (FEB, MAR))
    assert plan(connection) == []


def test_a_restated_order_moved_to_another_day_makes_both_windows_due(connection, built, tmp_path):
    restated = load_batch(connection, tmp_path / "restated", orders=[order("b", "2017-03-02 10:00:00", "canceled")])

    assert plan(connection) == [(FEB, MAR, [f"new batch {restated}"]), (MAR, APR, [f"new batch {restated}"])]


def test_a_late_child_row_makes_its_orders_window_due(connection, built, tmp_path):
    late = load_batch(connection, tmp_path / "late", order_payments=[{"order_id": "a", "payment_sequential": "1"}])

    assert plan(connection) == [(JAN, FEB, [f"new batch {late}"])]


def test_rows_no_window_places_make_the_newest_window_due(connection, built, tmp_path):
    products = load_batch(connection, tmp_path / "products", products=[{"product_id": "p1"}])
    assert plan(connection) == [(MAR, APR, [f"new batch {products}"])]
    succeed(connection, (MAR, APR))

    orphans = load_batch(connection, tmp_path / "orphans", order_items=[{"order_id": "nobody", "order_item_id": "1"}])
    assert plan(connection) == [(MAR, APR, [f"new batch {orphans}"])]


def test_a_mistyped_year_plans_no_window_and_does_not_move_the_watermark(connection, built, tmp_path):
    batch = load_batch(
        connection,
        tmp_path / "typo",
        orders=[order("typo", "2099-03-05 10:00:00"), order("e", "2017-04-02 09:00:00")],
    )

    # The 2099 row is placed nowhere (the newest window's run quarantines it); the real April row is new data.
    assert plan(connection) == [(MAR, APR, [f"new batch {batch}"]), (APR, datetime(2017, 4, 3), ["never built"])]
    assert due.watermark(connection, CALENDAR, PROJECT) == MAR


def test_a_changed_project_makes_every_built_window_due(connection, built):
    assert [reasons for _, _, reasons in plan(connection, "project-b")] == [["project changed"]] * 3


def test_a_run_that_failed_since_makes_its_windows_due(connection, built):
    run_ids = ledger.start_windows(connection, PIPELINE, [(FEB, APR)], runner_run_id=uuid.uuid4())
    ledger.record_failure(connection, run_ids, error_class="PipelineFailure", message="boom")

    assert plan(connection) == [(FEB, APR, ["a run failed since (PipelineFailure)"])]


def test_a_rolled_back_batch_is_not_new_data(connection, built, tmp_path):
    late = load_batch(connection, tmp_path / "late", orders=[order("d", "2017-02-20 08:00:00")])
    connection.execute("update metadata.loaded_files set rolled_back_at = now() where batch_id = %s", (late,))

    assert plan(connection) == []


def test_windows_asked_for_are_due_when_never_built_or_stale(connection, built, tmp_path):
    late = load_batch(connection, tmp_path / "late", orders=[order("d", "2017-02-20 08:00:00")])
    asked = pipeline.split(pipeline.Window(JAN, datetime(2017, 5, 1)), "month")

    found = pipeline.due_among(connection, asked, PROJECT)

    assert [(window.span.start, window.reasons) for window in found] == [
        (FEB, [f"new batch {late}"]),
        (APR, ["never built"]),
    ]


def test_a_load_running_while_a_window_builds_is_not_taken_as_seen(connection, built, dsn, tmp_path):
    """A file committed after the window's run started is new to it, even if it was loaded before it finished."""
    run_ids = ledger.start_windows(
        connection, PIPELINE, [(FEB, MAR)], runner_run_id=uuid.uuid4(), project_fingerprint=PROJECT
    )
    with psycopg.connect(dsn, autocommit=True) as loader:
        late = load_batch(loader, tmp_path / "late", orders=[order("d", "2017-02-20 08:00:00")])
    with connection.transaction():
        ledger.record_success(
            connection, run_ids, PIPELINE, None, invocation_id=None, stage_durations_ms={}, row_counts={}
        )

    assert plan(connection) == [(FEB, MAR, [f"new batch {late}"])]
