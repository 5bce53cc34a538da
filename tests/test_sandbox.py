"""The pass@k sandbox contains what generated code does: each test runs hostile code and
asserts on the host afterwards (files intact, no processes left, nothing reached).

Every hostile program goes through `run_python`, the call `core.metrics.code.tests_pass` (the
pass@k scorer) makes for each sample; `test_hostile_samples_score_zero_through_tests_pass`
runs a set of them through `tests_pass` itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import core.metrics.code as code_metrics
from core.metrics.sandbox import STATUSES, processes_of_uid, run_python, sandbox_capabilities

CAPS = sandbox_capabilities()
needs_uid_drop = pytest.mark.skipif(
    not CAPS["setuid"], reason=f"cannot drop to a per-run uid here (capabilities: {CAPS})")
needs_netns = pytest.mark.skipif(
    not CAPS["network_isolated"], reason=f"no network namespace on this machine (capabilities: {CAPS})")
needs_isolation = pytest.mark.skipif(
    code_metrics.isolation_problem() is not None, reason=f"{code_metrics.isolation_problem()}")

PRINT_UID = "import os, sys, time\nprint(os.getuid(), flush=True)\n"
CHECKOUT = Path(__file__).parent  # visible to the host; the sandbox's root must not hold it


def sandbox_uid(stdout: str) -> int:
    return int(stdout.split()[0])


def assert_readable(result, *words: str) -> None:
    """The result says why in a sentence, not with the harness's traceback."""
    assert result.status in STATUSES and result.status != "error", (result.status, result.stderr)
    assert result.reason and "\n" not in result.reason and "Traceback" not in result.reason, result.reason
    assert "sandbox setup failed" not in result.stderr and "_LAUNCHER" not in result.stderr
    for word in words:
        assert word in result.reason, result.reason


def pids_with_marker(marker: str) -> list[int]:
    """Processes whose command line holds `marker` (read from the host's /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


_BEFORE: set[int] = set()


@pytest.fixture(autouse=True)
def _children_before_the_test():
    """What already ran below this process before the test (under xdist, a helper an earlier
    module's library started in the same worker, e.g. multiprocessing's resource tracker): the
    sandbox is answerable only for what appears during the test."""
    _BEFORE.clear()
    _BEFORE.update(_descendants())
    yield


def live_children() -> list[int]:
    """This test process's descendants that are still running (not zombies), started during the test."""
    return sorted(set(_descendants()) - _BEFORE)


def _descendants() -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    return sorted(mine)


def assert_nothing_left(uid: int | None = None, marker: str | None = None) -> None:
    if uid is not None:
        assert processes_of_uid(uid) == []
    if marker is not None:
        assert pids_with_marker(marker) == []
    assert live_children() == []


@pytest.fixture
def visible_dir():
    """A fresh directory in the checkout: on the host, outside every place the sandbox covers
    with its own tmpfs, so only the sandbox's private root keeps it out of reach."""
    base = CHECKOUT
    if str(base.resolve()).startswith(("/tmp", "/var/tmp", "/dev/shm")):
        base = Path("/var/lib") if os.geteuid() == 0 else Path.home()
    made = base / f".sandbox-outside-{uuid.uuid4().hex}"
    made.mkdir()
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


# ---- ordinary programs --------------------------------------------------------------------------
def test_capabilities_are_reported():
    assert {"root", "netns", "mountns", "setuid", "network_isolated"} <= CAPS.keys()
    assert all(isinstance(CAPS[k], bool) for k in ("root", "netns", "mountns", "setuid"))


def test_correct_solution_passes():
    result = run_python("def add(a, b):\n    return a + b", "assert add(2, 3) == 5\nprint('ok')")
    assert (result.status, result.passed, result.returncode) == ("passed", True, 0)
    assert result.stdout == "ok\n"
    assert_readable(result, "exited with code 0")


