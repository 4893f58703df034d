"""The executive dashboard as a person sees it: served by ``runner dashboard``, opened in headless Chromium.

marimo renders the page over a websocket after it loads, so Chromium is driven over the DevTools protocol
(``--remote-debugging-port``, the ``websockets`` client): the test waits until the KPI cards and every chart are
drawn, then reads the figures shown and compares them with the same figures queried from ``mart.*``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pytest
import websockets.sync.client

from runner import dashboard, generate, load, pipeline
from runner.settings import PROJECT_DIR, Settings

ARTIFACTS = PROJECT_DIR / "test-artifacts"  # git-ignored
WINDOW = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 3, 1))
WAIT_SECONDS = 180  # a deadline for the page to render, never a measured duration
# Every element matching a selector, inside marimo's shadow roots too (its outputs render in them).
DEEP_QUERY = """(selector) => {
    const found = [];
    const walk = (root) => {
        found.push(...root.querySelectorAll(selector));
        for (const element of root.querySelectorAll('*')) if (element.shadowRoot) walk(element.shadowRoot);
    };
    walk(document);
    return found;
}"""

# The visible text of the page and of every shadow root in it (marimo draws callouts and charts in them).
DEEP_TEXT = """(() => {
    const parts = [document.body.innerText];
    const walk = (root) => {
        for (const element of root.querySelectorAll('*')) {
            if (!element.shadowRoot) continue;
            for (const child of element.shadowRoot.children) if (child.innerText) parts.push(child.innerText);
            walk(element.shadowRoot);
        }
    };
    walk(document);
    return parts.join('\\n');
})()"""


class DevTools:
    """One headless Chromium page driven over the Chrome DevTools protocol; no network beyond localhost."""

    def __init__(self, executable: str, profile_dir: Path) -> None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        port_file = profile_dir / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self.log = (profile_dir / "chromium.log").open("w")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",  # as root (CI containers) Chromium refuses to start with its sandbox
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={profile_dir}",
                "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
                "about:blank",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        port = wait_for(lambda: port_file.exists() and port_file.read_text().split("\n")[0], "Chromium's port")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(target for target in json.load(response) if target["type"] == "page")
        self.socket = websockets.sync.client.connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)
        # A tall window: every panel is laid out and drawn, and the screenshot holds the whole page.
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=4200, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params: object) -> dict:
        """Send one command and return its result, skipping the events in between."""
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def deep(self, selector: str, script: str = "elements.length") -> object:
        """Evaluate ``script`` over ``elements``, every match of the selector in the page and its shadow roots."""
        return self.evaluate(f"(elements => {script})(({DEEP_QUERY})({json.dumps(selector)}))")

    def text(self) -> str:
        """The page's visible text, that of marimo's shadow roots (callouts, charts) included."""
        return str(self.evaluate(DEEP_TEXT))

    def wait_until(self, condition: str, what: str) -> None:
        """Poll a JavaScript condition until it holds; on the deadline, fail with what the page showed."""
        try:
            wait_for(lambda: self.evaluate(condition), what)
        except AssertionError as error:
            raise AssertionError(f"{error}; the page shows:\n{self.text()[:3000]}") from None

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        assert path.stat().st_size > 10_000, f"{path} is (nearly) empty"
        return path

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def wait_for(probe, what: str):
    """The probe's first truthy value, polled until a generous deadline."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.25)


@pytest.fixture
def devtools(browser, tmp_path: Path) -> Iterator[DevTools]:
    """A DevTools-driven Chromium; the ``browser`` fixture finds it (and skips or fails without one)."""
    driver = DevTools(browser.executable, tmp_path / "chromium")
    yield driver
    driver.close()


@contextlib.contextmanager
def served(settings: Settings, tmp_path: Path, **env: str) -> Iterator[str]:
    """``python -m runner dashboard`` as a real child process with the test's home and database; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path / "dashboard.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "dashboard", "--port", str(port)],
            cwd=PROJECT_DIR,
            env={**os.environ, "OLIST_DW_HOME": str(settings.home), "OLIST_DW_DSN": str(settings.dsn), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert process.poll() is None, f"the dashboard exited:\n{log_path.read_text()}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError):
                return False

        try:
            wait_for(answers, "the dashboard to answer")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


@pytest.fixture
def warehouse(settings: Settings, connection: psycopg.Connection, tmp_path: Path) -> Settings:
    """Two months of orders built and published by the runner."""
    data = tmp_path / "data"
    generate.generate(generate.GenerateOptions(data, 200, date(2017, 1, 1), 59, 7))
    load.load_directory(connection, data)
    pipeline.run_window(settings, settings.dsn, WINDOW)
    return settings


def money(text: str) -> Decimal:
    return Decimal(text.replace("R$", "").replace(",", "").strip())


def round2(value: Decimal) -> Decimal:
    """PostgreSQL's round(x, 2): ties away from zero."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def kpi(devtools: DevTools, key: str) -> str:
    return str(devtools.evaluate(f"document.querySelector('[data-kpi={json.dumps(key)}] [data-kpi-value]').innerText"))


def expected_kpis(connection: psycopg.Connection, first: date, end: date) -> dict[str, Decimal]:
    """The headline figures of [first, end) from mart_executive_kpis, as its column descriptions define them."""
    gmv, orders, billable, review = connection.execute(
        "select sum(gross_merchandise_value), sum(order_count), sum(billable_order_count), avg(mean_review_score)"
        " from mart.mart_executive_kpis where purchase_month >= %s and purchase_month < %s",
        (first, end),
    ).fetchone()
    return {"gmv": gmv, "orders": Decimal(orders), "aov": round2(gmv / billable), "review": round2(review)}


