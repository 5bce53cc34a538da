"""Scoring generation sets (owner side): start a `score` job, store its scores exactly once,
and read summaries with confidence intervals and paired deltas against the base."""

from __future__ import annotations

import json
from pathlib import Path

from core.auth import Action, User, require
from core.errors import InvalidInput, NotFound
from core.jobs import EVENT_HANDLERS, Jobs
from core.metrics import structured
from core.metrics.registry import METRICS, check_metrics, default_metrics, summarize
from core.metrics.worker import INPUTS_FILE
from core.store import Store


def start_scoring(store: Store, jobs: Jobs, actor: User, set_id: str, metrics: list[str] | None = None) -> str:
    """Score every stored output of a generation set; returns the job id. Re-scoring replaces rows."""
    require(actor, Action.GENERATE)
    if store.row("SELECT 1 FROM generation_sets WHERE set_id = ?", [set_id]) is None:
        raise NotFound(f"No generation set {set_id!r}; see `tuneboard generate --list`.")
    rows = store.rows("""SELECT g.prompt_idx, g.variant_id, g.output, p.reference FROM generations g
                         JOIN generation_prompts p USING (set_id, prompt_idx) WHERE g.set_id = ?
                         ORDER BY g.variant_id, g.prompt_idx""", [set_id])
    if not rows:
        raise InvalidInput(f"{set_id} has no outputs yet: wait for the generation set to finish.")
    refs = [r["reference"] for r in rows]
    if not any(refs):
        raise InvalidInput(f"{set_id} has no reference answers (an uploaded prompt list): reference metrics need "
                           "a dataset split.")
    names = check_metrics(metrics) if metrics else default_metrics(refs)
    if "field_accuracy" in names:
        bad = next((r["prompt_idx"] for r in rows if not isinstance(structured.parse_json(r["reference"] or "")[0],
                                                                      dict)), None)
        if bad is not None:
            raise InvalidInput(f"metrics: field_accuracy needs JSON-object references; prompt {bad}'s is not one.")
    config = {"set_id": set_id, "metrics": names, "versions": {n: METRICS[n].version for n in names},
              "n_rows": len(rows)}

    def write_inputs(run_dir: Path) -> None:
        (run_dir / INPUTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    return jobs.submit(actor, "score", config, prepare=write_inputs)


def _on_score_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction: exactly once per event; a re-score replaces the rows."""
    if type_ != "scores":
        return
    set_id = json.loads(job["config"])["set_id"]
    cur.executemany("INSERT OR REPLACE INTO metric_scores (set_id, metric, metric_version, variant_id, prompt_idx, "
                    "value, job_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [[set_id, payload["metric"], payload["metric_version"], payload["variant_id"], idx, value,
                      job["job_id"]] for idx, value in payload["items"]])


EVENT_HANDLERS["score"] = _on_score_event


def scores(store: Store, actor: User, set_id: str) -> dict[str, dict[str, list[float]]]:
    """Stored per-example scores, variant -> metric -> scores aligned by prompt (current metric versions)."""
    require(actor, Action.JOBS_VIEW)
    current = {n: m.version for n, m in METRICS.items()}
    # An older library's series stays stored but is not mixed with the current one.
    rows = [r for r in store.rows("""SELECT variant_id, metric, metric_version, prompt_idx, value FROM metric_scores
                                     WHERE set_id = ? ORDER BY variant_id, metric, prompt_idx""", [set_id])
            if current.get(r["metric"], r["metric_version"]) == r["metric_version"]]
    prompts = sorted({r["prompt_idx"] for r in rows})
    position = {p: i for i, p in enumerate(prompts)}
    out: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        series = out.setdefault(r["variant_id"], {}).setdefault(r["metric"], [float("nan")] * len(prompts))
        series[position[r["prompt_idx"]]] = float("nan") if r["value"] is None else r["value"]
    return out


def summary(store: Store, actor: User, set_id: str, rounds: int = 1000, level: float = 0.95,
            alpha: float = 0.05) -> tuple[list[dict], list[dict]]:
    """Means with CIs per variant and metric, and deltas vs the base with adjusted p-values."""
    return summarize(scores(store, actor, set_id), baseline="base", rounds=rounds, level=level, alpha=alpha)
