"""The Elementary quality report: `edr report`, offline, with anonymous tracking off."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runner import dbt
from runner.errors import PipelineFailure
from runner.observability import stage
from runner.settings import Settings

OUTPUT_TAIL_LINES = 20


def elementary_report(settings: Settings, dsn: str, out: Path | None = None) -> Path:
    """Write Elementary's HTML report of the results the elementary package collected, as the stage ``report``;
    return its path."""
    with stage("report"):
        packages_dir = dbt.ensure_edr_packages(settings)
        config_dir = settings.home / "edr"
        config_dir.mkdir(parents=True, exist_ok=True)
        # edr reads its settings from <config dir>/config.yml; tracking off, as everything in this project.
        (config_dir / "config.yml").write_text("anonymous_usage_tracking: false\n", encoding="utf-8")
        report = (out or settings.report_file).resolve()
        report.parent.mkdir(parents=True, exist_ok=True)
        environment = dbt.dbt_environment(settings, dsn)
        environment["DBT_PACKAGES_FOLDER"] = str(packages_dir)
        completed = subprocess.run(
            [
                dbt.executable("edr"),
                "report",
                "--profiles-dir",
                str(settings.profiles_dir),
                "--config-dir",
                str(config_dir),
                "--target-path",
                str(settings.home / "edr-target"),
                "--file-path",
                str(report),
                "--open-browser",
                "false",
            ],
            cwd=settings.home,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not report.exists():
            tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-OUTPUT_TAIL_LINES:])
            raise PipelineFailure(f"`edr report` failed (exit {completed.returncode}):\n{tail}")
        return report
