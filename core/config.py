"""Settings: `tuneboard.toml` plus `TUNEBOARD_<SECTION>_<KEY>` environment overrides.

One dataclass per concern; each field carries its help text and allowed range in its
metadata, so the documented defaults (`tuneboard config`), validation and the UI all read
the same place. Loading collects every problem and raises one ConfigError naming each field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.fields import fields_of, out_of_range, setting

CONFIG_ENV = "TUNEBOARD_CONFIG"
DEFAULT_CONFIG_FILE = "tuneboard.toml"


@dataclass
class WorkspaceSettings:
    path: str = setting("workspace", "Folder holding the database, run folders, models and exports.")
    database: str = setting("tuneboard.duckdb", "DuckDB file name inside the workspace.")


@dataclass
class ModelSettings:
    base: str = setting(
        "", "Base model: a Hugging Face id or a local folder. Empty means the offline demo model "
        "(SmolLM2-135M-Instruct built into the workspace by `tuneboard demo`).")


@dataclass
class DataSettings:
    split: list = setting([0.8, 0.1, 0.1], "Train / validation / test fractions (sum to 1).")
    seed: int = setting(13, "Seed of the split; the same content and seed give the same version.",
                        min=0, max=2**31 - 1)
    max_seq_len: int = setting(512, "Token budget per example; longer examples are counted as truncated.",
                               min=16, max=131072)
    near_duplicate_threshold: float = setting(
        0.8, "Estimated Jaccard similarity (MinHash over word 3-grams) at which two examples "
        "count as near-duplicates.", min=0.3, max=1.0)
    max_upload_mb: int = setting(200, "Largest dataset file accepted, in MiB.", min=1, max=100_000)


@dataclass
class TrainingSettings:
    hourly_price: float = setting(0.0, "Price of one hour of this machine (or one GPU-hour), for the cost "
                                  "estimate before a launch; 0 hides the cost.", min=0.0, max=10_000.0)
    currency: str = setting("USD", "Currency of hourly_price.")
    launcher: str = setting("local", "Where training workers run: local (a process on this machine), "
                            "accelerate (`accelerate launch`, several GPUs on one host) or ray (a Ray job on the "
                            "cluster at ray_address; the workspace and the project must be on storage every node "
                            "mounts at the same path).",
                            choices=("local", "accelerate", "ray"))
    accelerate_strategy: str = setting("fsdp", "With launcher = accelerate: ddp, fsdp or deepspeed (ZeRO-2) on "
                                       "GPUs, or cpu; the config is written into each run folder.",
                                       choices=("cpu", "ddp", "fsdp", "deepspeed"))
    num_processes: int = setting(1, "With launcher = accelerate: processes (usually one per GPU).", min=1, max=1024)
    ray_address: str = setting("http://127.0.0.1:8265", "With launcher = ray: the Ray dashboard's address on the "
                               "head node (Jobs API), e.g. http://head-node:8265. RAY_ADDRESS in the environment "
                               "overrides it.")
    ray_unreachable_grace_s: int = setting(300, "With launcher = ray: seconds the cluster may not answer before a "
                                           "run on it is ended as failed (events its worker writes later are "
                                           "still taken in; the run stays failed).", min=10, max=86_400)
    demo_steps: int = setting(30, "Optimizer steps of the demo's fine-tune of SmolLM2 (minutes on 2 cores).",
                              min=1, max=100_000)
    demo_threads: int = setting(0, "CPU threads of torch in the demo's fine-tune (0 = every core: nothing else "
                                "runs while the demo builds).", min=0, max=4096)


@dataclass
class TrackingSettings:
    """Experiment trackers that training runs report to (the optional extra: pip install -e '.[tracking]')."""

    mlflow_tracking_uri: str = setting("", "MLflow tracking server or store, e.g. http://mlflow:5000 or "
                                       "file:///data/mlruns; empty: off. Each training run logs its curves there, "
                                       "its config as parameters and its lineage as tags.")
    mlflow_experiment: str = setting("tuneboard", "MLflow experiment the training runs are logged under.")
    wandb_project: str = setting("", "Weights & Biases project the training runs log to; empty: off. The key "
                                 "comes from WANDB_API_KEY in the environment.")
    wandb_entity: str = setting("", "W&B team or user the project belongs to; empty: the key's default.")
    wandb_mode: str = setting("online", "online, or offline: written into the run folder only (`wandb sync "
                              "RUN_DIR/wandb/offline-run-*` uploads it later).", choices=("online", "offline"))


@dataclass
class ServerSettings:
    host: str = setting("localhost", "Address the dashboard listens on.")
    port: int = setting(8501, "Port of the dashboard.", min=1, max=65535)
    cancel_grace_s: int = setting(300, "Seconds a cancelled job's worker has to stop (save a checkpoint, shut its "
                                  "engine down) before it and every process it started are killed.",
                                  min=1, max=86_400)


@dataclass
class ServingSettings:
    path: str = setting("auto", "How base and adapters are served for generation sets: auto (measured once per host "
                        "and model, the fastest estimate wins), vllm-lora (one multi-LoRA vLLM engine), vllm-merged "
                        "(one plain vLLM engine; adapters merged and their weights reloaded into it in place) or "
                        "transformers (+ PEFT).",
                        choices=("auto", "vllm-lora", "vllm-merged", "transformers"))
    batch_size: int = setting(16, "Prompts per batch on the transformers path (left-padded).", min=1, max=4096)
    threads: int = setting(0, "CPU threads of torch in generation workers (0 = every core, as vLLM's engine "
                           "takes them).", min=0, max=4096)
    chunk: int = setting(64, "Requests per progress step; a resumed set redoes at most one chunk.", min=1,
                         max=100_000)
    max_model_len: int = setting(2048, "Longest prompt + output a vLLM engine accepts (tokens).", min=64,
                                 max=1_048_576)
    compile: bool = setting(False, "Let vLLM compile its graphs (torch.compile): a much slower engine start "
                            "(about 2 minutes for SmolLM2 on 2 cores), faster generation.")
    kv_cache_gib: int = setting(2, "KV cache of a vLLM engine on a CPU host, GiB (VLLM_CPU_KVCACHE_SPACE).",
                                min=1, max=1024)
    gpu_memory_utilization: float = setting(0.85, "Share of GPU memory a vLLM engine may take.", min=0.1, max=0.99)
    tensor_parallel_size: int = setting(1, "GPUs one vLLM engine spans (tensor parallelism).", min=1, max=64)
    parity_sample: int = setting(8, "Prompts per variant whose vLLM greedy output is checked against PEFT "
                                 "in-process (0 turns the check off).", min=0, max=100_000)
    calibration_prompts: int = setting(16, "Prompts in the one-off calibration that times each serving path.",
                                       min=2, max=1024)
    server_port: int = setting(8000, "Port of the vLLM OpenAI-compatible server (`tuneboard serve-models`, "
                               "the Playground).", min=1, max=65535)


@dataclass
class ReviewSettings:
    raters_per_pair: int = setting(3, "Raters who see each pair (an overlap of 2 or more gives agreement statistics).",
                                   min=1, max=100)
    gold_rate: float = setting(0.1, "Share of gold pairs (a known-better answer) mixed into each pair set.",
                               min=0.0, max=0.5)
    bootstrap_rounds: int = setting(1000, "Bootstrap rounds of the Bradley-Terry confidence intervals.",
                                    min=100, max=100_000)
    confidence: float = setting(0.95, "Confidence level of every interval on the Results page.", min=0.5,
                                max=0.999)
    alpha: float = setting(0.05, "Significance level of the sign tests and the rater checks.", min=0.001,
                           max=0.5)
    too_fast_seconds: float = setting(3.0, "A rater whose median time per vote is below this is flagged.",
                                      min=0.0, max=3600.0)
    judge_combine_min_agreement: float = setting(0.0, "Show a combined win rate (experts' votes, and a routing "
                                                 "judge's verdicts on the pairs it took) only when the lower bound "
                                                 "of the judge's measured agreement with experts is at least this "
                                                 "(0: never).", min=0.0, max=1.0)
    demo_prompts: int = setting(24, "Test-split prompts the demo generates with the base and its fine-tune for "
                                "the demo pair set.", min=2, max=100_000)
    min_vote_seconds: float = setting(0.5, "A vote sooner than this after its pair appeared is taken for a "
                                      "double click and ignored.", min=0.0, max=60.0)


@dataclass
class MetricsSettings:
    bootstrap_rounds: int = setting(1000, "Resampling rounds of the metric intervals and paired deltas (at least; "
                                    "raised to 50 / (1 - level) where an interval's level needs more).",
                                    min=100, max=100_000)
    confidence: float = setting(0.95, "Confidence level of every interval on the Metrics page.", min=0.5,
                                max=0.999)
    alpha: float = setting(0.05, "Family-wise significance level of the deltas vs the base on the declared "
                           "metrics (Bonferroni: their simultaneous intervals hold together at 1 - alpha).",
                           min=0.001, max=0.5)
    processes: int = setting(0, "Processes a scoring job uses (0: one per core).", min=0, max=256)
    pass_k: list = setting([1, 5, 10], "The k of pass@k shown for code tasks (each needs at least k samples "
                           "per prompt).")
    sandbox_timeout_s: float = setting(5.0, "Wall-clock limit of one sandboxed run of generated code.", min=0.5,
                                       max=600.0)
    sandbox_memory_mb: int = setting(512, "Address-space limit of one sandboxed run of generated code.", min=64,
                                     max=65_536)
    evaluate: dict = setting({}, "A team's Hugging Face evaluate metrics, each a table [metrics.evaluate.NAME] with "
                             "module (a local metric folder or script, relative to this file, or a hub name), and "
                             "optionally key, higher_is_better, bounds, help, arguments (README: Your own metrics).")


@dataclass
class RegressionSettings:
    max_drop_points: float = setting(5.0, "Most a category's accuracy may fall below the base's (percentage points) "
                                     "before the gate fails.", min=0.0, max=100.0)
    category_max_drop: str = setting("", "Per-category overrides of max_drop_points, e.g. 'safety=2, reasoning=8'.")
    max_pooled_drop_points: float = setting(2.0, "Most the accuracy over all items (each weighing the same) may fall "
                                            "below the base's (percentage points) before the gate fails, even when no "
                                            "single category does.", min=0.0, max=100.0)
    require_significance: bool = setting(True, "A drop past a limit fails the gate only when a one-sided test finds it "
                                         "past the limit (Holm over categories); otherwise the gate is inconclusive.")
    alpha: float = setting(0.05, "Significance level of the gate's one-sided tests (the category family after Holm, "
                           "and the pooled test).", min=0.001, max=0.5)
    min_items: int = setting(30, "A category with fewer items gives an inconclusive verdict.", min=1, max=100_000)
    confidence: float = setting(0.95, "Confidence level of the per-category accuracy intervals.", min=0.5,
                                max=0.999)
    demo_items: int = setting(0, "Items per category the demo's suite run answers (0: the whole suite; with 30 "
                              "a category is judged, but too loosely for the demo's gate to pass).", min=0,
                              max=100_000)
    demo_sweep_items: int = setting(10, "Items per category of the checkpoint sweep the demo starts in the "
                                    "background (0: no sweep).", min=0, max=100_000)


@dataclass
class AuthSettings:
    min_password_length: int = setting(10, "Shortest password accepted for new accounts.", min=8, max=128)
    session_hours: int = setting(12, "How long a browser stays signed in (a reload keeps the login).",
                                 min=1, max=24 * 30)
    token_days: int = setting(90, "How long a new personal API token lives unless its creator says otherwise.",
                              min=1, max=3650)
    max_token_days: int = setting(365, "The longest life a personal API token may be given.", min=1, max=3650)


@dataclass
class SsoSettings:
    """Single sign-on with an OpenID Connect provider (core/sso.py); off while metadata_url is empty.
    The client secret comes from the environment (TUNEBOARD_SSO_CLIENT_SECRET), never from this file."""

    metadata_url: str = setting("", "The provider's discovery document (https://.../.well-known/openid-configuration); "
                                "empty: single sign-on is off and only local accounts sign in.")
    client_id: str = setting("", "tuneboard's client id at the provider.")
    label: str = setting("single sign-on", "What the login page's button says: \"Sign in with <label>\".")
    redirect_url: str = setting("", "Where the provider sends the browser back: the address people use for tuneboard "
                                "plus /oauth2callback (register it at the provider). Empty: the server's own address.")
    scopes: str = setting("openid email profile", "Scopes asked of the provider (add the one that brings the role "
                          "claim, e.g. groups, where the provider needs it).")
    username_claim: str = setting("preferred_username", "The claim that names the account here (falls back to the "
                                  "part of the email before @).")
    role_claim: str = setting("groups", "The claim whose values give the role (a list of groups or one string).")
    engineer_groups: str = setting("", "Comma-separated values of role_claim that make an engineer.")
    lead_groups: str = setting("", "Comma-separated values of role_claim that make a lead.")
    rater_groups: str = setting("", "Comma-separated values of role_claim that make a rater. Someone in none of the "
                                "three lists is refused.")


@dataclass
class Settings:
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    regression: RegressionSettings = field(default_factory=RegressionSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    sso: SsoSettings = field(default_factory=SsoSettings)
    source: str = "defaults"

    # ---- derived paths -------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        """Where relative paths in the settings file start: its folder (the current one without a file)."""
        return Path(self.source).resolve().parent if self.source != "defaults" else Path.cwd()

    @property
    def workspace_dir(self) -> Path:
        return Path(self.workspace.path).expanduser().resolve()

    @property
    def database_path(self) -> Path:
        return self.workspace_dir / self.workspace.database

    @property
    def runs_dir(self) -> Path:
        return self.workspace_dir / "runs"

    @property
    def models_dir(self) -> Path:
        return self.workspace_dir / "models"

    @property
    def exports_dir(self) -> Path:
        return self.workspace_dir / "exports"

    @property
    def serving_dir(self) -> Path:
        """Serving caches: merged weights of adapters, the per-host calibration."""
        return self.workspace_dir / "serving"

    @property
    def demo_model_dir(self) -> Path:
        return self.models_dir / "SmolLM2-135M-Instruct"

    @property
    def base_model(self) -> str:
        """The base model id or folder actually in use."""
        return self.model.base or str(self.demo_model_dir)


SECTIONS: dict[str, type] = {
    "workspace": WorkspaceSettings,
    "model": ModelSettings,
    "data": DataSettings,
    "server": ServerSettings,
    "training": TrainingSettings,
    "tracking": TrackingSettings,
    "serving": ServingSettings,
    "review": ReviewSettings,
    "metrics": MetricsSettings,
    "regression": RegressionSettings,
    "auth": AuthSettings,
    "sso": SsoSettings,
}


def _coerce(value: Any, default: Any, where: str, problems: list[str]) -> Any:
    """Turn a TOML or environment value into the type of the default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in {"1", "true", "yes", "on"}:
                    return True
                if value.lower() in {"0", "false", "no", "off"}:
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, dict):
            value = json.loads(value) if isinstance(value, str) else value  # (the environment's form: JSON)
            if not isinstance(value, dict):
                raise ValueError
            return value
        if isinstance(default, list):
            if isinstance(value, str):
                value = [float(v) for v in value.split(",") if v.strip()]
            return [float(v) for v in value]
        return str(value)
    except (TypeError, ValueError):
        problems.append(f"{where}: {value!r} is not a valid {type(default).__name__}")
        return default


