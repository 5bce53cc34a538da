"""Roles are enforced in core, not only by the dashboard's navigation.

The expected table is written out here (DESIGN.md, "Users and roles") so a change to
core.auth.PERMISSIONS fails a test; then every Action x Role calls the real service
functions guarded by that action: allowed roles succeed, the others get PermissionDenied
and nothing is written (no row in any table, no run folder).
"""

from __future__ import annotations

import pytest

from core.auth import CLI_USER, PAGES, PERMISSIONS, Action, Role, User, pages_for, require
from core.datasets import ImportOptions, get_version, import_dataset, list_examples, list_versions
from core.errors import PermissionDenied
from core.jobs import Jobs
from core.demo.review import seed_generation_set
from core.metrics.scoring import start_scoring
from core.review import pairs, results
from core.metrics import results as metric_results
from core.lifecycle import promotion
from core.regression import runs as regression_runs
from core.review.desk import RatingDesk
from core.review.pairs import PairSetSpec
from core.serving import GenerationSpec, available_variants, generate, list_sets, prompts_from_version
from core.serving.playground import model_server
from core.users import create_user, get_user, list_users, reset_password, set_disabled, set_role
from tests.apptest import table_counts, use_fast_password_hashing
from tests.conftest import PASSWORD, known_versions

EXPECTED: dict[Action, set[Role]] = {
    Action.DATA_VIEW: {Role.LEAD, Role.ENGINEER},
    Action.DATA_IMPORT: {Role.ENGINEER},
    Action.USERS_MANAGE: {Role.ENGINEER},
    Action.JOBS_VIEW: {Role.LEAD, Role.ENGINEER},
    Action.JOBS_RUN: {Role.ENGINEER},
    Action.GENERATE: {Role.LEAD, Role.ENGINEER},
    Action.REVIEW_RATE: {Role.RATER},
    Action.REVIEW_MANAGE: {Role.LEAD, Role.ENGINEER},
    Action.REVIEW_RESULTS: {Role.LEAD, Role.ENGINEER},
    Action.REVIEW_REVEAL: {Role.LEAD},
    Action.METRICS_VIEW: {Role.LEAD, Role.ENGINEER},
    Action.PROMOTE: {Role.ENGINEER},
}
EXPECTED_PAGES = {
    Role.RATER: ["rate", "account"],
    Role.LEAD: ["home", "data", "models", "generations", "playground", "review", "results", "metrics", "regression",
                "account"],
    Role.ENGINEER: ["home", "data", "train", "models", "generations", "playground", "review", "results", "judges",
                    "metrics", "regression", "users", "account"],
}
ADMIN = User("admin", Role.ENGINEER)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


class FakeLauncher:
    """Starts nothing; a job 'runs' until stopped."""

    def __init__(self):
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.dead: set[str] = set()  # workers that exited on their own

    def start(self, job_id, module, run_dir) -> int:
        self.started.append(job_id)
        return 4242

    def alive(self, job_id, pid) -> bool:
        return job_id not in self.stopped and job_id not in self.dead

    def stop(self, job_id, pid) -> None:
        self.stopped.append(job_id)

    def end(self, job_id, pid) -> int:
        return 0