def test_failing_assert_fails():
    result = run_python("def add(a, b):\n    return a - b", "assert add(2, 3) == 5")
    assert (result.status, result.passed) == ("failed", False)
    assert "AssertionError" in result.stderr
    assert_readable(result, "exited with code 1", "AssertionError")


def test_syntax_error_fails_not_errors():
    result = run_python("def broken(:\n    pass")
    assert result.status == "failed" and "SyntaxError" in result.stderr
    assert_readable(result, "SyntaxError")


# ---- loops: wall clock, CPU limit, signals ignored ------------------------------------------------
@needs_uid_drop
def test_infinite_loop_times_out_and_leaves_no_process():
    # A child that leaves the process group (setsid) must die too: the sweep is by uid.
    code = PRINT_UID + "if os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\nwhile True:\n    pass"
    result = run_python(code, timeout_s=1.0)
    assert result.status == "timeout" and not result.passed
    assert result.seconds < 1.0 + 2.0
    assert_readable(result, "timed out")
    assert_nothing_left(sandbox_uid(result.stdout))


IGNORE_SIGNALS = ("import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, "
                  "signal.SIGQUIT, signal.SIGUSR1):\n    signal.signal(s, signal.SIG_IGN)\n")
LOOPS = {
    "busy loop ignoring SIGTERM/SIGINT/SIGHUP/SIGXCPU": IGNORE_SIGNALS + "while True:\n    pass",
    "handlers that swallow every catchable signal": (
        "import signal\nfor s in set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}:\n"
        "    try:\n        signal.signal(s, lambda *a: None)\n    except (OSError, ValueError):\n        pass\n"
        "while True:\n    pass"),
    "sleeping forever with signals ignored": IGNORE_SIGNALS + "while True:\n    time.sleep(1000)",
    "threads spinning, main thread blocked": (
        IGNORE_SIGNALS + "import threading\ndef spin():\n    while True:\n        pass\n"
        "for _ in range(3):\n    threading.Thread(target=spin, daemon=True).start()\n"
        "threading.Event().wait()"),
    "double-forked setsid daemon ignoring signals": (
        IGNORE_SIGNALS + "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.setpgid(0, 0)\n        while True:\n            pass\n    os._exit(0)\n"
        "while True:\n    time.sleep(1000)"),
    "memory caught and retried forever": (
        "hoard = []\nwhile True:\n    try:\n        hoard.append(bytearray(2**24))\n"
        "    except MemoryError:\n        hoard.clear()"),
}


@needs_uid_drop
@pytest.mark.parametrize("code", LOOPS.values(), ids=LOOPS.keys())
def test_loops_that_resist_stopping_are_killed(code):
    result = run_python(PRINT_UID + code, timeout_s=1.0, memory_mb=256)
    assert result.status == "timeout" and not result.passed, (result.status, result.reason, result.stderr)
    assert result.seconds < 1.0 + 2.5
    assert_readable(result, "timed out")
    assert_nothing_left(sandbox_uid(result.stdout))


# ---- fork bombs -----------------------------------------------------------------------------------
@needs_uid_drop
def test_fork_bomb_is_contained():
    code = PRINT_UID + "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run_python(code, timeout_s=2.0, max_processes=16)
    assert result.status in ("timeout", "failed") and not result.passed
    assert result.seconds < 2.0 + 4.0  # the wait, then the kill sweep (~1.5 s on 2 busy cores)
    assert_readable(result)
    assert_nothing_left(sandbox_uid(result.stdout))
    assert subprocess.run(["true"], timeout=10).returncode == 0  # the host can still fork


FORK_BOMBS = {
    "subprocess loop": (
        "import subprocess\nkids = []\nwhile True:\n"
        "    kids.append(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', MARKER]))"),
    "subprocess loop, errors ignored": (
        "import subprocess\nwhile True:\n    try:\n"
        "        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', MARKER])\n"
        "    except OSError:\n        pass"),
    "multiprocessing loop": (
        "import multiprocessing\nwhile True:\n    try:\n"
        "        multiprocessing.Process(target=time.sleep, args=(60,)).start()\n"
        "    except OSError:\n        pass"),
    "shell fork bomb": (
        "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'b() { b | b & }; b # ' + MARKER])\n"
        "time.sleep(60)"),
    "os.fork in every child, exits ignored": (
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n"
        "    try:\n        if os.fork() == 0:\n            os.setsid()\n    except OSError:\n        time.sleep(0.01)"),
}


