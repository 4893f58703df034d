"""The local Sail cluster (runner/sail.py) with real processes: Sail, its Hive metastore on Java, dbt-sail.

They need Java and the ``sail`` extra; without either they skip and say what is missing, or fail where
``OLIST_DW_REQUIRE_SAIL=1`` requires them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner import sail
from runner.errors import UsageError

pytestmark = pytest.mark.slow

# A project of two Delta tables, the second reading the first. Sail's Hive metastore catalog refuses
# `create or replace`, which dbt-spark writes for every Delta table: the project creates them with `create table`.
PROJECT_FILES = {
    "dbt_project.yml": """\
name: sail_probe
version: "1.0"
config-version: 2
profile: olist_dw
models:
  sail_probe:
    +materialized: table
    +file_format: delta
""",
    "macros/sail__create_table_as.sql": """\
{% macro sail__create_table_as(temporary, relation, compiled_code, language='sql') -%}
  {%- if temporary or language != 'sql' -%}
    {{ return(spark__create_table_as(temporary, relation, compiled_code, language)) }}
  {%- endif -%}
  create table {{ relation }}
  {{ file_format_clause() }}
  as
  {{ compiled_code }}
{%- endmacro %}
""",
    "models/first_orders.sql": "select 1 as order_id, 'delivered' as order_status\n",
    "models/second_orders.sql": "select order_id + 1 as order_id, order_status from {{ ref('first_orders') }}\n",
}


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Alive and not a zombie (the runner's children are reparented when it exits)."""
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[0] != "Z"


def test_remote_url_is_checked() -> None:
    assert sail.parse_remote("sc://sail.example.com:15002") == ("sail.example.com", 15002)
    assert sail.parse_remote("sc://[::1]:15002/") == ("::1", 15002)
    for wrong in ("http://host:1", "sc://host", "sc://host:0", "sc://host:15002/;token=secret"):
        with pytest.raises(UsageError, match="sc://host:port"):
            sail.parse_remote(wrong)


def test_an_external_server_replaces_the_local_cluster(run_cli, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        remote = f"sc://127.0.0.1:{listener.getsockname()[1]}"
        env = {"OLIST_DW_SPARK_REMOTE": remote}
        started = run_cli("sail", "start", env=env)
        assert started.returncode == 2, started.stderr
        assert "OLIST_DW_SPARK_REMOTE is set" in started.stderr
        assert "Traceback" not in started.stderr
        shown = run_cli("sail", "status", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
    assert status["endpoint"] == remote
    assert status["remote_reachable"] is True
    assert not status["server"]["running"] and not status["metastore"]["running"]
    assert not (tmp_path / "home" / "sail" / "server.pid").exists()


def test_missing_java_is_one_line(sail_ready, run_cli, tmp_path: Path) -> None:
    nowhere = tmp_path / "empty-path"
    nowhere.mkdir()
    started = run_cli("sail", "start", env={"PATH": str(nowhere), "JAVA_HOME": ""})
    assert started.returncode == 6, started.stderr
    assert "needs Java" in started.stderr and "openjdk-17-jre-headless" in started.stderr
    assert "Traceback" not in started.stderr


def test_cluster_keeps_its_catalog_across_restarts(sail_ready, run_cli, tmp_path: Path) -> None:
    """Start, build a Delta table with dbt, stop; start again and build a table reading the first: only the
    metastore can tell the new Sail server about it. Stop leaves no process behind."""
    home = tmp_path / "home"
    project = tmp_path / "project"
    for name, text in PROJECT_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    dbt = [str(Path(sys.executable).with_name("dbt"))]
    dbt_env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(home),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
    }

    def run_dbt(*arguments: str) -> str:
        completed = subprocess.run(
            [*dbt, *arguments, "--target", "sail"],
            cwd=project,
            env=dbt_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        return completed.stdout

    seen_pids: set[int] = set()
    try:
        assert "not running" in run_cli("sail", "status").stdout
        for round_number, model in ((1, "first_orders"), (2, "second_orders")):
            started = run_cli("sail", "start")
            assert started.returncode == 0, started.stderr
            status = json.loads(run_cli("sail", "status", "--json").stdout)
            for name in ("server", "metastore"):
                process = status[name]
                assert process["running"], (name, status)
                assert alive(process["pid"]) and answers(process["port"]), (name, status)
                seen_pids.add(process["pid"])
            assert status["mode"] == "local-cluster"
            assert status["endpoint"] == f"sc://127.0.0.1:{status['server']['port']}"
            profile = yaml.safe_load((home / "profiles.yml").read_text())
            assert profile["olist_dw"]["outputs"]["sail"]["port"] == status["server"]["port"]
            if round_number == 1:
                assert "All checks passed" in run_dbt("debug")
            assert "PASS=1" in run_dbt("run", "--select", model)
            stopped = run_cli("sail", "stop")
            assert stopped.returncode == 0, stopped.stderr
            assert "stopped server and metastore" in stopped.stdout
            assert not any(alive(pid) for pid in seen_pids)
        warehouse = home / "sail" / "warehouse" / "core.db"
        for model in ("first_orders", "second_orders"):
            assert (warehouse / model / "_delta_log").is_dir(), sorted(warehouse.rglob("*"))
        status = json.loads(run_cli("sail", "status", "--json").stdout)
        assert status["endpoint"] is None
        assert "sail" not in yaml.safe_load((home / "profiles.yml").read_text())["olist_dw"]["outputs"]
    finally:
        run_cli("sail", "stop")
