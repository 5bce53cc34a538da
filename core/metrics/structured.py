"""Structured-output metrics: is the response JSON, does it fit a schema, are its fields right.

The demo task answers with an object like {"category": "billing", "priority": "low",
"summary": "..."}. Scores are per example (0.0 or 1.0, or a share of fields) so a later
bootstrap can resample examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from core.errors import InvalidInput
from core.metrics.text import normalize

# One surrounding markdown fence: ``` or ```json (any info word), the body, then ```.
_FENCE = re.compile(r"\A```[\w+-]*[ \t]*\r?\n(?P<body>.*?)\r?\n?```\Z", re.DOTALL)


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN/Infinity, which are not JSON; other parsers would reject them.
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> tuple[object | None, str | None]:
    """Parse a response as one JSON value; return (value, None) or (None, error message).

    Rule: strip surrounding whitespace and at most one surrounding markdown code fence
    (```json ... ``` or ``` ... ```); what is left must be exactly one JSON value. Leading
    or trailing prose, two values, NaN/Infinity, or an empty response are invalid.
    A valid JSON `null` returns (None, None): test the error, not the value.
    """
    body = text.strip()
    m = _FENCE.match(body)
    if m:
        body = m.group("body").strip()
    if not body:
        return None, "empty response"
    try:
        # json.loads already rejects trailing data ("Extra data"), which is what we want.
        return json.loads(body, parse_constant=_reject_constant), None
    except ValueError as exc:  # JSONDecodeError is a ValueError, as is _reject_constant's
        return None, str(exc)


def json_valid(predictions: Sequence[str]) -> list[float]:
    """1.0 where the response parses under `parse_json`'s rule, else 0.0."""
    return [float(parse_json(p)[1] is None) for p in predictions]


def schema_valid(predictions: Sequence[str], schema: Mapping[str, object]) -> list[float]:
    """1.0 where the response parses and validates against `schema` (Draft 2020-12), else 0.0.

    The schema is checked first: an invalid schema raises InvalidInput, since every score
    would otherwise be meaningless.
    """
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "<root>"
        raise InvalidInput(f"the JSON schema is invalid at {where}: {exc.message}") from None
    validator = Draft202012Validator(schema)
    out = []
    for pred in predictions:
        value, error = parse_json(pred)
        out.append(float(error is None and validator.is_valid(value)))
    return out


def _reference_object(ref: str | Mapping[str, object], index: int) -> Mapping[str, object]:
    if isinstance(ref, Mapping):
        return ref
    value, error = parse_json(ref)
    if error is not None:
        raise InvalidInput(f"reference {index} is not valid JSON ({error}); field accuracy needs a JSON object")
    if not isinstance(value, dict):
        raise InvalidInput(f"reference {index} is a JSON {type(value).__name__}, not an object; field accuracy needs a JSON object")
    return value


def _values_match(predicted: object, expected: object) -> bool:
    if isinstance(predicted, str) and isinstance(expected, str):
        # Free-text fields should not fail on case, punctuation or articles.
        return normalize(predicted) == normalize(expected)
    if isinstance(predicted, bool) or isinstance(expected, bool):
        # In Python True == 1; in JSON they are different values.
        return type(predicted) is type(expected) and predicted == expected
    return predicted == expected


def _field_scores(
    predictions: Sequence[str],
    references: Sequence[str | Mapping[str, object]],
    fields: Sequence[str] | None,
) -> list[dict[str, float]]:
    """Per example, field -> 1.0/0.0 over `fields` (or the reference's own fields)."""
    if len(predictions) != len(references):
        raise InvalidInput(
            f"predictions and references must be aligned: got {len(predictions)} "
            f"predictions and {len(references)} references"
        )
    out = []
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        expected = _reference_object(ref, i)
        wanted = list(expected) if fields is None else list(fields)
        if not wanted:
            raise InvalidInput(f"reference {i} has no fields to compare")
        missing = [f for f in wanted if f not in expected]
        if missing:
            raise InvalidInput(f"reference {i} lacks field(s) {missing}")
        value, error = parse_json(pred)
        # An unparsable or non-object prediction gets every field wrong.
        got = value if error is None and isinstance(value, dict) else {}
        out.append({f: float(f in got and _values_match(got[f], expected[f])) for f in wanted})
    return out


def field_accuracy(
    predictions: Sequence[str],
    references: Sequence[str | Mapping[str, object]],
    fields: Sequence[str] | None = None,
) -> list[float]:
    """Per example, the share of fields whose predicted value matches the reference.

    Fields are `fields`, or each reference object's own keys. Strings match after
    `text.normalize`; other values by equality (booleans only equal booleans). An
    unparsable or non-object prediction scores 0.0. A reference that is not a JSON object,
    or lacks a requested field, raises InvalidInput naming the example index.
    """
    return [sum(s.values()) / len(s) for s in _field_scores(predictions, references, fields)]


def per_field_accuracy(
    predictions: Sequence[str],
    references: Sequence[str | Mapping[str, object]],
    fields: Sequence[str] | None = None,
) -> dict[str, list[float]]:
    """Field -> per-example 1.0/0.0 match, under `field_accuracy`'s rules.

    With `fields` None the fields are the first reference's keys, and every reference must
    have them (each list stays aligned with the examples, as a bootstrap needs).
    """
    if fields is None:
        fields = list(_reference_object(references[0], 0)) if references else []
    scores = _field_scores(predictions, references, fields)
    return {f: [s[f] for s in scores] for f in fields}
