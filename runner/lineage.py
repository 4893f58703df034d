"""OpenLineage events for the runner's own steps, so the lineage graph starts at the CSV file and ends at the exposures.

dbt's nodes get their events from ``dbt-ol``; the runner adds what dbt cannot see: each CSV file COPYed into its
``raw`` table (with the row count), the window run itself, which is the parent of dbt's run, the marts its publish
refreshes, and the exposures (dbt's declared consumers of the marts) that then read new data. Dataset names follow
dbt-ol's (``postgres://host:port`` and ``<database>.<schema>.<table>``) so the graphs join up.

Sending lineage never fails a command: an event the transport cannot deliver (after the HTTP transport's own
retries: see ``client``) is logged with its job, event type and run, and the command goes on. The same holds for
dbt-ol's events, whose losses dbt-ol reports only in its own output: ``report_lost_events`` brings them into the
runner's log.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    JobFacet,
    RunFacet,
    documentation_job,
    job_type_job,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
)
from openlineage.client.transport.file import FileConfig, FileTransport

from runner import database, sail
from runner.observability import log
from runner.settings import Settings

PRODUCER = "https://github.com/olist-dw/olist-dw/runner"
LOAD_JOB = "olist_dw.runner.load"
RUN_JOB = "olist_dw.runner.run"
PUBLISH_JOB = "olist_dw.runner.publish"
EXPOSURE_JOB = "olist_dw.exposure"
INTEGRATION = "OLIST_DW"

# dbt-ol's own log lines saying that events did not reach the transport (openlineage/dbt/__init__.py): one line per
# event it could not send, or one for a run whose events it could not even build.
DBT_OL_EVENT_LOST = re.compile(r"OpenLineage client failed to emit event (\w+) runId (\S+)\. Exception: (.*)$")
DBT_OL_RUN_LOST = re.compile(r"(OpenLineage failed to process dbt execution.*|OpenLineage events not emitted: .*)$")


@dataclass(frozen=True)
class Exposure:
    """A dbt exposure: a consumer of the marts (dashboard, analysis), as ``manifest.json`` declares it."""

    name: str
    type: str
    description: str
    owner: str | None
    # The tables it reads, as ``<schema>.<table>``.
    tables: list[str]


def client(settings: Settings) -> OpenLineageClient:
    """The configured transport (OPENLINEAGE_URL / OPENLINEAGE_CONFIG), else the same file dbt-ol writes to.

    With OPENLINEAGE_URL the client's HTTP transport is used as dbt-ol uses it, retries included: a connection
    error, a read error or a 500, 502, 503 or 504 answer is tried again up to five times over about ten seconds
    (urllib3's ``Retry``, backoff 0.3 s doubling), which rides out a receiver restarting; what still fails, or is
    refused outright (a 4xx), is lost and logged (see ``_send``). Set OPENLINEAGE_CONFIG to change that policy
    (``transport.retry`` of the client's YAML configuration): runner and dbt-ol both read it.
    """
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return OpenLineageClient()
    settings.lineage_file.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(settings.lineage_file), append=True)))


def namespace() -> str:
    return os.environ.get("OPENLINEAGE_NAMESPACE", "olist_dw")


def table_dataset(settings: Settings, dsn: str, table: str) -> tuple[str, str]:
    """(namespace, name) of a table as dbt-ol names it: PostgreSQL's, or on the ``sail`` target the Spark
    Connect server's (see runner/sail_lineage.py)."""
    endpoint = sail.endpoint(settings) if settings.target == "sail" else None
    if endpoint is not None:
        host, port = endpoint
        return f"spark://{host}:{port}", table
    target = database.profile_target(dsn)
    return f"postgres://{target['host']}:{target['port']}", f"{target['dbname']}.{table}"


def _event(
    state: RunState,
    run_id: uuid.UUID,
    job_name: str,
    *,
    run_facets: dict[str, RunFacet] | None = None,
    job_facets: dict[str, JobFacet] | None = None,
    job_type: str = "JOB",
    **parts: object,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(run_id), facets=run_facets or {}),
        job=Job(
            namespace=namespace(),
            name=job_name,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration=INTEGRATION, jobType=job_type
                ),
                **(job_facets or {}),
            },
        ),
        producer=PRODUCER,
        **parts,
    )


def _child_of(runner_run_id: uuid.UUID) -> dict[str, RunFacet]:
    """The parent facet of a run started by the window run: parent and root are that run, as in dbt-ol's events.

    The root lets a consumer group every run of one window run (dbt's nodes two levels down included) without
    walking the parents.
    """
    return {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(runner_run_id)),
            job=parent_run.Job(namespace=namespace(), name=RUN_JOB),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=str(runner_run_id)),
                job=parent_run.RootJob(namespace=namespace(), name=RUN_JOB),
            ),
        )
    }


def _send(settings: Settings, events: Iterable[RunEvent]) -> None:
    """Emit events in order; one the transport cannot deliver is logged and skipped, never raised.

    Lineage is a by-product: a lineage backend that is down must not stop a load or fail (or un-succeed) a window
    whose data is committed. Each lost event is one warning naming it, so what the backend misses can be found.
    """
    try:
        lineage = client(settings)
    except Exception as error:  # a bad OPENLINEAGE_URL / OPENLINEAGE_CONFIG: every event of this call is lost
        for event in events:
            _log_lost(event, error)
        return
    for event in events:
        try:
            lineage.emit(event)
        except Exception as error:  # the transports raise what their libraries raise (requests, OSError, ...)
            _log_lost(event, error)


