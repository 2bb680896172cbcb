"""The one exception the runner raises for things a user can fix.

The CLI prints it as one line (plus an optional hint) and exits non-zero;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class RunnerError(Exception):
    """What the user did, where (file:line when known), and what to do next."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text
