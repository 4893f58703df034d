"""The breaking-change guard: each forbidden change is caught and named, every allowed one passes."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runner import generate, load, pipeline, schema_guard
from runner.settings import Settings


def manifest(columns: dict[str, dict[str, Any]], *, enforced: bool = True) -> dict[str, Any]:
    """A dbt manifest holding one model, fact_orders, with these columns."""
    return {
        "nodes": {
            "model.olist_dw.fact_orders": {
                "resource_type": "model",
                "package_name": "olist_dw",
                "name": "fact_orders",
                "config": {"contract": {"enforced": enforced}},
                "columns": {name: {"name": name, **column} for name, column in columns.items()},
            }
        }
    }


BEFORE = {
    "order_id": {"data_type": "text", "constraints": []},
    "order_status": {"data_type": "text", "constraints": []},
    "item_count": {"data_type": "integer", "constraints": []},
}


def check(after: dict[str, dict[str, Any]]) -> list[str]:
    return schema_guard.offences(schema_guard.contracts(manifest(BEFORE)), schema_guard.contracts(manifest(after)))


def changed(**columns: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    after = copy.deepcopy(BEFORE)
    for name, column in columns.items():
        if column is None:
            del after[name]
        else:
            after[name] = column
    return after


@pytest.mark.parametrize(
    ("after", "offence"),
    [
        (changed(item_count=None), "fact_orders.item_count: column removed"),
        (
            changed(order_status=None, status={"data_type": "text", "constraints": []}),
            "fact_orders.order_status: column removed (renamed to status?)",
        ),
        (
            changed(item_count={"data_type": "bigint", "constraints": []}),
            "fact_orders.item_count: type changed from integer to bigint",
        ),
        (
            changed(order_status={"data_type": "text", "constraints": [{"type": "not_null"}]}),
            "fact_orders.order_status: NOT NULL added to an existing column",
        ),
    ],
)
def test_each_forbidden_change_is_named(after: dict[str, dict[str, Any]], offence: str) -> None:
    assert check(after) == [offence]


def test_allowed_changes_pass() -> None:
    grown = changed(
        customer_segment={"data_type": "text", "constraints": []},
        is_repeat={"data_type": "boolean", "constraints": [{"type": "not_null"}]},  # a new column, with a default
    )
    assert check(grown) == []
    assert check(changed(item_count={"data_type": "INTEGER ", "constraints": []})) == []  # spelling, not type


def test_a_model_dropped_or_no_longer_under_contract_is_an_offence() -> None:
    before = schema_guard.contracts(manifest(BEFORE))
    assert schema_guard.offences(before, {}) == ["fact_orders: model removed (or its contract no longer enforced)"]
    assert schema_guard.contracts(manifest(BEFORE, enforced=False)) == {}


def test_the_command_reads_a_saved_manifest_and_fails_naming_the_offences(
    settings: Settings, connection: psycopg.Connection, run_cli, tmp_path: Path
) -> None:
    """Against the project's own contracts, edited as an older release would have had them."""
    current = run_cli("--dsn", settings.dsn, "check-schema", "--against", "HEAD")
    assert current.returncode == 0, current.stderr
    assert "no breaking change against HEAD" in current.stdout

    older = schema_guard.current_manifest(settings, settings.dsn)
    node = older["nodes"]["model.olist_dw.fact_orders"]
    node["columns"]["legacy_channel"] = {"name": "legacy_channel", "data_type": "text", "constraints": []}
    node["columns"]["item_count"]["data_type"] = "integer"
    saved = tmp_path / "release-1.0-manifest.json"
    saved.write_text(json.dumps(older), encoding="utf-8")

    guarded = run_cli("--dsn", settings.dsn, "check-schema", "--against", str(saved))

    assert guarded.returncode == 4, guarded.stderr
    assert "2 breaking change(s)" in guarded.stderr
    assert "fact_orders.legacy_channel: column removed" in guarded.stderr
    assert "fact_orders.item_count: type changed from integer to bigint" in guarded.stderr
    assert "Traceback" not in guarded.stderr


