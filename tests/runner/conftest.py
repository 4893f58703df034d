"""Fixtures: one real embedded PostgreSQL per test session, a fresh database per test that asks for one.

``OLIST_DW_TEST_DSN`` points the suite at another PostgreSQL 15+ instead (a maintenance database on a server
where the suite may create and drop databases).

The suite runs in parallel with pytest-xdist (``-n auto`` in pyproject.toml; ``pytest -n 0`` runs it in one
process). Each worker is a session of its own: its own embedded server (its own data folder and Unix socket),
its own temporary root, its own Chromium profile. Tests never use fixed ports or the project's own ``.runner/``
home or ``target/`` folder. The tests of a file with module-scoped fixtures (a warehouse built once for the
file) run on one worker, which builds them once; the other tests are handed out one by one, the ``slow`` ones
first, so that no worker is left with a long test at the end (``pytest_xdist_make_scheduler`` below).
"""

from __future__ import annotations

import csv
import functools
import math
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
from typing import NoReturn

import psycopg
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from psycopg import conninfo, sql

from runner import database, pipeline, sail
from runner.errors import EnvironmentProblem
from runner.olist import BY_ENTITY
from runner.settings import PROJECT_DIR, Settings

# The xdist worker this process is ("gw0", "gw1", ...), or "main" without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per CPU this process may use (affinity and cgroup quota), not per CPU of the host.

    xdist's own count is psutil's, which ignores both: a container allowed 2 CPUs of a 64-core host would start
    64 workers, each with its own PostgreSQL and dbt. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def module_of(nodeid: str) -> str:
    """The test file of a node id (``tests/runner/test_x.py``)."""
    return nodeid.split("::", 1)[0]


@functools.cache
def shares_module_fixtures(rootpath: Path, module: str) -> bool:
    """Whether a test file defines a module-scoped fixture (a warehouse built once for its tests, say)."""
    try:
        return re.search(r"scope\s*=\s*[\"']module[\"']", (rootpath / module).read_text(encoding="utf-8")) is not None
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, slow tests first (the order otherwise kept): workers take tests in this order.

    So the long tests start first and the short ones fill in at the end. A test file with module-scoped fixtures
    moves whole (first if it holds a slow test), so that its fixtures are still built once. In one process
    (``-n 0``) the order is the files' own.
    """
    if WORKER == "main":
        return
    with_slow_tests = {module_of(item.nodeid) for item in items if item.get_closest_marker("slow")}

    def later(item: pytest.Item) -> bool:
        module = module_of(item.nodeid)
        if shares_module_fixtures(config.rootpath, module):
            return module not in with_slow_tests
        return item.get_closest_marker("slow") is None

    items.sort(key=later)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup`` (pyproject.toml) as this suite needs it; other ``--dist`` modes are xdist's own.

    - The tests of a file with module-scoped fixtures go to one worker together, which builds the fixtures once
      (xdist's own loadgroup would need ``xdist_group`` marks, and it ignores them under pytest 9.2: it groups
      by editing node ids, which pytest no longer reads; pytest-xdist issue #1386).
    - Every other test is its own unit, handed out in collection order (slow ones first), not reordered by size.
    - A worker is given its next unit only when it is down to its last test, not two ahead: near the end, a
      long test goes to the worker that is free rather than queueing behind another.
    """
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = module_of(nodeid)
            return module if shares_module_fixtures(config.rootpath, module) else nodeid

        def _reschedule(self, node) -> None:  # node: xdist's WorkerController
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    config.option.loadscopereorder = False
    return ModuleFixtureScheduling(config, log)


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


@pytest.fixture(scope="session")
def worker_database() -> str:
    """The name of the database this worker's tests get, one after the other: the same name for all of them.

    dbt keeps its parse of the project (``partial_parse.msgpack``) only while the profile's connection settings
    stay the same, the database name included: with one name per worker, a test's first dbt command can start
    from the parse the worker's previous test saved (see ``dbt_parse_cache``) instead of parsing the whole
    project again. The random part keeps workers and sessions sharing a server (``OLIST_DW_TEST_DSN``) apart.
    """
    return f"olist_test_{WORKER}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def dsn(server_dsn: str, worker_database: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards.

    Dropped (with any session left in it) and created again for every test: each test starts from an empty
    database, as if the name were new.
    """
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{worker_database}" with (force)')
        admin.execute(f'create database "{worker_database}"')
    yield conninfo.make_conninfo(server_dsn, dbname=worker_database)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{worker_database}" with (force)')


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


def read_rows(directory: Path, entity: str) -> list[dict[str, str]]:
    """The rows of an Olist file of ``directory`` (byte-order mark and all, as the export writes them)."""
    with (directory / BY_ENTITY[entity].file_name).open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def write_rows(directory: Path, entity: str, rows: list[dict[str, str]]) -> None:
    """Write an Olist file with its exact header; columns a row leaves out are empty."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / BY_ENTITY[entity].file_name).open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=BY_ENTITY[entity].columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


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


PARTIAL_PARSE = "partial_parse.msgpack"


