"""Where a worker runs: the seam between job records and processes.

- `LocalLauncher()`: `python -m MODULE RUN_DIR` as a child process in its own session
  (the default; one machine).
- `LocalLauncher(accelerate_command(...))`: the same worker under `accelerate launch`, for
  several GPUs on one host (DDP, FSDP or DeepSpeed; the config file is written into the run
  folder for the user to read and reuse). Only rank 0 writes events.
- `RayJobsLauncher(address)`: many machines. The same `python -m MODULE RUN_DIR` is submitted
  as a Ray job to the cluster whose dashboard listens at `address`; the run folder must be on
  storage every node mounts at the same path (NFS, a shared disk; on a one-node cluster, the
  local disk). Nothing else changes, because a worker needs only its run folder.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from core.jobs.events import LOG_FILE

log = logging.getLogger(__name__)

Command = Callable[[str, Path], list[str]]
STRATEGIES = ("cpu", "ddp", "fsdp", "deepspeed")


class Launcher(Protocol):
    def start(self, job_id: str, module: str, run_dir: Path) -> int: ...

    def alive(self, job_id: str, pid: int | None) -> bool: ...

    def stop(self, job_id: str, pid: int | None) -> None:
        """Ask the worker to stop (it saves what it must and says 'cancelled')."""

    def end(self, job_id: str, pid: int | None) -> int:
        """Kill the worker and everything it started, at once; how many processes were ended."""


class WorkerLost(Exception):
    """From `Launcher.alive`: the launcher can no longer tell whether the worker runs and has given up on
    it; the message says why (the job is failed with it)."""


# Every worker's environment names its job; whatever the worker starts inherits it, also a process
# that leaves the worker's session or is reparented to init when the worker dies (vLLM's engine).
JOB_ENV = "TUNEBOARD_JOB_ID"


def job_processes(job_id: str) -> list[int]:
    """The processes of this machine started for job `job_id`: the worker and all it started."""
    tag = f"{JOB_ENV}={job_id}\0".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()  # empty for a zombie: it holds nothing
        except OSError:
            continue
        if environ.startswith(tag) or b"\0" + tag in environ:
            found.append(int(entry.name))
    return found


def _start_time(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot), or None when it is gone or a zombie (it holds nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def end_job_processes(job_id: str, timeout: float = 10.0) -> int:
    """SIGKILL to every process of job `job_id` until none is left (or `timeout` seconds pass).

    A killed process's environment reads empty while it is still tearing down its memory (a vLLM engine's
    takes seconds on a busy host), so it no longer looks like the job's: each one killed is also waited
    for until it is gone or a zombie, so that its memory is free when this returns."""
    ended: dict[int, str | None] = {}  # pid -> its start time, so that a reused pid is not waited on
    refused: set[int] = set()  # another user's process (the sandbox's): not ours to end
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in job_processes(job_id) if p not in refused]
        dying = [p for p, started in ended.items() if started is not None and _start_time(p) == started]
        if not pids and not dying:
            break
        for pid in pids:
            started = _start_time(pid)
            try:
                os.kill(pid, signal.SIGKILL)
                ended.setdefault(pid, started)
            except ProcessLookupError:
                pass
            except PermissionError:
                refused.add(pid)
        time.sleep(0.05)
    else:
        log.warning("job %s: processes %s outlived the end of their job", job_id,
                    sorted(set(job_processes(job_id)) - refused))
    if refused:
        log.warning("job %s: processes %s are another user's and outlived the end of their job", job_id,
                    sorted(refused))
    return len(ended)


def python_command(module: str, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", module, str(run_dir)]


def accelerate_config(strategy: str, num_processes: int) -> str:
    """An `accelerate launch` config (YAML) for one host."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    lines = ["compute_environment: LOCAL_MACHINE", "machine_rank: 0", "num_machines: 1",
             f"num_processes: {num_processes}", "main_training_function: main", "rdzv_backend: static",
             "same_network: true"]
    if strategy == "cpu" and num_processes == 1:
        lines += ["distributed_type: NO", "use_cpu: true", "mixed_precision: 'no'"]
    elif strategy == "cpu":
        # Several ranks on one CPU host: accelerate's torchrun launcher (its MULTI_CPU type would want
        # mpirun); with use_cpu each rank's trainer joins a gloo process group (DDP on the CPU).
        lines += ["distributed_type: MULTI_GPU", "use_cpu: true", "mixed_precision: 'no'"]
    elif strategy == "ddp":
        lines += ["distributed_type: MULTI_GPU", "mixed_precision: bf16", "gpu_ids: all"]
    elif strategy == "fsdp":
        lines += ["distributed_type: FSDP", "mixed_precision: bf16", "fsdp_config:",
                  "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP", "  fsdp_sharding_strategy: FULL_SHARD",
                  "  fsdp_state_dict_type: SHARDED_STATE_DICT", "  fsdp_use_orig_params: true",
                  "  fsdp_cpu_ram_efficient_loading: true", "  fsdp_sync_module_states: true"]
    else:
        lines += ["distributed_type: DEEPSPEED", "mixed_precision: bf16", "deepspeed_config:",
                  "  zero_stage: 2", "  offload_optimizer_device: none", "  offload_param_device: none",
                  "  gradient_accumulation_steps: auto", "  zero3_init_flag: false"]
    return "\n".join(lines) + "\n"