# The last commit before dim_customer.customer_segment: the release whose warehouse the upgrade starts from.
PREVIOUS_RELEASE = "4e32609a2ce0cd26dff599c64aa9591ca2b21dcb"
JANUARY = pipeline.Window(datetime(2017, 1, 1), datetime(2017, 2, 1))
FEBRUARY = pipeline.Window(datetime(2017, 2, 1), datetime(2017, 3, 1))

# Queries a reader wrote against the previous release, and a view they created on it.
OLD_VIEW = "create view reporting.customer_places as select * from core.dim_customer"
OLD_QUERIES = (
    "select customer_state, count(*) from core.dim_customer group by customer_state order by 1",
    "select customers.customer_id, customers.customer_city, orders.order_id, orders.order_status"
    " from core.dim_customer as customers"
    " inner join core.fact_orders as orders on orders.customer_id = customers.customer_id order by 3",
    "select customer_id, customer_unique_id, customer_zip_code_prefix, latitude, longitude, order_purchased_at"
    " from reporting.customer_places order by 1",
    "select customer_unique_id, segment, order_count, total_spent from mart.mart_customer_analytics order by 1",
)


@pytest.mark.slow
def test_customer_segment_is_an_allowed_change_backfilled_in_place_and_old_queries_keep_working(
    settings: Settings, connection: psycopg.Connection, tmp_path: Path
) -> None:
    """The design's example for real: a warehouse built by the previous release, upgraded by this one."""
    data = tmp_path / "data"
    generate.generate(generate.GenerateOptions(data, 300, date(2017, 1, 1), 59, 11))
    load.load_directory(connection, data)
    with schema_guard.project_at(settings, PREVIOUS_RELEASE) as previous:
        before_contracts = schema_guard.contracts(schema_guard.current_manifest(previous, settings.dsn))
        pipeline.run_window(previous, settings.dsn, JANUARY)
    old_columns = columns_of(connection, "core.dim_customer")
    assert "customer_segment" not in old_columns
    connection.execute("create schema reporting")
    connection.execute(OLD_VIEW)
    answers = [connection.execute(query).fetchall() for query in OLD_QUERIES]

    pipeline.run_window(settings, settings.dsn, JANUARY)

    assert columns_of(connection, "core.dim_customer") == [*old_columns, "customer_segment"]
    assert [connection.execute(query).fetchall() for query in OLD_QUERIES] == answers
    assert len(connection.execute("select * from reporting.customer_places").fetchone()) == len(old_columns)
    # The backfill: every row scored, with its person's segment from the mart's RFM logic, or 'unscored'.
    scored = connection.execute(
        "select count(*), count(*) filter (where customers.customer_segment"
        " = coalesce(people.segment, 'unscored')), count(*) filter (where people.segment is null)"
        " from core.dim_customer as customers"
        " left join mart.mart_customer_analytics as people on people.customer_unique_id = customers.customer_unique_id"
    ).fetchone()
    assert scored[0] == scored[1] > 0, scored

    versions = connection.execute("select sum(version) from core.dim_customer").fetchone()
    pipeline.run_window(settings, settings.dsn, JANUARY)
    assert connection.execute("select sum(version) from core.dim_customer").fetchone() == versions  # idempotent

    pipeline.run_window(settings, settings.dsn, FEBRUARY)
    for query in OLD_QUERIES:
        assert connection.execute(query).fetchall()
    assert connection.execute("select count(*) from core.dim_customer where customer_segment is null").fetchone() == (
        0,
    )
    assert (
        schema_guard.offences(
            before_contracts, schema_guard.contracts(schema_guard.current_manifest(settings, settings.dsn))
        )
        == []
    )


def columns_of(connection: psycopg.Connection, table: str) -> list[str]:
    return [
        row[0]
        for row in connection.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
            " order by attnum",
            (table,),
        )
    ]
