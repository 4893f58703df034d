"""Incremental against full refresh: the one-day window's dbt build vs ``dbt build --full-refresh``, same run.

    python bench/bench_full_refresh.py [--orders 100000] [--scale 10] [--repeat 3] [--fresh]

On the scale's history warehouse (see bench/history.py), the runner's dbt command (``build`` of everything but the
marts, which the runner publishes separately) is timed for the one-day window (median of --repeat runs), then
with ``--full-refresh`` over all of history (once: it rebuilds every incremental model from its sources). Prints
both and how many times faster the window is (target: at least 20x).
"""

from __future__ import annotations

import argparse
import statistics
import time

import history

from runner import dbt, pipeline


def timed_build(built: history.Built, window: pipeline.Window, *, full_refresh: bool) -> float:
    arguments = ["build", "--exclude", *pipeline.WINDOW_BUILD_EXCLUDES]
    if full_refresh:
        arguments.append("--full-refresh")
    started = time.perf_counter()
    dbt.run_dbt(
        built.settings,
        arguments,
        dsn=built.settings.dsn,
        run_settings=pipeline.build_settings(built.settings, window),
        lineage=False,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders at 1x (the real export: ~100,000)")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the history database")
    arguments = parser.parse_args()

    try:
        history.drop_other_versions()
        built = history.history(arguments.scale, arguments.orders, fresh=arguments.fresh)
        window = statistics.median(
            timed_build(built, history.DAY_WINDOW, full_refresh=False) for _ in range(arguments.repeat)
        )
        everything = pipeline.Window(history.HISTORY.start, history.DAY_WINDOW.end)
        full = timed_build(built, everything, full_refresh=True)
        print(f"{arguments.scale}x history ({built.orders:,} orders), dbt build of all but the marts:")
        print(f"  one-day window {history.DAY_WINDOW} (median of {arguments.repeat}): {window:7.1f} s")
        print(f"  --full-refresh over {everything}:              {full:7.1f} s")
        print(f"  the window is {full / window:.1f}x faster")
    finally:
        history.stop_server()


if __name__ == "__main__":
    main()
