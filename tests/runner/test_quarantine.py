"""Quarantine on a real PostgreSQL with real dbt: the row rules set aside exactly the malformed rows.

The generator says where it wrote each row that breaks a rule (file, line as an editor counts it, and the rule
that must catch it); the warehouse's quarantine must hold exactly those, no more and no fewer, and the rows a
later batch fixes must leave it. A window over the quarantine threshold stops before publish, with exit code 3
and the reason in ``runner status``.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import psycopg
import pytest
from conftest import read_rows, warehouse_checksums, write_rows

from runner import demo, generate, load, metrics, pipeline, quarantine
from runner.errors import UsageError
from runner.settings import Settings, share_setting

START = date(2017, 1, 1)
WINDOWS = pipeline.month_windows(START, date(2017, 2, 28))
ORDERS = 600


def make_extract(directory: Path, malformed: float) -> generate.Extract:
    """The same seed with or without malformed rows: the rows are the same, only the malformations differ."""
    return generate.generate(
        generate.GenerateOptions(directory, ORDERS, START, 59, seed=5, dirty=0.01, malformed=malformed)
    )


def quarantined(connection: psycopg.Connection) -> set[tuple[str, int, str]]:
    rows = connection.execute("select source_file, source_line, quarantine_rule from quarantine.all_rows").fetchall()
    assert len(rows) == len(set(rows)), "a raw row is quarantined twice"
    return set(rows)


@pytest.mark.slow
def test_quarantine_holds_the_malformed_rows_and_a_fixed_source_clears_them(
    settings: Settings, connection: psycopg.Connection, tmp_path: Path, run_cli
) -> None:
    bad = make_extract(tmp_path / "bad", malformed=0.01)
    load.load_directory(connection, tmp_path / "bad")
    pipeline.run_windows(settings, settings.dsn, WINDOWS)

    expected = {(row.file_name, row.line, row.rule) for row in bad.malformed}
    assert {rule for _, _, rule in expected} == {
        "duplicate_key",
        "unparseable_timestamp",
        "unparseable_number",
        "missing_key",
        "out_of_range",
        "orphan_order",
    }
    assert quarantined(connection) == expected
    # The row accounting (loaded = staged + quarantined + superseded, per window) ran in the build, and passed.
    accounting = connection.execute(
        "select status from elementary.elementary_test_results"
        " where test_unique_id like %s order by detected_at desc limit 1",
        ("%window_rows_accounted_for%",),
    ).fetchone()
    assert accounting == ("pass",)

    env = {"OLIST_DW_DSN": settings.dsn}
    listing = run_cli("quarantine", "list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    assert sum(count["rows"] for count in json.loads(listing.stdout)) == len(expected)
    shown = run_cli("quarantine", "show", "order_reviews", "--rule", "out_of_range", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    [first, *_] = json.loads(shown.stdout)
    assert first["raw_values"]["review_score"] == "0"
    assert first["quarantine_reason"] == "review_score 0 is outside 1 to 5"
    assert (first["source_file"], first["source_line"], "out_of_range") in expected
    # Alerting reads the same from the metrics: rows held per entity and rule.
    held = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in metrics.LedgerCollector(settings.dsn).collect()
        for sample in family.samples
        if sample.name == "olist_dw_quarantined_rows"
    }
    assert sum(held.values()) == len(expected)
    text = run_cli("quarantine", "show", "orders", "--rule", "unparseable_timestamp", "--limit", "1", env=env)
    assert "olist_orders_dataset.csv, line" in text.stdout
    assert "no window" in text.stdout
    assert "is not a timestamp" in text.stdout

    # Fixing the source: the files again without the malformed rows, as a new batch; re-running clears the quarantine.
    fixed = make_extract(tmp_path / "fixed", malformed=0.0)
    assert fixed.malformed == []
    load.load_directory(connection, tmp_path / "fixed")
    pipeline.run_windows(settings, settings.dsn, WINDOWS)
    assert quarantined(connection) == set()
    assert connection.execute("select count(*) from core.fact_orders").fetchone() == (ORDERS,)


def downstream(settings: Settings, model: str) -> set[str]:
    """The models built from ``model``, directly or not, by dbt's own graph (the manifest of the last build)."""
    children = json.loads((settings.target_dir / "manifest.json").read_text(encoding="utf-8"))["child_map"]
    found: set[str] = set()
    waiting = [f"model.olist_dw.{model}"]
    while waiting:
        for child in children.get(waiting.pop(), []):
            if child.startswith("model.olist_dw.") and child not in found:
                found.add(child)
                waiting.append(child)
    return {child.removeprefix("model.olist_dw.") for child in found}


@pytest.mark.slow
def test_a_window_over_the_threshold_stops_before_publish(
    settings: Settings, connection: psycopg.Connection, tmp_path: Path, run_cli
) -> None:
    make_extract(tmp_path / "bad", malformed=0.01)
    load.load_directory(connection, tmp_path / "bad")
    pipeline.run_windows(settings, settings.dsn, WINDOWS[:1])
    before = warehouse_checksums(settings.dsn)

    env = {"OLIST_DW_DSN": settings.dsn, "OLIST_DW_QUARANTINE_MAX_SHARE": "0.001"}
    stopped = run_cli("run", "--window", "2017-02-01..2017-03-01", env=env)
    assert stopped.returncode == 3, stopped.stderr
    assert "quarantined share of the window's rows over the 0.1% allowed (OLIST_DW_QUARANTINE_MAX_SHARE)" in (
        stopped.stderr
    )
    assert re.search(r"order_reviews \d+\.\d% \(\d+ of \d+: ", stopped.stderr), stopped.stderr
    assert "Traceback" not in stopped.stderr
    # Nothing downstream of a failing entity's staging was built, nothing published. Entities under the threshold
    # may be merged already (their facts too, when no failing entity feeds them): idempotent, the re-run redoes them.
    over = [entity for entity in quarantine.ENTITIES if re.search(rf"\b{entity} \d+\.\d% \(", stopped.stderr)]
    held = {f"core.{model}" for entity in over for model in downstream(settings, f"stg_olist__{entity}")}
    assert "core.fact_reviews" in held
    after = warehouse_checksums(settings.dsn)
    kept = [name for name in before if name.startswith("mart.") or name in held]
    assert {name: after[name] for name in kept} == {name: before[name] for name in kept}

    status = json.loads(run_cli("status", "--json", env=env).stdout)
    [failed] = status["failed_windows"]
    assert failed["reason"].startswith("DataQualityStop: ")
    assert "quarantined share of the window's rows" in failed["reason"]


