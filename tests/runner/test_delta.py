"""runner/delta.py's rules that need no cluster (the loads and builds on Sail are test_cross_engine's)."""

from __future__ import annotations

import re

from runner import delta
from runner.settings import PROJECT_DIR


def test_the_purchase_time_rule_is_the_same_in_its_three_places() -> None:
    """Planning on Sail (delta.purchase_time), the models on Sail (the macro spark__raw_purchase_time) and
    PostgreSQL (metadata.purchase_time, migration 0006) must place a raw purchase time alike, or a window is built
    from rows planning did not count. Each writes the pattern out; they must be the same pattern."""
    migration = (PROJECT_DIR / "runner" / "migrations" / "0006_window_scoped_judging.sql").read_text()
    in_postgres = re.search(r"raw_value ~ '([^']+)'", migration)
    macro = (PROJECT_DIR / "macros" / "window" / "raw_purchase_time.sql").read_text()
    spark_macro = macro[macro.index("spark__raw_purchase_time") :]
    call = spark_macro[spark_macro.index("matches_pattern(") : spark_macro.index(") }}")]
    in_models = "".join(re.findall(r"'([^']*)'", call))
    assert in_postgres is not None
    assert in_postgres.group(1) == in_models == delta.PURCHASE_TIME_PATTERN
    assert f"rlike '{delta.PURCHASE_TIME_PATTERN}'" in delta.purchase_time("x")
