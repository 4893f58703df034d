"""Operator views over the ledger: status (gaps, failures, freshness) and runs, for people and machines."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from runner import ledger, status
from runner.settings import PIPELINE

JAN, FEB, MAR, APR = (datetime(2017, month, 1) for month in (1, 2, 3, 4))


def record(connection, start, end, outcome):
    run_ids = ledger.start_windows(connection, PIPELINE, [(start, end)], runner_run_id=uuid.uuid4())
    if outcome == "succeeded":
        with connection.transaction():
            ledger.record_success(
                connection,
                run_ids,
                PIPELINE,
                end,
                invocation_id="inv",
                stage_durations_ms={"build": 5},
                row_counts={run_ids[0]: {"merged_orders": 7}},
            )
    else:
        ledger.record_failure(connection, run_ids, error_class="DataQualityStop", message="tests failed")


def test_status_reports_watermark_lag_a_gap_and_a_failed_window(connection):
    connection.execute("select set_config('olist_dw.batch_id', %s, false)", (str(uuid.uuid4()),))
    connection.execute("select set_config('olist_dw.source_file', 'test', false)")
    connection.execute(
        "insert into raw.orders (order_id, order_purchase_timestamp) values ('o1', '2017-04-20 10:00:00')"
    )
    record(connection, JAN, FEB, "succeeded")
    record(connection, MAR, APR, "succeeded")  # February is left out on purpose
    record(connection, FEB, MAR, "failed")

    report = status.collect(connection)

    assert report["watermark"] == APR
    assert report["newest_loaded_purchase"] == datetime(2017, 4, 20, 10)
    assert report["processing_lag_seconds"] == (datetime(2017, 4, 20, 10) - APR).total_seconds()
    assert report["gaps"] == [{"start": FEB, "end": MAR}]
    assert report["failed_windows"] == [{"start": FEB, "end": MAR, "reason": "DataQualityStop: tests failed"}]
    assert [run["status"] for run in report["recent_runs"]] == ["failed", "succeeded", "succeeded"]
    assert report["rows"]["raw.orders"] == 1


def test_runs_json_is_the_ledger_for_machines(connection, run_cli, dsn):
    record(connection, JAN, FEB, "succeeded")
    record(connection, FEB, MAR, "failed")

    completed = run_cli("--dsn", dsn, "runs", "--json")

    assert completed.returncode == 0, completed.stderr
    runs = json.loads(completed.stdout)
    assert [(run["window_start"], run["status"], run["error_class"]) for run in runs] == [
        ("2017-02-01 00:00:00", "failed", "DataQualityStop"),
        ("2017-01-01 00:00:00", "succeeded", None),
    ]
    assert runs[1]["row_counts"] == {"merged_orders": 7}
    failed_only = json.loads(run_cli("--dsn", dsn, "runs", "--json", "--status", "failed").stdout)
    assert [run["window_start"] for run in failed_only] == ["2017-02-01 00:00:00"]


def test_status_json_and_logs_parse(connection, run_cli, dsn, tmp_path):
    record(connection, JAN, FEB, "succeeded")
    (tmp_path / "in").mkdir()

    completed = run_cli("status", "--json", env={"OLIST_DW_DSN": dsn})
    loaded = run_cli("load", "--source", str(tmp_path / "in"), env={"OLIST_DW_DSN": dsn})

    assert json.loads(completed.stdout)["watermark"] == "2017-02-01 00:00:00"
    events = [json.loads(line) for line in loaded.stderr.splitlines() if line.strip()]
    assert [event["event"] for event in events] == ["load"]
    assert events[0]["status"] == "succeeded" and "duration_ms" in events[0]


def test_metrics_file_parses_with_prometheus_parser(connection, run_cli, dsn, tmp_path):
    record(connection, JAN, FEB, "succeeded")
    source = tmp_path / "in"
    source.mkdir()
    (source / "olist_sellers_dataset.csv").write_text(
        "seller_id,seller_zip_code_prefix,seller_city,seller_state\ns1,01310,sao paulo,SP\ns2,22041,rio,RJ\n"
    )

    completed = run_cli("--dsn", dsn, "load", "--source", str(source))

    assert completed.returncode == 0, completed.stderr
    text = (tmp_path / "home" / "metrics" / "olist_dw.prom").read_text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("olist_dw_rows_loaded_total", (("table", "raw.sellers"),))] == 2
    assert samples[("olist_dw_windows", (("pipeline", "olist"), ("status", "succeeded")))] == 1
    assert ("olist_dw_last_success_timestamp_seconds", (("pipeline", "olist"),)) in samples
    assert samples[("olist_dw_stage_duration_seconds_count", (("stage", "load"),))] == 1
