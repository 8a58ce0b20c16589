"""The one error the ``devinfra`` command reports without a traceback.

Each module raises its own subclass (PlanError, DeployError, ...), so
callers and tests can tell them apart; ``devinfra.cli.main`` catches this
base class once, prints ``devinfra: error: <message>`` on stderr and exits
with its ``code``.
"""

from __future__ import annotations


class DevinfraError(Exception):
    """A problem the user can act on: the message says what, ``code`` is the exit code."""

    def __init__(self, message: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.code = code

