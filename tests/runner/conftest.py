"""Fixtures: one real embedded PostgreSQL per test session, a fresh database per test that asks for one.

``OLIST_DW_TEST_DSN`` points the suite at another PostgreSQL 15+ instead (a maintenance database on a server
where the suite may create and drop databases).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from runner import database, pipeline
from runner.settings import PROJECT_DIR, Settings


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A maintenance DSN on a real server: the one given, or an embedded one in a temporary folder.

    The folder is not under pytest's own temporary root: pytest resets that root to mode 0700 when another
    session starts, which would lock the server's unprivileged user out of its data folder mid-run.
    """
    given = os.environ.get("OLIST_DW_TEST_DSN")
    if given:
        yield given
        return
    home = Path(tempfile.mkdtemp(prefix="olist-dw-test-"))
    settings = Settings(PROJECT_DIR, home, None, Settings.from_environment().package_store)
    dsn = database.start_embedded(settings)
    yield conninfo.make_conninfo(dsn, dbname="postgres")
    database.stop_embedded(settings)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def dsn(server_dsn: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    name = f"olist_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    yield conninfo.make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def new_database(server_dsn: str) -> Iterator[Callable[[], str]]:
    """Make more fresh databases in one test (a clean reference build beside the one under test, say)."""
    made: list[str] = []

    def make() -> str:
        name = f"olist_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'create database "{name}"')
        made.append(name)
        return conninfo.make_conninfo(server_dsn, dbname=name)

    yield make
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        for name in made:
            admin.execute(f'drop database if exists "{name}" with (force)')


AUDIT_COLUMNS = ("created_at", "updated_at", "version")


def warehouse_checksums(dsn: str) -> dict[str, str]:
    """A checksum of every core table and mart, over their business columns (audit columns left out).

    Two warehouses built from the same data by different histories (a crash and a re-run, a rollback) must
    agree on every business value; when and how often a row was rewritten may differ.
    """
    with psycopg.connect(dsn, autocommit=True) as connection:
        relations = connection.execute(
            "select namespace.nspname, class.relname from pg_class as class"
            " join pg_namespace as namespace on namespace.oid = class.relnamespace"
            " where namespace.nspname in ('core', 'mart') and class.relkind in ('r', 'm') order by 1, 2"
        ).fetchall()
        checksums = {}
        for schema, name in relations:
            columns = [
                row[0]
                for row in connection.execute(
                    "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
                    " and not attisdropped order by attnum",
                    (f"{schema}.{name}",),
                )
                if row[0] not in AUDIT_COLUMNS
            ]
            row_text = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
            query = sql.SQL(
                "select count(*) || ':' || coalesce(md5(string_agg({row}, E'\\n' order by {row})), '')"
                " from {schema}.{name}"
            ).format(row=row_text, schema=sql.Identifier(schema), name=sql.Identifier(name))
            checksums[f"{schema}.{name}"] = connection.execute(query).fetchone()[0]
    return checksums


@pytest.fixture
def settings(dsn: str, tmp_path: Path) -> Settings:
    """Runner settings for one test: its own home (profile, dbt artefacts, lineage) and database."""
    return replace(Settings.from_environment(), home=tmp_path / "home", dsn=dsn)


@pytest.fixture
def connection(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection to the test's database, migrated and with its raw tables, as every command leaves it."""
    pipeline.bootstrap(settings)
    with psycopg.connect(settings.dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def run_cli(tmp_path: Path):
    """``python -m runner`` in a real child process, as a user runs it: real exit code, real stderr.

    Its home is the test's own folder, so it never touches the developer's embedded database.
    """

    def run(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", *arguments],
            cwd=PROJECT_DIR,
            env={**os.environ, "OLIST_DW_HOME": str(tmp_path / "home"), **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    return run


ARTIFACTS = PROJECT_DIR / "test-artifacts"


class Browser:
    """Headless Chromium (Debian's ``chromium``), driven from its command line: the page as a person sees it.

    ``text`` is the rendered page's visible text after its scripts ran; ``screenshot`` saves a PNG under the
    git-ignored ``test-artifacts/screenshots``. No network: background networking is off, pages are local.
    """

    def __init__(self, executable: str, profile_dir: Path) -> None:
        self.executable = executable
        self.profile_dir = profile_dir

    def _run(self, url: str, *flags: str) -> str:
        completed = subprocess.run(
            [
                self.executable,
                "--headless",
                "--no-sandbox",  # as root (CI containers) Chromium refuses to start with its sandbox
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={self.profile_dir}",
                "--window-size=1400,1000",
                "--virtual-time-budget=20000",  # let the page's scripts fetch and render before the capture
                *flags,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed.stdout

    def text(self, url: str) -> str:
        """The page's visible text, whitespace collapsed."""
        dom = self._run(url, "--dump-dom")
        dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
        return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))

    def screenshot(self, url: str, name: str) -> Path:
        path = ARTIFACTS / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run(url, f"--screenshot={path}")
        assert path.stat().st_size > 10_000, f"{path} is (nearly) empty"
        return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("OLIST_DW_REQUIRE_BROWSER"):
            pytest.fail("headless Chromium is required here but not installed (Debian: apt-get install chromium)")
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    return Browser(executable, tmp_path_factory.mktemp("chromium-profile"))
