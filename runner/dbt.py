"""dbt invocation: the profile for the database in use, dbt packages (hub or offline store), ``dbt-ol`` runs.

dbt runs as a child process (``dbt-ol``, OpenLineage's wrapper around the dbt CLI), as a person would run it,
so that a run driven by the runner and a ``dbt build --vars`` typed by hand are the same thing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner import database, sail
from runner.errors import (
    DataQualityStop,
    EnvironmentProblem,
    PipelineFailure,
    ResourceFailure,
    TransientFailure,
)
from runner.lineage import RUN_JOB, report_lost_events
from runner.observability import stage
from runner.settings import PROJECT_DIR, Settings

DBT_HUB = ("hub.getdbt.com", 443)
HUB_PROBE_SECONDS = 3
INSTALLED_MARKER = ".olist-dw-installed"
# What each dbt package of the offline store must unpack to (see check_content), beside package-lock.yml.
CHECKSUMS_FILE = PROJECT_DIR / "package-checksums.yml"
# The Elementary CLI runs its own dbt project; these are the packages that project's packages.yml asks for.
EDR_PACKAGES = (("dbt-labs", "dbt_utils", "0.8.6"), ("elementary-data", "elementary", "0.25.1"))
OUTPUT_TAIL_LINES = 40
LINEAGE_NOISE = re.compile(r"^\[\d{4}-\d{2}-\d{2} [\d:,]+\] \[\w+\] \[openlineage")


@dataclass(frozen=True)
class LockedPackage:
    """One entry of ``package-lock.yml``, and its archive name in the offline store."""

    org: str
    name: str
    version: str

    @property
    def archive_key(self) -> str:
        return f"{self.org}__{self.name}__{self.version}"

    @property
    def archive_name(self) -> str:
        return f"{self.archive_key}.tar.gz"


@dataclass(frozen=True)
class DbtResult:
    """A finished dbt invocation."""

    invocation_id: str | None
    output: str


def write_profile(settings: Settings, dsn: str) -> Path:
    """Write ``profiles.yml`` for the database in use (git-ignored), so plain ``dbt`` commands work too.

    It holds two profiles on the same database: ``olist_dw`` for the project and ``elementary`` (the schema where
    the Elementary package keeps its results) for the Elementary CLI. A configured server's password never
    lands in it (dbt reads it from ``OLIST_DW_DB_PASSWORD``); the embedded server's generated one does, so that
    ``dbt`` typed by hand reaches that server too: the file is the owner's only (0600), like the secret's own file.
    When a Sail endpoint is in use (see ``sail_target``), ``olist_dw`` has a second output, ``sail``.
    """
    target = database.profile_target(dsn)
    if settings.dsn is None:
        target["password"] = database.password_of(dsn)
    outputs: dict[str, object] = {"dev": target}
    sail_output = sail_target(settings)
    if sail_output is not None:
        outputs["sail"] = sail_output
    profile = {
        "olist_dw": {"target": "dev", "outputs": outputs},
        "elementary": {"target": "dev", "outputs": {"dev": {**target, "schema": "elementary"}}},
    }
    return _write_profile_file(settings, profile)


def sail_target(settings: Settings) -> dict[str, object] | None:
    """dbt-sail's output for the Sail endpoint in use (``OLIST_DW_SPARK_REMOTE``, else the running local cluster),
    or None when there is none.

    dbt-sail's ``remote`` mode: a Spark Connect server at host and port (its ``embedded`` mode would start a
    server inside dbt, with an in-memory catalog that dies with each invocation). One thread: dbt-spark's session
    connections share one Spark Connect session.
    """
    found = sail.endpoint(settings)
    if found is None:
        return None
    host, port = found
    return {"type": "sail", "mode": "remote", "host": host, "port": port, "schema": "core", "threads": 1}


def write_sail_target(settings: Settings) -> Path:
    """Add, update or remove the ``sail`` output of an existing ``profiles.yml`` (``sail start`` / ``sail stop``),
    leaving the database's outputs as they are; with no profile yet, write one with the ``sail`` output only."""
    path = settings.profiles_dir / "profiles.yml"
    profile = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    if not isinstance(profile, dict) or not isinstance(profile.get("olist_dw"), dict):
        profile = {"olist_dw": {"target": "sail", "outputs": {}}}
    outputs = profile["olist_dw"].setdefault("outputs", {})
    sail_output = sail_target(settings)
    if sail_output is None:
        outputs.pop("sail", None)
    else:
        outputs["sail"] = sail_output
    return _write_profile_file(settings, profile)


