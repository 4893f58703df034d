"""Exit codes and the errors a user can cause.

Every error a user can cause (a bad argument, a malformed file, an unreachable database) is a ``RunnerError``:
the CLI prints its message as one line and exits with its code, never with a traceback. Anything else is a bug
and exits with ``EXIT_UNEXPECTED``. The codes are part of the interface that schedulers script against.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATA_QUALITY = 3
EXIT_SCHEMA_MISMATCH = 4
EXIT_LOCK_HELD = 5  # also a version conflict: someone else is writing; try again
EXIT_ENVIRONMENT = 6


class RunnerError(Exception):
    """An error with a message meant for the user and the exit code that reports it."""

    exit_code = EXIT_UNEXPECTED


class UsageError(RunnerError):
    """A malformed argument or a path that does not exist."""

    exit_code = EXIT_USAGE


class DataError(RunnerError):
    """Input rows that cannot be read as they are; the message names file, line and column."""

    exit_code = EXIT_DATA_QUALITY


class SchemaMismatchError(RunnerError):
    """A file whose header is not the one expected; nothing of it was loaded."""

    exit_code = EXIT_SCHEMA_MISMATCH


class UnreadableFile(RunnerError):
    """A file refused whole for what it is, not for its rows: a symbolic link, a record beyond PostgreSQL's limits.

    Exit 4, as for a header mismatch: the file has to change before another attempt can succeed, so a scheduler
    must not retry it the way it retries a lost database.
    """

    exit_code = EXIT_SCHEMA_MISMATCH


class EnvironmentProblem(RunnerError):
    """Something outside the project is missing: the database, a dbt package, a tool."""

    exit_code = EXIT_ENVIRONMENT


class PipelineFailure(RunnerError):
    """A dbt step failed; the message carries dbt's own summary of what failed."""

    exit_code = EXIT_UNEXPECTED


class TransientFailure(PipelineFailure):
    """A dbt step lost a race or its connection (deadlock, serialization, lock timeout): worth another attempt."""


class ResourceFailure(PipelineFailure):
    """A dbt step ran out of a resource (memory, statement time): worth again in smaller windows."""


class DataQualityStop(PipelineFailure):
    """Data tests failed before publish; the window stops and nothing is published."""

    exit_code = EXIT_DATA_QUALITY


class UnplacedRowsStop(DataQualityStop):
    """Too much of a loaded file can be placed in no window (orphans): every window judges those files, so every
    window stops until the parents are loaded, the batch is rolled back or the threshold is raised."""


class VersionConflict(RunnerError):
    """A row changed since it was read (optimistic locking): nothing was written; read again and retry."""

    exit_code = EXIT_LOCK_HELD
