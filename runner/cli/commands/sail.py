"""Sail, the engine the warehouse can scale out to: its local cluster (Sail and a Hive metastore) and the dbt target
that points at it."""

from __future__ import annotations

import click

from runner import dbt, sail
from runner.cli import render
from runner.cli.options import json_option
from runner.cli.session import Session, pass_session


@click.group("sail")
def sail_group() -> None:
    """Manage the local Sail cluster (ignored when OLIST_DW_SPARK_REMOTE names an external server)."""


@sail_group.command("start")
@pass_session
def sail_start(session: Session) -> None:
    """Start the Hive metastore and a Sail cluster of two workers on it (or find them running), and add the
    ``sail`` target to the dbt profile."""
    found = sail.start(session.settings)
    dbt.write_sail_target(session.settings)
    render.sail_status(found, json_wanted=False)


@sail_group.command("stop")
@pass_session
def sail_stop(session: Session) -> None:
    """Stop Sail and its metastore; the ``sail`` target leaves the dbt profile (unless an external server is set)."""
    stopped = sail.stop(session.settings)
    if (session.settings.profiles_dir / "profiles.yml").exists():
        dbt.write_sail_target(session.settings)
    render.sail_stopped(stopped)


@sail_group.command("status")
@json_option
@pass_session
def sail_status(session: Session, as_json: bool) -> None:
    """Say what runs where: the metastore and Sail (pid, address, log), the tables' folder, the dbt target."""
    render.sail_status(sail.status(session.settings), json_wanted=as_json)


COMMANDS = (sail_group,)