def _write_profile_file(settings: Settings, profile: dict[str, object]) -> Path:
    """Write the profile if it changed, owner-only (0600): it may hold the embedded server's password."""
    settings.profiles_dir.mkdir(parents=True, exist_ok=True)
    path = settings.profiles_dir / "profiles.yml"
    text = "# Written by `python -m runner`; edit OLIST_DW_DSN instead.\n" + yaml.safe_dump(profile, sort_keys=False)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    path.chmod(0o600)
    return path


def locked_packages(project_dir: Path) -> list[LockedPackage]:
    """The hub packages pinned in ``package-lock.yml``."""
    lock = yaml.safe_load((project_dir / "package-lock.yml").read_text(encoding="utf-8"))
    packages = []
    for entry in lock.get("packages", []):
        org, name = entry["package"].split("/")
        packages.append(LockedPackage(org, name, str(entry["version"])))
    return packages


def _installed_marker(packages: list[LockedPackage]) -> str:
    return json.dumps(sorted(package.archive_name for package in packages))


def _mark_installed(packages_dir: Path, packages: list[LockedPackage]) -> None:
    """Record which locked versions the folder holds, so the next command can skip the install."""
    (packages_dir / INSTALLED_MARKER).write_text(_installed_marker(packages), encoding="utf-8")


def _is_installed(packages_dir: Path, packages: list[LockedPackage]) -> bool:
    marker = packages_dir / INSTALLED_MARKER
    return (
        marker.exists()
        and marker.read_text(encoding="utf-8") == _installed_marker(packages)
        and all((packages_dir / package.name / "dbt_project.yml").exists() for package in packages)
    )


