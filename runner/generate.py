"""Synthetic Olist extract: the nine CSV files of the public Kaggle export, at any size, quirks included.

The real export is fixed at about 100k orders and cannot be shipped with the project, yet the pipeline has to be
tested (and benchmarked) on files shaped exactly like it. This module fakes them from a seeded ``random.Random``:
same options, byte-identical files. It deliberately mimics what the loader must survive in the real files even
when the data is clean: a byte-order mark on the customers file, CRLF line endings in the reviews file, no newline
after the last sellers row, ids quoted only when they start with a digit, review messages spanning several lines.
With ``dirty > 0`` it also injects the data-quality quirks of the real data (see ``Defect``), which the pipeline
must take in its stride; with ``malformed > 0``, rows that break the row rules (see ``Malformation``), which it
must quarantine. The generator returns where it put each of those, so a test can hold the quarantine to it.

Rows are streamed order by order into all files at once; only id pools (products, sellers, a sample of returning
buyers) and the set of zip prefixes used are kept in memory, so a million orders fit in a modest footprint.
"""

from __future__ import annotations

import math
import random
import re
from array import array
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path

from runner.olist import BY_ENTITY, SOURCE_FILES, SourceFile
from runner.reference_data import (
    CATEGORIES,
    GEO_JITTER,
    HAPPY_SCORE_CUM,
    INSTALLMENT_CUM,
    INSTALLMENTS,
    ITEM_COUNT_CUM,
    ITEM_COUNTS,
    LATE_RATE,
    LOCATION_CUM,
    LOCATIONS,
    MESSAGE_RATE,
    MESSAGES,
    MESSY_MESSAGES,
    PAYMENT_CUM,
    PAYMENT_TYPES,
    REPEAT_ITEM_RATE,
    RETURNING_RATE,
    REVIEW_RATE_DELIVERED,
    REVIEW_RATE_OTHER,
    SAO_PAULO,
    SAO_PAULO_SPELLINGS,
    SCORES,
    SPLIT_PAYMENT_RATE,
    STAGES_REACHED,
    STATUS_CUM,
    STATUSES,
    TITLE_RATE,
    TITLES,
    UNHAPPY_SCORE_CUM,
    UNTRANSLATED_CATEGORIES,
    Location,
)

_DAY = 86_400


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate; checked on construction so an invalid request fails before any file is touched."""

    out_dir: Path
    orders: int
    start: date
    days: int
    seed: int
    dirty: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        if self.orders < 1:
            raise ValueError(f"orders must be at least 1, got {self.orders}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if not 0.0 <= self.dirty <= 1.0:
            raise ValueError(f"dirty must be a rate between 0 and 1, got {self.dirty}")
        if not 0.0 <= self.malformed <= 1.0:
            raise ValueError(f"malformed must be a rate between 0 and 1, got {self.malformed}")


@dataclass(frozen=True)
class MalformedRow:
    """A row written to break a row rule: where it is, and the rule the quarantine must give."""

    file_name: str
    line: int
    rule: str


@dataclass(frozen=True)
class Extract:
    """What ``generate`` wrote: rows per file name, and every row that the quarantine must hold."""

    rows: dict[str, int]
    malformed: list[MalformedRow]


def generate(options: GenerateOptions) -> Extract:
    """Write the nine files into out_dir (created if missing); say what was written and what is malformed."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    return _Generator(options).run()


class Defect(Enum):
    """Data-quality defects of the real export, each injected at rate ``dirty``."""

    DUPLICATE_REVIEW_ID = "a review reuses the review_id of the previous review (of another order)"
    MESSY_REVIEW_TEXT = "review message with newlines, double quotes, commas and non-ASCII letters"
    ORDER_WITHOUT_ITEMS = "order with no order_items rows (its payments still sum to something)"
    PRODUCT_WITHOUT_CATEGORY = "product with empty category, name/description lenght and photos qty"
    UNTRANSLATED_CATEGORY = "product category absent from the translation file"
    ZIP_WITHOUT_LEADING_ZERO = "zip prefix such as 01310 written as 1310"
    PAYMENT_NOT_DEFINED = "payment of type not_defined"
    ZERO_INSTALLMENTS = "credit card payment with 0 installments"
    ZERO_PAYMENT_VALUE = "extra voucher payment of value 0.00"
    DELIVERED_WITHOUT_DATE = "delivered order with empty order_delivered_customer_date"
    CANCELED_WITH_DELIVERY = "canceled order carrying approval, carrier and customer delivery dates"
    REVIEW_BEFORE_DELIVERY = "review_creation_date before the order's delivery"
    ORDER_WITHOUT_PAYMENTS = "order with no order_payments rows"
    PAYMENT_SEQUENCE_GAP = "payment_sequential skipping a number (1, 3)"
    CITY_SPELLING = "sao paulo spelled another way"
    UNKNOWN_PRODUCT = "order item whose product_id is not in the products file"
    UNKNOWN_SELLER = "order item whose seller_id is not in the sellers file"
    UNKNOWN_CUSTOMER = "order whose customer_id is not in the customers file"


