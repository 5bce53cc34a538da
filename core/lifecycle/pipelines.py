"""Retraining pipelines: a candidate built, measured and put beside the promoted version.

A pipeline retrains a task with its promoted version's config (else its newest finished run's)
on the newest version of the task's dataset, then, once training has finished, generates the
test split (base, promoted, candidate and the task's contenders) and the probe suite (base and
candidate), scores the split, judges the candidate's gate and builds a blind pair set
(candidate against the promoted version, else the base) assigned to the raters. A person then
promotes the candidate or dismisses it.

Every step is a job; `advance` moves each pipeline one step when its jobs have finished. The
owner calls it on its monitor's tick (and the CLI while it waits), so a pipeline needs no
process of its own and survives restarts: its state is these rows and its jobs. Status is
read from the jobs: a failed or cancelled job makes the pipeline failed until someone resumes
that job.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, asdict
from typing import Any

from core import audit
from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput, NotFound, TuneboardError
from core.jobs import Jobs, passes
from core.lifecycle import promotion
from core.store import Store

_ADVANCING = threading.Lock()
STAGES = ("train", "evaluate", "ready")
DECISIONS = ("promoted", "dismissed")


@dataclass
class PipelineOptions:
    """How much a pipeline measures (the schedule's form and the CLI set these)."""

    test_prompts: int = 0        # 0: the whole test split
    suite_items: int = 0         # suite items per category; 0: the whole suite (a gate needs it)
    raters_per_pair: int = 3
    path: str = "auto"           # serving path of both generation sets
    threads: int = 0             # torch threads of the training worker; 0: the default

    @classmethod
    def from_dict(cls, data: dict | None) -> "PipelineOptions":
        data = dict(data or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"options: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        opts = cls(**data)
        for name in ("test_prompts", "suite_items", "raters_per_pair", "threads"):
            value = getattr(opts, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "raters_per_pair" else 0):
                raise InvalidInput(f"options.{name}: {value!r} must be a whole number of at least "
                                   f"{1 if name == 'raters_per_pair' else 0}.")
        return opts


def _actor(store: Store, username: str) -> User | None:
    from core.users import acting_user

    return acting_user(store, username)


def newest_version(store: Store, task: str) -> str | None:
    row = store.row("SELECT version_id FROM dataset_versions WHERE dataset = ? ORDER BY created_at DESC LIMIT 1",
                    [task])
    return row["version_id"] if row else None


def source_config(store: Store, actor: User, task: str) -> tuple[dict, str]:
    """The training config a retrain of `task` reuses, and where it comes from."""
    current = promotion.current(store, actor, task)
    if current:
        from core import variants

        variant = variants.get_row(store, current)
        row = variant and store.row("SELECT config, job_id FROM runs WHERE job_id = ?", [variant["job_id"]])
        if row:
            return json.loads(row["config"]), f"the promoted version {current} (run {row['job_id']})"
    row = store.row("""SELECT r.config, r.job_id FROM runs r JOIN jobs j USING (job_id)
                       JOIN dataset_versions d ON d.version_id = r.dataset_version
                       WHERE d.dataset = ? AND j.status = 'succeeded' ORDER BY r.created_at DESC LIMIT 1""", [task])
    if row:
        return json.loads(row["config"]), f"the newest finished run {row['job_id']} (nothing is promoted yet)"
    raise InvalidInput(f"task: {task} has no promoted version and no finished training run to take a config from; "
                       "train it once on the Train page.")


def start_pipeline(store: Store, jobs: Jobs, settings: Settings, actor: User, task: str,
                   options: PipelineOptions | None = None, schedule_id: str | None = None) -> str:
    """Retrain `task` now (the first step: training); returns the pipeline id."""
    from core.training import start_training
    from core.training.config import TrainConfig

    require(actor, Action.JOBS_RUN)
    options = options or PipelineOptions()
    version = newest_version(store, task)
    if version is None:
        raise InvalidInput(f"task: no dataset named {task!r}; import it on the Data page.")
    config, origin = source_config(store, actor, task)
    config = TrainConfig.from_dict({**config, "dataset_version": version}, f"the config of {origin}")
    if config.base_model != settings.base_model:
        raise InvalidInput(f"{origin} fine-tuned {config.base_model}, but the dashboard serves {settings.base_model}; "
                           "a candidate must be comparable with the promoted version on one base.")
    train_job = start_training(store, jobs, actor, config, threads=options.threads or None,
                               trackers=settings.tracking)
    pipeline_id = f"pipeline-{uuid.uuid4().hex[:10]}"
    promoted = promotion.current(store, actor, task)
    with store.transaction() as cur:
        cur.execute("""INSERT INTO pipelines (pipeline_id, schedule_id, task, dataset_version, promoted, config,
                       options, stage, train_job, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, 'train', ?, ?)""",
                    [pipeline_id, schedule_id, task, version, promoted,
                     json.dumps({**config.to_dict(), "_origin": origin}), json.dumps(asdict(options)), train_job,
                     actor.username])
        audit.record(cur, actor, "pipeline.start", pipeline_id, {"task": task, "dataset_version": version,
                                                                 "schedule": schedule_id, "train_job": train_job})
    return pipeline_id


# ---- advancing --------------------------------------------------------------------------
def advance(store: Store, jobs: Jobs, settings: Settings) -> list[str]:
    """Move every unfinished pipeline on by what its finished jobs allow; returns what was started."""
    with _ADVANCING:
        started: list[str] = []
        for p in store.rows("SELECT * FROM pipelines WHERE stage <> 'ready' AND error IS NULL "
                            "AND decision IS NULL ORDER BY created_at"):
            try:
                started += _step(store, jobs, settings, p)
            except TuneboardError as exc:  # a person must act: kept on the pipeline, the owner keeps serving
                store.execute("UPDATE pipelines SET error = ? WHERE pipeline_id = ?",
                              [f"{p['stage']}: {exc}", p["pipeline_id"]])
        return started


def follow(store: Store, jobs: Jobs, settings: Settings, actor: User, pipeline_id: str, timeout: float,
           poll: float = 1.0, drive: bool = True) -> Iterator[dict]:
    """Yield this pipeline's state after each pass until it is no longer running or `timeout`
    seconds pass. With `drive` (a process that owns the store and waits: the CLI on its own) each
    pass also ingests and advances the pipelines; inside the server its monitor does that, and a
    second driver would race it. Driving starts jobs, so only those who may start them may wait
    this way (checked on the call)."""
    require(actor, Action.JOBS_RUN)
    return _follow(store, jobs, settings, actor, pipeline_id, timeout, poll, drive)


def _follow(store: Store, jobs: Jobs, settings: Settings, actor: User, pipeline_id: str, timeout: float,
            poll: float, drive: bool = True) -> Iterator[dict]:
    def look() -> dict:
        if drive:
            jobs.reconcile()
            advance(store, jobs, settings)
        return get_pipeline(store, actor, pipeline_id)

    return passes(look, lambda p: p["status"] != "running", timeout, poll)


def _status(jobs: Jobs, job_id: str | None) -> str | None:
    return jobs.get(job_id)["status"] if job_id else None


def _step(store: Store, jobs: Jobs, settings: Settings, p: dict) -> list[str]:
    actor = _actor(store, p["created_by"])
    if actor is None:
        raise InvalidInput(f"{p['created_by']} (who started it) no longer has an active account")
    options = PipelineOptions.from_dict(json.loads(p["options"]))
    started: list[str] = []
    if p["stage"] == "train":
        if _status(jobs, p["train_job"]) != "succeeded":
            return started
        started += _start_evaluation(store, jobs, settings, actor, p, options)
        return started
    # evaluate: each part when its inputs are ready, each once
    if p["score_job"] is None and _status(jobs, p["task_set"]) == "succeeded":
        from core.metrics.scoring import start_scoring

        job_id = start_scoring(store, jobs, actor, p["task_set"], settings=settings.metrics)
        store.execute("UPDATE pipelines SET score_job = ? WHERE pipeline_id = ?", [job_id, p["pipeline_id"]])
        p["score_job"] = job_id
        started.append(job_id)
    if p["pair_set"] is None and _status(jobs, p["task_set"]) == "succeeded":
        p["pair_set"] = _pair_set(store, actor, p, options)
        store.execute("UPDATE pipelines SET pair_set = ? WHERE pipeline_id = ?", [p["pair_set"], p["pipeline_id"]])
    if p["gate_id"] is None and _status(jobs, p["suite_set"]) == "succeeded":
        from core.regression import runs

        gate = runs.judge(store, actor, p["suite_set"], p["candidate"], settings.regression, baseline="base")
        for rival in _suite_variants(store, p["suite_set"]):
            if rival not in ("base", p["candidate"], p["promoted"]):  # each contender, against the promoted
                runs.judge(store, actor, p["suite_set"], rival, settings.regression, task=p["task"])
        p["gate_id"] = gate["gate_id"]
        store.execute("UPDATE pipelines SET gate_id = ? WHERE pipeline_id = ?", [p["gate_id"], p["pipeline_id"]])
    if p["gate_id"] and p["pair_set"] and _status(jobs, p["score_job"]) == "succeeded":
        store.execute("UPDATE pipelines SET stage = 'ready', finished_at = now() WHERE pipeline_id = ?",
                      [p["pipeline_id"]])
    return started


def _start_evaluation(store: Store, jobs: Jobs, settings: Settings, actor: User, p: dict,
                      options: PipelineOptions) -> list[str]:
    from core.regression import runs
    from core.serving import GenerationSpec, available_variants, generate, prompts_from_version

    run = store.row("SELECT method FROM runs WHERE job_id = ?", [p["train_job"]])
    candidate = f"{'merged' if run and run['method'] == 'full' else 'adapter'}:{p['train_job']}"
    known = {v.variant_id: v for v in available_variants(store, actor, settings.base_model)}
    compared = ["base"] + [v for v in (p["promoted"],) if v and v in known and v != "base"] + [candidate]
    compared += [v for v in contenders_of(store, p["task"]) if v in known and v not in compared]
    prompts, source = prompts_from_version(store, actor, p["dataset_version"], "test",
                                           limit=options.test_prompts or None)
    task_set = generate(store, jobs, settings, actor,
                        GenerationSpec(f"retrain of {p['task']}: test split", compared, prompts,
                                       {**source, "pipeline": p["pipeline_id"]}, path=options.path))
    rivals = [v for v in compared if v not in ("base", p["promoted"], candidate)]  # the task's contenders
    # The suite: the candidate's gate is against the base; a contender's against the promoted version,
    # which it would replace (a newer base can forget too), so that version answers the same run.
    promoted = [p["promoted"]] if rivals and p["promoted"] in compared and p["promoted"] != "base" else []
    suite_set = runs.start_run(store, jobs, settings, actor, [candidate] + promoted + rivals,
                               name=f"retrain of {p['task']}: suite", path=options.path,
                               limit=options.suite_items or None)
    store.execute("""UPDATE pipelines SET stage = 'evaluate', candidate = ?, task_set = ?, suite_set = ?
                     WHERE pipeline_id = ?""", [candidate, task_set, suite_set, p["pipeline_id"]])
    return [task_set, suite_set]


def _suite_variants(store: Store, set_id: str) -> list[str]:
    return [v["variant_id"] for v in json.loads(store.row("SELECT variants FROM generation_sets WHERE set_id = ?",
                                                          [set_id])["variants"])]


def contenders_of(store: Store, task: str) -> list[str]:
    """Variants registered as contenders for a task (newer bases, prompted bases, endpoints)."""
    from core import variants

    out = []
    for r in variants.contender_rows(store):
        tasks = variants.detail(r).get("tasks")
        if not tasks or task in tasks:
            out.append(r["variant_id"])
    return out


def _pair_set(store: Store, actor: User, p: dict, options: PipelineOptions) -> str:
    from core.review.pairs import PairSetSpec, create_pair_set

    raters = [r["username"] for r in store.rows(
        "SELECT username FROM users WHERE role = 'rater' AND NOT disabled ORDER BY username")]
    baseline = p["promoted"] if p["promoted"] and p["promoted"] != p["candidate"] else "base"
    answered = [v["variant_id"] for v in json.loads(store.row(
        "SELECT variants FROM generation_sets WHERE set_id = ?", [p["task_set"]])["variants"])]
    rivals = [v for v in answered if v not in ("base", baseline, p["candidate"])]
    # With contenders every two versions meet, so the Bradley-Terry ladder places them all; else
    # the candidate meets the promoted version (or the base). The pipeline acts for the engineer
    # who scheduled it (CLI_USER from the command line), whose role may manage review.
    return create_pair_set(store, actor, PairSetSpec(
        name=f"retrain of {p['task']} ({p['pipeline_id']})", generation_set_id=p["task_set"],
        variants=[p["candidate"], baseline] + rivals, design="all-pairs" if rivals else "baseline",
        baseline=baseline, raters=raters,
        raters_per_pair=min(options.raters_per_pair, len(raters)) if raters else 1, seed=7,
        instructions="Which response would you rather send to the customer?"))


# ---- reading and deciding ---------------------------------------------------------------------
def pipelines(store: Store, actor: User, task: str | None = None) -> list[dict]:
    """Pipelines, newest first, with a `status` read from their jobs and a `why`."""
    require(actor, Action.JOBS_VIEW)
    rows = store.rows("SELECT * FROM pipelines WHERE ? IS NULL OR task = ? ORDER BY created_at DESC", [task, task])
    statuses = {j["job_id"]: j["status"] for j in store.rows(
        "SELECT job_id, status FROM jobs WHERE job_id IN (SELECT unnest(?))",
        [[x for r in rows for x in (r["train_job"], r["task_set"], r["suite_set"], r["score_job"]) if x]])}
    for r in rows:
        r["config"], r["options"] = json.loads(r["config"]), json.loads(r["options"])
        mine = {k: statuses.get(r[k]) for k in ("train_job", "task_set", "suite_set", "score_job") if r[k]}
        broken = [k for k, s in mine.items() if s in ("failed", "cancelled")]
        if r["decision"]:
            r["status"], r["why"] = r["decision"], f"{r['decision']} by {r['decided_by']}: {r['decision_reason']}"
        elif r["error"]:
            r["status"], r["why"] = "failed", r["error"]
        elif broken:
            r["status"] = "failed"
            r["why"] = f"its {broken[0].replace('_', ' ')} {r[broken[0]]} {mine[broken[0]]}: resume it to go on"
        elif r["stage"] == "ready":
            r["status"], r["why"] = "ready", "waiting for a decision: promote the candidate or dismiss it"
        else:
            r["status"] = "running"
            r["why"] = "training" if r["stage"] == "train" else "generating, scoring and judging the candidate"
    return rows


def get_pipeline(store: Store, actor: User, pipeline_id: str) -> dict:
    found = [p for p in pipelines(store, actor) if p["pipeline_id"] == pipeline_id]
    if not found:
        raise NotFound(f"No pipeline {pipeline_id!r}; see `tuneboard retrain list`.")
    return found[0]


def active(store: Store, schedule_id: str) -> list[str]:
    """Unfinished pipelines of a schedule that are not failed (a schedule never overlaps itself)."""
    out = []
    for p in store.rows("SELECT * FROM pipelines WHERE schedule_id = ? AND stage <> 'ready' AND error IS NULL "
                        "AND decision IS NULL", [schedule_id]):
        jobs = [p[k] for k in ("train_job", "task_set", "suite_set", "score_job") if p[k]]
        states = {r["status"] for r in store.rows("SELECT status FROM jobs WHERE job_id IN (SELECT unnest(?))", [jobs])}
        if not states & {"failed", "cancelled"}:
            out.append(p["pipeline_id"])
    return out


def decide(store: Store, actor: User, pipeline_id: str, decision: str, reason: str, override: bool = False) -> None:
    """Promote the candidate (its gate must pass, or an override) or dismiss it; with a written reason."""
    require(actor, Action.PROMOTE)
    p = get_pipeline(store, actor, pipeline_id)
    if decision not in DECISIONS:
        raise InvalidInput(f"decision: {decision!r} is not one of {', '.join(DECISIONS)}.")
    if p["decision"]:
        raise InvalidInput(f"{pipeline_id} was already {p['decision']} by {p['decided_by']}.")
    if p["status"] != "ready":
        raise InvalidInput(f"{pipeline_id} is {p['status']} ({p['why']}): decide once its candidate is measured.")
    if decision == "promoted":
        promotion.promote(store, actor, p["candidate"], reason, override=override, gate_id=p["gate_id"],
                          task=p["task"])
    elif len((reason or "").strip()) < promotion.MIN_REASON:
        raise InvalidInput(f"reason: dismissing a candidate needs a written reason of at least "
                           f"{promotion.MIN_REASON} characters.")
    with store.transaction() as cur:
        cur.execute("UPDATE pipelines SET decision = ?, decided_by = ?, decision_reason = ? WHERE pipeline_id = ?",
                    [decision, actor.username, reason.strip(), pipeline_id])
        audit.record(cur, actor, "pipeline.decide", pipeline_id, {"decision": decision, "candidate": p["candidate"],
                                                                  "reason": reason.strip(), "override": override})


def summary(store: Store, actor: User, settings: Settings, p: dict) -> dict[str, Any]:
    """What the Models page shows of a candidate beside the promoted version: the primary task metric of
    each compared version, the candidate's gate and the pair set's votes."""
    from core.metrics import results

    require(actor, Action.JOBS_VIEW)
    out: dict[str, Any] = {"metric": None, "scores": [], "gate": None, "votes": 0, "pairs": 0}
    if p["task_set"] and _has_scores(store, p["task_set"]):
        res = results.latest(store, actor, p["task_set"], settings.metrics)
        if res is not None:
            out["metric"] = res.primary
            rows = res.summary[res.summary["metric"] == res.primary]
            out["scores"] = [{"variant": r.variant, "label": res.label(r.variant), "mean": r.mean, "lo": r.lo,
                              "hi": r.hi, "n": r.n} for r in rows.itertuples()]
    if p["gate_id"]:
        gate = store.row("SELECT verdict, detail FROM regression_gates WHERE gate_id = ?", [p["gate_id"]])
        out["gate"] = {"verdict": gate["verdict"], **json.loads(gate["detail"])["overall"]}
    if p["pair_set"]:
        out["pairs"] = store.scalar("SELECT count(*) FROM pairs WHERE pair_set_id = ? AND NOT withdrawn",
                                    [p["pair_set"]])
        out["votes"] = store.scalar("SELECT count(*) FROM votes WHERE pair_set_id = ?", [p["pair_set"]])
    return out


def _has_scores(store: Store, set_id: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM jobs WHERE kind = 'score' AND status = 'succeeded' "
                             "AND json_extract_string(config, '$.set_id') = ?", [set_id]))
