"""pass@k cannot be forged: real sandbox runs of candidates that try to score without passing
their tests (every one defines `add` wrongly, or exits before its tests run) all score 0.0;
honest code, printing included, still scores 1.0. See core.metrics.code's docstring for what the
completion proof defends against and what it does not."""

from __future__ import annotations

import hashlib
import os

import pytest

import core.metrics.code as code
import core.metrics.sandbox as sandbox
from core.metrics.sandbox import run_python

pytestmark = pytest.mark.skipif(code.isolation_problem() is not None, reason=f"{code.isolation_problem()}")

WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
TEST = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"


def scores(candidates: dict[str, str], **kw) -> dict[str, float]:
    """tests_pass of each named candidate, all in one call (one sandbox run each)."""
    got = code.tests_pass(list(candidates.values()), [TEST] * len(candidates), **kw)
    return dict(zip(candidates, got))


def assert_all_zero(candidates: dict[str, str], **kw) -> None:
    got = scores(candidates, **kw)
    assert {name: s for name, s in got.items() if s != 0.0} == {}


# ---- the honest controls ------------------------------------------------------------------------
def test_honest_code_that_prints_passes_and_honest_wrong_code_fails():
    chatty = RIGHT + (
        "import atexit, sys, threading\n"
        "print('PASSED', 'tuneboard: the program ran to its end')\n"
        "print('0123456789abcdef0123456789abcdef', file=sys.stderr)\n"
        "atexit.register(print, 'bye')\n"
        "t = threading.Thread(target=print, args=('from a thread',))\n"
        "t.start(); t.join()\n"
        "if __name__ == '__main__':\n    print('main block ran', file=sys.stderr)\n")
    future = "from __future__ import annotations\n\ndef add(a: int, b: int) -> int:\n    return a + b\n"
    assert scores({"chatty": chatty, "future import": future, "wrong": WRONG,
                   "wrong, chatty": WRONG + "print('PASSED')"}) == {
        "chatty": 1.0, "future import": 1.0, "wrong": 0.0, "wrong, chatty": 0.0}


def test_completion_is_reported_apart_from_the_exit_status():
    honest = run_python(RIGHT + "import sys\nprint('out')\nprint('err', file=sys.stderr)", TEST, completion=True)
    assert (honest.status, honest.completed, honest.stdout, honest.stderr) == ("passed", True, "out\n", "err\n")
    early = run_python(RIGHT + "raise SystemExit(0)", TEST, completion=True)
    assert (early.status, early.completed) == ("passed", False)
    assert "before its end" in early.reason
    plain = run_python(RIGHT, TEST)  # completion not asked for: no runner, nothing attested
    assert (plain.status, plain.completed) == ("passed", False)


# ---- ending early, in every way -----------------------------------------------------------------
EXITS = {
    **{f"os._exit({c})": WRONG + f"import os\nos._exit({c})" for c in (0, 1, 2, 86, 87, 88, 127, 255)},
    "sys.exit(0)": WRONG + "import sys\nsys.exit(0)",
    "sys.exit(87)": WRONG + "import sys\nsys.exit(87)",
    "right code, then raise SystemExit before the tests": RIGHT + "raise SystemExit",
}


def test_exiting_early_with_any_code_scores_zero():
    assert_all_zero(EXITS)


LATE_EXITS = {
    "atexit os._exit(0)": WRONG + "import atexit, os\natexit.register(os._exit, 0)",
    "atexit os._exit(87)": WRONG + "import atexit, os\natexit.register(lambda: os._exit(87))",
    "weakref.finalize": WRONG + "import os, weakref\nclass K: pass\nkeep = K()\nweakref.finalize(keep, os._exit, 0)",
    "__del__ at shutdown": WRONG + "import os\nclass K:\n    def __del__(self):\n        os._exit(0)\nkeep = K()",
    "SystemExit(0) in a finally": (
        "def add(a, b):\n    try:\n        return a - b\n    finally:\n        raise SystemExit(0)"),
    "excepthook exits 0": WRONG + "import os, sys\nsys.excepthook = lambda *a: os._exit(0)",
    "trace function exits 0 on the first exception": WRONG + (
        "import os, sys\ndef trace(frame, event, arg):\n    if event == 'exception':\n        os._exit(0)\n"
        "    return trace\nsys.settrace(trace)"),
    "thread exits 0 while the tests run": (
        "import os, threading, time\ndef add(a, b):\n    time.sleep(0.5)\n    return a - b\n"
        "threading.Thread(target=lambda: (time.sleep(0.1), os._exit(0)), daemon=True).start()"),
    "timer signal exits 0 while the tests run": (
        "import os, signal, time\ndef add(a, b):\n    time.sleep(0.5)\n    return a - b\n"
        "signal.signal(signal.SIGALRM, lambda *a: os._exit(0))\nsignal.setitimer(signal.ITIMER_REAL, 0.1)"),
}


