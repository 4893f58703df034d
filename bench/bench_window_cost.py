"""Window cost against history: the same one-day window on top of 1x and 10x history, same run.

    python bench/bench_window_cost.py [--orders 100000] [--scales 1,10] [--repeat 3] [--fresh]

For each scale, a warehouse holding that much history (see bench/history.py; built once per version of the project,
kept) and the same day's files loaded on top. The day's window is run --repeat times through the runner (the first
run processes it, the next ones re-process it: the same statements on the same rows), median. Prints the time per
scale, split into dbt's build and the mart publish, and the ratio of each scale to the first (target: 10x history
costs at most 1.3x the 1x time), then the slowest nodes of each scale's last build. The history build's own time and
dbt's peak memory are printed too: that is the full pipeline at that scale.

Then, on the first scale, the runner's fixed costs as a user meets them (``python -m runner`` in a child process):
``run --window`` over a day with no orders (``--force``: it is built like any window, so this is the floor of a
window's cost), against ``dbt --version`` measured in the same run (the cost of starting dbt at all; target: at
most 2x), and ``run`` when no window is due (target: at most 2 s, "up to date", nothing written).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import history

from runner.settings import PROJECT_DIR

EMPTY_DAY = "2018-10-05..2018-10-06"


def timed(command: list[str], environment: dict[str, str]) -> tuple[float, str]:
    """Wall time of one command run as a user runs it, and its output; fails loudly when the command fails."""
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, check=False, timeout=1800
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout[-2000:]}{completed.stderr[-3000:]}")
    return seconds, completed.stdout


def fixed_costs(built: history.Built, repeat: int) -> None:
    """The floor of a window (an empty day, forced) and of a run with nothing due, against dbt's own start-up."""
    environment = {**os.environ, "OLIST_DW_HOME": str(built.settings.home), "OLIST_DW_DSN": built.settings.dsn}
    runner = [sys.executable, "-m", "runner"]
    history.run_day(built)  # the day's files built: nothing is due afterwards
    dbt_version = [timed([str(history.executable("dbt")), "--version"], environment)[0] for _ in range(repeat)]
    empty = [timed([*runner, "run", "--window", EMPTY_DAY, "--force"], environment)[0] for _ in range(repeat)]
    idle = []
    for _ in range(repeat):
        seconds, output = timed([*runner, "run"], environment)
        if "up to date" not in output:
            raise SystemExit(f"`run` found something due after the day was built:\n{output}")
        idle.append(seconds)
    baseline = statistics.median(dbt_version)
    print(f"fixed costs at {built.orders:,} orders of history, median of {repeat}:")
    print(f"  `dbt --version` (baseline)                 {baseline:6.2f} s")
    print(
        f"  `run --window {EMPTY_DAY} --force`  {statistics.median(empty):6.2f} s"
        f"   ratio to dbt --version: {statistics.median(empty) / baseline:.2f} (target <= 2)"
    )
    print(f"  `run` with no window due                   {statistics.median(idle):6.2f} s   (target <= 2 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders at 1x (the real export: ~100,000)")
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the history databases")
    arguments = parser.parse_args()
    scales = [int(scale) for scale in arguments.scales.split(",")]

    try:
        history.drop_other_versions()
        figures: dict[int, dict[str, float]] = {}
        slowest: dict[int, list[tuple[str, float]]] = {}
        for scale in scales:
            built = history.history(scale, arguments.orders, fresh=arguments.fresh)
            if built.seconds is not None:
                print(
                    f"{scale}x history ({built.orders:,} orders): loaded and built in {built.seconds:.0f} s,"
                    f" dbt's peak memory {built.peak_rss_mb:,.0f} MB"
                )
            runs = [history.run_day(built) for _ in range(arguments.repeat)]
            figures[scale] = {stage: statistics.median(run.get(stage, 0.0) for run in runs) for stage in runs[0]}
            slowest[scale] = history.slowest_nodes(built)

        baseline = figures[scales[0]]
        print(f"one-day window {history.DAY_WINDOW}, median of {arguments.repeat} runs:")
        for scale, stages in figures.items():
            # The ledger records the build's duration; the rest is the mart publish and the runner's bookkeeping.
            split = f"dbt build {stages['build']:.1f} s, publish and the rest {stages['total'] - stages['build']:.1f} s"
            ratio = stages["total"] / baseline["total"]
            print(f"  {scale:>3}x history: {stages['total']:6.1f} s ({split})   ratio to {scales[0]}x: {ratio:.2f}")
        for scale, nodes in slowest.items():
            print(f"where the last window's dbt build spent its time at {scale}x (dbt's time per node):")
            for unique_id, seconds in nodes:
                print(f"  {seconds:7.1f} s  {unique_id}")
        fixed_costs(history.history(scales[0], arguments.orders), arguments.repeat)
    finally:
        history.stop_server()


if __name__ == "__main__":
    main()
