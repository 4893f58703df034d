"""Backfill benchmark: the per-window overhead of the runner, against one run over the same range, same run.

    python bench/bench_backfill.py [--orders 20000] [--months 6]

Three ways to build the same months on fresh databases of one embedded PostgreSQL (or OLIST_DW_DSN's server):
  single run:     one `run` over the whole range (the baseline: the SQL the range needs, plus one dbt start-up);
  backfill:       `backfill --step month`, as the runner does it (contiguous windows share one dbt invocation);
  naive windows:  one `run` per month, the way a scheduler looping over windows would drive dbt.
Prints each time and the overhead per window beyond the single run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import psycopg
from psycopg import conninfo

from runner import database, load, pipeline
from runner.generate import GenerateOptions, generate
from runner.settings import Settings


def fresh_settings(base: Settings, server_dsn: str, home: Path) -> Settings:
    name = f"olist_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    return replace(base, home=home, dsn=conninfo.make_conninfo(server_dsn, dbname=name))


def timed_build(settings: Settings, data_dir: Path, way: str, months: list[pipeline.Window]) -> float:
    dsn = pipeline.bootstrap(settings)
    with database.connect(dsn) as connection:
        load.load_directory(connection, data_dir)
    started = time.perf_counter()
    if way == "single run":
        pipeline.run_windows(settings, dsn, [pipeline.Window(months[0].start, months[-1].end)])
    elif way == "backfill":
        with database.connect(dsn) as connection:
            groups = pipeline.plan_backfill(connection, pipeline.Window(months[0].start, months[-1].end), "month")
        for group in groups:
            pipeline.run_windows(settings, dsn, group)
    else:
        for month in months:
            pipeline.run_window(settings, dsn, month)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=6)
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="olist-dw-bench-"))
    base = Settings.from_environment(home=scratch / "server")
    try:
        start = date(2017, 1, 1)
        months = pipeline.month_windows(
            start, date(2017 + (arguments.months - 1) // 12, (arguments.months - 1) % 12 + 1, 28)
        )
        days = (months[-1].end - datetime.combine(start, datetime.min.time())).days
        data_dir = scratch / "data"
        generate(GenerateOptions(data_dir, arguments.orders, start, days, seed=11))
        server_dsn = conninfo.make_conninfo(database.resolve_dsn(base), dbname="postgres")
        # Warm-up: install packages and create the marts once, so no way pays first-use costs.
        timed_build(fresh_settings(base, server_dsn, scratch / "warm-up"), data_dir, "single run", months)
        results = {}
        for way in ("single run", "backfill", "naive windows"):
            results[way] = timed_build(
                fresh_settings(base, server_dsn, scratch / way.replace(" ", "-")), data_dir, way, months
            )
        print(f"{arguments.orders:,} orders over {len(months)} monthly windows:")
        baseline = results["single run"]
        for way, seconds in results.items():
            overhead = (seconds - baseline) / len(months)
            print(f"  {way:<14} {seconds:7.1f} s   overhead per window beyond the single run: {overhead:6.2f} s")
    finally:
        if not base.dsn:
            database.stop_embedded(base)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
