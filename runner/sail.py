"""Sail, the second engine dbt can build on: a local cluster the runner starts itself, or an external server.

Sail (the ``pysail`` wheel) is a Rust engine that speaks Spark Connect; dbt reaches it through ``dbt-sail``. Its
catalog lives in memory unless it is given one: a fresh server knows no table, so every incremental model would
rebuild in full. The local cluster therefore keeps its catalog in a Hive metastore (Derby, under the runner's
home), started on the machine's Java from the jars of the ``pyspark`` wheel. ``dbt-sail`` needs that wheel anyway
(through ``dbt-spark[session]``), so nothing is downloaded when the cluster starts: ``pip install -e '.[sail]'``
brings everything but Java.

Both processes outlive the command that started them, like the embedded PostgreSQL, so the next command and a
hand-run ``dbt --target sail`` reuse them. Each has a pid file, a port file and a log in ``<home>/sail/``; both
listen on free ports chosen when they start, never on fixed ones. Sail and its workers listen on loopback only.
The metastore (Hive 2.3) has no setting for its bind address and listens on every interface of the machine,
without authentication: run the local cluster on a developer's machine, not on a shared host.

``OLIST_DW_SPARK_REMOTE`` (``sc://host:port``) points the Sail target at a server someone else runs instead; the
runner then starts nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import tenacity

from runner.errors import EnvironmentProblem, UsageError
from runner.sail_server import HOST
from runner.settings import PROJECT_DIR, Settings

WORKERS = 2
# Tasks a worker runs at once (Sail's default is 8): a stage needing more slots than the cluster has fails at once.
WORKER_TASK_SLOTS = 32
# Sail stops a worker it finds idle this long; 0.7.2 stopped both workers of a running job that way (the job then
# waited forever, "aborting 1 task(s)"), so the local cluster keeps its two for a day.
WORKER_MAX_IDLE_SECONDS = 86_400
# local-cluster: a driver and WORKERS workers in one process, talking over loopback RPC, as a real cluster would.
# local: one process; the fallback while local-cluster mode cannot run some functions in writes (see notes in
# ``sail_environment``).
MODES = ("local-cluster", "local")
CATALOG = "sail"
SERVER = "server"
METASTORE = "metastore"
# The metastore's first start creates its schema in Derby: about 10 s on an idle machine, 40 s on a busy one.
METASTORE_START_SECONDS = 180
SERVER_START_SECONDS = 60
STOP_SECONDS = 30
CONNECT_SECONDS = 1.0
METASTORE_HEAP = "512m"
# How each process's command line is told apart from another process that got the same pid after a reboot.
COMMAND_MARKERS = {SERVER: "runner.sail_server", METASTORE: "org.apache.hadoop.hive.metastore.HiveMetaStore"}
SAIL_DISTRIBUTIONS = ("pysail", "dbt-sail", "pyspark")
INSTALL_HINT = "pip install -e '.[sail]'"
JAVA_HINT = "install a Java runtime, 17 or later (Debian: apt-get install openjdk-17-jre-headless), or set JAVA_HOME"
REMOTE_PATTERN = re.compile(r"sc://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})/?")
# Hive logs to a file under the system's temporary folder unless told otherwise: everything goes to its own log.
METASTORE_LOG4J = """\
status = warn
name = olist-dw-metastore
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %-5p [%t] %c{2}: %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""


@dataclass(frozen=True)
class ProcessStatus:
    """One of the local cluster's processes: whether it runs, where it listens, where it writes its log."""

    name: str
    running: bool
    log: Path
    pid: int | None = None
    port: int | None = None


@dataclass(frozen=True)
class SailStatus:
    """What ``sail status`` reports: the endpoint dbt's Sail target uses, and the local processes."""

    remote: str | None
    remote_reachable: bool | None
    server: ProcessStatus
    metastore: ProcessStatus
    warehouse: Path
    mode: str | None = None  # the running server's (OLIST_DW_SAIL_MODE when it started)

    @property
    def endpoint(self) -> str | None:
        """The Spark Connect URL in use: the external server's, else the local cluster's when it runs."""
        if self.remote:
            return self.remote
        return f"sc://{HOST}:{self.server.port}" if self.server.running and self.metastore.running else None


class _NotReady(Exception):
    """A process that runs but does not answer yet: tenacity tries again."""


def parse_remote(url: str) -> tuple[str, int]:
    """The host and port of ``sc://host:port``; anything else is a usage error.

    dbt-sail's remote mode takes a host and a port and nothing more, so parameters after the address (``/;token=``,
    ``use_ssl``) are refused rather than silently dropped.
    """
    match = REMOTE_PATTERN.fullmatch(url.strip())
    port = int(match.group("port")) if match else 0
    if match is None or not 0 < port < 65536:
        raise UsageError(
            f"OLIST_DW_SPARK_REMOTE must be a Spark Connect URL sc://host:port (without parameters), got {url!r}"
        )
    return match.group("host").strip("[]"), port


