"""The command line as a user meets it, in real child processes: help, clear errors and exit codes, the demo."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
from conftest import open_page, screenshot, visible_text
from playwright.sync_api import Page
from psycopg import conninfo, sql

from runner.errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_SCHEMA_MISMATCH, EXIT_USAGE
from runner.olist import BY_ENTITY
from runner.settings import PROJECT_DIR

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/olist_dw"


def assert_one_clear_line(completed, exit_code: int, expected: str) -> None:
    assert completed.returncode == exit_code, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:") or line.startswith("Error:")]
    assert len(errors) == 1, completed.stderr
    assert re.search(expected, errors[0]), errors[0]


def test_help_lists_the_commands(run_cli):
    completed = run_cli("--help")

    assert completed.returncode == EXIT_OK
    for command in ("demo", "generate", "load", "run", "deps", "db"):
        assert re.search(rf"^\s+{command}\s", completed.stdout, re.MULTILINE), command


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["run", "--window", "2017-01-01"], "must be START..END"),
        (["run", "--window", "2017-01-01..2017-13-01"], "not a real date"),
        (["run", "--window", "2017-02-01..2017-01-01"], "must end after it starts"),
        (["load", "--source", "/nonexistent/olist"], "source folder not found: /nonexistent/olist"),
        (["generate", "--out", "x", "--orders", "0"], "Invalid value for '--orders'"),
        (["run", "--target", "oracle"], "Invalid value for '--target'"),
    ],
)
def test_bad_arguments_get_one_line_and_the_usage_code(run_cli, arguments, expected):
    assert_one_clear_line(run_cli("--dsn", UNREACHABLE, *arguments), EXIT_USAGE, expected)


def test_an_unknown_target_in_the_environment_gets_one_line(run_cli):
    completed = run_cli("--dsn", UNREACHABLE, "run", env={"OLIST_DW_TARGET": "oracle"})
    assert_one_clear_line(completed, EXIT_USAGE, "OLIST_DW_TARGET must be one of postgres, sail; got 'oracle'")


def test_unreachable_database_gets_one_line(run_cli, tmp_path):
    (tmp_path / "in").mkdir()

    completed = run_cli("--dsn", UNREACHABLE, "load", "--source", str(tmp_path / "in"))

    assert_one_clear_line(completed, EXIT_ENVIRONMENT, r"cannot connect to the database \(.*port=1")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "olist_orders_dataset.csv: the file is empty"),
        (b"order_id,customer\n", "olist_orders_dataset.csv: header does not match.*missing columns: customer_id"),
    ],
)
def test_bad_files_get_one_line_and_the_schema_code(run_cli, dsn, tmp_path, content, expected):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / BY_ENTITY["orders"].file_name).write_bytes(content)

    completed = run_cli("--dsn", dsn, "load", "--source", str(tmp_path / "in"))

    assert_one_clear_line(completed, EXIT_SCHEMA_MISMATCH, expected)


@pytest.mark.slow
def test_demo_on_the_embedded_database_twice_gives_the_same_counts(run_cli, tmp_path, page):
    first = run_cli("demo")
    second = run_cli("demo")
    report = run_cli("report")
    docs = run_cli("docs", "--no-serve")
    served, pages = fetch_served_docs(tmp_path / "home", page)
    run_cli("db", "stop")

    # As a person sees them in a browser: the docs site's lineage from staging to the marts and their consumers ...
    fact_orders, dashboard_page = (text.replace(" ", "") for text in pages)
    assert "fact_orders" in fact_orders and "DependsOn" in fact_orders and "stg_olist__orders" in fact_orders
    assert "mart_executive_kpis" in fact_orders  # referenced by
    assert "Executivedashboard" in dashboard_page and "mart_executive_kpis" in dashboard_page
    # ... and Elementary's report listing our tests with their results.
    report_url = Path(report.stdout.strip()).as_uri()
    open_page(page, report_url + "#/report/test-results")
    page.locator("tbody tr").first.wait_for()  # the table of test results is drawn
    tests_page = visible_text(page)
    rows = re.findall(
        r"\b((?:stg_olist__|dim_|fact_|mart_)\w+) (\S+) (\w+) (\w+) dbt [\d/]+ [\d:]+ [AP]M (Passed|Failed|Warning)",
        tests_page,
    )
    assert len(rows) >= 10 and {row[4] for row in rows} == {"Passed"}, tests_page[:3000]
    # Every test a window build runs has its latest result there: about ninety, each core model's row rules
    # being one row_invariants test.
    assert int(re.search(r"Passed \((\d+)\)", tests_page)[1]) > 60
    assert "row_invariants" in tests_page
    screenshot(page, "elementary_test_results")
    open_page(page, report_url)
    page.get_by_text("Test results breakdown").wait_for()  # the dashboard's first chart
    screenshot(page, "elementary_dashboard")

    # dbt docs: the lineage runs from the sources to the exposures of the marts' consumers, served on localhost.
    assert docs.returncode == EXIT_OK, docs.stderr[-3000:]
    site = Path(docs.stdout.strip()).parent
    manifest = json.loads((site / "manifest.json").read_text())
    dashboard = manifest["exposures"]["exposure.olist_dw.executive_dashboard"]
    assert "model.olist_dw.mart_executive_kpis" in dashboard["depends_on"]["nodes"]
    assert "model.olist_dw.fact_orders" in json.loads((site / "catalog.json").read_text())["nodes"]
    assert served["index.html"].startswith(b"<!doctype html>") or b"<html" in served["index.html"][:2000]
    assert b"executive_dashboard" in served["manifest.json"]

    # Elementary's report, written offline, lists our models with the results of their tests, tracking off.
    assert report.returncode == EXIT_OK, report.stderr[-3000:]
    html = Path(report.stdout.strip()).read_text()
    data = json.loads(base64.b64decode(re.search(r"elementaryData = JSON.parse\(atob\('([^']+)'\)\)", html)[1]))
    assert "model.olist_dw.fact_orders" in data["models"]
    assert data["test_results_totals"]["model.olist_dw.fact_orders"]["passed"] > 0
    assert data["tracking"] is None

    assert first.returncode == EXIT_OK, first.stderr[-3000:]
    assert second.returncode == EXIT_OK, second.stderr[-3000:]
    counts = [re.findall(r"│ (\S+)\s+│ ([\d,]+)", run.stdout) for run in (first, second)]
    assert counts[0] == counts[1]
    tables = dict(counts[0])
    expected = {
        "raw.orders": "3,000",
        "staging.stg_olist__orders": "3,000",
        "core.fact_orders": "3,000",
        "core.fact_order_items": "3,476",
        # A second run changes no dimension row, so the snapshots gain no version.
        "snapshots.dim_customer_snapshot": "3,000",
        "mart.mart_daily_orders": "90",
        "mart.mart_executive_kpis": "3",
    }
    assert {name: tables.get(name) for name in expected} == expected
    assert "skipped   olist_orders_dataset.csv" in second.stdout
    assert "OpenLineage events:" in first.stdout
    events = [json.loads(line) for line in (tmp_path / "home" / "lineage" / "openlineage.jsonl").open()]
    completed_jobs = {
        event["job"]["name"]: (
            {dataset["name"] for dataset in event["inputs"]},
            {dataset["name"] for dataset in event["outputs"]},
        )
        for event in events
        if event["eventType"] == "COMPLETE"
    }
    inputs, outputs = completed_jobs["olist_dw.core.olist_dw.fact_orders.build.run"]
    assert "olist_dw.staging.stg_olist__orders" in inputs
    assert outputs == {"olist_dw.core.fact_orders"}
    # The graph starts at the CSV file: the runner's load event feeds raw.orders, which staging reads.
    file_inputs, raw_outputs = completed_jobs["olist_dw.runner.load.raw.orders"]
    assert [Path(name).name for name in file_inputs] == ["olist_orders_dataset.csv"]
    assert raw_outputs == {"olist_dw.raw.orders"}
    # raw.orders -> base_olist__orders (the row rules; the runner's file records give line numbers)
    # -> quarantine.orders and stg_olist__orders.
    assert completed_jobs["olist_dw.staging.olist_dw.base_olist__orders.build.run"][0] == {
        "olist_dw.raw.orders",
        "olist_dw.metadata.loaded_files",
    }
    assert (
        "olist_dw.staging.base_olist__orders"
        in completed_jobs["olist_dw.staging.olist_dw.stg_olist__orders.build.run"][0]
    )
    assert completed_jobs["olist_dw.quarantine.olist_dw.quarantine_olist__orders.build.run"][1] == {
        "olist_dw.quarantine.orders"
    }
    # ... and ends at the marts, which the runner's publish refreshes from core.
    core_inputs, mart_outputs = completed_jobs["olist_dw.runner.publish.mart.mart_daily_orders"]
    assert "olist_dw.core.fact_orders" in core_inputs
    assert mart_outputs == {"olist_dw.mart.mart_daily_orders"}
    # dbt's run is a child of the runner's window run.
    runner_runs = {event["run"]["runId"] for event in events if event["job"]["name"] == "olist_dw.runner.run"}
    dbt_parents = {
        event["run"]["facets"]["parent"]["run"]["runId"]
        for event in events
        if event["job"]["name"] == "dbt-run-olist_dw" and "parent" in event["run"]["facets"]
    }
    assert dbt_parents and dbt_parents <= runner_runs
    for event in events:
        assert_valid_run_event(event)


def fetch_served_docs(home: Path, page: Page) -> tuple[dict[str, bytes], list[str]]:
    """Start `runner docs` on a free localhost port; fetch the site's files, read two pages in Chromium; stop it.

    A page is read once dbt docs has drawn it (its heading names the resource), the lineage graph is shot once
    it is shown.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "runner", "docs", "--port", str(port)],
        cwd=PROJECT_DIR,
        env={**os.environ, "OLIST_DW_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the dbt server it starts goes down with it
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                files = {
                    name: urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=5).read()
                    for name in ("index.html", "manifest.json")
                }
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
        site = f"http://127.0.0.1:{port}/#!"
        open_page(page, f"{site}/model/model.olist_dw.fact_orders")
        page.locator("h1", has_text="fact_orders").wait_for()
        fact_orders = visible_text(page)
        screenshot(page, "dbt_docs_fact_orders")
        open_page(page, f"{site}/exposure/exposure.olist_dw.executive_dashboard")
        page.locator("h1", has_text="Executive dashboard").wait_for()
        dashboard = visible_text(page)
        open_page(page, f"{site}/overview?g_v=1&g_i=%2Bexposure:executive_dashboard")
        page.locator("#cy").wait_for()  # the lineage graph's canvas, shown once it is laid out
        screenshot(page, "dbt_docs_lineage_graph")
        return files, [fact_orders, dashboard]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def assert_valid_run_event(event: dict) -> None:
    """The OpenLineage RunEvent schema's required fields and formats (spec 2-0-2)."""
    assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
    datetime.fromisoformat(event["eventTime"])
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"]
    assert urlparse(event["producer"]).scheme and urlparse(event["schemaURL"]).scheme
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        assert dataset["namespace"] and dataset["name"]


