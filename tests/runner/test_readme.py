"""README.md's commands, run as a reader runs them, so that the README cannot drift from the runner.

Every command of README's fenced code blocks that is the runner's or dbt's (a line starting with
``python -m runner`` or ``dbt``, or such a command after ``&&``) is run here, in README's order, against one demo
warehouse built for this file: a child process with the project as its working folder and the test's database and
home in its environment (``OLIST_DW_DSN``, ``OLIST_DW_HOME``), as a reader's shell holds them. The warehouse is
README's demo with all its options (``demo --dirty 0.02``) on an empty database, as a newcomer runs it: its
quarantine must stay under the share that stops a window.

- ``[--flag value]``: the line runs without it and, unless ``Way.skipped`` says why not, with it; ``a|b|c``: each.
- What a line leaves to its reader comes from what the runner printed before: a batch id from ``batches --json``
  (the newest batch that loaded rows), an entity, a rule and a window from ``quarantine list --json``, a time from
  ``runs --json`` (the end of the latest successful run: a time the snapshots hold). README's own example values
  (``5f0c...e1``, the ``--as-of`` time) are its author's, and are taken the same way.
- A relative path (``--out data/``, ``--source fixed/``) is in the test's own folder, not in the checkout.
  ``fixed/``, which no earlier line writes, is the demo's source with its broken rows written right (README's
  "Rows were quarantined": load the corrected files, re-run).
- A server (``metrics serve``, ``docs``, ``dashboard``) is started on a free port (the port README names must be
  its default), asked over HTTP at the address it prints, and stopped.
- ``dbt`` runs with the profile the runner wrote in the test's home, found as ``dbt`` in the project finds it.
- Every command must exit 0 (``check-schema``: or 4, its verdict), with no traceback; what README promises that is
  cheap to check is checked: ``--json`` prints JSON, a load run again skips its files, the demo run again is up to
  date.

A command this file does not know how to run (a new command, an unknown placeholder, an option the command does
not have) fails ``test_every_readme_command_is_one_this_file_runs``, in the quick tier, without a warehouse.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import click
import psycopg
import pytest
from psycopg import conninfo

from runner import cli, database, demo, generate, marts, quarantine
from runner.errors import EXIT_OK, EXIT_SCHEMA_MISMATCH, UsageError
from runner.settings import PROJECT_DIR, Settings

README = PROJECT_DIR / "README.md"
RUNNER = ("python", "-m", "runner")
DBT = ("dbt",)
COMMAND_TIMEOUT = 900
SERVER_DEADLINE = 300  # seconds; `docs` generates the site before it serves it
# A placeholder: a word in capitals (BATCH_ID, ENTITY, R, START..END), or an id shortened with dots (5f0c...e1).
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*(\.\.[A-Z][A-Z_]*)?|[0-9a-f]+\.\.\.[0-9a-f]+")
BATCH_PLACEHOLDER = re.compile(r"BATCH_ID|[0-9a-f]+\.\.\.[0-9a-f]+")
PATH_OPTIONS = ("--out", "--source")
# The placeholders this file fills in, each with a value of its kind for checking a line without a warehouse.
OFFLINE_VALUES = {
    "BATCH_ID": str(uuid.UUID(int=1)),
    "ENTITY": quarantine.ENTITIES[0],
    "R": "missing_key",
    "W": "2017-01-01..2017-02-01",
    "START..END": "2017-01-01..2017-02-01",
    "TIME": "2017-01-01T00:00:00+00:00",
}


@dataclass(frozen=True)
class Way:
    """How this file runs one command; by default: as written, exit code 0."""

    serves: bool = False  # a server: started on a free port, asked over HTTP, stopped
    exit_codes: frozenset[int] = frozenset({EXIT_OK})
    first: tuple[str, ...] = ()  # options run before the line without them
    skipped: dict[str, str] = field(default_factory=dict)  # options not run here, and why


# Every command README may show. A new one needs its line here: how to run it, and what to leave out at what cost.
WAYS: dict[str, Way] = {
    "": Way(),  # --help
    "generate": Way(),
    "load": Way(),
    "run": Way(skipped={"--force": "one more build of a window (test_crash_safety forces windows)"}),
    "backfill": Way(skipped={"--restate": "one more build of the windows"}),
    "status": Way(),
    "runs": Way(),
    "metrics serve": Way(serves=True),
    "report": Way(skipped={"--out": "one more edr run, for the same report elsewhere (test_cli writes one)"}),
    "docs": Way(serves=True, skipped={"--no-serve": "the served run generates the same site (test_cli runs it)"}),
    "dashboard": Way(serves=True),
    "demo": Way(),
    "quarantine list": Way(),
    "quarantine show": Way(),
    "deps": Way(),
    "db start": Way(),
    "db stop": Way(),
    "db status": Way(),
    "db url": Way(),
    "db migrate": Way(),
    "db migrations": Way(),
    "publish": Way(first=("--force",)),  # a new version, for --rollback to leave
    "batches": Way(),
    "rollback batch": Way(first=("--dry-run",)),  # look, then take it out
    "restore": Way(first=("--dry-run",)),
    # The guard's verdict either way: no breaking change (0), or the ones it found (4).
    "check-schema": Way(exit_codes=frozenset({EXIT_OK, EXIT_SCHEMA_MISMATCH})),
    "dbt build": Way(),
}


@dataclass(frozen=True)
class Command:
    """One runner or dbt command of README, as written (its comment and its ``&&`` neighbours aside)."""

    line: int
    words: tuple[str, ...]
    comment: str
    environment: tuple[tuple[str, str], ...] = ()  # VAR=value words before the command

    @property
    def is_dbt(self) -> bool:
        return self.words[: len(DBT)] == DBT

    @property
    def arguments(self) -> tuple[str, ...]:
        """The words after ``python -m runner`` or ``dbt``."""
        return self.words[len(DBT) if self.is_dbt else len(RUNNER) :]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def path(self, arguments: tuple[str, ...] | None = None) -> str:
        """The command's name: ``dbt build``, or the runner's command (``rollback batch``; ``""`` for --help).

        Of ``a|b`` alternatives, the first names it.
        """
        arguments = self.arguments if arguments is None else arguments
        if self.is_dbt:
            return f"dbt {arguments[0]}"
        command, names = cli.cli, []
        for word in arguments:
            name = word.split("|")[0]
            if not isinstance(command, click.Group) or name.startswith("-"):
                break
            if name not in command.commands:
                return " ".join([*names, name])  # a command the runner does not have
            command, names = command.commands[name], [*names, name]
        return " ".join(names)

    def way(self) -> Way | None:
        return WAYS.get(self.path())

    def variants(self, *, everything: bool = False) -> list[tuple[str, ...]]:
        """The argument lists this file runs, in order: see the module's docstring and ``Way``.

        ``everything``: the options this file leaves out too (``Way.skipped``, a server's ``--port``).
        """
        items: list[str | tuple[str, ...]] = []  # a word, or an optional group of words
        group: list[str] | None = None
        for word in self.arguments:
            if group is None and not word.startswith("["):
                items.append(word)
                continue
            group = [*(group or []), word.removeprefix("[").removesuffix("]")]
            if word.endswith("]"):
                items.append(tuple(group))
                group = None
        assert group is None, f"README.md:{self.line}: an unclosed [ in {self.text}"
        way = Way() if everything else self.way() or Way()
        optional = [
            item
            for item in items
            if isinstance(item, tuple) and item[0] not in way.skipped and not (way.serves and item[0] == "--port")
        ]
        first = [item for item in optional if item[0] in way.first]
        variants: list[tuple[str, ...]] = []
        for chosen in [*first, None, *(item for item in optional if item not in first)]:
            words = [word for item in items if isinstance(item, str) or item == chosen for word in _words(item)]
            variants += itertools.product(*(word.split("|") for word in words))
        return variants

    def problems(self) -> list[str]:
        """Why this file could not run the command as README writes it; none when it can."""
        found = []
        for arguments in self.variants(everything=True):
            path = self.path(arguments)
            if path not in WAYS:
                found.append(f"no way to run `{path}` is known (WAYS)")
                continue
            unknown = [word for word in arguments if PLACEHOLDER.fullmatch(word) and not placeholder_known(word)]
            found += [f"unknown placeholder {word}" for word in unknown]
            if not self.is_dbt and not unknown:
                found += usage_errors(path, arguments)
        return sorted(set(found))


def _words(item: str | tuple[str, ...]) -> tuple[str, ...]:
    return (item,) if isinstance(item, str) else item


def placeholder_known(word: str) -> bool:
    return word in OFFLINE_VALUES or BATCH_PLACEHOLDER.fullmatch(word) is not None


def usage_errors(path: str, arguments: tuple[str, ...]) -> list[str]:
    """What click says of a runner command's arguments (placeholders given a value of their kind), running nothing."""
    if "--help" in arguments:
        return []
    command = cli.cli
    for name in path.split():
        command = command.commands[name]
    rest = arguments[len(path.split()) :]
    filled = [offline_value(rest[index - 1] if index else "", word) for index, word in enumerate(rest)]
    try:
        command.make_context(f"python -m runner {path}", filled)
    except click.UsageError as error:
        return [f"`{shlex.join(arguments)}`: {error.format_message()}"]
    return []


def offline_value(option: str, word: str) -> str:
    """A value of the kind a placeholder stands for (``option``: the word before it); other words as they are."""
    if option == "--as-of":
        return OFFLINE_VALUES["TIME"]
    if BATCH_PLACEHOLDER.fullmatch(word):
        return OFFLINE_VALUES["BATCH_ID"]
    return OFFLINE_VALUES.get(word, word)


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's code and its comment: from a ``#`` that starts a word, outside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index], line[index + 1 :].strip()
    return line, ""


def readme_commands(text: str) -> list[Command]:
    """Every runner and dbt command of the fenced code blocks, in order; ``a && b`` gives two."""
    commands, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        code, comment = split_comment(line) if fenced else ("", "")
        words = shlex.split(code)
        for is_and, group in itertools.groupby(words, lambda word: word == "&&"):
            segment = [] if is_and else list(group)
            environment = []
            while segment and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", segment[0]):
                name, value = segment.pop(0).split("=", 1)
                environment.append((name, value))
            if tuple(segment[: len(RUNNER)]) == RUNNER or tuple(segment[: len(DBT)]) == DBT:
                commands.append(Command(number, tuple(segment), comment, tuple(environment)))
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
LINES = sorted({command.line for command in COMMANDS})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask(url: str) -> tuple[int, str] | None:
    """One plain GET (redirects not followed): the status and body; None while nothing listens."""
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", urllib.parse.urlunsplit(("", "", address.path or "/", address.query, "")))
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except ConnectionError:
        return None
    finally:
        connection.close()


def said(command: Command, ran: list[str], completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"README.md:{command.line}: {command.text}\nran: {shlex.join(ran)}\nexit code {completed.returncode}\n"
        f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    )


@dataclass
class Reader:
    """A reader's shell in the project, its environment naming the test's database and home."""

    home: Path
    dsn: str
    folder: Path  # where README's relative paths land
    demo_dirty: float
    read: dict[tuple[str, ...], list[dict]] = field(default_factory=dict)  # look-ups of the line being run

    def environment(self, command: Command | None = None) -> dict[str, str]:
        extra = dict(command.environment) if command else {}
        return {**os.environ, "OLIST_DW_HOME": str(self.home), "OLIST_DW_DSN": self.dsn, **extra}

    def runner(self, *arguments: str, command: Command | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", *arguments],
            cwd=PROJECT_DIR,
            env=self.environment(command),
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )

    def look_up(self, *arguments: str) -> list[dict]:
        """What a reader reads off before typing the line: a ``--json`` listing of the runner (once a line)."""
        if arguments not in self.read:
            completed = self.runner(*arguments, "--json")
            assert completed.returncode == EXIT_OK, completed.stderr[-3000:]
            self.read[arguments] = json.loads(completed.stdout)
        return self.read[arguments]

    # What README leaves to its reader.

    def newest_batch(self) -> str:
        batches = [batch for batch in self.look_up("batches") if batch["rows"] and not batch["rolled_back_at"]]
        assert batches, "no load batch with rows to take out"
        return batches[0]["batch_id"]

    def quarantined(self) -> dict[str, str]:
        """An entity with rows in quarantine in a window, a rule that holds them, and that window."""
        counts = [count for count in self.look_up("quarantine", "list") if count["first_purchase"]]
        assert counts, "nothing quarantined in a window"
        first = datetime.fromisoformat(counts[0]["first_purchase"]).date()
        last = datetime.fromisoformat(counts[0]["last_purchase"]).date()
        window = f"{first}..{last + timedelta(days=1)}"
        return {"ENTITY": counts[0]["entity"], "R": counts[0]["rule"], "W": window, "START..END": window}

    def time_before_now(self) -> str:
        """When the latest successful window run ended: the snapshots hold the dimensions as of then."""
        finished = [run["finished_at"] for run in self.look_up("runs") if run["status"] == "succeeded"]
        assert finished, "no window run succeeded"
        return max(datetime.fromisoformat(moment) for moment in finished).isoformat()

    def folder_of(self, word: str, option: str) -> str:
        """README's relative folder, in the test's folder; a source no line wrote is the demo's, corrected."""
        if Path(word).is_absolute():
            return word
        path = self.folder / word
        if option == "--source" and not path.exists():
            options = (demo.ORDERS, demo.START, demo.DAYS, demo.SEED, self.demo_dirty, 0.0)
            generate.generate(generate.GenerateOptions(path, *options))
        return str(path)

    def fill(self, arguments: tuple[str, ...]) -> list[str]:
        """The arguments with README's placeholders and relative paths replaced, as a reader replaces them."""
        quarantined = self.quarantined() if {"ENTITY", "R", "W", "START..END"} & set(arguments) else {}
        filled = []
        for index, word in enumerate(arguments):
            option = arguments[index - 1] if index else ""
            if option == "--as-of":
                filled.append(self.time_before_now())
            elif option in PATH_OPTIONS:
                filled.append(self.folder_of(word, option))
            elif BATCH_PLACEHOLDER.fullmatch(word):
                filled.append(self.newest_batch())
            else:
                filled.append(quarantined.get(word, word))
        return filled

    # Running a line.

    def run(self, command: Command) -> None:
        self.read.clear()
        for arguments in command.variants():
            way = WAYS[command.path(arguments)]
            if command.is_dbt:
                self.dbt(command, arguments)
            elif way.serves and "--no-serve" not in arguments:
                self.serve(command, arguments)
            else:
                self.run_runner(command, arguments, way)

    def run_runner(self, command: Command, arguments: tuple[str, ...], way: Way) -> None:
        filled = self.fill(arguments)
        path = command.path(arguments)
        if path == "publish" and "--rollback" in filled:
            self.mart_version_to_leave()
        completed = self.runner(*filled, command=command)
        assert completed.returncode in way.exit_codes, said(command, filled, completed)
        assert "Traceback" not in completed.stderr, said(command, filled, completed)
        if "--json" in filled:
            json.loads(completed.stdout)
        if path in ("load", "demo"):
            # README: "files already loaded (same bytes) are skipped"; the demo run again "finds nothing new".
            again = self.runner(*filled, command=command)
            assert again.returncode == EXIT_OK, said(command, filled, again)
            if path == "load":
                assert re.search(r"^skipped ", again.stdout, re.MULTILINE), said(command, filled, again)
                assert not re.search(r"^loaded ", again.stdout, re.MULTILINE), said(command, filled, again)
            else:
                assert "up to date" in again.stdout, said(command, filled, again)

    def mart_version_to_leave(self) -> None:
        """A rollback returns to an earlier kept version: README's reader had deployed a newer one; so does this."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            try:
                marts.rollback_target(connection)
                return
            except UsageError:
                pass
        completed = self.runner("publish", "--force")
        assert completed.returncode == EXIT_OK, completed.stderr[-3000:]

    def serve(self, command: Command, arguments: tuple[str, ...]) -> None:
        """Start the server on a free port, ask it over HTTP at the address it prints, stop it."""
        filled = self.fill(arguments)
        documented = re.search(r"--port (\d+)", command.text) or re.search(r"\b(\d{4,5})\b", command.comment)
        if documented:
            helped = self.runner(*filled, "--help")
            assert re.search(rf"default: {documented[1]}\b", helped.stdout), (command.text, helped.stdout)
        port = free_port()
        log_path = self.folder / f"{command.path(arguments).replace(' ', '-')}-{port}.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "runner", *filled, "--port", str(port)],
                cwd=PROJECT_DIR,
                env=self.environment(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a server it starts (dbt's) stops with it
            )
        try:
            deadline = time.monotonic() + SERVER_DEADLINE
            while True:
                printed = re.search(r"serving .* on (http://\S+)", log_path.read_text())
                answer = ask(printed[1]) if printed else None
                if answer:
                    break
                assert server.poll() is None, f"{command.text} stopped:\n{log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{command.text} did not answer:\n{log_path.read_text()[-3000:]}"
                time.sleep(0.5)
            status, body = answer
            assert status in (200, 303), (command.text, status, body[:1000])
            if command.path(arguments) == "metrics serve":
                assert "olist_dw_" in body, body[:1000]
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]

    def dbt(self, command: Command, arguments: tuple[str, ...]) -> None:
        """``dbt`` typed in the project, finding the profile the runner wrote as it does in the default home."""
        settings = Settings(PROJECT_DIR, self.home, self.dsn, Settings.from_environment().package_store)
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("dbt")), *arguments],
            cwd=PROJECT_DIR,
            env={
                **self.environment(command),
                "DBT_PROFILES_DIR": str(settings.profiles_dir),
                "DBT_TARGET_PATH": str(settings.target_dir),
                "DBT_LOG_PATH": str(settings.dbt_log_dir),
                # The profile of a configured server reads its password from the environment (README, dbt directly).
                "OLIST_DW_DB_PASSWORD": database.password_of(self.dsn),
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        assert completed.returncode == EXIT_OK, said(command, list(arguments), completed)


@pytest.fixture(scope="module")
def reader(server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    """A new database holding README's demo with all its options (``demo --dirty 0.02``), as a newcomer runs it."""
    demos = [arguments for command in COMMANDS if command.path() == "demo" for arguments in command.variants()]
    demo_arguments = max(demos, key=len)
    name = f"olist_test_readme_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        folder = tmp_path_factory.mktemp("readme")
        dirty = float(demo_arguments[demo_arguments.index("--dirty") + 1]) if "--dirty" in demo_arguments else 0.0
        reader = Reader(folder / "home", conninfo.make_conninfo(server_dsn, dbname=name), folder, dirty)
        completed = reader.runner(*demo_arguments)
        assert completed.returncode == EXIT_OK, (
            f"`python -m runner {shlex.join(demo_arguments)}` on a new database: exit code {completed.returncode}\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
        yield reader
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def test_every_readme_command_is_one_this_file_runs() -> None:
    problems = [
        f"README.md:{command.line}: {command.text}: {problem}" for command in COMMANDS for problem in command.problems()
    ]
    assert problems == []
    assert {"demo", "run", "dbt build"} <= {command.path() for command in COMMANDS}


@pytest.mark.slow
@pytest.mark.parametrize("line", LINES, ids=[f"README.md:{line}" for line in LINES])
def test_readme_line_runs_as_documented(line: int, reader: Reader) -> None:
    for command in COMMANDS:
        if command.line == line:
            reader.run(command)


def test_a_command_this_file_cannot_run_is_named() -> None:
    snippet = "\n".join(
        [
            "```bash",
            "python -m runner vacuum --full                 # a command without a way",
            "python -m runner run --windw 2017-01-01..2017-02-01",
            "python -m runner quarantine show ENTITY --rule RULE",
            "OLIST_DW_QUARANTINE_MAX_SHARE=0.1 python -m runner status && dbt test",
            "```",
            "python -m runner outside-a-block",
        ]
    )
    commands = readme_commands(snippet)
    assert [(command.line, command.path()) for command in commands] == [
        (2, "vacuum"),
        (3, "run"),
        (4, "quarantine show"),
        (5, "status"),
        (5, "dbt test"),
    ]
    assert commands[3].environment == (("OLIST_DW_QUARANTINE_MAX_SHARE", "0.1"),)
    assert commands[0].problems() == ["no way to run `vacuum` is known (WAYS)"]
    [misspelt] = commands[1].problems()
    assert misspelt.startswith("`run --windw 2017-01-01..2017-02-01`: No such option"), misspelt
    assert commands[2].problems() == ["unknown placeholder RULE"]
    assert commands[3].problems() == []
    assert commands[4].problems() == ["no way to run `dbt test` is known (WAYS)"]