def accelerate_command(strategy: str, num_processes: int) -> Command:
    def command(module: str, run_dir: Path) -> list[str]:
        config = run_dir / "accelerate.yaml"
        config.write_text(accelerate_config(strategy, num_processes))
        return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                "-m", module, str(run_dir)]
    return command


class LocalLauncher:
    """Workers as processes of this machine, each leading its own process group."""

    def __init__(self, command: Command = python_command) -> None:
        self.command = command
        self._procs: dict[str, subprocess.Popen] = {}

    def start(self, job_id: str, module: str, run_dir: Path) -> int:
        log = open(run_dir / LOG_FILE, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", JOB_ENV: job_id}
        proc = subprocess.Popen(self.command(module, run_dir), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=os.getcwd())
        log.close()
        self._procs[job_id] = proc
        return proc.pid

    def alive(self, job_id: str, pid: int | None) -> bool:
        proc = self._procs.get(job_id)
        if proc is not None:
            return proc.poll() is None  # also reaps a finished child
        if not pid:
            return False
        # A worker started by an earlier owner: check that the pid still runs this job.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return job_id in cmdline

    def stop(self, job_id: str, pid: int | None) -> None:
        """SIGTERM to the worker's whole group (accelerate's ranks included)."""
        if pid and self.alive(job_id, pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def end(self, job_id: str, pid: int | None) -> int:
        """SIGKILL to the worker and every process it started, wherever they went (see `job_processes`)."""
        ended = end_job_processes(job_id)
        proc = self._procs.pop(job_id, None)
        if proc is not None:
            proc.poll()  # reap it
        return ended


# Environment a worker reads besides its run folder, passed on to Ray jobs when the owner has it
# set. The cluster's nodes have their own environment; these keep a worker behaving the same as a
# local one (thread counts measured on these hosts, offline hub, vLLM's CPU cache size).
RAY_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM", "HF_HOME", "HF_HUB_OFFLINE",
                "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "VLLM_CPU_KVCACHE_SPACE", "PYTORCH_CUDA_ALLOC_CONF")
RAY_JOB_FILE = "ray_job.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding `core/`, for the workers' PYTHONPATH


class RayJobsLauncher:
    """Workers as Ray jobs on a cluster (Ray Jobs API, through the dashboard at `address`).

    Requirements on the cluster, because a worker needs only its run folder and `core`:
    - the runs folder is shared storage, mounted at the same path on every node;
    - the project (`PROJECT_ROOT`) is at the same path on every node (shared storage or the same
      image): it goes on PYTHONPATH; nothing is uploaded (no `working_dir`), so large run
      folders never travel through Ray's object store;
    - `python` on the nodes has tuneboard's dependencies (default: the `python` on the PATH of
      the node's Ray processes).

    The jobs table stores an int pid, so `start` picks a random positive 31-bit token, names the
    Ray submission `tuneboard-<job_id>-<token>` and returns the token: `alive` and `stop` rebuild
    the submission id from (job_id, pid) without reading the run folder, and a resumed job (a new
    submission, a new token) is never confused with its earlier run. The id is also written to
    `ray_job.json` in the run folder for people (`ray job logs <id>`).

    If the cluster cannot be reached, `alive` says yes (and logs a warning) for up to
    `unreachable_grace_s`: a network blip must not mark a healthy run failed; past it, `alive`
    raises WorkerLost and the run is failed with the reason (a dead cluster must not leave a run
    "running" for ever). A cluster that restarted has forgotten its jobs, and a job it does not
    know is reported dead, so the next reconcile marks it failed then. `stop` never
    raises: `Jobs.cancel` has already written the cancel request into the run folder, which the
    worker obeys on its own.

    Note: Ray's client lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS in the environment override
    `address`.
    """

    ALIVE = ("PENDING", "RUNNING")

    def __init__(self, address: str, python: str = "python", stop_grace_s: int = 30,
                 timeout_s: float = 10.0, env_vars: tuple[str, ...] = RAY_ENV_VARS,
                 unreachable_grace_s: float = 300.0) -> None:
        self.address = address.rstrip("/")
        self.python, self.stop_grace_s, self.timeout_s, self.env_vars = python, stop_grace_s, timeout_s, env_vars
        self.unreachable_grace_s = unreachable_grace_s
        self._unreachable_since: dict[str, float] = {}  # job id -> when the cluster first did not answer
        self._client_cache: Any = None

    @staticmethod
    def submission_id(job_id: str, pid: int) -> str:
        return f"tuneboard-{job_id}-{pid}"

    def _client(self) -> Any:
        """The Jobs API client, made on first use (it connects when made; ray is imported only here)."""
        if self._client_cache is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError:
                raise OSError("training.launcher is 'ray' but the ray package is not installed here; "
                              "install it with `pip install 'ray[default]'` (the version the cluster runs).") from None
            timeout = self.timeout_s

            class _Client(JobSubmissionClient):
                # Ray's client sends its requests without a timeout; an unresponsive dashboard would
                # block the owner's reconcile loop (and with it every job's ingestion).
                def _do_request(self, *args: Any, **kwargs: Any) -> Any:
                    kwargs.setdefault("timeout", timeout)
                    return super()._do_request(*args, **kwargs)

            for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
                if os.environ.get(name, self.address).rstrip("/") != self.address:
                    log.warning("%s=%s overrides training.ray_address=%s for Ray's job client", name,
                                os.environ[name], self.address)
            self._client_cache = _Client(self.address)
        return self._client_cache

    def _env(self, job_id: str) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.env_vars if name in os.environ}
        pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        # RAY_JOB_STOP_WAIT_TIME_S: the time Ray's job supervisor gives SIGTERM before SIGKILL (default 3 s),
        # enough for a training worker to save its checkpoint.
        return {**env, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1", "TUNEBOARD_JOB_ID": job_id,
                "RAY_JOB_STOP_WAIT_TIME_S": str(self.stop_grace_s)}

    def start(self, job_id: str, module: str, run_dir: Path) -> int:
        """Submit the worker; raises OSError (Jobs marks the job failed) if the cluster refuses it."""
        run_dir = Path(run_dir).resolve()
        pid = secrets.randbelow(2**31 - 2) + 1
        submission_id = self.submission_id(job_id, pid)
        # Output goes to the run folder's log, as with a local worker: the owner shows its tail on failure.
        entrypoint = (f"exec {shlex.quote(self.python)} -m {shlex.quote(module)} {shlex.quote(str(run_dir))} "
                      f">> {shlex.quote(str(run_dir / LOG_FILE))} 2>&1")
        try:
            self._client().submit_job(entrypoint=entrypoint, submission_id=submission_id,
                                      runtime_env={"env_vars": self._env(job_id)})
        except OSError as exc:
            self._client_cache = None
            raise OSError(f"the Ray cluster at {self.address} cannot be reached ({exc}); "
                          "check training.ray_address and that the head node's dashboard is up") from None
        except RuntimeError as exc:  # the job server answered with an error
            raise OSError(f"the Ray cluster at {self.address} refused the job: {exc}") from None
        (run_dir / RAY_JOB_FILE).write_text(json.dumps(
            {"address": self.address, "submission_id": submission_id, "entrypoint": entrypoint,
             "submitted_at": time.time()}, indent=2))
        return pid

    def alive(self, job_id: str, pid: int | None) -> bool:
        if not pid:
            return False
        try:
            status = self._client().get_job_status(self.submission_id(job_id, pid))
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                self._unreachable_since.pop(job_id, None)
                return False  # the cluster does not know it (finished and deleted, or the cluster restarted)
            log.warning("Ray at %s could not report job %s (%s); treating it as running", self.address, job_id, exc)
            return True
        except OSError as exc:
            self._client_cache = None
            since = self._unreachable_since.setdefault(job_id, time.monotonic())
            if time.monotonic() - since > self.unreachable_grace_s:
                raise WorkerLost(
                    f"the Ray cluster at {self.address} could not be reached for {self.unreachable_grace_s:.0f} s "
                    f"(training.ray_unreachable_grace_s; last: {exc}), so the run is ended as failed. If its worker "
                    "still runs there, the events it writes are taken in and shown; the run stays failed.") from None
            log.warning("Ray at %s is unreachable (%s); treating job %s as running", self.address, exc, job_id)
            return True
        self._unreachable_since.pop(job_id, None)
        return str(getattr(status, "value", status)) in self.ALIVE

    def stop(self, job_id: str, pid: int | None) -> None:
        """Ask Ray to stop the job: SIGTERM, then SIGKILL after `stop_grace_s`."""
        if not pid:
            return
        try:
            self._client().stop_job(self.submission_id(job_id, pid))
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, OSError):
                self._client_cache = None
            log.warning("Ray at %s could not stop job %s (%s); the worker still sees the cancel request "
                        "in its run folder", self.address, job_id, exc)

    def end(self, job_id: str, pid: int | None) -> int:
        """Ray ends a stopped job's whole process tree on its node (after `stop_grace_s`)."""
        try:
            running = self.alive(job_id, pid)
        except WorkerLost:
            running = True  # ask anyway: the cluster may answer again
        if running:
            self.stop(job_id, pid)
        self._unreachable_since.pop(job_id, None)
        return 0
