"""The error a user can fix: what went wrong, where (file:line when known), and what to do next.

It is defined here, in the package with no dependencies of its own, so that `udfs` imports
nothing from `runner`; the runner raises the same class under the name `RunnerError`
(runner/errors.py), and its CLI prints it as one line plus the hint and exits non-zero.
"""
from __future__ import annotations


class UserError(Exception):
    """What the user did, where (file:line when known), and what to do next."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text
