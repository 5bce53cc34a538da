"""Runs untrusted generated Python (pass@k candidates) in a contained child process.

Layers, each applied in a short-lived root "launcher" (`python -I -S -c _LAUNCHER`), so no code
runs between fork and exec in this (possibly threaded) process:

1. namespaces: `unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID)` as root. The new network
   namespace has only a downed loopback, so even 127.0.0.1 is unreachable (TCP, UDP, abstract
   unix sockets). The launcher forks the pid namespace's init, which gives the program a root of
   its own (`pivot_root` into a small tmpfs; the host's tree is detached, not just hidden)
   holding only: read-only binds of /usr, /etc, the /bin, /lib... links or dirs, and the
   interpreter's prefixes; /dev with null, zero, full, random and urandom; the namespace's own
   /proc (`hidepid=2`: the program sees its own processes only); and fresh, size-capped tmpfs
   for /tmp, /var/tmp, /dev/shm and the work directory. Nothing else of the host exists there,
   so world-writable host places (/run/lock, a 0777 folder in a checkout) and world-writable
   unix sockets (path-based AF_UNIX connects are not stopped by the network namespace) are out
   of reach. Writes land in memory capped by tmpfs `size=` and vanish with the run. The init
   then forks the program, reaps, and exits when the program does: the kernel then kills and
   reaps everything else in the namespace at once (setsid or double-forked daemons included).
2. resource limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0;
   and, since RLIMIT_AS is per process, the waiting parent sums the resident memory of all the
   run's processes and stops the run when together they pass `memory_mb`.
3. privileges: setgroups([]), setgid, setuid to a fresh uid per run (random, from
   `_UID_RANGE`, chosen so no process holds it). A per-run uid, not `nobody`, because
   RLIMIT_NPROC counts processes per uid: a shared uid would let concurrent runs starve each
   other, and makes "kill everything of this uid" unsafe. PR_SET_NO_NEW_PRIVS stops setuid
   binaries from regaining root.
4. lifetime: new session (own process group) and a wall-clock timeout. To stop a run, SIGTERM
   to the launcher makes it SIGKILL the namespace's init (see 1), then SIGKILL to the group and
   a sweep that kills every process of the run's uid and checks /proc until none is left (the
   only cleanup on hosts without the namespaces).

Not root: no uid drop is possible; it tries `unshare(CLONE_NEWUSER | CLONE_NEWNET)` for the
network only, and the calling user's own files ARE writable by the candidate code. Reading is
not confined either. (`core.metrics.code.isolation_problem` refuses to score on such a host.)
With every layer, what the program can read is the bound system tree; with no network the
only way out is stdout/stderr, which the caller stores.

Statuses (`SandboxResult.status`; `SandboxResult.reason` says the same in a sentence):
- "passed": exit code 0.
- "failed": the program ran and exited non-zero (failed assert, exception, syntax error,
  crash by a signal, a write refused by RLIMIT_FSIZE).
- "timeout": the wall clock ran out, or the CPU limit fired (SIGXCPU, or SIGKILL at its hard
  limit when SIGXCPU was ignored).
- "memory": the program raised MemoryError (RLIMIT_AS), its processes together passed
  `memory_mb`, or it was SIGKILLed before its timeout (the kernel's OOM killer).
- "error": the sandbox could not start the program (setup failure); the candidate never ran,
  so callers should treat it as an infrastructure fault, not a wrong answer.

Completion (`run_python(..., completion=True)`; `SandboxResult.completed`, what pass@k counts):
whether the program's last line returned, which no exit code can tell. The caller draws 128
random bits per run (`secrets`) and writes them into a one-shot pipe that the launcher reads
and closes first thing: they never reach the program's text, files, argv or environment, and
live only in the caller, the launcher and the namespace's init A (root, not dumpable, hidden
from the program by hidepid, not signalable by its uid; B's copy of A's memory is gone at its
execve). A hands B the write end of a completion pipe as fd 3, and B runs `_RUNNER` rather than
`python -I solution.py`: before any program code, the runner moves that pipe to a close-on-exec
fd and closes 3 (so an exec of the interpreter, or a second run of the runner, has no channel);
it runs solution.py as `__main__` the way the interpreter would; only when that returns does it
flush stdout/stderr, write `_DONE` on the pipe and `_exit(0)`. When B ends, A reads the pipe
and, only for exactly `_DONE` and an exit status of 0, writes the secret on a report pipe that
B never holds and only the caller reads; `completed` is True when what came back equals the
secret and the run ended by itself. stdout and stderr play no part. Without the mount layer or
the uid drop no secret is sent and `completed` stays False. What this proves and what it
cannot (code written against this protocol): `core.metrics.code`'s docstring.
"""