def status(settings: Settings) -> SailStatus:
    """Read the pid and port files without starting anything; an external server is asked only whether it answers."""
    remote_reachable = None
    if settings.spark_remote:
        host, port = parse_remote(settings.spark_remote)
        remote_reachable = _answers(host, port)
    server = _process_status(settings, SERVER)
    return SailStatus(
        remote=settings.spark_remote,
        remote_reachable=remote_reachable,
        server=server,
        metastore=_process_status(settings, METASTORE),
        warehouse=warehouse_folder(settings),
        mode=_read_text(_mode_file(settings)) if server.running else None,
    )


def endpoint(settings: Settings) -> tuple[str, int] | None:
    """The host and port dbt's Sail target connects to: the external server's, else the running local cluster's."""
    if settings.spark_remote:
        return parse_remote(settings.spark_remote)
    found = status(settings)
    return (HOST, found.server.port) if found.endpoint and found.server.port else None


def start(settings: Settings) -> SailStatus:
    """Start the metastore, then Sail on it (or find them running); return once both answer.

    The metastore first: Sail reads its catalog from it from the first query on. A process that dies or does not
    answer in time is stopped, and the error quotes the end of its log.
    """
    if settings.spark_remote:
        parse_remote(settings.spark_remote)
        raise UsageError(
            "OLIST_DW_SPARK_REMOTE is set: the Sail target uses that server, so there is no local cluster to start "
            "(unset it to run one here)"
        )
    if settings.sail_mode not in MODES:
        raise UsageError(f"OLIST_DW_SAIL_MODE must be one of {', '.join(MODES)}, got {settings.sail_mode!r}")
    jars = check_installation()
    java = java_executable()
    settings.sail_dir.mkdir(parents=True, exist_ok=True)
    with _lock(settings):
        metastore = _process_status(settings, METASTORE)
        if not metastore.running:
            _stop_process(settings, SERVER)  # a server left without its metastore sees no catalog: start afresh
            metastore = _start_metastore(settings, java, jars)
        if not _process_status(settings, SERVER).running:
            _start_server(settings, metastore.port or 0)
    return status(settings)


def stop(settings: Settings) -> list[str]:
    """Stop Sail, then the metastore (SIGTERM, then SIGKILL after a while), and delete what is left of the shuffle;
    return the names of those that ran."""
    if not settings.sail_dir.exists():
        return []
    with _lock(settings):
        stopped = [name for name in (SERVER, METASTORE) if _stop_process(settings, name)]
        shutil.rmtree(shuffle_folder(settings), ignore_errors=True)
        return stopped


def check_installation() -> Path:
    """The folder of the pyspark wheel's jars, or an error saying what to install.

    The jars must come from the full ``pyspark`` wheel: the ``pyspark-client`` wheel has the same Python package
    without them (and the two overwrite each other's files when both are installed).
    """
    missing = []
    for distribution in SAIL_DISTRIBUTIONS:
        try:
            importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(distribution)
    if missing:
        raise EnvironmentProblem(f"Sail is not installed (missing {', '.join(missing)}): run `{INSTALL_HINT}`")
    spec = importlib.util.find_spec("pyspark")
    jars = Path(spec.origin).parent / "jars" if spec is not None and spec.origin else None
    if jars is None or not any(jars.glob("hive-metastore-*.jar")):
        raise EnvironmentProblem(
            "the installed pyspark has no Hive metastore jars (the pyspark-client wheel replaced the full one?): "
            f"run `pip uninstall -y pyspark-client pyspark` and `{INSTALL_HINT}`"
        )
    return jars


def java_executable() -> str:
    """``$JAVA_HOME/bin/java``, else ``java`` from PATH; the metastore runs on it."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    found = str(candidate) if candidate is not None and candidate.is_file() else shutil.which("java")
    if not found:
        raise EnvironmentProblem(f"the Sail cluster's Hive metastore needs Java, which was not found: {JAVA_HINT}")
    return found


def warehouse_folder(settings: Settings) -> Path:
    """Where the metastore puts the tables' files: one folder per schema, ``<schema>.db``."""
    return settings.sail_dir / "warehouse"


def shuffle_folder(settings: Settings) -> Path:
    """Where the local cluster's workers write the data one stage hands the next (see sail_environment)."""
    return settings.sail_dir / "shuffle"


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.sail_dir / f"{name}.pid"


def _port_file(settings: Settings, name: str) -> Path:
    return settings.sail_dir / f"{name}.port"


def _log_file(settings: Settings, name: str) -> Path:
    return settings.sail_dir / f"{name}.log"