class Malformation(Enum):
    """Rows that break a row rule: (the rule that catches it, what it is). See ``_Malformations`` for the rate."""

    ORDER_REPEATED = ("duplicate_key", "an order's row twice in the file: the first one is quarantined")
    UNPARSEABLE_PURCHASE_TIME = (
        "unparseable_timestamp",
        "purchase time as 05/01/2017 10:00; the order's items, payments, review and customer become orphans",
    )
    PAYMENT_VALUE_WITH_COMMA = ("unparseable_number", "payment value 12,34: a spreadsheet's decimal comma")
    REVIEW_WITHOUT_ID = ("missing_key", "review with an empty review_id")
    REVIEW_SCORE_OUT_OF_RANGE = ("out_of_range", "review score 0")
    IMPOSSIBLE_ANSWER_DATE = ("unparseable_timestamp", "review answered on the 30th of February")

    @property
    def rule(self) -> str:
        return self.value[0]


_RETURNING_POOL = 10_000  # buyers remembered as candidates to come back; bounds memory

_REVIEW_MALFORMATIONS = (
    Malformation.REVIEW_WITHOUT_ID,
    Malformation.REVIEW_SCORE_OUT_OF_RANGE,
    Malformation.IMPOSSIBLE_ANSWER_DATE,
)

_NEEDS_QUOTES = re.compile(r'[",\r\n]')
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class _Layout:
    """How one file's bytes deviate from plain CSV in the real export."""

    bom: bool = False
    line_end: str = "\n"
    final_newline: bool = True


_LAYOUTS = {
    "customers": _Layout(bom=True),
    "order_reviews": _Layout(line_end="\r\n"),
    "sellers": _Layout(final_newline=False),
}


def _field(value: str, is_id: bool) -> str:
    """QUOTE_MINIMAL, plus the export's habit of quoting ids that start with a digit (and only those)."""
    if (is_id and value[:1] in _DIGITS) or _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


class _CsvFile:
    """One dataset file written row by row; the line ending goes before each row so the last one can lack it."""

    def __init__(self, directory: Path, source: SourceFile) -> None:
        self.rows = 0
        self.name = source.file_name
        self._next_line = 2  # the header is line 1
        self._layout = _LAYOUTS.get(source.entity, _Layout())
        # Hex ids only: order_item_id is a sequence number within its order, and the export never quotes it.
        self._is_id = tuple(column.endswith("_id") and column != "order_item_id" for column in source.columns)
        self._stream = (directory / source.file_name).open("w", encoding="utf-8", newline="", buffering=1 << 20)
        if self._layout.bom:
            self._stream.write("\ufeff")
        self._stream.write(",".join(source.columns))

    def write(self, *values: str) -> int:
        """Write one row; return the line it starts on, as an editor counts (quoted line breaks count)."""
        self._stream.write(self._layout.line_end)
        self._stream.write(",".join(_field(value, is_id) for value, is_id in zip(values, self._is_id, strict=True)))
        self.rows += 1
        line = self._next_line
        self._next_line += 1 + sum(value.count("\n") for value in values)
        return line

    def close(self) -> None:
        if self._layout.final_newline:
            self._stream.write(self._layout.line_end)
        self._stream.close()


class _Defects:
    """Decides where each defect lands, from its own seeded stream so that the choice is reproducible.

    Callers ask only where a defect can apply. The first such opportunity (per defect and file) always takes it,
    so that even a small extract generated with a tiny positive rate shows every defect at least once.
    """

    def __init__(self, rate: float, rng: random.Random) -> None:
        self._rate = rate
        self._rng = rng
        self._seen: set[tuple[Defect, str]] = set()

    def __call__(self, defect: Defect, scope: str = "") -> bool:
        if self._rate == 0.0:
            return False
        if (defect, scope) not in self._seen:
            self._seen.add((defect, scope))
            return True
        return self._rng.random() < self._rate


