"""Backfill benchmark: the per-window overhead of the runner, against one run over the same range, same run.

    python bench/bench_backfill.py [--orders 100000] [--days 365] [--step day] [--naive]

1x history (``--orders`` over two years, the real export's size) is loaded, and the first ``--days`` of it are built
on fresh databases of one embedded PostgreSQL (or OLIST_DW_DSN's server), each way:
  single run:     one `run` over the whole range (the baseline: the SQL the range needs, plus one dbt start-up);
  backfill:       `backfill --step day`, as the runner does it (contiguous windows share one dbt invocation, and
                  each window still gets its own ledger record, publish bookkeeping and lineage);
  naive windows:  with --naive, one `run` per window, the way a scheduler looping over windows would drive dbt
                  (a year of days takes hours that way: use it with --step month).
Prints each time and the overhead per window beyond the single run (target: under 1 s).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import history
import psycopg
from psycopg import conninfo

from runner import database, load, pipeline
from runner.settings import Settings


def fresh_settings(base: Settings, server_dsn: str, home: Path) -> Settings:
    name = f"olist_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    return replace(base, home=home, dsn=conninfo.make_conninfo(server_dsn, dbname=name))


def timed_build(settings: Settings, data_dir: Path, way: str, span: pipeline.Window, step: str) -> tuple[float, int]:
    """Build the span one way on a fresh database; its time, and how many windows the ledger recorded."""
    dsn = pipeline.bootstrap(settings)
    with database.connect(dsn) as connection:
        load.load_directory(connection, data_dir)
    started = time.perf_counter()
    if way == "single run":
        pipeline.run_windows(settings, dsn, [span])
    elif way == "backfill":
        with database.connect(dsn) as connection:
            groups = pipeline.plan_backfill(connection, span, step)
        for group in groups:
            pipeline.run_windows(settings, dsn, group)
    else:
        for window in pipeline.split(span, step):
            pipeline.run_window(settings, dsn, window)
    seconds = time.perf_counter() - started
    with database.connect(dsn) as connection:
        recorded = connection.execute("select count(*) from metadata.window_runs where status = 'succeeded'")
        return seconds, recorded.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders over the two years of 1x history")
    parser.add_argument("--days", type=int, default=365, help="how much of the history to build")
    parser.add_argument("--step", choices=["day", "week", "month"], default="day")
    parser.add_argument("--naive", action="store_true", help="also build one `run` per window")
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="olist-dw-bench-"))
    base = Settings.from_environment(home=scratch / "server")
    try:
        start = history.HISTORY.start
        span = pipeline.Window(start, start + timedelta(days=arguments.days))
        windows = len(pipeline.split(span, arguments.step))
        data_dir = history.data_dir(arguments.orders, start.date(), history.HISTORY_DAYS, seed=7)
        server_dsn = conninfo.make_conninfo(database.resolve_dsn(base), dbname="postgres")
        # Warm-up: install packages and create the marts once, so no way pays first-use costs.
        warm_up = pipeline.Window(start, start + timedelta(days=7))
        timed_build(fresh_settings(base, server_dsn, scratch / "warm-up"), data_dir, "single run", warm_up, "day")
        ways = ["single run", "backfill"] + (["naive windows"] if arguments.naive else [])
        results = {}
        for way in ways:
            home = scratch / way.replace(" ", "-")
            results[way] = timed_build(fresh_settings(base, server_dsn, home), data_dir, way, span, arguments.step)
        print(f"{arguments.orders:,} orders over two years; {span} built as {windows} {arguments.step} windows:")
        baseline = results["single run"][0]
        for way, (seconds, recorded) in results.items():
            overhead = (seconds - baseline) / windows
            print(
                f"  {way:<14} {seconds:7.1f} s   {recorded:>4} window(s) recorded"
                f"   overhead per window beyond the single run: {overhead:6.2f} s"
            )
    finally:
        if not base.dsn:
            database.stop_embedded(base)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
