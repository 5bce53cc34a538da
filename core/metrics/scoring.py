"""Scoring generation sets (owner side): start a `score` job, store its scores exactly once,
and read summaries with confidence intervals and paired deltas against the base."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from core.auth import Action, User, require
from core.config import MetricsSettings
from core.errors import InvalidInput, NotFound
from core.jobs import Jobs
from core.metrics import structured
from core.metrics.code import isolation_problem
from core.metrics.corpus import MAX_ROUNDS as CORPUS_MAX_ROUNDS
from core.metrics.passk import pass_at_k_table
from core.metrics.registry import METRICS, check_metrics, default_metrics, scoring_options, summarize
from core.metrics.uncertainty import enough_rounds
from core.metrics.worker import INPUTS_FILE
from core.store import Store, insert_rows


def start_scoring(store: Store, jobs: Jobs, actor: User, set_id: str, metrics: list[str] | None = None,
                  settings: MetricsSettings | None = None) -> str:
    """Score every stored output of a generation set; returns the job id. Re-scoring replaces rows.

    Without `metrics`: what the set's dataset version declares, else what fits its references
    (and tests). `settings` gives the sandbox limits of code metrics (default: the defaults)."""
    require(actor, Action.GENERATE)
    settings = settings or MetricsSettings()
    source = store.row("SELECT source FROM generation_sets WHERE set_id = ?", [set_id])
    if source is None:
        raise NotFound(f"No generation set {set_id!r}; see `tuneboard generate --list`.")
    rows = store.rows("""SELECT g.prompt_idx, g.variant_id, g.output, p.reference, e.tests FROM generations g
                         JOIN generation_prompts p USING (set_id, prompt_idx)
                         LEFT JOIN examples e ON e.version_id = split_part(p.source_ref, ':', 1)
                              AND e.split = split_part(p.source_ref, ':', 2)
                              AND e.idx = TRY_CAST(split_part(p.source_ref, ':', 3) AS INTEGER)
                         WHERE g.set_id = ? ORDER BY g.variant_id, g.prompt_idx""", [set_id])
    if not rows:
        raise InvalidInput(f"{set_id} has no outputs yet: wait for the generation set to finish.")
    refs = [r["reference"] for r in rows]
    if not any(refs):
        raise InvalidInput(f"{set_id} has no reference answers (an uploaded prompt list): reference metrics need "
                           "a dataset split.")
    source = json.loads(source["source"] or "{}")
    names = check_metrics(metrics) if metrics else (_declared(store, source)
                                                    or default_metrics(refs, [r["tests"] for r in rows]))
    _check_applicable(names, rows)
    options = scoring_options(names, _declared_options(store, source), refs)
    config = {"set_id": set_id, "metrics": names, "versions": {n: METRICS[n].version for n in names},
              "options": {k: v for k, v in options.items() if any(k in METRICS[n].options for n in names)},
              "custom": {n: METRICS[n].spec for n in names if METRICS[n].spec},
              "corpus_rounds": _corpus_rounds(names, rows, settings),
              "n_rows": len(rows), "processes": settings.processes,
              "sandbox": {"timeout_s": settings.sandbox_timeout_s, "memory_mb": settings.sandbox_memory_mb}}

    def write_inputs(run_dir: Path) -> None:
        (run_dir / INPUTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    return jobs.submit(actor, "score", config, prepare=write_inputs)


def _corpus_rounds(names: list[str], rows: list[dict], settings: MetricsSettings) -> int:
    """Resampled sets for corpus-level metrics: enough for an interval at the family's level (every
    scored metric against the base, Bonferroni), as per-example metrics get (uncertainty.enough_rounds)."""
    tested = [n for n in names if METRICS[n].kind != "descriptive"]
    pairs = max(1, len({r["variant_id"] for r in rows}) - 1) * max(1, len(tested) + len(settings.pass_k))
    return min(CORPUS_MAX_ROUNDS, enough_rounds(1.0 - settings.alpha / pairs, settings.bootstrap_rounds))


def _declared(store: Store, source: dict) -> list[str] | None:
    """The metrics the set's dataset version declares (None: it declares none, or no dataset)."""
    if source.get("kind") != "dataset":
        return None
    declared = store.scalar("SELECT metrics FROM dataset_versions WHERE version_id = ?", [source.get("version_id")])
    return check_metrics(json.loads(declared)) if declared else None


def _declared_options(store: Store, source: dict) -> dict | None:
    """What the set's dataset version declares for metrics that need more than references."""
    if source.get("kind") != "dataset":
        return None
    stored = store.scalar("SELECT metric_options FROM dataset_versions WHERE version_id = ?",
                          [source.get("version_id")])
    return json.loads(stored) if stored else None


def _check_applicable(names: list[str], rows: list[dict]) -> None:
    """Refuse metrics the set's data cannot feed, before any job starts."""
    if "field_accuracy" in names:
        bad = next((r["prompt_idx"] for r in rows if not isinstance(structured.parse_json(r["reference"] or "")[0],
                                                                      dict)), None)
        if bad is not None:
            raise InvalidInput(f"metrics: field_accuracy needs JSON-object references; prompt {bad}'s is not one.")
    if "tests_pass" in names:
        bad = next((r["prompt_idx"] for r in rows if not r["tests"]), None)
        if bad is not None:
            raise InvalidInput(f"metrics: tests_pass needs the tests of each prompt's dataset example; prompt {bad} "
                               "has none (generate from a dataset version whose rows carry 'tests').")
        why = isolation_problem()
        if why:
            raise InvalidInput(f"metrics: tests_pass runs generated code, but {why}.")


