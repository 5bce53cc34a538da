"""Deciding and maintaining: regression runs and their gates, promotion and rollback, retraining
pipelines (candidates) and their schedules, contenders, deployment folders and run-record bundles
(the last two written by jobs: started here, followed by their own routes or /jobs).

Each route calls the same core function as the CLI command named in its description, as the
caller's account; who may do what is decided there (core/auth.py), never here.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.auth import caller, the_owner
from api.errors import ApiError
from api.plain import plain
from core.auth import User
from core.errors import JobError, NotFound, TuneboardError
from core.owner import Owner

router = APIRouter(tags=["lifecycle"])

PATHS = "Serving path: auto, vllm-lora, vllm-merged or transformers."
REASON = "Why (kept on record with the change; at least 15 characters)."


# ---- regression runs and gates ----------------------------------------------------------------
class RegressionRun(BaseModel):
    variants: list[str] = Field(min_length=1, max_length=20, description="Fine-tuned variant ids to compare with the "
                                "base, e.g. adapter:RUN (as `tuneboard regression run --variants`).")
    items: int | None = Field(None, ge=1, description="Suite items per category (default: all; fewer is a quick "
                              "look and the gates read inconclusive).")
    path: str = Field("auto", description=PATHS)
    name: str = Field("", max_length=200, description="A name for the run (default: the suite and the variants).")


class Started(BaseModel):
    id: str = Field(description="The id of what was started (a job, a pipeline).")
    status: str = Field(description="Its status now; follow it with the jobs routes or the listing here.")


def _suite_run(owner: Owner, user: User, set_id: str) -> dict:
    from core.regression import runs

    found = [r for r in runs.runs(owner.store, user) if r["set_id"] == set_id]
    if not found:
        raise NotFound(f"No regression run {set_id!r}; GET /regression/runs lists them.")
    return found[0]


@router.post("/regression/runs", response_model=Started, status_code=202,
             summary="Start a regression run: the probe suite answered by the base and the fine-tunes")
def start_regression_run(body: RegressionRun, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import runs

    set_id = runs.start_run(owner.store, owner.jobs, owner.settings, user, body.variants, name=body.name,
                            path=body.path, limit=body.items)
    return Started(id=set_id, status=owner.jobs.get(set_id)["status"])


@router.get("/regression/runs", summary="Regression runs, newest first, and each version's newest gate")
def list_regression_runs(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import runs

    return plain({"runs": runs.runs(owner.store, user), "latest_gates": runs.latest_gates(owner.store, user)})


@router.get("/regression/runs/{set_id}", summary="A regression run with the gate verdict of each fine-tune")
def show_regression_run(set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import runs

    run = _suite_run(owner, user, set_id)
    gates = []
    if run["status"] == "succeeded":
        for variant in [v["variant_id"] for v in run["variants"] if v["variant_id"] != "base"]:
            try:
                gate = runs.judge(owner.store, user, set_id, variant, owner.settings.regression)
            except TuneboardError as exc:  # this version cannot be judged: say why, judge the others
                gates.append({"variant_id": variant, "verdict": None, "problem": str(exc)})
                continue
            gates.append({"variant_id": variant, "verdict": gate["verdict"], "gate_id": gate["gate_id"],
                          "computed_at": gate["computed_at"], "detail": gate["detail"]})
    return plain({"run": run, "gates": gates})


# ---- promotion ---------------------------------------------------------------------------------
class Promote(BaseModel):
    variant: str = Field(max_length=300, description="The version to promote, e.g. adapter:RUN.")
    reason: str = Field(max_length=2000, description=REASON)
    override: bool = Field(False, description="Promote although its newest gate did not pass.")
    task: str | None = Field(None, max_length=200, description="The task (dataset) it serves; default: the one it "
                             "was trained on.")


class Rollback(BaseModel):
    task: str = Field(max_length=200, description="The task whose promoted version goes back one step.")
    reason: str = Field(max_length=2000, description=REASON)


class Promoted(BaseModel):
    promotion_id: str
    task: str
    current: str | None = Field(description="The task's promoted version now.")


@router.get("/promotions", summary="The promoted version of each task, and the history of promotions and rollbacks")
def list_promotions(task: str | None = None, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import promotion

    return plain({"promoted": promotion.promoted(owner.store, user),
                  "history": promotion.history(owner.store, user, task)})


@router.post("/promotions", response_model=Promoted, status_code=201,
             summary="Promote a version: its newest gate must pass, or override; always a reason")
def promote(body: Promote, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Promoted:
    from core.lifecycle import promotion

    promotion_id = promotion.promote(owner.store, user, body.variant, body.reason, body.override, task=body.task)
    task = owner.store.scalar("SELECT task FROM promotions WHERE promotion_id = ?", [promotion_id])
    return Promoted(promotion_id=promotion_id, task=task, current=promotion.current(owner.store, user, task))


@router.post("/promotions/rollback", response_model=Promoted, status_code=201,
             summary="Return a task to the version promoted before the current one")
def rollback(body: Rollback, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Promoted:
    from core.lifecycle import promotion

    promotion_id = promotion.rollback(owner.store, user, body.task, body.reason)
    return Promoted(promotion_id=promotion_id, task=body.task, current=promotion.current(owner.store, user, body.task))


# ---- retraining pipelines (candidates) ---------------------------------------------------------
class Options(BaseModel):
    test_prompts: int = Field(0, ge=0, description="Test-split prompts (0: all).")
    suite_items: int = Field(0, ge=0, description="Suite items per category (0: all; a gate needs enough).")
    raters_per_pair: int = Field(3, ge=1, description="Raters per pair of the candidate's blind pair set.")
    path: str = Field("auto", description=PATHS)

    def core(self):
        from core.lifecycle.pipelines import PipelineOptions

        return PipelineOptions.from_dict(self.model_dump(include=set(Options.model_fields)))


class Retrain(Options):
    task: str = Field(max_length=200, description="The task (dataset) to retrain with its promoted config on its "
                      "newest data.")


class Decision(BaseModel):
    decision: Literal["promoted", "dismissed"] = Field(description="Promote the candidate or dismiss it.")
    reason: str = Field(max_length=2000, description=REASON)
    override: bool = Field(False, description="Promote although the candidate's gate did not pass.")


@router.get("/pipelines", summary="Retraining pipelines with their candidates, newest first")
def list_pipelines(task: str | None = None, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import pipelines

    return plain(pipelines.pipelines(owner.store, user, task))


@router.get("/pipelines/{pipeline_id}",
            summary="A pipeline; once measured, its candidate beside the promoted version (metric, gate, pairs)")
def show_pipeline(pipeline_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import pipelines

    p = pipelines.get_pipeline(owner.store, user, pipeline_id)
    shown = None
    if p["status"] in ("ready", "promoted", "dismissed"):
        shown = pipelines.summary(owner.store, user, owner.settings, p)
    return plain({"pipeline": p, "summary": shown})


@router.post("/pipelines", response_model=Started, status_code=202,
             summary="Retrain a task now: train, generate, score, gate and make a pair set for the candidate")
def start_pipeline(body: Retrain, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Started:
    from core.lifecycle import pipelines

    pid = pipelines.start_pipeline(owner.store, owner.jobs, owner.settings, user, body.task, body.core())
    return Started(id=pid, status=pipelines.get_pipeline(owner.store, user, pid)["status"])


@router.post("/pipelines/{pipeline_id}/decision", summary="Promote or dismiss a pipeline's candidate, with a reason")
def decide(pipeline_id: str, body: Decision, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import pipelines

    pipelines.decide(owner.store, user, pipeline_id, body.decision, body.reason, body.override)
    return plain(pipelines.get_pipeline(owner.store, user, pipeline_id))


# ---- schedules ---------------------------------------------------------------------------------
class NewSchedule(Options):
    task: str = Field(max_length=200, description="The task (dataset) to retrain.")
    name: str = Field("", max_length=120, description="A name (default: the task and when).")
    trigger: Literal["interval", "cron", "new_data"] = Field(description="When it fires: every N hours, on a cron "
                                                             "expression (UTC), or when a new data version arrives.")
    spec: str = Field("", max_length=200, description="Hours for interval (168: weekly); the expression for cron "
                      "(e.g. '0 3 * * 1'); empty for new_data.")


@router.get("/schedules", summary="Schedules with their next firing, and the latest firings")
def list_schedules(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import schedules

    return plain({"schedules": schedules.schedules(owner.store, user), "events": schedules.events(owner.store, user)})


@router.post("/schedules", status_code=201, summary="Schedule unattended retraining of a task")
def create_schedule(body: NewSchedule, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import schedules

    sid = schedules.create_schedule(owner.store, user, body.name.strip() or f"{body.task} ({body.trigger})",
                                    body.task, body.trigger, body.spec, body.core())
    return plain(schedules.get_schedule(owner.store, user, sid))


@router.post("/schedules/{schedule_id}/pause", summary="Pause a schedule (it fires no more until resumed)")
def pause_schedule(schedule_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import schedules

    schedules.set_enabled(owner.store, user, schedule_id, False)
    return plain(schedules.get_schedule(owner.store, user, schedule_id))


@router.post("/schedules/{schedule_id}/resume", summary="Resume a paused schedule (counting from now)")
def resume_schedule(schedule_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import schedules

    schedules.set_enabled(owner.store, user, schedule_id, True)
    return plain(schedules.get_schedule(owner.store, user, schedule_id))


@router.delete("/schedules/{schedule_id}", status_code=204, summary="Delete a schedule (its pipelines stay)")
def delete_schedule(schedule_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> None:
    from core.lifecycle import schedules

    schedules.delete_schedule(owner.store, user, schedule_id)


@router.post("/schedules/{schedule_id}/run", response_model=Started, status_code=202,
             summary="Fire a schedule now (never beside its own running pipeline)")
def run_schedule(schedule_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Started:
    from core.lifecycle import pipelines, schedules

    pid = schedules.run_now(owner.store, owner.jobs, owner.settings, user, schedule_id)
    return Started(id=pid, status=pipelines.get_pipeline(owner.store, user, pid)["status"])


# ---- contenders --------------------------------------------------------------------------------
class Shot(BaseModel):
    user: str = Field(max_length=20_000, description="A user message.")
    assistant: str = Field(max_length=20_000, description="The answer the contender should see as an example.")


class ContenderPrompt(BaseModel):
    name: str = Field(max_length=64, description="Its name: the variant is contender:NAME (external:NAME for an "
                      "endpoint); 1-64 letters, digits, '-' or '_'.")
    system_prompt: str = Field("", max_length=20_000, description="A system prompt it answers with (replaces the "
                               "prompt's own).")
    few_shot: list[Shot] = Field(default_factory=list, max_length=20, description="Examples put before every prompt.")
    tasks: list[str] = Field(default_factory=list, description="Tasks (datasets) it competes on (default: all).")

    def shots(self) -> list[list[str]]:
        return [[s.user, s.assistant] for s in self.few_shot]


class ModelContender(ContenderPrompt):
    model: str = Field(max_length=500, description="A newer base: a hub id or a model folder on the server.")


class ExternalContender(ContenderPrompt):
    url: str = Field(max_length=500, description="OpenAI-compatible base URL, e.g. https://api.example.com/v1.")
    model: str = Field(max_length=200, description="The model name the endpoint expects.")
    key_env: str = Field("", max_length=64, description="Name of the server's environment variable holding the API "
                         "key (the key itself is never stored).")


class Registered(BaseModel):
    variant_id: str


@router.get("/contenders", summary="Registered contenders: other models, prompted bases, endpoints")
def list_contenders(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import contenders

    return plain(contenders.contenders(owner.store, user))


@router.post("/contenders/prompted", response_model=Registered, status_code=201,
             summary="Register the base with a system prompt and few-shot examples as contender:NAME")
def add_prompted(body: ContenderPrompt, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import contenders

    return Registered(variant_id=contenders.register(owner.store, user, body.name, owner.settings.base_model, "",
                                                     body.system_prompt, body.shots(), body.tasks))


@router.post("/contenders/model", response_model=Registered, status_code=201,
             summary="Register another model (e.g. a newer base) as contender:NAME")
def add_model(body: ModelContender, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import contenders

    return Registered(variant_id=contenders.register(owner.store, user, body.name, owner.settings.base_model,
                                                     body.model, body.system_prompt, body.shots(), body.tasks))


@router.post("/contenders/external", response_model=Registered, status_code=201,
             summary="Register an OpenAI-compatible endpoint as external:NAME")
def add_external(body: ExternalContender, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.serving import register_external

    return Registered(variant_id=register_external(owner.store, user, body.name, body.url, body.model, body.key_env,
                                                   body.system_prompt, body.shots(), body.tasks))


@router.delete("/contenders/{variant_id}", status_code=204,
               summary="Forget a contender (its stored outputs and results stay)")
def remove_contender(variant_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> None:
    from core.lifecycle import contenders

    contenders.remove(owner.store, user, variant_id)


# ---- deployment and run records ----------------------------------------------------------------
WAIT = Query(False, description="Wait for the job to end within the request (up to `timeout` seconds): 201 with "
             "its result once it succeeded, 409 `job_failed` with its message if it failed or was cancelled, 202 "
             "if it is still running by then.")
WAIT_TIMEOUT = Query(600.0, gt=0, le=3600, description="Seconds `wait=true` waits at most.")


class Deploy(BaseModel):
    out_dir: str = Field(max_length=1000, description="Folder on the server to write (relative: under the workspace); "
                         "an earlier deployment there is replaced whole, any other non-empty folder is refused.")
    tasks: list[str] = Field(default_factory=list, description="Tasks to deploy (default: every task with a "
                             "promoted version).")
    mode: Literal["adapters", "merged"] = Field("adapters", description="adapters: the base + LoRA adapters on one "
                                                "multi-LoRA engine; merged: each version as a merged full model.")
    tensor_parallel: int | None = Field(None, ge=1, description="GPUs of one node per engine.")
    pipeline_parallel: int | None = Field(None, ge=1, description="Nodes per engine (over Ray).")
    copy_weights: bool = Field(True, description="Copy the weights (with their SHA-256) instead of referencing them.")


class Bundle(BaseModel):
    run_id: str = Field(max_length=200, description="The training run whose record to write.")
    data: bool = Field(True, description="Include the dataset version's rows (the manifest is always there).")


def _waited(owner: Owner, response: Response, job_id: str, status, wait: bool, timeout: float) -> dict:
    """A started job's answer: 202 at once; with `wait`, its end (201, or 409 `job_failed`) or 202 if
    it is still running when `timeout` runs out. `status()` reads the kind's own status."""
    if not wait:
        return plain(status())
    try:
        owner.jobs.wait(job_id, timeout=timeout, poll=0.2)
    except JobError:  # still running: the answer says so
        return plain(status())
    now = status()
    if now["status"] != "succeeded":
        raise ApiError(409, "job_failed", f"Job {job_id} {now['status']}: {now['error'] or 'no reason given'}")
    response.status_code = 201
    return plain(now)