# ---- the table itself --------------------------------------------------------------------------
def test_permissions_cover_every_action_as_designed():
    assert set(PERMISSIONS) == set(Action)
    assert {a: set(r) for a, r in PERMISSIONS.items()} == EXPECTED


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_require_follows_the_table(action, role):
    user = User("someone", role)
    if role in EXPECTED[action]:
        assert user.may(action)
        assert require(user, action) is user
    else:
        assert not user.may(action)
        with pytest.raises(PermissionDenied, match=f"someone \\({role.value}\\) may not do '{action.value}'"):
            require(user, action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_require_refuses_no_user(action):
    with pytest.raises(PermissionDenied, match="Log in first"):
        require(None, action)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_pages_for_each_role(role):
    assert pages_for(role) == EXPECTED_PAGES[role]
    assert set(PAGES) == {"rate", "home", "data", "train", "models", "generations", "playground", "review", "results",
                          "judges", "metrics", "regression", "users", "account"}


# ---- the real service functions, every action x role -------------------------------------------
@pytest.fixture
def world(owner, accounts, demo_files):
    """The workspace with one imported version and a job service that starts no process."""
    good = demo_files[0]
    options = ImportOptions.from_settings(owner.settings)
    version = import_dataset(owner.store, ADMIN, good.read_bytes(), good.name, options).version_id
    jobs = Jobs(owner.store, owner.settings.runs_dir, launcher=FakeLauncher())
    running = jobs.submit(ADMIN, "ticker", {"steps": 1})
    stopped = jobs.submit(ADMIN, "ticker", {"steps": 1})
    owner.store.execute("UPDATE jobs SET status = 'failed' WHERE job_id = ?", [stopped])
    jobs.launcher.dead.add(stopped)  # its worker is gone, so it may be resumed
    gen = seed_generation_set(owner.store, n_prompts=4, seed=1)
    known_versions(owner.store, "adapter:tuned", "adapter:other")
    pair_set = pairs.create_pair_set(owner.store, ADMIN, PairSetSpec(
        name="Round 1", generation_set_id=gen, variants=["base", "adapter:tuned"], raters=["rita"], raters_per_pair=1,
        gold_rate=0.0))
    return {"owner": owner, "store": owner.store, "version": version, "jobs": jobs, "running": running,
            "stopped": stopped, "good": good, "options": options, "gen": gen, "pair_set": pair_set,
            "desk": RatingDesk(owner.store, 0.0)}


def _vote(w, actor):
    view = w["desk"].next_pair(actor, w["pair_set"])
    return w["desk"].vote(actor, w["pair_set"], view.ticket, "1")


def _import_other(w, actor):
    # a different split seed: a new version, not a no-op re-import of the same content
    from dataclasses import replace

    return import_dataset(w["store"], actor, w["good"].read_bytes(), w["good"].name,
                          replace(w["options"], seed=w["options"].seed + 1, name="tickets-again"))


def _generate(w, actor):
    spec = GenerationSpec("set", ["base"], [{"messages": [{"role": "user", "content": "Hello there"}]}],
                          {"kind": "file", "name": "p.txt"}, path="transformers")
    return generate(w["store"], w["jobs"], w["owner"].settings, actor, spec)


# Every core function guarded by each action (Jobs.get/events/log_tail are the owner's own
# reads, not for pages, and take no actor).
SERVICES: dict[Action, list] = {
    Action.DATA_VIEW: [
        lambda w, u: list_versions(w["store"], u),
        lambda w, u: get_version(w["store"], u, w["version"]),
        lambda w, u: list_examples(w["store"], u, w["version"]),
    ],
    Action.DATA_IMPORT: [_import_other],
    Action.USERS_MANAGE: [
        lambda w, u: list_users(w["store"], u),
        lambda w, u: create_user(w["store"], u, "newcomer", PASSWORD, "rater"),
        lambda w, u: set_role(w["store"], u, "rita", "lead"),
        lambda w, u: set_disabled(w["store"], u, "leo", True),
        lambda w, u: reset_password(w["store"], u, "leo", "another-long-password"),
    ],
    Action.JOBS_VIEW: [
        lambda w, u: w["jobs"].list(u),
        lambda w, u: w["jobs"].history(u, w["running"]),
        lambda w, u: list_sets(w["store"], u),
    ],
    Action.GENERATE: [
        lambda w, u: available_variants(w["store"], u, w["owner"].settings.base_model),
        lambda w, u: prompts_from_version(w["store"], u, w["version"]),
        lambda w, u: model_server(w["store"], w["jobs"], u),
        _generate,
        lambda w, u: start_scoring(w["store"], w["jobs"], u, w["gen"]),
    ],
    Action.REVIEW_RATE: [
        lambda w, u: w["desk"].tasks(u),
        _vote,
        lambda w, u: w["desk"].undo(u, w["pair_set"]),
    ],
    Action.REVIEW_MANAGE: [
        lambda w, u: pairs.rater_accounts(w["store"], u),
        lambda w, u: pairs.create_pair_set(w["store"], u, PairSetSpec(
            name="Round 2", generation_set_id=w["gen"], variants=["base", "adapter:tuned"], gold_rate=0.0)),
        lambda w, u: pairs.assign_raters(w["store"], u, w["pair_set"], ["rita"], 1),
        lambda w, u: pairs.mark_gold(w["store"], u, w["pair_set"], 0, "a"),
        lambda w, u: pairs.set_exclusion(w["store"], u, w["pair_set"], "rita", True),
        lambda w, u: pairs.pairs_blind(w["store"], u, w["pair_set"]),
    ],
    Action.REVIEW_RESULTS: [
        lambda w, u: pairs.list_pair_sets(w["store"], u),
        lambda w, u: pairs.progress(w["store"], u, w["pair_set"]),
        lambda w, u: results.latest(w["store"], u, w["pair_set"], w["owner"].settings.review),
    ],
    Action.REVIEW_REVEAL: [
        lambda w, u: pairs.pairs_revealed(w["store"], u, w["pair_set"]),
        lambda w, u: pairs.flagged_pairs(w["store"], u, w["pair_set"]),
    ],
    Action.METRICS_VIEW: [
        lambda w, u: metric_results.scored_sets(w["store"], u),
        lambda w, u: metric_results.latest(w["store"], u, w["gen"], w["owner"].settings.metrics),
        lambda w, u: metric_results.examples(w["store"], u, w["gen"], "chrf", "adapter:tuned"),
        lambda w, u: metric_results.best_version(w["store"], u, w["owner"].settings.metrics),
        lambda w, u: metric_results.raw_scores(w["store"], u, w["gen"]),
        lambda w, u: regression_runs.runs(w["store"], u),
        lambda w, u: regression_runs.latest_gates(w["store"], u),
        lambda w, u: promotion.history(w["store"], u),
    ],
    Action.PROMOTE: [
        lambda w, u: promotion.promote(w["store"], u, "adapter:tuned", "no gate yet: promoted for the test run",
                                       override=True, task="tickets"),
        lambda w, u: promotion.promote(w["store"], u, "adapter:other", "a second version, to roll back from",
                                       override=True, task="tickets"),
        lambda w, u: promotion.rollback(w["store"], u, "tickets", "back to the earlier version for the test"),
    ],
    Action.JOBS_RUN: [
        lambda w, u: w["jobs"].submit(u, "ticker", {"steps": 1}),
        lambda w, u: w["jobs"].cancel(u, w["running"]),
        lambda w, u: w["jobs"].resume(u, w["stopped"]),
    ],
}
ACTING = {Role.RATER: "rita", Role.LEAD: "leo", Role.ENGINEER: "eve"}


def _runs(owner) -> set[str]:
    runs = owner.settings.runs_dir
    return {str(p.relative_to(runs)) for p in runs.rglob("*")} if runs.exists() else set()


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", [a for a in Action if SERVICES[a]], ids=lambda a: a.value)
def test_service_functions_enforce_the_table(world, action, role):
    actor = User(ACTING[role], role)
    store = world["store"]
    for call in SERVICES[action]:
        before, files = table_counts(store), _runs(world["owner"])
        if role in EXPECTED[action]:
            call(world, actor)
        else:
            with pytest.raises(PermissionDenied):
                call(world, actor)
            assert table_counts(store) == before
            assert _runs(world["owner"]) == files
    if role not in EXPECTED[action]:
        assert world["jobs"].launcher.started == [world["running"], world["stopped"]]
        assert world["jobs"].launcher.stopped == []


def test_engineer_service_calls_really_write(world):
    """The allowed path above is not a no-op: the engineer's calls change the store."""
    eve = User("eve", Role.ENGINEER)
    before = table_counts(world["store"])
    for action in (Action.DATA_IMPORT, Action.USERS_MANAGE, Action.JOBS_RUN):
        for call in SERVICES[action]:
            call(world, eve)
    after = table_counts(world["store"])
    assert after["dataset_versions"] == before["dataset_versions"] + 1
    assert after["users"] == before["users"] + 1
    assert after["jobs"] == before["jobs"] + 1
    assert get_user(world["store"], "rita") == User("rita", Role.LEAD)
    assert get_user(world["store"], "leo") is None  # disabled
    assert world["jobs"].get(world["stopped"])["status"] == "running"  # resumed


# ---- the rater who forces their way past the navigation ----------------------------------------
def test_rater_is_refused_by_every_core_service_and_nothing_is_written(world):
    rater = User("rita", Role.RATER)
    store, owner = world["store"], world["owner"]
    before, files = table_counts(store), _runs(owner)
    attempts = {
        "create_user": lambda: create_user(store, rater, "sneaky", PASSWORD, "engineer"),
        "list_users": lambda: list_users(store, rater),
        "set_role": lambda: set_role(store, rater, "rita", "engineer"),
        "set_disabled": lambda: set_disabled(store, rater, "admin", True),
        "reset_password": lambda: reset_password(store, rater, "admin", "taken-over-password"),
        "import_dataset": lambda: _import_other(world, rater),
        "list_versions": lambda: list_versions(store, rater),
        "get_version": lambda: get_version(store, rater, world["version"]),
        "list_examples": lambda: list_examples(store, rater, world["version"]),
        "Jobs.submit": lambda: world["jobs"].submit(rater, "ticker", {"steps": 1}),
        "Jobs.cancel": lambda: world["jobs"].cancel(rater, world["running"]),
        "Jobs.resume": lambda: world["jobs"].resume(rater, world["stopped"]),
        "generate": lambda: _generate(world, rater),
        "list_sets": lambda: list_sets(store, rater),
        "available_variants": lambda: available_variants(store, rater, "/m"),
        "create_pair_set": lambda: pairs.create_pair_set(store, rater, PairSetSpec(
            name="Mine", generation_set_id=world["gen"], variants=["base", "adapter:tuned"])),
        "assign_raters": lambda: pairs.assign_raters(store, rater, world["pair_set"], ["rita"], 1),
        "set_exclusion": lambda: pairs.set_exclusion(store, rater, world["pair_set"], "rita", False),
        "pairs_revealed": lambda: pairs.pairs_revealed(store, rater, world["pair_set"]),
        "results": lambda: results.latest(store, rater, world["pair_set"], owner.settings.review),
        "start_scoring": lambda: start_scoring(store, world["jobs"], rater, world["gen"]),
        "export": lambda: results.export(store, rater, world["pair_set"], owner.settings.review, "csv"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(PermissionDenied, match=r"rita \(rater\) may not do"):
            attempt()
        assert table_counts(store) == before, name
    assert _runs(owner) == files
    assert get_user(store, "rita") == User("rita", Role.RATER)
    assert get_user(store, "sneaky") is None
    assert get_user(store, "admin") == ADMIN
    assert world["jobs"].launcher.started == [world["running"], world["stopped"]]
    assert world["jobs"].get(world["running"])["status"] == "running"


def test_the_cli_user_is_an_engineer():
    assert CLI_USER.role is Role.ENGINEER