@needs_uid_drop
@pytest.mark.parametrize("code", FORK_BOMBS.values(), ids=FORK_BOMBS.keys())
def test_fork_bombs_hit_the_process_limit_and_leave_nothing(code):
    marker = f"tuneboard-sandbox-bomb-{uuid.uuid4().hex}"
    started = time.monotonic()
    result = run_python(PRINT_UID + f"MARKER = {marker!r}\n" + code, timeout_s=2.0, max_processes=16)
    assert time.monotonic() - started < 2.0 + 4.0
    assert result.status in ("timeout", "failed") and not result.passed, (result.status, result.reason)
    assert_readable(result)
    assert_nothing_left(sandbox_uid(result.stdout), marker)
    assert subprocess.run(["true"], timeout=10).returncode == 0


# ---- memory ---------------------------------------------------------------------------------------
def test_allocating_2gb_hits_the_memory_limit():
    result = run_python("x = bytearray(2 * 1024**3)\nprint(len(x))", memory_mb=512)
    assert result.status == "memory" and not result.passed
    assert "MemoryError" in result.stderr
    assert_readable(result, "out of memory")
    assert run_python("print(1)").status == "passed"  # the host, and the next run, are fine


def test_memory_growing_step_by_step_hits_the_limit():
    result = run_python("hoard = []\nwhile True:\n    hoard.append(b'x' * 2**22)", memory_mb=256, timeout_s=3.0)
    assert result.status == "memory" and not result.passed
    assert_readable(result, "out of memory")


@needs_uid_drop
def test_forked_processes_share_one_memory_budget():
    # RLIMIT_AS is per process: four children of 150 MB each stay under it one by one, but not
    # together; the parent's watch over the run's resident memory stops them all.
    code = PRINT_UID + (
        "for _ in range(4):\n    if os.fork() == 0:\n        block = b'x' * (150 * 2**20)\n"
        "        time.sleep(60)\n        os._exit(0)\ntime.sleep(60)")
    result = run_python(code, memory_mb=256, timeout_s=3.0)
    assert result.status == "memory" and not result.passed, (result.status, result.reason)
    assert result.seconds < 3.0
    assert_readable(result, "together")
    assert_nothing_left(sandbox_uid(result.stdout))


def test_filling_the_scratch_space_is_capped():
    code = """
import os
written = {}
for d in ("/dev/shm", "/tmp", "."):
    n = 0
    try:
        for i in range(200):
            with open(os.path.join(d, "fill-%d" % i), "wb") as f:
                f.write(b"x" * 2**20)
            n += 1
    except OSError as e:
        pass
    written[d] = n
print(written)
"""
    result = run_python(code, max_file_mb=4)
    assert result.status == "passed", result.stderr
    written = eval(result.stdout)  # a dict literal the program printed
    assert all(n <= 4 * 4 for n in written.values()), written  # tmpfs size = 4 x max_file_mb


def test_writing_100mb_is_stopped_by_the_file_size_limit():
    code = """
import os
try:
    with open("big", "wb") as f:
        for _ in range(100):
            f.write(b"x" * 2**20)
    print("wrote all")
except OSError as e:
    print("refused", e.errno)
print(os.path.getsize("big"))
"""
    result = run_python(code, max_file_mb=8)
    lines = result.stdout.split()
    assert lines[:2] == ["refused", "27"]  # EFBIG
    assert int(lines[2]) <= 8 * 2**20


