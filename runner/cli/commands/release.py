"""Changing what readers see: check a change of the models for breaking readers, deploy the marts blue/green."""

from __future__ import annotations

from datetime import timedelta

import click

from runner import pipeline, schema_guard
from runner.cli import render
from runner.cli.options import target_option, wait_option
from runner.cli.session import Session, pass_session


@click.command("publish")
@click.option("--rollback", "roll_back", is_flag=True, help="Return readers to the previous mart version.")
@click.option("--force", is_flag=True, help="Build a new version even if the mart models did not change.")
@click.option(
    "--keep-days",
    envvar="OLIST_DW_MART_KEEP_DAYS",
    default=7,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Drop parked mart versions retired longer ago than this (PostgreSQL; Sail keeps the previous version).",
)
@target_option
@wait_option
@pass_session
def publish_command(session: Session, roll_back: bool, force: bool, keep_days: float, wait: bool) -> None:
    """Deploy the mart models blue/green: build a new version aside, check it, swap it in atomically.

    Readers of mart.* see the old version whole until the swap commits, then the new one whole.
    """
    dsn = session.bootstrap()
    if roll_back:
        publication = pipeline.roll_back_marts(session.settings, dsn, wait=wait)
    else:
        keep_for = timedelta(days=keep_days)
        publication = pipeline.deploy_marts(session.settings, dsn, keep_for=keep_for, force=force, wait=wait)
    render.publication(publication, roll_back, keep_days if session.settings.target == "postgres" else None)


@click.command("check-schema")
@click.option("--against", "reference", required=True, help="A git ref (HEAD~1, main) or a saved manifest.json.")
@pass_session
def check_schema_command(session: Session, reference: str) -> None:
    """Fail on a change that breaks readers: a removed or renamed column, a type change, a new NOT NULL."""
    checked = schema_guard.check(session.settings, session.bootstrap(), reference)
    render.no_breaking_change(reference, checked)


COMMANDS = (publish_command, check_schema_command)
