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
            connection.execute(migration.sql.encode())
            connection.execute(
                "insert into metadata.schema_migrations (version, name) values (%s, %s)",
                (migration.version, migration.name),
            )
    return pending


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
        "select batch_id from metadata.loaded_files where content_sha256 = %s", (content_sha256,)
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
) -> None:
    """Record a loaded file; call inside the transaction that loaded it."""
    connection.execute(
        "insert into metadata.loaded_files (batch_id, file_name, entity, content_sha256, byte_count, row_count)"
        " values (%s, %s, %s, %s, %s, %s)",
        (batch_id, file_name, entity, content_sha256, byte_count, row_count),
    )


def start_window(connection: psycopg.Connection, pipeline: str, start: datetime, end: datetime) -> uuid.UUID:
    run_id = uuid.uuid4()
    with connection.transaction():
        connection.execute(
            "insert into metadata.window_runs (run_id, pipeline, window_start, window_end, status)"
            " values (%s, %s, %s, %s, 'running')",
            (run_id, pipeline, start, end),
        )
    return run_id


def succeed_window(
    connection: psycopg.Connection, run_id: uuid.UUID, pipeline: str, end: datetime, invocation_id: str | None
) -> None:
    """Mark the window done and move the watermark in one transaction; the watermark never moves back."""
    with connection.transaction():
        connection.execute(
            "update metadata.window_runs set status = 'succeeded', finished_at = now(), dbt_invocation_id = %s"
            " where run_id = %s",
            (invocation_id, run_id),
        )
        connection.execute(
            "insert into metadata.watermarks (pipeline, watermark) values (%s, %s)"
            " on conflict (pipeline) do update set"
            " watermark = greatest(metadata.watermarks.watermark, excluded.watermark), updated_at = now()",
            (pipeline, end),
        )


def fail_window(connection: psycopg.Connection, run_id: uuid.UUID, message: str) -> None:
    with connection.transaction():
        connection.execute(
            "update metadata.window_runs set status = 'failed', finished_at = now(), error_message = %s"
            " where run_id = %s",
            (message, run_id),
        )


def watermark(connection: psycopg.Connection, pipeline: str) -> datetime | None:
    row = connection.execute("select watermark from metadata.watermarks where pipeline = %s", (pipeline,)).fetchone()
    return row[0] if row else None
