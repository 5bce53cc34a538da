"""Runs untrusted generated Python (pass@k candidates) in a contained child process.

Layers, each applied in a short-lived root "launcher" (`python -I -S -c _LAUNCHER`) that then
execs `python -I solution.py`, so no code runs between fork and exec in this (possibly threaded)
process:

1. namespaces: `unshare(CLONE_NEWNET | CLONE_NEWNS)` as root. The new network namespace has only
   a downed loopback, so even 127.0.0.1 is unreachable. The private mount namespace puts fresh,
   size-capped tmpfs over /tmp, /var/tmp, /dev/shm, over the run's work directory, and over any
   directory the dropped uid could not traverse anyway but the interpreter lives under (e.g.
   /root of a pyenv install; the interpreter prefix is bind-mounted back, everything else there
   is hidden). Writes therefore land in memory capped by tmpfs `size=` and vanish with the run.
2. resource limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0.
3. privileges: setgroups([]), setgid, setuid to a fresh uid per run (random, from
   `_UID_RANGE`, chosen so no process holds it). A per-run uid, not `nobody`, because
   RLIMIT_NPROC counts processes per uid: a shared uid would let concurrent runs starve each
   other, and makes "kill everything of this uid" unsafe. PR_SET_NO_NEW_PRIVS stops setuid
   binaries from regaining root.
4. lifetime: new session (own process group), wall-clock timeout, then SIGKILL to the group
   and a sweep that kills every process of the run's uid (catches `setsid` escapees) and checks
   /proc until none is left.

Not root: no uid drop is possible; it tries `unshare(CLONE_NEWUSER | CLONE_NEWNET)` for the
network only, and the calling user's own files ARE writable by the candidate code. Reading is
not confined either: world-readable host files (outside the hidden directories) can be read;
with no network the only way out is stdout/stderr, which the caller stores.

Statuses (`SandboxResult.status`):
- "passed": exit code 0.
- "failed": the program ran and exited non-zero (failed assert, exception, syntax error,
  crash by a signal, a write refused by RLIMIT_FSIZE).
- "timeout": the wall clock ran out, or the CPU limit fired (SIGXCPU).
- "memory": the program raised MemoryError (RLIMIT_AS) or was SIGKILLed before its timeout.
- "error": the sandbox could not start the program (setup failure); the candidate never ran,
  so callers should treat it as an infrastructure fault, not a wrong answer.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STATUSES = ("passed", "failed", "timeout", "memory", "error")
_UID_RANGE = (200_000, 200_000 + 2**20)
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_SCRIPT = "solution.py"

# Runs as root in the fresh child: unshare, mount, setrlimit, drop privileges, exec.
# Any failure before exec is written to err_fd (close-on-exec, so a successful exec closes it
# with nothing written) and the launcher exits 1.
_LAUNCHER = r'''
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
err_fd = cfg["err_fd"]
try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    def check(rc, what):
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(e, what + ": " + os.strerror(e))
    def mount(src, dst, fstype, flags, data=None):
        enc = lambda s: None if s is None else s.encode()
        check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), "mount " + dst)
    def tmpfs(path, mode, size_mb, owner=0):
        os.makedirs(path, exist_ok=True)
        mount("tmpfs", path, "tmpfs", 2 | 4,  # MS_NOSUID | MS_NODEV
              "size=%dm,mode=%o,uid=%d,gid=%d" % (size_mb, mode, owner, owner))
    with open(os.path.join(cfg["workdir"], cfg["script"]), "rb") as f:
        program = f.read()
    if cfg["unshare"]:
        check(libc.unshare(cfg["unshare"]), "unshare")
    uid = cfg["uid"]
    if cfg["mountns"]:
        mount(None, "/", None, (1 << 14) | (1 << 18))  # MS_REC | MS_PRIVATE: no propagation out
        keeps = [(os.open(p, os.O_PATH), p) for p in cfg["keep"]]
        for path, mode in cfg["masks"]:
            tmpfs(path, mode, cfg["tmpfs_mb"])
        for fd, path in keeps:
            if any(path.startswith(m.rstrip("/") + "/") for m, _ in cfg["masks"]):
                os.makedirs(path, exist_ok=True)
                mount("/proc/self/fd/%d" % fd, path, None, 4096 | (1 << 14))  # MS_BIND | MS_REC
            os.close(fd)
        tmpfs(cfg["workdir"], 0o700, cfg["tmpfs_mb"], uid if uid is not None else 0)
        with open(os.path.join(cfg["workdir"], cfg["script"]), "wb") as f:
            f.write(program)
        if uid is not None:
            os.chown(os.path.join(cfg["workdir"], cfg["script"]), uid, uid)
    for name, value in cfg["limits"]:
        resource.setrlimit(getattr(resource, name), tuple(value))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("privileges were not dropped")
    check(libc.prctl(38, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    os.chdir(cfg["workdir"])
    os.set_inheritable(err_fd, False)
    os.execve(cfg["python"], [cfg["python"], "-I", cfg["script"]], cfg["env"])
except BaseException as exc:
    os.write(err_fd, ("sandbox setup failed: %r" % (exc,)).encode())
    os._exit(1)
'''

# Probes each layer in throwaway children of a throwaway process; prints a JSON dict.
_PROBE = r'''
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
test_uid = int(sys.argv[1])
def attempt(fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            ok = bool(fn())
        except BaseException:
            ok = False
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    out = os.read(r, 1)
    os.waitpid(pid, 0)
    return out == b"1"
def netns():
    import socket
    if libc.unshare(0x40000000) != 0:
        return False
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", 9))
    except OSError as e:
        return e.errno in (101, 99)  # ENETUNREACH, EADDRNOTAVAIL: no usable loopback
    return False
def userns_netns():
    return libc.unshare(0x10000000 | 0x40000000) == 0
def mountns():
    if libc.unshare(0x00020000) != 0:
        return False
    if libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None) != 0:
        return False
    return libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 6, b"size=1m") == 0
def setuid():
    os.setgroups([]); os.setgid(test_uid); os.setuid(test_uid)
    return os.getuid() == test_uid
root = os.geteuid() == 0
print(json.dumps({
    "root": root,
    "netns": attempt(netns) if root else False,
    "userns_netns": attempt(userns_netns),
    "mountns": attempt(mountns) if root else False,
    "setuid": attempt(setuid) if root else False,
}))
'''


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed run did. `passed` is `status == "passed"`."""

    status: str
    passed: bool
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


