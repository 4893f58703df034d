"""A warehouse with Nx Olist history, built once per version of the project and scale, kept for the benchmarks.

Building 10x history takes minutes, and three benchmarks (window cost, full refresh, mart refresh) start from it:
each database is named after the scale, the orders per 1x and a fingerprint of the dbt project and the runner's
migrations, on one embedded server under ``.bench/`` (git-ignored; ``OLIST_DW_DSN`` points at another server
instead). A changed project gets new databases; ``--fresh`` rebuilds.

History: ``orders x scale`` generated orders over the two years before DAY, built as one window. The day: its own
files (``orders / 730`` orders on DAY, the same at every scale), loaded as a second batch, not yet built.
"""

from __future__ import annotations

import hashlib
import resource
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import conninfo

from runner import database, dbt, load, pipeline
from runner.generate import GenerateOptions, generate
from runner.settings import PROJECT_DIR, Settings

BENCH_HOME = PROJECT_DIR / ".bench"
DAY = date(2018, 10, 1)
HISTORY_DAYS = 730
DAY_WINDOW = pipeline.Window(
    datetime.combine(DAY, datetime.min.time()), datetime.combine(DAY + timedelta(1), datetime.min.time())
)
HISTORY = pipeline.Window(DAY_WINDOW.start - timedelta(HISTORY_DAYS), DAY_WINDOW.start)


@dataclass(frozen=True)
class Built:
    """A history database ready for a benchmark, and what building it cost (None when it was already there)."""

    settings: Settings
    orders: int
    seconds: float | None
    peak_rss_mb: float | None


def fingerprint() -> str:
    """What the history databases depend on: the dbt project (as the runner fingerprints it) and the migrations."""
    digest = hashlib.sha256(dbt.project_fingerprint(PROJECT_DIR, data_only=False).encode())
    for path in sorted((PROJECT_DIR / "runner" / "migrations").glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def server() -> tuple[Settings, str]:
    """The benchmarks' server (embedded under .bench/, or OLIST_DW_DSN's) and its maintenance DSN."""
    base = Settings.from_environment(home=BENCH_HOME / "server")
    return base, conninfo.make_conninfo(database.resolve_dsn(base), dbname="postgres")


def data_dir(orders: int, start: date, days: int, seed: int) -> Path:
    """Generated files, kept under .bench/data: the generator is deterministic for its arguments."""
    folder = BENCH_HOME / "data" / f"{orders}-{start}-{days}-{seed}"
    if not (folder / "olist_orders_dataset.csv").exists():
        generate(GenerateOptions(folder, orders, start, days, seed))
    return folder


def day_files(orders_per_1x: int) -> Path:
    return data_dir(max(1, orders_per_1x // HISTORY_DAYS), DAY, 1, seed=99)


def history(scale: int, orders_per_1x: int, *, fresh: bool = False) -> Built:
    """The database holding ``scale``x history (built and published) and the day's files (loaded, not built)."""
    base, server_dsn = server()
    name = f"olist_bench_{scale}x_{orders_per_1x}_{fingerprint()}"
    settings = replace(base, home=BENCH_HOME / name, dsn=conninfo.make_conninfo(server_dsn, dbname=name))
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and not fresh:
            pipeline.bootstrap(settings)
            return Built(settings, orders_per_1x * scale, None, None)
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}"')
    history_files = data_dir(orders_per_1x * scale, HISTORY.start.date(), HISTORY_DAYS, seed=7)
    dsn = pipeline.bootstrap(settings)
    started = time.perf_counter()
    with database.connect(dsn) as connection:
        load.load_directory(connection, history_files)
    pipeline.run_window(settings, dsn, HISTORY)
    seconds = time.perf_counter() - started
    # The largest resident set of any child so far: dbt, which holds the manifest and the results (the runner
    # itself streams the files and keeps little).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with database.connect(dsn) as connection:
        load.load_directory(connection, day_files(orders_per_1x))
    return Built(settings, orders_per_1x * scale, seconds, peak)


def drop_other_versions() -> list[str]:
    """Drop the history databases of other versions of the project (they only take disk)."""
    _, server_dsn = server()
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        names = [
            row[0]
            for row in admin.execute("select datname from pg_database where datname like 'olist_bench_%'")
            if not row[0].endswith(fingerprint())
        ]
        for name in names:
            admin.execute(f'drop database if exists "{name}" with (force)')
    return names


def executable(name: str) -> str:
    """A console script of this environment (dbt), as the runner finds it."""
    return dbt.executable(name)


def stop_server() -> None:
    """Stop the embedded server the benchmarks started (a given OLIST_DW_DSN's server is left alone)."""
    base = Settings.from_environment(home=BENCH_HOME / "server")
    if not base.dsn:
        database.stop_embedded(base)


def run_day(built: Built) -> dict[str, float]:
    """Process the day's window once through the runner; its total time and the ledger's stage durations, in s."""
    started = time.perf_counter()
    result = pipeline.run_window(built.settings, built.settings.dsn, DAY_WINDOW)
    total = time.perf_counter() - started
    with database.connect(built.settings.dsn) as connection:
        stages = connection.execute(
            "select stage_durations_ms from metadata.window_runs where runner_run_id = %s", (result.runner_run_id,)
        ).fetchone()[0]
    return {"total": total, **{stage: milliseconds / 1000 for stage, milliseconds in stages.items()}}


def slowest_nodes(built: Built, limit: int = 12) -> list[tuple[str, float]]:
    """dbt's own time per node in the latest ``build``, slowest first, from Elementary's record of the run."""
    with database.connect(built.settings.dsn) as connection:
        return connection.execute(
            "select unique_id, execution_time from elementary.dbt_run_results where invocation_id = ("
            " select invocation_id from elementary.dbt_invocations where command = 'build'"
            " order by generated_at desc limit 1) order by execution_time desc limit %s",
            (limit,),
        ).fetchall()
