"""Fault injection points: named places where a run can be made to fail for real, from the environment.

``OLIST_DW_FAIL_AT=<point>`` makes the run raise at that point. ``<point>:transient`` raises a serialization
failure instead (the error class PostgreSQL gives a transaction that lost a race), and ``<point>:resource`` a
resource failure (what dbt reports when the database runs out of memory or statement time); both only the first
time the point is reached, so tests can prove the retry (or the split into smaller windows) then succeeds.
``<point>:crash`` kills the runner there with SIGKILL, as a power cut or the OOM killer would: no exception
handler, no ``finally``, no goodbye to the database. Unset, a point costs one environment lookup.

Inside dbt's SQL the same role is played by the ``fault_point`` macro (``OLIST_DW_PAUSE_AT``), which holds a
model's transaction open so that a test can kill the run there.
"""

from __future__ import annotations

import os
import signal

import psycopg

from runner.errors import ResourceFailure

ENVIRONMENT_VARIABLE = "OLIST_DW_FAIL_AT"


class InjectedFault(RuntimeError):
    """The failure asked for by OLIST_DW_FAIL_AT."""


_fired: set[str] = set()


def checkpoint(point: str) -> None:
    """Raise here if the environment asks for a failure at ``point``."""
    wanted = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if wanted == point:
        raise InjectedFault(f"injected failure at {point}")
    if wanted == f"{point}:transient" and point not in _fired:
        _fired.add(point)
        raise psycopg.errors.SerializationFailure(f"injected transient failure at {point}")
    if wanted == f"{point}:crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if wanted == f"{point}:resource" and point not in _fired:
        _fired.add(point)
        raise ResourceFailure(f"injected resource failure at {point}: out of memory")