@functools.lru_cache(maxsize=1)
def sandbox_capabilities() -> dict:
    """Which containment layers work on this machine (probed once, in throwaway processes).

    Keys: root, netns (network namespace, root), userns_netns (unprivileged fallback), mountns
    (private mount namespace with tmpfs), setuid (drop to a per-run uid), network_isolated
    (whichever of the namespace routes `run_python` will use works), uid_range.
    """
    test_uid = _pick_uid()
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _PROBE, str(test_uid)],
                              capture_output=True, text=True, timeout=30, env=_ENV)
        caps = json.loads(done.stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        caps = {"root": os.geteuid() == 0, "netns": False, "userns_netns": False,
                "mountns": False, "setuid": False, "probe_error": repr(exc)}
    _kill_uid(test_uid)
    caps["network_isolated"] = caps["netns"] if caps["root"] else caps["userns_netns"]
    caps["uid_range"] = _UID_RANGE
    return caps


def run_python(code: str, test: str = "", timeout_s: float = 5.0, memory_mb: int = 512,
               max_processes: int = 16, max_file_mb: int = 8,
               max_output_kb: int = 64) -> SandboxResult:
    """Run `code + "\\n" + test` (e.g. a HumanEval candidate and its check) contained; see the
    module docstring for the layers and statuses. Never raises for anything the code does."""
    caps = sandbox_capabilities()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tuneboard-sandbox-"))
    uid = _pick_uid() if caps["setuid"] else None
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    err_r, err_w = os.pipe()
    proc = None
    timed_out = False
    try:
        (workdir / _SCRIPT).write_text(code + "\n" + test + "\n", encoding="utf-8")
        if uid is not None and not caps["mountns"]:
            # No private tmpfs: the candidate works in the host directory, so it must own it.
            os.chown(workdir, uid, uid)
            os.chown(workdir / _SCRIPT, uid, uid)
        cpu = max(1, math.ceil(timeout_s))
        config = {
            "err_fd": err_w, "workdir": str(workdir), "script": _SCRIPT, "uid": uid,
            "python": sys.executable, "env": _ENV,
            "unshare": _unshare_flags(caps), "mountns": caps["mountns"],
            "masks": _masks() if caps["mountns"] else [], "keep": _interpreter_paths(),
            "tmpfs_mb": 4 * max_file_mb,
            "limits": [
                ("RLIMIT_CPU", (cpu, cpu + 1)),
                ("RLIMIT_AS", (memory_mb * 2**20,) * 2),
                ("RLIMIT_NPROC", (max_processes,) * 2),
                ("RLIMIT_FSIZE", (max_file_mb * 2**20,) * 2),
                ("RLIMIT_NOFILE", (64, 64)),
                ("RLIMIT_CORE", (0, 0)),
            ],
        }
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(err_w,),
            cwd=workdir, env=_ENV, start_new_session=True)
        os.close(err_w)
        err_w = -1
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        if err_w != -1:
            os.close(err_w)
        if proc is not None:
            _kill_group(proc.pid)
            proc.wait()
        if uid is not None:
            _kill_uid(uid)
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    with os.fdopen(err_r, "rb") as pipe:
        setup_error = pipe.read().decode("utf-8", "replace")
    stdout, stderr = _read_capped(out, max_output_kb), _read_capped(err, max_output_kb)
    rc = proc.returncode
    if setup_error:
        status, stderr = "error", setup_error
    elif timed_out or rc == -signal.SIGXCPU:
        status = "timeout"
    elif rc == 0:
        status = "passed"
    elif _last_line(stderr).startswith("MemoryError") or rc == -signal.SIGKILL:
        status = "memory"
    else:
        status = "failed"
    return SandboxResult(status=status, passed=status == "passed", returncode=rc,
                         stdout=stdout, stderr=stderr, seconds=seconds)


