"""The runner's state in the ``metadata`` schema: migrations, load batches, loaded files, windows, watermark.

Each write that marks something done happens in the same transaction as the work it marks (or right after
it, under the same lock), so the ledger never claims more than the database holds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import psycopg
from psycopg.types.json import Jsonb

from runner.errors import EnvironmentProblem

MIGRATION_LOCK = "olist_dw.migrate"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The numbered SQL files shipped in ``runner/migrations``, in order."""
    found = []
    for entry in resources.files("runner.migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def migrate(connection: psycopg.Connection) -> list[Migration]:
    """Apply the migrations not applied yet, all in one transaction under a lock; safe to run twice or at once."""
    with connection.transaction():
        connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (MIGRATION_LOCK,))
        connection.execute("create schema if not exists metadata")
        connection.execute(
            "create table if not exists metadata.schema_migrations ("
            " version integer primary key, name text not null, applied_at timestamptz not null default now())"
        )
        applied = {row[0] for row in connection.execute("select version from metadata.schema_migrations")}
        pending = [migration for migration in migrations() if migration.version not in applied]
        for migration in pending:
            try:
                connection.execute(migration.sql.encode())
            except psycopg.errors.RaiseException as error:
                # A migration's own refusal, such as a step only a superuser may take: its message and hint.
                diagnostic = error.diag
                raise EnvironmentProblem(
                    f"migration {migration.version:04d}_{migration.name} cannot be applied:"
                    f" {diagnostic.message_primary}. {diagnostic.message_hint or ''}".rstrip()
                ) from error
            connection.execute(
                "insert into metadata.schema_migrations (version, name) values (%s, %s)",
                (migration.version, migration.name),
            )
    return pending


def applied_migrations(connection: psycopg.Connection) -> dict[int, datetime]:
    """Applied migration versions and when they were applied (empty before the first migration)."""
    exists = connection.execute("select to_regclass('metadata.schema_migrations') is not null").fetchone()[0]
    if not exists:
        return {}
    return dict(connection.execute("select version, applied_at from metadata.schema_migrations").fetchall())


def start_batch(connection: psycopg.Connection, source_dir: str) -> uuid.UUID:
    """Open a load batch and commit it, so that its files (each in its own transaction) can refer to it."""
    batch_id = uuid.uuid4()
    with connection.transaction():
        connection.execute(
            "insert into metadata.load_batches (batch_id, source_dir, status) values (%s, %s, 'running')",
            (batch_id, source_dir),
        )
    return batch_id


def finish_batch(connection: psycopg.Connection, batch_id: uuid.UUID, error: str | None = None) -> None:
    with connection.transaction():
        connection.execute(
            "update metadata.load_batches set status = %s, finished_at = now(), error_message = %s where batch_id = %s",
            ("failed" if error else "succeeded", error, batch_id),
        )


def loaded_file_batch(connection: psycopg.Connection, content_sha256: str) -> uuid.UUID | None:
    """The batch that already loaded these exact bytes, if any."""
    row = connection.execute(
        "select batch_id from metadata.loaded_files where content_sha256 = %s and rolled_back_at is null",
        (content_sha256,),
    ).fetchone()
    return row[0] if row else None


def record_file(
    connection: psycopg.Connection,
    *,
    batch_id: uuid.UUID,
    file_name: str,
    entity: str,
    content_sha256: str,
    byte_count: int,
    row_count: int,
    first_raw_id: int | None,
) -> None:
    """Record a loaded file; call inside the transaction that loaded it."""
    connection.execute(
        "insert into metadata.loaded_files"
        " (batch_id, file_name, entity, content_sha256, byte_count, row_count, first_raw_id)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        (batch_id, file_name, entity, content_sha256, byte_count, row_count, first_raw_id),
    )


@dataclass(frozen=True)
class LoadBatch:
    """One ``runner load``, as ``batches`` shows it: what an operator needs to pick a batch to roll back."""

    batch_id: uuid.UUID
    source_dir: str
    status: str
    started_at: datetime
    files: int
    rows: int
    rolled_back_at: datetime | None


def load_batches(connection: psycopg.Connection, *, limit: int = 20) -> list[LoadBatch]:
    """The newest load batches first, with how many files and rows each loaded."""
    rows = connection.execute(
        """
        select batches.batch_id, batches.source_dir, batches.status, batches.started_at,
            count(files.file_name), cast(coalesce(sum(files.row_count), 0) as bigint), batches.rolled_back_at
        from metadata.load_batches as batches
        left join metadata.loaded_files as files on files.batch_id = batches.batch_id
        group by batches.batch_id
        order by batches.started_at desc
        limit %s
        """,
        (limit,),
    ).fetchall()
    return [LoadBatch(*row) for row in rows]


