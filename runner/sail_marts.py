"""Versioned marts on Sail: every build writes the marts as tables of a new version, and readers are moved to it.

Sail has neither materialized views nor a schema rename, so the blue/green of runner/marts.py takes another form
there. Readers address ``mart.<name>``, a view. A window run numbers a new version in the ledger (PostgreSQL's
``metadata.mart_versions``, status ``built``) and dbt builds the marts as tables in ``mart__v<N>``
(``OLIST_DW_MART_SCHEMA``); once every model and test of the build passed, dbt's on-run-end hook (macro
``publish_mart_views``) re-creates each view of ``mart`` on the new version. Then the runner records the version
active with the windows it holds, in one PostgreSQL transaction, and drops the versions before the previous one.

``runner publish --target sail`` builds and publishes a version from core as it is (for a change of the mart models
with no window to build); ``publish --rollback --target sail`` points the views back at the version kept before
the active one, as it was built.

Readers never see a half-built version: a view moves only to tables that are whole and tested. What Sail cannot
give is the move of all the views at once: its catalog has no ``create or replace view`` nor ``alter view``, so
each view is dropped and created again, and a query in that instant finds no ``mart.<name>``; between two views,
one mart may be a version ahead of another.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import psycopg

from runner import dbt, delta, marts
from runner.errors import UsageError
from runner.observability import log
from runner.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The environment setting naming the schema dbt builds the marts in (dbt_project.yml, models: marts: +schema).
SCHEMA_SETTING = "OLIST_DW_MART_SCHEMA"


def start_version(connection: psycopg.Connection, definition: str) -> int:
    """Number the version a build is about to write and record it as built: a build cut short leaves a numbered
    leftover, which a later publish drops, never an unknown schema. ``definition``: the project's fingerprint."""
    with connection.transaction():
        connection.execute("lock table metadata.mart_versions in exclusive mode")
        version = connection.execute("select coalesce(max(version), 0) + 1 from metadata.mart_versions").fetchone()[0]
        connection.execute(
            "insert into metadata.mart_versions (version, status, definition_sha256) values (%s, 'built', %s)",
            (version, definition),
        )
    return version


def record_published(connection: psycopg.Connection, version: int) -> None:
    """Record ``version`` as the one readers see, the one before it retired; in the caller's transaction."""
    connection.execute(
        "update metadata.mart_versions set status = 'retired', deactivated_at = now()"
        " where status = 'active' and version <> %s",
        (version,),
    )
    connection.execute(
        "update metadata.mart_versions set status = 'active', activated_at = now(), deactivated_at = null"
        " where version = %s",
        (version,),
    )


def drop_old_versions(settings: Settings, spark: SparkSession, connection: psycopg.Connection) -> list[int]:
    """Drop every version but the active one and the one before it (kept to go back to): their tables, their
    schema, and, on the local cluster, their files, which Sail's catalog leaves behind when it drops a table."""
    kept = connection.execute(
        "select version from metadata.mart_versions where status = 'retired' order by deactivated_at desc limit 1"
    ).fetchall()
    old = connection.execute(
        "select version from metadata.mart_versions where status in ('built', 'retired', 'rolled_back')"
        " and version <> all(%s) and version < (select max(version) from metadata.mart_versions"
        " where status = 'active') order by version",
        ([version for (version,) in kept],),
    ).fetchall()
    dropped = []
    for (version,) in old:
        schema = marts.parked_schema(version)
        if spark.sql(f"show schemas like {delta.literal(schema)}").collect():
            for table in spark.sql(f"show tables in {delta.quoted(schema)}").collect():
                spark.sql(f"drop table if exists {delta.quoted(schema, table['tableName'])}")
            spark.sql(f"drop schema if exists {delta.quoted(schema)}")
        if (warehouse := delta.local_warehouse(settings)) is not None:
            shutil.rmtree(warehouse / f"{schema}.db", ignore_errors=True)
        connection.execute(
            "update metadata.mart_versions set status = 'dropped', dropped_at = now() where version = %s", (version,)
        )
        dropped.append(version)
    if dropped:
        log.info("mart versions dropped", versions=dropped)
    return dropped


def publish(settings: Settings, dsn: str, connection: psycopg.Connection, spark: SparkSession) -> marts.Publication:
    """``runner publish --target sail``: the marts built from core now as a new version, tested, and published by
    dbt's hook; then recorded, and the versions before the previous one dropped."""
    current = marts.active(connection)
    version = start_version(connection, dbt.project_fingerprint(settings.project_dir))
    dbt.run_dbt(
        settings,
        ["build", "--target", "sail", "--select", marts.SELECTOR],
        dsn=dsn,
        run_settings={SCHEMA_SETTING: marts.parked_schema(version), "OLIST_DW_SKIP_ARTIFACTS_UPLOAD": "true"},
    )
    with connection.transaction():
        record_published(connection, version)
    dropped = drop_old_versions(settings, spark, connection)
    return marts.Publication(version, current.version if current else None, True, dropped)


def roll_back(settings: Settings, dsn: str, connection: psycopg.Connection, spark: SparkSession) -> marts.Publication:
    """``runner publish --rollback --target sail``: the views of ``mart`` back on the version kept before the
    active one, as that version was built (the next run publishes a new version from core again)."""
    current = marts.active(connection)
    if current is None:
        raise UsageError("no mart version is active yet: nothing to roll back")
    kept = connection.execute(
        "select version from metadata.mart_versions where status = 'retired' and version < %s"
        " order by version desc limit 1",
        (current.version,),
    ).fetchone()
    schema = marts.parked_schema(kept[0]) if kept else None
    if schema is None or not spark.sql(f"show schemas like {delta.literal(schema)}").collect():
        raise UsageError(f"no earlier mart version is kept to return to (active: version {current.version})")
    names = [row["tableName"] for row in spark.sql(f"show tables in {delta.quoted(schema)}").collect()]
    arguments = json.dumps({"schema": schema, "names": names})
    dbt.run_dbt(
        settings, ["run-operation", "point_mart_views", "--target", "sail", "--args", arguments], dsn=dsn, lineage=False
    )
    with connection.transaction():
        connection.execute(
            "update metadata.mart_versions set status = 'rolled_back', deactivated_at = now() where version = %s",
            (current.version,),
        )
        record_published(connection, kept[0])
    log.info("mart version active again", version=kept[0], previous=current.version)
    return marts.Publication(kept[0], current.version, False, [])
