"""``dbt-ol`` for the ``sail`` target: OpenLineage's dbt wrapper, taught dbt-sail's profile.

The wrapper names datasets after the adapter of the profile it reads, and knows dbt-spark's profiles, not
dbt-sail's: it stops with "Only ... adapters are supported" after dbt has run, and no event leaves. Sail speaks
Spark's protocol and keeps Spark's tables, so a dbt-sail profile is read here as a Spark one: the adapter Spark,
the namespace ``spark://<host>:<port>`` of the Spark Connect server. The rest is the wrapper itself, unchanged.
Run as ``python -m runner.sail_lineage <dbt arguments>`` (see dbt.run_dbt).
"""

from __future__ import annotations

import sys

from openlineage.common.provider.dbt.processor import Adapter, DbtArtifactProcessor
from openlineage.dbt import main as dbt_ol

SAIL = "sail"
_extract_adapter_type = DbtArtifactProcessor.extract_adapter_type
_extract_namespace = DbtArtifactProcessor.extract_namespace


def extract_adapter_type(self: DbtArtifactProcessor, profile: dict) -> None:
    """A dbt-sail profile's adapter, as the wrapper names datasets: Spark's."""
    if profile.get("type") == SAIL:
        self.adapter_type = Adapter.SPARK
    else:
        _extract_adapter_type(self, profile)


def extract_namespace(self: DbtArtifactProcessor, profile: dict) -> str:
    """A dbt-sail profile's dataset namespace: the Spark Connect server it reaches."""
    if profile.get("type") == SAIL:
        return f"spark://{profile['host']}:{profile['port']}"
    return _extract_namespace(self, profile)


def main() -> int:
    DbtArtifactProcessor.extract_adapter_type = extract_adapter_type  # type: ignore[method-assign]
    DbtArtifactProcessor.extract_namespace = extract_namespace  # type: ignore[method-assign]
    return dbt_ol()


if __name__ == "__main__":
    sys.exit(main())
