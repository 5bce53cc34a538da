"""The real `tuneboard` command on tiny assets: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUNEBOARD = str(Path(sys.executable).with_name("tuneboard"))


@pytest.fixture
def cli(env, tmp_path):
    def run(*args: str, input: str | None = None, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **env, **(extra_env or {})}
        result = subprocess.run([TUNEBOARD, *args], capture_output=True, text=True, cwd=tmp_path, env=full_env,
                                input=input, timeout=180)
        assert "Traceback" not in result.stderr + result.stdout, result.stderr
        return result
    return run


def test_validate_exit_codes_and_lines(cli, demo_files):
    good, bad = demo_files
    ok = cli("data", "validate", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "200 valid, 0 errors" in ok.stdout
    broken = cli("data", "validate", str(bad))
    assert broken.returncode == 1
    error_lines = [line for line in broken.stdout.splitlines() if ": error: " in line]
    assert len(error_lines) == 10
    assert all(re.match(r"support_tickets_bad\.jsonl:\d+", line) for line in error_lines)
    assert any(line.startswith("support_tickets_bad.jsonl:41 [messages[1].role]") for line in error_lines)


def test_validate_json_matches_text(cli, demo_files):
    result = cli("data", "validate", "--json", str(demo_files[1]))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["errors"] == 10
    codes = {p["code"] for p in report["problems"] if p["severity"] == "error"}
    assert {"invalid_json", "non_utf8", "unknown_role", "missing_role", "empty_content", "bad_order",
            "missing_assistant", "ends_without_assistant", "bad_type", "missing_field"} == codes
    assert all(p["line"] for p in report["problems"])


def test_user_mistakes_get_clean_messages(cli, tmp_path):
    missing = cli("data", "validate", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    weird = tmp_path / "data.xlsx"
    weird.write_bytes(b"PK\x03\x04")
    fmt = cli("data", "validate", str(weird))
    assert fmt.returncode == 1 and "cannot tell the format" in fmt.stdout
    bad_map = cli("data", "validate", "--map", "prompt", str(weird))
    assert bad_map.returncode == 1 and "FIELD=COLUMN" in bad_map.stderr
    cfg = tmp_path / "tuneboard.toml"
    cfg.write_text("[data]\nseed = 'x'\n")
    bad_cfg = cli("data", "list")
    assert bad_cfg.returncode == 2 and "data.seed" in bad_cfg.stderr
    cfg.unlink()


def test_import_list_show(cli, demo_files):
    good, bad = demo_files
    imported = cli("data", "import", "--name", "tickets", "--json", str(good))
    assert imported.returncode == 0, imported.stderr
    result = json.loads(imported.stdout)
    assert result["created"] and result["report"]["splits"] == {"train": 160, "validation": 20, "test": 20}
    again = cli("data", "import", "--name", "tickets", str(good))
    assert again.returncode == 0 and "Already imported" in again.stdout and result["version"] in again.stdout
    refused = cli("data", "import", str(bad))
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr
    listing = cli("data", "list")
    assert result["version"] in listing.stdout and "support_tickets_bad" not in listing.stdout
    shown = cli("data", "show", result["version"][:8], "--examples", "1", "--split", "test")
    assert shown.returncode == 0 and "(test, line" in shown.stdout and "[assistant]" in shown.stdout


def test_users_commands(cli):
    added = cli("users", "add", "maria", "--role", "rater")  # stdin is not a TTY: generated password
    assert added.returncode == 0 and "shown once" in added.stdout
    assert cli("users", "set-role", "maria", "lead").returncode == 0
    listing = cli("users", "list")
    assert re.search(r"maria\s+│\s+lead", listing.stdout)
    bad_role = cli("users", "set-role", "maria", "boss")
    assert bad_role.returncode == 1 and "must be one of" in bad_role.stderr
    from_env = cli("users", "add", "omar", "--role", "engineer", "--password-env", "OMAR_PW",
                   extra_env={"OMAR_PW": "omar-password-123"})
    assert from_env.returncode == 0 and "omar-password-123" not in from_env.stdout


def test_busy_database_is_refused_cleanly(cli, settings, env):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom core.config import load_settings\n"
         "from core.store import open_store\ns = open_store(load_settings())\nprint('ready', flush=True)\n"
         "time.sleep(60)"], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True, cwd=settings.workspace_dir.parent)
    try:
        assert holder.stdout.readline().strip() == "ready"
        busy = cli("data", "list")
        assert busy.returncode == 1 and "in use by another process" in busy.stderr
    finally:
        holder.kill()
        holder.wait()


def _all_commands() -> list[str]:
    """Every command of the real app, groups walked (a new command cannot escape the check)."""
    import typer

    from cli import app

    found = []

    def walk(command, prefix):
        if hasattr(command, "commands"):  # a group (typer may bundle its own click)
            for name, sub in command.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found.append(prefix)

    walk(typer.main.get_command(app), "")
    return found


def test_every_command_has_help_and_is_documented(cli):
    from typer.testing import CliRunner

    from cli import app

    readme = (ROOT / "README.md").read_text()
    commands = _all_commands()
    assert {"init", "serve", "demo", "data import", "train", "runs merge", "generate", "serve-models",
            "contenders add"} <= set(commands)
    # The installed console script answers; each command's help is then read from the same app
    # in this process (a new interpreter per command only repeated the start-up).
    top = cli("--help")
    assert top.returncode == 0 and "Usage: tuneboard" in top.stdout
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, [*command.split(), "--help"], prog_name="tuneboard")
        assert result.exit_code == 0 and "Usage" in result.output, (command, result.output)
        assert f"tuneboard {command}" in readme, f"README does not document `tuneboard {command}`"


@pytest.mark.slow
def test_train_and_runs_commands(cli, demo_files, tmp_path, tiny_model):
    good, _ = demo_files
    version = json.loads(cli("data", "import", "--name", "tickets", "--json", str(good)).stdout)["version"]
    config = tmp_path / "run.toml"
    config.write_text(f'[train]\ndataset_version = "{version}"\nmax_steps = 4\neval_every = 2\nbatch_size = 4\n'
                      'max_seq_len = 128\n')
    trained = cli("train", "--config", str(config), "--preset", "lora-small-data")
    assert trained.returncode == 0, trained.stderr
    run_id = re.search(r"started (train-\S+):", trained.stdout).group(1)
    assert f"{run_id}: succeeded" in trained.stdout and "validation loss" in trained.stdout
    shown = cli("runs", "show", run_id)
    assert "lora_rank = 8" in shown.stdout and f'base_model = "{tiny_model}"' in shown.stdout  # preset + default
    assert run_id in cli("runs", "list").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\ndataset_version = "x"\nlora_rank = "eight"\n')
    refused = cli("train", "--config", str(bad))
    assert refused.returncode == 1 and "lora_rank" in refused.stderr


@pytest.mark.slow
def test_generate_command(cli, demo_files, tmp_path):
    good, _ = demo_files
    version = json.loads(cli("data", "import", "--name", "tickets", "--json", str(good)).stdout)["version"]
    listed = cli("generate", "--list")
    assert listed.returncode == 0 and "base" in listed.stdout
    made = cli("generate", "--prompts", f"{version}:test", "--variants", "base", "--limit", "3", "--max-tokens", "8",
               "--path", "transformers")
    assert made.returncode == 0, made.stderr
    set_id = re.search(r"started (generate-\S+): 3 prompts x 1 variants", made.stdout).group(1)
    assert "path: transformers (transformers was requested" in made.stdout
    assert "3/3 outputs" in made.stdout and f"{set_id}: succeeded" in made.stdout
    assert re.search(r"base: 3 outputs", made.stdout)
    prompts = tmp_path / "asks.txt"
    prompts.write_text("What is LoRA?\nExplain QLoRA briefly.\n")
    from_file = cli("generate", "--prompts", str(prompts), "--max-tokens", "4", "--path", "transformers")
    assert from_file.returncode == 0 and "2 prompts x 1 variants" in from_file.stdout
    bad = cli("generate", "--prompts", f"{version}:test", "--variants", "base,adapter:missing")
    assert bad.returncode == 1 and "unknown adapter:missing" in bad.stderr
    hot = cli("generate", "--prompts", f"{version}:test", "--temperature", "9")
    assert hot.returncode == 1 and "temperature: 9.0 is outside" in hot.stderr


def test_review_commands(cli, settings, env, tmp_path):
    from core.auth import Role, User
    from core.demo.review import rater_accounts, seed_generation_set
    from core.owner import Owner
    from core.review.desk import RatingDesk

    owner = Owner.open(settings, monitor=False, env=env)
    gen = seed_generation_set(owner.store, n_prompts=6, seed=1)
    rater_accounts(owner.store, ["ann", "ben"], "correct-horse-battery")
    owner.close()
    made = cli("review", "create", gen, "--name", "Round 1", "--variants", "adapter:tuned,base", "--raters", "ann,ben",
               "--per-pair", "2", "--gold-rate", "0")
    assert made.returncode == 0, made.stderr
    pair_set, plan = made.stdout.strip().splitlines()
    assert plan.startswith("Plan: With 6 prompts and 2 rater(s) each")
    leaky = cli("review", "create", gen, "--name", "tuned vs base", "--variants", "adapter:tuned,base")
    assert leaky.returncode == 1 and "name: raters see it" in leaky.stderr
    assert "no votes yet" in cli("review", "results", pair_set).stderr
    owner = Owner.open(settings, monitor=False, env=env)
    desk = RatingDesk(owner.store, 0.0)
    for name in ("ann", "ben"):
        while (view := desk.next_pair(User(name, Role.RATER), pair_set)) is not None:
            desk.vote(User(name, Role.RATER), pair_set, view.ticket, "1")
    owner.close()
    listed = cli("review", "list")
    assert pair_set in listed.stdout and re.search(r"Round 1 .* 6 .* 0 .* 12 .* 12", listed.stdout)
    shown = cli("review", "results", pair_set)
    assert shown.returncode == 0 and "adapter:tuned vs base:" in shown.stdout and "Fleiss' kappa" in shown.stdout
    exported = cli("review", "results", pair_set, "--export", "html", "--out-dir", str(tmp_path))
    assert exported.returncode == 0 and (tmp_path / f"{pair_set}-report.html").read_text().startswith("<!doctype html>")
    assert cli("review", "assign", pair_set, "--raters", "ann", "--per-pair", "2").returncode == 1


def test_metrics_commands(cli, settings, env):
    from core.demo.review import seed_generation_set
    from core.owner import Owner

    owner = Owner.open(settings, monitor=False, env=env)
    gen = seed_generation_set(owner.store, n_prompts=12, seed=2)
    owner.close()
    assert "no scores yet" in cli("metrics", "show", gen).stderr
    scored = cli("metrics", "score", gen, "--metrics", "json_valid,field_accuracy")
    assert scored.returncode == 0, scored.stderr
    assert re.search(r"score-\S+: succeeded", scored.stdout)
    assert re.search(r"adapter:tuned .*field_accuracy .*[+-]\d\.\d{3}", scored.stdout)
    assert cli("metrics", "score", gen, "--metrics", "meteor").returncode == 1
    out_dir = settings.workspace_dir.parent
    wrote = cli("metrics", "show", gen, "--export", "csv", "--table", "deltas", "--out-dir", str(out_dir))
    assert wrote.returncode == 0, wrote.stderr
    deltas = (out_dir / f"{gen}-deltas.csv").read_text().splitlines()
    assert deltas[0].startswith("variant,baseline,metric,delta") and len(deltas) == 3  # 2 metrics vs base
    report = cli("metrics", "show", gen, "--export", "html", "--out-dir", str(out_dir))
    assert report.returncode == 0 and "field_accuracy" in (out_dir / f"{gen}-metrics.html").read_text()


def test_regression_commands(cli, settings, env):
    from core.owner import Owner
    from tests.conftest import known_versions
    from tests.test_regression_runs import seed_suite_set

    owner = Owner.open(settings, monitor=False, env=env)
    suite_set = seed_suite_set(owner.store, {})
    known_versions(owner.store, "adapter:tuned", "adapter:other")
    owner.close()
    gate = cli("regression", "gate", suite_set, "--variant", "adapter:tuned")
    assert gate.returncode == 0, gate.stderr
    assert "gate for adapter:tuned: pass" in gate.stdout and "p (drop > limit)" in gate.stdout
    assert "Pooled over all" in gate.stdout and "detect" in gate.stdout
    assert "adapter:tuned: gate pass" in cli("regression", "list").stdout
    why = ("--reason", "passes the gate and reads better")
    assert "promoted adapter:tuned" in cli("promote", "adapter:tuned", *why, "--task", "tickets").stdout
    refused = cli("promote", "adapter:other", *why, "--task", "tickets")
    assert refused.returncode == 1 and "no regression gate yet" in refused.stderr and "Traceback" not in refused.stderr
    typo = cli("promote", "adapter:othr", "--override", *why, "--task", "tickets")
    assert typo.returncode == 1 and "No model version 'adapter:othr'" in typo.stderr
    forced = cli("promote", "adapter:other", "--override", *why, "--task", "tickets")
    assert forced.returncode == 0, forced.stderr
    back = cli("rollback", "tickets", "--reason", "the override was premature")
    assert back.returncode == 0 and "tickets: promoted version is now adapter:tuned" in back.stdout
    again = cli("rollback", "tickets", "--reason", "the override was premature")
    assert again.returncode == 1 and "only one promoted version" in again.stderr


def test_sweep_commands_refuse_plainly(cli, settings, env, tiny_model, demo_files):
    from core.auth import CLI_USER
    from core.datasets import ImportOptions, import_dataset
    from core.owner import Owner
    from tests.test_regression_sweep import _fake_run

    owner = Owner.open(settings, monitor=False, env=env)
    good, _ = demo_files
    version = import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions(name="t")).version_id
    run_id = _fake_run(owner, tiny_model, version, [4, 8])
    owner.close()
    bad_steps = cli("regression", "sweep", run_id, "--steps", "4,x")
    assert bad_steps.returncode == 1 and "--steps: '4,x' must be comma-separated whole numbers" in bad_steps.stderr
    missing = cli("regression", "sweep", run_id, "--steps", "6")
    assert missing.returncode == 1 and "no checkpoint at step 6; it kept 4, 8" in missing.stderr
    listed = cli("regression", "sweeps")
    assert listed.returncode == 0 and run_id not in listed.stdout  # refused requests leave no sweep behind
    unknown = cli("regression", "sweep-show", "sweep-nope")
    assert unknown.returncode != 0 and "No checkpoint sweep 'sweep-nope'" in unknown.stderr
    # lm-eval is installed (dev extra); a built-in task needs the hub for its data, which is not here.
    offline = cli("regression", "harness", "--variant", "base", "--tasks", "arc_easy")
    assert offline.returncode == 1 and "task data for arc_easy could not be downloaded (offline?)" in offline.stdout


def test_retrain_commands(cli, settings, env, tiny_model, demo_files):
    from core.auth import CLI_USER
    from core.datasets import ImportOptions, import_dataset
    from core.owner import Owner
    from core.training.config import TrainConfig

    owner = Owner.open(settings, monitor=False, env=env)
    good, _ = demo_files
    version = import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions(name="t")).version_id
    with owner.store.transaction() as cur:
        cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                    "('train-first', 'train', 'succeeded', '', '{}', 'cli')")
        cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                    "('train-first', ?, ?, 'lora', ?, '{}')",
                    [version, tiny_model, json.dumps(TrainConfig(base_model=tiny_model, dataset_version=version)
                                                     .to_dict())])
    owner.close()
    both = cli("retrain", "schedule", "t", "--every-hours", "24", "--cron", "0 3 * * 1")
    assert both.returncode == 1 and "exactly one of --every-hours N, --cron EXPR or --on-new-data" in both.stderr
    made = cli("retrain", "schedule", "t", "--cron", "0 3 * * 1", "--name", "weekly")
    assert made.returncode == 0 and re.search(r"created schedule-\S+: t cron '0 3 \* \* 1' \(UTC\), next \d{4}-",
                                              made.stdout)
    listed = cli("retrain", "schedules")
    assert "weekly" in listed.stdout and "cron '0 3 * * 1' (UTC)" in listed.stdout
    bad = cli("retrain", "schedule", "nope", "--on-new-data")
    assert bad.returncode == 1 and "no dataset named 'nope'" in bad.stderr
    undecided = cli("retrain", "decide", "pipeline-nope", "--reason", "the candidate is fine here")
    assert undecided.returncode == 1 and "exactly one of --promote or --dismiss" in undecided.stderr
    assert cli("retrain", "list").returncode == 0


def test_lifecycle_commands_refuse_plainly_and_register_contenders(cli, tmp_path):
    nothing = cli("deploy", "--dry-run")
    assert nothing.returncode == 1 and "tuneboard promote" in nothing.stderr
    plain = cli("contenders", "model", "plain")
    assert plain.returncode == 1 and "needs a system prompt or few-shot examples" in plain.stderr
    shots = tmp_path / "shots.jsonl"
    shots.write_text('{"user": "Card charged twice", "assistant": "{\\"category\\": \\"billing\\"}"}\n')
    made = cli("contenders", "model", "prompted", "--system-prompt", "Answer in JSON.", "--few-shot", str(shots))
    assert made.returncode == 0 and "registered contender:prompted" in made.stdout
    missing = cli("bundle", "train-nope")
    assert missing.returncode != 0 and "No training run 'train-nope'" in missing.stderr


def test_bundle_and_deploy_are_jobs_followed_with_their_progress(cli, settings, env, tiny_model, demo_files,
                                                                  tmp_path):
    """On its own (no server), the command starts the job, prints its progress in bytes while it holds the
    database only a moment per poll, then where the result is."""
    import zipfile

    from core.auth import CLI_USER, OWNER
    from core.datasets import ImportOptions, import_dataset
    from core.lifecycle import promotion
    from core.owner import Owner
    from core.training.config import TrainConfig

    owner = Owner.open(settings, monitor=False, env=env)
    good, _ = demo_files
    version = import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions(name="t")).version_id
    with owner.store.transaction() as cur:
        cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                    "('train-first', 'train', 'succeeded', '', '{}', 'cli')")
        cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                    "('train-first', ?, ?, 'lora', ?, '{}')",
                    [version, tiny_model, json.dumps(TrainConfig(base_model=tiny_model, dataset_version=version)
                                                     .to_dict())])
    promotion.promote(owner.store, OWNER, "base", "the base is good enough for t", override=True, task="t")
    owner.close()
    made = cli("bundle", "train-first", "--out", "rec.zip")
    assert made.returncode == 0, made.stderr
    assert re.search(r"^started bundle-\S+: the run record of train-first$", made.stdout, re.M)
    assert re.search(r"^hashing: .*\(100%\)$", made.stdout, re.M) and re.search(r"^zipping: .*\(100%\)$",
                                                                               made.stdout, re.M)
    assert f"wrote {tmp_path / 'rec.zip'} (" in made.stdout
    assert "bundle.json" in zipfile.ZipFile(tmp_path / "rec.zip").namelist()
    deployed = cli("deploy", "--out", "prod")
    assert deployed.returncode == 0, deployed.stderr
    assert f"wrote 3 files to {tmp_path / 'prod'} (run {tmp_path / 'prod' / 'serve.sh'})" in deployed.stdout
    assert re.search(r"^copying weights: 0 B of 0 B$", deployed.stdout, re.M)  # the base: nothing to copy

def test_tokens_and_the_audit_trail_through_the_command_line(cli, settings, env, tmp_path):
    """A token is made for a named account given its password (the command line is no account);
    what a command does is audited through the door 'cli', run here or inside the server."""
    import io

    import cli as cli_app
    from cli.context import invoke
    from core.auth import CLI_USER
    from core.owner import Owner
    from core.store import open_store
    from core.users import create_user

    store = open_store(settings)
    create_user(store, CLI_USER, "ci", "ci-password-12345", "engineer")
    store.close()
    made = cli("tokens", "create", "pipeline", "--user", "ci", "--password-env", "CI_PW", "--days", "30",
               extra_env={"CI_PW": "ci-password-12345"})
    assert made.returncode == 0 and "shown this once" in made.stdout, made.stderr
    token = made.stdout.split()[-1]
    assert token.startswith("tb_")

    owner = Owner.open(settings, monitor=False, env=env)
    try:
        row = owner.store.row("SELECT actor, action, door FROM audit_log WHERE action = 'token.create'")
        assert row == {"actor": "ci", "action": "token.create", "door": "cli"}  # the command's own process

        def run(*argv: str, **env_of_client) -> tuple[int, str, str]:  # as the server runs a client's command
            out, err = io.StringIO(), io.StringIO()
            code = invoke(cli_app.app, list(argv), str(tmp_path), owner, out, err, env=env_of_client)
            return code, out.getvalue(), err.getvalue()

        code, _, err = run("tokens", "create", "x", "--user", "ci", "--password-env", "CI_PW")
        assert code == 1 and "CI_PW: that environment variable is empty or unset" in err  # the server's own is not read
        code, _, err = run("tokens", "create", "x", "--user", "ci", "--password-env", "CI_PW", CI_PW="wrong-password")
        assert code == 1 and "Wrong username or password" in err
        code, out, _ = run("tokens", "create", "notebook", "--user", "ci", "--password-env", "CI_PW",
                           CI_PW="ci-password-12345")
        assert code == 0 and "tb_" in out
        token_id = token.split("_")[1]
        code, out, _ = run("tokens", "list", "--user", "ci")
        assert code == 0 and token_id in out and "notebook" in out
        assert run("tokens", "revoke", token_id)[0] == 0
        code, out, _ = run("tokens", "list")
        assert token_id not in out and token_id in run("tokens", "list", "--all")[1]
        code, out, _ = run("users", "add", "ops", "--role", "lead", "--password-env", "OPS_PW",
                           OPS_PW="ops-password-12345")
        assert code == 0 and "ops-password" not in out
        code, out, _ = run("audit", "--door", "cli", "--csv", "trail.csv")
        assert code == 0 and "wrote 4 entries" in out
        trail = (tmp_path / "trail.csv").read_text().splitlines()
        assert trail[0] == "id,created_at,actor,action,target,detail,door"
        assert [line.split(",")[2:4] for line in trail[1:]] == [
            ["cli", "users.add"], ["cli", "token.revoke"], ["ci", "token.create"], ["ci", "token.create"]]
        assert trail[2].split(",")[4] == token_id == trail[4].split(",")[4]
        assert all(line.endswith(",cli") for line in trail[1:])
        code, out, _ = run("audit", "--who", "ci", "--action", "token.", "--since", "1h")
        assert code == 0 and out.count("token.create") == 2 and "users.add" not in out
        assert run("audit", "--door", "ftp")[0] == 1
    finally:
        owner.close()


def test_judge_commands(cli, settings, env):
    """[judge] through the command line: a judge on an endpoint (the scripted judge of tests/judge_server.py,
    a real local HTTP server giving logprobs) defined, run over a voted pair set, read, compared, routed."""
    from core.auth import Role, User
    from core.owner import Owner
    from core.serving import register_external
    from tests.judge_server import ScriptedJudge
    from tests.test_judge import make_voted_pair_set

    owner = Owner.open(settings, monitor=False, env=env)
    pair_set, good = make_voted_pair_set(owner.store, User("leo", Role.LEAD))
    judge = ScriptedJudge(good=good, seed=3, logprobs="give", unsure_share=0.3)
    register_external(owner.store, User("eve", Role.ENGINEER), "grader", judge.url, "grader-model")
    owner.close()
    try:
        assert {"balanced", "strict-format", "concise"} <= set(cli("judge", "prompts").stdout.split())
        judge_id = cli("judge", "add", "grader", "--variant", "external:grader").stdout.strip()
        assert judge_id.startswith("judge-")
        ran = cli("judge", "run", "grader", "--pair-set", pair_set)
        assert ran.returncode == 0, ran.stderr
        run = re.search(r"started (\S+)", ran.stdout).group(1)
        assert f"{run}: succeeded" in ran.stdout
        shown = cli("judge", "show", run).stdout
        assert "agreement with the experts:" in shown and "pairs judged 60" in shown
        assert re.search(r"where it gives its side at least 60%: \d+ pairs", shown)
        assert "chosen" in cli("judge", "align", pair_set).stdout  # 60 voted pairs: enough to compare
        refused = cli("judge", "route", pair_set, "--run", run, "--min-probability", "2")
        assert refused.returncode == 1 and "min_probability" in refused.stderr
        routed = cli("judge", "route", pair_set, "--run", run)
        assert routed.returncode == 0 and re.search(r"\d+ judged \(out of the experts' queues\)", routed.stdout)
        assert f"routed by {run}" in cli("judge", "routing", pair_set).stdout
        assert "every pair goes to the experts" in cli("judge", "unroute", pair_set).stdout
        missing = cli("judge", "show", "judge-nope")
        assert missing.returncode == 1 and "No judge run" in missing.stderr
    finally:
        judge.close()
