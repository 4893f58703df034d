"""Reconciliation: the marts agree with figures computed independently, in plain Python, from the CSV files.

A dirty synthetic extract is generated, loaded and built window by window (calendar months) by the runner, as a
user would. The expected figures are then computed straight from the CSV files with the csv module, ``Decimal``
for money and ``datetime`` for time: never by querying the database, never by reusing the project's SQL. Only
the documented rules are replicated (latest row per key, zip prefixes padded to five digits, one spelling per city,
billable = not canceled nor unavailable, 'unknown' for what the export lacks, ...), so a disagreement points at
either the rule or its SQL. Counts must match exactly, money to the cent, rounded figures at their rounding.

The extract gets a few rows appended before loading, to exercise rules the generator never triggers: a restated
order and a restated item (same key again, later in the file: the later row wins), and an item, a payment, a
review and a customer whose order is absent from the orders file (set aside by staging).
"""

from __future__ import annotations

import csv
import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from runner import load, pipeline
from runner.generate import GenerateOptions, generate
from runner.olist import BY_ENTITY
from runner.settings import Settings

pytestmark = pytest.mark.slow  # the module's warehouse: an extract built month by month

START = date(2017, 1, 1)
DAYS = 90
ORDERS = 3000
SEED = 20170101
DIRTY = 0.02
WINDOWS = pipeline.month_windows(START, START + timedelta(days=DAYS - 1))
BILLING_EXCLUDED = ("canceled", "unavailable")
ORPHAN_ORDER_ID = "f" * 32  # an order that is not in the orders file
ORPHAN_CUSTOMER_ID = "e" * 32  # a customer that no order names
ACCENTS = str.maketrans("áàâãäéèêëíìîïóòôõöúùûüçñ", "aaaaaeeeeiiiiooooouuuucn")


# --- the extract and the warehouse -----------------------------------------------------------------------------


def read_rows(directory: Path, entity: str) -> list[dict[str, str]]:
    """A file's rows in file order; utf-8-sig drops the customers file's byte-order mark."""
    with (directory / BY_ENTITY[entity].file_name).open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def append_rows(directory: Path, entity: str, rows: list[dict[str, str]]) -> None:
    """Append rows with the file's own line ending (COPY refuses a file that mixes them)."""
    path = directory / BY_ENTITY[entity].file_name
    line_end = "\r\n" if b"\r\n" in path.read_bytes() else "\n"
    with path.open("a", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=BY_ENTITY[entity].columns, lineterminator=line_end)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("extract")
    generate(GenerateOptions(directory, orders=ORDERS, start=START, days=DAYS, seed=SEED, dirty=DIRTY))
    orders = read_rows(directory, "orders")
    items = read_rows(directory, "order_items")
    restated_order = next(row for row in orders if row["order_status"] == "delivered")
    # The restated item moves 1.00 from freight to price, so that what the order cost still matches its payments.
    restated_item = next(
        row for row in items if row["order_id"] != restated_order["order_id"] and Decimal(row["freight_value"]) >= 1
    )
    restated_item = {
        **restated_item,
        "price": str(Decimal(restated_item["price"]) + 1),
        "freight_value": str(Decimal(restated_item["freight_value"]) - 1),
    }
    append_rows(directory, "orders", [{**restated_order, "order_status": "canceled"}])
    append_rows(directory, "order_items", [restated_item, {**items[0], "order_id": ORPHAN_ORDER_ID}])
    payment = read_rows(directory, "order_payments")[0]
    append_rows(directory, "order_payments", [{**payment, "order_id": ORPHAN_ORDER_ID}])
    review = read_rows(directory, "order_reviews")[0]
    append_rows(directory, "order_reviews", [{**review, "review_id": "d" * 32, "order_id": ORPHAN_ORDER_ID}])
    customer = read_rows(directory, "customers")[0]
    append_rows(directory, "customers", [{**customer, "customer_id": ORPHAN_CUSTOMER_ID}])
    return directory