# ---- files outside the work directory -------------------------------------------------------------
@pytest.fixture(params=["tmp_path-locked", "tmp_path-open", "checkout-locked", "checkout-open",
                        "interpreter-locked", "interpreter-open"])
def outside_dir(request, tmp_path):
    """A root-owned directory with a root-owned sentinel, "locked" (0755/0644) or "open"
    (0777/0666, so file permissions alone would not stop a stranger): under pytest's tmp
    (covered by the sandbox's private /tmp), in the checkout (not in the sandbox's root at all),
    and inside the interpreter's prefix (in the sandbox's root, read-only)."""
    where, how = request.param.split("-")
    dir_mode, file_mode = (0o755, 0o644) if how == "locked" else (0o777, 0o666)
    if where == "tmp_path":
        made = tmp_path / "outside"
    elif where == "checkout":
        made = CHECKOUT / f".sandbox-sentinel-{uuid.uuid4().hex}"
    else:
        if sys.prefix == sys.base_prefix or not os.access(sys.prefix, os.W_OK):
            pytest.skip("no writable virtual environment to put a sentinel in")
        made = Path(sys.prefix) / f".sandbox-sentinel-{uuid.uuid4().hex}"
    made.mkdir()
    sentinel = made / "sentinel.txt"
    sentinel.write_text("original")
    os.chmod(sentinel, file_mode)
    os.chmod(made, dir_mode)
    try:
        yield where, made, file_mode
    finally:
        shutil.rmtree(made, ignore_errors=True)


@needs_uid_drop
def test_cannot_write_or_delete_outside_its_directory(outside_dir):
    where, outside, file_mode = outside_dir
    sentinel = outside / "sentinel.txt"
    assert os.stat(sentinel).st_uid == os.stat(outside).st_uid == os.geteuid()
    code = f"""
import os
d, s = {str(outside)!r}, {str(sentinel)!r}
attempts = {{
    "append": lambda: open(s, "a").write("pwned"),
    "truncate": lambda: open(s, "w").close(),
    "os.truncate": lambda: os.truncate(s, 0),
    "delete": lambda: os.remove(s),
    "rename": lambda: os.rename(s, s + ".moved"),
    "create": lambda: open(os.path.join(d, "new.txt"), "w").write("x"),
    "mkdir": lambda: os.mkdir(os.path.join(d, "newdir")),
    "symlink": lambda: os.symlink("/etc/passwd", os.path.join(d, "link")),
    "chmod": lambda: os.chmod(s, 0o600),
    "chown": lambda: os.chown(s, os.getuid(), os.getgid()),
    "utime": lambda: os.utime(s, (0, 0)),
    "rmdir": lambda: os.rmdir(d),
}}
for name, attempt in attempts.items():
    try:
        attempt()
        print(name, "SUCCEEDED")
    except OSError as e:
        print(name, "refused")
try:
    print("readable", open(s).read())
except OSError:
    print("invisible")
"""
    before = os.stat(sentinel)
    result = run_python(code)
    assert "SUCCEEDED" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 12
    assert sentinel.read_text() == "original"
    after = os.stat(sentinel)
    assert (after.st_mode & 0o777, after.st_uid, after.st_mtime_ns) == (file_mode, before.st_uid, before.st_mtime_ns)
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]
    if where == "interpreter":
        assert "readable original" in result.stdout  # in its root, so read-only mount + uid did the work
    else:
        assert "invisible" in result.stdout  # not in its root at all


@needs_uid_drop
def test_absolute_paths_outside_never_reach_the_host(tmp_path, visible_dir):
    os.chmod(visible_dir, 0o1777)  # world-writable, like /tmp: only the private root keeps it out
    name = f"escaped-{uuid.uuid4().hex}"
    targets = [Path("/tmp"), tmp_path, Path.home(), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock"),
               Path("/var/lock"), visible_dir, CHECKOUT, Path("/"), Path(sys.prefix)]
    paths = [str(t / name) for t in targets]
    code = f"""
import os
for p in {paths!r}:
    try:
        with open(p, "w") as f:
            f.write("pwned")
        print("wrote (inside the sandbox's own view)", p)
    except OSError as e:
        print("refused", p, e.strerror)
"""
    result = run_python(code)
    assert result.status == "passed", result.stderr
    assert len(result.stdout.splitlines()) == len(paths)
    leaked = [p for p in paths if os.path.lexists(p)]
    for p in leaked:
        Path(p).unlink(missing_ok=True)  # /var/lock may be /run/lock
    assert leaked == []


