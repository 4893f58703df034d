"""Prometheus metrics: what this command did (rows, errors, stage durations) and what the ledger says (freshness,
failed windows, window runs).

After every command the registry is written to a textfile-collector file (node_exporter's format), and pushed to
a Pushgateway when one is given; ``runner metrics serve`` exposes the ledger's gauges to a scraper. The operator's
side (scrape config, node_exporter's flags, alert rules and their unit tests) is in ``deploy/prometheus/``; the
rules name only metrics defined here.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    push_to_gateway,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from runner import database, ledger, quarantine
from runner.errors import UsageError
from runner.settings import PIPELINE

# A command's counters live as long as the command: their `_created` timestamps say only when it started, and in
# the text format each one is a gauge family of its own that no rule or panel reads. Export none.
disable_created_metrics()

STAGE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

registry = CollectorRegistry()
rows_loaded = Counter("olist_dw_rows_loaded", "Rows COPYed into raw, per table.", ["table"], registry=registry)
errors = Counter("olist_dw_errors", "Errors by class.", ["error_class"], registry=registry)
# Which stage a failure happened in: an error's class alone does not tell a failed load from a failed publish.
stage_failures = Counter(
    "olist_dw_stage_failures",
    "Runner stages that failed, by stage and error class.",
    ["stage", "error_class"],
    registry=registry,
)
stage_duration = Histogram(
    "olist_dw_stage_duration_seconds", "Duration of runner stages.", ["stage"], buckets=STAGE_BUCKETS, registry=registry
)


# Successful window runs: windows built together share one runner run (one dbt build, one publish), timed once;
# the durations' cumulative bucket counts, one per bound of the parameter array, in its order.
WINDOW_RUN_TOTALS = """
with runs as (
    select coalesce(runner_run_id, run_id) as runner_run_id,
        extract(epoch from max(finished_at) - min(started_at))::float8 as seconds,
        sum(coalesce((row_counts ->> 'merged_orders')::bigint, 0)) as merged_orders
    from metadata.window_runs
    where pipeline = %s and status = 'succeeded'
    group by 1
)
select
    coalesce((select sum(merged_orders) from runs), 0),
    coalesce((select sum(seconds) from runs), 0),
    (select count(*) from runs),
    array(
        select (select count(*) from runs where runs.seconds <= bounds.bound)
        from unnest(%s::float8[]) with ordinality as bounds (bound, position)
        order by bounds.position
    )
"""


class LedgerCollector(Collector):
    """Metrics read from the ledger at collection time, so they are right whichever runner did the work.

    Its counter and histogram (orders the window runs put into core, how long the runs took) are sums over the
    ledger, not over one process: they never reset when a runner exits, so every path (``metrics serve``, the
    textfile, the Pushgateway) reports the same monotonic figures, and they are always present (0 on an empty
    ledger) for an alert to tell "nothing ran yet" from "no metrics arrive".
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def collect(self) -> Iterator[Metric]:
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
            failures = ledger.uncovered_failures(connection, PIPELINE)
            outstanding = collections.Counter(error_class for _, _, error_class in failures)
            orders_loaded, duration_sum, runs, at_most = connection.execute(
                WINDOW_RUN_TOTALS, (PIPELINE, [float(bound) for bound in STAGE_BUCKETS])
            ).fetchone()
        # Cumulative buckets, labelled as prometheus_client labels its own histograms' (le="1.0"); +Inf is every run.
        buckets = [(floatToGoString(bound), float(count)) for bound, count in zip(STAGE_BUCKETS, at_most, strict=True)]
        buckets.append(("+Inf", float(runs)))
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
        failed = GaugeMetricFamily(
            "olist_dw_failed_windows",
            "Windows whose latest run failed and that no later success covers (what backfill rebuilds), by the "
            "error class of that run ('Abandoned': its runner died).",
            labels=["pipeline", "error_class"],
        )
        for error_class, count in sorted(outstanding.items()):
            failed.add_metric([PIPELINE, error_class], count)
        yield failed
        orders = CounterMetricFamily(
            "olist_dw_orders_loaded",
            "Orders in core.fact_orders for each window a successful run built, summed over those runs "
            "(a window built again counts again).",
            labels=["pipeline"],
        )
        orders.add_metric([PIPELINE], float(orders_loaded))
        yield orders
        durations = HistogramMetricFamily(
            "olist_dw_load_duration_seconds",
            "How long each successful window run took, from its start to its publish (one dbt build and publish of "
            "one or more contiguous windows).",
            labels=["pipeline"],
        )
        durations.add_metric([PIPELINE], buckets, sum_value=duration_sum)
        yield durations


def serve(dsn: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve the ledger's metrics on 127.0.0.1 for a Prometheus scraper, from a thread of its own; the caller
    waits on the thread and shuts the server down."""
    ledger_only = CollectorRegistry()
    ledger_only.register(LedgerCollector(dsn))
    return start_http_server(port, addr="127.0.0.1", registry=ledger_only)


PUSH_JOB = "olist_dw_runner"


def export(path: Path, dsn: str | None, pushgateway: str | None = None, command: str | None = None) -> None:
    """Write this command's metrics, with the ledger's gauges, to ``path``; push them too when asked.

    The ledger is read once, so the file and the Pushgateway say the same. For the Pushgateway, see ``push``.
    """
    ledger_families = list(LedgerCollector(dsn).collect()) if dsn else []
    combined = CollectorRegistry()
    combined.register(_Collected(lambda: registry.collect()))
    combined.register(_Collected(lambda: ledger_families))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), combined)
    if pushgateway:
        push(pushgateway, command, ledger_families if dsn else None)


def push(gateway: str, command: str | None, ledger_families: list[Metric] | None) -> None:
    """Push the command's own metrics under its name, and the ledger's gauges on their own.

    A push replaces its whole group. With one group per command (``command="load"``...), a failed load stays
    visible (and alerting) until the next load, not until any command, a ``status`` say, runs. The ledger's
    gauges go to a group of their own, replaced by every command that read the ledger, so that they are never
    older than the newest command's view of it, whichever command that was.
    """
    push_to_gateway(gateway, job=PUSH_JOB, grouping_key={"command": command or "none"}, registry=registry)
    if ledger_families is not None:
        ledger = CollectorRegistry()
        ledger.register(_Collected(lambda: ledger_families))
        push_to_gateway(gateway, job=PUSH_JOB, registry=ledger)


class _Collected(Collector):
    """Expose metric families collected elsewhere (another registry, the ledger read once) inside a registry."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        yield from self.families()
