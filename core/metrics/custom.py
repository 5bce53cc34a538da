"""A team's own metrics: Hugging Face `evaluate` modules registered as tuneboard metrics.

Each entry of the `[metrics.evaluate]` settings table names a metric and its module: a local
metric folder or script (the usual case: the team's metric, in its repository), or a hub name,
which loads when the hub is reachable or the module is in the local `evaluate` cache. Once
registered (`register_all`, by the owner at start and by each score job's worker from its
config), the metric is used like the built-ins: a dataset version declares it, score jobs score
it, the Metrics page shows its intervals and deltas.

Per example or per set is the module's own answer: when the value under `key` is a list with one
number per example, those are the scores (per-example metric); when it is one number, it is a
corpus-level metric, resampled over prompts by core.metrics.corpus. The metric version names
the `evaluate` release and a digest of the module's files (and its arguments), so editing the
metric makes a new series instead of silently mixing scores.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from core.errors import InvalidInput
from core.metrics.registry import METRICS, Metric, register

EXTRA = "pip install -e '.[evaluate]'"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEYS = {"module": "a local metric folder or script, or a hub name (e.g. ./metrics/team_f1 or bleu)",
        "key": "which value of the module's result is the score (default: its only value)",
        "higher_is_better": "true (default) or false",
        "bounds": "the least and greatest possible score, e.g. [0, 1] (optional)",
        "help": "what the metric measures, shown on the Metrics page (optional)",
        "arguments": "keyword arguments the module's compute takes, e.g. {average = \"macro\"} (optional)"}


class CorpusLevel(Exception):
    """The module gives one number for the whole set: score it as a corpus-level metric."""


def _is_local(module: str) -> bool:
    return module.startswith(("/", "./", "../", "~")) or module.endswith(".py") or Path(module).exists()


def _resolve(module: str, base: Path | None) -> str:
    """A local module as an absolute path (relative ones from the settings file's folder); a hub name as is."""
    if not _is_local(module):
        return module
    path = Path(module).expanduser()
    return str((path if path.is_absolute() else (base or Path.cwd()) / path).resolve())


def check(name: str, spec: object, base: Path | None = None) -> list[str]:
    """What is wrong with one `[metrics.evaluate.NAME]` entry, each problem naming its field."""
    where = f"metrics.evaluate.{name}"
    if not NAME.match(name):
        return [f"{where}: a metric name is lower-case letters, digits and _ (at most 40), starting with a letter"]
    if name in METRICS and METRICS[name].version.split(" ")[0] != "evaluate":
        return [f"{where}: {name} is a built-in metric; choose another name"]
    if not isinstance(spec, dict):
        return [f"{where}: give a table, e.g. [metrics.evaluate.{name}] with module = \"./metrics/{name}\""]
    problems = [f"{where}.{k}: unknown (known: {', '.join(KEYS)})" for k in spec if k not in KEYS]
    module = spec.get("module")
    if not isinstance(module, str) or not module.strip():
        problems.append(f"{where}.module: required: {KEYS['module']}")
    elif _is_local(module) and not Path(_resolve(module, base)).exists():
        problems.append(f"{where}.module: no metric folder or script at {_resolve(module, base)}")
    if "key" in spec and not (isinstance(spec["key"], str) and spec["key"]):
        problems.append(f"{where}.key: give the name of a value the module returns")
    if not isinstance(spec.get("higher_is_better", True), bool):
        problems.append(f"{where}.higher_is_better: {KEYS['higher_is_better']}")
    bounds = spec.get("bounds")
    if bounds is not None and not (isinstance(bounds, list) and len(bounds) == 2
                                   and all(isinstance(b, (int, float)) for b in bounds) and bounds[0] < bounds[1]):
        problems.append(f"{where}.bounds: {KEYS['bounds']}")
    if not isinstance(spec.get("help", ""), str):
        problems.append(f"{where}.help: give a sentence")
    if not isinstance(spec.get("arguments", {}), dict):
        problems.append(f"{where}.arguments: {KEYS['arguments']}")
    return problems


def _digest(module: str, arguments: dict) -> str:
    """The module's files (every .py of a folder, or the script) and its arguments, hashed."""
    h = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode())
    if _is_local(module):
        path = Path(module)
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
            h.update(f.read_bytes())
    else:
        h.update(f"hub:{module}".encode())
    return h.hexdigest()[:12]