@needs_uid_drop
def test_relative_escapes_stay_inside(visible_dir):
    os.chmod(visible_dir, 0o1777)
    name = f"escaped-{uuid.uuid4().hex}"
    up = "../" * 12
    relative = ["../" + name, "../../" + name, up + "tmp/" + name, up + name,
                up + str(visible_dir).lstrip("/") + "/" + name, "./../" + name, "sub/../../" + name,
                f"/proc/self/cwd/../{name}"]
    code = f"""
import os
os.mkdir("sub")
for p in {relative!r}:
    try:
        open(p, "w").write("pwned")
        print("wrote", p, "->", os.path.realpath(p))
    except OSError as e:
        print("refused", p, e.strerror)
try:
    os.makedirs({up!r} + "tmp/{name}-dir/deeper")
except OSError:
    pass
"""
    result = run_python(code)
    assert result.status == "passed", result.stderr
    host = [Path(tempfile.gettempdir()) / name, Path("/") / name, visible_dir / name,
            Path(tempfile.gettempdir()) / f"{name}-dir", Path("/tmp") / name]
    assert [p for p in host if os.path.lexists(p)] == []
    assert list(visible_dir.iterdir()) == []


@needs_uid_drop
def test_symlinks_and_hardlinks_do_not_lead_out(tmp_path, visible_dir):
    os.chmod(visible_dir, 0o777)
    open_file = visible_dir / "world-writable.txt"  # writable by anyone who can reach it
    open_file.write_text("original")
    os.chmod(open_file, 0o666)
    hidden_file = tmp_path / "hidden.txt"
    hidden_file.write_text("original")
    os.chmod(hidden_file, 0o666)
    venv_file = Path(sys.prefix) / "pyvenv.cfg"
    guarded = [open_file, hidden_file, Path("/etc/hostname"), venv_file]
    before = {p: (p.read_bytes(), os.stat(p).st_mode) for p in guarded if p.exists()}
    created = visible_dir / f"via-link-{uuid.uuid4().hex}"
    code = f"""
import os
targets = {[str(p) for p in before] + [str(created)]!r}
for i, t in enumerate(targets):
    link = "link%d" % i
    os.symlink(t, link)
    try:
        with open(link, "a") as f:
            f.write("pwned")
        print("wrote through", link, "->", t)
    except OSError as e:
        print("refused", t, e.strerror)
    try:
        os.link(t, "hard%d" % i)
        with open("hard%d" % i, "a") as f:
            f.write("pwned")
        print("wrote through hard link", t)
    except OSError as e:
        print("refused hard link", t, e.strerror)
os.symlink(os.path.dirname(targets[0]), "dirlink")
try:
    open("dirlink/new.txt", "w").write("x")
    print("wrote through a directory link")
except OSError as e:
    print("refused dirlink", e.strerror)
"""
    result = run_python(code)
    assert result.status == "passed", result.stderr
    assert {p: (p.read_bytes(), os.stat(p).st_mode) for p in before} == before
    assert not os.path.lexists(created)
    assert sorted(p.name for p in visible_dir.iterdir()) == ["world-writable.txt"]


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("TUNEBOARD_SECRET_TEST", "hunter2-secret")
    code = """
import os
print(sorted(os.environ))
print("TUNEBOARD_SECRET_TEST" in os.environ)
try:
    print(open(f"/proc/{os.getppid()}/environ", "rb").read())
except OSError:
    print("parent environ refused")
"""
    result = run_python(code)
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert "False" in result.stdout
    if CAPS["setuid"]:
        assert "parent environ refused" in result.stdout


