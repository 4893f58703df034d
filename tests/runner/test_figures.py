"""The executive dashboard's figures (runner/figures.py) against core, without a browser.

Over a period of several months or states the figures are ratios of the marts' sums; here they are recomputed
from core's facts directly, order by order, so a figure averaged from rounded monthly rates would not pass.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import psycopg
import pytest

from runner import figures, generate, load, pipeline
from runner.settings import Settings

WINDOW = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 3, 1))
TWO_MONTHS = figures.Period(date(2017, 1, 1), date(2017, 3, 1))
FEBRUARY = figures.Period(date(2017, 2, 1), date(2017, 3, 1))


def test_a_period_is_whole_months_in_either_order_with_the_one_before_it():
    period = figures.Period.of_months(date(2017, 3, 15), date(2016, 12, 1))
    assert period == figures.Period(date(2016, 12, 1), date(2017, 4, 1))
    assert period.months == 4
    assert period.previous == figures.Period(date(2016, 8, 1), date(2016, 12, 1))
    assert period.label == "Dec 2016 to Mar 2017"
    assert FEBRUARY.label == "Feb 2017"
    assert figures.shift_months(date(2017, 1, 31), -1) == date(2016, 12, 1)


def test_a_database_without_marts_has_them_all_missing(connection):
    assert figures.missing_marts(connection) == (list(figures.MARTS), False)


@pytest.fixture
def warehouse(settings: Settings, connection: psycopg.Connection, tmp_path) -> psycopg.Connection:
    """Two months of orders, with every kind of malformed row, built and published by the runner."""
    data = tmp_path / "data"
    generate.generate(generate.GenerateOptions(data, 300, date(2017, 1, 1), 59, 11, dirty=0.02))
    load.load_directory(connection, data)
    pipeline.run_window(settings, settings.dsn, WINDOW)
    return connection


def from_core(connection: psycopg.Connection, text: str, bounds: tuple[date, date]) -> list[tuple]:
    return connection.execute(text, bounds).fetchall()


def round2(value: Decimal) -> Decimal:
    return figures.round2(value)


@pytest.mark.slow
def test_the_figures_of_several_months_are_those_of_every_order_in_them(warehouse):
    assert figures.missing_marts(warehouse) == ([], True)
    assert figures.months(warehouse) == [date(2017, 1, 1), date(2017, 2, 1)]

    headline = figures.headline(warehouse, TWO_MONTHS.bounds)
    ((orders, billable, gmv),) = from_core(
        warehouse,
        "select count(*), count(*) filter (where is_billable), sum(items_value) filter (where is_billable)"
        " from core.fact_orders where purchase_date >= %s and purchase_date < %s",
        TWO_MONTHS.bounds,
    )
    ((reviews, mean_score),) = from_core(
        warehouse,
        "select count(*), avg(reviews.review_score) from core.fact_reviews as reviews"
        " join core.fact_orders as orders on orders.order_id = reviews.order_id"
        " where orders.purchase_date >= %s and orders.purchase_date < %s",
        TWO_MONTHS.bounds,
    )
    assert (headline.months, headline.orders, headline.billable_orders) == (2, orders, billable)
    assert headline.gross_merchandise_value == gmv
    assert headline.average_order_value == round2(gmv / billable)
    assert headline.review_count == reviews
    assert headline.mean_review_score == round2(mean_score)
    # Before the data: no month of it, so no basis for a change.
    assert figures.headline(warehouse, TWO_MONTHS.previous.bounds).months == 0

    delivery = {row["customer_state"]: row for row in figures.delivery_by_state(warehouse, TWO_MONTHS.bounds)}
    expected = from_core(
        warehouse,
        "select coalesce(customers.customer_state, 'unknown'), count(*),"
        " count(*) filter (where orders.is_late is not true),"
        " avg(orders.delivery_days), avg(orders.days_after_estimate)"
        " from core.fact_orders as orders left join core.dim_customer as customers"
        " on customers.customer_id = orders.customer_id"
        " where orders.is_delivered and orders.purchase_date >= %s and orders.purchase_date < %s group by 1",
        TWO_MONTHS.bounds,
    )
    assert set(delivery) == {row[0] for row in expected}
    for state, delivered, on_time, mean_days, after_estimate in expected:
        row = delivery[state]
        assert (row["delivered"], row["on_time"]) == (delivered, on_time), state
        assert row["on_time_rate"] == Decimal(on_time) / delivered, state
        assert round(row["mean_days"], 10) == round(mean_days, 10), state
        assert round(row["after_estimate"], 10) == round(after_estimate, 10), state
        assert row["p90_days"] is None, f"{state}: a percentile of two months is not the months' percentiles"
    assert figures.on_time(list(delivery.values()), None) == (
        sum(row[2] for row in expected),
        sum(row[1] for row in expected),
    )

    # One month: its 90th percentile, as the mart computes it from the orders.
    february = {row["customer_state"]: row for row in figures.delivery_by_state(warehouse, FEBRUARY.bounds)}
    percentiles = from_core(
        warehouse,
        "select coalesce(customers.customer_state, 'unknown'),"
        " round(cast(percentile_cont(0.9) within group (order by orders.delivery_days) as numeric), 2)"
        " from core.fact_orders as orders left join core.dim_customer as customers"
        " on customers.customer_id = orders.customer_id"
        " where orders.is_delivered and orders.purchase_date >= %s and orders.purchase_date < %s group by 1",
        FEBRUARY.bounds,
    )
    assert {state: row["p90_days"] for state, row in february.items()} == dict(percentiles)

    state, state_gmv = from_core(
        warehouse,
        "select customers.customer_state, sum(items.price) from core.fact_order_items as items"
        " join core.fact_orders as orders on orders.order_id = items.order_id"
        " join core.dim_customer as customers on customers.customer_id = orders.customer_id"
        " where orders.is_billable and orders.purchase_date >= %s and orders.purchase_date < %s"
        " group by 1 order by 2 desc limit 1",
        TWO_MONTHS.bounds,
    )[0]
    assert figures.state_gmv(warehouse, TWO_MONTHS.bounds, state) == state_gmv
    assert figures.revenue_by_state(warehouse, TWO_MONTHS.bounds)[0] == {"customer_state": state, "gmv": state_gmv}
    assert sum(row["gmv"] for row in figures.revenue_by_category(warehouse, TWO_MONTHS.bounds, None)) == gmv
    assert [row["gmv"] for row in figures.monthly_sales(warehouse, TWO_MONTHS.bounds, None)] == [
        value
        for (value,) in from_core(
            warehouse,
            "select sum(items_value) filter (where is_billable) from core.fact_orders"
            " where purchase_date >= %s and purchase_date < %s"
            " group by date_trunc('month', purchase_date) order by date_trunc('month', purchase_date)",
            TWO_MONTHS.bounds,
        )
    ]
