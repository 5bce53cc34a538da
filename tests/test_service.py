"""[service] `tuneboard serve` with no browser ever connected: the CLI works beside it (through it),
an interval schedule made from the CLI fires on time and its pipeline runs to the end, health and
metrics answer over HTTP, and SIGTERM shuts it down cleanly (the CLI then runs on its own again).

Real processes throughout: the server, the CLI, the training / generation / scoring workers of
the pipeline on the tiny model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.rater_load import free_port, start_server, stop_server
from core.auth import CLI_USER
from core.config import load_settings
from core.datasets import ImportOptions, import_dataset
from core.lifecycle import promotion
from core.owner import Owner
from core.training import start_training
from core.training.config import TrainConfig
from tests.conftest import ONE_THREAD

pytestmark = pytest.mark.slow
TUNEBOARD = Path(sys.executable).with_name("tuneboard")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _env(root: Path, tiny_model: str, **extra: str) -> dict[str, str]:
    """The environment of a workspace in `root` on the tiny model, without the caller's TUNEBOARD_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBOARD_")}
    env.update({"TUNEBOARD_WORKSPACE": str(root / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
                "TUNEBOARD_ADMIN_PASSWORD": "service-admin-pw-1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", **ONE_THREAD, **extra})
    return env


@pytest.fixture
def workspace(tmp_path, tiny_model, demo_files):
    """A workspace whose task `tickets` has a promoted first version (made before the server starts)."""
    root = tmp_path / "root"
    root.mkdir()
    env = _env(root, tiny_model)
    settings = load_settings(env=env)
    owner = Owner.open(settings, monitor=False, env=env)
    try:
        good, _ = demo_files
        version = import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name,
                                 ImportOptions(name="tickets", metrics=["exact_match", "chrf"])).version_id
        config = TrainConfig(base_model=tiny_model, dataset_version=version, learning_rate=3e-3, max_steps=4,
                             batch_size=8, eval_every=4, lora_rank=8, lora_alpha=16, modules_to_save=["lm_head"],
                             max_seq_len=256, early_stopping_patience=0)
        first = start_training(owner.store, owner.jobs, CLI_USER, config)
        assert owner.jobs.wait(first, timeout=300, poll=0.3)["status"] == "succeeded"
        promotion.promote(owner.store, CLI_USER, f"adapter:{first}", "the first version, before any gate existed",
                          override=True)
    finally:
        owner.close()
    return {"root": root, "env": env, "settings": settings, "first": first, "data": good}


def _cli(w, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(TUNEBOARD), *args], cwd=w["root"], env=w["env"], capture_output=True, text=True,
                          timeout=300)


