"""The pipeline lock on a real PostgreSQL: a second runner is refused (or waits), naming who holds the lock."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta

import pytest

from runner import lock, pipeline, recovery
from runner.errors import EXIT_LOCK_HELD
from runner.settings import PIPELINE


def test_a_second_runner_is_refused_naming_the_holder(dsn):
    holder_pattern = r"locked by olist-dw runner pid \d+ on \S+ since \d{4}-\d{2}-\d{2}"
    with (
        lock.pipeline_lock(dsn, PIPELINE),
        pytest.raises(lock.LockHeld, match=holder_pattern),
        lock.pipeline_lock(dsn, PIPELINE),
    ):
        pass


def test_the_lock_is_free_once_its_holder_is_done(dsn):
    with lock.pipeline_lock(dsn, PIPELINE):
        pass

    with lock.pipeline_lock(dsn, PIPELINE):
        pass


def test_other_pipelines_have_their_own_lock(dsn):
    with lock.pipeline_lock(dsn, PIPELINE), lock.pipeline_lock(dsn, "another_pipeline"):
        pass


def test_wait_takes_the_lock_when_the_holder_lets_go(dsn):
    held = threading.Event()

    def hold_for_a_moment() -> None:
        with lock.pipeline_lock(dsn, PIPELINE):
            held.set()
            time.sleep(1)

    holder = threading.Thread(target=hold_for_a_moment)
    holder.start()
    held.wait(timeout=10)
    started = time.monotonic()

    with lock.pipeline_lock(dsn, PIPELINE, wait=True):
        waited = time.monotonic() - started

    holder.join()
    assert waited > 0.5


def test_run_command_refuses_with_the_lock_held_code(dsn, run_cli):
    with lock.pipeline_lock(dsn, PIPELINE):
        completed = run_cli("--dsn", dsn, "run", "--window", "2017-01-01..2017-02-01")

    assert completed.returncode == EXIT_LOCK_HELD, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "error: pipeline 'olist' is locked by olist-dw runner pid" in completed.stderr


# What each command that writes calls: the core, holding the lock itself.
CORE_WRITERS = {
    "run": lambda settings: pipeline.run_windows(
        settings, settings.dsn, [pipeline.Window(datetime(2017, 1, 1), datetime(2017, 1, 2))]
    ),
    "rollback batch": lambda settings: recovery.rollback_batch(settings, settings.dsn, uuid.uuid4()),
    "restore": lambda settings: recovery.restore(settings.dsn, "core.dim_customer", datetime(2017, 1, 1), dry_run=True),
    "publish": lambda settings: pipeline.deploy_marts(settings, settings.dsn, keep_for=timedelta(days=7)),
    "publish --rollback": lambda settings: pipeline.roll_back_marts(settings, settings.dsn),
}


@pytest.mark.parametrize("command", CORE_WRITERS)
def test_the_core_takes_the_lock_for_each_command_that_writes(settings, command):
    """Not the command line: a test or a benchmark calling the core meets the same rule as an operator."""
    with lock.pipeline_lock(settings.dsn, PIPELINE), pytest.raises(lock.LockHeld):
        CORE_WRITERS[command](settings)