@router.get("/deploy/plan", summary="What a deployment of the promoted versions would be: versions, vLLM commands, "
            "problems")
def deploy_plan(tasks: list[str] = Query(default=[], description="Tasks (default: every promoted one)."),
                mode: Literal["adapters", "merged"] = "adapters", tensor_parallel: int | None = Query(None, ge=1),
                pipeline_parallel: int | None = Query(None, ge=1), user: User = Depends(caller),
                owner: Owner = Depends(the_owner)):
    from core.lifecycle import deploy

    return plain(deploy.plan(owner.store, user, owner.settings, tasks or None, mode, tensor_parallel,
                             pipeline_parallel))


@router.post("/deploy", status_code=202,
             summary="Start writing the deployment folder (a job): weights, serve.sh, deployment.json",
             description="Plans first: a plan with problems, or a non-empty folder that holds no earlier deployment, "
             "is answered 400 and no job starts. Then a job copies and hashes the weights (progress in bytes) and "
             "puts the folder in place whole: 202 with its `job_id`; GET /deploy/jobs/{job_id} gives its progress "
             "and, once it succeeded, the files written.")
def write_deployment(body: Deploy, response: Response, wait: bool = WAIT, timeout: float = WAIT_TIMEOUT,
                     user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import deploy

    folder = Path(body.out_dir).expanduser()
    if not folder.is_absolute():
        folder = owner.settings.workspace_dir / folder
    job_id = deploy.start_deploy(owner.store, owner.jobs, user, owner.settings, folder, body.tasks or None, body.mode,
                                 body.copy_weights, body.tensor_parallel, body.pipeline_parallel)
    return _waited(owner, response, job_id, lambda: _deploy_status(owner, user, job_id), wait, timeout)


def _deploy_status(owner: Owner, user: User, job_id: str) -> dict:
    from core.lifecycle import deploy

    status = deploy.deploy_status(owner.store, owner.jobs, user, job_id)  # the role check first
    if not status["done"]:
        owner.jobs.ingest(job_id)  # what the worker wrote since the monitor's last pass
        status = deploy.deploy_status(owner.store, owner.jobs, user, job_id)
    return {**status, "progress_url": f"/deploy/jobs/{job_id}", "events": f"/jobs/{job_id}/events?follow=true"}


@router.get("/deploy/jobs/{job_id}", summary="A deployment job: its progress in bytes, then the folder and its files",
            description="`status` is running, succeeded, failed or cancelled; `progress` the latest stage (copying "
            "weights, hashing) with bytes done and total; `result` (out_dir, files, bytes, script) once it "
            "succeeded. A failed or cancelled job left the folder as it was.")
def deployment_job(job_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain(_deploy_status(owner, user, job_id))


@router.post("/bundles", status_code=202, summary="Start writing a run's complete record as one zip (a job)",
             description="As `tuneboard bundle`: 202 with its `job_id`; GET /bundles/jobs/{job_id} gives its progress "
             "(hashing, zipping: bytes done and total), then GET /bundles/jobs/{job_id}/zip downloads the zip.")
def start_bundle(body: Bundle, response: Response, wait: bool = WAIT, timeout: float = WAIT_TIMEOUT,
                 user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import bundle as bundles

    job_id = bundles.start_bundle(owner.store, owner.jobs, user, owner.settings, body.run_id, include_data=body.data)
    return _waited(owner, response, job_id, lambda: _bundle_status(owner, user, job_id), wait, timeout)


def _bundle_status(owner: Owner, user: User, job_id: str) -> dict:
    from core.lifecycle import bundle as bundles

    status = bundles.bundle_status(owner.store, owner.jobs, user, job_id)  # the role check first
    if not status["done"]:
        owner.jobs.ingest(job_id)
        status = bundles.bundle_status(owner.store, owner.jobs, user, job_id)
    return {**status, "progress_url": f"/bundles/jobs/{job_id}", "download": f"/bundles/jobs/{job_id}/zip",
            "events": f"/jobs/{job_id}/events?follow=true"}


@router.get("/bundles/jobs/{job_id}", summary="A bundle job: its progress in bytes, then the zip's name and size",
            description="`status` is running, succeeded, failed or cancelled; `progress` the latest stage (hashing, "
            "zipping) with bytes done and total; `result` (file, bytes) once it succeeded: download it from "
            "`download`.")
def bundle_job(job_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    status = _bundle_status(owner, user, job_id)
    if status["result"]:
        status["result"] = {k: v for k, v in status["result"].items() if k != "path"}  # a path on the server
    return plain(status)


@router.get("/bundles/jobs/{job_id}/zip", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "The run's record as one zip."}},
            summary="Download the zip a finished bundle job wrote (409 while it is still being written)")
def download_bundle(job_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.lifecycle import bundle as bundles

    _bundle_status(owner, user, job_id)  # the role check, then what the worker wrote since the last pass
    path = bundles.bundle_file(owner.store, owner.jobs, user, job_id)
    return FileResponse(path, media_type="application/zip", filename=path.name)


@router.post("/bundles/reproduce", response_model=Started, status_code=202,
             summary="Re-run a run from its bundle (the zip as the body): same data, base files, config and seed")
def reproduce_bundle(bundle: bytes = Body(..., media_type="application/zip", description="The bundle's zip."),
                     filename: str = Query("bundle.zip", max_length=200, description="The bundle's file name (kept "
                                           "on the new run's lineage)."),
                     user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Started:
    from core.lifecycle import bundle as bundles

    folder = Path(tempfile.mkdtemp(prefix="tuneboard-reproduce-"))
    try:
        name = Path(filename).name
        path = folder / (name if re.fullmatch(r"[\w-][\w.-]{0,195}\.zip", name) else "bundle.zip")
        path.write_bytes(bundle)
        job_id = bundles.reproduce_bundle(owner.store, owner.jobs, user, owner.settings, path)
    finally:
        _remove(folder)
    return Started(id=job_id, status=owner.jobs.get(job_id)["status"])


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


# ---- one gate, checkpoint sweeps, the lm-eval harness (as `tuneboard regression gate/sweep/harness`) -------
@router.get("/regression/runs/{set_id}/gate",
            summary="The gate of one fine-tune against the base in a finished regression run, per category",
            description="Judged once per regression settings, then read back. `headline` holds the pooled verdict "
            "and what the suite can detect, one line each; `detail` each category's counts, p-values and verdict.")
def regression_gate(set_id: str, variant: str = Query(..., max_length=300, description="The fine-tuned variant id, "
                                                      "e.g. adapter:RUN."),
                    user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import gate as gates
    from core.regression import runs

    gate = runs.judge(owner.store, user, set_id, variant, owner.settings.regression)
    return plain({**gate, "headline": gates.headline(gate["detail"])})


class Sweep(BaseModel):
    run_id: str = Field(max_length=200, description="The training run whose kept checkpoints to sweep.")
    steps: list[int] = Field(default_factory=list, max_length=100, description="Checkpoint steps (default: every "
                             "one the run kept).")
    items: int | None = Field(None, description="Suite items per category (default: all; fewer is quicker but the "
                              "gates read inconclusive).")
    prompts: int | None = Field(None, description="Test-split prompts (default: all).")
    path: str = Field("auto", description=PATHS)


def _sweep(owner: Owner, user: User, sweep_id: str) -> dict:
    """A sweep as it is now: an owner without a monitor (the command line's in-process API) first does
    what the monitor's pass would (Owner.catch_up: its finished test split's scoring starts)."""
    from core.regression import sweep

    sweep.get_sweep(owner.store, user, sweep_id)  # the role check first, then 404
    owner.catch_up()
    return sweep.get_sweep(owner.store, user, sweep_id)


@router.get("/regression/sweeps", summary="Checkpoint sweeps, newest first, with their status (and why)")
def list_sweeps(run_id: str | None = Query(None, description="Only this training run's sweeps."),
                user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import sweep

    return plain(sweep.sweeps(owner.store, user, run_id))


@router.post("/regression/sweeps", status_code=202,
             summary="Sweep a run's kept checkpoints: the suite and its test split, answered by the base and each "
             "checkpoint",
             description="Starts two generation sets (`suite_set`, `task_set`: follow them as jobs); once the test "
             "split is generated it is scored (`score_job`). GET /regression/sweeps/{sweep_id}/table gives the table "
             "when the sweep is ready.")
def start_sweep(body: Sweep, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import sweep

    sweep_id = sweep.start_sweep(owner.store, owner.jobs, owner.settings, user, body.run_id, body.steps or None,
                                 body.items, body.prompts, body.path)
    return plain(sweep.get_sweep(owner.store, user, sweep_id))


@router.get("/regression/sweeps/{sweep_id}",
            summary="A checkpoint sweep: its versions, jobs and status (running, scoring, ready, failed and why)")
def show_sweep(sweep_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain(_sweep(owner, user, sweep_id))


@router.get("/regression/sweeps/{sweep_id}/table",
            summary="A ready sweep's table: per version, task metric and suite accuracy with intervals, and the gate",
            description="One row per version (the base first, then the checkpoints by step); `advice` says which "
            "checkpoint keeps general skills best among those the gate lets through. 400 while the sweep is not ready.")
def sweep_table(sweep_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import sweep

    _sweep(owner, user, sweep_id)
    frame = sweep.table(owner.store, user, owner.settings, sweep_id)
    return plain({"sweep_id": sweep_id, "metric": frame["metric"].iloc[0] if len(frame) else None,
                  "rows": frame, "advice": sweep.advice(frame)})


class Harness(BaseModel):
    variant: str = Field(max_length=300, description="The variant: base, adapter:RUN or merged:RUN.")
    tasks: list[str] = Field(max_length=50, description="lm-eval task names, e.g. arc_easy.")
    limit: int | None = Field(None, description="Examples per task (default: all; fewer is a quick look).")
    path: str = Field("transformers", description="lm-eval backend: transformers or vllm.")
    task_folder: str | None = Field(None, max_length=1000, description="A folder on the server with lm-eval task YAML "
                                    "files of your own (and their data); their tasks run offline.")


@router.post("/regression/harness", response_model=Started, status_code=202,
             summary="Run lm-evaluation-harness tasks on one variant (a job; needs lm-eval and the hub)")
def start_harness(body: Harness, user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Started:
    from core.regression import harness

    job_id = harness.start_harness(owner.store, owner.jobs, owner.settings, user, body.variant, body.tasks,
                                   body.limit, body.path, body.task_folder)
    return Started(id=job_id, status=owner.jobs.get(job_id)["status"])


@router.get("/regression/harness", summary="Stored lm-eval harness results, newest first")
def harness_results(variant: str | None = Query(None, max_length=300, description="Only this variant's."),
                    job_id: str | None = Query(None, max_length=200, description="Only this harness job's."),
                    user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    from core.regression import harness

    frame = harness.results(owner.store, user, variant)
    if job_id is not None:
        frame = frame[frame["job_id"] == job_id]
    return plain(frame)
