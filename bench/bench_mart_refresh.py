"""Mart refresh: its time and how long a reader waits during it, against a plain refresh, same run.

    python bench/bench_mart_refresh.py [--orders 100000] [--scale 10] [--fresh]

On the scale's history warehouse (see bench/history.py), the marts are refreshed the way a window's publish does it
(``runner.marts.refresh``: ``refresh materialized view concurrently``, all marts in one transaction) while a reader
queries the executive KPIs in a loop on its own connection. The baseline is a plain ``refresh materialized view``
of the same marts in one transaction, which locks readers out until it commits. Prints each refresh's time and the
reader's median and longest query time before and during it.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import history
import psycopg
from psycopg import sql

from runner import database, marts

READER_QUERY = "select * from mart.mart_executive_kpis order by 1"


def plain_refresh(connection: psycopg.Connection) -> None:
    for name in sorted(marts.materialized_views(connection, marts.SCHEMA)):
        connection.execute(
            sql.SQL("refresh materialized view {}.{}").format(sql.Identifier(marts.SCHEMA), sql.Identifier(name))
        )


def measured(dsn: str, refresh: Callable[[psycopg.Connection], None]) -> tuple[float, list[float], list[float]]:
    """Refresh in one transaction while a reader loops; the refresh's time, reader latencies before and during it."""
    before: list[float] = []
    during: list[float] = []
    refreshing = threading.Event()
    done = threading.Event()

    def read() -> None:
        with psycopg.connect(dsn, autocommit=True) as reader:
            while not done.is_set():
                phase = during if refreshing.is_set() else before
                started = time.perf_counter()
                reader.execute(READER_QUERY).fetchall()
                phase.append(time.perf_counter() - started)
                time.sleep(0.01)

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(2)
    with database.connect(dsn) as connection:
        refreshing.set()
        started = time.perf_counter()
        with connection.transaction():
            refresh(connection)
        seconds = time.perf_counter() - started
    done.set()
    thread.join()
    return seconds, before, during


def milliseconds(latencies: list[float], statistic: Callable[[list[float]], float]) -> str:
    return f"{statistic(latencies) * 1000:8.1f} ms" if latencies else "     n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders at 1x (the real export: ~100,000)")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--fresh", action="store_true", help="rebuild the history database")
    arguments = parser.parse_args()

    try:
        history.drop_other_versions()
        built = history.history(arguments.scale, arguments.orders, fresh=arguments.fresh)
        print(f"{arguments.scale}x history ({built.orders:,} orders), all marts refreshed in one transaction:")
        for name, refresh in (("concurrently (the runner)", marts.refresh), ("plain (baseline)", plain_refresh)):
            seconds, before, during = measured(built.settings.dsn, refresh)
            print(
                f"  {name:<26} {seconds:6.1f} s   reader before: median {milliseconds(before, statistics.median)};"
                f" during: median {milliseconds(during, statistics.median)}, longest {milliseconds(during, max)}"
                f" ({len(during)} queries)"
            )
    finally:
        history.stop_server()


if __name__ == "__main__":
    main()
