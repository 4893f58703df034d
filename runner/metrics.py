"""Prometheus metrics: what this command did (rows, errors, stage durations) and what the ledger says (freshness).

After every command the registry is written to a textfile-collector file (node_exporter's format), and pushed to
a Pushgateway when one is given; ``runner metrics serve`` exposes the ledger's gauges to a scraper.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, push_to_gateway, write_to_textfile
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runner import database, quarantine
from runner.errors import UsageError
from runner.settings import PIPELINE

STAGE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

registry = CollectorRegistry()
rows_loaded = Counter("olist_dw_rows_loaded", "Rows COPYed into raw, per table.", ["table"], registry=registry)
errors = Counter("olist_dw_errors", "Errors by class.", ["error_class"], registry=registry)
stage_duration = Histogram(
    "olist_dw_stage_duration_seconds", "Duration of runner stages.", ["stage"], buckets=STAGE_BUCKETS, registry=registry
)


class LedgerCollector(Collector):
    """Gauges read from the ledger at collection time, so they are right whichever runner did the work."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with database.connect(self.dsn) as connection:
            last_success, watermark, newest = connection.execute(
                "select (select extract(epoch from max(finished_at)) from metadata.window_runs"
                "        where pipeline = %s and status = 'succeeded'),"
                " (select extract(epoch from watermark) from metadata.watermarks where pipeline = %s),"
                " (select extract(epoch from max(metadata.purchase_time(order_purchase_timestamp)))"
                "  from raw.orders)",
                (PIPELINE, PIPELINE),
            ).fetchone()
            by_status = connection.execute(
                "select status, count(*) from metadata.window_runs where pipeline = %s group by status", (PIPELINE,)
            ).fetchall()
            try:
                quarantined = quarantine.summary(connection)
            except UsageError:  # no window built yet: nothing can be quarantined
                quarantined = []
        success = GaugeMetricFamily(
            "olist_dw_last_success_timestamp_seconds", "When a window last succeeded (Unix time).", labels=["pipeline"]
        )
        if last_success is not None:
            success.add_metric([PIPELINE], float(last_success))
        yield success
        lag = GaugeMetricFamily(
            "olist_dw_data_freshness_lag_seconds",
            "How far the newest loaded purchase is ahead of the watermark (0 when caught up).",
            labels=["pipeline"],
        )
        if newest is not None:
            lag.add_metric([PIPELINE], max(0.0, float(newest) - float(watermark or 0)))
        yield lag
        windows = GaugeMetricFamily("olist_dw_windows", "Ledger rows per status.", labels=["pipeline", "status"])
        for status, count in by_status:
            windows.add_metric([PIPELINE, status], count)
        yield windows
        held = GaugeMetricFamily(
            "olist_dw_quarantined_rows", "Rows the row rules hold in quarantine.", labels=["entity", "rule"]
        )
        for count in quarantined:
            held.add_metric([count.entity, count.rule], count.rows)
        yield held


def export(path: Path, dsn: str | None, pushgateway: str | None = None) -> None:
    """Write this command's metrics, with the ledger's gauges, to ``path``; push them too when asked."""
    combined = CollectorRegistry()
    combined.register(_Forward(registry))
    if dsn:
        combined.register(LedgerCollector(dsn))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), combined)
    if pushgateway:
        push_to_gateway(pushgateway, job="olist_dw_runner", registry=combined)


class _Forward(Collector):
    """Expose another registry's metrics inside a combined one."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[object]:
        yield from self.source.collect()