def _on_score_event(cur, job: dict, type_: str, payload: dict) -> None:
    """Runs in the ingest transaction: exactly once per event; a re-score replaces the rows."""
    if type_ not in ("scores", "corpus"):
        return
    set_id = json.loads(job["config"])["set_id"]
    if type_ == "corpus":
        insert_rows(cur, "metric_corpus", ["set_id", "metric", "metric_version", "variant_id", "value", "n", "boot",
                                           "swaps", "exact", "job_id"],
                    [[set_id, payload["metric"], payload["metric_version"], payload["variant_id"], payload["value"],
                      payload["n"], payload["boot"], payload["swaps"], bool(payload.get("exact")), job["job_id"]]],
                    verb="INSERT OR REPLACE")
        return
    [seq] = cur.execute("SELECT set_seq FROM generation_sets WHERE set_id = ?", [set_id]).fetchone()
    insert_rows(cur, "metric_scores", ["set_id", "metric", "metric_version", "variant_id", "prompt_idx", "value",
                                       "job_id", "set_seq"],
                [[set_id, payload["metric"], payload["metric_version"], payload["variant_id"], idx, value,
                  job["job_id"], seq] for idx, value in payload["items"]], verb="INSERT OR REPLACE")


def set_seq(store: Store, set_id: str) -> int | None:
    """The set's numeric key: filter per-example rows by it (with set_id) so DuckDB skips other sets' rows."""
    row = store.row("SELECT set_seq FROM generation_sets WHERE set_id = ?", [set_id])
    return row["set_seq"] if row else None


def _series(store: Store, set_id: str) -> tuple[list[int], dict[str, dict[str, list[float]]]]:
    """The scored prompt indices, and variant -> metric -> scores aligned with them."""
    current = {n: m.version for n, m in METRICS.items()}
    # An older library's series stays stored but is not mixed with the current one.
    rows = [r for r in store.rows("""SELECT variant_id, metric, metric_version, prompt_idx, value FROM metric_scores
                                     WHERE set_seq = ? AND set_id = ? ORDER BY variant_id, metric, prompt_idx""",
                                  [set_seq(store, set_id), set_id])
            if current.get(r["metric"], r["metric_version"]) == r["metric_version"]]
    prompts = sorted({r["prompt_idx"] for r in rows})
    position = {p: i for i, p in enumerate(prompts)}
    out: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        series = out.setdefault(r["variant_id"], {}).setdefault(r["metric"], [float("nan")] * len(prompts))
        series[position[r["prompt_idx"]]] = float("nan") if r["value"] is None else r["value"]
    return prompts, out


def corpus_replicates(store: Store, set_id: str) -> dict[str, dict[str, dict]]:
    """variant -> corpus-level metric -> its stored replicates (current metric versions)."""
    current = {n: m.version for n, m in METRICS.items()}
    out: dict[str, dict[str, dict]] = {}
    for r in store.rows("""SELECT variant_id, metric, metric_version, value, n, boot, swaps, exact FROM metric_corpus
                           WHERE set_id = ? ORDER BY variant_id, metric""", [set_id]):
        if current.get(r["metric"], r["metric_version"]) == r["metric_version"]:
            out.setdefault(r["variant_id"], {})[r["metric"]] = r
    return out


def scores(store: Store, actor: User, set_id: str) -> dict[str, dict[str, list[float]]]:
    """Stored per-example scores, variant -> metric -> scores aligned by prompt (current metric versions)."""
    require(actor, Action.JOBS_VIEW)
    return _series(store, set_id)[1]


def summary(store: Store, actor: User, set_id: str, rounds: int = 1000, level: float = 0.95,
            alpha: float = 0.05, ks: Sequence[int] = (1, 5, 10)) -> tuple[list[dict], list[dict]]:
    """Means with CIs per variant and metric, and deltas vs the base with adjusted p-values.

    Code tasks: the per-sample tests_pass scores become pass@k rows ("pass@1", "pass@5", ...)
    for each k in `ks` no larger than the samples per prompt. Samples are grouped into
    problems by their prompt's source (the dataset example), so means, intervals and paired
    deltas resample problems, not samples. The multiple-comparison family is the metrics the
    set's dataset version declares (every non-descriptive metric when it declares none); see
    core.metrics.registry.summarize."""
    require(actor, Action.JOBS_VIEW)
    source = store.row("SELECT source FROM generation_sets WHERE set_id = ?", [set_id])
    declared = _declared(store, json.loads(source["source"] or "{}")) if source else None
    prompts, by_variant = _series(store, set_id)
    passed = {v: metrics.pop("tests_pass") for v, metrics in by_variant.items() if "tests_pass" in metrics}
    if passed:
        refs = {r["prompt_idx"]: r["source_ref"] or f"prompt {r['prompt_idx']}" for r in store.rows(
            "SELECT prompt_idx, source_ref FROM generation_prompts WHERE set_id = ?", [set_id])}
        for variant, rows in pass_at_k_table(passed, [refs.get(p, f"prompt {p}") for p in prompts], ks).items():
            by_variant[variant].update(rows)
    return summarize({v: m for v, m in by_variant.items() if m}, baseline="base", rounds=rounds, level=level,
                     alpha=alpha, family=declared, corpus=corpus_replicates(store, set_id))