@dataclass(frozen=True)
class WindowRun:
    """One row of the window ledger, as ``runs`` and ``status`` show it."""

    run_id: uuid.UUID
    runner_run_id: uuid.UUID | None
    window_start: datetime
    window_end: datetime
    status: str
    started_at: datetime
    finished_at: datetime | None
    dbt_invocation_id: str | None
    openlineage_run_id: uuid.UUID | None
    stage_durations_ms: dict[str, int]
    row_counts: dict[str, int]
    error_class: str | None
    error_message: str | None


WINDOW_RUN_COLUMNS = (
    "run_id, runner_run_id, window_start, window_end, status, started_at, finished_at, dbt_invocation_id,"
    " openlineage_run_id, stage_durations_ms, row_counts, error_class, error_message"
)


def start_windows(
    connection: psycopg.Connection,
    pipeline: str,
    windows: list[tuple[datetime, datetime]],
    *,
    runner_run_id: uuid.UUID,
    openlineage_run_id: uuid.UUID | None = None,
    project_fingerprint: str | None = None,
) -> list[uuid.UUID]:
    """Record the windows one runner run is about to build, as running; committed at once so others see them.

    Each row keeps the snapshot of this transaction, taken before dbt reads anything: the loads visible in it are
    the loads the build saw (runner/due.py compares it with each file's loading transaction).
    """
    run_ids = [uuid.uuid4() for _ in windows]
    with connection.transaction():
        for run_id, (start, end) in zip(run_ids, windows, strict=True):
            connection.execute(
                "insert into metadata.window_runs (run_id, runner_run_id, pipeline, window_start, window_end,"
                " status, openlineage_run_id, data_snapshot, project_fingerprint)"
                " values (%s, %s, %s, %s, %s, 'running', %s, pg_current_snapshot(), %s)",
                (run_id, runner_run_id, pipeline, start, end, openlineage_run_id, project_fingerprint),
            )
    return run_ids


def is_deployed(connection: psycopg.Connection, fingerprint: str) -> bool:
    """Whether this version of the dbt project was deployed here (Elementary's models built, artifacts uploaded)."""
    return bool(
        connection.execute(
            "select exists (select from metadata.project_deployments where fingerprint = %s)"
            " and to_regclass('elementary.dbt_run_results') is not null",
            (fingerprint,),
        ).fetchone()[0]
    )


def record_deployment(connection: psycopg.Connection, fingerprint: str) -> None:
    with connection.transaction():
        connection.execute(
            "insert into metadata.project_deployments (fingerprint) values (%s)"
            " on conflict (fingerprint) do update set deployed_at = now()",
            (fingerprint,),
        )


def record_success(
    connection: psycopg.Connection,
    run_ids: list[uuid.UUID],
    pipeline: str,
    end: datetime | None,
    *,
    invocation_id: str | None,
    stage_durations_ms: dict[str, int],
    row_counts: dict[uuid.UUID, dict[str, int]],
) -> None:
    """Mark windows succeeded and move the watermark to ``end`` (never back; None: leave it to the caller).

    The caller's transaction publishes with it."""
    for run_id in run_ids:
        connection.execute(
            "update metadata.window_runs set status = 'succeeded', finished_at = clock_timestamp(),"
            " dbt_invocation_id = %s, stage_durations_ms = %s, row_counts = %s where run_id = %s",
            (invocation_id, Jsonb(stage_durations_ms), Jsonb(row_counts.get(run_id, {})), run_id),
        )
    if end is not None:
        advance_watermark(connection, pipeline, end)


def advance_watermark(
    connection: psycopg.Connection, pipeline: str, watermark: datetime, *, cap: datetime | None = None
) -> None:
    """Move the watermark to ``watermark`` unless it is already past it (it never moves back), and never past ``cap``.

    The cap (the end of the data) also brings back a watermark an earlier release let run past the data, to the
    year of a mistyped purchase time, say.
    """
    connection.execute(
        "insert into metadata.watermarks (pipeline, watermark) values (%(pipeline)s, %(watermark)s)"
        " on conflict (pipeline) do update set"
        " watermark = least(greatest(metadata.watermarks.watermark, excluded.watermark), %(cap)s), updated_at = now()",
        {"pipeline": pipeline, "watermark": watermark, "cap": cap},
    )