from __future__ import annotations

import functools
import hmac
import json
import math
import os
import platform
import random
import secrets
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
# What of the host the program's root holds (read-only), besides the interpreter's prefixes.
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_DEVICES = ("null", "zero", "full", "random", "urandom")
# pivot_root has no libc wrapper; its syscall number per machine (unknown: no mount layer).
_PIVOT_ROOT_NR = {"x86_64": 155, "amd64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41,
                  "ppc64le": 203, "ppc64": 203, "s390x": 217}.get(platform.machine(), 0)
_MEMORY_CHECK_S = 0.05  # how often the parent sums the run's resident memory
# The completion channel (see the module docstring): the fd the runner finds it at, and the one
# message that, followed by exit 0, makes the run's init release the secret.
_DONE_FD = 3
_DONE = "tuneboard: the program ran to its end\n"

# With `completion=True`, B runs this instead of `python -I solution.py`: it takes the completion
# pipe off fd 3 before the program runs (onto a close-on-exec fd: an exec, say `python -O` on an
# edited copy, loses it; a second run of this code, say from /proc/self/cmdline, finds nothing at
# 3), runs solution.py as __main__ as the interpreter would, and only when that returns writes the
# message and ends at once. An exception prints its traceback (without this frame) and exits 1;
# SystemExit passes through.
_RUNNER = r'''
import os, sys
def run():
    write, end = os.write, os._exit
    try:
        done = os.dup(%(fd)d)
        os.close(%(fd)d)
    except OSError:
        done = -1
    import builtins
    from importlib.machinery import SourceFileLoader
    path = os.path.abspath(%(script)r)
    main = type(sys)("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __builtins__=builtins,
                         __loader__=SourceFileLoader("__main__", path))
    sys.modules["__main__"] = main
    sys.argv[:] = [%(script)r]
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
    if done != -1:
        try:
            write(done, %(done)r)
        except OSError:
            pass
    end(0)
run()
''' % {"fd": _DONE_FD, "script": _SCRIPT, "done": _DONE.encode()}