@pytest.fixture(scope="module")
def warehouse(server_dsn, tmp_path_factory, extract) -> Iterator[psycopg.Connection]:
    """The extract loaded and built month by month, once for the module, in its own database."""
    name = f"olist_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    dsn = conninfo.make_conninfo(server_dsn, dbname=name)
    settings = replace(Settings.from_environment(), home=tmp_path_factory.mktemp("reconciliation") / "home", dsn=dsn)
    try:
        pipeline.bootstrap(settings)
        with psycopg.connect(dsn, autocommit=True) as connection:
            load.load_directory(connection, extract)
            for window in WINDOWS:
                pipeline.run_window(settings, dsn, window)
            yield connection
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def query(connection: psycopg.Connection, statement: str) -> list[tuple]:
    return connection.execute(statement).fetchall()


def assert_same(actual: dict, expected: dict, what: str, shown: int = 8) -> None:
    """The two mappings are equal; otherwise say which keys are missing, extra or different (a few of each)."""
    missing = sorted(expected.keys() - actual.keys(), key=str)
    extra = sorted(actual.keys() - expected.keys(), key=str)
    different = sorted((key for key in expected.keys() & actual.keys() if actual[key] != expected[key]), key=str)
    if not (missing or extra or different):
        return
    lines = [
        f"{what}: {len(expected)} expected keys, {len(actual)} in the warehouse; "
        f"{len(missing)} missing, {len(extra)} extra, {len(different)} different"
    ]
    lines += [f"  missing {key!r}: expected {expected[key]!r}" for key in missing[:shown]]
    lines += [f"  extra {key!r}: warehouse has {actual[key]!r}" for key in extra[:shown]]
    lines += [f"  {key!r}: warehouse {actual[key]!r} != expected {expected[key]!r}" for key in different[:shown]]
    pytest.fail("\n".join(lines))


# --- the documented rules, in plain Python ---------------------------------------------------------------------


def rounded(value: Decimal, places: int) -> Decimal:
    """PostgreSQL's round(numeric, n): half away from zero."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def mean(values: list) -> Decimal:
    return Decimal(sum(values)) / len(values)


def timestamp(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text.strip() else None


def zip_prefix(text: str) -> str | None:
    """Five digits, leading zeros restored; anything but 1-5 digits is no prefix."""
    text = text.strip()
    return text.zfill(5) if re.fullmatch(r"\d{1,5}", text, flags=re.ASCII) else None


def city(text: str) -> str | None:
    """Lower case, accents folded, whitespace squeezed, a repeated "x / x" collapsed; empty is no city."""
    text = re.sub(r"\s+", " ", text.strip().lower().translate(ACCENTS))
    text = re.sub(r"^(.+?) / \1$", r"\1", text)
    return text or None


def blank_to_none(text: str) -> str | None:
    return text.strip().lower() or None


def latest(rows: list[dict[str, str]], *key: str, convert=None) -> dict:
    """One row per key: the last one in the file (the latest load; a single batch here)."""
    kept = {}
    for row in rows:
        values = tuple(row[column] for column in key)
        kept[convert(values) if convert else values] = row
    return kept


def ntile(count: int, buckets: int = 5) -> list[int]:
    """PostgreSQL's ntile(): bucket of each row in order; the first count % buckets buckets get one row more."""
    size, larger = divmod(count, buckets)
    result: list[int] = []
    for bucket in range(1, buckets + 1):
        result += [bucket] * (size + (1 if bucket <= larger else 0))
    return result


def frequency_score(order_count: int) -> int:
    return 5 if order_count >= 4 else 4 if order_count == 3 else 3 if order_count == 2 else 1


def rfm_segment(recency: int, frequency: int, monetary: int) -> str:
    if recency >= 4 and frequency >= 4 and monetary >= 4:
        return "champions"
    if frequency >= 3 and recency >= 3:
        return "loyal"
    if frequency >= 3:
        return "at_risk"
    if recency >= 4 and monetary >= 4:
        return "promising_big_spenders"
    if recency >= 4:
        return "new"
    if recency <= 2:
        return "hibernating"
    return "needs_attention"


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont over float8: linear interpolation between the two nearest rows."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def float_to_numeric(value: float) -> Decimal:
    """cast(float8 as numeric): PostgreSQL keeps 15 significant digits."""
    return Decimal(f"{value:.15g}")


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    status: str
    purchased_at: datetime
    delivered_to_carrier_at: datetime | None
    delivered_to_customer_at: datetime | None
    estimated_delivery_date: date | None

    @property
    def is_billable(self) -> bool:
        return self.status not in BILLING_EXCLUDED

    @property
    def purchase_date(self) -> date:
        return self.purchased_at.date()

    @property
    def purchase_month(self) -> date:
        return self.purchased_at.date().replace(day=1)


