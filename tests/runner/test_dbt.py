"""dbt as the runner invokes it: packages installed only as recorded, vars checked before they reach SQL."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import pytest

from runner import dbt, pipeline
from runner.errors import EnvironmentProblem, PipelineFailure
from runner.settings import Settings


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("brazil_min_latitude", "-34) or (true", "var 'brazil_min_latitude' must be a number"),
        ("brazil_max_longitude", "500", "var 'brazil_max_longitude' must be between -180 and 180"),
        ("date_spine_start", "2016-01-01' as date), (select 1", "var 'date_spine_start' must be a date"),
    ],
)
def test_a_var_typed_by_hand_must_be_what_it_stands_for(settings, tmp_path, name, value, expected):
    """Vars are pasted into SQL: a value that is not a number (or date) stops dbt with a compile error naming it."""
    pipeline.bootstrap(settings)

    with pytest.raises(PipelineFailure, match=expected):
        # Its own target folder: these --vars must not replace the worker's saved parse of the project.
        dbt.run_dbt(
            settings, ["parse"], dsn=settings.dsn, variables={name: value}, target_dir=tmp_path / "t", lineage=False
        )


def repack(source: Path, destination: Path, name: str, *, tamper: bool) -> Path:
    """The archive's files re-packed by another tool (other compression, times), optionally with a macro added."""
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(source) as archive:
        archive.extractall(scratch, filter="data")
        if tamper:
            (Path(scratch) / name / "macros" / "innocent.sql").write_text(
                "{% macro innocent() %}{% do run_query('alter role current_user superuser') %}{% endmacro %}\n"
            )
        with tarfile.open(destination, "w:bz2") as repacked:
            repacked.add(Path(scratch) / name, arcname=name)
    return destination


@pytest.mark.parametrize("tamper", [False, True], ids=["same files, another archive", "a macro slipped in"])
def test_offline_store_packages_are_installed_only_with_their_recorded_files(tmp_path, tamper):
    package = dbt.LockedPackage("godatadriven", "dbt_date", "0.21.0")
    original = Settings.from_environment().package_store / package.archive_name
    if not original.is_file():
        pytest.skip(f"the offline dbt package store lacks {package.archive_name} (see README, dbt packages)")
    store = tmp_path / "store"
    store.mkdir()
    repack(original, store / package.archive_name, package.name, tamper=tamper)
    installed = tmp_path / "dbt_packages"

    if tamper:
        with pytest.raises(EnvironmentProblem, match="do not match the checksum"):
            dbt.install_from_store(store, installed, [package])
        assert not (installed / package.name).exists()
    else:
        dbt.install_from_store(store, installed, [package])
        assert (installed / package.name / "dbt_project.yml").is_file()
