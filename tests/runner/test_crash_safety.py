"""Crash safety, proven by killing for real: SIGKILL to the runner and its dbt child, and to the database itself.

The runner runs as a user runs it (``python -m runner`` in its own process group). It is killed at named points:
inside COPY, inside a staging window replace, between core models, inside a snapshot, inside the mart publish,
before and after its commit. dbt is held at a point with the ``fault_point`` macro (``OLIST_DW_PAUSE_AT``) and the
whole process group is killed once the database shows the statement sleeping there; the runner's own points
(``OLIST_DW_FAIL_AT=<point>:crash``) kill it with SIGKILL from inside. After every kill the warehouse must be
consistent (marts and ledger as before the run, nothing half loaded, the watermark not ahead), and a plain ``run``
must converge to the state of a clean, uninterrupted build: the same checksum for every core table and mart.

A seeded soak test then runs windows in random order, with repeats and random kills, within a time budget
(``OLIST_DW_SOAK_SECONDS``, default 120), and checks the final state against the clean build.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest
from conftest import warehouse_checksums

from runner import database, generate, load, pipeline
from runner.settings import PROJECT_DIR, Settings

pytestmark = pytest.mark.slow  # a reference build, then real kills and a timed soak: minutes each

WINDOW = "2017-01-01..2017-03-01"
JANUARY = "2017-01-01..2017-02-01"
FEBRUARY_FIRST = datetime(2017, 2, 1)
SOAK_WINDOWS = ("2017-01-01..2017-02-01", "2017-02-01..2017-03-01", "2017-01-01..2017-03-01", "2017-01-15..2017-02-15")
SOAK_SEED = 20171225
# dbt's points: the test kills the process group while a statement sleeps there.
PAUSE_POINTS = ("replace_window.stg_olist__orders", "merge_window.fact_order_items", "snapshot.dim_customer_snapshot")
# The runner's own points: it kills itself there.
CRASH_POINTS = ("publish.after_refresh", "publish.before_commit")


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("extract")
    generate.generate(generate.GenerateOptions(directory, 150, date(2017, 1, 1), 59, 3))
    return directory


@pytest.fixture(scope="module")
def reference(extract: Path, server_dsn: str, tmp_path_factory) -> dict[str, str]:
    """The checksums of a clean, uninterrupted build of the extract."""
    name = "olist_crash_reference"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}"')
    dsn = psycopg.conninfo.make_conninfo(server_dsn, dbname=name)
    settings = replace(Settings.from_environment(), home=tmp_path_factory.mktemp("reference"), dsn=dsn)
    pipeline.bootstrap(settings)
    with psycopg.connect(dsn, autocommit=True) as connection:
        load.load_directory(connection, extract)
    pipeline.run_window(settings, dsn, pipeline.parse_window(WINDOW))
    checksums = warehouse_checksums(dsn)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'drop database "{name}" with (force)')
    return checksums


def start_runner(home: Path, *arguments: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m runner`` as its own process group, so that a kill takes its dbt children along."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "--log-format", "json", *arguments],
        cwd=PROJECT_DIR,
        env={**os.environ, "OLIST_DW_HOME": str(home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def run_runner(home: Path, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    process = start_runner(home, *arguments, env=env)
    output, _ = process.communicate(timeout=900)
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def wait_for_pause(dsn: str, point: str, process: subprocess.Popen[str], timeout: float = 300) -> bool:
    """Wait until a dbt statement sleeps at the fault point; False if the run succeeded without passing there.

    The window strategies' points are only reached by incremental runs: a table's first build creates it whole.
    """
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as connection:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                assert process.returncode == 0, f"the runner failed before {point}:\n{output[-4000:]}"
                return False
            sleeping = connection.execute(
                "select count(*) from pg_stat_activity where wait_event = 'PgSleep' and query like %s",
                (f"%olist_dw pause: {point} %",),
            ).fetchone()[0]
            if sleeping:
                return True
            time.sleep(0.2)
    raise AssertionError(f"dbt never reached {point}")


def kill_at_pause(
    home: Path, dsn: str, point: str, window: str, env: dict[str, str] | None = None, *, force: bool = False
) -> bool:
    """Run a window (``force``: even when it is up to date) and SIGKILL the runner with its dbt children while dbt
    is held at ``point``."""
    arguments = ["run", "--window", window, *(["--force"] if force else [])]
    process = start_runner(home, *arguments, env={**(env or {}), "OLIST_DW_PAUSE_AT": point})
    if not wait_for_pause(dsn, point, process):
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    # A backend notices its client is gone only when it next talks to it; a real statement would end soon and
    # roll back, the test's sleep would hold its locks for minutes: end it now, with the same rollback.
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where query like %s",
            (f"%olist_dw pause: {point} %",),
        )
    return True


def crash_at(home: Path, point: str, *arguments: str) -> None:
    """Run a command that kills itself with SIGKILL at the runner's own fault point."""
    completed = run_runner(home, *arguments, env={"OLIST_DW_FAIL_AT": f"{point}:crash"})
    assert completed.returncode == -signal.SIGKILL, completed.stdout[-4000:]


