"""Where things are: the dbt project, the runner's state folder, the package store, the database setting.

Read once per command from flags and environment, then passed down, so that tests can point a whole run at a
temporary folder and a throwaway database without touching the developer's own state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UsageError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_HOME = PROJECT_DIR / ".runner"
DEFAULT_PACKAGE_STORE = Path("~/.cache/olist-dw/dbt-packages").expanduser()
PIPELINE = "olist"
# Where the warehouse's data (raw to marts) can live: PostgreSQL, or Delta tables on Sail (README, Scaling out).
TARGETS = ("postgres", "sail")


@dataclass(frozen=True)
class Settings:
    """The paths and connection setting one runner command works with."""

    project_dir: Path
    home: Path
    dsn: str | None
    package_store: Path
    quarantine_max_share: float = 0.05
    unplaced_max_share: float = 0.05
    # An external Spark Connect server (``sc://host:port``) for the Sail target, instead of the local cluster.
    spark_remote: str | None = None
    # The local Sail cluster's mode: ``local-cluster`` (a driver and workers), or ``local`` (one process).
    sail_mode: str = "local-cluster"
    # Where the warehouse's data lives (see TARGETS); the ledger is in PostgreSQL either way.
    target: str = "postgres"

    @classmethod
    def from_environment(cls, dsn: str | None = None, home: Path | None = None) -> Settings:
        """Flags win over ``OLIST_DW_*`` variables, which win over the project-local defaults."""
        home_setting = home or os.environ.get("OLIST_DW_HOME")
        return cls(
            project_dir=PROJECT_DIR,
            home=Path(home_setting).expanduser().resolve() if home_setting else DEFAULT_HOME,
            dsn=dsn or os.environ.get("OLIST_DW_DSN") or None,
            package_store=Path(os.environ.get("OLIST_DW_PACKAGE_STORE") or DEFAULT_PACKAGE_STORE).expanduser(),
            quarantine_max_share=share_setting("OLIST_DW_QUARANTINE_MAX_SHARE"),
            unplaced_max_share=share_setting("OLIST_DW_UNPLACED_MAX_SHARE"),
            spark_remote=os.environ.get("OLIST_DW_SPARK_REMOTE") or None,
            sail_mode=os.environ.get("OLIST_DW_SAIL_MODE") or "local-cluster",
            target=target_setting(),
        )

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def embedded_secret_file(self) -> Path:
        """The embedded server's superuser password (generated, owner-only): the only way into that server."""
        return self.home / "embedded-postgres.secret"

    @property
    def sail_dir(self) -> Path:
        """The local Sail cluster's folder: pid files and logs, the metastore's Derby database, the tables' files."""
        return self.home / "sail"

    @property
    def profiles_dir(self) -> Path:
        """The project's own folder for the default home, so a plain ``dbt build`` there finds the profile."""
        return self.project_dir if self.home == DEFAULT_HOME else self.home

    @property
    def target_dir(self) -> Path:
        """dbt's artefacts; beside the project for the default home, else inside the home (tests, CI)."""
        return self.project_dir / "target" if self.home == DEFAULT_HOME else self.home / "target"

    @property
    def lineage_file(self) -> Path:
        return self.home / "lineage" / "openlineage.jsonl"

    @property
    def metrics_file(self) -> Path:
        return self.home / "metrics" / "olist_dw.prom"

    @property
    def dbt_log_dir(self) -> Path:
        return self.home / "dbt-logs"

    @property
    def report_file(self) -> Path:
        return self.home / "reports" / "elementary_report.html"


def target_setting() -> str:
    """``OLIST_DW_TARGET``: one of TARGETS (``--target`` wins over it)."""
    value = os.environ.get("OLIST_DW_TARGET") or "postgres"
    if value not in TARGETS:
        raise UsageError(f"OLIST_DW_TARGET must be one of {', '.join(TARGETS)}; got {value!r}")
    return value


def share_setting(name: str) -> float:
    """A threshold share from the environment, 0.05 when unset.

    OLIST_DW_QUARANTINE_MAX_SHARE: the share of a window's rows that may be quarantined before it stops;
    OLIST_DW_UNPLACED_MAX_SHARE: the share of one loaded file's rows that may be placed in no window (orphans).
    """
    value = os.environ.get(name)
    if not value:
        return 0.05
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise UsageError(f"{name} must be a share between 0 and 1, got {value!r}")
    return share
