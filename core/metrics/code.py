"""Code tasks: does a response's Python pass the example's tests, run in the sandbox.

Extraction rule: the code is the body of the response's first fenced block opened with
```python (or ```py, ```python3) or a bare ``` (up to its closing fence, or to the end of the
response when the fence is never closed, e.g. an output cut at max_tokens); blocks in other
languages (```json, ```bash) are skipped. With no such block: the whole response.

The program run is that code, a newline, then the example's tests (asserts, or a
HumanEval-style `def check(candidate): ...` plus its call), then a line that ends the process
with a code of its own (`_REACHED`). Only that code counts as a pass: a candidate that exits
0 before its tests ran (a `sys.exit(0)` under `if __name__ == "__main__":`, common in model
output) has not passed them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import InvalidInput
from core.metrics.sandbox import run_python, sandbox_capabilities

# Every fenced block, in order (each consumes its closing fence, which can never open another).
_BLOCK = re.compile(r"```(?P<lang>[\w+.-]*)[ \t]*\r?\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)
_PYTHON = ("", "python", "python3", "py")
_REACHED = 87
_AFTER_TESTS = f"\nimport os as _tuneboard_os\n_tuneboard_os._exit({_REACHED})"


def extract_code(response: str) -> str:
    """The code a response offers, by the module's extraction rule."""
    for m in _BLOCK.finditer(response):
        if m.group("lang").lower() in _PYTHON:
            return m.group("body")
    return response


def isolation_problem() -> str | None:
    """Why generated code cannot be run contained on this host, or None when it can."""
    caps = sandbox_capabilities()
    missing = [why for key, why in (("network_isolated", "a network namespace"),
                                    ("mountns", "a private mount namespace (its own root: read-only system "
                                                "folders, tmpfs for /tmp and the work folder)"),
                                    ("setuid", "dropping to a per-run uid"))
               if not caps.get(key)]
    if not missing:
        return None
    return ("this host cannot isolate generated code (it lacks " + "; ".join(missing) + "): run the dashboard "
            "or CLI as root on Linux with namespaces enabled (a container needs CAP_SYS_ADMIN), or leave tests_pass "
            "out")


def tests_pass(predictions: Sequence[str], tests: Sequence[str | None], timeout_s: float = 5.0,
               memory_mb: int = 512) -> list[float]:
    """1.0 where the extracted code passes its tests in the sandbox, else 0.0 (a failed assert,
    an exception, a timeout or running out of memory all count as not passing).

    Raises InvalidInput when an example has no tests, and RuntimeError when the sandbox itself
    could not start a program: that is a broken host, not a wrong answer, and must not be
    stored as a 0.
    """
    missing = [i for i, t in enumerate(tests) if not t]
    if missing:
        raise InvalidInput(f"tests_pass: example {missing[0]} has no tests; it needs a dataset whose rows carry "
                           "'tests'")
    out = []
    for prediction, test in zip(predictions, tests):
        result = run_python(extract_code(prediction), test + _AFTER_TESTS, timeout_s=timeout_s, memory_mb=memory_mb)
        if result.status == "error":
            raise RuntimeError(f"tests_pass: the sandbox could not run a program: {result.stderr}")
        out.append(1.0 if result.status == "failed" and result.returncode == _REACHED else 0.0)
    return out
