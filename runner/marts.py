"""Blue/green marts: numbered versions of all the marts, one of them active in schema ``mart``.

Readers address ``mart.<name>``. A new version is built by dbt into its own schema (``mart__build``, renamed
``mart__v<N>`` once built), while readers go on reading the active one; publishing it renames the schemas in one
transaction (``mart`` becomes ``mart__v<old>``, ``mart__v<N>`` becomes ``mart``), so a reader sees either version
whole, never a mix. The old version stays parked under its number: ``rollback`` swaps it back the same way. Parked
versions are dropped once their retention time has passed.

What a schema rename does not carry is handled in the swap: privileges granted on the old schema and its
materialized views are granted on the new ones, and views outside the marts that read a mart (PostgreSQL binds a
view to the relation it read, not to its name) are re-created on the new version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from runner import database, dbt, faults
from runner.errors import DataQualityStop, SchemaMismatchError, UsageError
from runner.observability import log
from runner.settings import Settings

SCHEMA = "mart"
# The SELECT-only role the dashboard reads as (made by migration 0008): granted each version as it becomes `mart`.
READER_ROLE = "olist_dw_dashboard"
SELECTOR = "path:models/marts"
# Where dbt builds a new version, always under this one name: dbt re-parses the whole project when --vars change,
# so a schema named after each version would cost every new version a full parse (about 15 s) where this name
# lets it start from the parse the previous version saved. Builds never overlap: they run under the pipeline lock.
BUILD_SCHEMA = f"{SCHEMA}__build"
DEFINITIONS_CACHE = "mart-definitions.json"


def parked_schema(version: int) -> str:
    """Where a version lives while it is not the active one."""
    return f"{SCHEMA}__v{version}"


@dataclass(frozen=True)
class Definitions:
    """The marts as the checked-out models define them, from dbt's compiled project."""

    names: list[str]
    sha256: str
    # Each error-severity data test of the marts, compiled against schema `mart`: (name, SQL returning failures).
    tests: list[tuple[str, str]]
    # Each mart's upstream tables, for lineage.
    parents: dict[str, list[str]]
    # Each mart's contract: its columns in order, with their types. dbt does not enforce contracts on materialized
    # views, so the runner does, on every version it builds, before the version can reach readers.
    contracts: dict[str, list[tuple[str, str]]]

    @classmethod
    def from_json(cls, saved: dict) -> Definitions:
        return cls(
            names=saved["names"],
            sha256=saved["sha256"],
            tests=[(name, query) for name, query in saved["tests"]],
            parents=saved["parents"],
            contracts={mart: [(name, kind) for name, kind in columns] for mart, columns in saved["contracts"].items()},
        )


def definitions(settings: Settings, dsn: str) -> Definitions:
    """What publish needs of the marts, compiled once per version of the dbt project and database.

    Every window's publish needs them; they change only with the project (or the database the SQL names), so
    they are kept beside dbt's artefacts under that key instead of compiling the marts for every window.
    """
    key = json.dumps(
        [dbt.project_fingerprint(settings.project_dir), database.profile_target(dsn)], sort_keys=True, default=str
    )
    cache = settings.target_dir / DEFINITIONS_CACHE
    if cache.exists():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return Definitions.from_json(saved["definitions"])
    found = compile_definitions(settings, dsn)
    cache.write_text(json.dumps({"key": key, "definitions": dataclasses.asdict(found)}), encoding="utf-8")
    return found