def processes_of_uid(uid: int) -> list[int]:
    """Pids whose real or effective uid is `uid` (from /proc), to check nothing was left."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        real, effective = (int(x) for x in line.split()[1:3])
                        if uid in (real, effective):
                            pids.append(int(entry))
                        break
        except (OSError, ValueError):
            continue  # exited while we looked
    return pids


def _unshare_flags(caps: dict) -> int:
    if caps["root"]:
        return (0x40000000 if caps["netns"] else 0) | (0x00020000 if caps["mountns"] else 0)
    return 0x10000000 | 0x40000000 if caps["userns_netns"] else 0


def _interpreter_paths() -> list[str]:
    return sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                                 os.path.dirname(os.path.realpath(sys.executable)))})


def _masks() -> list[tuple[str, int]]:
    """Directories to cover with tmpfs: the world-writable scratch places, and the first
    ancestor of the interpreter that others cannot traverse (its prefix is bound back)."""
    masks = [(p, 0o1777) for p in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(p)]
    for path in _interpreter_paths():
        current = "/"
        for part in Path(path).parts[1:]:
            current = os.path.join(current, part)
            if not os.stat(current).st_mode & 0o001:
                if all(current != m for m, _ in masks):
                    masks.append((current, 0o755))
                break
    return sorted(masks, key=lambda m: len(m[0]))


def _pick_uid() -> int:
    busy = set()
    for _ in range(20):
        uid = random.randrange(*_UID_RANGE)
        if uid not in busy and not processes_of_uid(uid):
            return uid
        busy.add(uid)
    raise RuntimeError("no free sandbox uid found")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_uid(uid: int, deadline_s: float = 5.0) -> None:
    """Kill every process of `uid`. kill(-1) sent *as* that uid reaches exactly its processes
    and is atomic against fork, so one pass normally suffices; /proc confirms."""
    deadline = time.monotonic() + deadline_s
    while processes_of_uid(uid) and time.monotonic() < deadline:
        subprocess.run([sys.executable, "-I", "-S", "-c",
                        f"import os\nos.setgroups([]); os.setgid({uid}); os.setuid({uid})\n"
                        "try: os.kill(-1, 9)\nexcept ProcessLookupError: pass"],
                       env=_ENV, capture_output=True, timeout=10)
        time.sleep(0.02)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _read_capped(f, max_kb: int) -> str:
    f.seek(0)
    data = f.read(max_kb * 1024 + 1)
    f.close()
    text = data[: max_kb * 1024].decode("utf-8", "replace")
    return text + "\n[output truncated]" if len(data) > max_kb * 1024 else text
