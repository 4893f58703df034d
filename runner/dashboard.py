"""The executive dashboard: a marimo app over the marts, served read-only on localhost to whoever holds its token.

The app (``dashboards/executive.py``) is the last node of the lineage (the dbt exposure ``executive_dashboard``).
It is served in marimo's run mode (no editor, no code shown) in this process. What guards it:

- marimo's access token, new at every start and printed once in the address (as Jupyter does): without it a
  request gets the login form, never the page, a session or data;
- an Origin and Host check in front of marimo (``SameOrigin``), which accepts any Origin on its websocket;
- the database: every session reads as the SELECT-only role ``olist_dw_dashboard`` (migration 0008: ``mart`` and
  ``metadata``, nothing else) in read-only transactions, through one small pool shared by all viewers, so that
  open tabs can neither write nor use up the server's connections.

The DSN reaches the app through the environment, never through a file, so a password never lands on disk.
"""

from __future__ import annotations

import ast
import functools
import html
import os
import secrets
import string
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from runner import database, ledger
from runner.errors import EnvironmentProblem, UsageError
from runner.marts import READER_ROLE
from runner.settings import PIPELINE, PROJECT_DIR, Settings

APP_FILE = PROJECT_DIR / "dashboards" / "executive.py"
HOST = "127.0.0.1"
DEFAULT_PORT = 2718
STALE_HOURS_VARIABLE = "OLIST_DW_DASHBOARD_STALE_HOURS"
DEFAULT_STALE_HOURS = 24.0
READER_OPTIONS = f"-c default_transaction_read_only=on -c role={READER_ROLE}"
APPLICATION_NAME = "olist-dw dashboard"
# Connections the dashboard holds at most, whatever the number of viewers; a query waits for a free one.
POOL_SIZE = 4
POOL_WAIT_SECONDS = 15.0
POOL_IDLE_SECONDS = 60.0  # connections beyond the first are closed after this long unused
TOKEN_BYTES = 24
# What marimo would otherwise send home or fetch: its update check (edit mode only, off anyway) and usage stats.
NO_TELEMETRY = {"MARIMO_SKIP_UPDATE_CHECK": "1", "DO_NOT_TRACK": "1"}
# CPython gh-106905, fixed in 3.11.8 and 3.12.2: see serialize_ast_parsing.
AST_PARSING_RACES = sys.version_info < (3, 11, 8) or (3, 12) <= sys.version_info < (3, 12, 2)


def stale_after(value: str | None) -> timedelta:
    """OLIST_DW_DASHBOARD_STALE_HOURS: how long after the last successful run the page warns that it is stale."""
    if not value:
        return timedelta(hours=DEFAULT_STALE_HOURS)
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if hours <= 0:
        raise UsageError(f"{STALE_HOURS_VARIABLE} must be a positive number of hours, got {value!r}")
    return timedelta(hours=hours)


def configured_stale_after() -> timedelta:
    """The stale threshold this process is configured with (the CLI checks it before serving, the page uses it)."""
    return stale_after(os.environ.get(STALE_HOURS_VARIABLE))


def reader_dsn(dsn: str) -> str:
    """The DSN with the dashboard's session settings: read-only transactions, as the SELECT-only role.

    Appended to the DSN's own ``options`` (a later ``-c`` wins), so a caller's other settings are kept. Set at
    login rather than by ``set role`` afterwards, so ``reset role`` returns to the reader, not to the login user;
    this works for the embedded server's superuser and for any operator's user that migration 0008 made a member.
    """
    parts = conninfo.conninfo_to_dict(dsn)
    options = str(parts.get("options") or "")
    if READER_OPTIONS in options:
        return dsn
    return conninfo.make_conninfo(dsn, options=f"{options} {READER_OPTIONS}".strip())


