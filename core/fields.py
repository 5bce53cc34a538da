"""Fields that carry their help text and allowed range: the one way a settings section, the training
config and a request spec (decoding, pair sets) declare a field.

`setting(default, help, min=, max=, choices=)` is a dataclass field; `about(cls, name)` gives what
the Settings documentation, the forms (dashboard.widgets.number_field), the API schema and the CLI's
option help show; `out_of_range(obj)` is the one check of ranges and choices (each problem names the
field). A rule that one range cannot say (a split that sums to 1) stays beside its class.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class About:
    """A field's help and what it allows (None: unbounded on that side)."""

    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None

    @property
    def bounded(self) -> bool:
        return self.min is not None or self.max is not None

    def range_text(self) -> str:
        return f"{self.min}..{self.max}"


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
              choices: tuple | None = None) -> Any:
    """A dataclass field with its help text and allowed range (a list or dict default is copied per object)."""
    meta = {"about": About(help, min, max, tuple(choices) if choices else None)}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def about(cls: Any, name: str) -> About:
    """The help and range of field `name` of a dataclass (or of its instance)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata["about"]
    raise KeyError(f"{getattr(cls, '__name__', type(cls).__name__)} has no field {name!r}")


def fields_of(cls: Any) -> list[tuple[dataclasses.Field, About]]:
    """Every field of a dataclass with what it allows, in declaration order."""
    return [(f, f.metadata["about"]) for f in dataclasses.fields(cls) if "about" in f.metadata]


def default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def out_of_range(obj: Any, prefix: str = "", with_help: bool = False) -> list[str]:
    """Every field of `obj` outside its range or choices, each named `prefix + field`."""
    problems = []
    for f, spec in fields_of(obj):
        value = getattr(obj, f.name)
        if spec.choices and value not in spec.choices:
            problems.append(f"{prefix}{f.name}: {value!r} is not one of {', '.join(map(str, spec.choices))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and spec.bounded:
            nan = isinstance(value, float) and math.isnan(value)
            if nan or spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
                problems.append(f"{prefix}{f.name}: {value} is outside the allowed range {spec.range_text()}"
                                + (f" ({spec.help})" if with_help else ""))
    return problems
