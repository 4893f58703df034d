"""One command's run, kept in click's context object: its settings, and what the metrics export needs after it."""

from __future__ import annotations

import click

from runner import database, metrics, pipeline
from runner.settings import Settings


class Session:
    """Handed to click by ``main`` (see runner/cli/__init__.py), started by the group's options, and read back by
    ``main`` after the command, whatever its outcome, to export its metrics."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self.pushgateway: str | None = None
        # The command's name groups its metrics on a Pushgateway (see metrics.push).
        self.command: str | None = None
        # The database the command made ready, if any: its ledger's metrics go out with the command's own.
        self.dsn: str | None = None

    def start(self, settings: Settings, pushgateway: str | None, command: str | None) -> None:
        self._settings, self.pushgateway, self.command = settings, pushgateway, command

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("the session has not started: a command runs inside the runner's group")
        return self._settings

    def bootstrap(self) -> str:
        """Make the database ready (see pipeline.bootstrap) and remember its DSN for the metrics export."""
        self.dsn = pipeline.bootstrap(self.settings)
        return self.dsn

    def server(self) -> str:
        """The database to talk to, unmigrated: the configured one, else the embedded server (started if needed)."""
        return self.settings.dsn or database.start_embedded(self.settings)

    def export_metrics(self) -> None:
        """Write (and push) the metrics of the command that just ran; a metrics failure never hides its outcome."""
        if self._settings is None:
            return
        try:
            metrics.export(self._settings.metrics_file, self.dsn, self.pushgateway, self.command)
        except Exception as error:  # a metrics failure is reported; the command's own exit code stands
            click.echo(f"warning: metrics not written: {error}", err=True)


pass_session = click.make_pass_decorator(Session)