@pytest.mark.skipif(not CAPS["mountns"], reason=f"no private pid namespace here (capabilities: {CAPS})")
def test_host_processes_are_not_visible():
    code = "import os\nprint(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
    result = run_python(code)
    own, pids = result.stdout.split(" ", 1)
    assert eval(pids) == [int(own)]  # itself only: not the host's, not even its root-run init


@needs_uid_drop
def test_processes_left_behind_by_a_finished_program_are_killed():
    marker = f"tuneboard-sandbox-orphan-{uuid.uuid4().hex}"
    code = PRINT_UID + (
        "import subprocess\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
        "time.sleep(0.3)\nprint('done')")
    result = run_python(code, timeout_s=3.0)
    assert result.status == "passed" and result.stdout.split()[-1] == "done", (result.status, result.stderr)
    assert result.seconds < 3.0
    assert_nothing_left(sandbox_uid(result.stdout), marker)


def test_temp_dir_is_removed_afterwards():
    result = run_python("import os\nopen('left.txt', 'w').write('x')\nprint(os.getcwd())")
    workdir = Path(result.stdout.strip())
    assert workdir.name.startswith("tuneboard-sandbox-")
    assert str(workdir).startswith(tempfile.gettempdir())
    assert not workdir.exists()


def test_output_is_truncated():
    result = run_python("print('x' * 200_000)", max_output_kb=4)
    assert result.status == "passed"
    assert result.stdout.endswith("[output truncated]")
    assert len(result.stdout) < 4 * 1024 + 100


# ---- sockets --------------------------------------------------------------------------------------
SPAWN_CONNECT = """
import subprocess, sys
def via_python(snippet):
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=3)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]
def via_bash(line):
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=3)
    return "exit %d" % done.returncode
"""


def host_address() -> str | None:
    """This machine's first non-loopback IPv4 address, if any."""
    try:
        with open("/proc/net/fib_trie") as f:
            text = f.read()
    except OSError:
        return None
    lines = text.splitlines()
    for i, line in enumerate(lines[1:], 1):
        if "/32 host LOCAL" in line:
            address = lines[i - 1].split()[-1]
            if not address.startswith("127."):
                return address
    return None


def accepted(server: socket.socket, wait_s: float = 0.2) -> bool:
    server.settimeout(wait_s)
    try:
        conn, _ = server.accept()
    except (TimeoutError, BlockingIOError):
        return False
    conn.close()
    return True


@needs_netns
def test_cannot_reach_a_localhost_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        code = SPAWN_CONNECT + f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    print("direct connected")
except OSError as e:
    print("direct blocked", e.errno)
print("python-child", via_python("import socket\\ntry:\\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)"
                                 "\\n    print('connected')\\nexcept OSError as e:\\n    print('blocked', e.errno)"))
print("bash-child", via_bash("echo hi > /dev/tcp/127.0.0.1/{port}"))
try:
    socket.create_connection(("localhost", {port}), timeout=2)
    print("by-name connected")
except OSError as e:
    print("by-name blocked", e.errno)
"""
        result = run_python(code)
        assert result.status == "passed", result.stderr
        lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
        assert lines["direct"].startswith("blocked") and lines["by-name"].startswith("blocked"), lines
        assert lines["python-child"].startswith("blocked") and lines["bash-child"] != "exit 0", lines
        assert not accepted(server)


@needs_netns
def test_cannot_reach_non_loopback_addresses():
    address = host_address()
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen(16)
        port = server.getsockname()[1]
        targets = ([(address, port)] if address else []) + [("192.0.2.1", 80), ("1.1.1.1", 53), ("8.8.8.8", 443)]
        code = SPAWN_CONNECT + f"""
import socket
for host, port in {targets!r}:
    try:
        socket.create_connection((host, port), timeout=1)
        print("CONNECTED", host)
    except OSError as e:
        print("blocked", host, e.errno)
