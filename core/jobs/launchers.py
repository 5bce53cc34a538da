"""Where a worker runs: the seam between job records and processes.

- `LocalLauncher()`: `python -m MODULE RUN_DIR` as a child process in its own session
  (the default; one machine).
- `LocalLauncher(accelerate_command(...))`: the same worker under `accelerate launch`, for
  several GPUs on one host (DDP, FSDP or DeepSpeed; the config file is written into the run
  folder for the user to read and reuse). Only rank 0 writes events.
- Many machines: a Ray launcher implements the same three methods with Ray Jobs
  (`JobSubmissionClient.submit_job(entrypoint="python -m MODULE RUN_DIR", runtime_env=...)`,
  `get_job_status`, `stop_job`) with the run folder on shared storage; nothing else changes,
  because a worker needs only its run folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Protocol

from core.jobs.events import LOG_FILE

Command = Callable[[str, Path], list[str]]
STRATEGIES = ("cpu", "ddp", "fsdp", "deepspeed")


class Launcher(Protocol):
    def start(self, job_id: str, module: str, run_dir: Path) -> int: ...

    def alive(self, job_id: str, pid: int | None) -> bool: ...

    def stop(self, job_id: str, pid: int | None) -> None: ...


def python_command(module: str, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", module, str(run_dir)]


def accelerate_config(strategy: str, num_processes: int) -> str:
    """An `accelerate launch` config (YAML) for one host."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    lines = ["compute_environment: LOCAL_MACHINE", "machine_rank: 0", "num_machines: 1",
             f"num_processes: {num_processes}", "main_training_function: main", "rdzv_backend: static",
             "same_network: true"]
    if strategy == "cpu":
        lines += ["distributed_type: NO" if num_processes == 1 else "distributed_type: MULTI_CPU", "use_cpu: true",
                  "mixed_precision: 'no'"]
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
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TUNEBOARD_JOB_ID": job_id}
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