@dataclass(frozen=True)
class Item:
    order_id: str
    order_item_id: int
    product_id: str
    seller_id: str
    price: Decimal
    freight_value: Decimal
    shipping_limit_at: datetime | None


@dataclass(frozen=True)
class Customer:
    customer_unique_id: str
    zip_code_prefix: str | None
    city: str | None
    state: str


@dataclass(frozen=True)
class Review:
    review_id: str
    order_id: str
    score: int


class Expected:
    """The extract as the documented rules shape it, computed from the CSV files alone."""

    def __init__(self, directory: Path) -> None:
        first, end = WINDOWS[0].start, WINDOWS[-1].end
        self.orders: dict[str, Order] = {}
        for (order_id,), row in latest(read_rows(directory, "orders"), "order_id").items():
            purchased_at = timestamp(row["order_purchase_timestamp"])
            if purchased_at is None or not first <= purchased_at < end:
                continue
            estimate = timestamp(row["order_estimated_delivery_date"])
            self.orders[order_id] = Order(
                order_id=order_id,
                customer_id=row["customer_id"],
                status=row["order_status"].strip().lower(),
                purchased_at=purchased_at,
                delivered_to_carrier_at=timestamp(row["order_delivered_carrier_date"]),
                delivered_to_customer_at=timestamp(row["order_delivered_customer_date"]),
                estimated_delivery_date=estimate.date() if estimate else None,
            )

        def of_known_order(rows, *key, convert=None):
            """Latest row per key, and only for orders in the orders file; the rest is set aside."""
            kept = latest(rows, *key, convert=convert)
            return {key: row for key, row in kept.items() if row["order_id"] in self.orders}

        self.raw_item_count = len(read_rows(directory, "order_items"))
        self.items: dict[tuple[str, int], Item] = {
            key: Item(
                order_id=row["order_id"],
                order_item_id=int(row["order_item_id"]),
                product_id=row["product_id"],
                seller_id=row["seller_id"],
                price=Decimal(row["price"]),
                freight_value=Decimal(row["freight_value"]),
                shipping_limit_at=timestamp(row["shipping_limit_date"]),
            )
            for key, row in of_known_order(
                read_rows(directory, "order_items"),
                "order_id",
                "order_item_id",
                convert=lambda values: (values[0], int(values[1])),
            ).items()
        }
        self.payments: dict[tuple[str, int], Decimal] = {
            key: Decimal(row["payment_value"])
            for key, row in of_known_order(
                read_rows(directory, "order_payments"),
                "order_id",
                "payment_sequential",
                convert=lambda values: (values[0], int(values[1])),
            ).items()
        }
        self.reviews: dict[tuple[str, str], Review] = {
            key: Review(row["review_id"], row["order_id"], int(row["review_score"]))
            for key, row in of_known_order(read_rows(directory, "order_reviews"), "review_id", "order_id").items()
        }
        named = {order.customer_id for order in self.orders.values()}
        self.customers: dict[str, Customer] = {
            customer_id: Customer(
                customer_unique_id=row["customer_unique_id"],
                zip_code_prefix=zip_prefix(row["customer_zip_code_prefix"]),
                city=city(row["customer_city"]),
                state=row["customer_state"].strip().upper(),
            )
            for (customer_id,), row in latest(read_rows(directory, "customers"), "customer_id").items()
            if customer_id in named
        }
        self.sellers: dict[str, tuple[str | None, str | None, str]] = {
            seller_id: (
                zip_prefix(row["seller_zip_code_prefix"]),
                city(row["seller_city"]),
                row["seller_state"].strip().upper(),
            )
            for (seller_id,), row in latest(read_rows(directory, "sellers"), "seller_id").items()
        }
        translations = {
            name: blank_to_none(row["product_category_name_english"])
            for name, row in latest(
                read_rows(directory, "product_category_name_translation"),
                "product_category_name",
                convert=lambda values: blank_to_none(values[0]),
            ).items()
            if name is not None
        }
        self.product_category: dict[str, str] = {}
        for (product_id,), row in latest(read_rows(directory, "products"), "product_id").items():
            portuguese = blank_to_none(row["product_category_name"])
            self.product_category[product_id] = translations.get(portuguese) or portuguese or "unknown"

        self.items_of: dict[str, list[Item]] = defaultdict(list)
        for item in self.items.values():
            self.items_of[item.order_id].append(item)
        self.paid: dict[str, Decimal] = defaultdict(Decimal)
        for (order_id, _), value in self.payments.items():
            self.paid[order_id] += value
        self.reviews_of: dict[str, list[Review]] = defaultdict(list)
        for review in self.reviews.values():
            self.reviews_of[review.order_id].append(review)

    # fact_orders' derived figures

    def items_value(self, order: Order) -> Decimal:
        return sum((item.price for item in self.items_of[order.order_id]), Decimal(0))

    def freight_value(self, order: Order) -> Decimal:
        return sum((item.freight_value for item in self.items_of[order.order_id]), Decimal(0))

    def payment_total(self, order: Order) -> Decimal:
        return self.paid.get(order.order_id, Decimal(0))

    @classmethod
    def delivery_days(cls, order: Order) -> Decimal | None:
        """Measured for delivered orders only (see is_delivered)."""
        if not cls.is_delivered(order):
            return None
        seconds = (order.delivered_to_customer_at - order.purchased_at) // timedelta(seconds=1)
        return rounded(Decimal(seconds) / 86400, 2)

    @staticmethod
    def is_delivered(order: Order) -> bool:
        """Status delivered with a delivery time: neither a delivered order without one nor a canceled one with one."""
        return order.status == "delivered" and order.delivered_to_customer_at is not None

    @classmethod
    def is_late(cls, order: Order) -> bool:
        """Delivered on a day after the promised one."""
        return cls.is_delivered(order) and order.delivered_to_customer_at.date() > order.estimated_delivery_date

    def customer_state(self, order: Order) -> str:
        customer = self.customers.get(order.customer_id)
        return customer.state if customer else "unknown"

    def customer_unique_id(self, order: Order) -> str | None:
        customer = self.customers.get(order.customer_id)
        return customer.customer_unique_id if customer else None

    def billable_items(self) -> Iterator[tuple[Order, Item]]:
        for item in self.items.values():
            order = self.orders[item.order_id]
            if order.is_billable:
                yield order, item


