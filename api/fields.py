"""Request fields from core's described fields (core/fields.py): the help, range and choices the API
schema shows are the ones core checks. Only types are checked by the API; core checks the values and
names each field it refuses, as it does for the pages and the CLI."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from core.fields import About, about, default_of


def schema_extra(spec: About) -> dict[str, Any] | None:
    extra: dict[str, Any] = {}
    if spec.min is not None:
        extra["minimum"] = spec.min
    if spec.max is not None:
        extra["maximum"] = spec.max
    if spec.choices:
        extra["enum"] = list(spec.choices)
    return extra or None


def described(cls: Any, name: str, default: Any = dataclasses.MISSING, note: str = "") -> Any:
    """A pydantic Field for field `name` of core dataclass `cls` (default: the dataclass's own; `note` is
    added to the help)."""
    spec = about(cls, name)
    if default is dataclasses.MISSING:
        default = default_of(next(f for f in dataclasses.fields(cls) if f.name == name))
    return Field(default, description=spec.help + (f" {note}" if note else ""), json_schema_extra=schema_extra(spec))