def _evaluate_version() -> str:
    try:
        return package_version("evaluate")
    except PackageNotFoundError:
        raise InvalidInput(f"metrics.evaluate: the evaluate package is not installed: {EXTRA}") from None


@lru_cache(maxsize=32)
def load(module: str):
    """The evaluate module (imported once per process); InvalidInput naming it when it cannot load."""
    try:
        import evaluate
    except ImportError:
        raise InvalidInput(f"metrics.evaluate: the evaluate package is not installed: {EXTRA}") from None
    try:
        return evaluate.load(module)
    except Exception as exc:  # a team's module: any error it raises while loading is the module's
        where = "the local module" if _is_local(module) else "the hub module"
        hint = ("" if _is_local(module) else " Offline, a hub name loads only when the module is already in the "
                "evaluate cache: copy the metric's folder here and register its path instead.")
        raise InvalidInput(f"evaluate: {where} {module!r} could not be loaded: {type(exc).__name__}: "
                           f"{str(exc)[:300]}.{hint}") from None


def _value(spec: dict, predictions: Sequence[str], references: Sequence[str]) -> object:
    module = load(spec["module"])
    try:
        # _compute is the function every evaluate module implements; compute() would also write each
        # call's inputs to an Arrow cache file, which resampling (thousands of calls) cannot afford.
        result = module._compute(predictions=list(predictions), references=list(references),
                                 **spec.get("arguments", {}))
    except Exception as exc:  # the team's code: say which metric failed and why
        raise InvalidInput(f"evaluate metric {spec['name']}: {type(exc).__name__}: {str(exc)[:300]}") from None
    if not isinstance(result, dict) or not result:
        raise InvalidInput(f"evaluate metric {spec['name']}: the module returned {type(result).__name__}, not a "
                           "dict of values")
    key = spec.get("key") or (next(iter(result)) if len(result) == 1 else None)
    if key not in result:
        raise InvalidInput(f"evaluate metric {spec['name']}: set `key` to one of the values the module returns: "
                           f"{', '.join(map(str, result))}")
    return result[key]


def _per_example(spec: dict, predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    value = _value(spec, predictions, references)
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) == len(predictions):
        return [float("nan") if v is None else float(v) for v in value]
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        raise CorpusLevel(spec["name"])
    raise InvalidInput(f"evaluate metric {spec['name']}: its value is neither one number per example nor one "
                       f"number ({type(value).__name__})")


def _statistic(spec: dict, predictions: Sequence[str], references: Sequence[str]):
    def statistic(indices: np.ndarray) -> float:
        value = _value(spec, [predictions[i] for i in indices], [references[i] for i in indices])
        return float(np.asarray(value, float).mean())  # (one number; a list's mean if the module gave one)
    return statistic


def metric_of(name: str, spec: dict, base: Path | None = None) -> Metric:
    problems = check(name, spec, base)
    if problems:
        raise InvalidInput("; ".join(problems))
    resolved = {**spec, "module": _resolve(spec["module"], base)}  # what a score job's worker registers again
    spec = {**resolved, "name": name}
    bounds = spec.get("bounds")
    return Metric(name, lambda p, r: _per_example(spec, p, r),
                  f"evaluate {_evaluate_version()} {_digest(spec['module'], spec.get('arguments', {}))}",
                  bool(spec.get("higher_is_better", True)),
                  spec.get("help") or f"The team's evaluate metric {Path(spec['module']).name}"
                                      f"{' (' + spec['key'] + ')' if spec.get('key') else ''}.",
                  bounds=tuple(map(float, bounds)) if bounds else None,
                  corpus=lambda p, r: _statistic(spec, p, r), spec=resolved)


def register_all(table: dict, base: Path | None = None) -> list[str]:
    """Register every entry of the `[metrics.evaluate]` table; returns their names."""
    for name, spec in (table or {}).items():
        register(metric_of(name, spec, base))
    return list(table or {})