try:
    print("RESOLVED", socket.getaddrinfo("example.com", 80))
except OSError as e:
    print("no dns", e.errno)
print("child", via_python("import socket\\ntry:\\n    socket.create_connection(({address or '192.0.2.1'!r}, {port}), "
                          "timeout=1)\\n    print('CONNECTED')\\nexcept OSError as e:\\n    print('blocked', e.errno)"))
"""
        result = run_python(code)
        assert result.status == "passed", result.stderr
        assert "CONNECTED" not in result.stdout and "RESOLVED" not in result.stdout, result.stdout
        assert result.stdout.count("blocked") == len(targets) + 1
        assert not accepted(server)


@needs_netns
def test_udp_datagrams_reach_nothing():
    address = host_address()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as loop_rx, \
         socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as any_rx:
        loop_rx.bind(("127.0.0.1", 0))
        any_rx.bind(("0.0.0.0", 0))
        targets = [("127.0.0.1", loop_rx.getsockname()[1])] + (
            [(address, any_rx.getsockname()[1])] if address else [])
        code = SPAWN_CONNECT + f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for target in {targets!r}:
    for _ in range(3):
        try:
            s.sendto(b"leak", target)
            print("sent", target)
        except OSError as e:
            print("blocked", target, e.errno)
print("child", via_python("import socket\\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\\n"
                          "try:\\n    s.sendto(b'leak', {targets[0]!r})\\n    print('sent')\\n"
                          "except OSError as e:\\n    print('blocked', e.errno)"))
print("bash", via_bash("echo leak > /dev/udp/{targets[0][0]}/{targets[0][1]}"))
"""
        result = run_python(code)
        assert result.status == "passed", result.stderr
        for receiver in (loop_rx, any_rx):
            receiver.settimeout(0.3)
            with pytest.raises((TimeoutError, BlockingIOError)):
                receiver.recvfrom(64)


@needs_netns
def test_a_listening_port_cannot_be_reached_from_outside():
    # The host holds the port (bound, not listening), so nothing else on the host can answer on it;
    # the sandbox binds the same number in its own namespace and listens for a second while a
    # host thread keeps knocking.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        code = f"""
import fcntl, socket, struct, subprocess, time
try:
    socket.socket().bind(("127.0.0.1", {port}))
    print("loopback-bind ok")
except OSError as e:
    print("loopback-bind refused", e.errno)
try:  # SIOCSIFFLAGS: bring lo up (IFF_UP | IFF_LOOPBACK | IFF_RUNNING)
    fcntl.ioctl(socket.socket(), 0x8914, struct.pack("16sH14x", b"lo", 0x1 | 0x8 | 0x40))
    print("lo-up SUCCEEDED")
except OSError as e:
    print("lo-up refused", e.errno)
try:
    ip = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True,
                        env={{"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"}})
    print("ip-lo-up", "SUCCEEDED" if ip.returncode == 0 else "refused")
except OSError:
    print("ip-lo-up", "refused (no ip command)")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", {port}))
server.listen(16)
print("listening", time.time(), flush=True)
server.settimeout(1.0)
try:
    server.accept()
    print("ACCEPTED")
except OSError:
    print("nobody came")