class _Malformations:
    """Decides which rows break a row rule, from its own seeded stream: ``malformed`` is a rate per row, not per rule.

    A row is drawn once, at rate ``malformed``, whatever number of rules it could break (a review: no id, a score
    of 0, an impossible answer date), and only then given one of them at random. So the rows of a file break a
    rule of their own at the rate asked, not at that rate once per rule: each entity's quarantined share of a
    window (what ``quarantine_max_share`` judges) is the rate asked at most, give or take chance, and a demo
    asked for less than the threshold passes it. The rows of an order whose purchase time is unreadable (half
    the broken orders) are orphans besides, in every file of the order; they belong to no window, and are about
    half the rate asked of each file (what ``unplaced_max_share`` judges). As with the defects, the first row
    that can break a rule breaks it, so that even a small extract shows every rule at least once.
    """

    def __init__(self, rate: float, rng: random.Random) -> None:
        self._rate = rate
        self._rng = rng
        self._seen: set[Malformation] = set()

    def __call__(self, *kinds: Malformation) -> Malformation | None:
        """The rule this row breaks, one of ``kinds``; None for a clean row."""
        if self._rate == 0.0:
            return None
        for kind in kinds:
            if kind not in self._seen:
                self._seen.add(kind)
                return kind
        if self._rng.random() < self._rate:
            return self._rng.choice(kinds)
        return None


@dataclass(frozen=True, slots=True)
class _Timeline:
    """An order's timestamps; None where its status says the step has not happened (or a defect erased it)."""

    purchase: datetime
    approved: datetime | None
    carrier: datetime | None
    delivered: datetime | None
    estimate: datetime


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(" ")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _money(cents: int) -> str:
    """Cents as a two-decimal amount; money is kept in integer cents so payments match items to the cent."""
    return f"{cents // 100}.{cents % 100:02d}"


def _skewed_index(rng: random.Random, size: int, power: float = 2.0) -> int:
    """An index in [0, size) favouring low ones: a few best sellers, a long tail, as in any shop."""
    return int(size * rng.random() ** power)


