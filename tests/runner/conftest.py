"""Fixtures: one real embedded PostgreSQL per test session, a fresh database per test that asks for one.

``OLIST_DW_TEST_DSN`` points the suite at another PostgreSQL 15+ instead (a maintenance database on a server
where the suite may create and drop databases).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

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
