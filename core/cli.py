"""The `tuneboard` command: the same core services the pages call.

The command line acts with engineer rights (whoever runs it can read the workspace files).
Commands that need the database become its owner for their duration; while the dashboard
runs they are refused with a clear message (`data validate` needs no database and always
works). Errors meant for people print one clean message and exit non-zero; never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from core.auth import CLI_USER, ROLES
from core.config import Settings, documented_defaults, load_settings
from core.errors import DatasetError, InvalidInput, TuneboardError
from core.serving.backends import Decoding


def decoding_help(field: str) -> str:
    return Decoding.HELP[field]

app = typer.Typer(help="tuneboard: decide whether a fine-tuned LLM beats its base model.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Import, validate and browse datasets.", no_args_is_help=True)
users_app = typer.Typer(help="Manage accounts (engineer).", no_args_is_help=True)
runs_app = typer.Typer(help="Training runs: list, show, cancel, resume, merge.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(users_app, name="users")
app.add_typer(runs_app, name="runs")
contenders_app = typer.Typer(help="External OpenAI-compatible models to compare against.", no_args_is_help=True)
app.add_typer(contenders_app, name="contenders")
metrics_app = typer.Typer(help="Task metrics of generation sets: score, show.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")
review_app = typer.Typer(help="Blind A/B review: pair sets, raters, results.", no_args_is_help=True)
app.add_typer(review_app, name="review")
# Pipes get wide lines: rich would wrap tables at 80 columns and break one-row-per-line output.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_state: dict = {}


@app.callback()
def _root(config: Optional[Path] = typer.Option(None, "--config", help="Path of tuneboard.toml "
                                                 "(default ./tuneboard.toml or $TUNEBOARD_CONFIG).")) -> None:
    _state["config"] = config


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = load_settings(_state.get("config"))
    return _state["settings"]


def store():
    if "store" not in _state:
        from core.store import open_store

        _state["store"] = open_store(settings())
    return _state["store"]


def _print_admin_password(password: str | None) -> None:
    if password:
        out.print(f"Created the engineer account [bold]admin[/] with password [bold]{password}[/]"
                  " (shown once; set TUNEBOARD_ADMIN_PASSWORD to choose it).")


# ---- top level -------------------------------------------------------------------------
@app.command()
def init() -> None:
    """Create the workspace and database, and the first engineer account."""
    from core.users import ensure_admin

    s = store()
    _print_admin_password(ensure_admin(s, dict(os.environ)))
    out.print(f"Workspace ready: {settings().workspace_dir} (schema version {s.schema_version()}).")


@app.command("config")
def config_cmd() -> None:
    """Print every setting with its default and help, as a tuneboard.toml."""
    out.print(documented_defaults(), markup=False)


@app.command()
def serve(port: Optional[int] = typer.Option(None, help="Port (default server.port)."),
          host: Optional[str] = typer.Option(None, help="Address (default server.host).")) -> None:
    """Start the dashboard (it owns the database while it runs)."""
    import dashboard

    cfg = settings()
    # Fail early, with a clean message, if another process owns the database.
    from core.store import open_store
    from core.users import ensure_admin

    s = open_store(cfg)
    _print_admin_password(ensure_admin(s, dict(os.environ)))
    s.close()
    app_path = Path(dashboard.__file__).with_name("app.py")
    args = [sys.executable, "-m", "streamlit", "run", str(app_path),
            "--server.port", str(port or cfg.server.port), "--server.address", host or cfg.server.host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.maxUploadSize", str(cfg.data.max_upload_mb), "--theme.base", "light",
            "--client.toolbarMode", "minimal", "--server.fileWatcherType", "none",
            # Streamlit's gc.collect(2) after every page run walks the whole heap (torch and
            # transformers are loaded): with 50 raters it was half the server's CPU (py-spy).
            # Python's own collector still runs; dashboard/context.py freezes the start-up heap.
            "--runner.postScriptGC", "false"]
    out.print(f"tuneboard dashboard on http://{host or cfg.server.host}:{port or cfg.server.port}")
    sys.stdout.flush()
    os.execv(sys.executable, args)


@app.command()
def demo(serve_after: bool = typer.Option(False, "--serve", help="Start the dashboard afterwards."),
         examples: int = typer.Option(1200, help="Number of demo examples.", min=100, max=100_000)) -> None:
    """Build the offline demo (model, dataset, accounts) if not cached, and print the logins."""
    from core.demo.setup import build_demo

    result = build_demo(store(), settings(), examples=examples, log=lambda m: out.print(m, markup=False))
    out.print("")
    out.print("[bold]Logins[/]")
    for username, role, password in result.logins:
        out.print(f"  {role:9} {username:8} {password}")
    if serve_after:
        store().close()
        _state.pop("store")
        serve(None, None)


# ---- data ------------------------------------------------------------------------------
def _mapping(pairs: list[str]) -> dict[str, str]:
    out_map = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidInput(f"--map {pair!r}: write FIELD=COLUMN, e.g. --map prompt=question")
        key, value = pair.split("=", 1)
        out_map[key.strip()] = value.strip()
    return out_map


def _split(text: Optional[str]) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput(f"--split {text!r}: write three fractions like 0.8,0.1,0.1") from None
    return parts  # type: ignore[return-value]


def _read(path: Path) -> bytes:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file.")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder; give a .jsonl, .csv or .parquet file.")
    return path.read_bytes()


def _options(name, fmt, mapping, seed, split, metrics: str = ""):
    from core.datasets import ImportOptions

    return ImportOptions.from_settings(settings(), name=name or "", format=fmt, mapping=_mapping(mapping),
                                       seed=seed, split=_split(split), metrics=_csv(metrics) or None)


def _counter(log: bool):
    from core.models import token_counter

    count, name, why = token_counter(settings().base_model)
    if why and log:
        err.print(f"note: token statistics skipped: {why}", markup=False)
    return count, name or None


def _print_report(report, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict(), default=str))
        return
    for p in report.problems:
        out.print(str(p), markup=False)
    tok = report.tokens
    summary = (f"{report.file}: {report.rows} rows, {report.valid} valid, {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings ({report.duplicates} exact duplicates, "
               f"{report.near_duplicates} near-duplicates)")
    out.print(summary, markup=False)
    if tok.get("available"):
        out.print(f"tokens ({tok['tokenizer']}): min {tok['min']}, median {tok['median']}, p95 {tok['p95']}, "
                  f"max {tok['max']}; {tok['truncated']} over max_seq_len {tok['max_seq_len']}", markup=False)
    if report.splits:
        out.print("split: " + ", ".join(f"{k} {v}" for k, v in report.splits.items())
                  + "; leakage: " + ", ".join(f"{k} {v}" for k, v in report.leakage.items()), markup=False)


@data_app.command("validate")
def data_validate(path: Path,
                  as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
                  fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or parquet."),
                  mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, e.g. prompt=question."),
                  seed: Optional[int] = typer.Option(None, help="Split seed (default data.seed)."),
                  split: Optional[str] = typer.Option(None, help="Fractions, e.g. 0.8,0.1,0.1.")) -> None:
    """Check a file; exit 0 when it can be imported, 1 when it cannot (one problem per line)."""
    from core.datasets import validate

    data = _read(path)
    options = _options(None, fmt, mapping, seed, split)
    count, name = _counter(not as_json)
    report = validate(data, path.name, options, count, name).report
    _print_report(report, as_json)
    raise typer.Exit(0 if report.ok else 1)


@data_app.command("import")
def data_import(path: Path,
                name: Optional[str] = typer.Option(None, help="Dataset name (default: from the file name)."),
                fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or parquet."),
                mapping: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, e.g. prompt=question."),
                seed: Optional[int] = typer.Option(None, help="Split seed (default data.seed)."),
                split: Optional[str] = typer.Option(None, help="Fractions, e.g. 0.8,0.1,0.1."),
                metrics: str = typer.Option("", help="Comma-separated metrics that apply to this data, e.g. "
                                            "json_valid,field_accuracy or tests_pass (default: chosen from the "
                                            "references when scoring). Re-importing the same file with --metrics "
                                            "replaces the declared ones."),
                as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Validate and import a file as a dataset version (all or nothing)."""
    from core.datasets import import_dataset

    data = _read(path)
    options = _options(name, fmt, mapping, seed, split, metrics)
    count, tok_name = _counter(not as_json)
    result = import_dataset(store(), CLI_USER, data, path.name, options, count, tok_name)
    if as_json:
        out.print_json(json.dumps({"dataset": result.dataset, "version": result.version_id,
                                   "created": result.created, "metrics": options.metrics,
                                   "metrics_updated": result.metrics_updated, "report": result.report.to_dict()},
                                  default=str))
        return
    _print_report(result.report, False)
    verb = "Imported" if result.created else "Already imported (same content and split):"
    out.print(f"{verb} {result.dataset} version {result.version_id}", markup=False)
    if result.metrics_updated:
        out.print(f"declared metrics changed to {', '.join(options.metrics or [])}", markup=False)