@contextlib.contextmanager
def _lock(settings: Settings) -> Iterator[None]:
    """Two commands starting the cluster at once must not start two metastores on one Derby database."""
    with (settings.sail_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _mode_file(settings: Settings) -> Path:
    return settings.sail_dir / f"{SERVER}.mode"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    scratch.replace(path)


def _process_status(settings: Settings, name: str) -> ProcessStatus:
    pid = _read_int(_pid_file(settings, name))
    log = _log_file(settings, name)
    if pid is None or not _is_ours(pid, name):
        return ProcessStatus(name=name, running=False, log=log)
    return ProcessStatus(name=name, running=True, log=log, pid=pid, port=_read_int(_port_file(settings, name)))


def _is_ours(pid: int, name: str) -> bool:
    """Whether the pid is alive and still the process we started (a pid file can outlive a reboot)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is a child of ours that ended, so it is not seen as alive
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and COMMAND_MARKERS[name] in command


def _free_port() -> int:
    """A port nobody listens on now; the process started on it next fails at once if it was taken meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            return True
    except OSError:
        return False


def _log_tail(path: Path, lines: int = 5) -> str:
    if not path.exists():
        return "(no log)"
    tail = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    return " / ".join(tail) or "(empty log)"


def _spawn(settings: Settings, name: str, command: list[str], environment: dict[str, str]) -> subprocess.Popen:
    """Start a process of the cluster in its own session (a Ctrl-C of the command does not reach it), logging to
    its log file, and write its pid file."""
    log = _log_file(settings, name)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            command,
            cwd=settings.sail_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _write_atomically(_pid_file(settings, name), f"{process.pid}\n")
    return process


def _wait_until_ready(
    settings: Settings, name: str, process: subprocess.Popen, timeout: float, port_of: Callable[[], int | None]
) -> int:
    """Wait until the process answers on its port; return the port. A process that exits first, or does not answer
    in time, is an error that quotes the end of its log (and a process that hangs is stopped)."""
    log = _log_file(settings, name)

    def attempt() -> int:
        if process.poll() is not None:
            raise EnvironmentProblem(
                f"the Sail cluster's {name} exited at start (code {process.returncode}): {_log_tail(log)} (log: {log})"
            )
        port = port_of()
        if port is None or not _answers(HOST, port):
            raise _NotReady
        return port

    try:
        for attempt_state in tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_NotReady),
            wait=tenacity.wait_fixed(0.25),
            stop=tenacity.stop_after_delay(timeout),
            reraise=True,
        ):
            with attempt_state:
                port = attempt()
    except _NotReady:
        _stop_process(settings, name)
        raise EnvironmentProblem(
            f"the Sail cluster's {name} did not answer within {timeout:.0f} s: {_log_tail(log)} (log: {log})"
        ) from None
    return port


def _start_metastore(settings: Settings, java: str, jars: Path) -> ProcessStatus:
    """The Hive metastore on Derby, from the pyspark wheel's jars; its tables' files go to the warehouse folder."""
    sail_dir = settings.sail_dir
    warehouse = warehouse_folder(settings)
    warehouse.mkdir(exist_ok=True)
    scratch = sail_dir / "tmp"
    scratch.mkdir(exist_ok=True)
    log4j = sail_dir / "metastore-log4j2.properties"
    log4j.write_text(METASTORE_LOG4J)
    derby = sail_dir / "metastore_db"
    if ";" in str(derby):
        raise UsageError(f"the runner's home {settings.home} has a ';', which Derby's connection URL cannot carry")
    port = _free_port()
    command = [
        java,
        f"-Xmx{METASTORE_HEAP}",
        f"-Djava.io.tmpdir={scratch}",
        f"-Djavax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={derby};create=true",
        # The schema is made on the first start (Derby, a database of our own); no version check against it.
        "-Ddatanucleus.schema.autoCreateAll=true",
        "-Dhive.metastore.schema.verification=false",
        f"-Dhive.metastore.warehouse.dir={warehouse}",
        f"-Dderby.stream.error.file={sail_dir / 'derby.log'}",
        # Hive's default logging is asynchronous, through a library the pyspark wheel lacks, into a temp folder.
        "-Dhive.async.log.enabled=false",
        f"-Dhive.log4j.file={log4j}",
        "-cp",
        str(jars / "*"),
        COMMAND_MARKERS[METASTORE],
        "-p",
        str(port),
    ]
    process = _spawn(settings, METASTORE, command, dict(os.environ))
    _write_atomically(_port_file(settings, METASTORE), f"{port}\n")
    _wait_until_ready(settings, METASTORE, process, METASTORE_START_SECONDS, lambda: port)
    return _process_status(settings, METASTORE)


