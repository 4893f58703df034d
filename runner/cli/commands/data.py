"""Getting data in: generate an Olist extract, load a folder of Olist files into raw."""

from __future__ import annotations

from pathlib import Path

import click

from runner import delta, demo, generate, load, pipeline
from runner.cli import render
from runner.cli.options import target_option
from runner.cli.session import Session, pass_session
from runner.errors import UsageError


@click.command("generate")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--orders", default=demo.ORDERS, show_default=True, type=click.IntRange(min=1))
@click.option("--start", default=demo.START.isoformat(), show_default=True, help="First purchase day.")
@click.option("--days", default=demo.DAYS, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=demo.SEED, show_default=True, type=int)
@click.option("--dirty", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Rate of real-data quirks.")
@click.option(
    "--malformed", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Rate of rows breaking a row rule."
)
def generate_command(
    out_dir: Path, orders: int, start: str, days: int, seed: int, dirty: float, malformed: float
) -> None:
    """Write the nine Olist CSV files (Kaggle names and headers), deterministic for a seed."""
    first_day = pipeline.parse_bound(start, "--start").date()
    extract = generate.generate(generate.GenerateOptions(out_dir, orders, first_day, days, seed, dirty, malformed))
    render.generated(extract, out_dir)


@click.command("load")
@click.option("--source", "source_dir", required=True, type=click.Path(path_type=Path), help="Folder of Olist CSVs.")
@target_option
@pass_session
def load_command(session: Session, source_dir: Path) -> None:
    """COPY the Olist CSV files of a folder into raw.*, one transaction per file, skipping files already loaded."""
    if not source_dir.is_dir():
        raise UsageError(f"source folder not found: {source_dir}")
    load_source = delta.load_source if session.settings.target == "sail" else load.load_source
    report = load_source(session.settings, session.bootstrap(), source_dir, on_file=render.file_result)
    render.load_report(report)


COMMANDS = (generate_command, load_command)