def hub_reachable() -> bool:
    """Whether the dbt hub answers at all; a closed network fails this at once instead of hanging dbt deps."""
    try:
        with socket.create_connection(DBT_HUB, timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False


def install_from_store(store: Path, packages_dir: Path, packages: list[LockedPackage]) -> None:
    """Unpack each package's archive (single top folder named after the package) into the packages folder."""
    missing = [package.archive_name for package in packages if not (store / package.archive_name).is_file()]
    if missing:
        raise EnvironmentProblem(
            "dbt packages are missing and the dbt hub cannot be reached. Missing from the offline store "
            f"{store}: {', '.join(missing)}. Either connect to the dbt hub and run `python -m runner deps`, "
            "or put those archives (<org>__<package>__<version>.tar.gz, one top folder named after the package) "
            "in the store; OLIST_DW_PACKAGE_STORE names another store folder."
        )
    packages_dir.mkdir(parents=True, exist_ok=True)
    for package in packages:
        target = packages_dir / package.name
        with (
            tempfile.TemporaryDirectory(dir=packages_dir) as scratch,
            tarfile.open(store / package.archive_name) as archive,
        ):
            archive.extractall(scratch, filter="data")
            unpacked = Path(scratch) / package.name
            if not (unpacked / "dbt_project.yml").exists():
                raise EnvironmentProblem(f"{store / package.archive_name} has no top folder {package.name}/")
            check_content(unpacked, package, store / package.archive_name)
            if target.exists():
                shutil.rmtree(target)
            unpacked.rename(target)


def content_digest(folder: Path) -> str:
    """SHA-256 over a package's unpacked files: each one's path and content, in path order.

    The files, not the archive's bytes: tools that make archives (git archive, GitHub, the hub) differ in
    compression, timestamps and headers for the same files.
    """
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*"), key=lambda item: item.relative_to(folder).as_posix()):
        if path.is_symlink():
            content = str(path.readlink()).encode()
        elif path.is_file():
            content = path.read_bytes()
        else:
            continue
        name = path.relative_to(folder).as_posix().encode()
        digest.update(b"%d:%s%d:" % (len(name), name, len(content)))
        digest.update(content)
    return digest.hexdigest()


def check_content(unpacked: Path, package: LockedPackage, archive: Path) -> None:
    """Refuse a package from the offline store whose files are not the ones recorded in package-checksums.yml.

    A package's macros run with the warehouse's privileges (the superuser's on the embedded server): an
    archive swapped in the store must not get that far.
    """
    recorded = yaml.safe_load(CHECKSUMS_FILE.read_text(encoding="utf-8"))["packages"].get(package.archive_key)
    found = content_digest(unpacked)
    if recorded is None:
        raise EnvironmentProblem(f"{CHECKSUMS_FILE.name} records no checksum for {package.archive_key}: not installed")
    if found != recorded:
        raise EnvironmentProblem(
            f"{archive}: its files do not match the checksum {CHECKSUMS_FILE.name} records for "
            f"{package.archive_key} ({found[:12]}… found, {recorded[:12]}… recorded): not installed; "
            "replace the archive with the package's published release"
        )


def ensure_packages(settings: Settings, *, force: bool = False) -> str:
    """Install the locked dbt packages when missing: from the hub if it answers, else from the offline store.

    Returns how they were provided: "present", "hub" or "store".
    """
    packages_dir = settings.project_dir / "dbt_packages"
    packages = locked_packages(settings.project_dir)
    if not force and _is_installed(packages_dir, packages):
        return "present"
    if hub_reachable():
        run_dbt(settings, ["deps"], lineage=False)
        how = "hub"
    else:
        install_from_store(settings.package_store, packages_dir, packages)
        how = "store"
    _mark_installed(packages_dir, packages)
    return how


def edr_packages_dir() -> Path:
    """Where the Elementary CLI's internal dbt project keeps its packages.

    Its dbt_project.yml reads DBT_PACKAGES_FOLDER, but its "is the package up to date" check looks only in the
    project's own ``dbt_packages`` folder and runs ``dbt deps`` (the hub) when it finds nothing there: the packages
    must be in that folder, and DBT_PACKAGES_FOLDER names the same one.
    """
    import elementary

    return Path(elementary.__file__).resolve().parent / "monitor" / "dbt_project" / "dbt_packages"


def ensure_edr_packages(settings: Settings) -> Path:
    """Prepare the packages of the Elementary CLI's internal dbt project, from the offline store."""
    packages = [LockedPackage(*spec) for spec in EDR_PACKAGES]
    target = edr_packages_dir()
    if not _is_installed(target, packages):
        install_from_store(settings.package_store, target, packages)
        _mark_installed(target, packages)
    return target


def dbt_environment(settings: Settings, dsn: str | None) -> dict[str, str]:
    """The child's environment: profile location, no telemetry, lineage to a file unless a URL is configured."""
    environment = dict(os.environ)
    environment.update(
        {
            "DBT_PROFILES_DIR": str(settings.profiles_dir),
            "DBT_PROJECT_DIR": str(settings.project_dir),
            "DBT_LOG_PATH": str(settings.dbt_log_dir),
            "DBT_TARGET_PATH": str(settings.target_dir),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
            "OPENLINEAGE_NAMESPACE": environment.get("OPENLINEAGE_NAMESPACE", "olist_dw"),
            # dbt-ol starts `dbt` from PATH: make it this environment's dbt even when the venv is not activated.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")]),
        }
    )
    if dsn is not None:
        environment["OLIST_DW_DB_PASSWORD"] = database.password_of(dsn)
    if not environment.get("OPENLINEAGE_URL") and not environment.get("OPENLINEAGE_CONFIG"):
        settings.lineage_file.parent.mkdir(parents=True, exist_ok=True)
        environment["OPENLINEAGE__TRANSPORT__TYPE"] = "file"
        environment["OPENLINEAGE__TRANSPORT__LOG_FILE_PATH"] = str(settings.lineage_file)
        environment["OPENLINEAGE__TRANSPORT__APPEND"] = "true"
    return environment


def executable(name: str) -> str:
    """A console script of this virtual environment, found beside the running interpreter."""
    candidate = Path(sys.executable).with_name(name)
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise EnvironmentProblem(f"`{name}` is not installed in this environment; run `pip install -e .`")
    return found


def run_dbt(
    settings: Settings,
    arguments: list[str],
    *,
    dsn: str | None = None,
    variables: dict[str, str] | None = None,
    run_settings: dict[str, str] | None = None,
    target_dir: Path | None = None,
    lineage: bool = True,
    parent_run_id: uuid.UUID | None = None,
) -> DbtResult:
    """Run one dbt command (through ``dbt-ol`` when lineage is wanted); raise with dbt's own summary on failure.

    ``run_settings`` are the project's environment-backed vars (``OLIST_DW_*``, read in ``vars:`` of
    dbt_project.yml): unlike ``variables`` (``--vars``) they leave dbt's saved parse state valid. An invocation
    whose ``--vars`` differ from the usual gets its own ``target_dir``, so that it keeps its own parse state
    instead of invalidating the window builds'.
    """
    target_dir = target_dir or settings.target_dir
    command = [*(lineage_wrapper(arguments) if lineage else [executable("dbt")]), *arguments]
    # dbt-ol reads the artefacts it turns into events from --target-path; it does not see DBT_TARGET_PATH.
    command += ["--target-path", str(target_dir)]
    if variables:
        command += ["--vars", json.dumps(variables)]
    # A stale run_results.json would pass for this run's when dbt stops before writing its own (parse errors).
    (target_dir / "run_results.json").unlink(missing_ok=True)
    environment = dbt_environment(settings, dsn)
    environment.update(run_settings or {})
    if parent_run_id is not None:
        # The runner's window run is the parent of dbt's run in the lineage graph.
        environment["OPENLINEAGE_PARENT_ID"] = f"{environment['OPENLINEAGE_NAMESPACE']}/{RUN_JOB}/{parent_run_id}"
    completed = subprocess.run(
        command,
        cwd=settings.project_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    output = completed.stdout + completed.stderr
    if lineage:
        # dbt-ol says which events it could not send only in its output, which is not shown when dbt succeeds.
        report_lost_events(arguments, output)
    if completed.returncode != 0:
        raise failure_class(target_dir, output)(
            f"`dbt {' '.join(arguments)}` failed (exit {completed.returncode}):\n{failure_summary(output)}"
        )
    return DbtResult(invocation_id=_invocation_id(target_dir), output=output)


def lineage_wrapper(arguments: list[str]) -> list[str]:
    """``dbt-ol``; for the ``sail`` target, the same wrapper taught dbt-sail's profile (runner/sail_lineage.py)."""
    if "--target" in arguments and arguments[arguments.index("--target") + 1 :][:1] == ["sail"]:
        return [sys.executable, "-m", "runner.sail_lineage"]
    return [executable("dbt-ol")]


TRANSIENT_SIGNS = (
    "deadlock detected",
    "could not serialize access",
    "canceling statement due to lock timeout",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    # merge_window's optimistic lock: a row changed since it was read; another attempt reads it again.
    "version conflict on",
)


RESOURCE_SIGNS = (
    "out of memory",
    "canceling statement due to statement timeout",
    "could not resize shared memory segment",
)


def failure_class(target_dir: Path, output: str) -> type[PipelineFailure]:
    """Which kind of failure a failed dbt run was, after the error taxonomy: transient, data quality, or other."""
    if any(sign in output for sign in TRANSIENT_SIGNS):
        return TransientFailure
    if any(sign in output for sign in RESOURCE_SIGNS):
        return ResourceFailure
    run_results = target_dir / "run_results.json"
    if run_results.exists():
        statuses = {result["status"] for result in json.loads(run_results.read_text(encoding="utf-8"))["results"]}
        if "fail" in statuses and "error" not in statuses:
            return DataQualityStop
    return PipelineFailure


def generate_docs(settings: Settings, dsn: str) -> Path:
    """``dbt docs generate``, the packages installed first, as the stage ``docs``: the site (index.html, manifest,
    catalog) in the target folder, which it returns."""
    ensure_packages(settings)
    with stage("docs"):
        run_dbt(settings, ["docs", "generate"], dsn=dsn, lineage=False)
    return settings.target_dir


def serve_docs(settings: Settings, dsn: str, port: int) -> None:
    """``dbt docs serve`` on localhost only, until interrupted."""
    command = [
        executable("dbt"),
        "docs",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--target-path",
        str(settings.target_dir),
    ]
    subprocess.run(command, cwd=settings.project_dir, env=dbt_environment(settings, dsn), check=False)


def failure_summary(output: str) -> str:
    """dbt's own account of what failed: its closing "Completed with N errors" section, else the last lines.

    The OpenLineage wrapper's log lines and progress bars are left out: they say nothing about the failure.
    """
    lines = [
        line
        for line in output.splitlines()
        if line.strip() and not LINEAGE_NOISE.match(line) and "Emitting OpenLineage events" not in line
    ]
    for index, line in enumerate(lines):
        if "Completed with" in line or "Encountered an error" in line:
            return "\n".join(lines[index:])
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


def _invocation_id(target_dir: Path) -> str | None:
    run_results = target_dir / "run_results.json"
    if not run_results.exists():
        return None
    return json.loads(run_results.read_text(encoding="utf-8")).get("metadata", {}).get("invocation_id")


# What the warehouse's contents depend on in the dbt project: its SQL, its configs and tests, its package versions.
FINGERPRINTED = ("models", "macros", "snapshots", "seeds", "tests", "dbt_project.yml", "package-lock.yml")
FINGERPRINTED_SUFFIXES = (".sql", ".yml", ".yaml", ".csv")


def project_fingerprint(project_dir: Path, *, data_only: bool = True) -> str:
    """A digest of the dbt project: the windows built with another (``data_only``) fingerprint are due again.

    With ``data_only``, descriptions are left out of the YAML files and doc blocks (``.md``) are not read:
    documenting a column changes no row, so it should not make every window due. Without it, the digest says
    whether Elementary's copy of the project's artifacts (descriptions included) is current. The runner's Python
    tests under ``tests/`` are not part of the dbt project and are skipped by suffix.
    """
    suffixes = FINGERPRINTED_SUFFIXES if data_only else (*FINGERPRINTED_SUFFIXES, ".md")
    digest = hashlib.sha256()
    for entry in FINGERPRINTED:
        root = project_dir / entry
        paths = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in paths:
            if not path.is_file() or path.suffix not in suffixes:
                continue
            content = path.read_bytes()
            if data_only and path.suffix in (".yml", ".yaml"):
                content = json.dumps(_without_descriptions(yaml.safe_load(content)), sort_keys=True).encode()
            digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + content + b"\0")
    return digest.hexdigest()[:16]


def _without_descriptions(document: object) -> object:
    if isinstance(document, dict):
        return {key: _without_descriptions(value) for key, value in document.items() if key != "description"}
    if isinstance(document, list):
        return [_without_descriptions(item) for item in document]
    return document