def check_reader(dsn: str) -> None:
    """Fail before serving, in one line, when the dashboard could not read: no server, no role, no right to it."""
    with database.connect(dsn, application_name=APPLICATION_NAME) as connection:
        missing = connection.execute("select to_regrole(%s) is null", (READER_ROLE,)).fetchone()[0]
    if missing:
        raise EnvironmentProblem(
            f"the dashboard's read-only role {READER_ROLE} does not exist on this server yet:"
            " `python -m runner db migrate` makes it (as does any command that builds the warehouse)"
        )
    with database.connect(reader_dsn(dsn), application_name=APPLICATION_NAME) as connection:
        denied = {
            row[0]
            for row in connection.execute(
                "select nspname from pg_namespace"
                " where nspname in ('metadata', 'mart') and not has_schema_privilege(oid, 'usage')"
            )
        }
    # The page would fail on its first query: a database migrated before 0008, or marts dbt built by hand.
    if "metadata" in denied:
        raise EnvironmentProblem(
            f"the dashboard's role {READER_ROLE} may not read this database's ledger yet:"
            " `python -m runner db migrate` grants it"
        )
    if "mart" in denied:
        raise EnvironmentProblem(
            f"the dashboard's role {READER_ROLE} may not read the marts of this database (not published by the"
            " runner): `python -m runner publish --force` publishes them"
        )


def open_pool(dsn: str) -> ConnectionPool:
    """A pool of at most ``POOL_SIZE`` reader sessions on ``dsn``, each checked when lent (the server may restart)."""
    return ConnectionPool(
        reader_dsn(dsn),
        kwargs={
            "autocommit": True,  # no session sits idle in a transaction between two queries
            "application_name": APPLICATION_NAME,
            "connect_timeout": database.CONNECT_TIMEOUT_SECONDS,
        },
        min_size=1,
        max_size=POOL_SIZE,
        timeout=POOL_WAIT_SECONDS,
        max_idle=POOL_IDLE_SECONDS,
        check=ConnectionPool.check_connection,
        name=APPLICATION_NAME,
        open=True,
    )


_shared_pool: ConnectionPool | None = None
_shared_pool_lock = threading.Lock()


def shared_pool() -> ConnectionPool:
    """The one pool of this process, opened on first use with the runner's settings, shared by every viewer.

    marimo runs each viewer's session in a thread of this process: a connection per session would let open tabs
    use up the server's ``max_connections`` and fail the runner's own runs. The settings are the runner's
    (``OLIST_DW_DSN``, else the embedded server); the lock keeps two first sessions from opening two pools.
    """
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is None:
            _shared_pool = open_pool(database.resolve_dsn(Settings.from_environment()))
        return _shared_pool


def close_shared_pool() -> None:
    """Close the process's pool, if one was opened (when the server stops)."""
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is not None:
            _shared_pool.close()
            _shared_pool = None


@contextmanager
def borrowed() -> Iterator[psycopg.Connection]:
    """A connection of the shared pool for the length of a block; a lost warehouse is one message, not a traceback."""
    try:
        with shared_pool().connection() as connection:
            yield connection
    except psycopg.OperationalError as error:  # the pool's timeout among them
        raise EnvironmentProblem(f"the dashboard cannot reach the warehouse: {error}") from error


def query(text: str, parameters: Sequence[object] = ()) -> list[dict[str, Any]]:
    """Rows as dictionaries (for the charts), on a connection borrowed for this query only."""
    with borrowed() as connection, connection.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(text, parameters).fetchall()


class _EscapingFormatter(string.Formatter):
    """``str.format`` that HTML-escapes every value it inserts, after applying its format spec."""

    def format_field(self, value: object, format_spec: str) -> str:
        return html.escape(super().format_field(value, format_spec))


_ESCAPING = _EscapingFormatter()


def html_text(template: str, /, **values: object) -> str:
    """The template (trusted markup) with each ``{name}`` replaced by its value, escaped.

    The page shows values from the database (a state, a category) and from errors; a value reaching the page as
    markup would run script in the viewer's browser. Such values never go through ``mo.md`` either: markdown
    would read ``[x](javascript:...)`` as a link, and marimo reads ``\\[`` as TeX.
    """
    return _ESCAPING.format(template, **values)


@dataclass(frozen=True)
class Freshness:
    """How current the marts are, from the runner's ledger (what ``runner status`` reports).

    The lag is the time since the last successful window run, on the database's clock: the demo data is from
    2017, so the time since the newest purchase would always be years and say nothing about the pipeline.
    """

    watermark: datetime | None
    last_success_at: datetime | None
    checked_at: datetime
    stale_after: timedelta

    @property
    def lag(self) -> timedelta | None:
        return self.checked_at - self.last_success_at if self.last_success_at else None

    @property
    def is_stale(self) -> bool:
        """Stale when no run ever succeeded, or the last success is older than the threshold."""
        return self.lag is None or self.lag > self.stale_after