def shown_kpis(devtools: DevTools) -> dict[str, Decimal]:
    return {
        "gmv": money(kpi(devtools, "gmv")),
        "orders": Decimal(kpi(devtools, "orders").replace(",", "")),
        "aov": money(kpi(devtools, "aov")),
        "review": Decimal(kpi(devtools, "review")),
    }


def expected_charts(connection: psycopg.Connection, state: str | None) -> int:
    """Charts the page draws: monthly, by state, by category, two of delivery, segments, late sellers if any."""
    late_sellers = connection.execute(
        "select count(*) from mart.mart_seller_performance where late_shipment_rate is not null and item_count >= 3"
        " and (%s::text is null or seller_state = %s)",
        (state, state),
    ).fetchone()[0]
    return 6 + (1 if late_sellers else 0)


def wait_for_page(devtools: DevTools, cards: int, charts: int) -> None:
    devtools.wait_until(f"document.querySelectorAll('[data-kpi-value]').length >= {cards}", "the KPI cards")
    devtools.wait_until(
        f"({DEEP_QUERY})('.vega-embed canvas, .vega-embed svg.marks').length >= {charts}", f"{charts} drawn charts"
    )


@pytest.mark.slow
def test_the_dashboard_shows_the_marts_figures_for_the_chosen_filters(warehouse, connection, devtools, tmp_path):
    watermark, last_success = connection.execute(
        "select (select watermark from metadata.watermarks),"
        " (select max(finished_at) from metadata.window_runs where status = 'succeeded')"
    ).fetchone()
    with served(warehouse, tmp_path) as url:
        # By default: the latest month against the one before, all states.
        devtools.open(url)
        wait_for_page(devtools, 4, expected_charts(connection, None))
        assert shown_kpis(devtools) == expected_kpis(connection, date(2017, 2, 1), date(2017, 3, 1))
        text = devtools.text()
        assert f"watermark {watermark:%Y-%m-%d %H:%M}" in text
        assert f"last successful run {last_success:%Y-%m-%d %H:%M}" in text
        assert "Stale data" not in text  # built a minute ago, well inside the default 24 hours
        assert "vs Jan 2017" in text
        for panel in ("Revenue by state", "Revenue by category", "Delivery", "Customer segments", "Sellers shipping"):
            assert panel in text
        assert "Traceback" not in text
        devtools.screenshot("dashboard_executive")

        # Filters from the address: both months and the state with the most revenue.
        state = connection.execute(
            "select customer_state from mart.mart_revenue group by 1 order by sum(gross_merchandise_value) desc limit 1"
        ).fetchone()[0]
        devtools.open(f"{url}/?from=2017-01&to=2017-02&state={state}")
        wait_for_page(devtools, 5, expected_charts(connection, state))
        assert shown_kpis(devtools) == expected_kpis(connection, date(2017, 1, 1), date(2017, 3, 1))
        state_gmv = connection.execute(
            "select sum(gross_merchandise_value) from mart.mart_revenue"
            " where purchase_date >= '2017-01-01' and purchase_date < '2017-03-01' and customer_state = %s",
            (state,),
        ).fetchone()[0]
        assert money(kpi(devtools, "state-gmv")) == state_gmv
        on_time = connection.execute(
            "select sum(on_time_rate * delivered_order_count) / sum(delivered_order_count)"
            " from mart.mart_delivery_performance"
            " where purchase_month >= '2017-01-01' and purchase_month < '2017-03-01' and customer_state = %s",
            (state,),
        ).fetchone()[0]
        shown_on_time = devtools.evaluate("document.querySelector('[data-kpi=\"on-time\"]').innerText")
        assert shown_on_time == f"{on_time:.1%}"
        text = devtools.text()
        # The previous two months lie before the data: no change is claimed against them.
        assert "compared with Nov 2016 to Dec 2016" in text and "no full previous period in the data" in text
        assert "% vs" not in text
        # The panels whose mart has no state or no period say so.
        assert "mart_executive_kpis has no state" in text
        assert "mart_customer_analytics has no state and no period" in text
        assert "mart_seller_performance has no period" in text
        devtools.screenshot(f"dashboard_executive_{state}")

    # A threshold the last run is already past: the page warns that its figures are stale.
    with served(warehouse, tmp_path, OLIST_DW_DASHBOARD_STALE_HOURS="0.0001") as url:
        devtools.open(url)
        wait_for_page(devtools, 4, expected_charts(connection, None))
        assert "Stale data: the last successful run is older than 0 minutes" in devtools.text()


def test_an_empty_warehouse_gets_a_clear_message_and_is_not_written(settings, devtools, tmp_path):
    with served(settings, tmp_path) as url:
        devtools.open(url)
        devtools.wait_until(f"({DEEP_QUERY})('[data-empty-warehouse]').length > 0", "the empty-warehouse message")
        text = devtools.text()
        devtools.screenshot("dashboard_empty_warehouse")
    assert "The warehouse has no marts yet: the mart schema does not exist" in text
    assert "python -m runner demo" in text
    assert "Stale data: no window run has succeeded yet" in text
    assert "Traceback" not in text
    with psycopg.connect(settings.dsn, autocommit=True) as connection:
        # The dashboard only read: it did not even migrate the runner's schema.
        assert connection.execute("select to_regnamespace('metadata')").fetchone()[0] is None


def test_the_dashboard_session_is_read_only(settings):
    with dashboard.connect(settings) as connection, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connection.execute("create table written_by_the_dashboard (id integer)")