def compile_definitions(settings: Settings, dsn: str) -> Definitions:
    """Compile the marts and read what publish needs from the manifest."""
    dbt.run_dbt(settings, ["compile", "--select", SELECTOR], dsn=dsn, lineage=False)
    nodes = json.loads((settings.target_dir / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    models = sorted(
        (node for node in nodes.values() if node["resource_type"] == "model" and _is_mart(node)),
        key=lambda node: node["name"],
    )
    digest = hashlib.sha256()
    for node in models:
        digest.update(f"{node['name']}\n{node['compiled_code']}\n{json.dumps(node['config'].get('indexes'))}".encode())
    tests = [
        (node["name"], node["compiled_code"])
        for node in nodes.values()
        if node["resource_type"] == "test"
        and node.get("compiled_code")
        and _is_mart(node)
        and node["config"]["severity"].lower() == "error"
    ]
    parents = {
        node["name"]: [f"{nodes[parent]['schema']}.{nodes[parent]['alias']}" for parent in node["depends_on"]["nodes"]]
        for node in models
    }
    contracts = {
        node["name"]: [(name, column.get("data_type") or "") for name, column in node["columns"].items()]
        for node in models
        if node["config"].get("contract", {}).get("enforced")
    }
    return Definitions([node["name"] for node in models], digest.hexdigest(), tests, parents, contracts)


def _is_mart(node: dict) -> bool:
    return node["original_file_path"].startswith("models/marts/")


@dataclass(frozen=True)
class MartVersion:
    """One row of ``metadata.mart_versions``."""

    version: int
    status: str
    definition_sha256: str
    built_at: datetime
    activated_at: datetime | None
    deactivated_at: datetime | None


VERSION_COLUMNS = "version, status, definition_sha256, built_at, activated_at, deactivated_at"


def versions(connection: psycopg.Connection) -> list[MartVersion]:
    """Every version not dropped, newest first."""
    rows = connection.execute(
        f"select {VERSION_COLUMNS} from metadata.mart_versions where status <> 'dropped' order by version desc"  # noqa: S608 - a constant column list
    ).fetchall()
    return [MartVersion(*row) for row in rows]


def active(connection: psycopg.Connection) -> MartVersion | None:
    query = f"select {VERSION_COLUMNS} from metadata.mart_versions where status = 'active'"  # noqa: S608 - constant
    row = connection.execute(query).fetchone()
    return MartVersion(*row) if row else None


def materialized_views(connection: psycopg.Connection, schema: str) -> set[str]:
    rows = connection.execute("select matviewname from pg_matviews where schemaname = %s", (schema,))
    return {row[0] for row in rows}


def build(settings: Settings, dsn: str, connection: psycopg.Connection, marts: Definitions) -> int:
    """Build a new version of every mart from core, parked in its own schema; return its number.

    The version is recorded before it is built, so a build cut short leaves a numbered leftover that the next
    build drops, never an unknown schema. Readers are untouched until the version is activated.
    """
    discard_unpublished(connection)
    with connection.transaction():
        connection.execute("lock table metadata.mart_versions in exclusive mode")
        version = connection.execute("select coalesce(max(version), 0) + 1 from metadata.mart_versions").fetchone()[0]
        connection.execute(
            "insert into metadata.mart_versions (version, status, definition_sha256) values (%s, 'built', %s)",
            (version, marts.sha256),
        )
    schema = parked_schema(version)
    for leftover in (BUILD_SCHEMA, schema):  # of a build cut short
        connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(leftover)))
    # Its own target folder: these --vars differ from every other invocation's, and would otherwise throw away the
    # window builds' saved parse state (dbt re-parses the whole project when --vars change).
    dbt.run_dbt(
        settings,
        ["run", "--select", SELECTOR],
        dsn=dsn,
        variables={"mart_schema": BUILD_SCHEMA},
        run_settings={"OLIST_DW_SKIP_ARTIFACTS_UPLOAD": "true"},
        target_dir=settings.target_dir / "mart-versions",
        lineage=False,
    )
    rename_schema(connection, BUILD_SCHEMA, schema)
    check_contracts(connection, schema, marts.contracts)
    log.info("mart version built", version=version, schema=schema)
    return version


def check_contracts(connection: psycopg.Connection, schema: str, contracts: dict[str, list[tuple[str, str]]]) -> None:
    """Stop a version whose marts differ from their contracts (names, order and types of the columns)."""
    offences = []
    for mart, declared in sorted(contracts.items()):
        built = connection.execute(
            "select attribute.attname, format_type(attribute.atttypid, attribute.atttypmod)"
            " from pg_attribute as attribute"
            " join pg_class as class on class.oid = attribute.attrelid"
            " join pg_namespace as namespace on namespace.oid = class.relnamespace"
            " where namespace.nspname = %s and class.relname = %s and attribute.attnum > 0"
            " and not attribute.attisdropped order by attribute.attnum",
            (schema, mart),
        ).fetchall()
        expected = [(name, " ".join(data_type.lower().split())) for name, data_type in declared]
        if built != expected:
            differences = sorted(set(built) ^ set(expected)) or ["column order"]
            offences.append(f"{mart}: {', '.join(' '.join(item) for item in differences)}")
    if offences:
        raise SchemaMismatchError("marts differ from their contracts (built ^ declared): " + "; ".join(offences))


