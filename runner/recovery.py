"""Undoing damage: take a bad batch out of the warehouse, restore a dimension as it stood at a time.

Both commands are built so that an operator can run them again after any crash: each writes in one transaction,
and what still has to be rebuilt afterwards is recorded in the ledger in that same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from runner import database, dbt, ledger, lock, marts, pipeline
from runner.errors import UsageError, VersionConflict
from runner.observability import log, stage
from runner.olist import SOURCE_FILES
from runner.settings import PIPELINE, Settings

ROLLED_BACK = "BatchRolledBack"

# The order ids a batch touched, through each raw table that carries them (customers through their orders).
TOUCHED_ORDERS = """
    select order_id from raw.orders where _batch_id = %(batch)s
    union select order_id from raw.order_items where _batch_id = %(batch)s
    union select order_id from raw.order_payments where _batch_id = %(batch)s
    union select order_id from raw.order_reviews where _batch_id = %(batch)s
    union
    select orders.order_id from raw.orders as orders
    join raw.customers as customers on customers.customer_id = orders.customer_id
    where customers._batch_id = %(batch)s
"""


@dataclass
class BatchImpact:
    """What rolling a batch back changes: its rows per raw table, and the built windows to rebuild."""

    batch_id: uuid.UUID
    rolled_back_at: datetime | None
    rows: dict[str, int] = field(default_factory=dict)
    # Each window to rebuild, with the number of the batch's orders (or order children) purchased in it.
    windows: list[tuple[datetime, datetime, int]] = field(default_factory=list)


def batch_impact(connection: psycopg.Connection, batch_id: uuid.UUID) -> BatchImpact:
    """Read what a batch holds and which succeeded windows it reaches; changes nothing."""
    row = connection.execute(
        "select rolled_back_at from metadata.load_batches where batch_id = %s", (batch_id,)
    ).fetchone()
    if row is None:
        raise UsageError(f"no load batch {batch_id} (see `runner runs` and metadata.load_batches)")
    impact = BatchImpact(batch_id, row[0])
    for source in SOURCE_FILES:
        query = sql.SQL("select count(*) from raw.{} where _batch_id = %s").format(sql.Identifier(source.entity))
        impact.rows[source.raw_table] = connection.execute(query, (batch_id,)).fetchone()[0]
    # Every purchase time of every order the batch touched, from all batches: a batch that moved an order to
    # another day changes both days' windows.
    impact.windows = connection.execute(
        f"""
        with touched as ({TOUCHED_ORDERS}),
        purchases as (
            select orders.order_id, metadata.purchase_time(orders.order_purchase_timestamp) as purchased_at
            from raw.orders as orders
            join touched on touched.order_id = orders.order_id
        ),
        built as (
            select distinct window_start, window_end from metadata.window_runs
            where pipeline = %(pipeline)s and status = 'succeeded'
        )
        select built.window_start, built.window_end, count(distinct purchases.order_id)
        from built
        join purchases on purchases.purchased_at >= built.window_start and purchases.purchased_at < built.window_end
        group by 1, 2
        order by 1, 2
        """,  # noqa: S608 - TOUCHED_ORDERS is a constant query
        {"batch": batch_id, "pipeline": PIPELINE},
    ).fetchall()
    if not impact.windows and any(impact.rows.values()):
        # Reference data only (products, sellers, places): every window rebuilds it; the newest one will do.
        newest = connection.execute(
            "select window_start, window_end from metadata.window_runs"
            " where pipeline = %s and status = 'succeeded' order by window_end desc, started_at desc limit 1",
            (PIPELINE,),
        ).fetchone()
        if newest:
            impact.windows = [(newest[0], newest[1], 0)]
    return impact


def remove_batch(connection: psycopg.Connection, impact: BatchImpact) -> list[tuple[datetime, datetime]]:
    """Delete the batch's rows from raw and mark its windows for rebuilding, in one transaction.

    The windows are recorded as failed (error class ``BatchRolledBack``) in that transaction, so that if
    nothing runs after it (a crash), ``status`` shows them and ``backfill`` rebuilds them.
    """
    with connection.transaction():
        for source in SOURCE_FILES:
            query = sql.SQL("delete from raw.{} where _batch_id = %s").format(sql.Identifier(source.entity))
            connection.execute(query, (impact.batch_id,))
        connection.execute(
            "update metadata.load_batches set rolled_back_at = now() where batch_id = %s", (impact.batch_id,)
        )
        connection.execute(
            "update metadata.loaded_files set rolled_back_at = now() where batch_id = %s", (impact.batch_id,)
        )
        windows = [(start, end) for start, end, _ in impact.windows]
        runner_run_id = uuid.uuid4()
        run_ids = ledger.start_windows(connection, PIPELINE, windows, runner_run_id=runner_run_id)
        ledger.record_failure(
            connection,
            run_ids,
            error_class=ROLLED_BACK,
            message=f"batch {impact.batch_id} rolled back; the window must be rebuilt without it",
        )
    log.info("batch removed from raw", batch_id=str(impact.batch_id), rows=impact.rows, windows=len(windows))
    return windows


def windows_to_rebuild(connection: psycopg.Connection, batch_id: uuid.UUID) -> list[tuple[datetime, datetime]]:
    """The windows a rolled-back batch left to rebuild that no run has rebuilt since (after a crash, say)."""
    stale = set(ledger.failed_windows(connection, PIPELINE))
    marked = connection.execute(
        "select distinct window_start, window_end from metadata.window_runs"
        " where pipeline = %s and error_class = %s and error_message like %s",
        (PIPELINE, ROLLED_BACK, f"batch {batch_id} %"),
    ).fetchall()
    return sorted(window for window in marked if window in stale)


@dataclass(frozen=True)
class RestorePlan:
    """How a restore changes a table: rows added back, rows changed back, rows removed."""

    table: str
    as_of: datetime
    added: int
    changed: int
    removed: int

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


AUDIT_COLUMNS = ("created_at", "updated_at", "version")
RESTORABLE = ("core.dim_customer", "core.dim_product", "core.dim_seller")


def restore_dimension(connection: psycopg.Connection, table: str, as_of: datetime, *, dry_run: bool) -> RestorePlan:
    """Make ``table`` hold what its dbt snapshot says it held at ``as_of``, in one transaction.

    The table is rewritten in place, row by row, not swapped for a rebuilt copy: it keeps its identity, so its
    grants, indexes, triggers and the views that read it (bound to the relation, not to its name) go on working.
    Rows are written under optimistic locking: each update or delete requires the version read when the diff
    was made, so a row someone changed meanwhile stops the restore with a conflict naming its key. A restored
    row is a new version (updated_at now, version + 1), so the next snapshot records the restore as history.
    The marts are refreshed in the same transaction.
    """
    if table not in RESTORABLE:
        raise UsageError(f"{table} cannot be restored; the dimensions with a snapshot are {', '.join(RESTORABLE)}")
    schema, name = table.split(".")
    snapshot = sql.Identifier("snapshots", f"{name}_snapshot")
    target = sql.Identifier(schema, name)
    keys = unique_key(connection, schema, name)
    columns = [
        row[0]
        for row in connection.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
            " order by ordinal_position",
            (schema, name),
        )
    ]
    business = [column for column in columns if column not in AUDIT_COLUMNS]
    parts = {
        "target": target,
        "snapshot": snapshot,
        "keys": _columns(keys),
        "business": _columns(business),
        "restored_business": _columns(business, "restored"),
        "seen_business": _columns(business, "seen"),
        "target_business": _columns(business, "target"),
        "seen_restored": _join(keys, "seen", "restored"),
        "target_seen": _join(keys, "target", "seen"),
        "target_restored": _join(keys, "target", "restored"),
    }

    def execute(query: str, parameters: tuple = ()) -> psycopg.Cursor:
        return connection.execute(sql.SQL(query).format(**parts), parameters)

    with connection.transaction():
        if connection.execute("select to_regclass(%s) is null", (f"snapshots.{name}_snapshot",)).fetchone()[0]:
            raise UsageError(f"{table} has no snapshot yet: run a window first")
        execute(
            "create temporary table restored on commit drop as select {business}, created_at, version from {snapshot}"
            " where dbt_valid_from <= %s and (dbt_valid_to > %s or dbt_valid_to is null) and dbt_is_deleted = 'False'",
            (as_of, as_of),
        )
        if not connection.execute("select count(*) from restored").fetchone()[0]:
            raise UsageError(f"the snapshot of {table} holds no row valid at {as_of}: before the first snapshot?")
        # The rows as the diff reads them: the writes below must still find these versions.
        execute("create temporary table seen on commit drop as select {business}, version from {target}")
        plan = RestorePlan(
            table,
            as_of,
            added=execute(
                "select count(*) from restored where not exists (select from seen where {seen_restored})"
            ).fetchone()[0],
            changed=execute(
                "select count(*) from seen join restored on {seen_restored}"
                " where ({seen_business}) is distinct from ({restored_business})"
            ).fetchone()[0],
            removed=execute(
                "select count(*) from seen where not exists (select from restored where {seen_restored})"
            ).fetchone()[0],
        )
        if dry_run:
            raise psycopg.Rollback()
        writes = (
            (
                "delete from {target} as target using seen where {target_seen} and target.version = seen.version"
                " and not exists (select from restored where {target_restored})",
                plan.removed,
            ),
            (
                "update {target} as target set ({business}, updated_at, version)"
                " = ({restored_business}, now(), target.version + 1)"
                " from restored join seen on {seen_restored}"
                " where {target_restored} and target.version = seen.version"
                " and ({seen_business}) is distinct from ({restored_business})",
                plan.changed,
            ),
            (
                "insert into {target} ({business}, created_at, updated_at, version)"
                " select {restored_business}, restored.created_at, now(), restored.version + 1 from restored"
                " where not exists (select from seen where {seen_restored})",
                plan.added,
            ),
        )
        for statement, expected in writes:
            if execute(statement).rowcount != expected:
                raise conflict(connection, table, keys, parts)
        marts.refresh(connection)
    if not dry_run:
        log.info("dimension restored", table=table, as_of=str(as_of), **plan.counts())
    return plan


def conflict(connection: psycopg.Connection, table: str, keys: list[str], parts: dict) -> VersionConflict:
    """The conflict to raise when a versioned write found fewer rows than it read: name the first changed key."""
    row = connection.execute(
        sql.SQL(
            "select {seen_keys}, seen.version, target.version from seen"
            " left join {target} as target on {target_seen}"
            " where target.version is distinct from seen.version limit 1"
        ).format(seen_keys=_columns(keys, "seen"), **parts)
    ).fetchone()
    if row is None:
        return VersionConflict(f"{table}: a row was added meanwhile; nothing restored, try again")
    *values, read, now = row
    return VersionConflict(
        f"{table} ({', '.join(keys)})=({', '.join(map(str, values))}) changed since it was read"
        f" (version {read} read, {'deleted' if now is None else f'version {now}'} now); nothing restored"
    )


def unique_key(connection: psycopg.Connection, schema: str, name: str) -> list[str]:
    """The columns of the table's narrowest unique index: the key rows are matched on."""
    row = connection.execute(
        """
        select array_agg(attribute.attname order by key.position)
        from pg_index as index
        join pg_class as relation on relation.oid = index.indrelid
        join pg_namespace as schema on schema.oid = relation.relnamespace
        cross join lateral unnest(index.indkey) with ordinality as key (attnum, position)
        join pg_attribute as attribute on attribute.attrelid = relation.oid and attribute.attnum = key.attnum
        where schema.nspname = %s and relation.relname = %s and index.indisunique
        group by index.indexrelid
        order by count(*), index.indexrelid
        limit 1
        """,
        (schema, name),
    ).fetchone()
    if row is None:
        raise UsageError(f"{schema}.{name} does not exist or has no unique index to match rows on")
    return list(row[0])


