"""Window cost against history: the same one-day window on top of 1x and 10x history, same run.

    python bench/bench_window_cost.py [--orders 100000] [--scales 1,10] [--repeat 3] [--fresh]

For each scale, a warehouse holding that much history (see bench/history.py; built once per version of the project,
kept) and the same day's files loaded on top. The day's window is run --repeat times through the runner (the first
run processes it, the next ones re-process it: the same statements on the same rows), median. Prints the time per
scale, split into dbt's build and the mart publish, and the ratio of each scale to the first (target: 10x history
costs at most 1.3x the 1x time), then the slowest nodes of each scale's last build. The history build's own time and
dbt's peak memory are printed too: that is the full pipeline at that scale.
"""

from __future__ import annotations

import argparse
import statistics

import history


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
    finally:
        history.stop_server()


if __name__ == "__main__":
    main()