def test_a_schedule_fires_and_its_pipeline_completes_with_no_browser_while_the_cli_works(workspace):
    w = workspace
    port = free_port()
    process = start_server(w["root"], w["env"], port, w["root"] / "server.log")
    url = f"http://localhost:{port}"
    try:
        status, body = _get(f"{url}/api/v1/health")
        assert status == 200 and json.loads(body)["ready"] is True
        found = json.loads((w["settings"].workspace_dir / "server.json").read_text())
        assert found["pid"] == process.pid and oct((w["settings"].workspace_dir / "cli-token").stat().st_mode)[-3:] \
            == "600"

        # The CLI beside the running server: it goes through it (the server owns the database).
        listed = _cli(w, "runs", "list")
        assert listed.returncode == 0, listed.stderr
        assert w["first"] in listed.stdout
        (w["root"] / "more.jsonl").write_bytes(w["data"].read_bytes())  # a path relative to the CLI's cwd
        imported = _cli(w, "data", "import", "more.jsonl", "--name", "tickets-copy")
        assert imported.returncode == 0 and "more.jsonl: 200 rows, 200 valid" in imported.stdout, imported.stderr
        refused = _cli(w, "data", "import", "missing.jsonl", "--name", "x")
        assert refused.returncode != 0 and "missing.jsonl: no such file" in refused.stderr
        assert "Traceback" not in refused.stderr
        twice = _cli(w, "serve", "--port", str(free_port()))
        assert twice.returncode != 0 and "already runs" in twice.stderr

        made = _cli(w, "retrain", "schedule", "tickets", "--every-hours", "0.004", "--test-prompts", "3",
                    "--suite-items", "1", "--raters-per-pair", "1", "--path", "transformers")
        assert made.returncode == 0 and "created" in made.stdout, made.stderr
        made_at = time.monotonic()

        # No browser: the server's own monitor fires the schedule (due in ~15 s) and runs the pipeline.
        fired_after = None
        deadline = time.monotonic() + 900
        while True:
            metrics = _get(f"{url}/api/v1/metrics")[1]
            states = dict(re.findall(r'tuneboard_pipelines\{state="([a-z]+)"\} ([0-9.]+)', metrics))
            if states and fired_after is None:
                fired_after = time.monotonic() - made_at
            if "ready" in states or "failed" in states:
                break
            assert time.monotonic() < deadline, (states, (w["root"] / "server.log").read_text()[-3000:])
            time.sleep(2)
        assert fired_after is not None and fired_after < 15 + 60  # due after 14.4 s, fired within a minute
        assert "failed" not in states, (w["root"] / "server.log").read_text()[-3000:]
        shown = _cli(w, "retrain", "list")
        assert shown.returncode == 0 and "ready" in shown.stdout, shown.stdout + shown.stderr
    finally:
        stop_server(process)  # SIGTERM: the lifespan closes the owner
    assert process.returncode == 0 or process.returncode == -15
    assert not (w["settings"].workspace_dir / "server.json").exists()
    alone = _cli(w, "retrain", "list")  # no server now: the CLI opens the database for this one call
    assert alone.returncode == 0 and "ready" in alone.stdout, alone.stderr