@pytest.mark.parametrize(
    "arguments",
    [
        ("run", "--window", "9999-12-31..9999-12-31T23:59", "--step", "day"),
        ("run", "--window", "9999-12-01..9999-12-31", "--step", "month"),
        ("backfill", "--from", "0001-01-01", "--to", "9999-12-31"),
    ],
)
def test_windows_outside_the_calendar_are_refused_before_anything_runs(run_cli, arguments):
    completed = run_cli("--dsn", UNREACHABLE, *arguments)

    assert_one_clear_line(completed, EXIT_USAGE, r"outside the project's calendar, 2016-01-01\.\.2021-01-01")


def test_files_the_runner_creates_are_the_owners_only(run_cli, tmp_path):
    out = tmp_path / "generated"

    completed = run_cli("generate", "--out", str(out), "--orders", "20", "--days", "2")

    assert completed.returncode == EXIT_OK, completed.stderr
    created = [out, *out.iterdir(), tmp_path / "home", *(tmp_path / "home").rglob("*")]
    assert len(created) > 10
    for path in created:
        expected = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == expected, path


def test_text_from_data_is_printed_as_text_never_as_markup(run_cli, dsn, tmp_path):
    """A folder named ``[/x]`` and a file named ``[foo]bar.csv`` are shown as they are, never read as markup."""
    source = tmp_path / "[" / "x]"
    generated = run_cli("generate", "--out", str(source), "--orders", "20", "--days", "2")
    assert generated.returncode == EXIT_OK, generated.stderr
    (source / "[foo]bar.csv").write_text("a,b\n1,2\n")
    environment = {"OLIST_DW_DSN": dsn}

    loaded = run_cli("load", "--source", str(source), env=environment)
    batches = run_cli("batches", env={**environment, "COLUMNS": "400"})

    assert loaded.returncode == batches.returncode == EXIT_OK, loaded.stderr + batches.stderr
    assert "[foo]bar.csv" in loaded.stdout
    assert str(source) in batches.stdout


