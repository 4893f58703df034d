"""What the runner stands on: its database (the embedded PostgreSQL and the runner's own schema) and dbt's
packages."""

from __future__ import annotations

import click

from runner import database, dbt, ledger
from runner.cli import render
from runner.cli.session import Session, pass_session


@click.group("db")
def db_group() -> None:
    """Manage the embedded PostgreSQL (ignored when --dsn / OLIST_DW_DSN is set)."""


@db_group.command("start")
@pass_session
def db_start(session: Session) -> None:
    """Start the embedded server (or find it running), migrate it and write the dbt profile for it."""
    render.database_ready(database.redact(session.bootstrap()))


@db_group.command("migrate")
@pass_session
def db_migrate(session: Session) -> None:
    """Apply the runner's pending schema migrations (forward-only; safe to run twice, or by two runners at once)."""
    with database.connect(session.server()) as connection:
        applied = ledger.migrate(connection)
    render.migrations_applied(applied)


@db_group.command("migrations")
@pass_session
def db_migrations(session: Session) -> None:
    """List the runner's schema migrations: applied (with when) or pending."""
    with database.connect(session.server()) as connection:
        applied = ledger.applied_migrations(connection)
    render.migrations(ledger.migrations(), applied)


@db_group.command("stop")
@pass_session
def db_stop(session: Session) -> None:
    """Stop the embedded server."""
    render.server_stopped(database.stop_embedded(session.settings))


@db_group.command("status")
@pass_session
def db_status(session: Session) -> None:
    """Say whether the embedded server runs, with its pid and data folder."""
    render.server_status(database.embedded_status(session.settings))


@db_group.command("url")
@pass_session
def db_url(session: Session) -> None:
    """Print the DSN of the database in use (starting the embedded server if needed)."""
    render.plain(database.redact(database.resolve_dsn(session.settings)))


@click.command("deps")
@click.option("--force", is_flag=True, help="Reinstall even when the locked versions are present.")
@pass_session
def deps_command(session: Session, force: bool) -> None:
    """Install the locked dbt packages (hub, else the offline store) and those of the Elementary CLI."""
    how = dbt.ensure_packages(session.settings, force=force)
    edr_dir = dbt.ensure_edr_packages(session.settings)
    render.packages(how, edr_dir)


COMMANDS = (db_group, deps_command)