def discard_unpublished(connection: psycopg.Connection) -> None:
    """Drop versions that were built but never activated (a build cut short, or one that failed its checks)."""
    for (version,) in connection.execute(
        "select version from metadata.mart_versions where status = 'built' and activated_at is null"
    ).fetchall():
        drop_version(connection, version)


def adopt(connection: psycopg.Connection, sha256: str) -> int:
    """Record marts that dbt built by hand in schema ``mart`` as the active version; in the caller's transaction."""
    version = connection.execute("select coalesce(max(version), 0) + 1 from metadata.mart_versions").fetchone()[0]
    connection.execute(
        "insert into metadata.mart_versions (version, status, definition_sha256, activated_at)"
        " values (%s, 'active', %s, now())",
        (version, sha256),
    )
    grant_reader(connection)
    log.info("mart version adopted", version=version)
    return version


def active_or_adopted(connection: psycopg.Connection, sha256: str = "unknown") -> MartVersion:
    """The active version; marts that dbt built by hand in ``mart`` are recorded as one first."""
    current = active(connection)
    if current is None:
        adopt(connection, sha256)
        current = active(connection)
    assert current is not None
    return current


def activate(connection: psycopg.Connection, version: int, *, demoted_status: str = "retired") -> None:
    """Make a parked version the one readers see; inside the caller's transaction, so it commits with it.

    The active version (if any) is parked under its own number with ``demoted_status``.
    """
    current = active(connection)
    dependants = dependent_views(connection)
    schemas_present = schemas(connection)
    if parked_schema(version) not in schemas_present:
        raise UsageError(f"mart version {version} is gone (schema {parked_schema(version)} does not exist)")
    if SCHEMA in schemas_present:
        if current is None:
            current = active_or_adopted(connection)
        rename_schema(connection, SCHEMA, parked_schema(current.version))
    rename_schema(connection, parked_schema(version), SCHEMA)
    if current is not None:
        copy_privileges(connection, parked_schema(current.version), SCHEMA)
    grant_reader(connection)
    for view, definition in dependants:
        # The definition was read while `mart` was the old version: re-created now, it reads the new one.
        connection.execute(sql.SQL("create or replace view {} as {}").format(sql.SQL(view), sql.SQL(definition)))
    if current:
        connection.execute(
            "update metadata.mart_versions set status = %s, deactivated_at = now() where version = %s",
            (demoted_status, current.version),
        )
    connection.execute(
        "update metadata.mart_versions set status = 'active', activated_at = now(), deactivated_at = null"
        " where version = %s",
        (version,),
    )
    log.info("mart version activated", version=version, previous=current.version if current else None)


def grant_reader(connection: psycopg.Connection) -> None:
    """Let the dashboard's role read the marts in ``mart``, whichever version that is.

    Default privileges cannot do it: they belong to a schema (by its identity, which a rename keeps), and every
    version is built by dbt in a schema of its own. A database restored on a server without the role is skipped:
    the dashboard refuses to start there and says why.
    """
    if connection.execute("select to_regrole(%s) is null", (READER_ROLE,)).fetchone()[0]:
        return
    role, schema = sql.Identifier(READER_ROLE), sql.Identifier(SCHEMA)
    connection.execute(sql.SQL("grant usage on schema {} to {}").format(schema, role))
    connection.execute(sql.SQL("grant select on all tables in schema {} to {}").format(schema, role))


def rename_schema(connection: psycopg.Connection, old: str, new: str) -> None:
    connection.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(old), sql.Identifier(new)))


