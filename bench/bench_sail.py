"""PostgreSQL and Sail side by side: the same files loaded and built on each, in one run.

    python bench/bench_sail.py [--orders 10000] [--scale 10] [--mode local-cluster]

History: ``orders x scale`` generated orders over the two years before the benchmarks' day (bench/history.py's files),
then that day's own files. On each engine, in this order: load the history (PostgreSQL: COPY into raw; Sail: COPY
into a landing table, then one Delta commit per file), build all of it (``dbt build``, the window the history's two
years), load the day's files and build the day's window (``dbt build`` with that window). PostgreSQL is the embedded
server (or OLIST_DW_DSN's), Sail the local cluster ``runner sail start`` starts (two workers by default), both fresh.
Both engines are driven by the same ``dbt build`` command, only ``--target`` differs. Prints each step's time per
engine and Sail's time as a multiple of PostgreSQL's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import history
import psycopg
from psycopg import conninfo

from runner import dbt, delta, load, pipeline
from runner.settings import PROJECT_DIR, Settings

WORK = history.BENCH_HOME / "sail"


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def engine_steps(settings: Settings, target: str, history_files: Path, day_files: Path) -> dict[str, float]:
    """One engine's four steps, timed: load and build the history, load and build the day. ``target``: the profile's
    output, ``dev`` (PostgreSQL, as the runner writes it) or ``sail``."""
    loader = delta.load_source if target == "sail" else load.load_source
    dsn = pipeline.bootstrap(settings)
    steps: dict[str, Callable[[], object]] = {
        "load history": lambda: loader(settings, dsn, history_files),
        "build history": lambda: dbt_build(settings, target, history.HISTORY),
        "load the day": lambda: loader(settings, dsn, day_files),
        "build the day": lambda: dbt_build(settings, target, history.DAY_WINDOW),
    }
    seconds = {}
    for name, step in steps.items():
        seconds[name] = timed(step)
        # As it goes: a long run that stops later still leaves the figures it measured.
        print(f"{target}: {name} {seconds[name]:.1f} s", file=sys.stderr, flush=True)
    return seconds


def dbt_build(settings: Settings, target: str, window: pipeline.Window) -> None:
    """``dbt build`` of one window on one target, as a user types it."""
    environment = {
        **dbt.dbt_environment(settings, settings.dsn),
        "DBT_TARGET_PATH": str(settings.home / f"target-{target}"),
        "DBT_LOG_PATH": str(settings.home / f"logs-{target}"),
        "OLIST_DW_WATERMARK_START": window.start.isoformat(),
        "OLIST_DW_WATERMARK_END": window.end.isoformat(),
    }
    completed = subprocess.run(
        [history.executable("dbt"), "build", "--target", target],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=7200,
    )
    if completed.returncode != 0:
        sys.exit(f"dbt build --target {target} failed:\n{completed.stdout[-3000:]}")


def runner_cli(home: Path, *arguments: str, mode: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "runner", *arguments],
        cwd=PROJECT_DIR,
        env={**os.environ, "OLIST_DW_HOME": str(home), "OLIST_DW_SAIL_MODE": mode},
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def fresh_database(server_dsn: str, name: str) -> str:
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}"')
    return conninfo.make_conninfo(server_dsn, dbname=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000, help="Orders per 1x of history.")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--mode", default="local-cluster", choices=["local-cluster", "local"])
    arguments = parser.parse_args()

    orders = arguments.orders * arguments.scale
    history_files = history.data_dir(orders, history.HISTORY.start.date(), history.HISTORY_DAYS, seed=7)
    day_files = history.day_files(arguments.orders)
    base, server_dsn = history.server()
    shutil.rmtree(WORK, ignore_errors=True)
    sail_home = WORK / "cluster"
    runner_cli(sail_home, "sail", "start", mode=arguments.mode)
    try:
        endpoint = json.loads(runner_cli(sail_home, "sail", "status", "--json", mode=arguments.mode))["endpoint"]
        suffix = uuid.uuid4().hex[:6]
        names = {"dev": f"olist_sail_pg_{suffix}", "sail": f"olist_sail_ledger_{suffix}"}
        engines = {
            "dev": replace(base, home=WORK / "postgres", dsn=fresh_database(server_dsn, names["dev"])),
            "sail": replace(
                base, home=WORK / "sail", dsn=fresh_database(server_dsn, names["sail"]), spark_remote=endpoint
            ),
        }
        seconds = {
            target: engine_steps(settings, target, history_files, day_files) for target, settings in engines.items()
        }
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        runner_cli(sail_home, "sail", "stop", mode=arguments.mode)
        history.stop_server()

    print(f"{orders:,} orders of history ({arguments.orders:,} x {arguments.scale}); Sail in {arguments.mode} mode")
    print(f"{'step':<16}{'PostgreSQL':>12}{'Sail':>10}{'Sail / PostgreSQL':>20}")
    for step in seconds["dev"]:
        postgres, sail_seconds = seconds["dev"][step], seconds["sail"][step]
        print(f"{step:<16}{postgres:>11.1f}s{sail_seconds:>9.1f}s{sail_seconds / postgres:>19.2f}x")


if __name__ == "__main__":
    main()
