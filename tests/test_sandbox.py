"""The pass@k sandbox contains what generated code does: each test runs hostile code and
asserts on the host afterwards (files intact, no processes left, nothing reached)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from core.metrics.sandbox import STATUSES, processes_of_uid, run_python, sandbox_capabilities

CAPS = sandbox_capabilities()
needs_uid_drop = pytest.mark.skipif(
    not CAPS["setuid"], reason=f"cannot drop to a per-run uid here (capabilities: {CAPS})")

PRINT_UID = "import os, sys, time\nprint(os.getuid(), flush=True)\n"


def sandbox_uid(stdout: str) -> int:
    return int(stdout.split()[0])


def test_capabilities_are_reported():
    assert {"root", "netns", "mountns", "setuid", "network_isolated"} <= CAPS.keys()
    assert all(isinstance(CAPS[k], bool) for k in ("root", "netns", "mountns", "setuid"))


def test_correct_solution_passes():
    result = run_python("def add(a, b):\n    return a + b", "assert add(2, 3) == 5\nprint('ok')")
    assert (result.status, result.passed, result.returncode) == ("passed", True, 0)
    assert result.stdout == "ok\n"
    assert result.status in STATUSES


def test_failing_assert_fails():
    result = run_python("def add(a, b):\n    return a - b", "assert add(2, 3) == 5")
    assert (result.status, result.passed) == ("failed", False)
    assert "AssertionError" in result.stderr


def test_syntax_error_fails_not_errors():
    result = run_python("def broken(:\n    pass")
    assert result.status == "failed" and "SyntaxError" in result.stderr


@needs_uid_drop
def test_infinite_loop_times_out_and_leaves_no_process():
    # A child that leaves the process group (setsid) must die too: the sweep is by uid.
    code = PRINT_UID + "if os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\nwhile True:\n    pass"
    result = run_python(code, timeout_s=1.0)
    assert result.status == "timeout" and not result.passed
    assert result.seconds < 1.0 + 2.0
    assert processes_of_uid(sandbox_uid(result.stdout)) == []


@needs_uid_drop
def test_fork_bomb_is_contained():
    code = PRINT_UID + "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run_python(code, timeout_s=2.0, max_processes=16)
    assert result.status in ("timeout", "failed") and not result.passed
    assert result.seconds < 2.0 + 4.0  # the wait, then the kill sweep (~1.5 s on 2 busy cores)
    assert processes_of_uid(sandbox_uid(result.stdout)) == []
    assert subprocess.run(["true"], timeout=10).returncode == 0  # the host can still fork


def test_allocating_2gb_hits_the_memory_limit():
    result = run_python("x = bytearray(2 * 1024**3)\nprint(len(x))", memory_mb=512)
    assert result.status == "memory" and not result.passed
    assert "MemoryError" in result.stderr
    assert run_python("print(1)").status == "passed"  # the host, and the next run, are fine


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


@pytest.fixture(params=["tmp_path", "visible_dir"])
def outside_dir(request, tmp_path):
    """A root-owned directory with a root-owned 0644 sentinel: under pytest's tmp (hidden by the
    private /tmp when there is a mount namespace) and under the repository, which the sandbox
    can see, so only the uid drop protects it."""
    if request.param == "tmp_path":
        yield tmp_path
        return
    # Somewhere the sandbox can see: not under /tmp, /var/tmp, /dev/shm or /root, which it
    # covers with its own tmpfs (a checkout under /tmp would be hidden, proving nothing here).
    base = Path(__file__).parent
    if str(base.resolve()).startswith(("/tmp", "/var/tmp", "/dev/shm", "/root")) and os.geteuid() == 0:
        base = Path("/var/lib")
    visible = base / f".sandbox-sentinel-{uuid.uuid4().hex}"
    visible.mkdir(mode=0o755)
    try:
        yield visible
    finally:
        shutil.rmtree(visible, ignore_errors=True)


@needs_uid_drop
def test_cannot_write_or_delete_outside_its_directory(outside_dir):
    sentinel = outside_dir / "sentinel.txt"
    sentinel.write_text("original")
    os.chmod(sentinel, 0o644)
    os.chmod(outside_dir, 0o755)
    assert os.stat(sentinel).st_uid == os.stat(outside_dir).st_uid == os.geteuid()
    code = f"""
import os
d, s = {str(outside_dir)!r}, {str(sentinel)!r}
attempts = {{
    "append": lambda: open(s, "a").write("pwned"),
    "truncate": lambda: open(s, "w").close(),
    "delete": lambda: os.remove(s),
    "rename": lambda: os.rename(s, s + ".moved"),
    "create": lambda: open(os.path.join(d, "new.txt"), "w").write("x"),
    "chmod": lambda: os.chmod(s, 0o666),
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
    result = run_python(code)
    assert "SUCCEEDED" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 6
    assert sentinel.read_text() == "original"
    assert (os.stat(sentinel).st_mode & 0o777) == 0o644
    assert sorted(p.name for p in outside_dir.iterdir()) == ["sentinel.txt"]
    if outside_dir.name.startswith(".sandbox-sentinel-"):
        assert "readable original" in result.stdout  # visible, so the uid drop did the work


@pytest.mark.skipif(not CAPS["network_isolated"],
                    reason=f"no network namespace on this machine (capabilities: {CAPS})")
def test_cannot_reach_a_localhost_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        code = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    print("connected")
except OSError as e:
    print("blocked", e.errno)
"""
        result = run_python(code)
        assert result.stdout.startswith("blocked"), result.stdout
        with pytest.raises(TimeoutError):
            server.accept()


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
