"""Datasets: check an uploaded file, import it as a version, list datasets and versions, show one version
with a few examples, and change the metrics a version declares. The same core calls as `tuneboard data`
and the Data page; a file that cannot be imported is answered 400 with every problem (file, line, field)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import caller, the_owner
from api.errors import error_response
from api.plain import plain
from core import datasets
from core.auth import User
from core.datasets import imports
from core.errors import DatasetError, InvalidInput, NotFound
from core.metrics.registry import metric_options_from_text
from core.owner import Owner
from core.tokenizer import token_counter

router = APIRouter(tags=["data"])

FORMAT = Form(description="jsonl, csv or parquet (default: from the file's name).")
MAPPING = Form(description="FIELD=COLUMN, repeatable: which column holds a field, e.g. prompt=question.")
SEED = Form(description="Seed of the train/validation/test split (default: data.seed).")
SPLIT = Form(description="Fractions of train, validation and test, e.g. 0.8,0.1,0.1 (default: data.split). "
             "Ignored when every row names its own split.")
LABELS = Form(description="Comma-separated labels label_accuracy looks for in a response (default: the distinct "
                          "references of the scored split).")
SCHEMA = Form(max_length=200_000, description="A JSON schema (Draft 2020-12) responses must conform to, for "
                                              "schema_valid.")
METRICS = Form(description="Comma-separated metrics that apply to this data, e.g. json_valid,field_accuracy "
               "or tests_pass (default: chosen from the references when scoring).")


def _mapping(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        for item in (p for p in pair.split(",") if p.strip()):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InvalidInput(f"mapping {item!r}: write FIELD=COLUMN, e.g. prompt=question.")
            found[key.strip()] = value.strip()
    return found


def _split(text: str | None) -> tuple[float, float, float] | None:
    if not text or not text.strip():
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput(f"split {text!r}: write three fractions like 0.8,0.1,0.1.") from None
    if len(parts) != 3:
        raise InvalidInput(f"split {text!r}: write three fractions (train, validation, test) like 0.8,0.1,0.1.")
    return parts  # type: ignore[return-value]


def _options(owner: Owner, name: str | None, fmt: str | None, mapping: list[str], seed: int | None,
             split: str | None, metrics: str, labels: str = "", json_schema: str = "") -> datasets.ImportOptions:
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    return datasets.ImportOptions.from_settings(owner.settings, name=(name or "").strip(), format=fmt,
                                                mapping=_mapping(mapping), seed=seed, split=_split(split),
                                                metrics=names or None,
                                                metric_options=metric_options_from_text(labels, json_schema))


def _read(upload: UploadFile) -> tuple[bytes, str]:
    # Only the name's last part: it labels the version and its problems, never a path on this machine.
    name = Path((upload.filename or "").replace("\\", "/")).name or "upload.jsonl"
    return upload.file.read(), name


def _tokens(owner: Owner):
    count, name, _ = token_counter(owner.settings.base_model)
    return count, name or None


def _problems(report) -> list[dict]:
    return [asdict(p) for p in report.problems]


def _refused(exc: DatasetError) -> JSONResponse:
    """A file that cannot be imported: 400 with every problem (file, line, field, message)."""
    return error_response(400, "invalid_dataset", exc.summary, problems=[asdict(p) for p in exc.problems])


@router.post("/datasets/validate", summary="Check a file without importing it (its full validation report)",
             description="Answers the report whatever it finds: `ok` says whether the file can be imported; "
             "`problems` lists each finding with file, line, field, message and severity (errors block an "
             "import, warnings do not). Nothing is written.")
def validate_file(response: Response,
                  file: Annotated[UploadFile, File(description="The dataset file: chat JSONL, CSV or Parquet.")],
                  format: Annotated[Literal["jsonl", "csv", "parquet"] | None, FORMAT] = None,
                  mapping: Annotated[list[str], MAPPING] = [],  # noqa: B006 - FastAPI copies defaults
                  seed: Annotated[int | None, SEED] = None, split: Annotated[str | None, SPLIT] = None,
                  metrics: Annotated[str, METRICS] = "",
                  job: Annotated[bool, Query(description="Check it as a job (large files): 202 with its `job_id`; "
                                             "GET /imports/{job_id} gives its progress, then `result.ok` and the "
                                             "report.")] = False,
                  user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    options = _options(owner, None, format, mapping, seed, split, metrics)
    data, name = _read(file)
    if job:
        try:
            job_id = imports.start_import(owner.store, owner.jobs, user, data, name, options,
                                          base_model=owner.settings.base_model, check_only=True)
        except DatasetError as exc:
            return _refused(exc)
        response.status_code = 202
        return plain({"job_id": job_id, "status": "running", "file": name, "progress": f"/imports/{job_id}",
                      "events": f"/jobs/{job_id}/events?follow=true"})
    report = datasets.check(user, data, name, options, *_tokens(owner))
    return plain(report.to_dict())


@router.post("/datasets", status_code=202, summary="Import an uploaded file as a dataset version (all or nothing)",
             description="By default the import is a job: 202 with its `job_id` at once; GET /imports/{job_id} "
             "gives its progress, then the version (`created` false when the same content and split were imported "
             "before; metrics given here then replace the declared ones) or, for a file with errors, the job "
             "`failed` with every problem in its report; nothing is written unless the whole file is. "
             "GET /jobs/{job_id}/events?follow=true streams its progress events. With `wait=true` the file "
             "is imported within the request (small files): 201 with the new version, 200 when it existed, 400 "
             "`invalid_dataset` with every problem.")
def import_file(response: Response,
                file: Annotated[UploadFile, File(description="The dataset file: chat JSONL, CSV or Parquet.")],
                name: Annotated[str | None, Form(description="Dataset name: lower-case letters, digits, '-' and "
                                                 "'_' (default: from the file's name).")] = None,
                description: Annotated[str, Form(max_length=2000, description="What the data is (kept with the "
                                                 "dataset when it is first imported).")] = "",
                format: Annotated[Literal["jsonl", "csv", "parquet"] | None, FORMAT] = None,
                mapping: Annotated[list[str], MAPPING] = [],  # noqa: B006
                seed: Annotated[int | None, SEED] = None, split: Annotated[str | None, SPLIT] = None,
                metrics: Annotated[str, METRICS] = "",
                labels: Annotated[str, LABELS] = "", json_schema: Annotated[str, SCHEMA] = "",
                wait: Annotated[bool, Query(description="Import within the request instead of as a job "
                                            "(small files).")] = False,
                user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    options = _options(owner, name, format, mapping, seed, split, metrics, labels, json_schema)
    data, file_name = _read(file)
    if not wait:
        try:
            job_id = imports.start_import(owner.store, owner.jobs, user, data, file_name, options, description,
                                          owner.settings.base_model)
        except DatasetError as exc:
            return _refused(exc)
        return plain({"job_id": job_id, "status": "running", "file": file_name,
                      "dataset": datasets.dataset_name(options, file_name), "progress": f"/imports/{job_id}",
                      "events": f"/jobs/{job_id}/events?follow=true"})
    try:
        result = datasets.import_dataset(owner.store, user, data, file_name, options, *_tokens(owner),
                                         description=description)
    except DatasetError as exc:
        return _refused(exc)
    response.status_code = 201 if result.created else 200
    return plain({"dataset": result.dataset, "version_id": result.version_id, "created": result.created,
                  "metrics": options.metrics, "metrics_updated": result.metrics_updated,
                  "report": result.report.to_dict()})


@router.get("/imports/{job_id}", summary="An import job: its progress, then the version it made or its report",
            description="`status` is running, succeeded, failed or cancelled; `progress` the latest stage (read, "
            "checked, near_duplicates, tokens, write) with done and total; `result` (dataset, version_id, created, "
            "metrics_updated) once it succeeded (for a check, `?job=true` of /datasets/validate: ok, examples, errors, "
            "warnings); `report` the full validation report once the file was checked "
            "(for a failed import: every problem, with file, line and field).")
def import_job(job_id: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    status = imports.import_status(owner.store, owner.jobs, user, job_id)  # the role check first
    if not status["done"]:
        owner.jobs.ingest(job_id)  # what the worker wrote since the monitor's last pass
        status = imports.import_status(owner.store, owner.jobs, user, job_id)
    if status["report"] is not None:
        status["report"] = status["report"].to_dict()
    return plain(status)


@router.get("/datasets", summary="Datasets with their description, number of versions and newest version")
def list_datasets(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain(datasets.list_datasets(owner.store, user))


@router.get("/datasets/{name}/versions", summary="The versions of one dataset, newest first")
def dataset_versions(name: str, user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    versions = datasets.list_versions(owner.store, user, name)
    if not versions:
        raise NotFound(f"No dataset {name!r}; GET /datasets lists them.")
    return plain(versions)


@router.get("/versions", summary="Every dataset version, newest first")
def list_versions(user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    return plain(datasets.list_versions(owner.store, user))


@router.get("/versions/{version_id}", summary="One version: manifest, split counts, report and a few examples",
            description="`version_id` may be a unique prefix of at least 4 characters.")
def show_version(version_id: str,
                 split: Annotated[Literal["train", "validation", "test"] | None,
                                  Query(description="Examples of this split only.")] = None,
                 limit: Annotated[int, Query(ge=0, le=200, description="How many examples to include.")] = 3,
                 offset: Annotated[int, Query(ge=0, description="Examples to skip (paging).")] = 0,
                 user: User = Depends(caller), owner: Owner = Depends(the_owner)):
    v = datasets.get_version(owner.store, user, version_id)
    total, rows = datasets.list_examples(owner.store, user, v["version_id"], split=split, limit=limit, offset=offset)
    v["report"] = v["report"].to_dict()
    v["splits"] = {"train": v["n_train"], "validation": v["n_validation"], "test": v["n_test"]}
    v["examples"] = {"split": split, "total": total, "offset": offset, "rows": rows}
    return plain(v)


class DeclaredMetrics(BaseModel):
    metrics: list[str] | None = Field(None, description="Metric names that apply to this version, e.g. "
                                      "[\"json_valid\", \"field_accuracy\"]; empty or null: none declared "
                                      "(scoring chooses from the references again).")
    labels: list[str] | None = Field(None, description="The labels label_accuracy looks for (absent: unchanged; "
                                     "[]: none declared, the distinct references are used).")
    json_schema: dict | None = Field(None, description="The JSON schema schema_valid checks responses against "
                                     "(absent: unchanged; {}: none).")


@router.put("/versions/{version_id}/metrics", summary="Set the metrics a version declares, and what they need "
            "(labels, a JSON schema) (audited)")
def set_metrics(version_id: str, body: DeclaredMetrics, user: User = Depends(caller),
                owner: Owner = Depends(the_owner)):
    if "metrics" in body.model_fields_set or not body.model_fields_set:
        datasets.set_version_metrics(owner.store, user, version_id, body.metrics or None)
    version = datasets.get_version(owner.store, user, version_id)
    stored, options = version["metrics"], version["metric_options"]
    if body.labels is not None or body.json_schema is not None:
        wanted = dict(options or {})
        for key, value in (("labels", body.labels), ("json_schema", body.json_schema)):
            if value is not None:
                wanted[key] = value
        options = datasets.set_metric_options(owner.store, user, version["version_id"],
                                              {k: v for k, v in wanted.items() if v})
    return {"version_id": version["version_id"], "metrics": stored, "metric_options": options}
