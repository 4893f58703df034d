"""One runner per pipeline at a time: a PostgreSQL advisory lock held on a connection of its own.

The holder is named by the lock connection's ``application_name`` (runner pid and host), so a refused runner can
say who holds the lock and since when straight from ``pg_locks`` and ``pg_stat_activity``: no lock table to clean
up after a crash, because PostgreSQL releases the lock when the holder's connection ends, however it ends.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from runner import database
from runner.errors import EXIT_LOCK_HELD, RunnerError

# The advisory lock's first key: this application's namespace; the second is hashtext(pipeline).
LOCK_NAMESPACE = 0x0D57


class LockHeld(RunnerError):
    """Another runner holds the pipeline's lock."""

    exit_code = EXIT_LOCK_HELD


def _holder(connection: psycopg.Connection, pipeline: str) -> str:
    row = connection.execute(
        "select activity.application_name, activity.backend_start"
        " from pg_locks as locks join pg_stat_activity as activity on activity.pid = locks.pid"
        " where locks.locktype = 'advisory' and locks.granted"
        " and locks.classid = %s and locks.objid = hashtext(%s)::oid",
        (LOCK_NAMESPACE, pipeline),
    ).fetchone()
    if row is None:
        return "a runner that has just released it"
    name, since = row
    return f"{name or 'an unnamed session'} since {since:%Y-%m-%d %H:%M:%S %Z}"


@contextmanager
def pipeline_lock(dsn: str, pipeline: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the pipeline's lock for the body; refuse at once (or wait, with ``wait``) when another runner has it."""
    application_name = f"olist-dw runner pid {os.getpid()} on {socket.gethostname()}"
    connection = database.connect(dsn, application_name=application_name)
    try:
        if wait:
            connection.execute("select pg_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, pipeline))
        else:
            acquired = connection.execute(
                "select pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, pipeline)
            ).fetchone()[0]
            if not acquired:
                raise LockHeld(
                    f"pipeline {pipeline!r} is locked by {_holder(connection, pipeline)}; "
                    "wait for it to finish, or run with --wait"
                )
        yield
    finally:
        connection.close()