def dependent_views(connection: psycopg.Connection) -> list[tuple[str, str]]:
    """Views outside the marts that read a mart: their qualified name and definition, marts named ``mart.*``."""
    # With only pg_catalog on the search path, pg_get_viewdef qualifies every relation with its schema.
    search_path = connection.execute("select current_setting('search_path')").fetchone()[0]
    connection.execute("select set_config('search_path', 'pg_catalog', true)")
    rows = connection.execute(
        """
        select distinct
            format('%%I.%%I', dependant_schema.nspname, dependant.relname),
            pg_get_viewdef(dependant.oid)
        from pg_depend as dependency
        join pg_rewrite as rewrite on rewrite.oid = dependency.objid
        join pg_class as dependant on dependant.oid = rewrite.ev_class
        join pg_namespace as dependant_schema on dependant_schema.oid = dependant.relnamespace
        join pg_class as mart on mart.oid = dependency.refobjid
        join pg_namespace as mart_schema on mart_schema.oid = mart.relnamespace
        where mart_schema.nspname = %s
            and dependant.oid <> mart.oid
            and dependant.relkind = 'v'
            and dependant_schema.nspname <> %s
            and dependant_schema.nspname not like %s
        """,
        (SCHEMA, SCHEMA, f"{SCHEMA}\\_\\_v%"),
    ).fetchall()
    connection.execute("select set_config('search_path', %s, true)", (search_path,))
    return [(name, definition.rstrip().rstrip(";")) for name, definition in rows]


def copy_privileges(connection: psycopg.Connection, source_schema: str, target_schema: str) -> None:
    """Grant on ``target_schema`` and its relations what was granted on ``source_schema`` and its same-named ones."""
    grants = connection.execute(
        """
        select null, coalesce(grantee.rolname, 'public'), privilege.privilege_type
        from pg_namespace as schema, aclexplode(schema.nspacl) as privilege
        left join pg_roles as grantee on grantee.oid = privilege.grantee
        where schema.nspname = %(source)s and privilege.grantee <> schema.nspowner
        union all
        select relation.relname, coalesce(grantee.rolname, 'public'), privilege.privilege_type
        from pg_class as relation
        join pg_namespace as schema on schema.oid = relation.relnamespace,
            aclexplode(relation.relacl) as privilege
        left join pg_roles as grantee on grantee.oid = privilege.grantee
        where schema.nspname = %(source)s and privilege.grantee <> relation.relowner
            and exists (
                select 1 from pg_class as twin join pg_namespace as twin_schema on twin_schema.oid = twin.relnamespace
                where twin_schema.nspname = %(target)s and twin.relname = relation.relname
            )
        """,
        {"source": source_schema, "target": target_schema},
    ).fetchall()
    for relation, grantee, privilege in grants:
        target = (
            sql.SQL("schema {}").format(sql.Identifier(target_schema))
            if relation is None
            else sql.SQL("{}.{}").format(sql.Identifier(target_schema), sql.Identifier(relation))
        )
        role = sql.SQL("public") if grantee == "public" else sql.Identifier(grantee)
        connection.execute(sql.SQL("grant {} on {} to {}").format(sql.SQL(privilege), target, role))


def refresh(connection: psycopg.Connection) -> None:
    """Refresh the active version's materialized views, concurrently (readers are not blocked)."""
    for name in sorted(materialized_views(connection, SCHEMA)):
        connection.execute(
            sql.SQL("refresh materialized view concurrently {}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))
        )


def check(connection: psycopg.Connection, marts: Definitions, *, unpublished: bool = False) -> None:
    """Run the marts' data tests on what readers would see; raise (rolling the caller's transaction back) on failure.

    ``unpublished``: the project's mart definitions are newer than the active version (a window run does not
    deploy them; ``runner publish`` does). A test of a column or mart that version does not have yet is the next
    version's: it is skipped here, with a warning, and runs when ``publish`` builds that version.
    """
    failed, skipped = [], []
    for name, query in marts.tests:
        try:
            with connection.transaction():  # a savepoint: a test of the next version leaves the caller's intact
                # The query is the project's own test, compiled by dbt: code of this repository, not input.
                failures = connection.execute(f"select count(*) from ({query}) as failures").fetchone()[0]  # noqa: S608
        except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable):
            if not unpublished:
                raise
            skipped.append(name)
            continue
        if failures:
            failed.append(name)
    if skipped:
        log.warning("mart checks of unpublished definitions skipped; `runner publish` runs them", checks=skipped)
    if failed:
        raise DataQualityStop(f"mart checks failed, marts left as they were: {', '.join(sorted(failed))}")