print("closed", time.time())
"""
        knocks: list[tuple[float, str]] = []
        done = threading.Event()

        def knock():
            while not done.is_set():
                at = time.time()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    knocks.append((at, "connected"))
                except OSError:
                    knocks.append((at, "refused"))
                time.sleep(0.02)

        knocker = threading.Thread(target=knock)
        knocker.start()
        try:
            result = run_python(code, timeout_s=3.0)
        finally:
            done.set()
            knocker.join()
    assert result.status == "passed", result.stderr
    assert "SUCCEEDED" not in result.stdout and "ACCEPTED" not in result.stdout, result.stdout
    out = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in result.stdout.splitlines()}
    assert out["nobody"] == "came"
    opened, closed = float(out["listening"]), float(out["closed"])
    during = [outcome for at, outcome in knocks if opened <= at <= closed]
    assert during, "the host never knocked while the sandbox listened"
    assert {outcome for _, outcome in knocks} == {"refused"}


@needs_netns
def test_unix_sockets_outside_are_out_of_reach(tmp_path, visible_dir):
    listeners, paths = [], []
    # A world-writable socket in a visible, traversable place (the network namespace does not
    # cover path sockets; only the private root does), one under pytest's tmp, and an abstract one.
    for place in (visible_dir, tmp_path):
        path = str(place / "s.sock")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(16)
        listeners.append(server)
        paths.append(path)
    abstract = f"\0tuneboard-sandbox-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(abstract)
    server.listen(16)
    listeners.append(server)
    paths.append(abstract)
    code = SPAWN_CONNECT + f"""
import socket
for p in {paths!r}:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p)
        print("CONNECTED", repr(p))
    except OSError as e:
        print("blocked", e.errno)
print("child", via_python("import socket\\ns = socket.socket(socket.AF_UNIX)\\ntry:\\n    s.connect({paths[0]!r})"
                          "\\n    print('CONNECTED')\\nexcept OSError as e:\\n    print('blocked', e.errno)"))
try:
    socket.socket(socket.AF_UNIX).bind({str(visible_dir / "planted.sock")!r})
    print("PLANTED")
except OSError as e:
    print("plant refused", e.errno)
"""
    try:
        os.chmod(visible_dir, 0o777)
        result = run_python(code)
        assert result.status == "passed", result.stderr
        assert "CONNECTED" not in result.stdout and "PLANTED" not in result.stdout, result.stdout
        assert result.stdout.count("blocked") == len(paths) + 1
        assert not any(accepted(s, 0.1) for s in listeners)
        assert not (visible_dir / "planted.sock").exists()
    finally:
        for s in listeners:
            s.close()


@needs_netns
def test_raw_and_packet_sockets_are_refused():
    code = """
import socket
for name, args in {"raw": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                   "packet": (socket.AF_PACKET, socket.SOCK_RAW, 0)}.items():
    try:
        socket.socket(*args)
        print(name, "OPENED")
    except OSError as e:
        print(name, "refused", e.errno)
"""
    result = run_python(code)
    assert result.status == "passed" and "OPENED" not in result.stdout, result.stdout


# ---- the pass@k scorer's own entry point ------------------------------------------------------------
HOSTILE_SAMPLES = {
    "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "loop ignoring SIGTERM": IGNORE_SIGNALS + "while True:\n    pass",
    "memory blow-up": "hoard = []\nwhile True:\n    hoard.append(b'x' * 2**24)",
    "connect to the host": "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1)",
    "write outside": "open('/run/lock/TARGET', 'w').write('pwned')\nopen('/tmp/TARGET', 'w').write('pwned')",
}


@needs_isolation
def test_hostile_samples_score_zero_through_tests_pass(visible_dir):
    target = f"escaped-{uuid.uuid4().hex}"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        answers = [f"```python\ndef add(a, b):\n    return a + b\n"
                   f"{body.replace('PORT', str(port)).replace('TARGET', target)}\n```"
                   for body in HOSTILE_SAMPLES.values()]
        answers.append("```python\ndef add(a, b):\n    return a + b\n```")  # control: still passes
        started = time.monotonic()
        scores = code_metrics.tests_pass(answers, ["assert add(2, 3) == 5"] * len(answers), timeout_s=1.5,
                                         memory_mb=256)
        elapsed = time.monotonic() - started
        assert scores == [0.0] * len(HOSTILE_SAMPLES) + [1.0]
        assert elapsed < len(answers) * 1.5 + 10
        assert not accepted(server)
    assert not os.path.lexists(Path("/run/lock") / target) and not os.path.lexists(Path("/tmp") / target)
    assert live_children() == []