@pytest.fixture(scope="module")
def expected(extract) -> Expected:
    return Expected(extract)


# --- core: nothing lost, nothing invented -----------------------------------------------------------------------


def test_the_extract_exercises_the_rules(expected, extract):
    """Guard: the dirty extract holds what the other tests rely on, so they compare something real."""
    statuses = Counter(order.status for order in expected.orders.values())
    assert statuses["canceled"] and statuses["unavailable"] and statuses["delivered"]
    assert any(order.customer_id not in expected.customers for order in expected.orders.values())
    assert any(item.product_id not in expected.product_category for item in expected.items.values())
    assert any(item.seller_id not in expected.sellers for item in expected.items.values())
    assert "unknown" in expected.product_category.values()
    assert len({order.purchase_month for order in expected.orders.values()}) == len(WINDOWS) >= 2
    # Every order of the file is in a window; the appended rows are there and take effect as documented.
    assert len(expected.orders) == len({row["order_id"] for row in read_rows(extract, "orders")}) == ORDERS
    assert expected.raw_item_count == len(expected.items) + 2  # the restated item and the orphan
    assert ORPHAN_ORDER_ID not in expected.orders and ORPHAN_CUSTOMER_ID not in expected.customers
    raw_orders, raw_items = read_rows(extract, "orders"), read_rows(extract, "order_items")
    restated_order, restated_item = raw_orders[-1], raw_items[-2]
    assert [row["order_status"] for row in raw_orders if row["order_id"] == restated_order["order_id"]] == [
        "delivered",
        "canceled",
    ]
    assert expected.orders[restated_order["order_id"]].status == "canceled"
    item = expected.items[restated_item["order_id"], int(restated_item["order_item_id"])]
    assert (item.price, item.freight_value) == (
        Decimal(restated_item["price"]),
        Decimal(restated_item["freight_value"]),
    )
    raw_customers = read_rows(extract, "customers")
    assert any(len(row["customer_zip_code_prefix"]) < 5 for row in raw_customers)
    assert any(city(row["customer_city"]) != row["customer_city"] for row in raw_customers)