@data_app.command("metrics")
def data_metrics(version: str,
                 metrics: str = typer.Option("", "--set", help="Comma-separated metric names that apply, e.g. "
                                             "tests_pass or json_valid,field_accuracy."),
                 clear: bool = typer.Option(False, "--clear", help="Declare none: scoring chooses from the "
                                            "references again.")) -> None:
    """Show or change which metrics a dataset version declares (changes are audited)."""
    from core.datasets import get_version, set_version_metrics

    if metrics and clear:
        raise InvalidInput("--set and --clear: give one of them.")
    if metrics or clear:
        set_version_metrics(store(), CLI_USER, version, None if clear else _csv(metrics))
    declared = get_version(store(), CLI_USER, version)["metrics"]
    out.print(f"{version}: " + (", ".join(declared) if declared else "no metrics declared (chosen from the "
                                "references when scoring)"), markup=False)


@data_app.command("list")
def data_list() -> None:
    """List dataset versions."""
    from core.datasets import list_versions

    table = Table("dataset", "version", "examples", "train/val/test", "source", "created")
    for v in list_versions(store(), CLI_USER):
        table.add_row(v["dataset"], v["version_id"], str(v["n_examples"]),
                      f"{v['n_train']}/{v['n_validation']}/{v['n_test']}", v["source_name"],
                      str(v["created_at"])[:19])
    out.print(table)