def _orderable(pool_size: int) -> int:
    """How much of a pool may be picked; the rest is never ordered (or never sells), as in the real files."""
    return pool_size - max(1, pool_size // 10)


def _split(rng: random.Random, cents: int, parts: int) -> list[int]:
    """``cents`` cut into ``parts`` positive amounts that sum back to it exactly."""
    cuts = sorted(rng.sample(range(1, cents), parts - 1))
    return [high - low for low, high in zip([0, *cuts], [*cuts, cents], strict=True)]


class _Generator:
    """Holds the seeded streams and id pools while the rows of all nine files are written."""

    def __init__(self, options: GenerateOptions) -> None:
        self._options = options
        self._rng = random.Random(options.seed)  # noqa: S311 - reproducible fake data, not secrets
        defect_rng = random.Random(self._rng.getrandbits(64))  # noqa: S311 - same
        self._defects = _Defects(options.dirty, defect_rng)
        # Its own stream, not drawn from the main one: the same seed gives the same extract with or without it.
        self._malformations = _Malformations(options.malformed, random.Random(options.seed ^ 0x6D616C66))  # noqa: S311
        self._malformed_rows: list[MalformedRow] = []
        self._cascading = False  # writing the rows of an order whose own row is malformed: all become orphans
        self._start = _midnight(options.start)
        self._files: dict[str, _CsvFile] = {}
        self._zips: dict[str, Location] = {}
        self._returning: list[tuple[str, str, str, str]] = []
        self._last_review_id: str | None = None
        self._seller_ids: list[str] = []
        self._product_ids: list[str] = []
        self._product_seller = array("I")
        self._product_price = array("I")

    def run(self) -> dict[str, int]:
        with ExitStack() as stack:
            for entity, source in BY_ENTITY.items():
                self._files[entity] = _CsvFile(self._options.out_dir, source)
                stack.callback(self._files[entity].close)
            self._write_translations()
            self._write_sellers()
            self._write_products()
            for _ in range(self._options.orders):
                self._write_order()
            self._write_geolocation()
        rows = {source.file_name: self._files[source.entity].rows for source in SOURCE_FILES}
        return Extract(rows, self._malformed_rows)

    def _malformed(self, *kinds: Malformation) -> Malformation | None:
        """The rule this row breaks, if any; never inside an order already broken, whose rows are orphans anyway."""
        return None if self._cascading else self._malformations(*kinds)

    def _mark(self, entity: str, line: int, rule: str) -> None:
        self._malformed_rows.append(MalformedRow(self._files[entity].name, line, rule))

    def _write(self, entity: str, *values: str) -> int:
        """Write a row of the current order's subtree; inside a broken order it is an orphan for the quarantine."""
        line = self._files[entity].write(*values)
        if self._cascading:
            self._mark(entity, line, "orphan_order")
        return line

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def _write_translations(self) -> None:
        for portuguese, english in CATEGORIES:
            self._files["product_category_name_translation"].write(portuguese, english)

    def _place(self, scope: str) -> tuple[str, str, str]:
        """Zip prefix, city and state as written for a customer or seller; the zip is remembered for geolocation."""
        lose_zero = self._defects(Defect.ZIP_WITHOUT_LEADING_ZERO, scope)
        respell = self._defects(Defect.CITY_SPELLING, scope)
        forced = lose_zero or respell  # both defects need a city whose zips start with 0 and has several spellings
        location = SAO_PAULO if forced else self._rng.choices(LOCATIONS, cum_weights=LOCATION_CUM)[0]
        zip_prefix = f"{self._rng.randint(location.zip_low, location.zip_high):05d}"
        self._zips[zip_prefix] = location
        city = self._rng.choice(SAO_PAULO_SPELLINGS) if respell else location.city
        return (zip_prefix.lstrip("0") if lose_zero else zip_prefix), city, location.state

    def _write_sellers(self) -> None:
        for _ in range(max(20, self._options.orders // 30)):
            seller_id = self._new_id()
            self._seller_ids.append(seller_id)
            self._files["sellers"].write(seller_id, *self._place("sellers"))

    def _write_products(self) -> None:
        rng = self._rng
        sellers = _orderable(len(self._seller_ids))
        for _ in range(max(50, self._options.orders // 3)):
            product_id = self._new_id()
            self._product_ids.append(product_id)
            self._product_seller.append(_skewed_index(rng, sellers, 1.5))
            self._product_price.append(round(min(150_000, max(500, math.exp(rng.gauss(8.9, 0.9))))))
            self._files["products"].write(product_id, *self._product_details())

    def _product_details(self) -> tuple[str, ...]:
        """The product columns after its id; a product without category also lacks the text-derived counts."""
        rng = self._rng
        weight = round(min(40_000, max(50, math.exp(rng.gauss(6.6, 1.1)))))
        size = (str(weight), str(rng.randint(16, 60)), str(rng.randint(2, 40)), str(rng.randint(11, 50)))
        if self._defects(Defect.PRODUCT_WITHOUT_CATEGORY):
            return ("", "", "", "", *size)
        if self._defects(Defect.UNTRANSLATED_CATEGORY):
            category = rng.choice(UNTRANSLATED_CATEGORIES)
        else:
            category = CATEGORIES[_skewed_index(rng, len(CATEGORIES), 1.6)][0]
        photos = min(20, 1 + int(rng.expovariate(0.8)))
        return (category, str(rng.randint(20, 64)), str(rng.randint(100, 3000)), str(photos), *size)

    def _write_order(self) -> None:
        order_id = self._new_id()
        malformation = self._malformed(Malformation.UNPARSEABLE_PURCHASE_TIME, Malformation.ORDER_REPEATED)
        broken = malformation is Malformation.UNPARSEABLE_PURCHASE_TIME
        self._cascading = broken
        customer_id = self._write_customer()
        status, timeline = self._timeline()
        purchase = timeline.purchase.strftime("%d/%m/%Y %H:%M") if broken else _stamp(timeline.purchase)
        row = (
            order_id,
            customer_id,
            status,
            purchase,
            _stamp(timeline.approved),
            _stamp(timeline.carrier),
            _stamp(timeline.delivered),
            _stamp(timeline.estimate),
        )
        line = self._files["orders"].write(*row)
        if broken:
            self._mark("orders", line, Malformation.UNPARSEABLE_PURCHASE_TIME.rule)
        elif malformation is Malformation.ORDER_REPEATED:
            self._files["orders"].write(*row)
            self._mark("orders", line, Malformation.ORDER_REPEATED.rule)
        total = self._write_items(order_id, timeline.purchase)
        if not self._defects(Defect.ORDER_WITHOUT_PAYMENTS):
            self._write_payments(order_id, total)
        self._write_review(order_id, timeline)
        self._cascading = False

    def _write_customer(self) -> str:
        """A fresh customer_id per order (as Olist does); the person behind it sometimes comes back."""
        customer_id = self._new_id()
        if self._defects(Defect.UNKNOWN_CUSTOMER):
            return customer_id
        if self._returning and self._rng.random() < RETURNING_RATE:
            person = self._rng.choice(self._returning)
        else:
            person = (self._new_id(), *self._place("customers"))
            if len(self._returning) < _RETURNING_POOL:
                self._returning.append(person)
            else:
                self._returning[self._rng.randrange(_RETURNING_POOL)] = person
        self._write("customers", customer_id, *person)
        return customer_id

    def _timeline(self) -> tuple[str, _Timeline]:
        """Status and timestamps: the whole journey is drawn, then cut where the status says it stopped."""
        rng = self._rng
        purchase = self._start + timedelta(seconds=rng.randrange(self._options.days * _DAY))
        estimate = _midnight(purchase.date() + timedelta(days=rng.randint(10, 30)))
        approved = purchase + timedelta(seconds=rng.randint(600, 2 * _DAY))
        carrier = approved + timedelta(seconds=rng.randint(_DAY, 4 * _DAY))
        if rng.random() < LATE_RATE:
            delivered: datetime | None = estimate + timedelta(seconds=rng.randint(3600, 15 * _DAY))
        else:
            slack = int((estimate - carrier).total_seconds()) - 3600
            delivered = carrier + timedelta(seconds=rng.randint(_DAY // 2, slack))
        if self._defects(Defect.CANCELED_WITH_DELIVERY):
            return "canceled", _Timeline(purchase, approved, carrier, delivered, estimate)
        status = rng.choices(STATUSES, cum_weights=STATUS_CUM)[0]
        if status == "delivered" and self._defects(Defect.DELIVERED_WITHOUT_DATE):
            delivered = None
        reached = STAGES_REACHED[status]
        if reached is None:
            reached = rng.randint(0, 1)
        return status, _Timeline(
            purchase,
            approved if reached >= 1 else None,
            carrier if reached >= 2 else None,
            delivered if reached >= 3 else None,
            estimate,
        )

    def _write_items(self, order_id: str, purchase: datetime) -> int:
        """Write the order's items; return what they cost with freight, in cents (made up if there are none)."""
        rng = self._rng
        if self._defects(Defect.ORDER_WITHOUT_ITEMS):
            return rng.randint(1_000, 50_000)
        shipping_limit = _stamp(purchase + timedelta(days=rng.randint(2, 7), seconds=rng.randrange(_DAY)))
        total = 0
        item: tuple[str, str, int, int] | None = None
        for number in range(1, rng.choices(ITEM_COUNTS, cum_weights=ITEM_COUNT_CUM)[0] + 1):
            if item is None or rng.random() >= REPEAT_ITEM_RATE:
                item = self._pick_item()
            product_id, seller_id, price, freight = item
            self._write(
                "order_items",
                order_id,
                str(number),
                product_id,
                seller_id,
                shipping_limit,
                _money(price),
                _money(freight),
            )
            total += price + freight
        return total

    def _pick_item(self) -> tuple[str, str, int, int]:
        """Product id, seller id, price and freight (cents) of one item; popular products come up more often."""
        rng = self._rng
        index = _skewed_index(rng, _orderable(len(self._product_ids)))
        product_id = self._new_id() if self._defects(Defect.UNKNOWN_PRODUCT) else self._product_ids[index]
        seller_id = self._seller_ids[self._product_seller[index]]
        if self._defects(Defect.UNKNOWN_SELLER):
            seller_id = self._new_id()
        freight = min(10_000, round(rng.expovariate(1 / 2_000)))
        return product_id, seller_id, self._product_price[index], freight

    def _write_payments(self, order_id: str, total: int) -> None:
        """Payments summing to ``total``: one usually, else vouchers first and the main means of payment last."""
        rng = self._rng
        gap = self._defects(Defect.PAYMENT_SEQUENCE_GAP)
        count = rng.randint(2, 3) if rng.random() < SPLIT_PAYMENT_RATE else 1
        if gap:
            count = max(count, 2)
        if self._defects(Defect.PAYMENT_NOT_DEFINED):
            main = "not_defined"
        else:
            main = rng.choices(PAYMENT_TYPES, cum_weights=PAYMENT_CUM)[0]
        types = ["voucher"] * (count - 1) + [main]
        shares = _split(rng, total, count)
        payments = [(kind, self._installments(kind), cents) for kind, cents in zip(types, shares, strict=True)]
        if self._defects(Defect.ZERO_PAYMENT_VALUE):
            payments.append(("voucher", 1, 0))
        for position, (kind, installments, cents) in enumerate(payments, start=1):
            sequential = position + 1 if gap and position > 1 else position
            value = _money(cents)
            comma = self._malformed(Malformation.PAYMENT_VALUE_WITH_COMMA) is not None
            line = self._write(
                "order_payments",
                order_id,
                str(sequential),
                kind,
                str(installments),
                value.replace(".", ",") if comma else value,
            )
            if comma:
                self._mark("order_payments", line, Malformation.PAYMENT_VALUE_WITH_COMMA.rule)

    def _installments(self, payment_type: str) -> int:
        if payment_type != "credit_card":
            return 1
        if self._defects(Defect.ZERO_INSTALLMENTS):
            return 0
        return self._rng.choices(INSTALLMENTS, cum_weights=INSTALLMENT_CUM)[0]

    def _write_review(self, order_id: str, timeline: _Timeline) -> None:
        """Most orders get a review; a late or missing delivery makes a bad score likelier."""
        rng = self._rng
        if rng.random() >= (REVIEW_RATE_DELIVERED if timeline.delivered else REVIEW_RATE_OTHER):
            return
        review_id = self._new_id()
        if self._last_review_id is not None and self._defects(Defect.DUPLICATE_REVIEW_ID):
            review_id = self._last_review_id
        self._last_review_id = review_id
        happy = timeline.delivered is not None and timeline.delivered <= timeline.estimate
        score = rng.choices(SCORES, cum_weights=HAPPY_SCORE_CUM if happy else UNHAPPY_SCORE_CUM)[0]
        title = rng.choice(TITLES) if rng.random() < TITLE_RATE else ""
        if self._defects(Defect.MESSY_REVIEW_TEXT):
            message = rng.choice(MESSY_MESSAGES)
        else:
            message = rng.choice(MESSAGES) if rng.random() < MESSAGE_RATE else ""
        created = self._review_creation(timeline)
        answered = _stamp(created + timedelta(days=rng.randint(1, 2), seconds=rng.randrange(_DAY)))
        malformation = self._malformed(*_REVIEW_MALFORMATIONS)
        if malformation is Malformation.REVIEW_WITHOUT_ID:
            review_id = ""
        elif malformation is Malformation.REVIEW_SCORE_OUT_OF_RANGE:
            score = 0
        elif malformation is Malformation.IMPOSSIBLE_ANSWER_DATE:
            answered = answered[:5] + "02-30" + answered[10:]
        line = self._write("order_reviews", review_id, order_id, str(score), title, message, _stamp(created), answered)
        if malformation is not None:
            self._mark("order_reviews", line, malformation.rule)

    def _review_creation(self, timeline: _Timeline) -> datetime:
        """The survey goes out the day after delivery, or after the promised date when nothing arrived."""
        rng = self._rng
        if timeline.delivered is None:
            return timeline.estimate + timedelta(days=rng.randint(1, 3))
        day = timeline.delivered.date()
        if self._defects(Defect.REVIEW_BEFORE_DELIVERY):
            furthest_back = max(1, min(5, (day - timeline.purchase.date()).days))
            return _midnight(day - timedelta(days=rng.randint(1, furthest_back)))
        return _midnight(day + timedelta(days=rng.randint(1, 2)))

    def _write_geolocation(self) -> None:
        """One to four points around each zip prefix customers and sellers use, in zip order like the real file."""
        rng = self._rng
        for zip_prefix in sorted(self._zips):
            location = self._zips[zip_prefix]
            for _ in range(rng.randint(1, 4)):
                lat = location.lat + rng.uniform(-GEO_JITTER, GEO_JITTER)
                lng = location.lng + rng.uniform(-GEO_JITTER, GEO_JITTER)
                written_zip = zip_prefix
                if zip_prefix.startswith("0") and self._defects(Defect.ZIP_WITHOUT_LEADING_ZERO, "geolocation"):
                    written_zip = zip_prefix.lstrip("0")
                city = location.city
                if location is SAO_PAULO and self._defects(Defect.CITY_SPELLING, "geolocation"):
                    city = rng.choice(SAO_PAULO_SPELLINGS)
                self._files["geolocation"].write(written_zip, repr(lat), repr(lng), city, location.state)