def test_every_raw_order_is_in_fact_orders_with_its_figures(warehouse, expected):
    actual = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select order_id, customer_id, order_status, item_count, items_value, freight_value, payment_total,"
            " is_billable, purchase_date, delivery_days, is_delivered, is_late from core.fact_orders",
        )
    }
    wanted = {
        order.order_id: (
            order.customer_id,
            order.status,
            len(expected.items_of[order.order_id]),
            expected.items_value(order),
            expected.freight_value(order),
            expected.payment_total(order),
            order.is_billable,
            order.purchase_date,
            expected.delivery_days(order),
            expected.is_delivered(order),
            expected.is_late(order),
        )
        for order in expected.orders.values()
    }
    assert_same(actual, wanted, "core.fact_orders by order_id")


def test_core_holds_the_items_payments_and_reviews_of_known_orders(warehouse, expected):
    items = {
        row[:2]: row[2:]
        for row in query(
            warehouse,
            "select order_id, order_item_id, product_id, seller_id, price, freight_value, is_billable"
            " from core.fact_order_items",
        )
    }
    wanted_items = {
        key: (
            item.product_id,
            item.seller_id,
            item.price,
            item.freight_value,
            expected.orders[item.order_id].is_billable,
        )
        for key, item in expected.items.items()
    }
    assert_same(items, wanted_items, "core.fact_order_items by (order_id, order_item_id)")

    payments = dict(
        ((order_id, sequential), value)
        for order_id, sequential, value in query(
            warehouse, "select order_id, payment_sequential, payment_value from core.fact_payments"
        )
    )
    assert_same(payments, expected.payments, "core.fact_payments by (order_id, payment_sequential)")

    reviews = {
        (review_id, order_id): score
        for review_id, order_id, score in query(
            warehouse, "select review_id, order_id, review_score from core.fact_reviews"
        )
    }
    wanted_reviews = {key: review.score for key, review in expected.reviews.items()}
    assert_same(reviews, wanted_reviews, "core.fact_reviews by (review_id, order_id)")


def test_dimensions_pad_zips_normalise_cities_and_translate_categories(warehouse, expected):
    customers = {
        row[0]: Customer(*row[1:])
        for row in query(
            warehouse,
            "select customer_id, customer_unique_id, customer_zip_code_prefix, customer_city, customer_state"
            " from core.dim_customer",
        )
    }
    assert_same(customers, expected.customers, "core.dim_customer by customer_id")

    sellers = {
        row[0]: row[1:]
        for row in query(
            warehouse, "select seller_id, seller_zip_code_prefix, seller_city, seller_state from core.dim_seller"
        )
    }
    assert_same(sellers, expected.sellers, "core.dim_seller by seller_id")

    categories = dict(query(warehouse, "select product_id, product_category from core.dim_product"))
    assert_same(categories, expected.product_category, "core.dim_product.product_category by product_id")


# --- marts -----------------------------------------------------------------------------------------------------