@data_app.command("show")
def data_show(version: str, examples: int = typer.Option(3, help="How many examples to print."),
              split: Optional[str] = typer.Option(None, help="Only this split.")) -> None:
    """Show a version's report and a few examples."""
    from core.datasets import get_version, list_examples

    v = get_version(store(), CLI_USER, version)
    out.print(f"{v['dataset']} version {v['version_id']} from {v['source_name']} ({v['source_format']}), "
              f"split {json.dumps(v['split_spec'])}; metrics: "
              f"{', '.join(v['metrics']) if v['metrics'] else 'chosen from the references'}", markup=False)
    _print_report(v["report"], False)
    total, rows = list_examples(store(), CLI_USER, v["version_id"], split=split, limit=examples)
    for r in rows:
        out.print(f"--- example {r['idx']} ({r['split']}, line {r['source_line']}, {r['n_tokens']} tokens)",
                  markup=False)
        for m in r["messages"]:
            out.print(f"[{m['role']}] {m['content']}", markup=False)


# ---- users -----------------------------------------------------------------------------
@users_app.command("add")
def users_add(username: str, role: str = typer.Option(..., help=f"One of {', '.join(ROLES)}."),
              password_env: Optional[str] = typer.Option(None, help="Read the password from this environment "
                                                         "variable instead of prompting.")) -> None:
    """Create an account. The password is prompted for, read from --password-env, or generated."""
    from core.users import create_user, generate_password

    generated = False
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise InvalidInput(f"--password-env {password_env}: that environment variable is empty or unset.")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password, generated = generate_password(), True
    create_user(store(), CLI_USER, username, password, role, settings().auth.min_password_length)
    out.print(f"Created {username} ({role})" + (f" with password {password} (shown once)" if generated else ""),
              markup=False)


@users_app.command("list")
def users_list() -> None:
    """List accounts."""
    from core.users import list_users

    table = Table("username", "role", "disabled", "created", "by")
    for u in list_users(store(), CLI_USER):
        table.add_row(u["username"], u["role"], "yes" if u["disabled"] else "", str(u["created_at"])[:19],
                      u["created_by"] or "")
    out.print(table)


@users_app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    """Change an account's role."""
    from core.users import set_role

    set_role(store(), CLI_USER, username, role)
    out.print(f"{username} is now {role}", markup=False)


# ---- training --------------------------------------------------------------------------
def owner():
    """This command as the database's owner, with the job service (ingests worker events)."""
    if "owner" not in _state:
        from core.owner import Owner

        _state["owner"] = Owner.open(settings(), monitor=False)
        _state["store"] = _state["owner"].store
        _print_admin_password(_state["owner"].generated_admin_password)
    return _state["owner"]


