"""Code tasks: does a response's Python pass the example's tests, run in the sandbox.

Extraction rule: the code is the body of the response's first fenced block opened with
```python (or ```py, ```python3) or a bare ``` (up to its closing fence, or to the end of the
response when the fence is never closed, e.g. an output cut at max_tokens); blocks in other
languages (```json, ```bash) are skipped. With no such block: the whole response.

The program run is that code, a newline, then the example's tests (asserts, or a
HumanEval-style `def check(candidate): ...` plus its call), as `__main__`. A pass is not an exit
code (any code can exit with any code): it is the sandbox's completion proof
(`run_python(..., completion=True)`, mechanism in `core.metrics.sandbox`'s docstring). The
caller draws 128 random bits per run and hands them, over a one-shot pipe, to the run's init
(root, not dumpable, invisible to the program); they never enter the program's process, files,
argv or environment. A runner that starts before the candidate runs the program and, only when
its last line has returned, writes one fixed message on a pipe the init watches, then exits 0;
the init then writes the secret on a pipe only the caller reads, which must match exactly.

What this defends against (each scores 0, tested in tests/test_passk_forgery.py): ending before
the tests finished in any way (`sys.exit`/`os._exit` with any code, SystemExit from a `finally`
or a function the tests call, exit handlers and finalizers, an excepthook or trace function,
signals to itself, its group, its parent or every process it may signal, os.abort, crashes);
swallowing a failed test (patching `builtins.AssertionError`: `assert` does not look it up);
printing anything on stdout/stderr, fake tokens or the runner's message included; writing
anything but that exact message to its fds; looking for the secret in its fds, /proc/self, /proc of its parent
(the init), the environment, argv or memory (code objects, frames, gc, /proc/self/mem): it is
not there; running its file again without the tests (in-process `exec`, a forked child, a
re-exec of the interpreter with `-O`, or of the runner from /proc/self/cmdline on an edited
file): the copy has no channel left to report completion on.

What it does not defend against: code written against this protocol. The candidate runs in the
same process as its tests, so it can do whatever the runner does: write the runner's message
to the completion pipe itself (an open fd of its own process, found in /proc/self/fd or the
runner's frame), or steer the runner past the tests (sys.settrace frame jumps, ctypes, crafted
bytecode). No scheme that runs the tests in the candidate's process can stop that; it takes
code aimed at tuneboard's harness, which generated answers do not contain by accident. Nor does
it judge the tests: an answer that games weak asserts (an object whose `__eq__` is always true)
passes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import InvalidInput
from core.metrics.sandbox import run_python, sandbox_capabilities

# Every fenced block, in order (each consumes its closing fence, which can never open another).
_BLOCK = re.compile(r"```(?P<lang>[\w+.-]*)[ \t]*\r?\n(?P<body>.*?)(?:```|\Z)", re.DOTALL)
_PYTHON = ("", "python", "python3", "py")


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
        result = run_python(extract_code(prediction), test, timeout_s=timeout_s, memory_mb=memory_mb,
                            completion=True)
        if result.status == "error":
            raise RuntimeError(f"tests_pass: the sandbox could not run a program: {result.stderr}")
        out.append(1.0 if result.completed else 0.0)
    return out