def test_executive_kpis_per_month(warehouse, expected):
    actual = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select purchase_month, order_count, billable_order_count, canceled_order_count, new_customer_count,"
            " returning_customer_count, gross_merchandise_value, average_order_value, mean_review_score,"
            " cancellation_rate, review_count, review_score_sum from mart.mart_executive_kpis",
        )
    }
    # A person's first month is the month of their first order of any status; orders of unknown customers count
    # as orders but as nobody.
    first_month: dict[str, date] = {}
    for order in expected.orders.values():
        person = expected.customer_unique_id(order)
        if person is not None:
            first_month[person] = min(first_month.get(person, order.purchase_month), order.purchase_month)
    wanted = {}
    for month in sorted({order.purchase_month for order in expected.orders.values()}):
        orders = [order for order in expected.orders.values() if order.purchase_month == month]
        billable = [order for order in orders if order.is_billable]
        canceled = sum(order.status == "canceled" for order in orders)
        gmv = sum((expected.items_value(order) for order in billable), Decimal(0))
        people = {expected.customer_unique_id(order) for order in orders} - {None}
        scores = [review.score for order in orders for review in expected.reviews_of[order.order_id]]
        wanted[month] = (
            len(orders),
            len(billable),
            canceled,
            sum(first_month[person] == month for person in people),
            sum(first_month[person] < month for person in people),
            gmv,
            rounded(gmv / len(billable), 2) if billable else None,
            rounded(mean(scores), 2) if scores else None,
            rounded(Decimal(canceled) / len(orders), 4),
            len(scores),
            sum(scores),
        )
    assert_same(actual, wanted, "mart.mart_executive_kpis by purchase_month")


def test_daily_orders_per_day(warehouse, expected):
    actual = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select purchase_date, order_count, delivered_order_count, late_order_count, canceled_order_count,"
            " mean_delivery_days from mart.mart_daily_orders",
        )
    }
    groups: dict[date, list[Order]] = defaultdict(list)
    for order in expected.orders.values():
        groups[order.purchase_date].append(order)
    wanted = {}
    for day, orders in groups.items():
        # The mean is over the orders with a delivery time, as the column is documented.
        days = [expected.delivery_days(order) for order in orders if expected.is_delivered(order)]
        wanted[day] = (
            len(orders),
            sum(expected.is_delivered(order) for order in orders),
            sum(expected.is_late(order) for order in orders),
            sum(order.status == "canceled" for order in orders),
            rounded(mean(days), 2) if days else None,
        )
    assert_same(actual, wanted, "mart.mart_daily_orders by purchase_date")


def test_revenue_per_day_state_and_category(warehouse, expected):
    actual = {
        row[:3]: row[3:]
        for row in query(
            warehouse,
            "select purchase_date, customer_state, product_category, order_count, item_count,"
            " gross_merchandise_value, freight_value from mart.mart_revenue",
        )
    }
    groups: dict[tuple[date, str, str], list[Item]] = defaultdict(list)
    for order, item in expected.billable_items():
        category = expected.product_category.get(item.product_id, "unknown")
        groups[order.purchase_date, expected.customer_state(order), category].append(item)
    wanted = {
        key: (
            len({item.order_id for item in items}),
            len(items),
            sum((item.price for item in items), Decimal(0)),
            sum((item.freight_value for item in items), Decimal(0)),
        )
        for key, items in groups.items()
    }
    assert_same(actual, wanted, "mart.mart_revenue by (purchase_date, customer_state, product_category)")
    total = sum((value[2] for value in actual.values()), Decimal(0))
    assert total == sum((item.price for _, item in expected.billable_items()), Decimal(0))


def test_delivery_performance_per_month_and_state(warehouse, expected):
    actual = {
        row[:2]: row[2:]
        for row in query(
            warehouse,
            "select purchase_month, customer_state, delivered_order_count, on_time_rate, mean_delivery_days,"
            " p90_delivery_days, mean_days_after_estimate, on_time_order_count, delivery_days_sum,"
            " promised_order_count, days_after_estimate_sum from mart.mart_delivery_performance",
        )
    }
    groups: dict[tuple[date, str], list[Order]] = defaultdict(list)
    for order in expected.orders.values():
        if expected.is_delivered(order):
            groups[order.purchase_month, expected.customer_state(order)].append(order)
    wanted = {}
    for key, orders in groups.items():
        days = [expected.delivery_days(order) for order in orders]
        after_estimate = [
            (order.delivered_to_customer_at.date() - order.estimated_delivery_date).days for order in orders
        ]
        wanted[key] = (
            len(orders),
            rounded(mean([0 if expected.is_late(order) else 1 for order in orders]), 4),
            rounded(mean(days), 2),
            rounded(float_to_numeric(percentile_cont([float(value) for value in days], 0.9)), 2),
            rounded(mean(after_estimate), 2),
            sum(not expected.is_late(order) for order in orders),
            sum(days, Decimal(0)),
            len(after_estimate),
            sum(after_estimate),
        )
    assert_same(actual, wanted, "mart.mart_delivery_performance by (purchase_month, customer_state)")


