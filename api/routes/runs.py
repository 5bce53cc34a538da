"""Training runs, jobs, generation sets and their scores: start a fine-tune from the training config's
fields, read runs and any job with their events (a list, or a stream that ends with the job), cancel,
resume, merge and reproduce; generate a dataset split with several variants and score the outputs with
intervals. The same core calls as `tuneboard train/runs/generate/metrics`; every role check is core's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Annotated, Any, AsyncIterator, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.concurrency import run_in_threadpool

from api.auth import caller, the_owner
from api.fields import described, schema_extra
from api.plain import plain
from core import serving, training
from core.auth import User
from core.errors import InvalidInput, NotFound
from core.jobs import ACTIVE
from core.metrics import results
from core.metrics.scoring import start_scoring
from core.owner import Owner
from core.serving.backends import PATH_HELP, Decoding
from core.fields import fields_of
from core.training.config import PRESETS, TrainConfig
from core.training.estimate import estimate

router = APIRouter()
POLL_S = 0.5  # how often a followed job's new events are looked for
END = "end"   # the type of the stream's last line (not an event of the job: it carries no seq)


# ---- the training config as a request body ---------------------------------------------------
_TYPES = {"str": str, "float": float, "int": int, "bool": bool, "list": list[str]}


def _train_request() -> type[BaseModel]:
    """The body of POST /runs: TrainConfig's fields with their help, ranges and choices in the schema.
    Only the types are checked here; TrainConfig checks the values and names each field it refuses."""
    fields: dict[str, Any] = {}
    for f, spec in fields_of(TrainConfig):
        help_ = spec.help + (" Default: the configured base model (model.base)." if f.name == "base_model" else "")
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            field = Field(default_factory=f.default_factory, description=help_, json_schema_extra=schema_extra(spec))
        else:
            field = Field(f.default, description=help_, json_schema_extra=schema_extra(spec))
        fields[f.name] = (_TYPES[str(f.type)], field)
    fields["preset"] = (str | None, Field(None, description="Start from a preset; the fields given override it. "
                                          + " ".join(f"{p.name}: {p.guidance}" for p in PRESETS.values()),
                                          json_schema_extra={"enum": list(PRESETS)}))
    return create_model("TrainRequest", __config__=ConfigDict(extra="forbid"), **fields)


TrainRequest = _train_request()


def _config(body: BaseModel, owner: Owner) -> TrainConfig:
    given = body.model_dump(exclude_unset=True)
    preset = given.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise InvalidInput(f"preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    defaults = {"base_model": owner.settings.base_model, **(PRESETS[preset].values if preset else {})}
    return TrainConfig.from_dict({**defaults, **given}, "body")


# ---- events: a list, or a stream until the job ends --------------------------------------------
def _poll(owner: Owner, job_id: str, after: int, kind: str | None) -> tuple[dict, list[dict]]:
    owner.catch_up()  # without a monitor (a test's owner, one being shut down), this look takes in the events
    return owner.jobs.look(job_id, after, kind)  # one pass of Jobs.follow, awaited here between passes


async def _stream(owner: Owner, job_id: str, after: int, kind: str | None, timeout: float) -> AsyncIterator[str]:
    deadline, last = time.monotonic() + timeout, after
    while True:
        job, events = await run_in_threadpool(_poll, owner, job_id, last, kind)
        for event in events:
            last = event["seq"]
            yield json.dumps(plain(event)) + "\n"
        ended = job["status"] not in ACTIVE
        if ended or time.monotonic() > deadline:
            yield json.dumps({"type": END, "job_id": job_id, "status": job["status"], "error": job["error"],
                              "ended": ended, "last_seq": last}) + "\n"
            return
        await anyio.sleep(POLL_S)


EVENTS_DOC = ("Without `follow`: the events so far, a JSON list (each with seq, at, type and its own fields). With "
              "`follow=true`: a stream of NDJSON lines, one event per line as it arrives, ending when the job ends "
              f"(or after `timeout` seconds) with one line of type \"{END}\" that gives the job's status and error "
              "(`ended` false: the timeout came first; follow again with `after` = its `last_seq`).")


def _events(owner: Owner, user: User, job_id: str, follow: bool, after: int, kind: str | None, timeout: float):
    owner.jobs.view(user, job_id)  # the role check, then 404 for an unknown id
    if not follow:
        return plain(owner.jobs.history(user, job_id, kind, after))
    return StreamingResponse(_stream(owner, job_id, after, kind, timeout), media_type="application/x-ndjson",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


Follow = Annotated[bool, Query(description="Stream NDJSON lines until the job ends.")]
After = Annotated[int, Query(ge=0, description="Only events after this sequence number.")]
Type = Annotated[str | None, Query(alias="type", description="Only events of this type, e.g. train, eval, "
                                   "progress, parity, finished.")]
Timeout = Annotated[float, Query(gt=0, le=86400, description="With follow: stop following after this many "
                                 "seconds (the job goes on).")]


def _job(owner: Owner, job: dict, warning: bool = True) -> dict:
    out = {k: job.get(k) for k in ("job_id", "kind", "status", "error", "created_by", "created_at", "started_at",
                                   "finished_at", "last_seq")}
    out["config"] = json.loads(job["config"]) if job.get("config") else None
    if warning:  # lines of its event file that could not be taken in (one query per job: not in lists)
        out["warning"] = owner.jobs.skipped_note(job["job_id"])
    return out


# ---- training runs ----------------------------------------------------------------------------
@router.post("/runs", status_code=201, tags=["runs"], summary="Start a fine-tune (the Train page's config fields)",
             description="The body holds TrainConfig's fields (every one optional: the preset's or the default "
                         "value otherwise); the config is checked before anything starts and each refused field is "
                         "named. Answers the run id (follow it with GET /runs/{run_id}/events?follow=true), the "
                         "guide's advice on the values and an estimate of the run.")
def start_run(body: TrainRequest,  # type: ignore[valid-type]
              user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    config = _config(body, owner)
    run_id = training.start_training(owner.store, owner.jobs, user, config, trackers=owner.settings.tracking)
    run = training.get_run(owner.store, user, run_id)
    config = TrainConfig.from_dict(run["config"])  # its dataset version resolved from what was given
    guess = estimate(owner.store, config, owner.settings.training.hourly_price, owner.settings.training.currency)
    return plain({"run_id": run_id, "status": run["status"], "dataset_version": run["dataset_version"],
                  "advice": config.advice(), "estimate": {**dataclasses.asdict(guess), "summary": guess.summary()}})


@router.get("/runs", tags=["runs"], summary="Training runs with status, best validation loss and adapter")
def list_runs(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    rows = training.list_runs(owner.store, user)
    for r in rows:
        r["config"], r["lineage"] = json.loads(r["config"]), json.loads(r["lineage"])
    return plain(rows)


@router.get("/runs/{run_id}", tags=["runs"], summary="A run: status, config, lineage, best checkpoint, progress")
def show_run(run_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    run = training.get_run(owner.store, user, run_id)
    recent = max(0, (owner.jobs.get(run_id)["last_seq"] or 0) - 100)  # the last step is among the newest events
    steps = owner.jobs.history(user, run_id, "train", recent)
    evals = owner.jobs.history(user, run_id, "eval")
    run["progress"] = steps[-1] if steps else None
    run["last_eval"] = evals[-1] if evals else None
    run["warning"] = owner.jobs.skipped_note(run_id)
    return plain(run)


@router.get("/runs/{run_id}/events", tags=["runs"], summary="A run's events: so far, or streamed until it ends",
            description=EVENTS_DOC)
def run_events(run_id: str, follow: Follow = False, after: After = 0, type: Type = None, timeout: Timeout = 3600,
               user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    training.get_run(owner.store, user, run_id)  # a training run, not any job
    return _events(owner, user, run_id, follow, after, type, timeout)


@router.post("/runs/{run_id}/cancel", status_code=202, tags=["runs"],
             summary="Stop a run after its current step (it saves a checkpoint)",
             description="409 when the run is not queued or running. The run's status turns to cancelled once its "
                         "worker stops: follow its events.")
def cancel_run(run_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    training.get_run(owner.store, user, run_id)
    owner.jobs.cancel(user, run_id)
    return {"run_id": run_id, "status": owner.jobs.get(run_id)["status"], "cancel_requested": True}


@router.post("/runs/{run_id}/resume", status_code=202, tags=["runs"],
             summary="Continue a cancelled or failed run from its last checkpoint, same config")
def resume_run(run_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    training.get_run(owner.store, user, run_id)
    owner.jobs.resume(user, run_id)
    return {"run_id": run_id, "status": owner.jobs.get(run_id)["status"]}


class Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: int = Field(8, ge=1, le=1000, description="Validation prompts for the parity check of the merged copy.")


@router.post("/runs/{run_id}/merge", status_code=202, tags=["runs"],
             summary="Merge a finished run's adapter into a full-precision base copy and check parity (a job)",
             description="Answers the merge job's id: GET /jobs/{job_id}/events?type=parity gives the parity "
                         "result once it has finished; the copy then is the variant merged:{run_id}.")
def merge_run(run_id: str, body: Merge | None = None, user: User = Depends(caller),
              owner: Owner = Depends(the_owner)):
    body = body or Merge()
    job_id = training.start_merge(owner.store, owner.jobs, user, run_id, owner.settings.exports_dir,
                                  prompts=body.prompts)
    return {"job_id": job_id, "run_id": run_id, "variant": f"merged:{run_id}"}


@router.post("/runs/{run_id}/reproduce", status_code=201, tags=["runs"],
             summary="A new run from a recorded one's exact config (same data version, base and seed)")
def reproduce_run(run_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    new_id = training.reproduce(owner.store, owner.jobs, user, run_id, owner.settings.tracking)
    return {"run_id": new_id, "reproduces": run_id, "status": owner.jobs.get(new_id)["status"]}


# ---- any job ----------------------------------------------------------------------------------
@router.get("/jobs", tags=["jobs"], summary="Jobs of every kind (training, merge, generation, scoring, ...)")
def list_jobs(kind: Annotated[str | None, Query(description="Only jobs of this kind, e.g. train, merge, generate, "
                                                "score.")] = None,
              user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain([_job(owner, j, warning=False) for j in owner.jobs.list(user, kind)])


@router.get("/jobs/{job_id}", tags=["jobs"], summary="A job's status, error and config")
def show_job(job_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain(_job(owner, owner.jobs.view(user, job_id)))


@router.get("/jobs/{job_id}/events", tags=["jobs"], summary="A job's events: so far, or streamed until it ends",
            description=EVENTS_DOC + " A generation set's id and a score job's id are job ids.")
def job_events(job_id: str, follow: Follow = False, after: After = 0, type: Type = None, timeout: Timeout = 3600,
               user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return _events(owner, user, job_id, follow, after, type, timeout)


# ---- generation sets --------------------------------------------------------------------------
class PromptSource(BaseModel):
    """A dataset version's split, or the text of a prompt file (one of the two)."""
    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(None, description="Dataset version id (or a unique prefix of at least 4 characters).")
    file: str | None = Field(None, max_length=255, description="Instead of a version: a prompt file's name (.txt: "
                             'one prompt per line; .jsonl: {"prompt": ...} or {"messages": [...]} per line) ...')
    content: str | None = Field(None, description="... and its text.")
    split: Literal["train", "validation", "test"] = Field("test", description="Which split's chats are the prompts "
                                                           "(each up to its last assistant answer, the reference).")
    limit: int | None = Field(None, ge=1, description="Only the first N prompts.")
    samples: int = Field(1, ge=1, le=1000, description="Samples per prompt (pass@k); above 1 needs a temperature "
                         "above 0.")


class DecodingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = described(Decoding, "temperature")
    top_p: float = described(Decoding, "top_p")
    max_tokens: int = described(Decoding, "max_tokens")
    seed: int = described(Decoding, "seed")


class NewGenerationSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200, description="Name of the set (default: from the prompts).")
    variants: list[str] = Field(["base"], description="Variant ids side by side: base, adapter:RUN, merged:RUN, "
                                "external:NAME (GET /variants lists them).")
    prompts: PromptSource
    decoding: DecodingIn = Field(default_factory=DecodingIn, description="Decoding of every output (stored "
                                 "with each).")
    path: str = Field("auto", description="auto (serving.path of the config, else the fastest available), or: "
                      + "; ".join(f"{k}: {v}" for k, v in PATH_HELP.items() if k != "openai") + ".")


@router.get("/variants", tags=["generations"], summary="The variants a generation set can hold")
def list_variants(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return [{"variant_id": v.variant_id, "kind": v.kind, "name": v.name, "path": v.path}
            for v in serving.available_variants(owner.store, user, owner.settings.base_model)]


@router.post("/generations", status_code=201, tags=["generations"],
             summary="Generate a dataset split with several variants side by side (a job)",
             description="Answers the set's id, which is also its job's id: follow it with "
                         "GET /jobs/{set_id}/events?follow=true.")
def create_generation_set(body: NewGenerationSet, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    source = body.prompts
    if (source.version is None) == (source.file is None) or (source.file is None) != (source.content is None):
        raise InvalidInput("prompts: give either version (a dataset version's split) or file and content (a prompt "
                           "file's name and text).")
    if source.file is not None:
        if source.samples > 1:
            raise InvalidInput("prompts.samples: several samples per prompt are for pass@k on a dataset split (its "
                               "rows' tests); give prompts.version.")
        items, origin = serving.prompts_from_file(source.content.encode(), source.file)
        items = items[:source.limit] if source.limit else items
    else:
        items, origin = serving.prompts_from_version(owner.store, user, source.version, source.split, source.limit,
                                                     source.samples)
    decoding = Decoding(**body.decoding.model_dump())
    spec = serving.GenerationSpec(body.name or serving.source_label(origin), list(body.variants), items, origin,
                                  decoding, body.path)
    set_id = serving.generate(owner.store, owner.jobs, owner.settings, user, spec)
    return {"set_id": set_id, "name": spec.name, "prompts": len(items), "variants": spec.variants,
            "status": owner.jobs.get(set_id)["status"]}


def _set_row(row: dict) -> dict:
    for column in ("source", "variants", "decoding", "plan"):
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row


@router.get("/generations", tags=["generations"], summary="Generation sets with status and number of outputs")
def list_generation_sets(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain([_set_row(r) for r in serving.list_sets(owner.store, user)])


@router.get("/generations/{set_id}", tags=["generations"],
            summary="A generation set: status, variants, decoding, and per variant its outputs' summary",
            description="Outputs are labeled by model: for leads and engineers, never raters.")
def show_generation_set(set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    record = _set_row(serving.get_set(owner.store, user, set_id))
    record.pop("run_dir", None)
    throughput = {r["variant_id"]: r for r in serving.throughput(owner.store, user, set_id)}
    record["per_variant"] = [{**s.to_dict(), "tokens_out": throughput.get(s.variant_id, {}).get("tokens_out"),
                              "mean_tokens_out": throughput.get(s.variant_id, {}).get("mean_tokens_out"),
                              "backend": throughput.get(s.variant_id, {}).get("backend")}
                             for s in serving.sanity(owner.store, user, set_id)]
    record["parity"] = serving.parity_results(owner.store, user, set_id)
    record["warning"] = owner.jobs.skipped_note(set_id)
    return plain(record)


@router.get("/generations/{set_id}/outputs", tags=["generations"],
            summary="A set's outputs with their prompts and references, labeled by variant")
def generation_outputs(set_id: str,
                       variant: Annotated[str | None, Query(description="Only this variant's outputs.")] = None,
                       limit: Annotated[int, Query(ge=1, le=1000, description="Outputs per page.")] = 100,
                       offset: Annotated[int, Query(ge=0, description="Outputs to skip.")] = 0,
                       user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    serving.get_set(owner.store, user, set_id)  # 404 for an unknown set
    rows = [r for r in serving.outputs(owner.store, user, set_id) if variant is None or r["variant_id"] == variant]
    prompts = serving.prompts_of(owner.store, user, set_id)
    page = [{**r, "messages": prompts.get(r["prompt_idx"], {}).get("messages"),
             "reference": prompts.get(r["prompt_idx"], {}).get("reference")} for r in rows[offset:offset + limit]]
    return plain({"total": len(rows), "offset": offset, "rows": page})


# ---- scores -----------------------------------------------------------------------------------
class Scoring(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: list[str] | None = Field(None, description="Metric names, e.g. [\"exact_match\", \"chrf\"] (default: "
                                      "what the dataset version declares, else what fits the references).")


@router.post("/generations/{set_id}/scores", status_code=202, tags=["scores"],
             summary="Score every output of a generation set (a job)",
             description="Answers the score job's id: follow it with GET /jobs/{job_id}/events?follow=true, then "
                         "read GET /generations/{set_id}/scores. Scoring again replaces the set's scores.")
def score_generation_set(set_id: str, body: Scoring | None = None, user: User = Depends(caller),
                         owner: Owner = Depends(the_owner)):
    metrics = (body.metrics if body else None) or None
    job_id = start_scoring(owner.store, owner.jobs, user, set_id, metrics, owner.settings.metrics)
    return {"job_id": job_id, "set_id": set_id, "status": owner.jobs.get(job_id)["status"]}


@router.get("/generations/{set_id}/scores", tags=["scores"],
            summary="Metric means with intervals per variant, and deltas vs the base with verdicts",
            description="`summary`: variant, metric, mean, lo, hi (the interval at metrics.confidence), n. `deltas`: "
                        "each variant vs its baseline, the difference with its interval, p-values and whether it is "
                        "significant. 404 while the set has no scores.")
def generation_scores(set_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    res = results.latest(owner.store, user, set_id, owner.settings.metrics)
    if res is None:
        raise NotFound(f"{set_id} has no scores yet: POST /generations/{set_id}/scores starts scoring.")
    return plain({"set_id": res.set_id, "name": res.name, "metrics": res.metrics, "primary": res.primary,
                  "computed_at": res.computed_at, "confidence": res.settings.get("confidence"),
                  "settings": res.settings, "variants": res.names, "summary": res.summary, "deltas": res.deltas,
                  "verdict": results.verdict(res), "comparisons": results.comparisons_note(res)})


@router.get("/generations/{set_id}/scores/export", tags=["scores"], response_class=Response,
            summary="A set's scores as a file: the summary, the deltas or every score as CSV or Parquet, or the "
            "HTML report",
            description="The stored summary (computed now if the scores changed), as `tuneboard metrics show "
                        "--export` writes it. 404 while the set has no scores.",
            responses={200: {"content": {"text/csv": {}, "text/html": {}, "application/vnd.apache.parquet": {}},
                             "description": "The file, with its name in Content-Disposition."}})
def export_scores(set_id: str,
                  format: Annotated[Literal["csv", "parquet", "html"], Query(
                      description="The file's format; html is the whole report.")] = "csv",
                  table: Annotated[Literal["summary", "deltas", "scores"], Query(
                      description="Which table (csv, parquet): summary, deltas, or scores (every per-example "
                      "score).")] = "summary",
                  user: User = Depends(caller), owner: Owner = Depends(the_owner)) -> Response:
    res = results.latest(owner.store, user, set_id, owner.settings.metrics)
    if res is None:
        raise NotFound(f"{set_id} has no scores yet: POST /generations/{set_id}/scores starts scoring.")
    data, name, mime = results.export(owner.store, user, res, format, table)
    return Response(data, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})
