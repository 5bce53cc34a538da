"""Experiment trackers a training run reports to: MLflow and Weights & Biases, off by default.

Owner side, `plan(settings)` turns the `[tracking]` settings into the part of a run's config the
worker reads (refused with a message when a tracker is configured but its package is missing).
Worker side, `prepare(...)` sets the variables transformers' own MLflow and W&B callbacks read
(the run is named by its job id; a resumed job goes on in the same tracker run), and
`log_run_facts` adds what those callbacks do not know: the run's TrainConfig as parameters and
its lineage (data version and hash, base model files, code commit, seed) as tags.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from core.config import TrackingSettings
from core.errors import InvalidInput

STATE_FILE = "tracking.json"  # the tracker run ids of this job, so a resume logs into the same runs
EXTRA = "pip install -e '.[tracking]'"


def plan(settings: TrackingSettings) -> dict[str, Any] | None:
    """What a run's worker reports to, or None when no tracker is configured."""
    out: dict[str, Any] = {}
    if settings.mlflow_tracking_uri:
        if importlib.util.find_spec("mlflow") is None:
            raise InvalidInput(f"tracking.mlflow_tracking_uri is set but MLflow is not installed: {EXTRA} "
                               "(or empty the setting).")
        out["mlflow"] = {"tracking_uri": settings.mlflow_tracking_uri, "experiment": settings.mlflow_experiment}
    if settings.wandb_project:
        if importlib.util.find_spec("wandb") is None:
            raise InvalidInput(f"tracking.wandb_project is set but wandb is not installed: {EXTRA} "
                               "(or empty the setting).")
        out["wandb"] = {"project": settings.wandb_project, "entity": settings.wandb_entity,
                        "mode": settings.wandb_mode}
    return out or None


def report_to(tracking: dict | None) -> list[str]:
    """transformers' `report_to`: the integrations to switch on."""
    return [name for name in ("mlflow", "wandb") if tracking and tracking.get(name)]


def _state(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def prepare(tracking: dict | None, run_dir: Path, run_name: str) -> None:
    """Set what transformers' tracker callbacks read, before the Trainer is made."""
    if not tracking:
        return
    state = _state(run_dir)
    if tracking.get("mlflow"):
        mlflow = tracking["mlflow"]
        os.environ["MLFLOW_TRACKING_URI"] = mlflow["tracking_uri"]
        if mlflow["tracking_uri"].startswith("file:"):
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # named in the settings: the user's choice
        os.environ["MLFLOW_EXPERIMENT_NAME"] = mlflow["experiment"]
        os.environ["MLFLOW_RUN_NAME"] = run_name
        if state.get("mlflow_run_id"):
            os.environ["MLFLOW_RUN_ID"] = state["mlflow_run_id"]  # a resume: the same MLflow run
    if tracking.get("wandb"):
        wandb = tracking["wandb"]
        os.environ["WANDB_PROJECT"] = wandb["project"]
        if wandb.get("entity"):
            os.environ["WANDB_ENTITY"] = wandb["entity"]
        os.environ["WANDB_MODE"] = wandb["mode"]
        os.environ["WANDB_DIR"] = str(run_dir)  # its local files (all of it, offline) stay with the run
        os.environ["WANDB_RUN_ID"] = run_name   # a resume goes on in the same W&B run
        os.environ["WANDB_RESUME"] = "allow"
        os.environ.setdefault("WANDB_SILENT", "true")


def _flat(prefix: str, value: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return out


def log_run_facts(tracking: dict, run_dir: Path, config: dict, lineage: dict) -> None:
    """Once transformers' tracker callbacks have started their runs (the main process, at train begin):
    the TrainConfig as parameters (prefixed `tuneboard.`, beside the TrainingArguments they log) and the
    lineage as tags; the tracker run ids are kept in the run folder for a resume."""
    params = _flat("tuneboard", config, {})
    tags = _flat("tuneboard.lineage", lineage, {})
    saved = _state(run_dir)
    if tracking.get("mlflow"):
        import mlflow

        run = mlflow.active_run()
        if run is not None:
            if saved.get("mlflow_run_id") != run.info.run_id:  # parameters are logged once per MLflow run
                mlflow.log_params({k: v[:6000] for k, v in params.items()})
            mlflow.set_tags({k: v[:5000] for k, v in tags.items()})
            saved["mlflow_run_id"] = run.info.run_id
    if tracking.get("wandb"):
        import wandb

        if wandb.run is not None:
            wandb.run.config.update({"tuneboard": config, "lineage": lineage}, allow_val_change=True)
            saved["wandb_run_id"] = wandb.run.id
    (run_dir / STATE_FILE).write_text(json.dumps(saved))


def finish(trackers: dict | None, failed: bool = False) -> None:
    """End the tracker runs of this worker (W&B writes its summary and config files then)."""
    if trackers and trackers.get("wandb"):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)