def test_seller_performance_per_seller(warehouse, expected):
    actual = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select seller_id, seller_state, is_in_sellers_file, order_count, item_count, revenue, review_count,"
            " mean_review_score, late_shipment_rate from mart.mart_seller_performance",
        )
    }
    sales: dict[str, list[tuple[Order, Item]]] = defaultdict(list)
    for order, item in expected.billable_items():
        sales[item.seller_id].append((order, item))
    wanted = {}
    for seller_id in expected.sellers.keys() | sales.keys():
        sold = sales.get(seller_id, [])
        order_ids = {order.order_id for order, _ in sold}
        scores = [review.score for order_id in order_ids for review in expected.reviews_of[order_id]]
        handed_over = [
            order.delivered_to_carrier_at > item.shipping_limit_at
            for order, item in sold
            if order.delivered_to_carrier_at is not None
        ]
        wanted[seller_id] = (
            expected.sellers[seller_id][2] if seller_id in expected.sellers else "unknown",
            seller_id in expected.sellers,
            len(order_ids),
            len(sold),
            sum((item.price for _, item in sold), Decimal(0)),
            len(scores),
            rounded(mean(scores), 2) if scores else None,
            rounded(mean([int(late) for late in handed_over]), 4) if handed_over else None,
        )
    assert_same(actual, wanted, "mart.mart_seller_performance by seller_id")


def expected_rfm(expected: Expected) -> dict[str, tuple]:
    """Per person with billable orders: order count, spent, first and last order, recency days, R, F, M, segment."""
    orders_of: dict[str, list[Order]] = defaultdict(list)
    for order in expected.orders.values():
        person = expected.customer_unique_id(order)
        if order.is_billable and person is not None:
            orders_of[person].append(order)
    spent = {
        person: sum((expected.items_value(order) + expected.freight_value(order) for order in orders), Decimal(0))
        for person, orders in orders_of.items()
    }
    last = {person: max(order.purchased_at for order in orders) for person, orders in orders_of.items()}
    reference_day = max(last.values()).date()
    by_recency = sorted(orders_of, key=lambda person: (last[person], person))
    by_spending = sorted(orders_of, key=lambda person: (spent[person], person))
    recency_score = dict(zip(by_recency, ntile(len(by_recency)), strict=True))
    monetary_score = dict(zip(by_spending, ntile(len(by_spending)), strict=True))
    wanted = {}
    for person, orders in orders_of.items():
        frequency = frequency_score(len(orders))
        wanted[person] = (
            len(orders),
            spent[person],
            min(order.purchased_at for order in orders),
            last[person],
            (reference_day - last[person].date()).days,
            recency_score[person],
            frequency,
            monetary_score[person],
            rfm_segment(recency_score[person], frequency, monetary_score[person]),
        )
    return wanted


def test_customer_analytics_per_person(warehouse, expected):
    actual = {
        row[0]: row[1:]
        for row in query(
            warehouse,
            "select customer_unique_id, order_count, total_spent, first_order_at, last_order_at, recency_days,"
            " recency_score, frequency_score, monetary_score, segment from mart.mart_customer_analytics",
        )
    }
    assert_same(actual, expected_rfm(expected), "mart.mart_customer_analytics by customer_unique_id")


def test_every_customer_carries_its_persons_current_segment(warehouse, expected):
    """Scored after the last window, customers of the first window included: the ranks are over everyone."""
    actual = dict(query(warehouse, "select customer_id, customer_segment from core.dim_customer"))
    segment_of = {person: figures[-1] for person, figures in expected_rfm(expected).items()}
    wanted = {
        customer_id: segment_of.get(customer.customer_unique_id, "unscored")
        for customer_id, customer in expected.customers.items()
    }
    assert_same(actual, wanted, "core.dim_customer.customer_segment by customer_id")
