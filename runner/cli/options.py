"""Options several commands share, as decorators: the same name, flag and help wherever they appear."""

from __future__ import annotations

import click

wait_option = click.option("--wait", is_flag=True, help="Wait for another runner's lock instead of failing at once.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON array).")