def _follow(job_id: str, timeout: float) -> dict:
    """Ingest and print a job's events until it ends (Ctrl-C leaves the worker running)."""
    import time

    o, seen, deadline = owner(), 0, time.monotonic() + timeout
    while True:
        o.jobs.reconcile()
        events = o.jobs.events(job_id)
        for e in events[seen:]:
            if e["type"] == "train" and (e["step"] % 10 == 0 or e["step"] == e["max_steps"]):
                out.print(f"step {e['step']}/{e['max_steps']}  loss {e['loss']:.4f}  lr {e['learning_rate']:.2e}  "
                          f"{e['tokens_per_s']:.0f} tok/s  eta {e['eta_s']:.0f} s", markup=False)
            elif e["type"] == "eval":
                out.print(f"step {e['step']}  validation loss {e['eval_loss']:.4f}" + ("  (best)" if e["best"] else ""),
                          markup=False)
            elif e["type"] == "warning":
                out.print(f"warning: {e.get('message')}", markup=False)
        seen = len(events)
        job = o.jobs.get(job_id)
        if job["status"] not in ("queued", "running"):
            note = o.jobs.skipped_note(job_id)
            if note:
                out.print(f"warning: {note}", markup=False)
            return job
        if time.monotonic() > deadline:
            out.print(f"still running; follow it with `tuneboard runs show {job_id}`", markup=False)
            return job
        time.sleep(1.0)


@app.command()
def train(config: Path = typer.Option(..., "--config", "-c", help="TOML file with a [train] table "
                                      "(the fields of the Train page; `tuneboard runs show` prints one)."),
          preset: Optional[str] = typer.Option(None, help="Start from a preset; the file's values override it."),
          detach: bool = typer.Option(False, help="Start the worker and return at once."),
          timeout: float = typer.Option(24 * 3600, help="Stop following after this many seconds.")) -> None:
    """Start a fine-tune from a config file and follow it (the same config the Train page builds)."""
    from core.training import start_training
    from core.training.config import PRESETS, TrainConfig
    from core.training.estimate import estimate

    if preset and preset not in PRESETS:
        raise InvalidInput(f"--preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    defaults = {"base_model": settings().base_model, **(PRESETS[preset].values if preset else {})}
    cfg = TrainConfig.from_toml(config, defaults)
    for note in cfg.advice():
        err.print(f"note: {note}", markup=False)
    o = owner()
    job_id = start_training(o.store, o.jobs, CLI_USER, cfg)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "dataset_version": o.store.scalar(
        "SELECT dataset_version FROM runs WHERE job_id = ?", [job_id])})
    out.print(f"started {job_id}: " + estimate(o.store, cfg, settings().training.hourly_price,
                                              settings().training.currency).summary(), markup=False)
    if detach:
        return
    job = _follow(job_id, timeout)
    out.print(f"{job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""), markup=False)
    if job["status"] == "failed":
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list() -> None:
    """Training runs with status, best validation loss and adapter."""
    from core.training import list_runs

    owner()
    table = Table("run", "status", "method", "dataset", "best val loss", "steps", "adapter")
    for r in list_runs(store(), CLI_USER):
        table.add_row(r["job_id"], r["status"], r["method"], r["dataset_version"],
                      "" if r["best_eval_loss"] is None else f"{r['best_eval_loss']:.4f}",
                      "" if r["final_step"] is None else str(r["final_step"]), r["adapter_dir"] or "")
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: str) -> None:
    """A run's status, config (as TOML for `tuneboard train`), lineage and last events."""
    from core.training import get_run

    owner()
    run = get_run(store(), CLI_USER, run_id)
    out.print(f"{run_id}: {run['status']}" + (f"\n{run['error']}" if run["error"] else ""), markup=False)
    note = owner().jobs.skipped_note(run_id)
    if note:
        out.print(f"warning: {note}", markup=False)
    out.print("[train]", markup=False)
    for key, value in run["config"].items():
        out.print(f"{key} = {json.dumps(value)}", markup=False)
    out.print("# lineage: " + json.dumps(run["lineage"], sort_keys=True), markup=False)
    for e in owner().jobs.events(run_id)[-5:]:
        out.print(f"# event {e['seq']} {e['type']}: " + json.dumps({k: v for k, v in e.items()
                                                                       if k not in ("seq", "at", "type")}),
                  markup=False)


@runs_app.command("cancel")
def runs_cancel(run_id: str) -> None:
    """Stop a run after its current step, saving a checkpoint."""
    owner().jobs.cancel(CLI_USER, run_id)
    job = _follow(run_id, 600)
    out.print(f"{run_id}: {job['status']}", markup=False)


@runs_app.command("resume")
def runs_resume(run_id: str, detach: bool = typer.Option(False, help="Return at once.")) -> None:
    """Continue a cancelled or failed run from its last checkpoint, same config."""
    owner().jobs.resume(CLI_USER, run_id)
    if not detach:
        job = _follow(run_id, 24 * 3600)
        out.print(f"{run_id}: {job['status']}", markup=False)


