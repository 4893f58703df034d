"""Undoing damage: take a bad load batch out, restore a dimension as its snapshot held it."""

from __future__ import annotations

import uuid
from datetime import datetime

import click

from runner import recovery
from runner.cli import render
from runner.cli.options import wait_option
from runner.cli.session import Session, pass_session
from runner.errors import UsageError


@click.group("rollback")
def rollback_group() -> None:
    """Undo a bad load (see `publish --rollback` for a bad mart deployment)."""


@rollback_group.command("batch")
@click.argument("batch_id")
@click.option("--dry-run", is_flag=True, help="Only list the rows and windows it would change.")
@wait_option
@pass_session
def rollback_batch_command(session: Session, batch_id: str, dry_run: bool, wait: bool) -> None:
    """Remove a load batch from raw and rebuild the windows it reached, as if it had never been loaded.

    Safe to run again: after a crash it finishes the windows still to rebuild.
    """
    try:
        batch = uuid.UUID(batch_id)
    except ValueError as error:
        raise UsageError(f"a batch id is a UUID (see metadata.load_batches); got {batch_id!r}") from error
    impact = recovery.rollback_batch(session.settings, session.bootstrap(), batch, wait=wait, dry_run=dry_run)
    render.batch_impact(impact, dry_run)


@click.command("restore")
@click.argument("table", metavar="TABLE")
@click.option("--as-of", "as_of_text", required=True, metavar="TIMESTAMP", help="e.g. 2026-11-27T08:00:00+00:00")
@click.option("--dry-run", is_flag=True, help="Only print how many rows it would add, change and remove.")
@wait_option
@pass_session
def restore_command(session: Session, table: str, as_of_text: str, dry_run: bool, wait: bool) -> None:
    """Rewrite a dimension (core.dim_customer, core.dim_product, core.dim_seller) as its snapshot held it.

    One transaction; grants, indexes and the views reading the table keep working. A time without an offset
    is in the database's time zone.
    """
    try:
        as_of = datetime.fromisoformat(as_of_text)
    except ValueError as error:
        raise UsageError(f"--as-of must be an ISO time like 2026-11-27T08:00:00+00:00; got {as_of_text!r}") from error
    plan = recovery.restore(session.bootstrap(), table, as_of, dry_run=dry_run, wait=wait)
    render.restore_plan(table, as_of, plan, dry_run)


COMMANDS = (rollback_group, restore_command)