def test_check_schema_never_passes_an_option_to_git(run_cli, dsn, tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("kept\n")

    completed = run_cli("check-schema", f"--against=--output={victim}", env={"OLIST_DW_DSN": dsn})

    assert_one_clear_line(completed, EXIT_USAGE, "neither a manifest file nor a commit of this repository")
    assert victim.read_text() == "kept\n"


@pytest.mark.slow
def test_no_output_of_any_kind_holds_the_password(run_cli, dsn, tmp_path):
    """A run, a report and each failure path, with a marker password: stdout, stderr and every file the runner wrote
    (dbt's logs, OpenLineage events, metrics, profiles.yml, the report) are searched for it."""
    marker = f"marker-{uuid.uuid4().hex}"
    role = f"olist_marker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("create role {} login superuser password {}").format(sql.Identifier(role), marker))
    secret_dsn = conninfo.make_conninfo(dsn, user=role, password=marker)
    environment = {"OLIST_DW_DSN": secret_dsn}
    data = tmp_path / "data"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / BY_ENTITY["orders"].file_name).write_text("order_id,customer\n1,2\n")
    unreachable = conninfo.make_conninfo(UNREACHABLE, password=marker)
    steps = [
        (EXIT_OK, ("generate", "--out", str(data), "--orders", "120", "--days", "10"), environment),
        (EXIT_OK, ("load", "--source", str(data)), environment),
        (EXIT_OK, ("run",), environment),
        (EXIT_OK, ("report", "--out", str(tmp_path / "report.html")), environment),
        (EXIT_OK, ("status",), environment),
        (EXIT_OK, ("db", "url"), environment),
        (EXIT_SCHEMA_MISMATCH, ("load", "--source", str(bad)), environment),
        (EXIT_ENVIRONMENT, ("status",), {"OLIST_DW_DSN": unreachable}),
        (EXIT_ENVIRONMENT, ("--dsn", unreachable, "run"), {}),
        (EXIT_USAGE, ("status",), {"OLIST_DW_DSN": f"{secret_dsn} sslpassword={marker}"}),
        (EXIT_USAGE, ("status",), {"OLIST_DW_DSN": f"password={marker} oops"}),
    ]
    try:
        for code, arguments, env in steps:
            completed = run_cli(*arguments, env=env)
            assert completed.returncode == code, f"{arguments}: {completed.stdout[-1500:]}{completed.stderr[-2500:]}"
            assert marker not in completed.stdout + completed.stderr, arguments
        written = [path for path in tmp_path.rglob("*") if path.is_file() and not path.is_relative_to(data)]
        assert any(path.name == "profiles.yml" for path in written)
        assert any(path.suffix == ".jsonl" for path in written), "OpenLineage events"
        assert any(path.suffix == ".prom" for path in written), "metrics"
        leaking = [path for path in written if marker.encode() in path.read_bytes()]
        assert not leaking
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
