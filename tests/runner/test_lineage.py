"""OpenLineage as a lineage backend receives it: the events of a real run, the graph they draw, the HTTP transport.

Every event of a run (dbt-ol's and the runner's own) is validated against the published OpenLineage JSON Schemas
in ``../shared/specs/openlineage`` (see its PROVENANCE.md), offline: a ``referencing`` registry maps each schema's
``$id`` to its file, and nothing is fetched. The core schema checks a facet only as a facet (``_producer``,
``_schemaURL``); each facet is also checked against the published schema its ``_schemaURL`` names. Facets of an
integration's own (dbt-ol's ``dbt_*``) have no published schema: the core schema's check is theirs.

One warehouse is built for the run-based tests (a small generated dataset, ``load`` then two ``run`` commands
through the real CLI, so there are two window runs to tell apart); they read its lineage file. The HTTP tests
start a lineage receiver on a loopback port inside the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import structlog
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from openlineage.client.event_v2 import RunState
from psycopg import conninfo
from referencing import Registry, Resource

from runner import dbt, lineage
from runner.settings import PROJECT_DIR, Settings

TERMINAL_STATES = {"COMPLETE", "FAIL", "ABORT"}
MARTS = {
    "mart_customer_analytics",
    "mart_daily_orders",
    "mart_delivery_performance",
    "mart_executive_kpis",
    "mart_revenue",
    "mart_seller_performance",
}
EXPOSURES = {"executive_dashboard", "operations_daily_report"}
# The layers a path from a CSV file to an exposure crosses, in order; datasets of other schemas (quarantine,
# snapshots, metadata, elementary) are side branches and not on such a path.
LAYERS = {"raw": 1, "staging": 2, "core": 3, "mart": 4}


# ---------------------------------------------------------------------------------------------------------------
# The published schemas


@dataclass(frozen=True)
class Spec:
    """The published OpenLineage schemas: the registry of every file by ``$id``, and which facet each file defines."""

    registry: Registry
    core_id: str
    # Every published schema's $id.
    ids: frozenset[str]
    # The facet names (keys in a facets object) each facet schema defines, by that schema's $id.
    facet_keys: dict[str, frozenset[str]]

    @property
    def published_keys(self) -> frozenset[str]:
        return frozenset().union(*self.facet_keys.values())


@pytest.fixture(scope="module")
def spec(shared_dir: Path) -> Spec:
    """The schemas of ``../shared/specs/openlineage``, every one under its own ``$id``; no network, ever.

    A registry without a ``retrieve`` function cannot fetch: a ``$ref`` to a schema not in the folder is an error.
    """
    folder = shared_dir / "specs" / "openlineage"
    files = sorted(folder.rglob("*.json"))
    assert (folder / "OpenLineage.json").is_file() and len(files) > 30, f"{folder} does not hold the published spec"
    contents = {path: json.loads(path.read_text(encoding="utf-8")) for path in files}
    registry = Registry().with_resources(
        (content["$id"], Resource.from_contents(content)) for content in contents.values()
    )
    core = contents[folder / "OpenLineage.json"]
    return Spec(
        registry=registry.crawl(),
        core_id=core["$id"],
        ids=frozenset(content["$id"] for content in contents.values()),
        facet_keys={
            content["$id"]: frozenset(content.get("properties", {}))
            for path, content in contents.items()
            if path.parent.name == "facets"
        },
    )


def schema_errors(spec: Spec, schema_url: str, instance: object, where: str) -> list[str]:
    """What the schema at ``schema_url`` (an ``$id`` with its ``#/$defs/...`` pointer) finds wrong in ``instance``.

    Formats are asserted (uuid, date-time, uri): JSON Schema only annotates them unless a checker is given.
    """
    validator = Draft202012Validator(
        {"$ref": schema_url}, registry=spec.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    found = []
    for error in validator.iter_errors(instance):
        deepest = best_match(error.context) if error.context else error
        path = "/".join(str(part) for part in deepest.absolute_path)
        found.append(f"{where}{'/' + path if path else ''}: {deepest.message[:300]}")
    return found


def facets_of(event: dict) -> Iterator[tuple[str, str, dict]]:
    """(where, facet name, facet) for every facet of an event: run, job, and each dataset's three kinds."""
    yield from ((f"run.facets.{key}", key, facet) for key, facet in (event["run"].get("facets") or {}).items())
    yield from ((f"job.facets.{key}", key, facet) for key, facet in (event["job"].get("facets") or {}).items())
    for side, own in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for index, dataset in enumerate(event.get(side) or []):
            for kind in ("facets", own):
                for key, facet in (dataset.get(kind) or {}).items():
                    yield f"{side}[{index}].{kind}.{key}", key, facet


def violations(spec: Spec, event: dict) -> list[str]:
    """Everything the published schemas find wrong with one event, as readable lines (none for a valid one)."""
    label = f"{event.get('eventType')} {event.get('job', {}).get('name')}"
    schema_url = event.get("schemaURL", "")
    if schema_url.split("#")[0] != spec.core_id:
        return [f"{label}: schemaURL {schema_url!r} is not the published core schema {spec.core_id}"]
    found = schema_errors(spec, schema_url, event, label)
    for where, key, facet in facets_of(event):
        facet_url = facet.get("_schemaURL", "") if isinstance(facet, dict) else ""
        facet_id = facet_url.split("#")[0]
        if facet_id in spec.facet_keys:
            if key not in spec.facet_keys[facet_id]:
                found.append(f"{label} {where}: {facet_id} defines {sorted(spec.facet_keys[facet_id])}, not {key!r}")
            found += schema_errors(spec, facet_url, facet, f"{label} {where}")
        elif key in spec.published_keys:
            found.append(f"{label} {where}: a published facet whose _schemaURL {facet_url!r} is not published here")
    return found


def assert_valid(spec: Spec, events: list[dict]) -> None:
    found = [line for event in events for line in violations(spec, event)]
    assert not found, f"{len(found)} schema violations, first ones:\n" + "\n".join(found[:25])


# ---------------------------------------------------------------------------------------------------------------
# Runs, their hierarchy and the dataset graph


def runs_of(events: list[dict]) -> dict[str, list[dict]]:
    """The events of each run, by run id, in the order they were written."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        runs[event["run"]["runId"]].append(event)
    return runs


def parent_facet(run_events: list[dict]) -> dict | None:
    """A run's parent facet; every event of the run must carry the same one."""
    parents = {json.dumps((event["run"].get("facets") or {}).get("parent"), sort_keys=True) for event in run_events}
    assert len(parents) == 1, f"the events of run {run_events[0]['run']['runId']} disagree on its parent: {parents}"
    return json.loads(parents.pop())


def job_of(run_events: list[dict]) -> tuple[str, str]:
    jobs = {(event["job"]["namespace"], event["job"]["name"]) for event in run_events}
    assert len(jobs) == 1, f"one run, several jobs: {jobs}"
    return jobs.pop()


def dataset_key(dataset: dict) -> tuple[str, str]:
    return dataset["namespace"], dataset["name"]


def layer(node: tuple[str, str]) -> int | None:
    """0 for a CSV file, 1 to 4 for raw, staging, core and mart tables, 5 for an exposure; None off the path."""
    kind, name = node
    if kind == "exposure":
        return 5
    if kind.startswith("file"):
        return 0 if name.endswith(".csv") else None
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) == 3 else None