def record_failure(
    connection: psycopg.Connection,
    run_ids: list[uuid.UUID],
    *,
    error_class: str,
    message: str,
    stage_durations_ms: dict[str, int] | None = None,
) -> None:
    with connection.transaction():
        for run_id in run_ids:
            connection.execute(
                "update metadata.window_runs set status = 'failed', finished_at = clock_timestamp(),"
                " error_class = %s, error_message = %s, stage_durations_ms = %s where run_id = %s",
                (error_class, message, Jsonb(stage_durations_ms or {}), run_id),
            )


def watermark(connection: psycopg.Connection, pipeline: str) -> datetime | None:
    row = connection.execute("select watermark from metadata.watermarks where pipeline = %s", (pipeline,)).fetchone()
    return row[0] if row else None


def last_success(connection: psycopg.Connection, pipeline: str) -> datetime | None:
    """When the newest successful window run finished (its publish committed); None before the first."""
    return connection.execute(
        "select max(finished_at) from metadata.window_runs where pipeline = %s and status = 'succeeded'", (pipeline,)
    ).fetchone()[0]


def window_runs(
    connection: psycopg.Connection, pipeline: str, *, status: str | None = None, limit: int = 20
) -> list[WindowRun]:
    """The newest ledger rows first, optionally of one status."""
    rows = connection.execute(
        f"select {WINDOW_RUN_COLUMNS} from metadata.window_runs"  # noqa: S608 - a constant column list
        " where pipeline = %s and (%s::text is null or status = %s)"
        " order by started_at desc, window_start desc limit %s",
        (pipeline, status, status, limit),
    ).fetchall()
    return [WindowRun(*row) for row in rows]


def gaps(connection: psycopg.Connection, pipeline: str) -> list[tuple[datetime, datetime]]:
    """Stretches of time inside the processed range that no succeeded window covers."""
    return connection.execute(
        """
        with succeeded as (
            select window_start, window_end from metadata.window_runs where pipeline = %s and status = 'succeeded'
        ),
        ordered as (
            select window_start,
                max(window_end) over (
                    order by window_start, window_end rows between unbounded preceding and 1 preceding
                ) as covered_until
            from succeeded
        )
        select covered_until, window_start from ordered where covered_until < window_start order by 1
        """,
        (pipeline,),
    ).fetchall()


def uncovered_failures(connection: psycopg.Connection, pipeline: str) -> list[tuple[datetime, datetime, str]]:
    """Windows whose latest run failed and that no later succeeded run covers, with that run's error class.

    What backfill rebuilds, ``status`` lists and the metrics count ('unknown' when a run recorded no class).
    """
    return connection.execute(
        """
        select distinct on (failed.window_start, failed.window_end)
            failed.window_start, failed.window_end, coalesce(failed.error_class, 'unknown')
        from metadata.window_runs as failed
        where failed.pipeline = %s and failed.status = 'failed'
            and not exists (
                select 1 from metadata.window_runs as later
                where later.pipeline = failed.pipeline and later.status = 'succeeded'
                    and later.started_at > failed.started_at
                    and later.window_start <= failed.window_start and later.window_end >= failed.window_end
            )
        order by failed.window_start, failed.window_end, failed.started_at desc
        """,
        (pipeline,),
    ).fetchall()


def failed_windows(connection: psycopg.Connection, pipeline: str) -> list[tuple[datetime, datetime]]:
    """Windows whose latest run failed and that no later succeeded run covers (see uncovered_failures)."""
    return [(start, end) for start, end, _ in uncovered_failures(connection, pipeline)]


def abandon_running(connection: psycopg.Connection, pipeline: str) -> int:
    """Mark failed the windows left 'running' by a runner that died; call holding the pipeline's lock.

    Whoever holds the lock is the only runner of the pipeline, so a window still 'running' belongs to a
    runner that was killed (its transaction, and with it anything it had not committed, rolled back).
    """
    with connection.transaction():
        cursor = connection.execute(
            "update metadata.window_runs set status = 'failed', finished_at = clock_timestamp(),"
            " error_class = 'Abandoned', error_message = 'the runner stopped before finishing this window'"
            " where pipeline = %s and status = 'running'",
            (pipeline,),
        )
    return cursor.rowcount
