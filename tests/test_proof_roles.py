"""Proof for issue [proof] "Role escalation": a rater (or a lead, for engineer-only work) who calls
core directly is refused, and nothing is written.

tests/test_roles.py checks the permission table and a sample of services. This file covers every
core function that acts for a person:

- `CASES` lists each one with the action that guards it and a call with plausible arguments.
- `test_every_guarded_function_has_a_case` parses core with `ast`: a public function that calls
  `require(` or takes the acting user (`actor`) and has no case here fails the test, so a new
  guarded service cannot be added without being proven here. Where a function calls `require`
  with a literal Action, the case must name one of those actions (the table cannot drift).
- `test_refused_and_nothing_written` calls each case as every role the action does not allow
  (and signed out), twice: with the ids of real objects (a pair set, a dataset version, jobs, a
  schedule, a contender) and with plausible ids of objects that do not exist. Both must give
  PermissionDenied, so the role is checked before any lookup (an unknown id must not answer
  NotFound and so reveal which ids exist). Every table's row fingerprint, the workspace's files
  and the job launcher are compared before and after.

One workspace serves the whole module: a refused call writes nothing, which is the point.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from core.auth import CLI_USER, PERMISSIONS, Action, Role, User
from core.errors import PermissionDenied
from core.jobs.kinds import KINDS
from tests.apptest import use_fast_password_hashing
from tests.conftest import ADMIN_PASSWORD, PASSWORD, known_versions

CORE = Path(__file__).resolve().parents[1] / "core"
ACTORS = {Role.RATER: User("rita", Role.RATER), Role.LEAD: User("leo", Role.LEAD),
          Role.ENGINEER: User("eve", Role.ENGINEER)}
# Public core functions that take the acting user but are open to every signed-in user, with why.
OPEN_TO_EVERYONE = {
    "core.users:change_own_password": "one's own password, proven by the current one (authenticate)",
    "core.tokens:create_token": "one's own API token (it carries one's own role, no more)",
    "core.tokens:revoke_token": "one's own token; someone else's only for engineers, and NotFound otherwise "
                                "(tests/test_api.py)",
    "core.audit:record": "not a service: the trail's writer, called inside the transaction of the guarded "
                         "function that acts",
    "core.datasets:save_version": "not a service: the version's writer, inside the transaction of import_dataset "
                                  "(guarded) or of the import job's ingest (start_import is guarded)",
}
# Plausible ids of objects that do not exist: the refusal must not depend on a lookup.
UNKNOWN_IDS = {
    "version": "0123456789abcdef", "dataset": "support_tickets", "gen": "generate-20250101-000000-abc123",
    "pair_set": "pairs-20250101-000000-abc123", "running": "ticker-20250101-000000-abc123",
    "stopped": "ticker-20250101-000001-abc124", "run": "train-20250101-000000-abc125",
    "variant": "adapter:train-20250101-000000-abc125", "sweep": "sweep-0123456789",
    "pipeline": "pipeline-0123456789", "schedule": "schedule-0123456789", "contender": "contender:ghost",
    "external": "external:ghost", "task": "support_tickets", "pair_id": 0, "ticket": 1,
}


# ---- the workspace ------------------------------------------------------------------------------
class FakeLauncher:
    """Starts nothing; records every start and stop."""

    def __init__(self):
        self.started: list[str] = []
        self.stopped: list[str] = []

    def start(self, job_id, module, run_dir) -> int:
        self.started.append(job_id)
        return 4242

    def alive(self, job_id, pid) -> bool:
        return False

    def stop(self, job_id, pid) -> None:
        self.stopped.append(job_id)

    def end(self, job_id, pid) -> int:
        return 0


@dataclass
class World:
    root: Path
    owner: Any
    jobs: Any
    desk: Any
    ids: dict[str, Any]

    @property
    def store(self):
        return self.owner.store

    @property
    def settings(self):
        return self.owner.settings

    def path(self, name: str) -> Path:
        return self.root / "out" / name


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model):
    from core.config import load_settings
    from core.datasets import ImportOptions, import_dataset
    from core.demo.review import seed_generation_set
    from core.demo.tickets import write_demo_files
    from core.jobs import Jobs
    from core.lifecycle import contenders, promotion, schedules
    from core.owner import Owner
    from core.review.desk import RatingDesk
    from core.review.pairs import PairSetSpec, create_pair_set
    from core.training.config import TrainConfig
    from core.users import create_user

    root = tmp_path_factory.mktemp("proof-roles")
    env = {"TUNEBOARD_WORKSPACE": str(root / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
           "TUNEBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with pytest.MonkeyPatch.context() as mp:
        use_fast_password_hashing(mp)
        with contextlib.chdir(root):  # no stray tuneboard.toml
            settings = load_settings(env=env)
        owner = Owner.open(settings, monitor=False, env=env)
        for user in ACTORS.values():
            create_user(owner.store, CLI_USER, user.username, PASSWORD, user.role.value)
    eve = ACTORS[Role.ENGINEER]
    try:
        good, _ = write_demo_files(root / "demo", n=60, seed=7)
        options = ImportOptions.from_settings(settings)
        version = import_dataset(owner.store, eve, good.read_bytes(), good.name, options).version_id
        dataset = owner.store.scalar("SELECT dataset FROM dataset_versions WHERE version_id = ?", [version])
        jobs = Jobs(owner.store, settings.runs_dir, launcher=FakeLauncher())
        running = jobs.submit(eve, "ticker", {"steps": 1})
        stopped = jobs.submit(eve, "ticker", {"steps": 1})
        owner.store.execute("UPDATE jobs SET status = 'failed' WHERE job_id = ?", [stopped])
        gen = seed_generation_set(owner.store, n_prompts=4, seed=1)
        pair_set = create_pair_set(owner.store, eve, PairSetSpec(
            name="Round 1", generation_set_id=gen, variants=["base", "adapter:tuned"], raters=["rita"],
            raters_per_pair=1, gold_rate=0.0))
        # A finished training run (its record only): what merges, sweeps, bundles and retrains start from.
        run = "train-20240101-000000-f00d01"
        config = TrainConfig(base_model=tiny_model, dataset_version=version, max_steps=4)
        with owner.store.transaction() as cur:
            cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                        "(?, 'train', 'succeeded', ?, '{}', 'eve')", [run, str(settings.runs_dir / run)])
            cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                        "(?, ?, ?, 'lora', ?, '{}')", [run, version, tiny_model, json.dumps(config.to_dict())])
        known_versions(owner.store, "adapter:tuned", "adapter:other")
        promotion.promote(owner.store, eve, "adapter:tuned", "promoted for the proof of roles", override=True,
                          task=dataset)
        schedule = schedules.create_schedule(owner.store, eve, "nightly", dataset, "interval", "24")
        contender = contenders.register(owner.store, eve, "prompted", tiny_model,
                                        system_prompt="Answer as a support agent.", tasks=[dataset])
        (root / "out").mkdir()
        ids = {**UNKNOWN_IDS, "version": version, "dataset": dataset, "task": dataset, "gen": gen,
               "pair_set": pair_set, "running": running, "stopped": stopped, "schedule": schedule,
               "contender": contender, "variant": "adapter:tuned", "run": run}
        yield World(root, owner, jobs, RatingDesk(owner.store, 0.0), ids)
    finally:
        owner.close()


def fingerprint(w: World) -> dict[str, Any]:
    """Everything a refused call could have changed: each table's rows (count and an order-free hash
    of their values, so an UPDATE shows too), the files under the workspace and the output folder,
    and the jobs the launcher started or stopped."""
    tables = [r["table_name"] for r in w.store.rows(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name")]
    rows = {t: tuple(w.store.row(f'SELECT count(*) AS n, sum(hash(t)::HUGEINT) AS h FROM "{t}" t').values())
            for t in tables}
    database = w.settings.database_path.name  # its rows are compared above; the file itself may be checkpointed
    files = {}
    for path in sorted(w.root.rglob("*")):
        if path.is_file() and not path.name.startswith(database):
            stat = path.stat()
            files[str(path.relative_to(w.root))] = (stat.st_size, stat.st_mtime_ns)
        elif path.is_dir():
            files[str(path.relative_to(w.root)) + "/"] = None
    launcher = w.jobs.launcher
    return {"rows": rows, "files": files, "started": list(launcher.started), "stopped": list(launcher.stopped)}


# ---- the cases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    fn: str  # "module:qualname"
    action: Action  # the roles PERMISSIONS gives this action may do it; every other role is refused
    call: Callable[[World, User | None], Any]
    # Roles that get past the check made before any lookup, where that is wider than `action`
    # (a job's kind decides what cancelling it needs: leads may cancel generation jobs).
    before_lookup: frozenset[Role] | None = None
    label: str = ""

    @property
    def id(self) -> str:
        return self.fn.split(":")[1] + (f"[{self.label}]" if self.label else "") + f"@{self.fn.split(':')[0]}"


def _train_config(w: World):
    from core.training.config import TrainConfig

    return TrainConfig(base_model=w.settings.base_model, dataset_version=w.ids["version"], max_steps=1)


def _spec(w: World):
    from core.serving import GenerationSpec

    return GenerationSpec("escalation", ["base"], [{"messages": [{"role": "user", "content": "Hello"}]}],
                          {"kind": "file", "name": "p.txt"}, path="transformers")


def _pair_spec(w: World):
    from core.review.pairs import PairSetSpec

    return PairSetSpec(name="Mine", generation_set_id=w.ids["gen"], variants=["base", "adapter:tuned"],
                       raters=["rita"], raters_per_pair=1, gold_rate=0.0)


def _set_metrics(w: World):
    from core.metrics.results import SetMetrics

    return SetMetrics(w.ids["gen"], "escalation", None, {"kind": "dataset"}, "base", {"base": "base"}, ["chrf"],
                      None, {}, pd.DataFrame(columns=["variant", "metric", "mean", "lo", "hi", "n"]),
                      pd.DataFrame(columns=["variant", "metric", "delta"]))


def _review_results(w: World):
    from core.review.results import Results

    empty = pd.DataFrame()
    return Results("result-0123456789ab", w.ids["pair_set"], None, 0, None, None, [], {}, None, None, {}, {}, empty,
                   empty, empty, empty)


def _import(w, u):
    from core.datasets import ImportOptions, import_dataset

    good = w.root / "demo" / "support_tickets.jsonl"  # a valid file: a new version, were it allowed
    options = replace(ImportOptions.from_settings(w.settings), seed=99, name="escalated")
    return import_dataset(w.store, u, good.read_bytes(), good.name, options)


def _start_import(w, u):
    from core.datasets import ImportOptions
    from core.datasets.imports import start_import

    good = w.root / "demo" / "support_tickets.jsonl"
    options = replace(ImportOptions.from_settings(w.settings), seed=98, name="escalated")
    return start_import(w.store, w.jobs, u, good.read_bytes(), good.name, options)


def _cases() -> list[Case]:
    from core import audit, datasets, tokens, training, users, webhooks
    from core.judge import judges, routing
    from core.lifecycle import bundle, contenders, deploy, pipelines, promotion, schedules
    from core.metrics import results as metric_results
    from core.datasets import imports
    from core.metrics import scoring
    from core.regression import harness, sweep
    from core.regression import runs as suite
    from core.review import pairs
    from core.review import results as review_results
    from core import serving
    from core.serving import playground

    A = Action
    cases = [
        # data
        Case("core.datasets:import_dataset", A.DATA_IMPORT, _import),
        Case("core.datasets.imports:start_import", A.DATA_IMPORT, _start_import),
        Case("core.datasets.imports:import_status", A.DATA_IMPORT,
             lambda w, u: imports.import_status(w.store, w.jobs, u, w.ids["running"])),
        Case("core.datasets:set_version_metrics", A.DATA_IMPORT,
             lambda w, u: datasets.set_version_metrics(w.store, u, w.ids["version"], ["chrf"])),
        Case("core.datasets:set_metric_options", A.DATA_IMPORT,
             lambda w, u: datasets.set_metric_options(w.store, u, w.ids["version"], {"labels": ["a", "b"]})),
        Case("core.datasets:list_versions", A.DATA_VIEW, lambda w, u: datasets.list_versions(w.store, u)),
        Case("core.datasets:list_datasets", A.DATA_VIEW, lambda w, u: datasets.list_datasets(w.store, u)),
        Case("core.datasets:check", A.DATA_IMPORT,
             lambda w, u: datasets.check(u, (w.root / "demo" / "support_tickets.jsonl").read_bytes(),
                                         "support_tickets.jsonl", datasets.ImportOptions.from_settings(w.settings))),
        Case("core.datasets:get_version", A.DATA_VIEW, lambda w, u: datasets.get_version(w.store, u, w.ids["version"])),
        Case("core.datasets:list_examples", A.DATA_VIEW,
             lambda w, u: datasets.list_examples(w.store, u, w.ids["version"], "train", "refund")),
        # users
        Case("core.users:create_user", A.USERS_MANAGE,
             lambda w, u: users.create_user(w.store, u, "sneaky", PASSWORD, "engineer")),
        Case("core.users:list_users", A.USERS_MANAGE, lambda w, u: users.list_users(w.store, u)),
        Case("core.tokens:list_tokens", A.USERS_MANAGE, lambda w, u: tokens.list_tokens(w.store, u, everyone=True),
             label="everyone's"),
        Case("core.audit:entries", A.USERS_MANAGE, lambda w, u: audit.entries(w.store, u)),
        Case("core.audit:actors", A.USERS_MANAGE, lambda w, u: audit.actors(w.store, u)),
        # webhooks (they send the server's events wherever their maker says: engineers' admin work)
        Case("core.webhooks:create_hook", A.USERS_MANAGE,
             lambda w, u: webhooks.create_hook(w.store, u, "http://127.0.0.1:9/hook", ["run.finished"], "sneaky")),
        Case("core.webhooks:list_hooks", A.USERS_MANAGE, lambda w, u: webhooks.list_hooks(w.store, u)),
        Case("core.webhooks:get_hook", A.USERS_MANAGE, lambda w, u: webhooks.get_hook(w.store, u, "hook-0123456789")),
        Case("core.webhooks:delete_hook", A.USERS_MANAGE,
             lambda w, u: webhooks.delete_hook(w.store, u, "hook-0123456789")),
        Case("core.webhooks:deliveries", A.USERS_MANAGE, lambda w, u: webhooks.deliveries(w.store, u)),
        Case("core.webhooks:send_test", A.USERS_MANAGE,
             lambda w, u: webhooks.send_test(w.store, u, "hook-0123456789")),
        Case("core.users:set_role", A.USERS_MANAGE, lambda w, u: users.set_role(w.store, u, "rita", "engineer")),
        Case("core.users:set_disabled", A.USERS_MANAGE, lambda w, u: users.set_disabled(w.store, u, "admin", True)),
        Case("core.users:reset_password", A.USERS_MANAGE,
             lambda w, u: users.reset_password(w.store, u, "admin", "taken-over-password")),
        # jobs
        # every kind of job, with the action its declaration (core.jobs.kinds) names
        *[Case("core.jobs:Jobs.submit", kind.action, lambda w, u, name=name: w.jobs.submit(u, name, {"steps": 1}),
               label=name) for name, kind in KINDS.items()],
        Case("core.jobs:Jobs.cancel", A.JOBS_RUN, lambda w, u: w.jobs.cancel(u, w.ids["running"]),
             before_lookup=frozenset({Role.LEAD, Role.ENGINEER})),
        Case("core.jobs:Jobs.resume", A.JOBS_RUN, lambda w, u: w.jobs.resume(u, w.ids["stopped"]),
             before_lookup=frozenset({Role.LEAD, Role.ENGINEER})),
        Case("core.jobs:Jobs.list", A.JOBS_VIEW, lambda w, u: w.jobs.list(u)),
        Case("core.jobs:Jobs.view", A.JOBS_VIEW, lambda w, u: w.jobs.view(u, w.ids["running"])),
        Case("core.jobs:Jobs.history", A.JOBS_VIEW, lambda w, u: w.jobs.history(u, w.ids["running"])),
        # training
        Case("core.training:start_training", A.JOBS_RUN,
             lambda w, u: training.start_training(w.store, w.jobs, u, _train_config(w))),
        Case("core.training:start_merge", A.JOBS_RUN,
             lambda w, u: training.start_merge(w.store, w.jobs, u, w.ids["run"], w.path("exports"))),
        Case("core.training:list_runs", A.JOBS_VIEW, lambda w, u: training.list_runs(w.store, u)),
        Case("core.training:get_run", A.JOBS_VIEW, lambda w, u: training.get_run(w.store, u, w.ids["run"])),
        Case("core.training:list_variants", A.JOBS_VIEW, lambda w, u: training.list_variants(w.store, u)),
        Case("core.training:reproduce", A.JOBS_RUN,
             lambda w, u: training.reproduce(w.store, w.jobs, u, w.ids["run"])),
        # serving: generation sets, external endpoints, the playground
        Case("core.serving:available_variants", A.GENERATE,
             lambda w, u: serving.available_variants(w.store, u, w.settings.base_model)),
        Case("core.serving:register_external", A.JOBS_RUN,
             lambda w, u: serving.register_external(w.store, u, "ghost", "http://127.0.0.1:9/v1", "m",
                                                    system_prompt="Be brief.")),
        # Input that fails validation: the role is checked first, so the answer is still "not allowed".
        Case("core.serving:register_external", A.JOBS_RUN,
             lambda w, u: serving.register_external(w.store, u, "ghost", "http://127.0.0.1:9/v1", "m",
                                                    few_shot=["not a pair"]),
             label="bad input"),
        Case("core.lifecycle.contenders:register", A.JOBS_RUN,
             lambda w, u: contenders.register(w.store, u, "bad name!", w.settings.base_model, few_shot=["x"]),
             label="bad input"),
        Case("core.serving:resolve_variants", A.GENERATE,
             lambda w, u: serving.resolve_variants(w.store, u, ["base", w.ids["variant"]], w.settings.base_model)),
        Case("core.serving:prompts_from_version", A.GENERATE,
             lambda w, u: serving.prompts_from_version(w.store, u, w.ids["version"])),
        Case("core.serving:generate", A.GENERATE,
             lambda w, u: serving.generate(w.store, w.jobs, w.settings, u, _spec(w))),
        Case("core.serving:list_sets", A.JOBS_VIEW, lambda w, u: serving.list_sets(w.store, u)),
        Case("core.serving:get_set", A.JOBS_VIEW, lambda w, u: serving.get_set(w.store, u, w.ids["gen"])),
        Case("core.serving:prompts_of", A.JOBS_VIEW, lambda w, u: serving.prompts_of(w.store, u, w.ids["gen"])),
        Case("core.serving:outputs", A.JOBS_VIEW, lambda w, u: serving.outputs(w.store, u, w.ids["gen"])),
        Case("core.serving:sanity", A.JOBS_VIEW, lambda w, u: serving.sanity(w.store, u, w.ids["gen"])),
        Case("core.serving:parity_results", A.JOBS_VIEW,
             lambda w, u: serving.parity_results(w.store, u, w.ids["gen"])),
        Case("core.serving:throughput", A.JOBS_VIEW, lambda w, u: serving.throughput(w.store, u, w.ids["gen"])),
        Case("core.serving.playground:model_server", A.GENERATE,
             lambda w, u: playground.model_server(w.store, w.jobs, u)),
        Case("core.serving.playground:last_server_failure", A.GENERATE,
             lambda w, u: playground.last_server_failure(w.store, u)),
        Case("core.serving.playground:start_model_server", A.GENERATE,
             lambda w, u: playground.start_model_server(w.store, w.jobs, w.settings, u)),
        Case("core.serving.playground:stop_model_server", A.GENERATE,
             lambda w, u: playground.stop_model_server(w.store, w.jobs, u)),
        Case("core.serving.playground:playground_variants", A.GENERATE,
             lambda w, u: playground.playground_variants(w.store, u, w.settings)),
        Case("core.serving.playground:server_adapters", A.GENERATE,
             lambda w, u: playground.server_adapters(w.store, u, w.settings.base_model)),
        # metrics
        Case("core.metrics.scoring:start_scoring", A.GENERATE,
             lambda w, u: scoring.start_scoring(w.store, w.jobs, u, w.ids["gen"])),
        Case("core.metrics.scoring:scores", A.JOBS_VIEW, lambda w, u: scoring.scores(w.store, u, w.ids["gen"])),
        Case("core.metrics.scoring:summary", A.JOBS_VIEW, lambda w, u: scoring.summary(w.store, u, w.ids["gen"])),
        Case("core.metrics.results:compute", A.METRICS_VIEW,
             lambda w, u: metric_results.compute(w.store, u, w.ids["gen"], w.settings.metrics)),
        Case("core.metrics.results:latest", A.METRICS_VIEW,
             lambda w, u: metric_results.latest(w.store, u, w.ids["gen"], w.settings.metrics)),
        Case("core.metrics.results:scored_sets", A.METRICS_VIEW, lambda w, u: metric_results.scored_sets(w.store, u)),
        Case("core.metrics.results:trend", A.METRICS_VIEW,
             lambda w, u: metric_results.trend(w.store, u, w.ids["dataset"], w.settings.metrics)),
        # A page passes the sets it already read: crafted ones must not get round the check.
        Case("core.metrics.results:trend", A.METRICS_VIEW,
             lambda w, u: metric_results.trend(
                 w.store, u, "d", w.settings.metrics,
                 sets=[{"dataset": "d", "set_id": w.ids["gen"], "summarized": "x", "variants": "[]"}]),
             label="given sets"),
        Case("core.metrics.results:examples", A.METRICS_VIEW,
             lambda w, u: metric_results.examples(w.store, u, w.ids["gen"], "chrf", w.ids["variant"])),
        Case("core.metrics.results:raw_scores", A.METRICS_VIEW,
             lambda w, u: metric_results.raw_scores(w.store, u, w.ids["gen"])),
        Case("core.metrics.results:export", A.METRICS_VIEW,
             lambda w, u: metric_results.export(w.store, u, _set_metrics(w), "csv")),
        Case("core.metrics.results:report_html", A.METRICS_VIEW,
             lambda w, u: metric_results.report_html(w.store, u, _set_metrics(w))),
        Case("core.metrics.results:best_version", A.METRICS_VIEW,
             lambda w, u: metric_results.best_version(w.store, u, w.settings.metrics)),
        # regression: the suite, checkpoint sweeps, lm-eval harness
        Case("core.regression.runs:start_run", A.GENERATE,
             lambda w, u: suite.start_run(w.store, w.jobs, w.settings, u, ["base", w.ids["variant"]], limit=2)),
        Case("core.regression.runs:runs", A.METRICS_VIEW, lambda w, u: suite.runs(w.store, u)),
        Case("core.regression.runs:outcomes", A.METRICS_VIEW, lambda w, u: suite.outcomes(w.store, u, w.ids["gen"])),
        Case("core.regression.runs:judge", A.METRICS_VIEW,
             lambda w, u: suite.judge(w.store, u, w.ids["gen"], w.ids["variant"], w.settings.regression)),
        Case("core.regression.runs:flips", A.METRICS_VIEW,
             lambda w, u: suite.flips(w.store, u, w.ids["gen"], w.ids["variant"])),
        Case("core.regression.runs:latest_gates", A.METRICS_VIEW, lambda w, u: suite.latest_gates(w.store, u)),
        Case("core.regression.sweep:checkpoints", A.JOBS_VIEW,
             lambda w, u: sweep.checkpoints(w.store, u, w.ids["run"])),
        Case("core.regression.sweep:checkpoint_variants", A.GENERATE,
             lambda w, u: sweep.checkpoint_variants(w.store, u, w.ids["run"], [10, 20])),
        Case("core.regression.sweep:start_sweep", A.GENERATE,
             lambda w, u: sweep.start_sweep(w.store, w.jobs, w.settings, u, w.ids["run"], [10, 20])),
        Case("core.regression.sweep:retry_scoring", A.GENERATE,
             lambda w, u: sweep.retry_scoring(w.store, w.jobs, w.settings, u, w.ids["sweep"])),
        Case("core.regression.sweep:sweeps", A.METRICS_VIEW, lambda w, u: sweep.sweeps(w.store, u)),
        Case("core.regression.sweep:get_sweep", A.METRICS_VIEW,
             lambda w, u: sweep.get_sweep(w.store, u, w.ids["sweep"])),
        Case("core.regression.sweep:table", A.METRICS_VIEW,
             lambda w, u: sweep.table(w.store, u, w.settings, w.ids["sweep"])),
        Case("core.regression.harness:start_harness", A.GENERATE,
             lambda w, u: harness.start_harness(w.store, w.jobs, w.settings, u, w.ids["variant"], ["arc_easy"], 5)),
        Case("core.regression.harness:results", A.METRICS_VIEW, lambda w, u: harness.results(w.store, u)),
        # review: the rating desk (raters only), pair sets, results
        Case("core.review.desk:RatingDesk.tasks", A.REVIEW_RATE, lambda w, u: w.desk.tasks(u)),
        Case("core.review.desk:RatingDesk.next_pair", A.REVIEW_RATE,
             lambda w, u: w.desk.next_pair(u, w.ids["pair_set"])),
        Case("core.review.desk:RatingDesk.vote", A.REVIEW_RATE,
             lambda w, u: w.desk.vote(u, w.ids["pair_set"], w.ids["ticket"], "1", "forced")),
        Case("core.review.desk:RatingDesk.skip", A.REVIEW_RATE,
             lambda w, u: w.desk.skip(u, w.ids["pair_set"], w.ids["ticket"])),
        Case("core.review.desk:RatingDesk.undo", A.REVIEW_RATE, lambda w, u: w.desk.undo(u, w.ids["pair_set"])),
        Case("core.review.pairs:create_pair_set", A.REVIEW_MANAGE,
             lambda w, u: pairs.create_pair_set(w.store, u, _pair_spec(w))),
        Case("core.review.pairs:assign_raters", A.REVIEW_MANAGE,
             lambda w, u: pairs.assign_raters(w.store, u, w.ids["pair_set"], ["rita"], 1)),
        Case("core.review.pairs:withdraw_pair", A.REVIEW_MANAGE,
             lambda w, u: pairs.withdraw_pair(w.store, u, w.ids["pair_set"], w.ids["pair_id"])),
        Case("core.review.pairs:mark_gold", A.REVIEW_MANAGE,
             lambda w, u: pairs.mark_gold(w.store, u, w.ids["pair_set"], w.ids["pair_id"], "a")),
        Case("core.review.pairs:set_exclusion", A.REVIEW_MANAGE,
             lambda w, u: pairs.set_exclusion(w.store, u, w.ids["pair_set"], "rita", True, "escalation")),
        Case("core.review.pairs:exclusions", A.REVIEW_RESULTS,
             lambda w, u: pairs.exclusions(w.store, u, w.ids["pair_set"])),
        Case("core.review.pairs:rater_accounts", A.REVIEW_MANAGE, lambda w, u: pairs.rater_accounts(w.store, u)),
        Case("core.review.pairs:plan_pair_set", A.REVIEW_MANAGE,
             lambda w, u: pairs.plan_pair_set(w.store, u, _pair_spec(w))),
        Case("core.review.pairs:pairs_blind", A.REVIEW_MANAGE,
             lambda w, u: pairs.pairs_blind(w.store, u, w.ids["pair_set"])),
        Case("core.review.pairs:list_pair_sets", A.REVIEW_RESULTS, lambda w, u: pairs.list_pair_sets(w.store, u)),
        Case("core.review.pairs:get_pair_set", A.REVIEW_RESULTS,
             lambda w, u: pairs.get_pair_set(w.store, u, w.ids["pair_set"])),
        Case("core.review.pairs:progress", A.REVIEW_RESULTS,
             lambda w, u: pairs.progress(w.store, u, w.ids["pair_set"])),
        Case("core.review.pairs:flagged_pairs", A.REVIEW_REVEAL,
             lambda w, u: pairs.flagged_pairs(w.store, u, w.ids["pair_set"])),
        Case("core.review.pairs:pairs_revealed", A.REVIEW_REVEAL,
             lambda w, u: pairs.pairs_revealed(w.store, u, w.ids["pair_set"])),
        Case("core.judge.judges:define_judge", A.JOBS_RUN,
             lambda w, u: judges.define_judge(w.store, u, "escalation", "base")),
        Case("core.judge.judges:run_judge", A.JOBS_RUN,
             lambda w, u: judges.run_judge(w.store, w.jobs, w.settings, u, "judge-00000000", w.ids["pair_set"])),
        Case("core.judge.judges:list_judges", A.REVIEW_RESULTS, lambda w, u: judges.list_judges(w.store, u)),
        Case("core.judge.judges:runs", A.REVIEW_RESULTS, lambda w, u: judges.runs(w.store, u, w.ids["pair_set"])),
        Case("core.judge.judges:verdicts", A.REVIEW_RESULTS, lambda w, u: judges.verdicts(w.store, u, w.ids["gen"])),
        Case("core.judge.judges:comparisons", A.REVIEW_RESULTS,
             lambda w, u: judges.comparisons(w.store, u, w.ids["gen"])),
        Case("core.judge.judges:alignment", A.REVIEW_RESULTS,
             lambda w, u: judges.alignment(w.store, u, w.ids["pair_set"])),
        Case("core.judge.routing:route", A.REVIEW_MANAGE,
             lambda w, u: routing.route(w.store, u, w.ids["pair_set"], w.ids["gen"])),
        Case("core.judge.routing:clear", A.REVIEW_MANAGE, lambda w, u: routing.clear(w.store, u, w.ids["pair_set"])),
        Case("core.judge.routing:summary", A.REVIEW_RESULTS,
             lambda w, u: routing.summary(w.store, u, w.ids["pair_set"])),
        Case("core.judge.routing:combined", A.REVIEW_RESULTS,
             lambda w, u: routing.combined(w.store, u, w.ids["pair_set"], 0.5)),
        Case("core.judge.routing:best_calibration", A.REVIEW_RESULTS,
             lambda w, u: routing.best_calibration(w.store, u, "judge-00000000")),
        Case("core.judge.judges:against_experts", A.REVIEW_RESULTS,
             lambda w, u: judges.against_experts(w.store, u, w.ids["gen"])),
        Case("core.review.results:compute", A.REVIEW_RESULTS,
             lambda w, u: review_results.compute(w.store, u, w.ids["pair_set"], w.settings.review)),
        Case("core.review.results:latest", A.REVIEW_RESULTS,
             lambda w, u: review_results.latest(w.store, u, w.ids["pair_set"], w.settings.review)),
        Case("core.review.results:export", A.REVIEW_RESULTS,
             lambda w, u: review_results.export(w.store, u, w.ids["pair_set"], w.settings.review, "csv")),
        Case("core.review.results:plan_now", A.REVIEW_RESULTS,
             lambda w, u: review_results.plan_now(w.store, u, w.ids["pair_set"], None, w.settings.review)),
        # the votes with model names: the lead only, even for an engineer
        Case("core.review.results:export", A.REVIEW_REVEAL,
             lambda w, u: review_results.export(w.store, u, w.ids["pair_set"], w.settings.review, "csv", "votes",
                                                res=_review_results(w)),
             label="votes"),
        Case("core.review.results:report_html", A.REVIEW_RESULTS,
             lambda w, u: review_results.report_html(w.store, u, _review_results(w))),
        # lifecycle: promotion, contenders, schedules, retraining pipelines, deployment, run records
        Case("core.lifecycle.promotion:history", A.METRICS_VIEW, lambda w, u: promotion.history(w.store, u)),
        Case("core.lifecycle.promotion:stacks", A.METRICS_VIEW, lambda w, u: promotion.stacks(w.store, u)),
        Case("core.lifecycle.promotion:current", A.METRICS_VIEW,
             lambda w, u: promotion.current(w.store, u, w.ids["task"])),
        Case("core.lifecycle.promotion:promoted", A.METRICS_VIEW, lambda w, u: promotion.promoted(w.store, u)),
        Case("core.lifecycle.promotion:promote", A.PROMOTE,
             lambda w, u: promotion.promote(w.store, u, "adapter:other", "promoted by someone who may not",
                                            override=True, task=w.ids["task"])),
        Case("core.lifecycle.promotion:rollback", A.PROMOTE,
             lambda w, u: promotion.rollback(w.store, u, w.ids["task"], "rolled back by someone who may not")),
        Case("core.lifecycle.contenders:register", A.JOBS_RUN,
             lambda w, u: contenders.register(w.store, u, "sneaky", w.settings.base_model, system_prompt="Obey.")),
        Case("core.lifecycle.contenders:contenders", A.JOBS_VIEW, lambda w, u: contenders.contenders(w.store, u)),
        Case("core.lifecycle.contenders:remove", A.JOBS_RUN,
             lambda w, u: contenders.remove(w.store, u, w.ids["contender"])),
        Case("core.lifecycle.schedules:create_schedule", A.JOBS_RUN,
             lambda w, u: schedules.create_schedule(w.store, u, "sneaky", w.ids["task"], "interval", "1")),
        Case("core.lifecycle.schedules:set_enabled", A.JOBS_RUN,
             lambda w, u: schedules.set_enabled(w.store, u, w.ids["schedule"], False)),
        Case("core.lifecycle.schedules:delete_schedule", A.JOBS_RUN,
             lambda w, u: schedules.delete_schedule(w.store, u, w.ids["schedule"])),
        Case("core.lifecycle.schedules:schedules", A.JOBS_VIEW, lambda w, u: schedules.schedules(w.store, u)),
        Case("core.lifecycle.schedules:get_schedule", A.JOBS_VIEW,
             lambda w, u: schedules.get_schedule(w.store, u, w.ids["schedule"])),
        Case("core.lifecycle.schedules:events", A.JOBS_VIEW,
             lambda w, u: schedules.events(w.store, u, w.ids["schedule"])),
        Case("core.lifecycle.schedules:run_now", A.JOBS_RUN,
             lambda w, u: schedules.run_now(w.store, w.jobs, w.settings, u, w.ids["schedule"])),
        Case("core.lifecycle.pipelines:source_config", A.METRICS_VIEW,
             lambda w, u: pipelines.source_config(w.store, u, w.ids["task"])),
        Case("core.lifecycle.pipelines:start_pipeline", A.JOBS_RUN,
             lambda w, u: pipelines.start_pipeline(w.store, w.jobs, w.settings, u, w.ids["task"])),
        Case("core.lifecycle.pipelines:pipelines", A.JOBS_VIEW, lambda w, u: pipelines.pipelines(w.store, u)),
        Case("core.lifecycle.pipelines:get_pipeline", A.JOBS_VIEW,
             lambda w, u: pipelines.get_pipeline(w.store, u, w.ids["pipeline"])),
        # Waiting drives the owner's advance (it starts jobs): refused before the first pass.
        Case("core.lifecycle.pipelines:follow", A.JOBS_RUN,
             lambda w, u: list(pipelines.follow(w.store, w.jobs, w.settings, u, w.ids["pipeline"], 5, poll=0))),
        Case("core.lifecycle.pipelines:decide", A.PROMOTE,
             lambda w, u: pipelines.decide(w.store, u, w.ids["pipeline"], "promoted", "promoted by a rater",
                                           override=True)),
        # A page passes a pipeline it already read: a crafted one must not get round the check.
        Case("core.lifecycle.pipelines:summary", A.JOBS_VIEW,
             lambda w, u: pipelines.summary(w.store, u, w.settings, {
                 "task_set": None, "gate_id": "gate-0123456789ab", "pair_set": w.ids["pair_set"]})),
        Case("core.lifecycle.deploy:plan", A.JOBS_VIEW, lambda w, u: deploy.plan(w.store, u, w.settings)),
        Case("core.lifecycle.deploy:start_deploy", A.JOBS_RUN,
             lambda w, u: deploy.start_deploy(w.store, w.jobs, u, w.settings, w.path("deploy"))),
        Case("core.lifecycle.deploy:deploy_status", A.JOBS_VIEW,
             lambda w, u: deploy.deploy_status(w.store, w.jobs, u, w.ids["running"])),
        Case("core.lifecycle.bundle:start_bundle", A.JOBS_VIEW,
             lambda w, u: bundle.start_bundle(w.store, w.jobs, u, w.settings, w.ids["run"], w.path("run.zip"))),
        Case("core.lifecycle.bundle:bundle_status", A.JOBS_VIEW,
             lambda w, u: bundle.bundle_status(w.store, w.jobs, u, w.ids["running"])),
        Case("core.lifecycle.bundle:bundle_file", A.JOBS_VIEW,
             lambda w, u: bundle.bundle_file(w.store, w.jobs, u, w.ids["running"])),
        Case("core.lifecycle.bundle:reproduce_bundle", A.JOBS_RUN,
             lambda w, u: bundle.reproduce_bundle(w.store, w.jobs, u, w.settings, w.path("someone-elses.zip"))),
    ]
    return cases


CASES = _cases()


# ---- every guarded function has a case ----------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _require_actions(fn: ast.FunctionDef) -> set[str] | None:
    """The Action names `fn` passes to require() literally; None when it does not call require."""
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "require"]
    if not calls:
        return None
    return {c.args[1].attr for c in calls if len(c.args) > 1 and isinstance(c.args[1], ast.Attribute)
            and isinstance(c.args[1].value, ast.Name) and c.args[1].value.id == "Action"}


def guarded_in_core() -> dict[str, set[str] | None]:
    """Every public core function or method that calls require() or takes the acting user (`actor`):
    'module:qualname' -> the Actions it requires literally (empty or None: it delegates the check)."""
    found: dict[str, set[str] | None] = {}

    def visit(node, module: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, module, prefix + child.name + ".")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if child.name.startswith("_"):
                    continue
                actions = _require_actions(child)
                args = {a.arg for a in child.args.args + child.args.kwonlyargs + child.args.posonlyargs}
                if actions is not None or "actor" in args:
                    found[f"{module}:{prefix}{child.name}"] = actions
                visit(child, module, prefix + child.name + ".")

    for path in sorted(CORE.rglob("*.py")):
        module = _module_name(path)
        if module == "core.auth":
            continue  # require itself
        visit(ast.parse(path.read_text(), str(path)), module, "")
    return found


def test_every_guarded_function_has_a_case():
    found = guarded_in_core()
    covered = {c.fn for c in CASES}
    assert len(found) > 90, "the scan of core found too little: is CORE right?"
    missing = sorted(set(found) - covered - set(OPEN_TO_EVERYONE))
    assert not missing, f"core functions that act for a user but have no case in {__file__}: {missing}"
    stale = sorted(covered - set(found))
    assert not stale, f"cases for functions core no longer has (or that no longer take an actor): {stale}"
    assert set(OPEN_TO_EVERYONE) <= set(found)
    for case in CASES:
        literal = found[case.fn]
        if literal:  # a direct require(actor, Action.X): the case names one of them
            assert case.action.name in literal, (case.fn, case.action, literal)


def test_every_case_resolves_to_a_core_callable():
    for case in CASES:
        module, qualname = case.fn.split(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        assert callable(obj), case.fn


def test_every_action_and_role_is_exercised():
    """The cases refuse each role for some action, and every Action except those for everyone is covered."""
    assert {c.action for c in CASES} == set(Action)
    refused = {role for c in CASES for role in Role if role not in PERMISSIONS[c.action]}
    assert refused == set(Role)


# ---- refused, before any lookup, and nothing written --------------------------------------------
def _refused_actors(case: Case, ids: str) -> list[User | None]:
    allowed = PERMISSIONS[case.action]
    if ids == "unknown" and case.before_lookup is not None:
        allowed = allowed | case.before_lookup  # these roles may learn whether the id exists
    return [None] + [ACTORS[r] for r in Role if r not in allowed]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_and_nothing_written(world, case):
    before = fingerprint(world)
    unknown = replace(world, ids=dict(UNKNOWN_IDS))
    tried = 0
    for ids, w in (("real", world), ("unknown", unknown)):
        for actor in _refused_actors(case, ids):
            expected = "Log in first" if actor is None else f"{actor.username} \\({actor.role.value}\\) may not do"
            with pytest.raises(PermissionDenied, match=expected):
                case.call(w, actor)
            tried += 1
    assert tried >= 2
    after = fingerprint(world)
    assert after["rows"] == before["rows"], [t for t in before["rows"] if before["rows"][t] != after["rows"].get(t)]
    assert after["files"] == before["files"]
    assert (after["started"], after["stopped"]) == (before["started"], before["stopped"])


def test_the_rater_is_refused_by_every_non_rating_case(world):
    """The issue's sentence, read literally: every engineer (and lead) action refuses rita."""
    rita = ACTORS[Role.RATER]
    rater_cases = [c for c in CASES if Role.RATER not in PERMISSIONS[c.action]]
    assert len(rater_cases) >= len(CASES) - 6  # only the rating desk is the rater's
    for case in rater_cases:
        with pytest.raises(PermissionDenied, match=r"rita \(rater\) may not do"):
            case.call(world, rita)