def rollback_target(connection: psycopg.Connection) -> int:
    """The newest retired version older than the active one whose schema still holds its marts."""
    current = active(connection)
    if current is None:
        raise UsageError("no mart version is active yet: nothing to roll back")
    for candidate in versions(connection):
        kept = candidate.status == "retired" and materialized_views(connection, parked_schema(candidate.version))
        if candidate.version < current.version and kept:
            return candidate.version
    raise UsageError(f"no earlier mart version is kept to return to (active: version {current.version})")


def drop_version(connection: psycopg.Connection, version: int) -> bool:
    """Drop a parked version's schema; kept (and logged) when something outside it still depends on it."""
    schema = parked_schema(version)
    with connection.transaction():
        dependants = outside_dependants(connection, schema)
        if dependants:
            log.warning("mart version kept: objects outside it depend on it", version=version, dependants=dependants)
            return False
        connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        connection.execute(
            "update metadata.mart_versions set status = 'dropped', dropped_at = now() where version = %s", (version,)
        )
    log.info("mart version dropped", version=version)
    return True


def outside_dependants(connection: psycopg.Connection, schema: str) -> list[str]:
    """Relations outside ``schema`` that depend on one inside it (dropping it with cascade would take them along)."""
    rows = connection.execute(
        """
        select distinct format('%%I.%%I', dependant_schema.nspname, dependant.relname)
        from pg_depend as dependency
        join pg_rewrite as rewrite on rewrite.oid = dependency.objid
        join pg_class as dependant on dependant.oid = rewrite.ev_class
        join pg_namespace as dependant_schema on dependant_schema.oid = dependant.relnamespace
        join pg_class as referenced on referenced.oid = dependency.refobjid
        join pg_namespace as referenced_schema on referenced_schema.oid = referenced.relnamespace
        where referenced_schema.nspname = %s and dependant_schema.nspname <> %s
        """,
        (schema, schema),
    ).fetchall()
    return [row[0] for row in rows]


def drop_expired(connection: psycopg.Connection, keep_for: timedelta) -> list[int]:
    """Drop the parked versions deactivated longer ago than ``keep_for``; return their numbers."""
    expired = connection.execute(
        "select version from metadata.mart_versions"
        " where status in ('retired', 'rolled_back') and deactivated_at < now() - %s order by version",
        (keep_for,),
    ).fetchall()
    return [version for (version,) in expired if drop_version(connection, version)]


@dataclass(frozen=True)
class Publication:
    """What ``deploy`` or ``rollback`` did: the version readers now see, the one before it, the versions dropped."""

    version: int
    previous: int | None
    built: bool
    dropped: list[int]


def deploy(
    settings: Settings, dsn: str, connection: psycopg.Connection, *, keep_for: timedelta, force: bool = False
) -> Publication:
    """Deploy the checked-out mart models as a new version: build it aside, check it, swap it in atomically.

    Nothing is built when the active version already has these definitions (unless ``force``). A version that
    fails its checks is never seen by readers; it stays parked for inspection until the next build.
    """
    marts = definitions(settings, dsn)
    current = active(connection)
    complete = set(marts.names) <= materialized_views(connection, SCHEMA)
    if current and complete and current.definition_sha256 == marts.sha256 and not force:
        return Publication(current.version, None, False, drop_expired(connection, keep_for))
    version = build(settings, dsn, connection, marts)
    with connection.transaction():
        previous = active_or_adopted(connection).version if SCHEMA in schemas(connection) else None
        activate(connection, version)
        faults.checkpoint("publish.after_swap")
        check(connection, marts)
    return Publication(version, previous, True, drop_expired(connection, keep_for))


def rollback(connection: psycopg.Connection) -> Publication:
    """Return readers to the previous kept version, refreshed to today's core, in one transaction."""
    with connection.transaction():
        current = active(connection)
        target = rollback_target(connection)
        activate(connection, target, demoted_status="rolled_back")
        refresh(connection)
    return Publication(target, current.version if current else None, False, [])


def schemas(connection: psycopg.Connection) -> set[str]:
    return {row[0] for row in connection.execute("select nspname from pg_namespace")}
