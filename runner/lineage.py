"""OpenLineage events for the runner's own steps, so the lineage graph starts at the CSV file.

dbt's nodes get their events from ``dbt-ol``; the runner adds what dbt cannot see: each CSV file COPYed into its
``raw`` table (with the row count), and the window run itself, which is the parent of dbt's run. Dataset names
follow dbt-ol's (``postgres://host:port`` and ``<database>.<schema>.<table>``) so the graphs join up.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import job_type_job, output_statistics_output_dataset, parent_run
from openlineage.client.transport.file import FileConfig, FileTransport

from runner import database
from runner.settings import Settings

PRODUCER = "https://github.com/olist-dw/olist-dw/runner"
LOAD_JOB = "olist_dw.runner.load"
RUN_JOB = "olist_dw.runner.run"
PUBLISH_JOB = "olist_dw.runner.publish"


def client(settings: Settings) -> OpenLineageClient:
    """The configured transport (OPENLINEAGE_URL / OPENLINEAGE_CONFIG), else the same file dbt-ol writes to."""
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return OpenLineageClient()
    settings.lineage_file.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(settings.lineage_file), append=True)))


def namespace() -> str:
    return os.environ.get("OPENLINEAGE_NAMESPACE", "olist_dw")


def table_dataset(dsn: str, table: str) -> tuple[str, str]:
    """(namespace, name) of a table as dbt-ol names it."""
    target = database.profile_target(dsn)
    return f"postgres://{target['host']}:{target['port']}", f"{target['dbname']}.{table}"


def _event(state: RunState, run_id: uuid.UUID, job_name: str, **parts: object) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=str(run_id)),
        job=Job(
            namespace=namespace(),
            name=job_name,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="OLIST_DW", jobType="JOB")
            },
        ),
        producer=PRODUCER,
        **parts,
    )


def emit_file_loaded(settings: Settings, dsn: str, path: Path, table: str, row_count: int) -> None:
    """START and COMPLETE of one file's load: the CSV file in, the raw table (with its new rows) out."""
    run_id = uuid.uuid4()
    table_namespace, table_name = table_dataset(dsn, table)
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
    lineage = client(settings)
    for state in (RunState.START, RunState.COMPLETE):
        lineage.emit(_event(state, run_id, f"{LOAD_JOB}.{table}", inputs=inputs, outputs=outputs))


def emit_mart_published(settings: Settings, dsn: str, mart: str, parents: list[str], runner_run_id: uuid.UUID) -> None:
    """A mart refreshed by the runner's publish: its core tables in, the mart out, as a child of the window run."""
    inputs = [InputDataset(*table_dataset(dsn, parent)) for parent in parents]
    outputs = [OutputDataset(*table_dataset(dsn, mart))]
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=str(runner_run_id)), job=parent_run.Job(namespace=namespace(), name=RUN_JOB)
    )
    run_id = uuid.uuid4()
    lineage = client(settings)
    for state in (RunState.START, RunState.COMPLETE):
        event = _event(state, run_id, f"{PUBLISH_JOB}.{mart}", inputs=inputs, outputs=outputs)
        event.run.facets = {"parent": parent}
        lineage.emit(event)


def emit_run(settings: Settings, state: RunState, run_id: uuid.UUID) -> None:
    """The window run's own START / COMPLETE / FAIL: dbt-ol's events name it as their parent."""
    client(settings).emit(_event(state, run_id, RUN_JOB, inputs=[], outputs=[]))