def test_the_world_is_what_the_cases_expect(world):
    """A control: the real ids point at real rows, and the unknown ones at none (so both paths ran)."""
    store, ids = world.store, world.ids
    assert store.scalar("SELECT count(*) FROM dataset_versions WHERE version_id = ?", [ids["version"]]) == 1
    assert store.scalar("SELECT count(*) FROM pair_sets WHERE pair_set_id = ?", [ids["pair_set"]]) == 1
    assert store.scalar("SELECT count(*) FROM generation_sets WHERE set_id = ?", [ids["gen"]]) == 1
    assert store.scalar("SELECT count(*) FROM schedules WHERE schedule_id = ?", [ids["schedule"]]) == 1
    assert store.scalar("SELECT count(*) FROM model_variants WHERE variant_id = ?", [ids["contender"]]) == 1
    assert world.jobs.get(ids["running"])["status"] == "running"
    assert store.scalar("SELECT count(*) FROM promotions") >= 1
    assert store.scalar("SELECT count(*) FROM runs WHERE job_id = ?", [ids["run"]]) == 1
    unknown = {"dataset_versions": ("version_id", "version"), "pair_sets": ("pair_set_id", "pair_set"),
               "generation_sets": ("set_id", "gen"), "jobs": ("job_id", "running"), "runs": ("job_id", "run"),
               "schedules": ("schedule_id", "schedule"), "pipelines": ("pipeline_id", "pipeline"),
               "checkpoint_sweeps": ("sweep_id", "sweep"), "model_variants": ("variant_id", "contender")}
    for table, (column, key) in unknown.items():
        assert store.scalar(f"SELECT count(*) FROM {table} WHERE {column} = ?", [UNKNOWN_IDS[key]]) == 0, table
    assert store.scalar("SELECT count(*) FROM users WHERE username = 'sneaky'") == 0
    assert store.scalar("SELECT role FROM users WHERE username = 'rita'") == "rater"
    assert not store.scalar("SELECT disabled FROM users WHERE username = 'admin'")


def test_the_fingerprint_sees_an_update_and_a_file(world):
    """A control for `fingerprint`: an UPDATE that keeps the row count, and a new file, both show."""
    before = fingerprint(world)
    world.store.execute("UPDATE users SET role = 'engineer' WHERE username = 'rita'")
    try:
        assert fingerprint(world)["rows"]["users"] != before["rows"]["users"]
    finally:
        world.store.execute("UPDATE users SET role = 'rater' WHERE username = 'rita'")
    assert fingerprint(world) == before
    stray = world.path("stray.txt")
    stray.write_text("x")
    try:
        assert fingerprint(world)["files"] != before["files"]
    finally:
        stray.unlink()
    assert fingerprint(world) == before
