"""Building the warehouse: the due windows (run), a range (backfill), and the demo from scratch."""

from __future__ import annotations

import click

from runner import demo, pipeline
from runner.cli import render
from runner.cli.options import target_option, wait_option
from runner.cli.session import Session, pass_session
from runner.errors import UsageError


@click.command("run")
@click.option(
    "--window", "window_text", metavar="START..END", help="The window [START, END), e.g. 2017-01-01..2017-02-01"
)
@click.option("--start", "start_text", metavar="START", help="Window start (with --end), instead of --window.")
@click.option("--end", "end_text", metavar="END", help="Window end (exclusive).")
@click.option("--step", type=click.Choice(pipeline.STEPS), help="Record the range as day, week or month windows.")
@click.option("--force", is_flag=True, help="Build the windows asked for even when they are up to date.")
@target_option
@wait_option
@pass_session
def run_command(
    session: Session,
    window_text: str | None,
    start_text: str | None,
    end_text: str | None,
    step: str | None,
    force: bool,
    wait: bool,
) -> None:
    """Build the due windows through staging, core and marts with dbt-ol, publish them and move the watermark.

    A window is due when a load placed rows in it since its last success, when it never succeeded, or when the
    dbt project changed since. With no window, builds every due window, oldest first; with one, builds those of
    the windows asked for that are due (all of them with --force) and says which are up to date.
    """
    if window_text and (start_text or end_text):
        raise UsageError("give either --window or --start/--end, not both")
    if bool(start_text) != bool(end_text):
        raise UsageError("--start and --end go together")
    window = None
    if window_text:
        window = pipeline.parse_window(window_text)
    elif start_text and end_text:
        window = pipeline.make_window(
            pipeline.parse_bound(start_text, "--start"), pipeline.parse_bound(end_text, "--end")
        )
    if force and window is None:
        raise UsageError("--force rebuilds the windows asked for: give --window (or --start/--end)")
    dsn = session.bootstrap()
    asked = pipeline.split(window, step) if window else None
    pipeline.run_due(session.settings, dsn, asked, step=step, force=force, wait=wait, observer=render.Printer())


@click.command("backfill")
@click.option("--from", "from_text", required=True, metavar="START", help="First day (or time) of the range.")
@click.option("--to", "to_text", required=True, metavar="END", help="End of the range (exclusive).")
@click.option("--step", type=click.Choice(pipeline.STEPS), default="day", show_default=True)
@click.option("--restate", is_flag=True, help="Re-run the windows that already succeeded too.")
@target_option
@wait_option
@pass_session
def backfill_command(session: Session, from_text: str, to_text: str, step: str, restate: bool, wait: bool) -> None:
    """Run the missing and failed windows of a range (all of them with --restate)."""
    window = pipeline.make_window(pipeline.parse_bound(from_text, "--from"), pipeline.parse_bound(to_text, "--to"))
    dsn = session.bootstrap()
    with render.Printer() as printer:
        pipeline.backfill(session.settings, dsn, window, step, restate=restate, wait=wait, observer=printer)


@click.command("demo")
@click.option("--orders", default=demo.ORDERS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=demo.SEED, show_default=True, type=int)
@click.option(
    "--dirty",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Rate of real-data quirks, and of rows breaking a row rule (quarantined), to inject.",
)
@pass_session
def demo_command(session: Session, orders: int, seed: int, dirty: float) -> None:
    """Generate a small dataset, load it and build it month by month; safe to run again."""
    dsn = session.bootstrap()
    counts = demo.run(session.settings, dsn, orders=orders, seed=seed, dirty=dirty, observer=render.Printer())
    render.layers(counts, session.settings.lineage_file)


COMMANDS = (run_command, backfill_command, demo_command)
