"""The runner's metrics as an operator's Prometheus sees them.

The configuration shipped in deploy/prometheus/ passes promtool (config, rules, the rules' unit tests); its alert
rules name only metrics the runner exports, with their real labels; the ledger's metrics count what the ledger
holds; each command keeps its own group on a real Pushgateway; and a real Prometheus, with the shipped config and
rules, reads a real runner's metrics through all three paths (``metrics serve``, node_exporter's textfile
collector, the Pushgateway) while a window runs.

Prometheus, promtool, the Pushgateway and node_exporter are Debian's packages. Without them these tests skip
(outside CI) or fail (``OLIST_DW_REQUIRE_PROMETHEUS=1``, as ``.ci/run`` sets it).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import yaml
from conftest import unavailable
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from runner import ledger, metrics
from runner.errors import EXIT_OK, EXIT_SCHEMA_MISMATCH
from runner.olist import BY_ENTITY
from runner.settings import PIPELINE, PROJECT_DIR

DEPLOY = PROJECT_DIR / "deploy" / "prometheus"
CONFIG = DEPLOY / "prometheus.yml"
RULES = DEPLOY / "olist-dw-alerts.yml"
RULE_TESTS = DEPLOY / "olist-dw-alerts.test.yml"
NODE_EXPORTER_DEFAULTS = DEPLOY / "prometheus-node-exporter.default"
PUSHGATEWAY_DEFAULTS = DEPLOY / "prometheus-pushgateway.default"
PACKAGES = "prometheus prometheus-pushgateway prometheus-node-exporter"

OLIST = ("pipeline", PIPELINE)
# Labels a series gets from where it was scraped or pushed, not from the runner.
TARGET_LABELS = frozenset({"job", "instance", "command"})

T = TypeVar("T")


def binary(name: str) -> str:
    """The path of a Debian-packaged Prometheus program: skip without it, or fail where it is required (CI)."""
    found = shutil.which(name)
    if found is None:
        unavailable("PROMETHEUS", f"{name} is not installed (Debian: apt-get install {PACKAGES})")
    return found


# --- the shipped configuration, checked by promtool -------------------------------------------------------------


def test_shipped_config_and_alert_rules_pass_promtool() -> None:
    promtool = binary("promtool")
    for arguments in (
        ["check", "config", CONFIG.name],  # also checks the rule files it names
        ["check", "rules", RULES.name],
        ["test", "rules", RULE_TESTS.name],
    ):
        completed = subprocess.run(
            [promtool, *arguments], cwd=DEPLOY, capture_output=True, text=True, timeout=120, check=False
        )
        assert completed.returncode == 0, f"promtool {' '.join(arguments)}:\n{completed.stdout}{completed.stderr}"


def test_every_alert_is_unit_tested_firing_with_annotations() -> None:
    """promtool checks the tests that exist; this checks that each alert has one in which it fires."""
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert alerts - fired == set(), "alerts without a unit test in which they fire"
    for rule in (rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]):
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]


# --- the rules name what the runner exports ---------------------------------------------------------------------

QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"\b(olist_dw_[a-z_]+)\b(?:\{([^}]*)\})?")
MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
SAMPLE_SUFFIXES = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_count", "_sum"]}


def exported_series(dsn: str) -> dict[str, frozenset[str]]:
    """Every sample name the runner exports (``_total``, ``_bucket``...), with its label names.

    From the runner's own instruments (module-level in runner.metrics) and the families the ledger collector
    yields. prometheus_client keeps label names in ``_labelnames`` only, the same attribute on both kinds.
    """
    families: list[tuple[str, str, tuple[str, ...]]] = []
    for instrument in vars(metrics).values():
        if isinstance(instrument, MetricWrapperBase):
            [family] = instrument.describe()
            families.append((family.name, family.type, instrument._labelnames))
    for family in metrics.LedgerCollector(dsn).collect():
        families.append((family.name, family.type, family._labelnames))
    series = {}
    for name, kind, labels in families:
        for suffix in SAMPLE_SUFFIXES[kind]:
            series[name + suffix] = frozenset(labels) | ({"le"} if suffix == "_bucket" else set())
    return series


def test_alert_rules_and_their_tests_use_only_the_metrics_and_labels_the_runner_exports(connection, settings):
    exported = exported_series(settings.dsn)
    assert {"olist_dw_orders_loaded_total", "olist_dw_load_duration_seconds_count"} <= exported.keys()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            expression = QUOTED.sub('""', rule["expr"])  # a job="olist_dw_runner" names no metric
            named = SELECTOR.findall(expression)
            for name, matchers in named:
                assert name in exported, f"{rule['alert']}: {name} is not a metric the runner exports"
                used = set(MATCHER_LABEL.findall(matchers))
                assert used <= exported[name] | TARGET_LABELS, f"{rule['alert']}: {name}{{{matchers}}}"
            if named:
                known = set().union(*(exported[name] for name, _ in named)) | TARGET_LABELS
                for grouping in GROUPING.findall(expression):
                    labels = {label.strip() for label in grouping.split(",") if label.strip()}
                    assert labels <= known, f"{rule['alert']}: grouping by {labels - known}"
    # The unit tests' input series are the runner's series, with exactly their labels.
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for series in test["input_series"]:
            name, _, labels_text = series["series"].partition("{")
            if not name.startswith("olist_dw_"):
                continue
            labels = set(MATCHER_LABEL.findall(labels_text))
            assert name in exported, f"{test['name']}: {name} is not a metric the runner exports"
            assert labels - TARGET_LABELS == exported[name], f"{test['name']}: {series['series']}"


# --- what the ledger's metrics count -----------------------------------------------------------------------------

JAN, FEB, MAR, APR, MAY, JUN, JUL = (datetime(2017, month, 1) for month in range(1, 8))


def succeed(connection: psycopg.Connection, windows: list[tuple[datetime, datetime, int]], seconds: float) -> None:
    """Record windows built together by one runner run that took ``seconds``, with their orders in core."""
    runner_run_id = uuid.uuid4()
    run_ids = ledger.start_windows(
        connection, PIPELINE, [(start, end) for start, end, _ in windows], runner_run_id=runner_run_id
    )
    with connection.transaction():
        ledger.record_success(
            connection,
            run_ids,
            PIPELINE,
            None,
            invocation_id="inv",
            stage_durations_ms={},
            row_counts={
                run_id: {"merged_orders": orders} for run_id, (_, _, orders) in zip(run_ids, windows, strict=True)
            },
        )
    connection.execute(
        "update metadata.window_runs set started_at = finished_at - make_interval(secs => %s) where runner_run_id = %s",
        (seconds, runner_run_id),
    )


def fail(connection: psycopg.Connection, start: datetime, end: datetime, error_class: str, hours_ago: int) -> None:
    """Record a failed run of a window, started ``hours_ago`` (before any success recorded after it)."""
    run_ids = ledger.start_windows(connection, PIPELINE, [(start, end)], runner_run_id=uuid.uuid4())
    ledger.record_failure(connection, run_ids, error_class=error_class, message="it failed")
    connection.execute(
        "update metadata.window_runs set started_at = now() - make_interval(hours => %s) where run_id = %s",
        (hours_ago, run_ids[0]),
    )


def samples_of(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The registry's exposition, parsed back as a scraper reads it: (name, sorted labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_ledger_metrics_count_window_runs_their_orders_and_the_windows_still_failed(connection, settings):
    succeed(connection, [(JAN, FEB, 7)], seconds=42)
    succeed(connection, [(FEB, MAR, 3), (MAR, APR, 4)], seconds=200)  # one dbt build for two windows
    fail(connection, APR, MAY, "DataQualityStop", hours_ago=3)
    fail(connection, APR, MAY, "PipelineFailure", hours_ago=2)  # the latest failure's class counts
    fail(connection, MAY, JUN, "DataQualityStop", hours_ago=2)
    succeed(connection, [(MAY, JUN, 5)], seconds=1)  # rebuilt: no longer failed
    ledger.start_windows(connection, PIPELINE, [(JUN, JUL)], runner_run_id=uuid.uuid4())
    ledger.abandon_running(connection, PIPELINE)  # its runner died
    registry = CollectorRegistry()
    registry.register(metrics.LedgerCollector(settings.dsn))

    samples = samples_of(registry)

    assert samples[("olist_dw_orders_loaded_total", (OLIST,))] == 7 + 3 + 4 + 5
    assert samples[("olist_dw_load_duration_seconds_count", (OLIST,))] == 3  # runner runs, not windows
    assert samples[("olist_dw_load_duration_seconds_sum", (OLIST,))] == pytest.approx(
        243, abs=0.5
    )  # the updates' own milliseconds
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in samples.items()
        if name == "olist_dw_load_duration_seconds_bucket"
    }
    assert buckets == {
        "0.1": 0, "0.5": 0, "1.0": 1, "2.5": 1, "5.0": 1, "10.0": 1, "30.0": 1, "60.0": 2, "120.0": 2,
        "300.0": 3, "600.0": 3, "1800.0": 3, "+Inf": 3,
    }  # fmt: skip
    failed = {
        dict(labels)["error_class"]: value
        for (name, labels), value in samples.items()
        if name == "olist_dw_failed_windows"
    }
    assert failed == {"PipelineFailure": 1, "Abandoned": 1}


def test_an_empty_ledger_still_reports_its_counters(connection, settings):
    """Zero, not absent: OlistDwMetricsAbsent watches olist_dw_orders_loaded_total to tell "no data" from "blind"."""
    registry = CollectorRegistry()
    registry.register(metrics.LedgerCollector(settings.dsn))

    samples = samples_of(registry)

    assert samples[("olist_dw_orders_loaded_total", (OLIST,))] == 0
    assert samples[("olist_dw_load_duration_seconds_count", (OLIST,))] == 0
    assert not any(name == "olist_dw_failed_windows" for name, _ in samples)


def test_the_export_has_no_created_series_even_once_the_counters_have_samples(connection, settings, tmp_path):
    """A labelled counter with a sample would add ``<name>_created`` gauge families no rule or panel reads."""
    metrics.stage_failures.labels(stage="export", error_class="ExampleError")  # a child at zero: a sample
    exported = tmp_path / "olist_dw.prom"

    metrics.export(exported, settings.dsn)

    names = {family.name for family in text_string_to_metric_families(exported.read_text(encoding="utf-8"))}
    assert "olist_dw_stage_failures" in names
    assert not {name for name in names if name.endswith("_created")}


# --- real processes: Pushgateway, node_exporter, Prometheus ------------------------------------------------------


def free_port() -> int:
    """A loopback port free now (the processes started on it are ours; nothing listens on a fixed port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], T], what: str, timeout: float = 90) -> T:
    """Poll ``check`` until it returns something true (errors count as not yet); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError) as error:  # not listening yet, or not the answer yet
            last = error
        else:
            if result:
                return result
            last = result
        time.sleep(0.5)
    pytest.fail(f"gave up waiting for {what}; last: {last!r}")


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def shipped_args(defaults_file: Path, overrides: dict[str, str]) -> list[str]:
    """The ARGS of a shipped /etc/default file, with the values of the flags in ``overrides`` replaced.

    Each overridden flag must be in the file, so the test runs the flags the operator is told to use.
    """
    [line] = [line for line in defaults_file.read_text().splitlines() if line.startswith("ARGS=")]
    [value] = shlex.split(line.removeprefix("ARGS="))  # the shell's quoting of the assignment
    arguments = shlex.split(value)
    flags = {argument.split("=", 1)[0] for argument in arguments}
    assert overrides.keys() <= flags, f"{defaults_file.name} lacks {overrides.keys() - flags}"
    return [
        f"{flag}={overrides[flag]}" if flag in overrides else argument
        for argument in arguments
        for flag in [argument.split("=", 1)[0]]
    ]


class Processes:
    """Real child processes for one test, each logging to a file; all stopped at the end, by their own pids."""

    def __init__(self, log_dir: Path, stack: ExitStack) -> None:
        self.log_dir = log_dir
        self.stack = stack

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.stack.callback(log.close)
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.stack.callback(self._stop, process)
        return process

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)

    def logs(self) -> str:
        """Every process's log tail, for a failure message."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}" for path in self.log_dir.iterdir()
        )


