"""The executive dashboard's figures, from the marts alone: plain functions over a connection.

The page (``dashboards/executive.py``) only lays these out; what it shows is computed here, where a test can
check it without a browser. Every figure over several rows is a ratio of sums of the marts' additive columns
(``on_time_order_count``, ``review_count``, ``review_score_sum``, …), never a mean of rounded monthly rates, so a
period of several months or states gets the figure the marts would have for it as one row. A percentile does not
add up that way: the 90th percentile of delivery days is shown for a single month only.

Each function reads ``mart.*`` (and nothing else) and returns dictionaries of Python values, as the charts want.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

# The marts the page reads; the dbt exposure executive_dashboard depends on exactly these.
MARTS = (
    "mart_executive_kpis",
    "mart_revenue",
    "mart_delivery_performance",
    "mart_customer_analytics",
    "mart_seller_performance",
)

Bounds = tuple[date, date]  # [start, end): whole months or days


def shift_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) the month of ``day``."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole months ``[start, end)``, as the page's filters choose them."""

    start: date
    end: date

    @classmethod
    def of_months(cls, first: date, last: date) -> Period:
        """From one month to another, both included, in either order."""
        first, last = sorted([first.replace(day=1), last.replace(day=1)])
        return cls(first, shift_months(last, 1))

    @property
    def bounds(self) -> Bounds:
        return self.start, self.end

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    @property
    def previous(self) -> Period:
        """The period of the same length right before this one: what a change is measured against."""
        return Period(shift_months(self.start, -self.months), self.start)

    @property
    def label(self) -> str:
        last = shift_months(self.end, -1)
        return f"{self.start:%b %Y}" if self.start == last else f"{self.start:%b %Y} to {last:%b %Y}"