# Runs as root in the fresh child ("L"): unshare, then (with the mount layer) fork the pid
# namespace's init ("A"), which builds the private root and forks the candidate ("B"): B sets
# its limits, drops privileges and execs. A reaps, and when B ends A exits, so the kernel kills
# and reaps whatever B left in the namespace; L passes B's ending on (its exit code, or the same
# signal) and turns a SIGTERM from the caller into SIGKILL for A. B is not pid 1 itself because
# pid 1 of a namespace ignores default-action signals sent from inside (a program's own
# os.kill, SIGXCPU). With completion, L and A hold the run's secret and A releases it (see the
# module docstring). Any failure before exec is written to err_fd (close-on-exec, so a successful
# exec closes it with nothing written) and the launcher exits 1.
_LAUNCHER = r'''
import ctypes, json, os, resource, signal, sys
cfg = json.loads(sys.argv[1])
err_fd = cfg["err_fd"]
secret = b""
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 1 << 14, 1 << 18, 1 << 21
KEEP = {"noexec": MS_NOEXEC, "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
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
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%dm,mode=%o,uid=%d,gid=%d" % (size_mb, mode, owner, owner))
def unescape(field):  # the kernel escapes space, tab, newline and backslash in mountinfo
    for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(esc, ch)
    return field
def read_only(top):
    # A recursive bind keeps submounts writable; remount each, keeping the flags a remount
    # may not drop (noexec, atime) and adding nosuid, nodev.
    with open("/proc/self/mountinfo") as f:
        mounts = [(unescape(line.split()[4]), line.split()[5].split(",")) for line in f]
    for point, options in mounts:
        if point == top or point.startswith(top + "/"):
            keep = sum(flag for name, flag in KEEP.items() if name in options)
            mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | keep)
def build_root(program, uid):
    os.umask(0o022)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # no propagation out
    root = cfg["workdir"]  # the new root's tmpfs covers the host work dir (our namespace only)
    new = lambda path: root + path
    tmpfs(root, 0o755, 1)
    for path, mode in cfg["scratch"]:
        tmpfs(new(path), mode, cfg["tmpfs_mb"])
    for path in cfg["binds"]:  # parents first
        if os.path.islink(path):
            os.makedirs(os.path.dirname(new(path)), exist_ok=True)
            os.symlink(os.readlink(path), new(path))
        elif os.path.isdir(path):
            os.makedirs(new(path), exist_ok=True)
            mount(path, new(path), None, MS_BIND | MS_REC)
            read_only(new(path))
    dev = new("/dev")
    tmpfs(dev, 0o755, 1)
    for name in cfg["devices"]:
        open(os.path.join(dev, name), "w").close()
        mount("/dev/" + name, os.path.join(dev, name), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    tmpfs(os.path.join(dev, "shm"), 0o1777, cfg["tmpfs_mb"])
    os.makedirs(new("/proc"), exist_ok=True)
    try:  # this pid namespace's own /proc; hidepid also hides A, which runs as root
        mount("proc", new("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    except OSError:
        pass  # an empty /proc then: still nothing of the host's
    tmpfs(new(cfg["workdir"]), 0o700, cfg["tmpfs_mb"], uid if uid is not None else 0)
    with open(new(os.path.join(cfg["workdir"], cfg["script"])), "wb") as f:
        f.write(program)
    if uid is not None:
        os.chown(new(os.path.join(cfg["workdir"], cfg["script"])), uid, uid)
    os.chdir(root)
    check(libc.syscall(cfg["pivot_root_nr"], b".", b"."), "pivot_root")
    check(libc.umount2(b".", 2), "detach the host root")  # MNT_DETACH
    os.chdir("/")
    for path in ("/", "/dev"):
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
def become_candidate(uid, done_w=-1):
    global err_fd
    os.close(cfg["report_fd"])
    if done_w != -1:  # the completion pipe goes to fd DONE_FD, the one number the runner knows
        if err_fd == cfg["done_fd"]:
            err_fd = os.dup(err_fd)
        os.dup2(done_w, cfg["done_fd"])
        if done_w != cfg["done_fd"]:
            os.close(done_w)
        os.set_inheritable(cfg["done_fd"], True)
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
    os.execve(cfg["python"], [cfg["python"], "-I"] + cfg["argv"], cfg["env"])
def end_like(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
try:
    # The secret goes no further than this process and A (root, not dumpable: no ptrace, no
    # /proc/PID/mem); B holds a copy of A's memory only until its execve replaces it.
    check(libc.prctl(4, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE, 0)")
    if cfg["secret_fd"] is not None:
        secret = os.read(cfg["secret_fd"], 64)
        os.close(cfg["secret_fd"])
    with open(os.path.join(cfg["workdir"], cfg["script"]), "rb") as f:
        program = f.read()
    if cfg["unshare"]:
        check(libc.unshare(cfg["unshare"]), "unshare")
    uid = cfg["uid"]
    if not cfg["mountns"]:
        become_candidate(uid)
    status_r, status_w = os.pipe()
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    init = os.fork()
    if init:  # L
        try:
            os.close(err_fd)
            os.close(status_w)
            signal.signal(signal.SIGTERM, lambda *_: os.kill(init, signal.SIGKILL))
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
            os.waitid(os.P_PID, init, os.WEXITED | os.WNOWAIT)  # A is a zombie now: its pid stays
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])  # no kill after the reap
            _, status = os.waitpid(init, 0)
            told = os.read(status_r, 32)
            end_like(int(told) if told else status)
        except BaseException:
            os._exit(1)  # err_fd is closed here; the caller's kill and sweep still clean up
    # A: pid 1 of the run's namespace
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    os.close(status_r)
    build_root(program, uid)
    done_r, done_w = os.pipe() if secret else (-1, -1)
    candidate = os.fork()
    if candidate == 0:  # B
        os.close(status_w)
        if done_r != -1:
            os.close(done_r)
        become_candidate(uid, done_w)
    os.close(err_fd)
    if done_w != -1:
        os.close(done_w)
        os.set_blocking(done_r, False)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == candidate:
            # Release the secret only for the runner's exact message followed by a clean exit 0.
            try:
                told = os.read(done_r, len(cfg["done"]) + 1) if done_r != -1 else b""
            except BlockingIOError:
                told = b""
            if secret and told == cfg["done"].encode() and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                os.write(cfg["report_fd"], secret)
            os.write(status_w, b"%d" % status)
            os._exit(0)
except BaseException as exc:
    os.write(err_fd, ("sandbox setup failed: %r" % (exc,)).encode())
    os._exit(1)
'''