def test_kill_9_of_the_server_while_the_cli_waits_on_a_job_then_a_restart_reattaches_the_worker(workspace):
    w = workspace
    shown = _cli(w, "runs", "show", w["first"])  # no server yet: the CLI alone
    version = re.search(r'dataset_version = "([0-9a-f]+)"', shown.stdout).group(1)
    config = w["root"] / "long.toml"
    config.write_text(f'[train]\ndataset_version = "{version}"\nmax_steps = 40\neval_every = 20\nbatch_size = 4\n'
                      'max_seq_len = 128\nlearning_rate = 0.001\n')
    port = free_port()
    server = start_server(w["root"], w["env"], port, w["root"] / "server.log")
    url = f"http://localhost:{port}"
    waiting = subprocess.Popen([str(TUNEBOARD), "train", "--config", "long.toml"], cwd=w["root"], env=w["env"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in waiting.stdout:  # "started train-...": the job runs, the CLI follows it
            if (found := re.search(r"started (train-\S+):", line)):
                break
        run_id = found.group(1)
        os.kill(server.pid, 9)  # the server only: the worker is its own session and keeps going
        server.wait(timeout=30)
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 1 and "stopped before" in err and "keep running" in err, (out, err)
        assert "Traceback" not in err
        server = start_server(w["root"], w["env"], port, w["root"] / "server.log")  # re-attaches the worker
        deadline = time.monotonic() + 600
        while 'tuneboard_jobs_active 0.0' not in _get(f"{url}/api/v1/metrics")[1]:
            assert time.monotonic() < deadline, (w["root"] / "server.log").read_text()[-3000:]
            time.sleep(2)
        runs = _cli(w, "runs", "show", run_id)
        assert runs.returncode == 0 and "succeeded" in runs.stdout, runs.stdout + runs.stderr
    finally:
        if waiting.poll() is None:
            waiting.kill()
        stop_server(server)
    # Every step's event was counted once, across the two owners.
    from core.jobs import Jobs
    from core.store import open_store

    store = open_store(w["settings"])
    try:
        steps = [e["step"] for e in Jobs(store, w["settings"].runs_dir).events(run_id, "train")]
    finally:
        store.close()
    assert steps == sorted(set(steps)) and steps[-1] == 40


def test_the_readmes_commands_work_through_a_live_server(tmp_path, tiny_model, demo_files):
    """The README's command table, run while `tuneboard serve` owns the workspace (each goes through
    it), short settings aside (one suite item per category, a 2-step demo fine-tune). Left out:
    the two documented exceptions (`serve-models`, `regression harness` offline)."""
    good, bad = demo_files
    root = tmp_path / "root"
    root.mkdir()
    env = _env(root, tiny_model, RITA_PW="rita-password-123",
               # The demo, short: 2 steps, 2 test prompts through transformers, 1 suite item, no sweep.
               TUNEBOARD_TRAINING_DEMO_STEPS="2", TUNEBOARD_REVIEW_DEMO_PROMPTS="2",
               TUNEBOARD_SERVING_PATH="transformers", TUNEBOARD_REGRESSION_DEMO_ITEMS="1",
               TUNEBOARD_REGRESSION_DEMO_SWEEP_ITEMS="0")
    w = {"root": root, "env": env}
    port = free_port()
    server = start_server(root, env, port, root / "server.log")
    try:
        def ok(*args, expect: str = "") -> str:
            done = _cli(w, *args)
            assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stdout, done.stderr)
            assert expect in done.stdout, (args, done.stdout)
            return done.stdout

        ok("init", expect="Workspace ready")
        ok("config", expect="[training]")
        ok("data", "validate", str(good))
        version = json.loads(ok("data", "import", "--name", "tickets", "--json", str(good)))["version"]
        ok("data", "list", expect="tickets")
        ok("data", "show", version[:8], "--examples", "1", "--split", "test")
        ok("data", "metrics", version[:8], "--set", "exact_match,chrf")
        ok("users", "add", "rita", "--role", "rater", "--password-env", "RITA_PW")
        ok("users", "set-role", "rita", "lead")
        ok("users", "set-role", "rita", "rater")
        ok("users", "list", expect="rita")
        _the_api_on_the_live_server(f"http://localhost:{port}", ok, good, bad, version)
        (root / "run.toml").write_text(f'[train]\ndataset_version = "{version}"\nmax_steps = 4\neval_every = 2\n'
                                       'batch_size = 4\nmax_seq_len = 128\n')
        run_id = re.search(r"started (train-\S+):", ok("train", "--config", "run.toml")).group(1)
        ok("runs", "list", expect=run_id)
        ok("runs", "show", run_id, expect="dataset_version")
        ok("runs", "follow", run_id, expect="succeeded")
        finished = _cli(w, "runs", "cancel", run_id)  # a finished run: a clean refusal, not a traceback
        assert finished.returncode != 0 and "error:" in finished.stderr and "Traceback" not in finished.stderr
        made = ok("generate", "--prompts", f"{version}:test", "--variants", f"base,adapter:{run_id}", "--limit", "3",
                  "--max-tokens", "8", "--path", "transformers")
        gen = re.search(r"(generate-\S+?)[:\s]", made).group(1)
        ok("metrics", "score", gen, "--metrics", "exact_match,chrf")
        ok("metrics", "show", gen, expect="chrf")
        ok("review", "create", gen, "--name", "Round 1", "--variants", f"adapter:{run_id},base", "--raters", "rita",
           "--per-pair", "1", "--gold-rate", "0", expect="Plan: With 3 prompts")
        pair_set = re.search(r"(pairs-\S+)", ok("review", "list")).group(1)
        ok("review", "assign", pair_set, "--raters", "rita")
        assert "no votes yet" in _cli(w, "review", "results", pair_set).stderr
        ok("contenders", "model", "prompted", "--system-prompt", "Reply with the JSON object only.")
        ok("promote", f"adapter:{run_id}", "--override", "--reason", "the first version of the task", "--task",
           "tickets", expect="promoted")
        ok("regression", "list")
        ok("retrain", "schedule", "tickets", "--every-hours", "100", expect="created")
        schedule = re.search(r"(schedule-\S+)", ok("retrain", "schedules")).group(1)
        ok("retrain", "pause", schedule)
        ok("retrain", "list")
        ok("deploy", "--out", "deployment", "--dry-run")
        ok("bundle", run_id, "--out", "bundles/run.zip")
        assert (root / "bundles" / "run.zip").is_file(), "the bundle lands relative to the CLI's folder"
        ok("runs", "merge", run_id, "--prompts", "1", expect="good (1/1 identical greedy")
        refused = _cli(w, "runs", "resume", run_id)  # a finished run has nothing to resume: said cleanly
        assert refused.returncode != 0 and "error:" in refused.stderr and "Traceback" not in refused.stderr
        ok("reproduce", "bundles/run.zip", "--detach", expect="train-")
        now = ok("retrain", "now", "tickets", "--test-prompts", "3", "--suite-items", "1", "--raters-per-pair", "1",
                 "--path", "transformers")
        pipeline = re.search(r"(pipeline-\S+?)[:\s,]", now).group(1)
        ok("retrain", "show", pipeline)
        ok("retrain", "decide", pipeline, "--promote", "--override", "--reason", "the candidate reads better here")
        ok("rollback", "tickets", "--reason", "back to the first version for now")
        ok("regression", "list", expect="gate")
        ok("regression", "run", "--variants", f"adapter:{run_id}", "--items", "1", "--path", "transformers",
           expect=f"gate for adapter:{run_id}:")
        swept = ok("regression", "sweep", run_id, "--items", "1", "--prompts", "2", "--path", "transformers")
        sweep_id = re.search(r"started (sweep-\S+?):", swept).group(1)
        ok("regression", "sweeps", expect=sweep_id)
        ok("regression", "sweep-show", sweep_id, expect="general")
        logins = ok("demo", "--examples", "100", expect="Logins")
        assert "rater2" in logins and "demo ready" in logins
        # After the retrain: a pipeline would also generate with this contender, whose endpoint is not there.
        ok("contenders", "add", "remote", "--url", "http://127.0.0.1:9/v1", "--model", "m")
    finally:
        stop_server(server)


def _the_api_on_the_live_server(url: str, ok, good: Path, bad: Path, version: str) -> None:
    """[api] on the real server (uvicorn, st.App, the mounted API): a token made with the CLI (the
    account's password from the environment), the Python client uploading files, the docs page."""
    from api.client import ApiError, Client

    made = ok("tokens", "create", "walk", "--user", "admin", "--password-env", "TUNEBOARD_ADMIN_PASSWORD")
    token = re.search(r"(tb_[0-9a-f]{12}_\S+)", made).group(1)
    with Client(url, token) as tb:
        assert tb.get("/me") == {"username": "admin", "role": "engineer"}
        # As a job (the default): progress, then the version, read by the server's own monitor.
        job = tb.post("/datasets", files={"file": (good.name, good.read_bytes())}, data={"name": "tickets"})
        done = tb.wait(f"/imports/{job['job_id']}", timeout=120, poll=0.5)
        assert done["status"] == "succeeded" and done["progress"], done
        assert done["result"]["version_id"] == version and done["result"]["created"] is False
        try:
            tb.post("/datasets", files={"file": (bad.name, bad.read_bytes())}, data={"name": "tickets"},
                    params={"wait": "true"})
            raise AssertionError("a bad file was imported")
        except ApiError as exc:
            assert exc.status == 400 and bad.name in json.dumps(exc.body), exc.body
        assert [d["name"] for d in tb.get("/datasets")] == ["tickets"]
    with Client(url, "tb_000000000000_" + "x" * 43) as stranger:
        try:
            stranger.get("/runs")
            raise AssertionError("an unknown token was let in")
        except ApiError as exc:
            assert exc.status == 401 and exc.code == "unauthenticated"
    status, page = _get(f"{url}/api/v1/docs")
    assert status == 200 and "/api/v1/openapi.json" in page
    status, schema = _get(f"{url}/api/v1/openapi.json")
    assert status == 200 and "/rating/{pair_set_id}/vote" in json.loads(schema)["paths"]


def test_a_waiting_cli_command_lets_serve_start_and_follows_the_rest_through_it(workspace):
    """No server: `train` follows its job holding the database only a moment every 2 s, so `serve`
    starts meanwhile; the command notices it and follows the rest of the job through the server."""
    w = workspace
    version = re.search(r'dataset_version = "([0-9a-f]+)"', _cli(w, "runs", "show", w["first"]).stdout).group(1)
    (w["root"] / "long.toml").write_text(f'[train]\ndataset_version = "{version}"\nmax_steps = 60\neval_every = 30\n'
                                         'batch_size = 4\nmax_seq_len = 128\nlearning_rate = 0.001\n')
    waiting = subprocess.Popen([str(TUNEBOARD), "train", "--config", "long.toml"], cwd=w["root"], env=w["env"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = None
    try:
        for line in waiting.stdout:
            if re.search(r"started (train-\S+):", line):
                break
        server = start_server(w["root"], w["env"], free_port(), w["root"] / "server.log")  # not refused
        out, err = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, (out, err)
        assert "following the job through it" in out and "succeeded" in out, out
    finally:
        if waiting.poll() is None:
            waiting.kill()
        if server is not None:
            stop_server(server)


def test_a_sweep_alone_starts_its_own_scoring_and_prints_its_table(workspace):
    """With no server, `regression sweep` drives the sweep itself: generation, then the scoring of its
    test split (which the server's monitor starts when one runs), then the table."""
    done = _cli(workspace, "regression", "sweep", workspace["first"], "--items", "1", "--prompts", "2", "--path",
                "transformers")
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
    assert re.search(r"started (sweep-\S+?):", done.stdout)
    assert "(best)" in done.stdout and "general" in done.stdout, done.stdout


def test_kill_9_of_the_server_during_an_api_import_job_then_a_restart_imports_it_once(tmp_path, tiny_model):
    """[api] An import started with a token through the API; the server is killed (-9) while the import's
    worker parses the file. Nothing is half-imported; after a restart the owner takes in the worker's
    result, and the version holds every row, once."""
    from api.client import Client
    from core.demo.tickets import write_demo_files

    good, _ = write_demo_files(tmp_path / "big", n=20_000, seed=11)
    root = tmp_path / "root"
    root.mkdir()
    env = _env(root, tiny_model)
    port = free_port()
    url = f"http://localhost:{port}"
    server = start_server(root, env, port, root / "server.log")
    try:
        with Client(url) as anonymous:
            token = anonymous.post("/login", {"username": "admin", "password": "service-admin-pw-1",
                                              "name": "kill-test"})["token"]
        with Client(url, token) as tb:
            job = tb.post("/datasets", files={"file": (good.name, good.read_bytes())}, data={"name": "big"})["job_id"]
            seen = tb.get(f"/imports/{job}")
            while seen["status"] in ("queued", "running") and not seen["progress"]:
                time.sleep(0.2)
                seen = tb.get(f"/imports/{job}")
        os.kill(server.pid, 9)  # the server only: the import's worker is its own session
        server.wait(timeout=30)
        killed_while = seen["status"]
        server = start_server(root, env, port, root / "server.log")  # re-attaches the worker's job
        with Client(url, token) as tb:
            done = tb.wait(f"/imports/{job}", timeout=300, poll=0.5)
            assert done["status"] == "succeeded", done
            versions = tb.get("/datasets/big/versions")
            assert [v["version_id"] for v in versions] == [done["result"]["version_id"]]
            assert versions[0]["n_examples"] == 20_000, versions[0]
    finally:
        stop_server(server)
    assert killed_while in ("queued", "running"), "the import ended before the kill: make the file larger"