def _rows(connection: psycopg.Connection, text: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
    with connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(text, parameters).fetchall()


def round2(value: Decimal) -> Decimal:
    """Two decimals, ties away from zero: PostgreSQL's round(), which the marts use."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """numerator / denominator, or None over nothing."""
    return Decimal(numerator) / Decimal(denominator) if denominator else None


def missing_marts(connection: psycopg.Connection) -> tuple[list[str], bool]:
    """The page's marts absent from the ``mart`` schema, and whether the schema holds any relation at all."""
    present = {
        row["relname"]
        for row in _rows(
            connection,
            "select class.relname from pg_class as class join pg_namespace as namespace"
            " on namespace.oid = class.relnamespace"
            " where namespace.nspname = 'mart' and class.relkind in ('m', 'r', 'v')",
        )
    }
    return [name for name in MARTS if name not in present], bool(present)


def months(connection: psycopg.Connection) -> list[date]:
    """The purchase months the marts hold, oldest first."""
    rows = _rows(connection, "select purchase_month from mart.mart_executive_kpis order by 1")
    return [row["purchase_month"] for row in rows]


def customer_states(connection: psycopg.Connection) -> list[str]:
    """The customer states with sales or deliveries."""
    return [
        row["customer_state"]
        for row in _rows(
            connection,
            "select customer_state from mart.mart_revenue union"
            " select customer_state from mart.mart_delivery_performance order by 1",
        )
    ]


@dataclass(frozen=True)
class Headline:
    """The headline figures of a period, all states (mart_executive_kpis has no state)."""

    months: int
    orders: int
    billable_orders: int
    gross_merchandise_value: Decimal
    review_count: int
    review_score_sum: int

    @property
    def average_order_value(self) -> Decimal | None:
        """GMV per billable order, two decimals: the mart's average_order_value over the whole period."""
        value = ratio(self.gross_merchandise_value, self.billable_orders)
        return round2(value) if value is not None else None

    @property
    def mean_review_score(self) -> Decimal | None:
        """The mean score of every review of the period's orders, two decimals."""
        value = ratio(self.review_score_sum, self.review_count)
        return round2(value) if value is not None else None


def headline(connection: psycopg.Connection, bounds: Bounds) -> Headline:
    """The period's headline; ``months`` says how many of its months the data covers."""
    row = _rows(
        connection,
        "select count(*) as months, coalesce(sum(order_count), 0) as orders,"
        " coalesce(sum(billable_order_count), 0) as billable_orders,"
        " coalesce(sum(gross_merchandise_value), 0) as gross_merchandise_value,"
        " coalesce(sum(review_count), 0) as review_count, coalesce(sum(review_score_sum), 0) as review_score_sum"
        " from mart.mart_executive_kpis where purchase_month >= %s and purchase_month < %s",
        bounds,
    )[0]
    return Headline(**{name: value if name == "gross_merchandise_value" else int(value) for name, value in row.items()})


def state_gmv(connection: psycopg.Connection, bounds: Bounds, state: str) -> Decimal:
    """One customer state's GMV in the period (mart_revenue), zero without sales."""
    return _rows(
        connection,
        "select coalesce(sum(gross_merchandise_value), 0) as gmv from mart.mart_revenue"
        " where purchase_date >= %s and purchase_date < %s and customer_state = %s",
        (*bounds, state),
    )[0]["gmv"]


def monthly_sales(connection: psycopg.Connection, bounds: Bounds, state: str | None) -> list[dict[str, Any]]:
    """GMV per month (``month``, ``gmv``), with ``orders`` for all states only: the marts count orders per state
    once per product category, so there is no exact order count per state."""
    if state:
        return _rows(
            connection,
            "select cast(date_trunc('month', purchase_date) as date) as month, sum(gross_merchandise_value) as gmv"
            " from mart.mart_revenue where purchase_date >= %s and purchase_date < %s and customer_state = %s"
            " group by 1 order by 1",
            (*bounds, state),
        )
    return _rows(
        connection,
        "select purchase_month as month, gross_merchandise_value as gmv, order_count as orders"
        " from mart.mart_executive_kpis where purchase_month >= %s and purchase_month < %s order by 1",
        bounds,
    )


def revenue_by_state(connection: psycopg.Connection, bounds: Bounds) -> list[dict[str, Any]]:
    """GMV per customer state in the period, largest first."""
    return _rows(
        connection,
        "select customer_state, sum(gross_merchandise_value) as gmv from mart.mart_revenue"
        " where purchase_date >= %s and purchase_date < %s group by 1 order by 2 desc, 1",
        bounds,
    )


def revenue_by_category(connection: psycopg.Connection, bounds: Bounds, state: str | None) -> list[dict[str, Any]]:
    """GMV and items per product category in the period (one state or all), largest first."""
    return _rows(
        connection,
        "select product_category, sum(gross_merchandise_value) as gmv, sum(item_count) as items"
        " from mart.mart_revenue where purchase_date >= %s and purchase_date < %s"
        " and (%s::text is null or customer_state = %s) group by 1 order by 2 desc, 1",
        (*bounds, state, state),
    )


def delivery_by_state(connection: psycopg.Connection, bounds: Bounds) -> list[dict[str, Any]]:
    """Per customer state over the period: delivered and on-time orders, the on-time rate, the mean delivery days
    and days after the promised day (from the marts' sums), and the 90th percentile of delivery days when the
    period is one month (``p90_days``, else None)."""
    rows = _rows(
        connection,
        "select customer_state, sum(delivered_order_count) as delivered, sum(on_time_order_count) as on_time,"
        " sum(delivery_days_sum) as delivery_days_sum, sum(promised_order_count) as promised,"
        " sum(days_after_estimate_sum) as days_after_estimate_sum, max(p90_delivery_days) as p90_days"
        " from mart.mart_delivery_performance where purchase_month >= %s and purchase_month < %s"
        " group by 1 order by 1",
        bounds,
    )
    one_month = shift_months(bounds[0], 1) == bounds[1]
    return [
        {
            "customer_state": row["customer_state"],
            "delivered": int(row["delivered"]),
            "on_time": int(row["on_time"]),
            "on_time_rate": ratio(row["on_time"], row["delivered"]),
            "mean_days": ratio(row["delivery_days_sum"], row["delivered"]),
            "after_estimate": ratio(row["days_after_estimate_sum"], row["promised"]),
            "p90_days": row["p90_days"] if one_month else None,
        }
        for row in rows
    ]


def on_time(rows: list[dict[str, Any]], state: str | None) -> tuple[int, int]:
    """On-time and delivered orders of one state's row, or of all rows: the sums, for a rate of the whole."""
    chosen = [row for row in rows if state in (None, row["customer_state"])]
    return sum(row["on_time"] for row in chosen), sum(row["delivered"] for row in chosen)


def customer_segments(connection: psycopg.Connection) -> list[dict[str, Any]]:
    """People per RFM segment, what they spent and their orders per person, over all history."""
    return _rows(
        connection,
        "select segment, count(*) as customers, sum(total_spent) as spent, avg(order_count) as orders_per_customer"
        " from mart.mart_customer_analytics group by 1 order by 2 desc, 1",
    )


def late_sellers(connection: psycopg.Connection, min_items: int, state: str | None) -> list[dict[str, Any]]:
    """The ten sellers (of one state or all) with the highest late-shipment rate among those with enough items."""
    return _rows(
        connection,
        "select seller_id, seller_state, item_count, revenue, mean_review_score, late_shipment_rate"
        " from mart.mart_seller_performance where late_shipment_rate is not null and item_count >= %s"
        " and (%s::text is null or seller_state = %s)"
        " order by late_shipment_rate desc, item_count desc, seller_id limit 10",
        (min_items, state, state),
    )