def test_exit_handlers_finalizers_and_finally_score_zero():
    assert_all_zero(LATE_EXITS)


KILLS = {
    "SIGKILL to itself": WRONG + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "SIGTERM to itself": WRONG + "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)",
    "SIGTERM handled, exit 0": WRONG + (
        "import os, signal\nsignal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
        "os.kill(os.getpid(), signal.SIGTERM)"),
    "SIGKILL to its process group": WRONG + "import os, signal\nos.kill(0, signal.SIGKILL)",
    "SIGKILL to every process it may signal": WRONG + "import os, signal\nos.kill(-1, signal.SIGKILL)",
    "kill the parent, then exit 0": WRONG + (
        "import os, signal\nfor sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1):\n    try:\n"
        "        os.kill(os.getppid(), sig)\n    except OSError as e:\n        print('refused', e.errno)\nos._exit(0)"),
    "abort": WRONG + "import os\nos.abort()",
    "segfault": WRONG + "import ctypes\nctypes.string_at(0)",
}


def test_killing_itself_or_its_parent_scores_zero():
    assert_all_zero(KILLS)


# ---- getting past failing asserts ---------------------------------------------------------------
STRIP = "source = open(__file__).read().replace('assert ', 'pass  # ')\n"
BYPASSES = {
    "builtins.AssertionError replaced": WRONG + (
        "import builtins\nclass Quiet(Exception):\n    pass\nbuiltins.AssertionError = Quiet"),
    "re-exec the interpreter with -O": WRONG + (
        "import os, sys\nif not sys.flags.optimize:\n"
        "    os.execv(sys.executable, [sys.executable, '-O'] + sys.orig_argv[1:])"),
    "re-exec with -O, every fd made inheritable first": WRONG + (
        "import os, sys\nif not sys.flags.optimize:\n    for fd in range(3, 64):\n        try:\n"
        "            os.set_inheritable(fd, True)\n        except OSError:\n            pass\n"
        "    os.execv(sys.executable, [sys.executable, '-O'] + sys.orig_argv[1:])"),
    "exec its own file without the asserts, then exit 0": WRONG + (
        "import os\nif '_again' not in globals():\n    " + STRIP.replace("\n", "\n    ")
        + "exec(compile(source, __file__, 'exec'), {'__name__': '__main__', '_again': True})\n    os._exit(0)"),
    "a forked child runs it without the asserts": WRONG + (
        "import os\nif '_again' not in globals():\n    " + STRIP.replace("\n", "\n    ")
        + "pid = os.fork()\n    if pid == 0:\n"
        "        exec(compile(source, __file__, 'exec'), {'__name__': '__main__', '_again': True})\n"
        "        os._exit(0)\n    os.waitpid(pid, 0)\n    os._exit(0)"),
    "edit its file, then rerun the runner from /proc/self/cmdline in-process": WRONG + (
        "import builtins\nif not getattr(builtins, '_again', False):\n    builtins._again = True\n    "
        + STRIP.replace("\n", "\n    ")
        + "open(__file__, 'w').write(source)\n"
        "    runner = open('/proc/self/cmdline', 'rb').read().split(b'\\0')[3]\n"
        "    exec(runner, {'__name__': '__main__'})"),
    "edit its file, then re-exec the runner": WRONG + (
        "import os, sys\nif 'AGAIN' not in os.environ:\n    " + STRIP.replace("\n", "\n    ")
        + "open(__file__, 'w').write(source)\n    os.environ['AGAIN'] = '1'\n"
        "    os.execv(sys.executable, sys.orig_argv)"),
}


def test_assert_bypass_tricks_score_zero():
    assert_all_zero(BYPASSES)


# ---- printing, writing anywhere -----------------------------------------------------------------
WRITES = {
    "prints fake tokens, then exits 0": WRONG + (
        "import os, sys\nfor out in (sys.stdout, sys.stderr):\n"
        "    print('PASSED', 'tuneboard: the program ran to its end', os.urandom(16).hex(), file=out, flush=True)\n"
        "os._exit(0)"),
    "writes tokens to every fd, then exits 0": WRONG + (
        "import os\nfor fd in range(64):\n    for token in (b'PASSED\\n', os.urandom(16), b'\\x00' * 16):\n"
        "        try:\n            os.write(fd, token)\n        except OSError:\n            pass\nos._exit(0)"),
    "echoes every fd it can read to every fd, then exits 0": WRONG + (
        "import os\nheard = b''\nfor fd in range(64):\n    try:\n"
        "        r = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_NONBLOCK)\n"
        "        heard += os.read(r, 4096)\n    except OSError:\n        pass\n"
        "for fd in range(64):\n    try:\n        os.write(fd, heard or b'x')\n    except OSError:\n        pass\n"
        "os._exit(0)"),
}