def kill_server(settings: Settings) -> None:
    """SIGKILL the embedded PostgreSQL: the postmaster and every process it started."""
    postmaster = database.embedded_status(settings).pid
    assert postmaster is not None
    children = [
        int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and _parent_of(entry) == postmaster
    ]
    for pid in [postmaster, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while database.embedded_status(settings).running and time.monotonic() < deadline:
        time.sleep(0.2)


def _parent_of(process_dir: Path) -> int | None:
    try:
        return int((process_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def consistent_after_a_kill(dsn: str, marts_before: dict[str, str], watermark_before: datetime) -> None:
    """What any crash must leave: marts and ledger as before, nothing half loaded."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        succeeded = connection.execute(
            "select count(*) from metadata.window_runs where status = 'succeeded'"
        ).fetchone()[0]
        watermark = connection.execute("select max(watermark) from metadata.watermarks").fetchone()[0]
        files = connection.execute("select entity, row_count from metadata.loaded_files").fetchall()
        for entity, row_count in files:
            assert connection.execute(f"select count(*) from raw.{entity}").fetchone()[0] == row_count, entity
    assert (succeeded, watermark) == (1, watermark_before)
    assert marts_of(dsn) == marts_before


def marts_of(dsn: str) -> dict[str, str]:
    return {name: value for name, value in warehouse_checksums(dsn).items() if name.startswith("mart.")}


@pytest.fixture
def own_server() -> Iterator[tuple[Path, Settings, str]]:
    """An embedded server of the test's own (it is killed), started by this process, not by the runner.

    Its folder is outside pytest's temporary root, for the reason given in conftest's ``server_dsn``.
    """
    home = Path(tempfile.mkdtemp(prefix="olist-dw-crash-"))
    settings = replace(Settings.from_environment(), home=home, dsn=None)
    dsn = database.start_embedded(settings)
    yield home, settings, dsn
    database.stop_embedded(settings)
    shutil.rmtree(home, ignore_errors=True)


def test_kill_minus_9_anywhere_then_a_plain_run_converges(own_server, extract, reference):
    home, settings, dsn = own_server
    # Inside COPY: the file being copied is loaded whole or not at all.
    crash_at(home, "load.copy", "load", "--source", str(extract))
    with psycopg.connect(dsn, autocommit=True) as connection:
        assert connection.execute("select count(*) from metadata.loaded_files").fetchone() == (0,)
        assert connection.execute("select count(*) from raw.customers").fetchone() == (0,)
    assert run_runner(home, "load", "--source", str(extract)).returncode == 0
    # January first, uninterrupted: the tables exist, so every later run takes the incremental path.
    assert run_runner(home, "run", "--window", JANUARY).returncode == 0
    marts_before = marts_of(dsn)

    for point in PAUSE_POINTS:
        assert kill_at_pause(home, dsn, point, WINDOW)
        consistent_after_a_kill(dsn, marts_before, FEBRUARY_FIRST)
    for point in CRASH_POINTS:
        crash_at(home, point, "run", "--window", WINDOW)
        consistent_after_a_kill(dsn, marts_before, FEBRUARY_FIRST)

    # The database itself dies mid-run (between core models); it comes back with crash recovery.
    process = start_runner(home, "run", "--window", WINDOW, env={"OLIST_DW_PAUSE_AT": "merge_window.fact_orders"})
    assert wait_for_pause(dsn, "merge_window.fact_orders", process)
    kill_server(settings)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "Traceback" not in output, output[-4000:]
    assert run_runner(home, "db", "start").returncode == 0
    consistent_after_a_kill(dsn, marts_before, FEBRUARY_FIRST)

    completed = run_runner(home, "run", "--window", WINDOW)

    assert completed.returncode == 0, completed.stdout[-4000:]
    assert warehouse_checksums(dsn) == reference
    with psycopg.connect(dsn, autocommit=True) as connection:
        assert connection.execute("select count(*) from metadata.window_runs where status = 'running'").fetchone() == (
            0,
        )
        assert (
            connection.execute("select watermark from metadata.watermarks").fetchone()[0].isoformat()
            == "2017-03-01T00:00:00"
        )

    # Killed after its commit (a forced re-run: the window is up to date): the run is done and says so; running
    # again changes nothing, and finds nothing due.
    crash_at(home, "publish.after_commit", "run", "--window", WINDOW, "--force")
    assert warehouse_checksums(dsn) == reference
    again = run_runner(home, "run", "--window", WINDOW)
    assert again.returncode == 0
    assert "up to date: no window is due" in again.stdout
    assert warehouse_checksums(dsn) == reference


def test_soak_random_windows_repeats_and_kills_converge(settings, connection, extract, reference):
    """Seeded and bounded in time: windows in random order, with repeats, some runs killed at random points."""
    budget = float(os.environ.get("OLIST_DW_SOAK_SECONDS", "120"))
    chooser = random.Random(SOAK_SEED)
    home = settings.home
    environment = {"OLIST_DW_DSN": settings.dsn}
    load.load_directory(connection, extract)
    started = time.monotonic()
    history = []
    while time.monotonic() - started < budget:
        window = chooser.choice(SOAK_WINDOWS)
        fate = chooser.choice([None, None, *PAUSE_POINTS, *CRASH_POINTS])
        history.append((window, fate))
        # Forced: a repeat rebuilds its window (as a scheduler re-running windows would) instead of finding it
        # up to date, so every repeat can be killed at its point.
        if fate in PAUSE_POINTS:
            kill_at_pause(home, settings.dsn, fate, window, env=environment, force=True)
        elif fate in CRASH_POINTS:
            completed = run_runner(
                home, "run", "--window", window, "--force", env={**environment, "OLIST_DW_FAIL_AT": f"{fate}:crash"}
            )
            assert completed.returncode == -signal.SIGKILL, (history, completed.stdout[-4000:])
        else:
            completed = run_runner(home, "run", "--window", window, "--force", env=environment)
            assert completed.returncode == 0, (history, completed.stdout[-4000:])

    completed = run_runner(
        home, "backfill", "--from", "2017-01-01", "--to", "2017-03-01", "--step", "month", env=environment
    )

    assert completed.returncode == 0, (history, completed.stdout[-4000:])
    assert warehouse_checksums(settings.dsn) == reference, history