def sail_environment(mode: str, metastore_port: int, shuffle: Path) -> dict[str, str]:
    """Sail's settings (it reads them from the environment): a local cluster of two workers on loopback, its
    catalog in the metastore, and its shuffle in files under ``shuffle``.

    Sail 0.7.2 in local-cluster mode fails ``create table ... as`` and ``insert into`` on rows of some of its
    functions (``upper``, ``md5``, ``nullif`` ...: "ExtendedScalarUdf: no UDF found"), where ``insert overwrite``
    and ``merge`` work: the project writes tables with those (macros/overrides/create_table_as.sql). A query stage
    must fit in the workers' task slots at once: a test unioning twenty checks needs more than Sail's default 8 a
    worker, hence WORKER_TASK_SLOTS; and workers are kept however long they idle (WORKER_MAX_IDLE_SECONDS).

    The shuffle is the ``storage`` backend's: each stage's output written to files before the stages that read it
    start. The default (``flight``) streams it from task to task through bounded buffers, and at 1,000,000 orders
    the one statement of dim_customer's post-hook (a merge whose source joins the table to its customers' scores)
    waited forever with the CPU idle in three of five builds (with 32 task slots a worker, and with 256), while the
    same statement took 16 to 21 s alone in a new session. On files, the history and the day's window built.
    """
    return {
        "SAIL_MODE": mode,
        "SAIL_CLUSTER__WORKER_INITIAL_COUNT": str(WORKERS),
        "SAIL_CLUSTER__WORKER_MAX_COUNT": str(WORKERS),
        "SAIL_CLUSTER__WORKER_TASK_SLOTS": str(WORKER_TASK_SLOTS),
        "SAIL_CLUSTER__WORKER_MAX_IDLE_TIME_SECS": str(WORKER_MAX_IDLE_SECONDS),
        "SAIL_CLUSTER__DRIVER_LISTEN_HOST": HOST,
        "SAIL_CLUSTER__WORKER_LISTEN_HOST": HOST,
        "SAIL_CATALOG__LIST": f'[{{name="{CATALOG}", type="hive_metastore", uris=["{HOST}:{metastore_port}"]}}]',
        "SAIL_CATALOG__DEFAULT_CATALOG": CATALOG,
        "SAIL_CLUSTER__SHUFFLE_BACKEND__TYPE": "storage",
        "SAIL_CLUSTER__SHUFFLE_BACKEND__STORAGE__PATH": shuffle.as_uri(),
    }


def _start_server(settings: Settings, metastore_port: int) -> ProcessStatus:
    """Sail's Spark Connect server, hosted by ``runner.sail_server``: it binds a free port and writes it down."""
    port_file = _port_file(settings, SERVER)
    port_file.unlink(missing_ok=True)
    _bridge_file_urls(settings)
    _write_atomically(_mode_file(settings), f"{settings.sail_mode}\n")
    # What a server stopped before left (Sail removes most of a session's shuffle files, not all): no server reads it.
    shutil.rmtree(shuffle_folder(settings), ignore_errors=True)
    environment = {**os.environ, **sail_environment(settings.sail_mode, metastore_port, shuffle_folder(settings))}
    # The host module is the runner's own: importable from the project even where it is not installed.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", COMMAND_MARKERS[SERVER], str(port_file)]
    process = _spawn(settings, SERVER, command, environment)
    _wait_until_ready(settings, SERVER, process, SERVER_START_SECONDS, lambda: _read_int(port_file))
    return _process_status(settings, SERVER)


def _bridge_file_urls(settings: Settings) -> None:
    """Make Sail's misreading of the metastore's locations land where the metastore means.

    The metastore hands out locations as ``file:/abs/path`` (Hadoop's form of a local file URL). Sail 0.7 reads
    that form as a relative path when it writes (``create table ... as``, ``insert``): the files would go to
    ``<cwd>/file:/abs/path`` while ``create table`` and reads use ``/abs/path``. Sail runs in the cluster's folder,
    so a link ``file:`` there to ``/`` makes both the same folder.
    """
    bridge = settings.sail_dir / "file:"
    if bridge.is_symlink() and str(bridge.readlink()) == "/":
        return
    if bridge.exists() or bridge.is_symlink():
        raise EnvironmentProblem(
            f"{bridge} is in the way of the link the Sail cluster needs there (to /): move it away and start again"
        )
    bridge.symlink_to("/")


def _stop_process(settings: Settings, name: str) -> bool:
    """SIGTERM, then SIGKILL if it has not ended after STOP_SECONDS; its pid and port files go. True if it ran."""
    found = _process_status(settings, name)
    if found.running and found.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while _is_ours(found.pid, name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_ours(found.pid, name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(found.pid, signal.SIGKILL)
            while _is_ours(found.pid, name):
                time.sleep(0.1)
    _pid_file(settings, name).unlink(missing_ok=True)
    _port_file(settings, name).unlink(missing_ok=True)
    if name == SERVER:
        _mode_file(settings).unlink(missing_ok=True)
    return found.running
