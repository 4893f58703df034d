"""The demo: a small generated extract, loaded and built month by month; safe to run again.

Its files go to the runner's home, so a second run loads nothing new (the same bytes are skipped) and builds
nothing (no window is due).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from runner import database, generate, load, pipeline, status
from runner.settings import Settings

ORDERS = 3000
START = date(2017, 1, 1)
DAYS = 90
SEED = 42


def run(
    settings: Settings,
    dsn: str,
    *,
    orders: int = ORDERS,
    seed: int = SEED,
    dirty: float = 0.0,
    observer: pipeline.Observer = pipeline.QUIET,
) -> list[tuple[str, int]]:
    """Generate the demo's files, load them and build their months; the rows each layer's tables then hold.

    ``dirty`` is the rate of the real export's quirks and, as much, of rows breaking a row rule (quarantined).
    """
    settings = replace(settings, target="postgres")  # the demo is PostgreSQL's, whatever OLIST_DW_TARGET says
    data_dir = settings.home / ("demo-data-dirty" if dirty else "demo-data")
    generate.generate(generate.GenerateOptions(data_dir, orders, START, DAYS, seed, dirty, malformed=dirty))
    report = load.load_source(settings, dsn, data_dir, on_file=observer.file_loaded)
    observer.loaded(report)
    last_day = START + timedelta(days=DAYS - 1)
    pipeline.run_due(settings, dsn, pipeline.month_windows(START, last_day), observer=observer)
    with database.connect(dsn) as connection:
        return status.layer_row_counts(connection)
