"""Proof for issue [api], Tests: "Every API route x every role (extend the role proof): allowed, or
401/403 with nothing written."

tests/test_proof_roles.py proves it for core's functions; this file proves it for the HTTP API that
calls them, over the same workspace (its `world`: a dataset version, jobs, a finished run, a pair
set, a schedule, a contender, a promotion; its FakeLauncher, so no job really starts) and the same
`fingerprint` (every table's rows, the workspace's files, the launcher's starts and stops).

- `ROUTES` gives each route of the app (method and path as the app declares them) the Action that
  guards it (the one core's function checks; None: any signed-in account, for one's own tokens)
  and a request with a VALID body: FastAPI checks bodies before the route runs, so an invalid one
  would answer 422 before the role is checked and prove nothing.
- `test_every_route_has_a_case` reads the app's routes: one without a case fails, so a route cannot
  be added without its proof (and a case for a route the app no longer has fails too).
- `test_refused_and_nothing_written` calls each route as every role its action does not allow,
  with the ids of real objects and with plausible ids of objects that do not exist (403
  "forbidden" both times: the role is checked before any lookup), and without a valid token (none,
  another scheme, malformed, unknown, revoked, expired, of a disabled account: 401
  "unauthenticated"). Nothing may change: rows, files (a temporary folder of the API's own is
  watched too), the launcher.
- `test_allowed_roles_get_past_the_check` calls each route as every role that may, with unknown ids
  (nothing real changes) or throwaway names: never 401/403, never 500, never a 422 of the schema.

One workspace and one client serve the whole module; the refusals run first, on the untouched world.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import pytest

from core.auth import CLI_USER, PERMISSIONS, Action, Role
from tests.apptest import use_fast_password_hashing
from tests.conftest import PASSWORD
from tests.test_proof_roles import ACTORS, UNKNOWN_IDS, fingerprint, world  # noqa: F401  (the fixture)

PUBLIC = "public"  # the one route without a token: log-in (a password instead)
NOT_ROUTES = {"/docs", "/docs/assets", "/openapi.json"}  # the schema and its docs page: no data behind them
# Ids of objects that do not exist, for every kind of id a path holds. The task differs from the demo
# data's ("support_tickets" is real in this world), so an allowed call never touches a real task.
UNKNOWN = {**UNKNOWN_IDS, "dataset": "no_such_dataset", "task": "no_such_dataset", "hook": "hook-0123456789ab",
           "username": "nobody", "other_user": "nobody", "token_id": "0123456789ab"}
REASON = "promoted by someone who may not"


# ---- the routes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    method: str
    path: str  # as the app declares it, e.g. /runs/{run_id}
    action: Action | str | None  # an Action; None: every signed-in account; PUBLIC: no token at all
    request: Callable[[Any, dict], dict] = lambda w, ids: {}  # (world, ids) -> client.request's kwargs
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> key of the ids
    # Roles that get past the check made before any lookup, where that is wider than `action`
    # (a lead may cancel generation jobs, so may learn whether a run id exists).
    before_lookup: frozenset[Role] = frozenset()
    label: str = ""
    known_bug: str = ""  # the route fails the property: an xfail (strict) that says how

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.label}]" if self.label else "")

    def url(self, ids: dict) -> str:
        return self.path.format(**{name: ids[key] for name, key in self.params.items()})


def _demo_file(w) -> tuple[str, bytes]:
    path = w.root / "demo" / "support_tickets.jsonl"
    return path.name, path.read_bytes()


def _demo_under_way(kwargs: dict) -> dict:
    from api.routes import admin

    admin._demo_lock.acquire(blocking=False)  # held for the rest of this process: no demo is built here
    return kwargs


def _pair_set_body(ids: dict) -> dict:
    return {"name": "Mine", "generation_set_id": ids["gen"], "variants": ["base", "adapter:tuned"],
            "raters": ["rita"], "raters_per_pair": 1, "gold_rate": 0.0}


def _routes() -> list[Case]:
    A = Action
    ps = {"pair_set_id": "pair_set"}
    run = {"run_id": "run"}
    gen = {"set_id": "gen"}
    sched = {"schedule_id": "schedule"}
    hook = {"hook_id": "hook"}
    lead_may_look = frozenset({Role.LEAD})
    return [
        # account: log-in (no token), who am I, one's own tokens
        Case("POST", "/login", PUBLIC, lambda w, ids: {"json": {"username": "rita", "password": PASSWORD,
                                                                "name": "proof"}}),
        Case("GET", "/me", None),
        Case("GET", "/tokens", None),
        Case("GET", "/tokens", A.USERS_MANAGE, lambda w, ids: {"params": {"everyone": "true"}}, label="everyone's"),
        Case("POST", "/tokens", None, lambda w, ids: {"json": {"name": "proof", "days": 1}}),
        Case("DELETE", "/tokens/{token_id}", None, params={"token_id": "token_id"}),
        # data
        Case("POST", "/datasets/validate", A.DATA_IMPORT, lambda w, ids: {"files": {"file": _demo_file(w)}}),
        Case("POST", "/datasets/validate", A.DATA_IMPORT,
             lambda w, ids: {"files": {"file": _demo_file(w)}, "params": {"job": "true"}}, label="job"),
        Case("POST", "/datasets", A.DATA_IMPORT,
             lambda w, ids: {"files": {"file": _demo_file(w)}, "data": {"name": "escalated", "seed": "99"}}),
        Case("GET", "/imports/{job_id}", A.DATA_IMPORT, params={"job_id": "running"}),
        Case("GET", "/datasets", A.DATA_VIEW),
        Case("GET", "/datasets/{name}/versions", A.DATA_VIEW, params={"name": "dataset"}),
        Case("GET", "/versions", A.DATA_VIEW),
        Case("GET", "/versions/{version_id}", A.DATA_VIEW, params={"version_id": "version"}),
        Case("PUT", "/versions/{version_id}/metrics", A.DATA_IMPORT, lambda w, ids: {"json": {"metrics": ["chrf"]}},
             params={"version_id": "version"}),
        # training runs and jobs
        Case("POST", "/runs", A.JOBS_RUN,
             lambda w, ids: {"json": {"dataset_version": ids["version"], "max_steps": 1}}),
        Case("GET", "/runs", A.JOBS_VIEW),
        Case("GET", "/runs/{run_id}", A.JOBS_VIEW, params=run),
        Case("GET", "/runs/{run_id}/events", A.JOBS_VIEW, params=run),
        Case("GET", "/runs/{run_id}/events", A.JOBS_VIEW, lambda w, ids: {"params": {"follow": "true", "timeout": 1}},
             params=run, label="follow"),
        Case("POST", "/runs/{run_id}/cancel", A.JOBS_RUN, params=run, before_lookup=lead_may_look),
        Case("POST", "/runs/{run_id}/resume", A.JOBS_RUN, params=run, before_lookup=lead_may_look),
        Case("POST", "/runs/{run_id}/merge", A.JOBS_RUN, lambda w, ids: {"json": {"prompts": 2}}, params=run),
        Case("POST", "/runs/{run_id}/reproduce", A.JOBS_RUN, params=run),
        Case("GET", "/jobs", A.JOBS_VIEW),
        Case("GET", "/jobs/{job_id}", A.JOBS_VIEW, params={"job_id": "running"}),
        Case("GET", "/jobs/{job_id}/events", A.JOBS_VIEW, params={"job_id": "running"}),
        Case("GET", "/jobs/{job_id}/events", A.JOBS_VIEW, lambda w, ids: {"params": {"follow": "true", "timeout": 1}},
             params={"job_id": "running"}, label="follow"),
        # generation sets and scores
        Case("GET", "/variants", A.GENERATE),
        Case("POST", "/generations", A.GENERATE,
             lambda w, ids: {"json": {"name": "escalation", "variants": ["base"],
                                      "prompts": {"version": ids["version"], "limit": 1}}}),
        Case("GET", "/generations", A.JOBS_VIEW),
        Case("GET", "/generations/{set_id}", A.JOBS_VIEW, params=gen),
        Case("GET", "/generations/{set_id}/outputs", A.JOBS_VIEW, params=gen),
        Case("POST", "/generations/{set_id}/scores", A.GENERATE, lambda w, ids: {"json": {"metrics": ["chrf"]}},
             params=gen),
        Case("GET", "/generations/{set_id}/scores", A.METRICS_VIEW, params=gen),
        Case("GET", "/generations/{set_id}/scores/export", A.METRICS_VIEW,
             lambda w, ids: {"params": {"format": "csv", "table": "deltas"}}, params=gen),
        # pair sets
        Case("GET", "/pair-sets", A.REVIEW_RESULTS),
        Case("POST", "/pair-sets/plan", A.REVIEW_MANAGE, lambda w, ids: {"json": _pair_set_body(ids)}),
        Case("POST", "/pair-sets", A.REVIEW_MANAGE, lambda w, ids: {"json": _pair_set_body(ids)}),
        Case("GET", "/pair-sets/{pair_set_id}", A.REVIEW_RESULTS, params=ps),
        Case("PUT", "/pair-sets/{pair_set_id}/raters", A.REVIEW_MANAGE,
             lambda w, ids: {"json": {"raters": ["rita"], "raters_per_pair": 1}}, params=ps),
        Case("GET", "/pair-sets/{pair_set_id}/progress", A.REVIEW_RESULTS, params=ps),
        Case("GET", "/pair-sets/{pair_set_id}/results", A.REVIEW_RESULTS, params=ps),
        Case("GET", "/pair-sets/{pair_set_id}/export", A.REVIEW_RESULTS, params=ps),
        Case("GET", "/pair-sets/{pair_set_id}/export", A.REVIEW_REVEAL,
             lambda w, ids: {"params": {"table": "votes", "format": "csv"}}, params=ps, label="votes",
             # The engineer passes the REVIEW_RESULTS check (so learns whether the set exists) ...
             before_lookup=frozenset({Role.ENGINEER})),
        # judges (engineers define and run; leads and engineers read; never raters)
        Case("GET", "/judges/prompts", A.REVIEW_RESULTS),
        Case("GET", "/judges", A.REVIEW_RESULTS),
        Case("POST", "/judges", A.JOBS_RUN, lambda w, ids: {"json": {"name": "escalated judge", "variant_id": "base"}}),
        Case("POST", "/judges/{judge_id}/runs", A.JOBS_RUN,
             lambda w, ids: {"json": {"pair_set_id": ids["pair_set"]}}, params={"judge_id": "pair_set"}),
        Case("GET", "/judges/runs", A.REVIEW_RESULTS),
        Case("GET", "/judges/runs/{set_id}/verdicts", A.REVIEW_RESULTS, params=gen),
        Case("GET", "/judges/runs/{set_id}/calibration", A.REVIEW_RESULTS, params=gen),
        Case("GET", "/judges/runs/{set_id}/comparisons", A.REVIEW_RESULTS, params=gen),
        Case("GET", "/judges/alignment/{pair_set_id}", A.REVIEW_RESULTS, params=ps),
        Case("PUT", "/judges/routing/{pair_set_id}", A.REVIEW_MANAGE,
             lambda w, ids: {"json": {"set_id": ids["gen"]}}, params=ps),
        Case("GET", "/judges/routing/{pair_set_id}", A.REVIEW_RESULTS, params=ps),
        Case("DELETE", "/judges/routing/{pair_set_id}", A.REVIEW_MANAGE, params=ps),
        # rating (raters only)
        Case("GET", "/rating/tasks", A.REVIEW_RATE),
        Case("GET", "/rating/{pair_set_id}/next", A.REVIEW_RATE, params=ps),
        Case("POST", "/rating/{pair_set_id}/vote", A.REVIEW_RATE,
             lambda w, ids: {"json": {"ticket": "t" * 32, "choice": "1", "rationale": "forced"}}, params=ps),
        Case("POST", "/rating/{pair_set_id}/skip", A.REVIEW_RATE, lambda w, ids: {"json": {"ticket": "t" * 32}},
             params=ps),
        Case("POST", "/rating/{pair_set_id}/undo", A.REVIEW_RATE, params=ps),
        # regression runs and promotion
        Case("POST", "/regression/runs", A.GENERATE,
             lambda w, ids: {"json": {"variants": [ids["variant"]], "items": 2}}),
        Case("GET", "/regression/runs", A.METRICS_VIEW),
        Case("GET", "/regression/runs/{set_id}", A.METRICS_VIEW, params=gen),
        Case("GET", "/regression/runs/{set_id}/gate", A.METRICS_VIEW,
             lambda w, ids: {"params": {"variant": ids["variant"]}}, params=gen),
        Case("GET", "/regression/sweeps", A.METRICS_VIEW),
        Case("POST", "/regression/sweeps", A.GENERATE,
             lambda w, ids: {"json": {"run_id": ids["run"], "steps": [10, 20], "items": 2, "prompts": 2}}),
        Case("GET", "/regression/sweeps/{sweep_id}", A.METRICS_VIEW, params={"sweep_id": "sweep"}),
        Case("GET", "/regression/sweeps/{sweep_id}/table", A.METRICS_VIEW, params={"sweep_id": "sweep"}),
        Case("POST", "/regression/harness", A.GENERATE,
             lambda w, ids: {"json": {"variant": ids["variant"], "tasks": ["arc_easy"], "limit": 5}}),
        Case("GET", "/regression/harness", A.METRICS_VIEW, lambda w, ids: {"params": {"variant": ids["variant"]}}),
        Case("GET", "/promotions", A.METRICS_VIEW),
        Case("POST", "/promotions", A.PROMOTE,
             lambda w, ids: {"json": {"variant": "adapter:other", "reason": REASON, "override": True,
                                      "task": ids["task"]}}),
        Case("POST", "/promotions/rollback", A.PROMOTE,
             lambda w, ids: {"json": {"task": ids["task"], "reason": "rolled back by someone who may not"}}),
        # retraining pipelines and schedules
        Case("GET", "/pipelines", A.JOBS_VIEW),
        Case("GET", "/pipelines/{pipeline_id}", A.JOBS_VIEW, params={"pipeline_id": "pipeline"}),
        Case("POST", "/pipelines", A.JOBS_RUN,
             lambda w, ids: {"json": {"task": ids["task"], "test_prompts": 2, "suite_items": 2}}),
        Case("POST", "/pipelines/{pipeline_id}/decision", A.PROMOTE,
             lambda w, ids: {"json": {"decision": "promoted", "reason": REASON, "override": True}},
             params={"pipeline_id": "pipeline"}),
        Case("POST", "/pipelines/{pipeline_id}/decision", A.PROMOTE,
             lambda w, ids: {"json": {"decision": "dismissed", "reason": "dismissed by someone who may not"}},
             params={"pipeline_id": "pipeline"}, label="dismissed"),
        Case("GET", "/schedules", A.JOBS_VIEW),
        Case("POST", "/schedules", A.JOBS_RUN,
             lambda w, ids: {"json": {"task": ids["task"], "name": "sneaky", "trigger": "interval", "spec": "1"}}),
        Case("POST", "/schedules/{schedule_id}/pause", A.JOBS_RUN, params=sched),
        Case("POST", "/schedules/{schedule_id}/resume", A.JOBS_RUN, params=sched),
        Case("DELETE", "/schedules/{schedule_id}", A.JOBS_RUN, params=sched),
        Case("POST", "/schedules/{schedule_id}/run", A.JOBS_RUN, params=sched),
        # contenders
        Case("GET", "/contenders", A.JOBS_VIEW),
        Case("POST", "/contenders/prompted", A.JOBS_RUN,
             lambda w, ids: {"json": {"name": "sneaky", "system_prompt": "Obey.",
                                      "few_shot": [{"user": "Hi", "assistant": "Obeyed."}]}}),
        Case("POST", "/contenders/model", A.JOBS_RUN,
             lambda w, ids: {"json": {"name": "sneaky_model", "model": w.settings.base_model}}),
        Case("POST", "/contenders/external", A.JOBS_RUN,
             lambda w, ids: {"json": {"name": "ghost", "url": "http://127.0.0.1:9/v1", "model": "m"}}),
        Case("DELETE", "/contenders/{variant_id}", A.JOBS_RUN, params={"variant_id": "contender"}),
        # deployment and run records
        Case("GET", "/deploy/plan", A.JOBS_VIEW),
        Case("POST", "/deploy", A.JOBS_RUN, lambda w, ids: {"json": {"out_dir": str(w.path("deploy"))}}),
        Case("GET", "/deploy/jobs/{job_id}", A.JOBS_VIEW, params={"job_id": "running"}),
        Case("POST", "/bundles", A.JOBS_VIEW, lambda w, ids: {"json": {"run_id": ids["run"], "data": False}}),
        Case("GET", "/bundles/jobs/{job_id}", A.JOBS_VIEW, params={"job_id": "running"}),
        Case("GET", "/bundles/jobs/{job_id}/zip", A.JOBS_VIEW, params={"job_id": "running"}),
        Case("POST", "/bundles/reproduce", A.JOBS_RUN,
             lambda w, ids: {"content": b"PK\x05\x06" + b"\0" * 18, "params": {"filename": "someone-elses.zip"},
                             "headers": {"Content-Type": "application/zip"}}),
        # accounts and the audit trail
        Case("GET", "/users", A.USERS_MANAGE),
        Case("POST", "/users", A.USERS_MANAGE,
             lambda w, ids: {"json": {"username": "sneaky", "role": "engineer", "password": PASSWORD}}),
        Case("PUT", "/users/{username}/role", A.USERS_MANAGE, lambda w, ids: {"json": {"role": "engineer"}},
             params={"username": "username"}),
        Case("PUT", "/users/{username}/disabled", A.USERS_MANAGE, lambda w, ids: {"json": {"disabled": True}},
             params={"username": "other_user"}),
        Case("GET", "/audit", A.USERS_MANAGE),
        Case("GET", "/audit", A.USERS_MANAGE, lambda w, ids: {"params": {"format": "csv", "who": "eve"}},
             label="csv"),
        # The demo is minutes of work, too long for a proof: a build under way is simulated by holding its
        # lock, so an allowed role is answered 409 "busy" (past the role check), and a refused one 403 first.
        Case("POST", "/demo", A.USERS_MANAGE, lambda w, ids: _demo_under_way({"json": {"examples": 100}})),
        # webhooks (engineers)
        Case("POST", "/webhooks", A.USERS_MANAGE,
             lambda w, ids: {"json": {"url": "http://127.0.0.1:9/hook", "events": ["run.finished"],
                                      "name": "sneaky"}}),
        Case("GET", "/webhooks", A.USERS_MANAGE),
        Case("DELETE", "/webhooks/{hook_id}", A.USERS_MANAGE, params=hook),
        Case("GET", "/webhooks/{hook_id}/deliveries", A.USERS_MANAGE, params=hook),
        Case("POST", "/webhooks/{hook_id}/test", A.USERS_MANAGE, params=hook),
    ]


ROUTES = _routes()


# ---- the API over the proof's world -------------------------------------------------------------
@dataclass
class Api:
    world: Any
    client: Any
    app_routes: set[tuple[str, str]]
    ids: dict  # the world's real ids, with those of the objects made here
    tokens: dict[Role, str]  # a live token per role
    bad: dict[str, dict]  # headers that name no live token -> why
    tmp: Any  # the temporary folder the API's routes use here (inside the fingerprinted tree)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if route.path in NOT_ROUTES:
            continue
        for method in getattr(route, "methods", None) or {"*"}:
            if method != "HEAD":
                found.add((method, route.path))
    return found


@pytest.fixture(scope="module")
def the_api(world):  # noqa: F811 - the fixture imported above
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from fastapi.testclient import TestClient

    import api.app
    import api.auth
    import api.routes.account
    from core import owner as owners
    from core import tokens, users, webhooks
    from core.throttle import Throttle

    store = world.store
    ids = dict(world.ids)
    made = {role: tokens.create_token(store, user, "proof", 1, 365)[1] for role, user in ACTORS.items()}
    spare, _ = tokens.create_token(store, ACTORS[Role.LEAD], "spare", 1, 365)  # revoked by nobody here
    ids["token_id"] = spare["token_id"]
    ids["username"], ids["other_user"] = "rita", "admin"  # refused callers try to promote rita, disable admin
    revoked_record, revoked = tokens.create_token(store, ACTORS[Role.ENGINEER], "revoked", 1, 365)
    tokens.revoke_token(store, ACTORS[Role.ENGINEER], revoked_record["token_id"])
    expired_record, expired = tokens.create_token(store, ACTORS[Role.ENGINEER], "expired", 1, 365)
    store.execute("UPDATE api_tokens SET expires_at = now() - INTERVAL 1 MINUTE WHERE token_id = ?",
                  [expired_record["token_id"]])
    with pytest.MonkeyPatch.context() as mp:
        use_fast_password_hashing(mp)
        dora = users.create_user(store, CLI_USER, "dora", PASSWORD, "engineer")
    _, disabled = tokens.create_token(store, dora, "disabled", 1, 365)
    users.set_disabled(store, CLI_USER, "dora", True)
    bad = {"no token": {}, "another scheme": {"Authorization": "Basic ZXZlOnNlY3JldA=="},
           "a malformed token": _bearer("nope"), "an unknown token": _bearer("tb_0123456789ab_" + "x" * 43),
           "a revoked engineer's token": _bearer(revoked), "an expired engineer's token": _bearer(expired),
           "a disabled engineer's token": _bearer(disabled)}
    hook, _ = webhooks.create_hook(store, ACTORS[Role.ENGINEER], "http://127.0.0.1:9/hook", ["run.finished"], "proof")
    ids["hook"] = hook["hook_id"]
    # A vote in the real pair set: its results have something to compute (a refusal must not compute them).
    rita = ACTORS[Role.RATER]
    pair = world.desk.next_pair(rita, ids["pair_set"])
    assert world.desk.vote(rita, ids["pair_set"], pair.ticket, "1", "").status == "recorded"

    owner = replace(world.owner, jobs=world.jobs, desk=world.desk)  # the world's launcher: nothing runs
    tmp = world.root / "tmp"
    tmp.mkdir()
    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as stack:
        # The failed-attempt limit would answer 429 after ten bad tokens: not what is proven here.
        unlimited = Throttle(limit=10**9)
        mp.setattr(api.auth, "SIGN_IN", unlimited)
        mp.setattr(api.routes.account, "SIGN_IN", unlimited)
        mp.setattr(tempfile, "tempdir", str(tmp))  # a folder a route leaves behind shows in the fingerprint
        owners.install(owner)
        stack.callback(owners.install, None)
        app = api.app.build()
        client = stack.enter_context(TestClient(Starlette(routes=[Mount("/api/v1", app=app)]),
                                                base_url="http://testserver/api/v1", raise_server_exceptions=False))
        yield Api(world, client, _app_routes(app), ids, made, bad, tmp)


def snapshot(a: Api) -> dict:
    """The proof's fingerprint, but a token's last use (written at most once a minute when it is used)
    does not count: that a refused call was made with a live token is not a change it made."""
    found = fingerprint(a.world)
    found["rows"]["api_tokens"] = tuple(a.world.store.row(
        "SELECT count(*) AS n, sum(hash(t)::HUGEINT) AS h FROM (SELECT * EXCLUDE (last_used_at) FROM api_tokens) t"
    ).values())
    return found


def _differences(before: dict, after: dict) -> list[str]:
    out = [f"table {t}" for t in sorted(set(before["rows"]) | set(after["rows"]))
           if before["rows"].get(t) != after["rows"].get(t)]
    out += [f"file {f}" for f in sorted(set(before["files"]) | set(after["files"]))
            if before["files"].get(f) != after["files"].get(f)]
    if (before["started"], before["stopped"]) != (after["started"], after["stopped"]):
        out.append(f"launcher started {after['started'][len(before['started']):]} "
                   f"stopped {after['stopped'][len(before['stopped']):]}")
    return out


def call(a: Api, case: Case, ids: dict, headers: dict):
    kwargs = case.request(a.world, ids)
    return a.client.request(case.method, case.url(ids), headers={**kwargs.pop("headers", {}), **headers}, **kwargs)


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except Exception:  # noqa: BLE001 - not a JSON error (a success, a file)
        return None


def _registered(a: Api, case: Case) -> None:
    if (case.method, case.path) not in a.app_routes:
        pytest.fail(f"{case.method} {case.path}: the app has no such route (a stale case)")


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.known_bug)] if case.known_bug else []
    return pytest.param(case, id=case.id, marks=marks)


# ---- every route has a case ---------------------------------------------------------------------
def test_every_route_has_a_case(the_api):
    covered = {(c.method, c.path) for c in ROUTES}
    missing = sorted(the_api.app_routes - covered)
    assert not missing, f"API routes without a case in {__file__}: {missing}"
    stale = sorted((c.method, c.path) for c in ROUTES if (c.method, c.path) not in the_api.app_routes)
    assert not stale, f"cases for routes the app no longer has: {stale}"
    assert len(the_api.app_routes) >= 78, "the app has too few routes: are the routers registered?"


def test_every_action_and_role_is_exercised():
    guarded = [c for c in ROUTES if isinstance(c.action, Action)]
    assert {c.action for c in guarded} == set(Action)
    assert {r for c in guarded for r in Role if r not in PERMISSIONS[c.action]} == set(Role)


def test_the_setup_is_what_the_cases_expect(the_api):
    """A control: the real ids point at real rows, the unknown ones at none, and the bad tokens are
    refused by the token check itself (so a 401 above is that check's, not a route's)."""
    store, ids = the_api.world.store, the_api.ids
    assert store.scalar("SELECT count(*) FROM api_tokens WHERE token_id = ? AND revoked_at IS NULL",
                        [ids["token_id"]]) == 1
    assert store.scalar("SELECT count(*) FROM votes WHERE pair_set_id = ?", [ids["pair_set"]]) >= 1
    assert store.scalar("SELECT count(*) FROM users WHERE username = ?", [UNKNOWN["username"]]) == 0
    assert store.scalar("SELECT count(*) FROM dataset_versions WHERE dataset = ?", [UNKNOWN["dataset"]]) == 0
    assert store.scalar("SELECT count(*) FROM api_tokens WHERE token_id = ?", [UNKNOWN["token_id"]]) == 0
    assert store.scalar("SELECT count(*) FROM webhooks WHERE hook_id = ?", [ids["hook"]]) == 1
    assert store.scalar("SELECT count(*) FROM webhooks WHERE hook_id = ?", [UNKNOWN["hook"]]) == 0
    for why, headers in the_api.bad.items():
        r = the_api.client.get("/me", headers=headers)
        assert r.status_code == 401, (why, r.text)


# ---- refused, before any lookup, and nothing written --------------------------------------------
def _refused_roles(case: Case, which: str) -> list[Role]:
    if not isinstance(case.action, Action):
        return []
    allowed = set(PERMISSIONS[case.action]) | (set(case.before_lookup) if which == "unknown" else set())
    return [r for r in Role if r not in allowed]


@pytest.mark.parametrize("case", [_param(c) for c in ROUTES])
def test_refused_and_nothing_written(the_api, case):
    _registered(the_api, case)
    before = snapshot(the_api)
    wrong: list[str] = []
    tried = 0
    for which, ids in (("real", the_api.ids), ("unknown", UNKNOWN)):
        for role in _refused_roles(case, which):
            r = call(the_api, case, ids, _bearer(the_api.tokens[role]))
            tried += 1
            if r.status_code != 403 or _error_code(r) != "forbidden":
                wrong.append(f"{ACTORS[role].username} ({role.value}), {which} ids: {r.status_code} {r.text[:300]}")
    if case.action == PUBLIC:  # log-in: a wrong password is refused, whoever tries
        for user in ACTORS.values():
            body = {"json": {"username": user.username, "password": "not-the-password", "name": "proof"}}
            r = the_api.client.request(case.method, case.path, **body)
            tried += 1
            if r.status_code != 401 or _error_code(r) != "unauthenticated":
                wrong.append(f"{user.username} with a wrong password: {r.status_code} {r.text[:300]}")
    else:
        for why, headers in the_api.bad.items():
            r = call(the_api, case, the_api.ids, headers)
            tried += 1
            if r.status_code != 401 or _error_code(r) != "unauthenticated":
                wrong.append(f"{why}: {r.status_code} {r.text[:300]}")
    after = snapshot(the_api)
    assert tried >= 3
    assert not wrong, f"{case.id}: not refused as it should be:\n" + "\n".join(wrong)
    changed = _differences(before, after)
    assert not changed, f"{case.id}: refused calls changed {changed}"


def test_someone_elses_token_is_not_revoked_by_a_non_engineer(the_api):
    """Revoking is open to every account for its own tokens; another's is answered 404 (not even said
    to exist) to raters and leads, and nothing is written."""
    case = next(c for c in ROUTES if c.path == "/tokens/{token_id}")
    before = snapshot(the_api)
    r = call(the_api, case, the_api.ids, _bearer(the_api.tokens[Role.RATER]))  # the lead's spare token, as rita
    assert r.status_code == 404 and _error_code(r) == "not_found", r.text
    assert not _differences(before, snapshot(the_api))


# ---- allowed: past the check, and never a failure -----------------------------------------------
def _allowed_roles(case: Case) -> list[Role]:
    if isinstance(case.action, Action):
        return [r for r in Role if r in PERMISSIONS[case.action]]
    return list(Role)  # every signed-in account (and log-in: everyone with a password)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ROUTES])
def test_allowed_roles_get_past_the_check(the_api, case):
    _registered(the_api, case)
    wrong = []
    for role in _allowed_roles(case):
        user = ACTORS[role]
        if case.action == PUBLIC:
            r = the_api.client.request(case.method, case.path,
                                   json={"username": user.username, "password": PASSWORD, "name": "proof"})
            ok = r.status_code == 201
        else:
            r = call(the_api, case, UNKNOWN, _bearer(the_api.tokens[role]))
            ok = r.status_code not in (401, 403) and r.status_code < 500 and _error_code(r) != "invalid_request"
        if not ok:
            wrong.append(f"{user.username} ({role.value}): {r.status_code} {r.text[:300]}")
    assert not wrong, f"{case.id}: an allowed role did not get past the check:\n" + "\n".join(wrong)
    # The test accounts and their tokens are as they were: the checks after this one still hold.
    for role, token in the_api.tokens.items():
        me = the_api.client.get("/me", headers=_bearer(token))
        assert me.status_code == 200 and me.json()["role"] == role.value, (case.id, me.text)
