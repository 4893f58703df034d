"""Options several commands share, as decorators: the same name, flag and help wherever they appear."""

from __future__ import annotations

import dataclasses

import click

from runner.cli.session import Session
from runner.settings import TARGETS

wait_option = click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON array).")


def use_target(ctx: click.Context, _parameter: click.Parameter, value: str | None) -> str | None:
    """``--target`` into the command's settings (it wins over ``OLIST_DW_TARGET``)."""
    if value is not None:
        session = ctx.find_object(Session)
        session.start(dataclasses.replace(session.settings, target=value), session.pushgateway, session.command)
    return value


target_option = click.option(
    "--target",
    type=click.Choice(TARGETS),
    expose_value=False,
    callback=use_target,
    help="Where the warehouse's data lives: PostgreSQL, or Delta tables on Sail (the ledger stays in PostgreSQL)."
    " Default: OLIST_DW_TARGET, else postgres.",
)