def freshness(connection: psycopg.Connection, threshold: timedelta) -> Freshness:
    """Read the watermark and the last successful run; both unset on a database the runner never migrated."""
    checked_at = connection.execute("select now()").fetchone()[0]
    migrated = connection.execute(
        "select to_regclass('metadata.watermarks') is not null and to_regclass('metadata.window_runs') is not null"
    ).fetchone()[0]
    if not migrated:
        return Freshness(None, None, checked_at, threshold)
    return Freshness(
        ledger.watermark(connection, PIPELINE), ledger.last_success(connection, PIPELINE), checked_at, threshold
    )


def new_access_token() -> str:
    """A fresh secret for one start of the server: whoever has the printed address has the dashboard."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def address(port: int, token: str) -> str:
    """The address to open, token included; marimo trades it for a session cookie and drops it from the bar."""
    return f"http://{HOST}:{port}/?access_token={token}"


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SameOrigin:
    """ASGI middleware: refuse a request that names another origin, or another host, than this server's.

    marimo's websocket accepts any Origin, and a browser sends a site's cookies with a websocket handshake made
    by any page of the same site (every port of 127.0.0.1 is one site): without this, a page the operator has
    open elsewhere could drive a session with the operator's cookie (cross-site websocket hijacking). The Host
    check refuses DNS rebinding, a foreign name made to resolve to 127.0.0.1. A request without Origin (not sent
    by a browser page) still needs the token.
    """

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        names = (HOST, "localhost")
        self.hosts = {f"{name}:{port}" for name in names} | (set(names) if port == 80 else set())
        self.origins = {f"http://{host}" for host in self.hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {name.lower(): value.decode("latin-1") for name, value in scope["headers"]}
            origin = headers.get(b"origin")
            if headers.get(b"host") not in self.hosts or (origin is not None and origin not in self.origins):
                await self.refuse(scope, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def refuse(scope: Scope, send: Send) -> None:
        """403: a websocket closed before it is accepted is answered 403 by the server."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"cross-origin request refused\n"
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})


def serialize_ast_parsing() -> None:
    """Let one thread at a time turn source into ``ast`` objects, on the Python versions that need it.

    Before 3.11.8 and 3.12.2 that conversion keeps its depth count in state shared by all threads, and a garbage
    collection in the middle lets another thread's conversion change it: ``ast.parse`` then fails with "AST
    constructor recursion depth mismatch" (CPython gh-106905). marimo parses the app for every new session while
    the sessions already open compile their cells, each in a thread of this process; a viewer whose session hit
    that race got a closed connection. A reentrant lock, since a collection may run code that parses too.
    """
    if not AST_PARSING_RACES:
        return
    parse = ast.parse
    if getattr(parse, "serialized", False):
        return
    lock = threading.RLock()

    @functools.wraps(parse)
    def serialized_parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    serialized_parse.serialized = True  # type: ignore[attr-defined]
    ast.parse = serialized_parse


def serve(settings: Settings, dsn: str, port: int, token: str) -> None:
    """Serve the app on localhost until interrupted, in marimo's run mode (read-only, code hidden), behind the token.

    The app reads its settings from this process's environment (marimo runs its cells in this process), so
    the DSN given by flag or found for the embedded server is handed over as ``OLIST_DW_DSN``.
    """
    import marimo
    import uvicorn

    serialize_ast_parsing()
    os.environ.update(NO_TELEMETRY)
    os.environ["OLIST_DW_DSN"] = dsn
    os.environ["OLIST_DW_HOME"] = str(settings.home)
    app = (
        marimo.create_asgi_app(quiet=True, include_code=False, token=token)
        .with_app(path="", root=str(app_file()))
        .build()
    )
    try:
        uvicorn.run(SameOrigin(app, port), host=HOST, port=port, log_level="warning")
    finally:
        close_shared_pool()


def app_file() -> Path:
    """The app shipped with the project; a checkout without it is a broken install, said plainly."""
    if not APP_FILE.is_file():
        raise UsageError(f"the dashboard app is missing: {APP_FILE}")
    return APP_FILE