def test_printing_and_writing_tokens_anywhere_scores_zero():
    assert_all_zero(WRITES)


# ---- looking for the secret ---------------------------------------------------------------------
PREFIX = bytes.fromhex("c0ffee5a")
# Looks for a secret it knows only by a 4-byte prefix and its sha256 (so the full secret is never
# in its own memory), raw or in hex, in: every fd, /proc/self and its parent's /proc entries,
# every object the garbage collector knows (code objects, frames and their locals: the runner's
# included), and all of its readable memory; then exits 0.
HUNT = WRONG + r'''
import gc, hashlib, os, sys
PREFIX, DIGEST = bytes.fromhex(PREFIX_HEX), bytes.fromhex(DIGEST_HEX)
found, searched = [], [0]
def check(where, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if not isinstance(data, (bytes, bytearray)):
        return
    searched[0] += 1
    unhex = lambda b: bytes.fromhex(b.decode("ascii"))
    for pattern, size, decode in ((PREFIX, 16, bytes), (PREFIX.hex().encode(), 32, unhex),
                                  (PREFIX.hex().upper().encode(), 32, unhex)):
        at = data.find(pattern)
        while at != -1:
            try:
                if hashlib.sha256(decode(bytes(data[at:at + size]))).digest() == DIGEST:
                    found.append(where)
            except (ValueError, UnicodeDecodeError):
                pass
            at = data.find(pattern, at + 1)
def read(path, size=1 << 20):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return os.read(fd, size)
        finally:
            os.close(fd)
    except OSError as e:
        return ("%s refused %d" % (path, e.errno))
for fd in range(64):
    check("fd %d" % fd, read("/proc/self/fd/%d" % fd))
    try:
        check("fd %d" % fd, os.read(fd, 1 << 16))
    except OSError:
        pass
for pid in {"self", str(os.getppid()), "1"}:
    for name in ("environ", "cmdline", "status", "maps", "stat", "mountinfo", "auxv", "mem"):
        check("/proc/%s/%s" % (pid, name), read("/proc/%s/%s" % (pid, name)))
    try:
        for fd in os.listdir("/proc/%s/fd" % pid):
            check("/proc/%s/fd/%s" % (pid, fd), read("/proc/%s/fd/%s" % (pid, fd)))
    except OSError:
        pass
check("environ", repr(dict(os.environ)))
check("argv", repr(sys.argv) + repr(sys.orig_argv))
def consts(where, code):
    for item in code.co_consts:
        consts(where, item) if type(item) is type(code) else check(where, item)
frame = sys._getframe()
while frame is not None:  # its own module frame, then the runner's
    for value in [*frame.f_locals.values(), *frame.f_globals.values()]:
        check("frame", value)
    consts("code", frame.f_code)
    frame = frame.f_back
for obj in gc.get_objects():
    try:
        if type(obj) is type(consts.__code__):
            consts("code", obj)
        for item in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()):
            check("gc", item)
    except Exception:
        pass
mem = os.open("/proc/self/mem", os.O_RDONLY)
for line in open("/proc/self/maps"):
    span, perms = line.split()[:2]
    if perms[0] != "r" or "[vvar" in line or "[vsyscall" in line:
        continue
    start, end = (int(x, 16) for x in span.split("-"))
    while start < end:
        try:
            chunk = os.pread(mem, min(end - start, 1 << 20), start)
        except OSError:
            break
        check("memory", chunk)
        start += 1 << 20
print("searched", searched[0], "FOUND in " + ", ".join(sorted(set(found))) if found else "nothing found", flush=True)
os._exit(0)
'''


def test_the_secret_is_nowhere_the_candidate_can_look(monkeypatch):
    secret = PREFIX + os.urandom(12)
    monkeypatch.setattr(sandbox, "_new_secret", lambda: secret)
    digest = hashlib.sha256(secret).hexdigest()
    hunt = HUNT.replace("PREFIX_HEX", repr(PREFIX.hex())).replace("DIGEST_HEX", repr(digest))
    result = run_python(hunt, TEST, completion=True, timeout_s=20)
    assert (result.status, result.completed) == ("passed", False), (result.reason, result.stderr[-2000:])
    assert "nothing found" in result.stdout, result.stdout
    assert int(result.stdout.split()[1]) > 1000  # it really looked (every gc object, all its memory)
    # The search finds a secret that is there: planted as a literal, it shows in the code objects and memory.
    planted = run_python(hunt + f"\nplanted = {secret!r}", TEST, completion=True, timeout_s=20)
    assert "FOUND in" in planted.stdout and "code" in planted.stdout and "memory" in planted.stdout, planted.stdout
    assert code.tests_pass([hunt], [TEST], timeout_s=20) == [0.0]
