"""Typed errors. Core raises them with messages a person can act on; the CLI and the pages
translate them (a clean message and exit code, or `st.error`), never a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class TuneboardError(Exception):
    """Base of every error meant for a person, not a developer."""

    exit_code = 1


class ConfigError(TuneboardError):
    exit_code = 2


class StoreBusy(TuneboardError):
    """Another process owns the database."""


class StoreError(TuneboardError):
    """The database cannot be opened or written (disk full, read-only, damaged)."""


class PermissionDenied(TuneboardError):
    pass


class AuthError(TuneboardError):
    pass


class NotFound(TuneboardError):
    pass


class InvalidInput(TuneboardError):
    """A value given by a person (a form field, a CLI option) is not acceptable."""


class JobError(TuneboardError):
    pass


@dataclass(frozen=True)
class Problem:
    """One finding of a validation: where it is and what to do about it."""

    code: str
    message: str
    file: str = ""
    line: int | None = None
    field: str = ""
    severity: str = "error"  # "error" blocks an import, "warning" does not

    def location(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(f"line {self.line}")
        where = ":".join([parts[0]] + ([parts[1].split()[-1]] if self.line is not None else []))
        return where + (f" [{self.field}]" if self.field else "")

    def __str__(self) -> str:
        return f"{self.location()}: {self.severity}: {self.message} ({self.code})"


class DatasetError(TuneboardError):
    """A dataset cannot be imported; carries every problem found, not just the first."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(message + (("\n" + shown + more) if self.problems else ""))
        self.summary = message
