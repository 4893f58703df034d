"""The database seam: the embedded server locked down, and a configured DSN carried whole (TLS included) or refused.

Real servers only: the embedded one as the runner starts it, a cluster as an older release made it (trusting
every local connection), and a TLS-only server with its own certificate authority made here.
"""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import unavailable
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import conninfo

from runner import database
from runner.errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE, EnvironmentProblem
from runner.settings import PROJECT_DIR, Settings

INTRUDER = "olist_dw_intruder"
PSQL = Path(database.embedded_module().__file__).parent / "pginstall" / "bin" / "psql"


def embedded_settings(home: Path) -> Settings:
    return Settings(PROJECT_DIR, home, None, Settings.from_environment().package_store)


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A folder outside pytest's temporary root (pytest resets that root to 0700, locking the server's user out)."""
    folder = Path(tempfile.mkdtemp(prefix="olist-dw-db-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def intruder() -> str:
    """Another local OS user, as an attacker on a shared machine is (needs root to create, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("creating another OS user needs root (CI runs as root)")
    try:
        pwd.getpwnam(INTRUDER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "-s", "/bin/sh", INTRUDER], check=True)
    reachable = subprocess.run(["runuser", "-u", INTRUDER, "--", str(PSQL), "--version"], capture_output=True)
    assert reachable.returncode == 0, "the other user must be able to run psql, or the test proves nothing"
    return INTRUDER