def on_path_from(edges: dict[tuple[str, str], set[tuple[str, str]]], start: tuple[str, str]) -> set[tuple[str, str]]:
    """The nodes a path from ``start`` reaches through the layers in order: staying in one, or going one on."""
    reached, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for following in edges[node]:
            step = layer(following)
            if step is not None and step - layer(node) in (0, 1) and following not in reached:
                reached.add(following)
                todo.append(following)
    return reached


# ---------------------------------------------------------------------------------------------------------------
# One real run for the run-based tests


@dataclass(frozen=True)
class LineageRun:
    """A warehouse built by ``load`` and two ``run`` commands, with the lineage they wrote and the ledger's windows."""

    settings: Settings
    dsn: str
    events: list[dict]
    # (window start, window end, status, openlineage_run_id) of every ledger row.
    windows: list[tuple[str, str, str, str]]
    csv_files: list[Path]


def without_lineage_settings(environment: dict[str, str]) -> dict[str, str]:
    """The environment minus the shell's OPENLINEAGE_* settings: the run's events go to its own lineage file."""
    return {key: value for key, value in environment.items() if not key.startswith("OPENLINEAGE")}


@pytest.fixture(scope="module")
def lineage_run(server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LineageRun]:
    """One small warehouse built through the real CLI, its lineage file read once for all the tests of this file.

    60 orders over 45 days from 2017-01-01: ``run --window`` builds January, then a plain ``run`` builds what is
    due (the first half of February), so two window runs, each with its own dbt-ol run and publish.
    """
    name = f"olist_test_lineage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    dsn = conninfo.make_conninfo(server_dsn, dbname=name)
    root = tmp_path_factory.mktemp("lineage")
    home, data = root / "home", root / "data"
    environment = {**without_lineage_settings(dict(os.environ)), "OLIST_DW_HOME": str(home), "OLIST_DW_DSN": dsn}

    def cli(*arguments: str) -> None:
        completed = subprocess.run(
            [sys.executable, "-m", "runner", *arguments],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        assert completed.returncode == 0, f"runner {' '.join(arguments)}:\n{completed.stderr[-4000:]}"

    try:
        cli("generate", "--out", str(data), "--orders", "60", "--days", "45")
        cli("load", "--source", str(data))
        cli("run", "--window", "2017-01-01..2017-02-01")
        cli("run")
        settings = Settings.from_environment(dsn=dsn, home=home)
        with psycopg.connect(dsn) as connection:
            windows = connection.execute(
                "select window_start::text, window_end::text, status, openlineage_run_id::text"
                " from metadata.window_runs order by window_start"
            ).fetchall()
        with settings.lineage_file.open(encoding="utf-8") as stream:
            events = [json.loads(line) for line in stream]
        yield LineageRun(settings, dsn, events, windows, sorted(data.glob("*.csv")))
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.mark.slow
def test_the_formats_the_schemas_use_are_asserted() -> None:
    """A format with no checker installed passes anything: each one the published schemas use must fail a bad value."""
    checker = Draft202012Validator.FORMAT_CHECKER
    for name, bad, good in (
        ("uuid", "not-a-uuid", "0f9f1c5e-3b1a-4c55-9d0e-8f6a2b7c1d00"),
        ("date-time", "2026-13-01 25:00", "2026-12-01T10:00:00.000Z"),
        ("uri", "no scheme here", "https://openlineage.io/spec/2-0-2/OpenLineage.json"),
    ):
        assert checker.conforms(good, name), f"{name}: {good!r} refused"
        assert not checker.conforms(bad, name), f"{name}: {bad!r} passed: is its validator installed?"


def test_every_event_of_a_run_is_valid_against_the_published_schemas(lineage_run: LineageRun, spec: Spec) -> None:
    events = lineage_run.events
    producers = Counter(event["producer"] for event in events)
    assert lineage.PRODUCER in producers and any("integration/dbt" in producer for producer in producers), producers
    # Every facet name the published spec defines that the run uses is checked against its own schema, dbt-ol's
    # column lineage, schemas, data-quality assertions and parents as much as the runner's own facets.
    used = {key for event in events for _, key, _ in facets_of(event)}
    assert {"parent", "jobType", "schema", "columnLineage", "outputStatistics", "documentation"} <= used, used

    assert_valid(spec, events)


@pytest.mark.slow
def test_every_run_starts_once_and_ends_once(lineage_run: LineageRun) -> None:
    """The core schema's rule for a run: one START and one of COMPLETE, ABORT or FAIL, after it."""
    for run_id, run_events in runs_of(lineage_run.events).items():
        states = [event["eventType"] for event in run_events]
        job_of(run_events)
        assert states.count("START") == 1 and sum(state in TERMINAL_STATES for state in states) == 1, (run_id, states)
        start = next(event for event in run_events if event["eventType"] == "START")
        end = next(event for event in run_events if event["eventType"] in TERMINAL_STATES)
        started, ended = (datetime.fromisoformat(event["eventTime"]) for event in (start, end))
        assert started <= ended, (run_id, start["eventTime"], end["eventTime"])
        assert end["eventType"] == "COMPLETE", f"{job_of(run_events)[1]} did not complete: {states}"


@pytest.mark.slow
def test_each_window_run_is_one_connected_run_hierarchy(lineage_run: LineageRun) -> None:
    """Every run of a `run` command hangs from its window run; each window in the ledger names that run."""
    runs = runs_of(lineage_run.events)
    parents = {run_id: parent_facet(run_events) for run_id, run_events in runs.items()}
    jobs = {run_id: job_of(run_events) for run_id, run_events in runs.items()}

    def root_of(run_id: str) -> str:
        seen = [run_id]
        while parents[seen[-1]] is not None:
            parent_id = parents[seen[-1]]["run"]["runId"]
            assert parent_id in runs, f"{jobs[seen[-1]][1]} names parent run {parent_id}, which sent no event"
            assert parent_id not in seen, f"a cycle of parents: {seen}"
            seen.append(parent_id)
        return seen[-1]

    for run_id, parent in parents.items():
        if parent is None:
            continue
        parent_id = parent["run"]["runId"]
        assert root_of(parent_id) in runs
        # The parent facet names the parent's job as the parent's own events do, and the root is the real root.
        assert (parent["job"]["namespace"], parent["job"]["name"]) == jobs[parent_id], (jobs[run_id], parent)
        if "root" in parent:
            assert parent["root"]["run"]["runId"] == root_of(run_id), (jobs[run_id], parent)
            assert (parent["root"]["job"]["namespace"], parent["root"]["job"]["name"]) == jobs[root_of(run_id)]

    roots = {run_id for run_id, parent in parents.items() if parent is None}
    window_runs = {run_id for run_id in roots if jobs[run_id][1] == lineage.RUN_JOB}
    load_runs = {run_id for run_id in roots if jobs[run_id][1].startswith(f"{lineage.LOAD_JOB}.")}
    assert roots == window_runs | load_runs, {jobs[run_id][1] for run_id in roots - window_runs - load_runs}
    assert len(load_runs) == len(lineage_run.csv_files)

    # One window run per `run` command, and each ledger window names the one that built it.
    assert len(window_runs) == 2
    assert {row[2] for row in lineage_run.windows} == {"succeeded"}
    assert {row[3] for row in lineage_run.windows} == window_runs

    for window_run in window_runs:
        members = {run_id for run_id in runs if run_id != window_run and root_of(run_id) == window_run}
        children = {run_id for run_id in members if parents[run_id]["run"]["runId"] == window_run}
        dbt_runs = {
            run_id
            for run_id in children
            if runs[run_id][0]["job"]["facets"].get("jobType", {}).get("integration") == "DBT"
        }
        assert len(dbt_runs) == 1, f"window run {window_run}: dbt runs {[jobs[run_id][1] for run_id in dbt_runs]}"
        published = {jobs[run_id][1] for run_id in children - dbt_runs}
        assert published == {f"{lineage.PUBLISH_JOB}.mart.{mart}" for mart in MARTS} | {
            f"{lineage.EXPOSURE_JOB}.{exposure}" for exposure in EXPOSURES
        }
        # dbt's nodes (models, tests, snapshots) are the dbt run's children: the hierarchy has no loose ends.
        (dbt_run,) = dbt_runs
        nodes = members - children
        assert len(nodes) > 40
        assert {parents[run_id]["run"]["runId"] for run_id in nodes} == {dbt_run}


@pytest.mark.slow
def test_the_graph_runs_from_every_csv_file_through_each_layer_to_the_exposures(lineage_run: LineageRun) -> None:
    """In each window run's graph: CSV file -> raw.* -> staging -> core -> marts -> exposures, nodes joined by name.

    The load runs (their own command) feed every window; the rest of the graph is the window run's own runs.
    Edges go from each input to each output of a completed run (to the exposure itself for an exposure's run);
    a path may stay in a layer (base -> stg, dim -> fact) or go one layer on, never skip one.
    """
    runs = runs_of(lineage_run.events)
    parents = {run_id: parent_facet(run_events) for run_id, run_events in runs.items()}

    def root_of(run_id: str) -> str:
        while parents[run_id] is not None:
            run_id = parents[run_id]["run"]["runId"]
        return run_id

    load_runs = {run_id for run_id, run_events in runs.items() if job_of(run_events)[1].startswith(lineage.LOAD_JOB)}
    window_runs = {row[3] for row in lineage_run.windows}
    csv_nodes = {dataset_key(dataset) for run_id in load_runs for event in runs[run_id] for dataset in event["inputs"]}
    assert sorted(Path(name).name for _, name in csv_nodes) == sorted(path.name for path in lineage_run.csv_files)

    for window_run in window_runs:
        edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for run_id, run_events in runs.items():
            if run_id not in load_runs and root_of(run_id) != window_run:
                continue
            for event in run_events:
                if event["eventType"] != "COMPLETE":
                    continue
                job_name = event["job"]["name"]
                if job_name.startswith(f"{lineage.EXPOSURE_JOB}."):
                    outputs = {("exposure", job_name.removeprefix(f"{lineage.EXPOSURE_JOB}."))}
                else:
                    outputs = {dataset_key(dataset) for dataset in event["outputs"]}
                for dataset in event["inputs"]:
                    edges[dataset_key(dataset)] |= outputs

        reached_from = {csv: on_path_from(edges, csv) for csv in csv_nodes}
        for csv, reached in reached_from.items():
            assert {layer(node) for node in reached} == {0, 1, 2, 3, 4, 5}, (
                f"window run {window_run}: {Path(csv[1]).name} reaches layers {sorted({layer(n) for n in reached})}"
            )
        everything = set().union(*reached_from.values())
        assert {name for kind, name in everything if kind == "exposure"} == EXPOSURES
        assert {node[1].split(".")[-1] for node in everything if layer(node) == 4} == MARTS
        # The orders file feeds the executive dashboard through the tables a person would name.
        (orders,) = (csv for csv in csv_nodes if csv[1].endswith("olist_orders_dataset.csv"))
        names = {name for _, name in reached_from[orders]}
        database_name = conninfo.conninfo_to_dict(lineage_run.dsn)["dbname"]
        assert {
            f"{database_name}.raw.orders",
            f"{database_name}.staging.stg_olist__orders",
            f"{database_name}.core.fact_orders",
            f"{database_name}.mart.mart_executive_kpis",
            "executive_dashboard",
        } <= names


# ---------------------------------------------------------------------------------------------------------------
# HTTP transport


class Receiver:
    """A lineage backend on a loopback port: records every POST and answers it as ``answer`` says (201 by default).

    ``attempts`` holds (HTTP status answered, event) for every request, ``received`` the events it accepted.
    """

    def __init__(self, answer: Callable[[int, dict], int] | None = None) -> None:
        self.answer = answer or (lambda index, event: 201)
        self.attempts: list[tuple[int, dict]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event = json.loads(body)
                with receiver.lock:
                    status = 404 if self.path != "/api/v1/lineage" else receiver.answer(len(receiver.attempts), event)
                    receiver.attempts.append((status, event))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def received(self) -> list[dict]:
        with self.lock:
            return [event for status, event in self.attempts if status < 300]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def lineage_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No OPENLINEAGE_* setting from the shell, none left behind (the client writes some into os.environ), no proxy.

    (Given OPENLINEAGE_URL, the client adds ``OPENLINEAGE__TRANSPORT__TRANSPORTS__DEFAULT_HTTP__*`` to the process
    environment, which would reach every later dbt-ol child of this test process.)
    """
    for key in [key for key in os.environ if key.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(key)
    # The receiver is on the loopback interface: never through a proxy the shell may name (requests honours it).
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(key, "127.0.0.1,localhost")
    yield monkeypatch
    for key in [key for key in os.environ if key.startswith("OPENLINEAGE")]:
        del os.environ[key]


# A connection string for dataset names only: the runner's own events name tables by it, nothing connects.
NAMING_DSN = "postgresql://olist@127.0.0.1:5432/olist_dw"


def emit_a_window(settings: Settings, csv: Path) -> uuid.UUID:
    """The runner's own events of a load and a window run, sent directly (no dbt), as the commands send them."""
    window_run = uuid.uuid4()
    lineage.emit_file_loaded(settings, NAMING_DSN, csv, "raw.orders", 2)
    lineage.emit_run(settings, RunState.START, window_run)
    lineage.emit_mart_published(settings, NAMING_DSN, "mart.mart_daily_orders", ["core.fact_orders"], window_run)
    lineage.emit_exposures(
        settings,
        NAMING_DSN,
        [lineage.Exposure("operations_daily_report", "analysis", "Orders per day.", "Ops", ["mart.mart_daily_orders"])],
        window_run,
    )
    lineage.emit_run(settings, RunState.COMPLETE, window_run)
    return window_run


def shape(event: dict) -> tuple:
    """An event without what differs between two sendings (run ids, times): type, job, datasets, facet names."""
    return (
        event["eventType"],
        event["job"]["name"],
        sorted(event["job"].get("facets", {})),
        sorted(event["run"].get("facets", {})),
        [dataset_key(dataset) for dataset in event.get("inputs", [])],
        [dataset_key(dataset) for dataset in event.get("outputs", [])],
    )


def test_the_runners_events_reach_an_http_receiver_as_they_reach_the_file_despite_a_transient_error(
    lineage_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = replace(Settings.from_environment(), home=tmp_path / "home")
    csv = tmp_path / "olist_orders_dataset.csv"
    csv.write_text("order_id\na\nb\n", encoding="utf-8")
    emit_a_window(settings, csv)
    in_file = [json.loads(line) for line in settings.lineage_file.read_text(encoding="utf-8").splitlines()]

    # The receiver is briefly down for its first two requests (a restart): the client's retries carry the event.
    with Receiver(lambda index, event: 503 if index < 2 else 201) as receiver:
        lineage_environment.setenv("OPENLINEAGE_URL", receiver.url)
        window_run = emit_a_window(settings, csv)

    assert [shape(event) for event in receiver.received] == [shape(event) for event in in_file]
    assert len(in_file) == 8
    # The first event was sent three times and accepted once; none is missing or doubled.
    assert [status for status, _ in receiver.attempts[:3]] == [503, 503, 201]
    assert len({json.dumps(event, sort_keys=True) for _, event in receiver.attempts[:3]}) == 1
    assert len(receiver.attempts) == len(receiver.received) + 2
    assert len({(event["run"]["runId"], event["eventType"]) for event in receiver.received}) == 8
    # The publish and exposure runs are children of the window run (and it is their root).
    children = [event for event in receiver.received if "parent" in event["run"]["facets"]]
    assert {event["run"]["facets"]["parent"]["run"]["runId"] for event in children} == {str(window_run)}
    assert {event["run"]["facets"]["parent"]["root"]["run"]["runId"] for event in children} == {str(window_run)}
    # Nothing went to the file the second time: the URL replaces it.
    assert len(settings.lineage_file.read_text(encoding="utf-8").splitlines()) == 8


def test_the_runners_events_are_valid_against_the_published_schemas(
    lineage_environment: pytest.MonkeyPatch, tmp_path: Path, spec: Spec
) -> None:
    """The runner's own events, without a run; and the check is not vacuous: broken copies are refused."""
    settings = replace(Settings.from_environment(), home=tmp_path / "home")
    csv = tmp_path / "olist_orders_dataset.csv"
    csv.write_text("order_id\na\n", encoding="utf-8")
    emit_a_window(settings, csv)
    events = [json.loads(line) for line in settings.lineage_file.read_text(encoding="utf-8").splitlines()]

    assert_valid(spec, events)

    exposure = next(event for event in events if event["job"]["name"].startswith(lineage.EXPOSURE_JOB))

    def broken(change: Callable[[dict], None]) -> list[str]:
        copy = json.loads(json.dumps(exposure))
        change(copy)
        return violations(spec, copy)

    assert broken(lambda event: event["run"].update(runId="not-a-uuid"))
    assert broken(lambda event: event.update(eventTime="yesterday"))
    assert broken(lambda event: event.update(producer="not a uri"))
    assert broken(lambda event: event["run"]["facets"]["parent"]["run"].update(runId="nope"))
    assert broken(lambda event: event["run"]["facets"]["parent"].pop("job"))
    assert broken(lambda event: event["job"]["facets"]["ownership"].update(owners="Ops"))
    assert broken(
        lambda event: event["run"]["facets"]["parent"].update(
            _schemaURL="https://openlineage.io/spec/facets/9-9-9/ParentRunFacet.json#/$defs/ParentRunFacet"
        )
    )


def test_an_event_the_receiver_refuses_or_never_takes_is_logged_and_the_command_goes_on(
    lineage_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 4xx is not retried; a 5xx is, five times (the client's default), then the event is given up, logged."""
    settings = replace(Settings.from_environment(), home=tmp_path / "home")
    csv = tmp_path / "olist_orders_dataset.csv"
    csv.write_text("order_id\na\n", encoding="utf-8")
    window_run = uuid.uuid4()

    with Receiver(lambda index, event: 400) as refusing, structlog.testing.capture_logs() as logs:
        lineage_environment.setenv("OPENLINEAGE_URL", refusing.url)
        lineage.emit_file_loaded(settings, NAMING_DSN, csv, "raw.orders", 1)  # a load goes on after it
    assert [status for status, _ in refusing.attempts] == [400, 400]
    lost = [entry for entry in logs if entry["event"] == "lineage event not sent"]
    assert [(entry["job"], entry["event_type"]) for entry in lost] == [
        (f"{lineage.LOAD_JOB}.raw.orders", "START"),
        (f"{lineage.LOAD_JOB}.raw.orders", "COMPLETE"),
    ]
    assert all(entry["log_level"] == "warning" and "400" in entry["error"] for entry in lost)

    down = True
    with (
        Receiver(lambda index, event: 503 if down else 201) as failing,
        structlog.testing.capture_logs() as logs,
    ):
        lineage_environment.setenv("OPENLINEAGE_URL", failing.url)
        lineage.emit_run(settings, RunState.START, window_run)
        assert [status for status, _ in failing.attempts] == [503] * 6
        down = False
        lineage.emit_run(settings, RunState.COMPLETE, window_run)  # the next event goes through again
    assert [(entry["event"], entry["event_type"], entry["run_id"]) for entry in logs] == [
        ("lineage event not sent", "START", str(window_run))
    ]
    assert [event["eventType"] for event in failing.received] == ["COMPLETE"]

    # The policy is the client's own setting, transport.retry of OPENLINEAGE_CONFIG (which dbt-ol reads too).
    lineage_environment.delenv("OPENLINEAGE_URL")
    for key in [key for key in os.environ if key.startswith("OPENLINEAGE__")]:
        del os.environ[key]  # the client's own copies of the URL (see lineage_environment)
    config = tmp_path / "openlineage.yml"
    with Receiver(lambda index, event: 503) as failing, structlog.testing.capture_logs() as logs:
        transport = {"type": "http", "url": failing.url, "retry": {"total": 1, "backoff_factor": 0}}
        config.write_text(yaml.safe_dump({"transport": transport}), encoding="utf-8")
        lineage_environment.setenv("OPENLINEAGE_CONFIG", str(config))
        lineage.emit_run(settings, RunState.FAIL, window_run)
    assert [status for status, _ in failing.attempts] == [503, 503]
    assert [(entry["event"], entry["event_type"]) for entry in logs] == [("lineage event not sent", "FAIL")]


@pytest.mark.slow
def test_dbt_ol_events_reach_an_http_receiver_and_the_ones_it_loses_are_logged(
    lineage_run: LineageRun, lineage_environment: pytest.MonkeyPatch, spec: Spec
) -> None:
    """dbt-ol, given OPENLINEAGE_URL by the runner's environment: one model rebuilt on the run's warehouse.

    The receiver fails its first request (retried, delivered) and refuses dbt's closing event (lost): dbt-ol says
    so only in its own output, and the runner's log must say it too.
    """
    lines_before = len(lineage_run.settings.lineage_file.read_text(encoding="utf-8").splitlines())
    parent = uuid.uuid4()

    def answer(index: int, event: dict) -> int:
        if index == 0:
            return 503
        return 400 if event["job"]["name"].startswith("dbt-run-") and event["eventType"] == "COMPLETE" else 201

    with Receiver(answer) as receiver, structlog.testing.capture_logs() as logs:
        lineage_environment.setenv("OPENLINEAGE_URL", receiver.url)
        dbt.run_dbt(
            lineage_run.settings,
            ["run", "--select", "stg_olist__sellers"],
            dsn=lineage_run.dsn,
            run_settings={"OLIST_DW_SKIP_ARTIFACTS_UPLOAD": "true"},
            parent_run_id=parent,
        )

    received = receiver.received
    assert_valid(spec, received)
    assert [status for status, _ in receiver.attempts][:2] == [503, 201]
    assert receiver.attempts[0][1] == receiver.attempts[1][1]
    by_job = {(event["job"]["name"], event["eventType"]) for event in received}
    (node_job,) = {name for name, _ in by_job if "stg_olist__sellers" in name}
    assert by_job == {("dbt-run-olist_dw", "START"), (node_job, "START"), (node_job, "COMPLETE")}
    wrapper = next(event for event in received if event["job"]["name"] == "dbt-run-olist_dw")
    assert wrapper["run"]["facets"]["parent"]["run"]["runId"] == str(parent)
    # The model's input is the raw table as the runner's load event named it: the graphs join across transports.
    node_complete = next(
        event for event in received if event["job"]["name"] == node_job and event["eventType"] == "COMPLETE"
    )
    raw_sellers = next(
        dataset_key(dataset)
        for event in lineage_run.events
        if event["job"]["name"] == f"{lineage.LOAD_JOB}.raw.sellers"
        for dataset in event["outputs"]
    )
    assert raw_sellers in {dataset_key(dataset) for dataset in node_complete["inputs"]}

    lost = [entry for entry in logs if entry["event"] == "lineage events not sent by dbt-ol"]
    assert len(lost) == 1 and lost[0]["events"] == 1 and lost[0]["first_event_type"] == "COMPLETE", logs
    assert "400" in lost[0]["error"]
    # With the URL set, nothing went to the lineage file.
    assert len(lineage_run.settings.lineage_file.read_text(encoding="utf-8").splitlines()) == lines_before