@contextmanager
def processes(tmp_path: Path) -> Iterator[Processes]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    with ExitStack() as stack:
        started = Processes(log_dir, stack)
        try:
            yield started
        except BaseException:
            print(started.logs())  # shown by pytest with the failure
            raise


def start_pushgateway(started: Processes, tmp_path: Path) -> str:
    """Debian's Pushgateway with the shipped flags, on a free loopback port; its URL."""
    port = free_port()
    arguments = shipped_args(
        PUSHGATEWAY_DEFAULTS,
        {"--web.listen-address": f"127.0.0.1:{port}", "--persistence.file": str(tmp_path / "pushgateway.data")},
    )
    started.start("pushgateway", [binary("prometheus-pushgateway"), *arguments])
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(f"{url}/-/ready"), "the Pushgateway to be ready")
    return url


def pushed(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What the Pushgateway serves to Prometheus: (name, sorted labels) -> value, its own metrics left out."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(http_get(f"{url}/metrics"))
        for sample in family.samples
        if sample.name.startswith("olist_dw_")
    }


def test_each_command_keeps_its_own_group_on_the_pushgateway(connection, run_cli, settings, tmp_path):
    """A failed load stays on the Pushgateway (and alerting) after a `status`; the ledger's gauges are the newest."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / BY_ENTITY["orders"].file_name).write_text("order_id,customer\n1,2\n")
    env = {"OLIST_DW_DSN": settings.dsn}
    with processes(tmp_path) as started:
        gateway = start_pushgateway(started, tmp_path)

        failed_load = run_cli("--pushgateway", gateway, "load", "--source", str(bad), env=env)
        status = run_cli("--pushgateway", gateway, "status", env=env)

        assert failed_load.returncode == EXIT_SCHEMA_MISMATCH, failed_load.stderr
        assert status.returncode == EXIT_OK, status.stderr
        assert "metrics not written" not in failed_load.stderr + status.stderr
        samples = pushed(gateway)
        load_failure = (
            "olist_dw_stage_failures_total",
            (
                ("command", "load"), ("error_class", "SchemaMismatchError"), ("instance", ""),
                ("job", metrics.PUSH_JOB), ("stage", "load"),
            ),
        )  # fmt: skip
        assert samples[load_failure] == 1
        # The ledger's gauges: one group, no command label, replaced by the newest command.
        assert samples[("olist_dw_orders_loaded_total", (("instance", ""), ("job", metrics.PUSH_JOB), OLIST))] == 0
        assert not any(
            name.startswith("olist_dw_orders_loaded") and ("command" in dict(labels)) for name, labels in samples
        )


def prometheus_config(tmp_path: Path, ports: dict[str, int]) -> Path:
    """The shipped prometheus.yml with this test's ports, a one-second rhythm and no Alertmanager."""
    config = yaml.safe_load(CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting")
    config["rule_files"] = [str(DEPLOY / name) for name in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs.keys() == ports.keys()
    for name, port in ports.items():
        [static] = jobs[name]["static_configs"]
        [target] = static["targets"]
        assert target.startswith("127.0.0.1:"), target
        static["targets"] = [f"127.0.0.1:{port}"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus's HTTP API: its result vector."""
    answer = json.loads(http_get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def values_by_job(prometheus: str, expression: str) -> dict[str, float]:
    return {result["metric"].get("job", ""): float(result["value"][1]) for result in query(prometheus, expression)}


def firing(prometheus: str, alert: str) -> list[dict[str, str]]:
    """The labels of the alerts of that name that fire now."""
    answer = json.loads(http_get(f"{prometheus}/api/v1/alerts"))
    return [
        found["labels"]
        for found in answer["data"]["alerts"]
        if found["labels"]["alertname"] == alert and found["state"] == "firing"
    ]


@pytest.mark.slow
def test_prometheus_reads_a_window_run_through_metrics_serve_the_textfile_and_the_pushgateway(
    settings, run_cli, tmp_path
):
    """The shipped config and rules in a real Prometheus; a real runner loads and runs a window; the figures read
    back through Prometheus's HTTP API agree with the generated files and the ledger, on every path.

    ``settings`` is the home run_cli gives the runner, seeded with the worker's saved dbt parse (one parse less).
    """
    home = settings.home
    dsn = settings.dsn
    (home / "metrics").mkdir(parents=True, exist_ok=True)  # node_exporter reads it from the start
    data = tmp_path / "data"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / BY_ENTITY["orders"].file_name).write_text("order_id,customer\n1,2\n")
    env = {"OLIST_DW_DSN": dsn}
    generated = run_cli("generate", "--out", str(data), "--orders", "30", "--start", "2017-01-01", "--days", "2")
    assert generated.returncode == EXIT_OK, generated.stderr
    with (data / BY_ENTITY["orders"].file_name).open(encoding="utf-8-sig", newline="") as stream:
        purchases = [datetime.fromisoformat(row["order_purchase_timestamp"]) for row in csv.DictReader(stream)]
    first_day = [purchase for purchase in purchases if purchase < datetime(2017, 1, 2)]
    assert first_day and len(first_day) < len(purchases)  # the window leaves loaded data behind: a lag

    with processes(tmp_path) as started:
        gateway = start_pushgateway(started, tmp_path)
        node_port, serve_port, prometheus_port = free_port(), free_port(), free_port()
        node_arguments = shipped_args(
            NODE_EXPORTER_DEFAULTS,
            {"--web.listen-address": f"127.0.0.1:{node_port}", "--collector.textfile.directory": str(home / "metrics")},
        )
        # Only the textfile collector: the machine's own metrics are not what is tested, and cost a scrape.
        node_arguments += ["--collector.disable-defaults", "--collector.textfile"]
        started.start("node_exporter", [binary("prometheus-node-exporter"), *node_arguments])
        started.start(
            "metrics_serve",
            [sys.executable, "-m", "runner", "metrics", "serve", "--port", str(serve_port)],
            env={**os.environ, "OLIST_DW_HOME": str(home), **env},
        )
        config = prometheus_config(
            tmp_path, {"olist_dw": serve_port, "node": node_port, "pushgateway": int(gateway.rsplit(":", 1)[1])}
        )
        started.start(
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
        )
        prometheus = f"http://127.0.0.1:{prometheus_port}"
        wait_for(lambda: http_get(f"{prometheus}/-/ready"), "Prometheus to be ready")

        def targets_up() -> bool:
            targets = json.loads(http_get(f"{prometheus}/api/v1/targets"))["data"]["activeTargets"]
            return {target["labels"]["job"] for target in targets if target["health"] == "up"} == {
                "olist_dw",
                "node",
                "pushgateway",
            }

        wait_for(targets_up, "every scrape target up")

        # A load that fails: the shipped rule fires from what the runner pushed and wrote.
        failed = run_cli("--pushgateway", gateway, "load", "--source", str(bad), env=env)
        assert failed.returncode == EXIT_SCHEMA_MISMATCH, failed.stderr
        [alert] = wait_for(lambda: firing(prometheus, "OlistDwLoadFailed"), "OlistDwLoadFailed to fire")
        assert alert["error_class"] == "SchemaMismatchError"

        loaded = run_cli("--pushgateway", gateway, "load", "--source", str(data), env=env)
        assert loaded.returncode == EXIT_OK, loaded.stderr
        ran = run_cli("--pushgateway", gateway, "run", "--window", "2017-01-01..2017-01-02", env=env)
        assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr

        with psycopg.connect(dsn, autocommit=True) as connection:
            watermark = ledger.watermark(connection, PIPELINE)
            [(seconds,)] = connection.execute(
                "select extract(epoch from finished_at - started_at)::float8 from metadata.window_runs"
                " where status = 'succeeded'"
            ).fetchall()
        expected_lag = (max(purchases) - watermark).total_seconds()
        assert watermark == datetime(2017, 1, 2) and expected_lag > 0
        paths = {"olist_dw", "node", metrics.PUSH_JOB}  # metrics serve, the textfile, the Pushgateway

        def read(expression: str, expected: float) -> dict[str, float]:
            values = values_by_job(prometheus, expression)
            return (
                values if values.keys() == paths and all(v == pytest.approx(expected) for v in values.values()) else {}
            )

        wait_for(lambda: read("olist_dw_orders_loaded_total", len(first_day)), "olist_dw_orders_loaded_total")
        wait_for(lambda: read("olist_dw_load_duration_seconds_count", 1), "olist_dw_load_duration_seconds_count")
        wait_for(lambda: read("olist_dw_load_duration_seconds_sum", seconds), "olist_dw_load_duration_seconds_sum")
        wait_for(lambda: read("olist_dw_data_freshness_lag_seconds", expected_lag), "the data freshness lag")

        # The load's counters stay on the Pushgateway under its command after the run's push.
        raw_orders = values_by_job(prometheus, 'olist_dw_rows_loaded_total{table="raw.orders", command="load"}')
        assert raw_orders == {metrics.PUSH_JOB: len(purchases)}
        # The successful load replaced the failed one's group, and the run rewrote the file: resolved.
        wait_for(lambda: not firing(prometheus, "OlistDwLoadFailed"), "OlistDwLoadFailed to resolve")
        # Every shipped rule evaluates against the real series without error, and the signs of life that
        # OlistDwRunnerSilent watches exist under the names and labels it uses.
        groups = json.loads(http_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
        assert [
            (rule["name"], rule["health"]) for group in groups for rule in group["rules"] if rule["health"] != "ok"
        ] == []
        assert query(prometheus, 'node_textfile_mtime_seconds{file=~"(.*/)?olist_dw\\\\.prom"}')
        [age] = query(prometheus, 'time() - max(push_time_seconds{job="olist_dw_runner"})')
        assert float(age["value"][1]) < timedelta(minutes=15).total_seconds()