def _columns(names: list[str], alias: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, name) if alias else sql.Identifier(name) for name in names)


def _join(keys: list[str], left: str, right: str) -> sql.Composable:
    return sql.SQL(" and ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, key), sql.Identifier(right, key)) for key in keys
    )


def rollback_batch(
    settings: Settings, dsn: str, batch_id: uuid.UUID, *, wait: bool = False, dry_run: bool = False
) -> BatchImpact:
    """Take a batch out of raw and rebuild the windows it reached; run again after a crash to finish the job.

    The stage ``rollback_batch``, holding the pipeline's lock. With ``dry_run``, only what it would change, read
    without the lock; nothing is written.
    """
    if dry_run:
        with database.connect(dsn) as connection:
            return batch_impact(connection, batch_id)
    with (
        stage("rollback_batch", batch_id=str(batch_id)),
        lock.pipeline_lock(dsn, PIPELINE, wait=wait),
        database.connect(dsn) as connection,
    ):
        impact = batch_impact(connection, batch_id)
        if impact.rolled_back_at is None:
            remove_batch(connection, impact)
        windows = windows_to_rebuild(connection, batch_id)
        ledger.abandon_running(connection, PIPELINE)
        dbt.ensure_packages(settings)
        for group in pipeline.contiguous_groups([pipeline.Window(start, end) for start, end in windows]):
            pipeline.build_and_publish(settings, dsn, connection, group)
    return impact


def restore(dsn: str, table: str, as_of: datetime, *, dry_run: bool, wait: bool = False) -> RestorePlan:
    """``runner restore``: restore_dimension, holding the pipeline's lock (window runs write the dimensions)."""
    with lock.pipeline_lock(dsn, PIPELINE, wait=wait), database.connect(dsn) as connection:
        return restore_dimension(connection, table, as_of, dry_run=dry_run)