@runs_app.command("merge")
def runs_merge(run_id: str, prompts: int = typer.Option(8, min=1, help="Validation prompts for the parity check.")) -> None:
    """Merge a run's adapter into a full-precision base copy, export it and check parity."""
    from core.training import start_merge

    o = owner()
    job_id = start_merge(o.store, o.jobs, CLI_USER, run_id, settings().exports_dir, prompts=prompts)
    job = _follow(job_id, 3600)
    parity = o.jobs.events(job_id, "parity")
    if job["status"] != "succeeded" or not parity:
        raise InvalidInput(f"merge {job_id} {job['status']}: {job['error'] or 'no parity result'}")
    p = parity[-1]
    verdict = "good" if p["ok"] else "FAILED parity: do not use this export"
    out.print(f"exported {json.loads(job['config'])['output_dir']}: {verdict} ({p['identical_greedy']}/"
              f"{p['prompts']} identical greedy outputs, max logit diff {p['max_logit_diff']:.2e})", markup=False)
    if not p["ok"]:
        raise typer.Exit(1)


# ---- generation ------------------------------------------------------------------------
@app.command()
def generate(prompts: Optional[str] = typer.Option(None, "--prompts", "-p", help="A dataset version's split as VERSION[:SPLIT] "
                                         "(split test by default), or a prompt file (.txt: one per line; .jsonl: "
                                         '{"prompt": ...} or {"messages": [...]} per line).'),
             variants: str = typer.Option("base", "--variants", "-v", help="Comma-separated variant ids: base, "
                                          "adapter:RUN, merged:RUN, external:NAME (`tuneboard generate --list`)."),
             name: Optional[str] = typer.Option(None, help="Name of the set (default: from the prompts)."),
             limit: Optional[int] = typer.Option(None, min=1, help="Only the first N prompts."),
             max_tokens: int = typer.Option(128, help=decoding_help("max_tokens")),
             temperature: float = typer.Option(0.0, help=decoding_help("temperature")),
             top_p: float = typer.Option(1.0, help=decoding_help("top_p")),
             seed: int = typer.Option(0, help=decoding_help("seed")),
             samples: int = typer.Option(1, min=1, help="Samples per prompt (pass@k): each dataset prompt is "
                                         "generated this many times; needs --temperature above 0."),
             path: Optional[str] = typer.Option(None, help="auto, vllm-lora, vllm-merged or transformers (default: "
                                                "serving.path of the config)."),
             list_variants: bool = typer.Option(False, "--list", help="List the variants that can be generated."),
             detach: bool = typer.Option(False, help="Start the worker and return at once.")) -> None:
    """Generate a prompt set with several variants side by side; every output is stored with its decoding."""
    from core import serving

    o = owner()
    if list_variants:
        table = Table("variant", "kind", "name", "path")
        for v in serving.available_variants(o.store, CLI_USER, settings().base_model):
            table.add_row(v.variant_id, v.kind, v.name, v.path)
        out.print(table)
        return
    if not prompts:
        raise InvalidInput("--prompts: give a dataset version (VERSION or VERSION:SPLIT) or a prompt file.")
    file = Path(prompts)
    if file.suffix in (".txt", ".jsonl", ".json") or file.exists():
        if samples > 1:
            raise InvalidInput("--samples: several samples per prompt are for pass@k on a dataset split (its rows' "
                               "tests); give --prompts VERSION[:SPLIT].")
        items, source = serving.prompts_from_file(_read(file), file.name)
        items = items[:limit] if limit else items
    else:
        version, _, split = prompts.partition(":")
        items, source = serving.prompts_from_version(o.store, CLI_USER, version, split or "test", limit, samples)
    decoding = serving.Decoding(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    label = name or (source.get("name") or f"{source.get('dataset')} {source.get('split')}")
    spec = serving.GenerationSpec(label, [v.strip() for v in variants.split(",") if v.strip()], items, source,
                                  decoding, path or "auto")
    set_id = serving.generate(o.store, o.jobs, settings(), CLI_USER, spec)
    out.print(f"started {set_id}: {len(items)} prompts x {len(spec.variants)} variants", markup=False)
    if detach:
        return
    import time

    last = 0
    while True:
        o.jobs.reconcile()
        for e in o.jobs.events(set_id, after=last):
            last = e["seq"]
            if e["type"] == "plan":
                out.print(f"path: {e['path']} ({e['reason']})", markup=False)
            elif e["type"] == "progress" and e.get("stage"):
                out.print(e["stage"], markup=False)
            elif e["type"] == "progress" and "done" in e:
                out.print(f"{e['done']}/{e['total']} outputs", markup=False)
            elif e["type"] == "parity":
                out.print(f"parity {e['variant_id']}: {e['exact']}/{e['n']} identical to {e['reference']} "
                          f"(mean common prefix {e['mean_common_prefix']:.1f} tokens)", markup=False)
        job = o.jobs.get(set_id)
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(1.0)
    for s in serving.sanity(o.store, CLI_USER, set_id):
        out.print(f"{s.variant_id}: {s.n} outputs" + ("".join(f"\n  flag: {f}" for f in s.flags) or ", no flags"),
                  markup=False)
    out.print(f"{set_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""), markup=False)
    if job["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("serve-models")
def serve_models(port: Optional[int] = typer.Option(None, help="Port (default serving.server_port)."),
                 host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for other machines: "
                                          "needs --api-key-env)."),
                 api_key_env: str = typer.Option("", help="Name of the environment variable holding the key "
                                                 "clients must send (required off this machine).")) -> None:
    """Run vLLM's OpenAI-compatible server over the base model and its adapters until Ctrl-C."""
    from core.serving import available_variants, vllm_missing
    from core.serving.server import VLLMServer
    from core.serving.vllm_engine import context_limit

    if vllm_missing():
        raise InvalidInput(f"serve-models runs vLLM, but {vllm_missing()}.")
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key_env:
        # Outputs are labeled by model and adapters can be loaded at run time: never open to a network.
        raise InvalidInput(f"--host {host} serves other machines: give --api-key-env VAR (the key clients must "
                           "send, read from that environment variable).")
    base = settings().base_model
    adapters = {v.variant_id: v.path for v in available_variants(owner().store, CLI_USER, base)
                if v.kind == "adapter"}
    owner().close()  # the server runs for long: leave the database to the dashboard
    _state.pop("owner")
    _state.pop("store", None)
    limit = context_limit(base)
    max_len = min(settings().serving.max_model_len, limit) if limit else settings().serving.max_model_len
    server = VLLMServer(base, adapters, host=host, port=port or settings().serving.server_port, max_model_len=max_len,
                        log_path=settings().workspace_dir / "serve-models.log", api_key_env=api_key_env)
    out.print(f"starting vLLM over {base} with {len(adapters)} adapter(s); log: {server.log_path}", markup=False)
    with server:
        out.print(f"ready: {server.url}  models: {', '.join(server.models())}", markup=False)
        out.print(f"try: curl {server.url}/chat/completions -H 'Content-Type: application/json' "
                  """-d '{"model": "base", "messages": [{"role": "user", "content": "Hello"}]}'""", markup=False)
        import time

        while server.alive():
            time.sleep(1)
    raise InvalidInput(f"the vLLM server stopped; see {server.log_path}")


SYSTEM_PROMPT = typer.Option("", help="A system prompt the contender answers with (replaces the prompt's own).")
FEW_SHOT = typer.Option(None, help="A JSONL file of few-shot examples, one {\"user\": ..., \"assistant\": ...} "
                        "per line, put before every prompt.")
TASKS = typer.Option("", help="Comma-separated tasks (datasets) it competes on (default: all).")


def _shots(few_shot: Optional[Path]) -> list:
    from core.lifecycle.contenders import read_few_shot

    if few_shot is None:
        return []
    if not few_shot.is_file():
        raise InvalidInput(f"--few-shot: {few_shot} is not a file.")
    return read_few_shot(few_shot.read_bytes(), few_shot.name)


@contenders_app.command("add")
def contenders_add(name: str, url: str = typer.Option(..., help="OpenAI-compatible base URL, e.g. "
                                                      "https://api.example.com/v1."),
                   model: str = typer.Option(..., help="Model name the endpoint expects."),
                   key_env: str = typer.Option("", help="Name of the environment variable holding the API key "
                                               "(the key itself is never stored)."),
                   system_prompt: str = SYSTEM_PROMPT, few_shot: Optional[Path] = FEW_SHOT,
                   tasks: str = TASKS) -> None:
    """Register an external model as a contender (variant external:NAME)."""
    from core.serving import register_external

    variant = register_external(owner().store, CLI_USER, name, url, model, key_env, system_prompt, _shots(few_shot),
                                _csv(tasks))
    out.print(f"registered {variant}", markup=False)


@contenders_app.command("model")
def contenders_model(name: str, model: str = typer.Option("", help="A newer base: a hub id or a local model folder "
                                                           "(empty: the configured base, with a prompt)."),
                     system_prompt: str = SYSTEM_PROMPT, few_shot: Optional[Path] = FEW_SHOT,
                     tasks: str = TASKS) -> None:
    """Register another model, or the base with a system prompt and few-shot examples, as contender:NAME."""
    from core.lifecycle.contenders import register

    variant = register(owner().store, CLI_USER, name, settings().base_model, model, system_prompt, _shots(few_shot),
                       _csv(tasks))
    out.print(f"registered {variant}", markup=False)


@metrics_app.command("score")
def metrics_score(generation_set: str,
                  metrics: str = typer.Option("", help="Comma-separated metric names (default: what fits the "
                                              "references; see `tuneboard metrics show --help`)."),
                  timeout: float = typer.Option(3600, help="Seconds to follow the job.")) -> None:
    """Score every output of a generation set as a job (parallel over cores), then show the summary."""
    from core.metrics.scoring import start_scoring

    o = owner()
    job_id = start_scoring(o.store, o.jobs, CLI_USER, generation_set, _csv(metrics) or None, settings().metrics)
    out.print(f"started {job_id}", markup=False)
    job = _follow(job_id, timeout)
    out.print(f"{job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""), markup=False)
    if job["status"] == "succeeded":
        _print_metrics(generation_set)


@metrics_app.command("show")
def metrics_show(generation_set: str,
                 export: Optional[str] = typer.Option(None, help="csv, parquet or html: write a file instead of "
                                                      "printing."),
                 table: str = typer.Option("summary", help="With csv/parquet: summary, deltas or scores (every "
                                           "per-example score)."),
                 out_dir: Path = typer.Option(Path("."), help="Folder for --export.")) -> None:
    """Means with CIs per variant and metric, and deltas vs the base with adjusted p-values
    (the stored summary; computed now if the scores changed).

    Metrics: exact_match, rouge1, rouge2, rougeL, bleu, chrf, ter, json_valid, field_accuracy, words,
    tests_pass (shown as pass@k: metrics.pass_k, each k up to the samples per prompt).
    """
    from core.metrics import results

    res = results.latest(store(), CLI_USER, generation_set, settings().metrics)
    if res is None:
        raise InvalidInput(f"{generation_set} has no scores yet: run `tuneboard metrics score {generation_set}`.")
    if export:
        data, name, _ = results.export(store(), CLI_USER, res, export, table)
        target = out_dir / name
        target.write_bytes(data)
        out.print(f"wrote {target}", markup=False)
        return
    _print_metrics(generation_set)


def _print_metrics(generation_set: str) -> None:
    from core.metrics import results

    cfg = settings().metrics
    res = results.latest(store(), CLI_USER, generation_set, cfg)
    if res is None:
        raise InvalidInput(f"{generation_set} has no scores yet: run `tuneboard metrics score {generation_set}`.")
    ci = f"{cfg.confidence:.0%} CI"
    table = Table("variant", "metric", "mean", ci, "n")
    for m in res.summary.to_dict("records"):
        table.add_row(m["variant"], m["metric"], f"{m['mean']:.3f}", f"{m['lo']:.3f}-{m['hi']:.3f}", str(m["n"]))
    out.print(table)
    if len(res.deltas):
        table = Table("variant", "metric", "delta vs base", "interval", "p", "p (adjusted)", "verdict")
        for d in res.deltas.to_dict("records"):
            table.add_row(d["variant"], d["metric"], f"{d['delta']:+.3f}", f"{d['lo']:+.3f}..{d['hi']:+.3f}",
                          _p(d["p"]), _p(d["p_holm"]),
                          f"{d['direction']}{' (significant)' if d['significant'] else ''}")
        out.print(table)
        out.print(results.comparisons_note(res), markup=False)


def _p(p) -> str:
    """A p-value, or '-' where none was computed (a descriptive metric, or one outside the tested family)."""
    return "-" if p is None or p != p else f"{p:.3g}"


@review_app.command("list")
def review_list() -> None:
    """Pair sets with their pairs, gold pairs, assignments and votes."""
    from core.review.pairs import list_pair_sets

    table = Table("pair set", "name", "generation set", "pairs", "gold", "assigned", "votes")
    for r in list_pair_sets(store(), CLI_USER):
        table.add_row(r["pair_set_id"], r["name"], r["generation_set_id"], str(r["pairs"]), str(r["gold"]),
                      str(r["assigned"]), str(r["votes"]))
    out.print(table)


@review_app.command("create")
def review_create(generation_set: str, name: str = typer.Option(..., help="Shown to raters; must not name a model."),
                  variants: str = typer.Option(..., help="Comma-separated variant ids of the generation set."),
                  design: str = typer.Option("baseline", help="baseline or all-pairs."),
                  baseline: str = typer.Option("base", help="The variant the others are compared with (baseline)."),
                  raters: str = typer.Option("", help="Comma-separated rater accounts to assign now."),
                  per_pair: Optional[int] = typer.Option(None, help="Raters per pair (default review.raters_per_pair)."),
                  gold_rate: Optional[float] = typer.Option(None, help="Share of gold pairs (default review.gold_rate)."),
                  seed: int = typer.Option(0, help="Seed of the side flips and the assignment."),
                  instructions: str = typer.Option("", help="Shown to raters above every pair.")) -> None:
    """Make a blind pair set from a generation set (and assign raters)."""
    from core.review.pairs import PairSetSpec, create_pair_set, plan_pair_set

    review = settings().review
    spec = PairSetSpec(name=name, generation_set_id=generation_set, variants=_csv(variants), design=design,
                       baseline=baseline, raters=_csv(raters),
                       raters_per_pair=review.raters_per_pair if per_pair is None else per_pair,
                       gold_rate=review.gold_rate if gold_rate is None else gold_rate, seed=seed,
                       instructions=instructions)
    out.print(create_pair_set(store(), CLI_USER, spec))
    plan = plan_pair_set(store(), CLI_USER, spec)
    if plan is not None:
        out.print(f"Plan: {plan.sentence()}", markup=False)


@review_app.command("assign")
def review_assign(pair_set: str, raters: str = typer.Option(..., help="Comma-separated rater accounts."),
                  per_pair: Optional[int] = typer.Option(None, help="Raters per pair (default: the set's).")) -> None:
    """(Re)assign a pair set to raters; votes already cast are kept."""
    from core.review.pairs import assign_raters

    added = assign_raters(store(), CLI_USER, pair_set, _csv(raters), per_pair)
    out.print("New pairs per rater: " + ", ".join(f"{r} {n}" for r, n in added.items()))


@review_app.command("results")
def review_results(pair_set: str,
                   export: Optional[str] = typer.Option(None, help="csv, parquet or html: write a file instead of "
                                                        "printing."),
                   table: str = typer.Option("comparisons", help="With csv/parquet: ladder, comparisons, agreement "
                                             "or raters."),
                   out_dir: Path = typer.Option(Path("."), help="Folder for --export.")) -> None:
    """The verdict of a pair set (computed and stored now if the votes changed)."""
    from core.review import results

    if export:
        data, name, _ = results.export(store(), CLI_USER, pair_set, settings().review, export, table)
        target = out_dir / name
        target.write_bytes(data)
        out.print(f"wrote {target}")
        return
    res = results.latest(store(), CLI_USER, pair_set, settings().review)
    if res is None:
        raise InvalidInput(f"{pair_set} has no votes yet.")
    for line in results.verdict(res):
        out.print(line, markup=False)
    ladder = Table("rank", "variant", "rating", "interval", "rank range", "votes")
    for r in res.ladder.to_dict("records"):
        ladder.add_row(str(r["rank"]), r["variant"], f"{r['rating']:.0f}", f"{r['lo']:.0f}-{r['hi']:.0f}",
                       f"{r['rank_lo']}-{r['rank_hi']}", str(r["n"]))
    out.print(ladder)
    out.print(f"Fleiss' kappa {res.fleiss_kappa if res.fleiss_kappa is not None else '-'}; Krippendorff's alpha "
              f"{res.krippendorff_alpha if res.krippendorff_alpha is not None else '-'}; result {res.result_id}",
              markup=False)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main() -> None:
    try:
        app()
    except DatasetError as exc:
        err.print(f"error: {exc.summary}", markup=False)
        for p in exc.problems:
            err.print(f"  {p}", markup=False)
        sys.exit(exc.exit_code)
    except TuneboardError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    finally:
        if "owner" in _state:
            _state["owner"].close()
        elif "store" in _state:
            _state["store"].close()


import core.cli_lifecycle  # noqa: E402,F401  (registers `tuneboard promote`, `rollback`, `retrain ...`)
import core.cli_regression  # noqa: E402,F401  (registers `tuneboard regression ...`)

if __name__ == "__main__":
    main()
