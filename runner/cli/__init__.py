"""The command line: ``python -m runner <command>``. Thin: parse, call the core, render, map errors to exit codes.

The commands are in runner/cli/commands/, one module per kind of work; what they print is in render.py; the
options of the group and what a command's run carries (its Session) are here and in session.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import psycopg
from click.core import ParameterSource

from runner import database, metrics
from runner.cli.commands import build, data, environment, inspect, recover, release, sail, serve
from runner.cli.session import Session
from runner.errors import EXIT_ENVIRONMENT, EXIT_UNEXPECTED, EXIT_USAGE, RunnerError
from runner.observability import configure_logging, log
from runner.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dsn", envvar="OLIST_DW_DSN", help="PostgreSQL 15+ to use instead of the embedded server.")
@click.option(
    "--home",
    envvar="OLIST_DW_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the runner's state (embedded database, lineage events). Default: .runner/ in the project.",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), help="Log format (default: by terminal).")
@click.option("--pushgateway", metavar="URL", help="Also push the run's metrics to this Prometheus Pushgateway.")
@click.pass_context
def cli(
    ctx: click.Context, dsn: str | None, home: Path | None, log_format: str | None, pushgateway: str | None
) -> None:
    """olist-dw: load the Olist export into PostgreSQL and build its warehouse with dbt, window by window."""
    configure_logging(log_format)
    if dsn:
        parts = database.parse_dsn(dsn)
        if parts.get("password") and ctx.get_parameter_source("dsn") is ParameterSource.COMMANDLINE:
            log.warning(
                "--dsn carries a password, which every local user can read in the process list: set OLIST_DW_DSN, "
                "or keep the password in a password file (~/.pgpass or PGPASSFILE), instead"
            )
    ctx.ensure_object(Session).start(Settings.from_environment(dsn=dsn, home=home), pushgateway, ctx.invoked_subcommand)


for module in (data, build, inspect, recover, release, serve, environment, sail):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    """Run the CLI; a user's mistake becomes one line on stderr and its exit code, never a traceback."""
    # Everything the runner and its children (dbt, edr) create is the owner's only: the state folder, generated
    # CSVs, logs, lineage events, reports and profiles.yml hold data, and some of them secrets.
    os.umask(0o077)
    session = Session()
    try:
        code = cli.main(prog_name="python -m runner", standalone_mode=False, obj=session)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code if error.exit_code else EXIT_USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_UNEXPECTED)
    except RunnerError as error:
        metrics.errors.labels(type(error).__name__).inc()
        session.export_metrics()
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except psycopg.OperationalError as error:
        # The database went away mid-command (stopped, crashed, network): environment, not a bug.
        metrics.errors.labels("DatabaseUnreachable").inc()
        click.echo(f"error: lost the database: {str(error).strip().splitlines()[0]}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    session.export_metrics()
    sys.exit(code if isinstance(code, int) else 0)
