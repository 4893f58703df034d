"""The synthetic extract must look like the Kaggle export byte for byte where the loader cares, and hold together.

Every check reads the written files back (with the csv module, or as raw text for the byte-level quirks), so the
tests say what a consumer of the files would see, not what the generator meant to write.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from runner.generate import GenerateOptions, generate
from runner.olist import BY_ENTITY, SOURCE_FILES

START = date(2017, 1, 1)
DAYS = 365
HEX_ID = re.compile(r"[0-9a-f]{32}")
SAO_PAULO_VARIANTS = {"são paulo", "sao paulo / sao paulo", "SAO PAULO"}
# Which of approved / carrier / customer-delivery timestamps each status carries; None: may or may not.
STATUS_STAMPS: dict[str, tuple[bool | None, bool, bool]] = {
    "created": (False, False, False),
    "approved": (True, False, False),
    "invoiced": (True, False, False),
    "processing": (True, False, False),
    "shipped": (True, True, False),
    "delivered": (True, True, True),
    "canceled": (None, False, False),
    "unavailable": (None, False, False),
}
ID_QUOTING_FILES = ("customers", "orders", "order_items", "order_payments", "products", "sellers")


def run(directory: Path, *, orders: int = 2000, seed: int = 7, dirty: float = 0.0) -> dict[str, int]:
    return generate(GenerateOptions(directory, orders=orders, start=START, days=DAYS, seed=seed, dirty=dirty)).rows


def read_rows(directory: Path, entity: str) -> list[dict[str, str]]:
    """Rows as a consumer sees them: utf-8-sig drops the customers BOM and is a no-op elsewhere."""
    with (directory / BY_ENTITY[entity].file_name).open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def read_tables(directory: Path) -> dict[str, list[dict[str, str]]]:
    return {source.entity: read_rows(directory, source.entity) for source in SOURCE_FILES}


def record_terminators(text: str) -> set[str]:
    """Line endings that end records, i.e. found outside quoted fields (doubled quotes toggle twice)."""
    found: set[str] = set()
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            found.add("\r\n" if text[index - 1 : index] == "\r" else "\n")
    return found


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def defects_found(tables: dict[str, list[dict[str, str]]]) -> dict[str, bool]:
    """Each injected defect, looked for in the files the way a data-quality test would."""
    orders, items, payments = tables["orders"], tables["order_items"], tables["order_payments"]
    reviews, products = tables["order_reviews"], tables["products"]
    delivered_at = {order["order_id"]: order["order_delivered_customer_date"] for order in orders}
    orders_with_items = {item["order_id"] for item in items}
    sequentials: dict[str, list[int]] = defaultdict(list)
    for payment in payments:
        sequentials[payment["order_id"]].append(int(payment["payment_sequential"]))
    review_orders: dict[str, set[str]] = defaultdict(set)
    for review in reviews:
        review_orders[review["review_id"]].add(review["order_id"])
    translated = {row["product_category_name"] for row in tables["product_category_name_translation"]}
    product_ids = {product["product_id"] for product in products}
    seller_ids = {seller["seller_id"] for seller in tables["sellers"]}
    customer_ids = {customer["customer_id"] for customer in tables["customers"]}
    zips = {
        entity: [row[f"{prefix}_zip_code_prefix"] for row in tables[entity]]
        for entity, prefix in (("customers", "customer"), ("sellers", "seller"), ("geolocation", "geolocation"))
    }
    cities = {
        entity: {row[f"{prefix}_city"] for row in tables[entity]}
        for entity, prefix in (("customers", "customer"), ("sellers", "seller"), ("geolocation", "geolocation"))
    }
    found = {
        "duplicate review_id": any(len(order_ids) > 1 for order_ids in review_orders.values()),
        "messy review text": any(
            all(mark in review["review_comment_message"] for mark in '\n",')
            and not review["review_comment_message"].isascii()
            for review in reviews
        ),
        "order without items": any(order["order_id"] not in orders_with_items for order in orders),
        "product without category": any(
            product["product_category_name"] == "" and product["product_name_lenght"] == "" for product in products
        ),
        "untranslated category": any(product["product_category_name"] not in translated | {""} for product in products),
        "payment not_defined": any(payment["payment_type"] == "not_defined" for payment in payments),
        "zero installments": any(payment["payment_installments"] == "0" for payment in payments),
        "zero payment value": any(cents(payment["payment_value"]) == 0 for payment in payments),
        "delivered without date": any(
            order["order_status"] == "delivered" and order["order_delivered_customer_date"] == "" for order in orders
        ),
        "canceled with delivery": any(
            order["order_status"] == "canceled" and order["order_delivered_customer_date"] != "" for order in orders
        ),
        "review before delivery": any(
            delivered_at[review["order_id"]] and review["review_creation_date"] < delivered_at[review["order_id"]]
            for review in reviews
        ),
        "order without payments": any(order["order_id"] not in sequentials for order in orders),
        "payment sequence gap": any(sorted(seqs) != list(range(1, len(seqs) + 1)) for seqs in sequentials.values()),
        "unknown product": any(item["product_id"] not in product_ids for item in items),
        "unknown seller": any(item["seller_id"] not in seller_ids for item in items),
        "unknown customer": any(order["customer_id"] not in customer_ids for order in orders),
    }
    for entity in zips:
        found[f"zip without leading zero in {entity}"] = any(len(zip_prefix) == 4 for zip_prefix in zips[entity])
        found[f"sao paulo spelled otherwise in {entity}"] = bool(cities[entity] & SAO_PAULO_VARIANTS)
    return found


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    directory = tmp_path_factory.mktemp("clean")
    return directory, run(directory)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    directory = tmp_path_factory.mktemp("dirty")
    return directory, run(directory, dirty=0.05)


@pytest.fixture(scope="module")
def clean_tables(clean: tuple[Path, dict[str, int]]) -> dict[str, list[dict[str, str]]]:
    return read_tables(clean[0])


@pytest.mark.parametrize("extract", ["clean", "dirty"])
def test_headers_are_the_kaggle_headers(extract: str, request: pytest.FixtureRequest) -> None:
    directory, _ = request.getfixturevalue(extract)
    for source in SOURCE_FILES:
        with (directory / source.file_name).open(encoding="utf-8-sig", newline="") as stream:
            assert tuple(next(csv.reader(stream))) == source.columns, source.file_name


@pytest.mark.parametrize("extract", ["clean", "dirty"])
def test_only_customers_starts_with_a_byte_order_mark(extract: str, request: pytest.FixtureRequest) -> None:
    directory, _ = request.getfixturevalue(extract)
    for source in SOURCE_FILES:
        has_bom = (directory / source.file_name).read_bytes().startswith(b"\xef\xbb\xbf")
        assert has_bom == (source.entity == "customers"), source.file_name


@pytest.mark.parametrize("extract", ["clean", "dirty"])
def test_line_endings_are_crlf_only_in_reviews_and_sellers_lacks_the_last(
    extract: str, request: pytest.FixtureRequest
) -> None:
    directory, _ = request.getfixturevalue(extract)
    for source in SOURCE_FILES:
        text = (directory / source.file_name).read_bytes().decode("utf-8")  # no newline translation
        line_end = "\r\n" if source.entity == "order_reviews" else "\n"
        assert record_terminators(text) == {line_end}, source.file_name
        assert text.endswith(line_end) == (source.entity != "sellers"), source.file_name


def test_review_messages_span_lines_inside_quotes(clean: tuple[Path, dict[str, int]]) -> None:
    messages = [review["review_comment_message"] for review in read_rows(clean[0], "order_reviews")]
    assert any("\n" in message for message in messages)


def test_ids_are_quoted_exactly_when_they_start_with_a_digit(clean: tuple[Path, dict[str, int]]) -> None:
    directory, _ = clean
    quoted_seen = unquoted_seen = False
    for entity in ID_QUOTING_FILES:
        source = BY_ENTITY[entity]
        # These files hold no commas, quotes or newlines inside values, so splitting lines shows the raw fields.
        lines = (directory / source.file_name).read_text(encoding="utf-8").splitlines()[1:]
        for line in lines:
            for column, raw in zip(source.columns, line.split(","), strict=True):
                is_quoted = raw.startswith('"') and raw.endswith('"')
                if column == "order_item_id":
                    assert not is_quoted, (entity, line)
                elif column.endswith("_id"):
                    assert is_quoted == raw.strip('"')[:1].isdigit(), (entity, line)
                    quoted_seen |= is_quoted
                    unquoted_seen |= not is_quoted
                else:
                    assert '"' not in raw, (entity, line)
    assert quoted_seen
    assert unquoted_seen


def test_returned_counts_are_the_rows_in_each_file(clean: tuple[Path, dict[str, int]]) -> None:
    directory, counts = clean
    assert counts == {source.file_name: len(read_rows(directory, source.entity)) for source in SOURCE_FILES}
    assert counts[BY_ENTITY["orders"].file_name] == 2000


def test_same_options_give_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other"
    run(first, orders=300, dirty=0.05)
    run(second, orders=300, dirty=0.05)
    run(other, orders=300, seed=8, dirty=0.05)
    for source in SOURCE_FILES:
        assert (first / source.file_name).read_bytes() == (second / source.file_name).read_bytes(), source.file_name
    orders_file = BY_ENTITY["orders"].file_name
    assert (first / orders_file).read_bytes() != (other / orders_file).read_bytes()


def test_clean_extract_is_referentially_sound(clean_tables: dict[str, list[dict[str, str]]]) -> None:
    customer_ids = {customer["customer_id"] for customer in clean_tables["customers"]}
    product_ids = {product["product_id"] for product in clean_tables["products"]}
    seller_ids = {seller["seller_id"] for seller in clean_tables["sellers"]}
    order_ids = {order["order_id"] for order in clean_tables["orders"]}
    owed: Counter[str] = Counter()
    for item in clean_tables["order_items"]:
        assert item["product_id"] in product_ids
        assert item["seller_id"] in seller_ids
        owed[item["order_id"]] += cents(item["price"]) + cents(item["freight_value"])
    paid: Counter[str] = Counter()
    for payment in clean_tables["order_payments"]:
        paid[payment["order_id"]] += cents(payment["payment_value"])
    assert all(order["customer_id"] in customer_ids for order in clean_tables["orders"])
    assert all(review["order_id"] in order_ids for review in clean_tables["order_reviews"])
    assert set(owed) == set(paid) == order_ids
    assert paid == owed


def test_clean_timestamps_follow_the_status(clean_tables: dict[str, list[dict[str, str]]]) -> None:
    first = datetime.combine(START, time())
    end = first + timedelta(days=DAYS)
    for order in clean_tables["orders"]:
        approved, carrier, delivered = STATUS_STAMPS[order["order_status"]]
        purchase = datetime.fromisoformat(order["order_purchase_timestamp"])
        estimate = datetime.fromisoformat(order["order_estimated_delivery_date"])
        assert first <= purchase < end
        assert estimate.time().isoformat() == "00:00:00"
        assert 10 <= (estimate.date() - purchase.date()).days <= 30
        if approved is not None:
            assert (order["order_approved_at"] != "") == approved, order
        assert (order["order_delivered_carrier_date"] != "") == carrier, order
        assert (order["order_delivered_customer_date"] != "") == delivered, order
        stamps = [order[column] for column in list(order)[3:7] if order[column]]
        assert stamps == sorted(stamps), order


def test_clean_extract_has_the_real_shape(clean_tables: dict[str, list[dict[str, str]]]) -> None:
    orders = clean_tables["orders"]
    statuses = Counter(order["order_status"] for order in orders)
    delivered = [order for order in orders if order["order_status"] == "delivered"]
    late = [
        order for order in delivered if order["order_delivered_customer_date"] > order["order_estimated_delivery_date"]
    ]
    assert 0.93 < statuses["delivered"] / len(orders) < 0.99
    assert 0.04 < len(late) / len(delivered) < 0.13
    assert len(clean_tables["order_reviews"]) > 0.95 * len(delivered)
    unique_ids = Counter(customer["customer_unique_id"] for customer in clean_tables["customers"])
    assert 0.02 < sum(count - 1 for count in unique_ids.values()) / len(orders) < 0.08
    items = clean_tables["order_items"]
    assert {item["product_id"] for item in items} < {product["product_id"] for product in clean_tables["products"]}
    assert {item["seller_id"] for item in items} < {seller["seller_id"] for seller in clean_tables["sellers"]}
    assert {item["order_item_id"] for item in items} == {"1", "2", "3"}
    payment_types = Counter(payment["payment_type"] for payment in clean_tables["order_payments"])
    assert set(payment_types) == {"credit_card", "boleto", "voucher", "debit_card"}
    assert payment_types.most_common(1)[0][0] == "credit_card"
    scores = Counter(review["review_score"] for review in clean_tables["order_reviews"])
    assert set(scores) == {"1", "2", "3", "4", "5"}
    assert scores.most_common(1)[0][0] == "5"


def test_clean_ids_zips_and_places_look_real(clean_tables: dict[str, list[dict[str, str]]]) -> None:
    for entity in ("customers", "orders", "order_items", "order_payments", "order_reviews", "products", "sellers"):
        for row in clean_tables[entity]:
            for column, value in row.items():
                if column.endswith("_id") and column != "order_item_id":
                    assert HEX_ID.fullmatch(value), (entity, column, value)
    customers, sellers = clean_tables["customers"], clean_tables["sellers"]
    zips = {row["customer_zip_code_prefix"] for row in customers} | {row["seller_zip_code_prefix"] for row in sellers}
    assert all(re.fullmatch(r"\d{5}", zip_prefix) for zip_prefix in zips)
    assert any(zip_prefix.startswith("0") for zip_prefix in zips)
    states = Counter(row["customer_state"] for row in customers)
    assert states.most_common(1)[0][0] == "SP"
    geolocation = clean_tables["geolocation"]
    assert zips == {row["geolocation_zip_code_prefix"] for row in geolocation}
    for row in geolocation:
        assert -33 <= float(row["geolocation_lat"]) <= 5
        assert -74 <= float(row["geolocation_lng"]) <= -34
        assert len(row["geolocation_lat"].split(".")[1]) >= 6
    translated = {row["product_category_name"] for row in clean_tables["product_category_name_translation"]}
    assert {product["product_category_name"] for product in clean_tables["products"]} <= translated
    assert {"cama_mesa_banho": "bed_bath_table"}.items() <= {
        row["product_category_name"]: row["product_category_name_english"]
        for row in clean_tables["product_category_name_translation"]
    }.items()


def test_clean_extract_has_no_defects(clean_tables: dict[str, list[dict[str, str]]]) -> None:
    assert [name for name, found in defects_found(clean_tables).items() if found] == []


def test_dirty_extract_has_every_defect(dirty: tuple[Path, dict[str, int]]) -> None:
    assert [name for name, found in defects_found(read_tables(dirty[0])).items() if not found] == []


def test_small_extract_at_a_low_rate_still_has_every_defect(tmp_path: Path) -> None:
    run(tmp_path, orders=100, dirty=0.01)
    assert [name for name, found in defects_found(read_tables(tmp_path)).items() if not found] == []


def test_dirty_rate_scales_the_defects(dirty: tuple[Path, dict[str, int]]) -> None:
    orders = read_rows(dirty[0], "orders")
    without_date = [o for o in orders if o["order_status"] == "delivered" and not o["order_delivered_customer_date"]]
    assert 0.02 * len(orders) < len(without_date) < 0.08 * len(orders)


def test_malformed_is_a_rate_per_row_whatever_the_rules_a_file_can_break(tmp_path: Path) -> None:
    """A review can break three rules, an order two: each file still gets the rate asked, not once per rule.

    The quarantine threshold judges each entity's share of a window (orphans of an order in no window aside, which
    a share of each file judges), so `demo --dirty 0.02` must stay well under the 5% allowed in every file.
    """
    rate = 0.02
    extract = generate(GenerateOptions(tmp_path, orders=5000, start=START, days=90, seed=7, malformed=rate))
    own = Counter(row.file_name for row in extract.malformed if row.rule != "orphan_order")
    orphans = Counter(row.file_name for row in extract.malformed if row.rule == "orphan_order")
    for entity in ("orders", "order_payments", "order_reviews"):
        file_name = BY_ENTITY[entity].file_name
        assert 0.5 * rate < own[file_name] / extract.rows[file_name] < 1.5 * rate, entity
    for entity in ("customers", "orders", "order_items", "order_payments", "order_reviews"):
        file_name = BY_ENTITY[entity].file_name
        assert own[file_name] + orphans[file_name] < 2 * rate * extract.rows[file_name], entity
    assert {row.rule for row in extract.malformed} == {
        "duplicate_key",
        "unparseable_timestamp",
        "unparseable_number",
        "missing_key",
        "out_of_range",
        "orphan_order",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"orders": 0}, "orders must be at least 1"),
        ({"days": 0}, "days must be at least 1"),
        ({"dirty": -0.1}, "dirty must be a rate between 0 and 1"),
        ({"dirty": 1.5}, "dirty must be a rate between 0 and 1"),
        ({"dirty": float("nan")}, "dirty must be a rate between 0 and 1"),
    ],
)
def test_invalid_options_are_refused(tmp_path: Path, changes: dict[str, float], message: str) -> None:
    arguments = {"orders": 10, "start": START, "days": 10, "seed": 1, "dirty": 0.0} | changes
    with pytest.raises(ValueError, match=message):
        generate(GenerateOptions(tmp_path / "out", **arguments))
    assert not (tmp_path / "out").exists()