def as_intruder_connects(intruder: str, socket_dir: Path) -> subprocess.CompletedProcess[str]:
    """psql as the other user, over the server's socket, as the superuser, with no password."""
    return subprocess.run(
        [
            *("runuser", "-u", intruder, "--", str(PSQL), "-h", str(socket_dir), "-U", "postgres", "-d", "postgres"),
            *("-w", "-tAc", "select 'in as ' || current_user"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def without_password(dsn: str) -> str:
    parts = conninfo.conninfo_to_dict(dsn)
    parts.pop("password", None)
    return conninfo.make_conninfo(**parts)


def assert_locked_down(settings: Settings, dsn: str, intruder: str) -> None:
    status = database.embedded_status(settings)
    assert status.running and status.socket_dir is not None
    folder = status.socket_dir.lstat()
    assert stat.S_IMODE(folder.st_mode) == 0o700, oct(folder.st_mode)
    assert stat.S_IMODE((status.socket_dir / ".s.PGSQL.5432").lstat().st_mode) == 0o700
    with psycopg.connect(dsn) as connection:
        listening = connection.execute("select current_setting('listen_addresses')").fetchone()[0]
    assert listening == "", "no TCP listener"
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(without_password(dsn))
    attempt = as_intruder_connects(intruder, status.socket_dir)
    assert attempt.returncode != 0
    assert "in as" not in attempt.stdout
    assert stat.S_IMODE(settings.embedded_secret_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("path_length", ["short", "too long for a socket"])
def test_the_embedded_server_admits_only_its_owner_with_its_password(private_folder, intruder, path_length):
    home = private_folder / ("h" if path_length == "short" else "h" * 100)
    settings = embedded_settings(home)
    try:
        dsn = database.start_embedded(settings)
        socket_dir = database.embedded_status(settings).socket_dir
        assert (socket_dir == settings.pgdata) == (path_length == "short")
        assert_locked_down(settings, dsn, intruder)
        assert database.start_embedded(settings) == dsn, "found running: the same DSN"
    finally:
        database.stop_embedded(settings)


def test_a_cluster_an_older_release_made_is_locked_down_on_its_next_start(private_folder, intruder):
    """The wheel's own get_server trusts every local connection; a long path puts its socket in a folder open to all."""
    settings = embedded_settings(private_folder / ("o" * 100))
    settings.home.mkdir()
    embedded = database.embedded_module()
    legacy = embedded.get_server(settings.pgdata, cleanup_mode=None)
    legacy_socket = Path(conninfo.conninfo_to_dict(legacy.get_uri())["host"])
    assert as_intruder_connects(intruder, legacy_socket).stdout.strip() == "in as postgres", "the hole, as it was"
    try:
        dsn = database.start_embedded(settings)
        assert_locked_down(settings, dsn, intruder)
    finally:
        database.stop_embedded(settings)


def test_a_socket_folder_someone_else_prepared_is_refused(private_folder):
    settings = embedded_settings(private_folder / ("s" * 100))
    settings.home.mkdir()
    database.start_embedded(settings)
    squatted = database.embedded_status(settings).socket_dir
    database.stop_embedded(settings)
    squatted.chmod(0o777)
    with pytest.raises(EnvironmentProblem, match="mode 0700"):
        database.start_embedded(settings)
    squatted.chmod(0o700)


def test_the_profile_carries_every_tls_setting_of_the_dsn(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = database.profile_target(
        "host=db.example.internal port=6432 user=etl dbname=dw password=hunter2 sslmode=verify-full "
        "sslrootcert=ca.crt sslcert=client.crt sslkey=client.key keepalives_idle=30 connect_timeout=7 "
        "options='-c search_path=core'"
    )
    assert target["sslmode"] == "verify-full"
    assert target["sslrootcert"] == str(tmp_path / "ca.crt"), "absolute: dbt runs in the project folder"
    assert target["sslcert"] == str(tmp_path / "client.crt")
    assert target["sslkey"] == str(tmp_path / "client.key")
    assert (target["keepalives_idle"], target["connect_timeout"], target["search_path"]) == (30, 7, "core")
    assert "hunter2" not in yaml.safe_dump(target)


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("sslcrl=/etc/crl.pem", "sslcrl"),
        ("sslpassword=topsecret-key-pass", "sslpassword"),
        ("target_session_attrs=read-write", "target_session_attrs"),
        ("options='-c statement_timeout=0'", "options"),
        ("host=a,b", "host"),
    ],
)
def test_a_dsn_setting_the_profile_cannot_carry_is_refused_in_one_line(run_cli, setting, named):
    completed = run_cli("--dsn", f"host=localhost port=1 user=postgres {setting}", "db", "url")

    assert completed.returncode == EXIT_USAGE, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert named in lines[0]
    assert "topsecret" not in completed.stdout + completed.stderr


def test_a_malformed_dsn_is_refused_without_quoting_it(run_cli):
    completed = run_cli("status", env={"OLIST_DW_DSN": "host=localhost password=s3cr3t-marker oops"})

    assert completed.returncode == EXIT_USAGE, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "not a valid PostgreSQL connection string" in completed.stderr
    assert "s3cr3t-marker" not in completed.stdout + completed.stderr


def test_a_password_on_the_command_line_is_warned_about(run_cli):
    dsn = "host=localhost port=1 user=postgres password=s3cr3t-marker"
    on_command_line = run_cli("--dsn", dsn, "db", "url")
    from_environment = run_cli("db", "url", env={"OLIST_DW_DSN": dsn})

    assert on_command_line.returncode == from_environment.returncode == EXIT_OK
    assert "--dsn carries a password" in on_command_line.stderr
    assert "warning" not in from_environment.stderr
    for completed in (on_command_line, from_environment):
        assert "s3cr3t-marker" not in completed.stdout + completed.stderr
        assert "password=***" in completed.stdout


# --- TLS all the way: a server that accepts only TLS with a client certificate, verified by its own CA ---


@dataclass(frozen=True)
class Authority:
    """A certificate authority made for one test: its certificate and key, and certificates it signs."""

    folder: Path
    name: str

    @property
    def certificate(self) -> Path:
        return self.folder / f"{self.name}.crt"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return path


def make_authority(folder: Path, name: str) -> tuple[Authority, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"olist-dw test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    authority = Authority(folder, name)
    authority.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return authority, key, certificate


def issue(
    authority: tuple[Authority, ec.EllipticCurvePrivateKey, x509.Certificate], common_name: str, path: Path
) -> tuple[Path, Path]:
    """A certificate for ``common_name`` (also its DNS name) signed by the authority: (certificate, key) files."""
    _, authority_key, authority_certificate = authority
    key = new_key()
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    certificate_file = path.with_suffix(".crt")
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_file, write_key(key, path.with_suffix(".key"))


@dataclass(frozen=True)
class TlsServer:
    port: int
    folder: Path

    def dsn(self, rootcert: Path, dbname: str = "postgres") -> str:
        return conninfo.make_conninfo(
            host="localhost",
            port=self.port,
            user="postgres",
            dbname=dbname,
            sslmode="verify-full",
            sslrootcert=str(rootcert),
            sslcert=str(self.folder / "client.crt"),
            sslkey=str(self.folder / "client.key"),
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tls_capable_binaries() -> Path:
    """Debian's PostgreSQL (package ``postgresql``): the embedded wheel's server is built without TLS."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    if not found:
        unavailable(
            "TLS_POSTGRES", "needs a PostgreSQL built with TLS (Debian's postgresql package); the embedded one has none"
        )
    return found[-1].parent


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    """PostgreSQL on localhost TCP, TLS only (``hostssl``), clients authenticated by certificate, no socket."""
    binaries = tls_capable_binaries()
    folder = Path(tempfile.mkdtemp(prefix="olist-dw-tls-test-"))
    folder.chmod(0o711)
    authority = make_authority(folder, "ca")
    issue(authority, "postgres", folder / "client")
    server_folder = folder / "server"
    server_folder.mkdir(mode=0o700)
    server_certificate, server_key = issue(authority, "localhost", server_folder / "server")
    shutil.copy(authority[0].certificate, server_folder / "ca.crt")
    pgdata = folder / "pgdata"
    pgdata.mkdir(mode=0o700)
    as_server: dict[str, object] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as the wheel's unprivileged user, group included
        account = pwd.getpwnam(database.EMBEDDED_SYSTEM_USER)
        as_server = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        for path in (server_folder, *server_folder.iterdir(), pgdata):
            os.chown(path, account.pw_uid, account.pw_gid)

    def server_command(*arguments: str) -> None:
        subprocess.run(arguments, check=True, capture_output=True, timeout=120, **as_server)

    server_command(str(binaries / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "-E", "utf8")
    port = free_port()
    (pgdata / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 cert\nhostssl all all ::1/128 cert\n"  # TLS and a client certificate only
    )
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = 'localhost'\nport = {port}\nunix_socket_directories = ''\nssl = on\n"
            f"ssl_cert_file = '{server_certificate}'\nssl_key_file = '{server_key}'\n"
            f"ssl_ca_file = '{server_folder / 'ca.crt'}'\n"
        )
    pg_ctl = str(binaries / "pg_ctl")
    server_command(pg_ctl, "-D", str(pgdata), "-w", "-l", str(pgdata / "log"), "start")
    server = TlsServer(port, folder)
    try:
        with psycopg.connect(server.dsn(authority[0].certificate), autocommit=True) as admin:
            admin.execute("create database olist_tls")
        yield server
    finally:
        server_command(pg_ctl, "-D", str(pgdata), "-w", "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_the_whole_pipeline_runs_over_verified_tls(tls_server, run_cli, tmp_path):
    """dbt, dbt-ol and edr must present the client certificate too: the server admits nothing else."""
    dsn = tls_server.dsn(tls_server.folder / "ca.crt", dbname="olist_tls")
    environment = {"OLIST_DW_DSN": dsn}
    data = tmp_path / "data"
    steps = [
        ("generate", "--out", str(data), "--orders", "150", "--days", "20"),
        ("load", "--source", str(data)),
        ("run",),
        ("report", "--out", str(tmp_path / "report.html")),
        ("status",),
    ]
    for step in steps:
        completed = run_cli(*step, env=environment)
        assert completed.returncode == EXIT_OK, f"{step}: {completed.stdout[-2000:]}{completed.stderr[-3000:]}"
    profile = yaml.safe_load((tmp_path / "home" / "profiles.yml").read_text())
    target = profile["olist_dw"]["outputs"]["dev"]
    assert target["sslmode"] == "verify-full"
    assert target["sslcert"] == str(tls_server.folder / "client.crt")
    with psycopg.connect(dsn) as connection:
        built = connection.execute("select count(*) from core.fact_orders").fetchone()[0]
    assert built > 0


def test_a_server_certificate_from_another_authority_is_refused_clearly(tls_server, run_cli, tmp_path):
    impostor = make_authority(tmp_path, "impostor")[0]

    completed = run_cli("status", env={"OLIST_DW_DSN": tls_server.dsn(impostor.certificate, dbname="olist_tls")})

    assert completed.returncode == EXIT_ENVIRONMENT, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "cannot connect to the database" in errors[0]
    assert "certificate verify failed" in errors[0]