# Probes each layer in throwaway children of a throwaway process; prints a JSON dict.
_PROBE = r'''
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
test_uid, scratch, pivot_nr = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
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
def private_root():
    # As run_python does it: new mount and pid namespaces, then pid 1 there builds a tmpfs root
    # with its own /proc and pivots into it.
    if pivot_nr <= 0 or libc.unshare(0x00020000 | 0x20000000) != 0:
        return False
    pid = os.fork()
    if pid == 0:
        ok = (os.getpid() == 1
              and libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None) == 0
              and libc.mount(b"tmpfs", scratch.encode(), b"tmpfs", 6, b"size=1m") == 0)
        if ok:
            os.mkdir(scratch + "/proc")
            libc.mount(b"proc", (scratch + "/proc").encode(), b"proc", 14, b"hidepid=2")
            os.chdir(scratch)
            ok = (libc.syscall(pivot_nr, b".", b".") == 0 and libc.umount2(b".", 2) == 0
                  and os.listdir("/") == ["proc"])
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return status == 0
def setuid():
    os.setgroups([]); os.setgid(test_uid); os.setuid(test_uid)
    return os.getuid() == test_uid
root = os.geteuid() == 0
print(json.dumps({
    "root": root,
    "netns": attempt(netns) if root else False,
    "userns_netns": attempt(userns_netns),
    "mountns": attempt(private_root) if root else False,
    "setuid": attempt(setuid) if root else False,
}))
'''


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed run did. `passed` is `status == "passed"`; `reason` says why the run
    ended, in a sentence a person can read (never the harness's traceback)."""

    status: str
    passed: bool
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    reason: str = ""
    completed: bool = False  # with completion=True: the run's secret came back (see the module docstring)


@functools.lru_cache(maxsize=1)
def sandbox_capabilities() -> dict:
    """Which containment layers work on this machine (probed once, in throwaway processes).

    Keys: root, netns (network namespace, root), userns_netns (unprivileged fallback), mountns
    (private mount and pid namespaces with a private root: tmpfs + pivot_root), setuid (drop to
    a per-run uid), network_isolated (whichever of the namespace routes `run_python` will use
    works), uid_range.
    """
    test_uid = _pick_uid()
    scratch = tempfile.mkdtemp(prefix="tuneboard-sandbox-probe-")
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _PROBE, str(test_uid), scratch,
                               str(_PIVOT_ROOT_NR)],
                              capture_output=True, text=True, timeout=30, env=_ENV)
        caps = json.loads(done.stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        caps = {"root": os.geteuid() == 0, "netns": False, "userns_netns": False,
                "mountns": False, "setuid": False, "probe_error": repr(exc)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _kill_uid(test_uid)
    caps["network_isolated"] = caps["netns"] if caps["root"] else caps["userns_netns"]
    caps["uid_range"] = _UID_RANGE
    return caps


def run_python(code: str, test: str = "", timeout_s: float = 5.0, memory_mb: int = 512,
               max_processes: int = 16, max_file_mb: int = 8,
               max_output_kb: int = 64, completion: bool = False) -> SandboxResult:
    """Run `code + "\\n" + test` (e.g. a HumanEval candidate and its check) contained; see the
    module docstring for the layers and statuses. Never raises for anything the code does.

    completion: run the program under the sandbox's runner and say in `completed` whether it
    ran to its end (its last line returned), attested by a fresh per-run secret; see the module
    docstring for what that does and does not prove."""
    caps = sandbox_capabilities()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tuneboard-sandbox-"))
    uid = _pick_uid() if caps["setuid"] else None
    # Attested only where the run has an init of its own (root, outside the program's uid) to
    # hold the secret: with the mount layer and the uid drop.
    attest = completion and caps["mountns"] and uid is not None
    secret = _new_secret() if attest else b""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    err_r, err_w = os.pipe()
    report_r, report_w = os.pipe()
    secret_r = -1
    if attest:  # a one-shot pipe: written and closed here, read and closed by the launcher
        secret_r, secret_w = os.pipe()
        os.write(secret_w, secret)
        os.close(secret_w)
    reported = b""
    proc = None
    cpu = max(1, math.ceil(timeout_s))
    ended = "interrupted"  # then "exited", "timeout" or "memory": why the wait stopped
    usage = None
    try:
        (workdir / _SCRIPT).write_text(code + "\n" + test + "\n", encoding="utf-8")
        if uid is not None and not caps["mountns"]:
            # No private root: the candidate works in the host directory, so it must own it.
            os.chown(workdir, uid, uid)
            os.chown(workdir / _SCRIPT, uid, uid)
        config = {
            "err_fd": err_w, "workdir": str(workdir), "script": _SCRIPT, "uid": uid,
            "argv": ["-c", _RUNNER] if completion else [_SCRIPT],
            "report_fd": report_w, "secret_fd": secret_r if attest else None,
            "done_fd": _DONE_FD, "done": _DONE,
            "python": sys.executable, "env": _ENV,
            "unshare": _unshare_flags(caps), "mountns": caps["mountns"],
            "binds": _root_binds(), "devices": _DEVICES,
            "scratch": [("/tmp", 0o1777), ("/var/tmp", 0o1777)],
            "pivot_root_nr": _PIVOT_ROOT_NR,
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
        from core.jobs.launchers import JOB_ENV

        # The launcher and the run's init carry the job's name (the program gets `_ENV` only): a job that is
        # ended (its worker killed) ends its runs with it, and the kernel then ends the run's namespace.
        job = {JOB_ENV: os.environ[JOB_ENV]} if JOB_ENV in os.environ else {}
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            pass_fds=(err_w, report_w) + ((secret_r,) if attest else ()),
            cwd=workdir, env={**_ENV, **job}, start_new_session=True)
        os.close(err_w)
        err_w = -1
        ended = _wait(proc.pid, started + timeout_s, uid, memory_mb * 2**20)
    finally:
        for fd in (err_w, report_w, secret_r):
            if fd != -1:
                os.close(fd)
        if proc is not None:
            if ended != "exited" and caps["mountns"]:
                _ask_to_stop(proc.pid)
            # The launcher is at most a zombie by now (not reaped), so its group id is still its
            # own: this reaches whatever of the run kept the group, never a stranger.
            _kill_group(proc.pid)
            _, wait_status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(wait_status)
        if uid is not None:
            _kill_uid(uid)
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    with os.fdopen(err_r, "rb") as pipe:
        setup_error = pipe.read().decode("utf-8", "replace")
    os.set_blocking(report_r, False)  # the launcher is reaped; the init may be dying still
    try:
        reported = os.read(report_r, 64)
    except BlockingIOError:
        pass
    finally:
        os.close(report_r)
    proven = attest and ended == "exited" and bool(reported) and hmac.compare_digest(reported, secret)
    stdout, stderr = _read_capped(out, max_output_kb), _read_capped(err, max_output_kb)
    rc = proc.returncode
    cpu_s = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
    last = _last_line(stderr)
    if setup_error:
        status, stderr, reason = "error", setup_error, setup_error
    elif ended == "timeout":
        status, reason = "timeout", (f"timed out: still running after {timeout_s:g} s (wall clock); "
                                     "all its processes were killed")
    elif ended == "memory":
        status, reason = "memory", (f"out of memory: its processes together used more than {memory_mb} MB; "
                                    "all of them were killed")
    elif rc == -signal.SIGXCPU or (rc == -signal.SIGKILL and cpu_s >= cpu):
        status, reason = "timeout", f"timed out: used up its {cpu} s of CPU time"
    elif rc == 0:
        status, reason = "passed", "exited with code 0"
        if completion and not attest:
            reason += " (whether it ran to its end cannot be told on this host)"
        elif completion and not proven:
            reason += " before its end (it did not finish its last line)"
    elif last.startswith("MemoryError"):
        status, reason = "memory", f"out of memory: MemoryError at the {memory_mb} MB limit"
    elif rc == -signal.SIGKILL:
        status, reason = "memory", "killed (SIGKILL) before its time limit, most likely out of memory"
    elif rc < 0:
        status, reason = "failed", f"killed by signal {_signal_name(-rc)}"
    else:
        status, reason = "failed", f"exited with code {rc}" + (f": {last[:200]}" if last else "")
    return SandboxResult(status=status, passed=status == "passed", returncode=rc,
                         stdout=stdout, stderr=stderr, seconds=seconds, reason=reason,
                         completed=proven and status == "passed")


def _new_secret() -> bytes:
    """128 fresh random bits per run (a function so tests can plant a known one)."""
    return secrets.token_bytes(16)


def processes_of_uid(uid: int) -> list[int]:
    """Pids whose real or effective uid is `uid` (from /proc), to check nothing was left."""
    return [pid for pid, _ in _uid_processes(uid)]


def _uid_processes(uid: int) -> list[tuple[int, int]]:
    """(pid, resident bytes) of every process whose real or effective uid is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                mine, rss = False, 0
                for line in f:
                    if line.startswith("Uid:"):
                        real, effective = (int(x) for x in line.split()[1:3])
                        mine = uid in (real, effective)
                        if not mine:
                            break
                    elif line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
                if mine:
                    found.append((int(entry), rss))
        except (OSError, ValueError):
            continue  # exited while we looked
    return found


def _exited(pid: int) -> bool:
    """Whether the child `pid` has ended, without reaping it (so its pid is not reused yet)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait(pid: int, deadline: float, uid: int | None, memory_bytes: int) -> str:
    """Wait for the launcher until `deadline`, summing the run's resident memory every
    `_MEMORY_CHECK_S` (RLIMIT_AS bounds each process, not the forks together). Returns why the
    wait ended: "exited", "timeout" or "memory"."""
    delay, next_check = 0.0005, time.monotonic() + _MEMORY_CHECK_S
    while not _exited(pid):
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        if uid is not None and now >= next_check:
            if sum(rss for _, rss in _uid_processes(uid)) > memory_bytes:
                return "memory"
            next_check = now + _MEMORY_CHECK_S
        delay = min(delay * 2, 0.02)
        time.sleep(min(delay, max(deadline - now, 0)))
    return "exited"


def _ask_to_stop(pid: int, grace_s: float = 1.0) -> None:
    """SIGTERM to the launcher, which SIGKILLs the pid namespace's init: the kernel then kills
    every process of the run and reaps them, leaving no zombie to the host's init. The caller
    SIGKILLs the group after `grace_s` either way."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while not _exited(pid) and time.monotonic() < deadline:
        time.sleep(0.002)


def _unshare_flags(caps: dict) -> int:
    if caps["root"]:  # CLONE_NEWNET; CLONE_NEWNS | CLONE_NEWPID
        return (0x40000000 if caps["netns"] else 0) | (0x00020000 | 0x20000000 if caps["mountns"] else 0)
    return 0x10000000 | 0x40000000 if caps["userns_netns"] else 0


def _interpreter_paths() -> list[str]:
    return sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                                 os.path.dirname(os.path.realpath(sys.executable)))})


def _root_binds() -> list[str]:
    """Host paths the private root holds (read-only), parents first, none inside another."""
    kept: list[str] = []
    for path in sorted({*(p for p in _SYSTEM_PATHS if os.path.lexists(p)), *_interpreter_paths()},
                       key=lambda p: (p.count("/"), p)):
        if not any(path == k or path.startswith(k + "/") for k in kept if not os.path.islink(k)):
            kept.append(path)
    return kept


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


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
