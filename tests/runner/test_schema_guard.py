"""The breaking-change guard: each forbidden change is caught and named, every allowed one passes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runner import schema_guard
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