def parsed_this_project(saved: Path) -> bool:
    """Whether dbt saved this parse of the project in ``PROJECT_DIR`` (not of a copy a test made and edited).

    dbt checks a saved parse against the files by content, not by folder: a parse of a copy would still be used,
    with paths into a folder that is gone. Such a parse is not passed on to the next test.
    """
    import msgpack  # dbt's own dependency

    try:
        manifest = msgpack.unpackb(saved.read_bytes(), strict_map_key=False)
        roots = {
            file["path"]["project_root"]
            for file_id, file in manifest["files"].items()
            if file_id.startswith(f"{manifest['metadata']['project_name']}://")
        }
    except (OSError, ValueError, KeyError, TypeError, msgpack.UnpackException):
        return False
    return roots == {str(PROJECT_DIR)}


@pytest.fixture(scope="session")
def dbt_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's latest dbt parses of the project (each target folder's, by its path inside the target)."""
    return tmp_path_factory.mktemp("dbt-parse-cache")


@pytest.fixture
def settings(dsn: str, tmp_path: Path, dbt_parse_cache: Path) -> Iterator[Settings]:
    """Runner settings for one test: its own home (profile, dbt artefacts, lineage) and database.

    The home's dbt target folders start with the parses the worker's previous tests saved there; dbt uses one
    only if nothing it depends on changed (dbt version, connection settings, --vars, the environment variables
    dbt_project.yml reads, every project file by content) and parses again what did. Afterwards the test's own
    latest parses are kept for the next test.
    """
    settings = replace(Settings.from_environment(), home=tmp_path / "home", dsn=dsn)
    seeded = {}
    for cached in dbt_parse_cache.rglob(PARTIAL_PARSE):
        saved = settings.target_dir / cached.relative_to(dbt_parse_cache)
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cached, saved)
        seeded[saved] = saved.stat().st_mtime_ns
    yield settings
    for saved in settings.target_dir.rglob(PARTIAL_PARSE) if settings.target_dir.is_dir() else ():
        if saved.stat().st_mtime_ns != seeded.get(saved) and parsed_this_project(saved):
            cached = dbt_parse_cache / saved.relative_to(settings.target_dir)
            cached.parent.mkdir(parents=True, exist_ok=True)
            staging = cached.with_suffix(".tmp")
            shutil.copy2(saved, staging)
            staging.replace(cached)


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


ARTIFACTS = PROJECT_DIR / "test-artifacts"  # git-ignored
# A deadline for a page to load and draw, never a measured duration: the machine may be busy with other workers.
PAGE_TIMEOUT_MS = 180_000
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root (CI containers) Chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",  # no network beyond the local pages under test
]

# The visible text of the page and of every open shadow root in it: ``innerText`` stops at a shadow host, and
# marimo draws callouts and charts in shadow roots.
PAGE_TEXT = """() => {
    const parts = [document.body.innerText];
    const walk = (root) => {
        for (const element of root.querySelectorAll('*')) {
            if (!element.shadowRoot) continue;
            for (const child of element.shadowRoot.children) if (child.innerText) parts.push(child.innerText);
            walk(element.shadowRoot);
        }
    };
    walk(document);
    return parts.join('\\n');
}"""


def visible_text(page: Page) -> str:
    """The page's text as a person reads it (shadow roots included), whitespace collapsed to single spaces.

    Collapsed so that a table row reads as one line of words, whatever the cells' tabs and the layout's newlines.
    """
    return re.sub(r"\s+", " ", page.evaluate(PAGE_TEXT))


def open_page(page: Page, url: str) -> None:
    """Load ``url`` as a new document, as if typed into a fresh tab.

    ``page.goto`` to the same document with another ``#fragment`` only changes the hash, and single-page apps read
    some of their address only when they load (dbt docs opens its lineage graph from ``?g_v=1`` then).
    """
    page.goto("about:blank")
    page.goto(url)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``test-artifacts/screenshots/<name>.png``; a (nearly) empty image fails."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000, f"{path} is (nearly) empty"
    return path


# The team's shared folder beside the project: published specifications, the public Olist subset (each with its
# PROVENANCE.md). A clone outside the team has none.
SHARED_DIR = PROJECT_DIR.parent / "shared"


def unavailable(requirement: str, reason: str) -> NoReturn:
    """Skip a test for want of something outside the project; fail it instead where ``OLIST_DW_REQUIRE_<requirement>``
    is set (CI sets each, .ci/run), so that a missing browser, folder or runtime can not pass for a green run."""
    variable = f"OLIST_DW_REQUIRE_{requirement}"
    if os.environ.get(variable):
        pytest.fail(f"{reason}, and {variable} requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared``, or a skip saying it is absent (a failure in CI): a clone outside the team has none."""
    if not SHARED_DIR.is_dir():
        unavailable("SHARED", f"{SHARED_DIR} is absent: the team's shared specs and data are not beside this clone")
    return SHARED_DIR


@pytest.fixture(scope="session")
def sail_ready() -> None:
    """Java and the ``sail`` extra, which the local Sail cluster needs, or a skip saying which is missing (a
    failure in CI): the runner's own checks decide, so a test skips for exactly the reasons ``sail start`` refuses."""
    try:
        sail.check_installation()
        sail.java_executable()
    except EnvironmentProblem as problem:
        unavailable("SAIL", str(problem))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's ``chromium``) under Playwright, one per worker: pages as a person sees them.

    Playwright's own browser builds are never downloaded; without Debian's the browser tests skip, or fail where
    ``OLIST_DW_REQUIRE_BROWSER`` (CI) requires a browser.
    """
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        unavailable("BROWSER", "headless Chromium is not installed (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own (no cookies or storage from another test), 1400 pixels wide."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    yield context.new_page()
    context.close()