def _log_lost(event: RunEvent, error: Exception) -> None:
    log.warning(
        "lineage event not sent",
        job=event.job.name,
        event_type=event.eventType.value,
        run_id=event.run.runId,
        error=str(error) or type(error).__name__,
    )


def emit_file_loaded(settings: Settings, dsn: str, path: Path, table: str, row_count: int) -> None:
    """START and COMPLETE of one file's load: the CSV file in, the raw table (with its new rows) out."""
    run_id = uuid.uuid4()
    table_namespace, table_name = table_dataset(settings, dsn, table)
    inputs = [InputDataset(namespace=f"file://{socket.gethostname()}", name=str(path.resolve()))]
    outputs = [
        OutputDataset(
            namespace=table_namespace,
            name=table_name,
            outputFacets={
                "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=row_count, size=path.stat().st_size
                )
            },
        )
    ]
    _send(
        settings,
        (
            _event(state, run_id, f"{LOAD_JOB}.{table}", inputs=inputs, outputs=outputs)
            for state in (RunState.START, RunState.COMPLETE)
        ),
    )


def emit_mart_published(settings: Settings, dsn: str, mart: str, parents: list[str], runner_run_id: uuid.UUID) -> None:
    """A mart refreshed by the runner's publish: its core tables in, the mart out, as a child of the window run."""
    inputs = [InputDataset(*table_dataset(settings, dsn, parent)) for parent in parents]
    outputs = [OutputDataset(*table_dataset(settings, dsn, mart))]
    run_id = uuid.uuid4()
    _send(
        settings,
        (
            _event(
                state,
                run_id,
                f"{PUBLISH_JOB}.{mart}",
                run_facets=_child_of(runner_run_id),
                inputs=inputs,
                outputs=outputs,
            )
            for state in (RunState.START, RunState.COMPLETE)
        ),
    )


def exposures(manifest: Path) -> list[Exposure]:
    """The exposures dbt's ``manifest.json`` declares, with the tables each reads."""
    parsed = json.loads(manifest.read_text(encoding="utf-8"))
    nodes = parsed["nodes"]
    found = []
    for exposure in parsed.get("exposures", {}).values():
        owner = exposure.get("owner") or {}
        owner_text = " ".join(
            part for part in (owner.get("name"), f"<{owner['email']}>" if owner.get("email") else None) if part
        )
        found.append(
            Exposure(
                name=exposure["name"],
                type=exposure["type"],
                description=" ".join((exposure.get("description") or "").split()),
                owner=owner_text or None,
                tables=[
                    f"{nodes[node]['schema']}.{nodes[node]['alias']}"
                    for node in exposure["depends_on"]["nodes"]
                    if node in nodes
                ],
            )
        )
    return sorted(found, key=lambda exposure: exposure.name)


def emit_exposures(settings: Settings, dsn: str, consumers: list[Exposure], runner_run_id: uuid.UUID) -> None:
    """Each exposure reading the marts just published, as a run of its own under the window run.

    An exposure is not run by the runner, but after a publish it reads new data: this run is that moment, with
    the marts it reads as inputs, so the graph ends at the dashboards and reports as dbt's docs do.
    """
    events = []
    for exposure in consumers:
        job_facets: dict[str, JobFacet] = {}
        if exposure.description:
            job_facets["documentation"] = documentation_job.DocumentationJobFacet(description=exposure.description)
        if exposure.owner:
            job_facets["ownership"] = ownership_job.OwnershipJobFacet(owners=[ownership_job.Owner(name=exposure.owner)])
        inputs = [InputDataset(*table_dataset(settings, dsn, table)) for table in exposure.tables]
        run_id = uuid.uuid4()
        events += [
            _event(
                state,
                run_id,
                f"{EXPOSURE_JOB}.{exposure.name}",
                run_facets=_child_of(runner_run_id),
                job_facets=job_facets,
                job_type=exposure.type.upper(),
                inputs=inputs,
                outputs=[],
            )
            for state in (RunState.START, RunState.COMPLETE)
        ]
    _send(settings, events)


def emit_run(settings: Settings, state: RunState, run_id: uuid.UUID) -> None:
    """The window run's own START / COMPLETE / FAIL: dbt-ol's events name it as their parent."""
    _send(settings, [_event(state, run_id, RUN_JOB, inputs=[], outputs=[])])


def report_lost_events(arguments: list[str], output: str) -> int:
    """Log the events dbt-ol could not send, which it reports only in its own output; return how many.

    dbt-ol, like the runner, goes on when its transport fails (after the same retries), but says so only on its
    stderr, which the runner keeps to itself when dbt succeeds: without this a lineage backend could miss a whole
    window's dbt events unnoticed.
    """
    lost = [match for line in output.splitlines() if (match := DBT_OL_EVENT_LOST.search(line))]
    runs_lost = [match for line in output.splitlines() if (match := DBT_OL_RUN_LOST.search(line))]
    if lost:
        log.warning(
            "lineage events not sent by dbt-ol",
            command=f"dbt {' '.join(arguments[:1])}",
            events=len(lost),
            first_event_type=lost[0][1],
            first_run_id=lost[0][2],
            error=lost[0][3],
        )
    for match in runs_lost:
        log.warning("lineage events not sent by dbt-ol", command=f"dbt {' '.join(arguments[:1])}", error=match[1])
    return len(lost)