@pytest.mark.slow
def test_a_file_of_orphans_stops_every_window_until_their_orders_arrive(
    settings: Settings, connection: psycopg.Connection, tmp_path: Path, run_cli
) -> None:
    """Rows no window can place are judged per file: a tenth of a file is an incident, not a quiet exit 0.

    The orders file comes without a tenth of its orders; their items, payments, reviews and customers come all
    the same (orphans). The run stops with exit 3 naming each file over the threshold and its rule, builds once
    (halving the windows would judge the same files again), publishes nothing, and says what it quarantined.
    When the missing orders arrive, the orphans find them and leave the quarantine on the next run.
    """
    make_extract(tmp_path / "all", malformed=0.0)
    orders = read_rows(tmp_path / "all", "orders")
    held_back = orders[::10]
    first = tmp_path / "first"
    shutil.copytree(tmp_path / "all", first)
    write_rows(first, "orders", [row for row in orders if row not in held_back])
    env = {"OLIST_DW_DSN": settings.dsn}
    assert run_cli("load", "--source", str(first), env=env).returncode == 0

    stopped = run_cli("run", "--window", "2017-01-01..2017-03-01", "--step", "month", env=env)

    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "rows no window can place over the 5.0% of their file allowed (OLIST_DW_UNPLACED_MAX_SHARE)" in (
        stopped.stderr
    )
    for file_name in ("olist_order_items_dataset.csv", "olist_customers_dataset.csv"):
        assert re.search(
            rf"{file_name} of batch [0-9a-f-]{{36}} \d+\.\d% \(\d+ of \d+: orphan_order \d+\)", (stopped.stderr)
        ), stopped.stderr
    assert "Quarantine: this run" in stopped.stdout and "orphan_order" in stopped.stdout
    failed_runs = connection.execute("select count(*) from metadata.window_runs where status = 'failed'").fetchone()
    assert failed_runs == (len(WINDOWS),)  # one build of the two months: not halved, not one build per month
    assert connection.execute("select count(*) from metadata.mart_versions").fetchone() == (0,)
    report = json.loads(run_cli("status", "--json", env=env).stdout)
    assert all(window["reason"].startswith("UnplacedRowsStop: rows no window") for window in report["failed_windows"])
    unplaced = {(count["entity"], count["rule"]): count["unplaced"] for count in report["quarantine"]}
    assert unplaced[("order_items", "orphan_order")] == sum(
        1 for row in read_rows(first, "order_items") if row["order_id"] in {order["order_id"] for order in held_back}
    )

    late = tmp_path / "late"
    write_rows(late, "orders", held_back)
    assert run_cli("load", "--source", str(late), env=env).returncode == 0
    resumed = run_cli("run", env=env)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Quarantine: this run" in resumed.stdout and "orphan_order" in resumed.stdout
    assert quarantined(connection) == set()
    assert connection.execute("select count(*) from core.fact_orders").fetchone() == (ORDERS,)


@pytest.mark.parametrize("name", ["OLIST_DW_QUARANTINE_MAX_SHARE", "OLIST_DW_UNPLACED_MAX_SHARE"])
def test_the_threshold_settings_are_shares(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(name, raising=False)
    assert share_setting(name) == 0.05
    monkeypatch.setenv(name, "0.2")
    assert share_setting(name) == 0.2
    for wrong in ("5%", "1.5", "-0.1"):
        monkeypatch.setenv(name, wrong)
        with pytest.raises(UsageError, match=f"{name} must be a share between 0 and 1"):
            share_setting(name)


def test_listing_before_any_window_says_so(connection: psycopg.Connection) -> None:
    with pytest.raises(UsageError, match="no quarantine yet"):
        quarantine.summary(connection)


@pytest.mark.slow
def test_demo_dirty_quarantines_exactly_the_injected_rows(run_cli, tmp_path: Path) -> None:
    """`demo --dirty`, as a user runs it: its quarantine holds the injected rows, with reasons, and nothing else."""
    demo_run = run_cli("demo", "--dirty", "0.01")
    try:
        assert demo_run.returncode == 0, demo_run.stderr[-3000:]
        held = set()
        for entity in quarantine.ENTITIES:
            shown = run_cli("quarantine", "show", entity, "--limit", "100000", "--json")
            assert shown.returncode == 0, shown.stderr
            for row in json.loads(shown.stdout):
                assert row["quarantine_reason"], row
                held.add((row["source_file"], row["source_line"], row["quarantine_rule"]))
    finally:
        run_cli("db", "stop")

    injected = generate.generate(
        generate.GenerateOptions(tmp_path / "same", demo.ORDERS, demo.START, demo.DAYS, demo.SEED, 0.01, 0.01)
    )
    assert held == {(row.file_name, row.line, row.rule) for row in injected.malformed}