def _check_ranges(settings: Settings, problems: list[str]) -> None:
    for name in SECTIONS:
        problems += out_of_range(getattr(settings, name), prefix=f"{name}.")
    split = settings.data.split
    if len(split) != 3 or any(v < 0 for v in split) or abs(sum(split) - 1.0) > 1e-6:
        problems.append(f"data.split: {split} must be three non-negative fractions that sum to 1 "
                        "(train, validation, test)")
    elif split[0] == 0:
        problems.append("data.split: the train fraction must be above 0")
    address = settings.training.ray_address
    if settings.training.launcher == "ray" and not address.startswith(("http://", "https://")):
        problems.append(f"training.ray_address: {address!r} must be the Ray dashboard's http(s) address, "
                        "e.g. http://head-node:8265 (launcher = ray submits through the Jobs API)")
    from core.metrics import custom  # (the metric libraries load only when settings are checked)

    for name, spec in settings.metrics.evaluate.items():
        problems += custom.check(name, spec, settings.config_dir)
    ks = settings.metrics.pass_k
    if not ks or any(k < 1 or not float(k).is_integer() for k in ks):
        problems.append(f"metrics.pass_k: {ks} must be whole numbers of 1 or more (e.g. 1, 5, 10)")
    else:
        settings.metrics.pass_k = sorted({int(k) for k in ks})


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read settings from the TOML file (if any) and the environment; raise ConfigError."""
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    explicit = path or env.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    settings = Settings()
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: not valid TOML ({exc}). Fix the file or remove it to use defaults.")
        except OSError as exc:
            raise ConfigError(f"{file}: cannot be read ({exc.strerror}).") from None
        settings.source = str(file)
    elif explicit:
        raise ConfigError(f"{file}: config file not found (from {CONFIG_ENV} or --config).")

    for key in data:
        if key not in SECTIONS:
            problems.append(f"{file}: unknown section [{key}] (known: {', '.join(SECTIONS)})")
    for name, cls in SECTIONS.items():
        section = getattr(settings, name)
        table = data.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"{file}: [{name}] must be a table")
            table = {}
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in table.items():
            if key not in known:
                problems.append(f"{file}: unknown setting {name}.{key} (known: {', '.join(known)})")
                continue
            setattr(section, key, _coerce(value, getattr(section, key), f"{file}: {name}.{key}", problems))
        for key in known:
            env_key = f"TUNEBOARD_{name.upper()}_{key.upper()}"
            if env_key in env:
                setattr(section, key, _coerce(env[env_key], getattr(section, key), env_key, problems))
    # Shorthand most people reach for first.
    if "TUNEBOARD_WORKSPACE" in env:
        settings.workspace.path = env["TUNEBOARD_WORKSPACE"]
    _check_ranges(settings, problems)
    if problems:
        raise ConfigError("Invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
    return settings


def documented_defaults() -> str:
    """A complete `tuneboard.toml` with every setting, its default and its help."""
    lines = ["# tuneboard settings. Every key may also be set as TUNEBOARD_<SECTION>_<KEY>.", ""]
    defaults = Settings()
    for name, cls in SECTIONS.items():
        lines.append(f"[{name}]")
        section = getattr(defaults, name)
        for f, spec in fields_of(cls):
            help_text = spec.help + (f" Range {spec.range_text()}." if spec.bounded else "")
            lines.append(f"# {help_text}")
            value = getattr(section, f.name)
            if isinstance(value, str):
                rendered = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            elif isinstance(value, bool):
                rendered = "true" if value else "false"
            elif isinstance(value, list):
                rendered = "[" + ", ".join(repr(v) for v in value) + "]"
            elif isinstance(value, dict):
                rendered = "{}"
            else:
                rendered = repr(value)
            lines.append(f"{f.name} = {rendered}")
        lines.append("")
    return "\n".join(lines)
