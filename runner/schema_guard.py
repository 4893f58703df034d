"""The breaking-change guard: compare the model contracts of this checkout with those of a git ref or a manifest.

The warehouse's readers depend on its columns. The policy allows only changes they cannot notice: add a column
(with a default), add a model, add an index. A removed or renamed column, a changed type, or NOT NULL put on an
existing column breaks someone's query, so ``runner check-schema --against REF`` names each such offence and
fails (CI runs it against the previous commit). Contracts are read from dbt's manifest, as dbt itself enforces
them: models whose ``contract.enforced`` is on, their columns' ``data_type`` and ``not_null`` constraints.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner import dbt
from runner.errors import SchemaMismatchError, UsageError
from runner.observability import stage
from runner.settings import Settings

PROJECT = "olist_dw"


@dataclass(frozen=True)
class ColumnContract:
    """What a reader of one column relies on: its type, and whether it may hold null."""

    data_type: str
    not_null: bool


Contracts = dict[str, dict[str, ColumnContract]]  # model name -> column name -> contract


def contracts(manifest: dict[str, Any]) -> Contracts:
    """The enforced contracts of the project's models in a dbt manifest."""
    found: Contracts = {}
    for node in manifest["nodes"].values():
        enforced = node.get("config", {}).get("contract", {}).get("enforced", False)
        if node["resource_type"] != "model" or node["package_name"] != PROJECT or not enforced:
            continue
        found[node["name"]] = {
            name: ColumnContract(
                " ".join((column.get("data_type") or "").lower().split()),
                any(constraint["type"] == "not_null" for constraint in column.get("constraints", [])),
            )
            for name, column in node["columns"].items()
        }
    return found


def offences(before: Contracts, after: Contracts) -> list[str]:
    """Every change from ``before`` to ``after`` that an existing reader could notice, one line each."""
    found = []
    for model, old_columns in sorted(before.items()):
        new_columns = after.get(model)
        if new_columns is None:
            found.append(f"{model}: model removed (or its contract no longer enforced)")
            continue
        added = [name for name in new_columns if name not in old_columns]
        for name, old in old_columns.items():
            new = new_columns.get(name)
            if new is None:
                twins = [other for other in added if new_columns[other].data_type == old.data_type]
                renamed = f" (renamed to {' or '.join(twins)}?)" if twins else ""
                found.append(f"{model}.{name}: column removed{renamed}")
                continue
            if new.data_type != old.data_type:
                found.append(f"{model}.{name}: type changed from {old.data_type} to {new.data_type}")
            if new.not_null and not old.not_null:
                found.append(f"{model}.{name}: NOT NULL added to an existing column")
    return found


def check(settings: Settings, dsn: str, reference: str) -> int:
    """``runner check-schema``: the contracts of this checkout against those of ``reference`` (a git ref or a saved
    manifest), as the stage ``check-schema``; every breaking change named in one SchemaMismatchError, else the
    number of model contracts checked."""
    dbt.ensure_packages(settings)
    with stage("check-schema"):
        before = contracts(manifest_at(settings, dsn, reference))
        after = contracts(current_manifest(settings, dsn))
    found = offences(before, after)
    if found:
        raise SchemaMismatchError(
            f"{len(found)} breaking change(s) against {reference}:\n" + "\n".join(f"  {line}" for line in found)
        )
    return len(after)


def current_manifest(settings: Settings, dsn: str) -> dict[str, Any]:
    """This checkout's manifest, parsed afresh (the last build's may be stale or absent)."""
    return _parse(settings, dsn)


def manifest_at(settings: Settings, dsn: str, reference: str) -> dict[str, Any]:
    """The manifest of a saved ``manifest.json``, or of the project as it was at a git ref."""
    path = Path(reference)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    with project_at(settings, reference) as then:
        return _parse(then, dsn)


@contextmanager
def project_at(settings: Settings, reference: str) -> Iterator[Settings]:
    """The settings of a temporary copy of the dbt project as it was at a git ref, its packages installed.

    The copy lives as long as the block: enough to parse it, or to build a warehouse with an older release.
    """
    # The ref resolved to a commit first, after --end-of-options: a "ref" such as --output=FILE must never reach
    # git archive as an option (it would write, or truncate, that file).
    git = ["git", "-C", str(settings.project_dir)]
    resolved = subprocess.run(
        [*git, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{reference}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0:
        raise UsageError(f"--against {reference}: neither a manifest file nor a commit of this repository")
    commit = resolved.stdout.strip()
    archive = subprocess.run([*git, "archive", "--format=tar", commit], capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="olist-dw-schema-") as folder:
        project = Path(folder) / "project"
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(project, filter="data")
        then = replace(settings, project_dir=project)
        if not (then.profiles_dir / "profiles.yml").exists():
            # With the default home, the profile lives beside the project (git-ignored): the ref's copy lacks it.
            shutil.copy(settings.profiles_dir / "profiles.yml", then.profiles_dir / "profiles.yml")
        dbt.ensure_packages(then)
        yield then


def _parse(settings: Settings, dsn: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="olist-dw-parse-") as target:
        dbt.run_dbt(settings, ["parse"], dsn=dsn, target_dir=Path(target), lineage=False)
        return json.loads((Path(target) / "manifest.json").read_text(encoding="utf-8"))
