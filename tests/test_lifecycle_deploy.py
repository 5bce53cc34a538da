"""Deployment of the promoted versions: the vLLM command (checked by vLLM's own parser), the
folder production runs (weights with sha256, serve.sh, deployment.json, README), refusals that
say what to do, and roles.

The folder is written by a `deploy` job: every test here starts it through the owner's job
service, which launches the real worker process (core.lifecycle.deploy_worker). Where a test must
act while the worker is half-way (cancel it, kill it, take its source files away), the launcher
runs the same worker under a small shim that pauses it once at a chosen point of its progress."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.datasets import ImportOptions, import_dataset
from core.errors import InvalidInput, JobError, PermissionDenied
from core.jobs.launchers import LocalLauncher, job_processes
from core.lifecycle import deploy, promotion
from core.lifecycle.progress import BLOCK
from core.regression import runs
from core.serving.vllm_engine import context_limit
from tests.test_regression_runs import seed_suite_set
from tests.test_serving import tiny_adapters  # noqa: F401  (the session fixture)

WHY = "reads better and passes the gate"
LINEAGE = {"dataset": {"name": "tickets", "version_id": "v", "content_hash": "0" * 16}, "base_model": {"id": "m"},
           "code": {"tuneboard": "0", "commit": "0" * 10, "dirty": False}, "seed": 13}


@pytest.fixture
def world(owner, accounts, demo_files, tiny_model, tiny_adapters):  # noqa: F811
    """Two tasks, each with a fine-tuned adapter of the tiny model that passed its gate and was promoted."""
    good, _ = demo_files
    store = owner.store
    lines = good.read_bytes().splitlines(keepends=True)
    for i, task in enumerate(("tickets", "refunds")):
        data = b"".join(lines[i:])  # other content: a dataset version is its content
        version = import_dataset(store, accounts["engineer"], data, good.name,
                                 ImportOptions(name=task)).version_id
        job = f"train-{task}"
        with store.transaction() as cur:
            cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                        "(?, 'train', 'succeeded', '', '{}', 'eve')", [job])
            cur.execute("INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage) VALUES "
                        "(?, ?, ?, 'lora', '{}', ?)", [job, version, tiny_model, json.dumps(LINEAGE)])
            cur.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model, job_id, detail) "
                        "VALUES (?, 'adapter', ?, ?, ?, ?, ?)",
                        [f"adapter:{job}", job, tiny_adapters[i], tiny_model, job,
                         json.dumps({"dataset_version": version})])
        set_id = seed_suite_set(store, {}, tuned=f"adapter:{job}")
        runs.judge(store, accounts["lead"], set_id, f"adapter:{job}", owner.settings.regression)
        promotion.promote(store, accounts["engineer"], f"adapter:{job}", WHY)
    return owner, accounts


# ---- the job, run for real --------------------------------------------------------------
def deployed(owner, actor, out, **options) -> dict:
    """Deploy through the job (the real worker process) and wait; its status once it succeeded."""
    job_id = deploy.start_deploy(owner.store, owner.jobs, actor, owner.settings, out, **options)
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "succeeded", job["error"] or owner.jobs.log_tail(job_id)
    return deploy.deploy_status(owner.store, owner.jobs, actor, job_id)


# Runs a worker module in this process after wrapping ByteProgress.<hook> so that the first time it
# is called in <stage> (for `advance`: once at least <least> bytes of the stage and not all of them
# are done, so the worker is in the middle of it) the worker touches `paused` in its run folder and
# waits until the job is cancelled or the test touches `go`. Everything else is the real worker.
SHIM = """
import runpy, sys, time
from pathlib import Path
from core.lifecycle import progress

run, module, hook, stage, least = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
original = getattr(progress.ByteProgress, hook)

def paused(self, *args):
    original(self, *args)
    inside = hook != "advance" or least <= self.done < self.total
    if self.stage == stage and inside and not (run / "paused").exists():
        (run / "paused").touch()
        deadline = time.monotonic() + 120
        while not ((run / "cancel.requested").exists() or (run / "go").exists()) and time.monotonic() < deadline:
            time.sleep(0.01)

setattr(progress.ByteProgress, hook, paused)
sys.argv = [module, str(run)]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def pause_workers(owner, kind: str, hook: str, stage: str, least: int = 1) -> None:
    """The owner's job service starts `kind`'s real worker paused once (SHIM) at `hook` in `stage`."""
    owner.jobs.launchers[kind] = LocalLauncher(
        lambda module, run_dir: [sys.executable, "-c", SHIM, str(run_dir), module, hook, stage, str(least)])


def until_paused(owner, job_id: str, timeout: float = 60) -> Path:
    run = Path(owner.jobs.get(job_id)["run_dir"])
    deadline = time.monotonic() + timeout
    while not (run / "paused").exists():
        assert time.monotonic() < deadline, f"the worker never paused:\n{owner.jobs.log_tail(job_id)}"
        assert owner.jobs.launcher_for(owner.jobs.get(job_id)["kind"]).alive(job_id, None), \
            owner.jobs.log_tail(job_id)
        time.sleep(0.01)
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def big_adapter(owner, tmp_path, source: str, task: str = "tickets", mib: int = 3) -> Path:
    """The promoted adapter of `task` moved to a copy whose weights are `mib` MiB (random bytes: the
    copy takes several blocks, so a worker can be stopped half-way through a file)."""
    folder = tmp_path / f"big-adapter-{task}"
    shutil.copytree(source, folder)
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(mib << 20))
    owner.store.execute("UPDATE model_variants SET path = ? WHERE variant_id = ?",
                        [str(folder), f"adapter:train-{task}"])
    return folder


def _merged(owner, run: str, path: str, ok: bool) -> None:
    owner.store.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model, job_id, detail) "
                        "VALUES (?, 'merged', ?, ?, ?, ?, ?)",
                        [f"merged:{run}", f"{run}-merged", path, owner.settings.base_model, run,
                         json.dumps({"ok": ok, "run_id": run})])


def test_two_tasks_on_one_base_are_one_multi_lora_command_vllm_accepts(world, tiny_model, tiny_adapters):  # noqa: F811
    owner, acc = world
    p = deploy.plan(owner.store, acc["lead"], owner.settings)
    assert p.ok and p.mode == "adapters" and set(p.versions) == {"tickets", "refunds"}
    assert len(p.commands) == 1
    cmd = p.commands[0]
    assert cmd["base_model"] == tiny_model and cmd["argv"][:2] == ["vllm", "serve"]
    argv = cmd["argv"]
    assert argv[argv.index("--max-loras") + 1] == "2" and argv.count("--lora-modules") == 1
    assert "--tensor-parallel-size" not in argv and "--pipeline-parallel-size" not in argv  # 1: left out
    version = p.versions["tickets"]
    assert version["variant_id"] == "adapter:train-tickets" and version["gate_verdict"] == "pass"
    assert version["promotion_id"].startswith("promotion-") and version["promoted_by"] == "eve"

    pytest.importorskip("vllm")
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    args = make_arg_parser(FlexibleArgumentParser()).parse_args(argv[2:])
    assert args.model == tiny_model and args.enable_lora and args.max_loras == 2
    assert args.max_lora_rank == 8  # the adapters' r
    assert {(m.name, m.path) for m in args.lora_modules} == {("tickets", tiny_adapters[0]),
                                                             ("refunds", tiny_adapters[1])}
    limit = context_limit(tiny_model)
    assert args.max_model_len == min(owner.settings.serving.max_model_len, limit or 10**9)
    scaled = deploy.plan(owner.store, acc["engineer"], owner.settings, ["tickets"], tensor_parallel=4,
                         pipeline_parallel=2)
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(scaled.commands[0]["argv"][2:])
    assert (args.tensor_parallel_size, args.pipeline_parallel_size, args.max_loras) == (4, 2, 1)
    assert args.distributed_executor_backend == "ray"
    assert any("--pipeline-parallel-size 2" in n for n in scaled.notes)


def test_write_copies_weights_with_their_sha256_and_a_script_bash_accepts(world, tmp_path):
    owner, acc = world
    out = tmp_path / "prod" / "deploy"
    status = deployed(owner, acc["engineer"], out)
    assert status["result"]["out_dir"] == str(out) and status["result"]["script"] == str(out / "serve.sh")
    assert {"serve.sh", "deployment.json", "README.md"} <= set(status["result"]["files"])
    manifest = json.loads((out / "deployment.json").read_text())
    for task in ("tickets", "refunds"):
        v = manifest["versions"][task]
        assert v["deployed_path"] == f"adapters/{task}" and v["gate_verdict"] == "pass" and v["promotion_id"]
        names = {f["file"] for f in v["files"]}
        assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
        for f in v["files"]:
            data = (out / "adapters" / task / f["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
    assert manifest["engine"]["tensor_parallel_size"] == 1 and manifest["vllm"]["expected"]
    assert manifest["created_by"] == "eve"
    script = (out / "serve.sh").read_text()
    assert os.access(out / "serve.sh", os.X_OK) and "set -euo pipefail" in script
    assert 'tickets="$HERE/adapters/tickets"' in script and "--max-loras 2" in script
    subprocess.run(["bash", "-n", str(out / "serve.sh")], check=True)
    readme = (out / "README.md").read_text()
    assert "--tensor-parallel-size" in readme and "Ray" in readme and "`model` field" in readme

    # A re-deploy replaces the folder whole; a folder with other things in it is refused before any job.
    deployed(owner, acc["engineer"], out, tasks=["refunds"])
    assert not (out / "adapters" / "tickets").exists() and (out / "adapters" / "refunds").is_dir()
    assert sorted(p.name for p in out.parent.iterdir()) == ["deploy"]  # no temp folders left behind
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    jobs = owner.store.scalar("SELECT count(*) FROM jobs")
    with pytest.raises(InvalidInput, match="not empty"):
        deploy.start_deploy(owner.store, owner.jobs, acc["engineer"], owner.settings, tmp_path / "other")
    assert owner.store.scalar("SELECT count(*) FROM jobs") == jobs
    refs = deployed(owner, acc["engineer"], tmp_path / "refs", copy_weights=False)
    assert not (tmp_path / "refs" / "adapters").exists() and len(refs["result"]["files"]) == 3


def test_the_job_reports_progress_in_bytes_and_is_audited_when_taken_in(world, tmp_path):
    owner, acc = world
    out = tmp_path / "deploy"
    status = deployed(owner, acc["engineer"], out, tasks=["tickets"])
    job_id = status["job_id"]
    copied = sum(f["bytes"] for f in json.loads((out / "deployment.json").read_text())["versions"]["tickets"]["files"])
    progress = owner.jobs.events(job_id, "progress")
    stages = [e["stage"] for e in progress]
    assert stages[0] == "copying weights" and stages[-1] == "hashing" and set(stages) == {"copying weights", "hashing"}
    for stage in ("copying weights", "hashing"):
        last = [e for e in progress if e["stage"] == stage][-1]
        assert last["done"] == last["total"] == copied
    assert status["progress"] == {"stage": "hashing", "done": copied, "total": copied}
    assert status["done"] and status["status"] == "succeeded" and status["tasks"] == ["tickets"]
    [started] = owner.jobs.events(job_id, "started")
    assert started["out_dir"] == str(out) and started["copy_weights"] is True
    rows = owner.store.rows("SELECT actor, action, target, detail FROM audit_log WHERE action LIKE 'deploy%' "
                            "ORDER BY id")
    assert [(r["actor"], r["action"]) for r in rows] == [("eve", "deploy.start"), ("eve", "deploy")]
    assert rows[0]["target"] == job_id and rows[1]["target"] == str(out)
    assert json.loads(rows[1]["detail"]) == {"mode": "adapters", "copy_weights": True,
                                             "files": len(status["result"]["files"]),
                                             "versions": {"tickets": "adapter:train-tickets"}}
    owner.jobs.reconcile()  # ingesting again adds nothing: the entry is written exactly once
    assert owner.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'deploy'") == 1
    with pytest.raises(JobError, match="already succeeded"):
        owner.jobs.resume(acc["engineer"], job_id)


def test_cancelled_half_way_through_a_file_the_earlier_deployment_stays_whole(world, tmp_path,
                                                                              tiny_adapters):  # noqa: F811
    owner, acc = world
    eng, out = acc["engineer"], tmp_path / "deploy"
    deployed(owner, eng, out, tasks=["refunds"])
    before = snapshot(out)
    big = big_adapter(owner, tmp_path, tiny_adapters[0])
    pause_workers(owner, "deploy", "advance", "copying weights", least=BLOCK)  # in the weights file
    job_id = deploy.start_deploy(owner.store, owner.jobs, eng, owner.settings, out, tasks=["tickets"])
    until_paused(owner, job_id)
    # Half-way: the new folder is being written beside the old one, its weights one block in.
    [partial] = out.parent.glob(".deploy.partial-*")
    copied = partial / "adapters" / "tickets" / "adapter_model.safetensors"
    assert 0 < copied.stat().st_size < (big / "adapter_model.safetensors").stat().st_size
    with pytest.raises(JobError, match="is being written by deployment job"):  # one writer per folder
        deploy.start_deploy(owner.store, owner.jobs, eng, owner.settings, out)
    owner.jobs.cancel(eng, job_id)
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "cancelled", owner.jobs.log_tail(job_id)
    assert snapshot(out) == before and sorted(p.name for p in out.parent.glob(".deploy*")) == []
    assert deploy.deploy_status(owner.store, owner.jobs, eng, job_id)["result"] is None
    assert owner.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'deploy'") == 1  # the first one only


def test_killed_half_way_nothing_is_there_and_the_next_deploy_tidies_up(world, tmp_path, tiny_adapters):  # noqa: F811
    owner, acc = world
    eng, out = acc["engineer"], tmp_path / "deploy"
    big_adapter(owner, tmp_path, tiny_adapters[0])
    pause_workers(owner, "deploy", "advance", "copying weights", least=BLOCK)  # in the weights file
    job_id = deploy.start_deploy(owner.store, owner.jobs, eng, owner.settings, out, tasks=["tickets"])
    until_paused(owner, job_id)
    os.kill(owner.jobs.get(job_id)["pid"], signal.SIGKILL)
    job = owner.jobs.wait(job_id, timeout=30)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == []  # nothing it started outlives it
    assert not out.exists()  # no half-written deployment under the name production runs
    assert len(list(out.parent.glob(".deploy.partial-*"))) == 1  # what the killed worker left, hidden
    owner.jobs.launchers.pop("deploy")
    status = deployed(owner, eng, out, tasks=["tickets"])
    assert (out / "adapters" / "tickets" / "adapter_model.safetensors").stat().st_size == 3 << 20
    assert sorted(p.name for p in out.parent.glob(".deploy*")) == []  # tidied by the next deploy
    assert owner.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'deploy'") == 1
    assert status["result"]["bytes"] > 3 << 20


def test_weights_gone_while_it_runs_fail_the_job_with_a_message_and_write_nothing(world, tmp_path,
                                                                                  tiny_adapters):  # noqa: F811
    owner, acc = world
    eng, out = acc["engineer"], tmp_path / "deploy"
    big = big_adapter(owner, tmp_path, tiny_adapters[0])
    pause_workers(owner, "deploy", "start", "copying weights")
    job_id = deploy.start_deploy(owner.store, owner.jobs, eng, owner.settings, out, tasks=["tickets"])
    run = until_paused(owner, job_id)
    (big / "adapter_model.safetensors").unlink()  # someone cleans up the run's folder meanwhile
    (run / "go").touch()
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "failed", owner.jobs.log_tail(job_id)
    assert job["error"].startswith(f"{out}: could not write the deployment (No such file or directory: {big}")
    assert "nothing was written" in job["error"] and "Traceback" not in job["error"]
    assert not out.exists() and sorted(p.name for p in out.parent.glob(".deploy*")) == []
    status = deploy.deploy_status(owner.store, owner.jobs, eng, job_id)
    assert status["status"] == "failed" and status["result"] is None and status["error"] == job["error"]


def test_merged_mode_needs_a_merged_copy_that_passed_parity(world, tmp_path, tiny_model):
    owner, acc = world
    out = tmp_path / "deploy"
    p = deploy.plan(owner.store, acc["engineer"], owner.settings, mode="merged")
    assert len(p.problems) == 2 and all("Merge and export" in m for m in p.problems)
    assert "tuneboard runs merge train-tickets" in " ".join(p.problems)
    with pytest.raises(InvalidInput, match="Merge and export"):
        deploy.start_deploy(owner.store, owner.jobs, acc["engineer"], owner.settings, out, mode="merged")
    assert not out.exists() and owner.store.scalar("SELECT count(*) FROM jobs WHERE kind = 'deploy'") == 0
    _merged(owner, "train-tickets", tiny_model, ok=False)
    p = deploy.plan(owner.store, acc["engineer"], owner.settings, ["tickets"], mode="merged")
    assert p.problems and "failed in its parity check" in p.problems[0]
    _merged(owner, "train-refunds", tiny_model, ok=True)
    deployed(owner, acc["engineer"], out, tasks=["refunds"], mode="merged")
    manifest = json.loads((out / "deployment.json").read_text())
    assert manifest["versions"]["refunds"]["serves"] == "merged:train-refunds"
    argv = manifest["commands"][0]["argv"]
    assert argv[3] == "models/refunds" and "--enable-lora" not in argv
    assert any(f["file"] == "model.safetensors" and f["weights"] for f in manifest["versions"]["refunds"]["files"])
    subprocess.run(["bash", "-n", str(out / "serve.sh")], check=True)


def test_roles_and_errors_a_person_can_act_on(world, tmp_path):
    owner, acc = world
    assert deploy.plan(owner.store, acc["lead"], owner.settings).ok  # a lead may look at the plan
    for who in ("lead", "rater"):
        with pytest.raises(PermissionDenied):
            deploy.start_deploy(owner.store, owner.jobs, acc[who], owner.settings, tmp_path / "d")
    with pytest.raises(PermissionDenied):
        deploy.plan(owner.store, acc["rater"], owner.settings)
    assert not (tmp_path / "d").exists() and owner.store.scalar("SELECT count(*) FROM jobs WHERE kind = 'deploy'") == 0
    job_id = deployed(owner, acc["engineer"], tmp_path / "d", tasks=["tickets"])["job_id"]
    assert deploy.deploy_status(owner.store, owner.jobs, acc["lead"], job_id)["status"] == "succeeded"  # leads read
    with pytest.raises(PermissionDenied):
        deploy.deploy_status(owner.store, owner.jobs, acc["rater"], job_id)
    from core.errors import NotFound

    train = owner.store.scalar("SELECT job_id FROM jobs WHERE kind = 'train' LIMIT 1")
    with pytest.raises(NotFound, match="No deployment job"):
        deploy.deploy_status(owner.store, owner.jobs, acc["engineer"], train)
    with pytest.raises(InvalidInput, match="tasks: nope has no promoted version.*refunds, tickets"):
        deploy.plan(owner.store, acc["engineer"], owner.settings, ["nope"])
    with pytest.raises(InvalidInput, match="mode: 'gguf'"):
        deploy.plan(owner.store, acc["engineer"], owner.settings, mode="gguf")
    with pytest.raises(InvalidInput, match="pipeline_parallel: 0"):
        deploy.plan(owner.store, acc["engineer"], owner.settings, pipeline_parallel=0)


def test_no_promoted_version_says_how_to_get_one(owner, accounts):
    with pytest.raises(InvalidInput, match="no task has a promoted version.*tuneboard promote"):
        deploy.plan(owner.store, accounts["engineer"], owner.settings)


def test_a_promoted_base_is_served_under_the_task_and_a_full_model_gets_its_own_engine(world, tmp_path, tiny_model):
    owner, acc = world
    store, eng = owner.store, acc["engineer"]
    promotion.promote(store, eng, "base", "the prompted base is good enough", override=True, task="tickets")
    p = deploy.plan(store, eng, owner.settings)
    cmd = p.commands[0]
    assert p.ok and len(p.commands) == 1 and cmd["served_names"] == ["tickets"] and list(cmd["adapters"]) == ["refunds"]
    # A full model promoted in adapters mode gets an engine of its own, on the next port.
    shutil.copytree(tiny_model, tmp_path / "merged")
    _merged(owner, "train-tickets", str(tmp_path / "merged"), ok=True)
    promotion.promote(store, eng, "merged:train-tickets", "the merged copy serves faster", override=True,
                      task="tickets")
    p = deploy.plan(store, eng, owner.settings)
    assert [(c["served_names"], list(c["adapters"]), c["port"]) for c in p.commands] == [
        (["tiny-llama"], ["refunds"], 8000), (["tickets"], [], 8001)]
    deployed(owner, eng, tmp_path / "d")
    script = (tmp_path / "d" / "serve.sh").read_text()
    assert script.count("&\npids+=($!)") == 2 and "wait -n" in script and '"$HERE/models/tickets"' in script
    subprocess.run(["bash", "-n", str(tmp_path / "d" / "serve.sh")], check=True)


@pytest.mark.parametrize("mode", ["adapters", "merged"])
def test_every_kind_of_promoted_contender_deploys(world, tmp_path, tiny_model, mode):
    """A newer base (a local folder: copied; a hub id: named), a prompted base (the base's engine, the prompt
    in the manifest) and an endpoint (a manifest entry, nothing started) deploy in either mode."""
    from core.lifecycle import contenders
    from core.serving import register_external

    owner, acc = world
    store, eng = owner.store, acc["engineer"]
    shutil.copytree(tiny_model, tmp_path / "newer")
    contenders.register(store, eng, "newer", tiny_model, model=str(tmp_path / "newer"))
    contenders.register(store, eng, "hub", tiny_model, model="HuggingFaceTB/SmolLM2-360M-Instruct")
    contenders.register(store, eng, "polite", tiny_model, system_prompt="Answer as a courteous support agent.",
                        few_shot=[["Hi", "Hello! How can I help?"]])
    register_external(store, eng, "gpt", "https://api.example.com/v1", "gpt-x", api_key_env="VENDOR_KEY")
    for task, variant in (("tickets", "contender:newer"), ("refunds", "contender:polite"), ("faq", "contender:hub"),
                          ("legal", "external:gpt")):
        promotion.promote(store, eng, variant, "the contender wins the blind pairs here", override=True, task=task)
    p = deploy.plan(store, eng, owner.settings, mode=mode)
    assert p.ok, p.problems
    by_names = {tuple(c["served_names"]): c for c in p.commands}
    assert set(by_names) == {("tickets",), ("refunds",), ("faq",)}  # the endpoint starts no engine
    assert by_names[("refunds",)]["base_model"] == tiny_model
    assert by_names[("faq",)]["base_model"] == "HuggingFaceTB/SmolLM2-360M-Instruct"
    state = deployed(owner, eng, tmp_path / "d", mode=mode)
    out = tmp_path / "d"
    manifest = json.loads((out / "deployment.json").read_text())
    v = manifest["versions"]
    assert v["tickets"]["deployed_path"] == "models/tickets" and (out / "models/tickets/config.json").exists()
    assert {f["file"] for f in v["tickets"]["files"]} >= {"config.json"} and all(
        f["sha256"] for f in v["tickets"]["files"])
    assert v["faq"]["hub_id"] == "HuggingFaceTB/SmolLM2-360M-Instruct" and v["faq"]["files"] == []
    assert v["refunds"]["prompt"] == {"system_prompt": "Answer as a courteous support agent.",
                                      "few_shot": [["Hi", "Hello! How can I help?"]]}
    assert v["legal"]["endpoint"] == {"base_url": "https://api.example.com/v1", "model": "gpt-x",
                                      "api_key_env": "VENDOR_KEY"} and v["legal"]["files"] == []
    assert not (out / "models" / "legal").exists() and not (out / "models" / "refunds").exists()
    readme = (out / "README.md").read_text()
    assert "https://api.example.com/v1" in readme and "versions.refunds.prompt" in readme and "downloads it" in readme
    script = (out / "serve.sh").read_text()
    assert '"$HERE/models/tickets"' in script and "SmolLM2-360M-Instruct" in script and "api.example.com" not in script
    subprocess.run(["bash", "-n", str(out / "serve.sh")], check=True)
    assert state["status"] == "succeeded"
    # Only an endpoint: serve.sh has nothing to start and says so.
    for task in ("tickets", "refunds", "faq"):
        promotion.promote(store, eng, "external:gpt", "the vendor model wins here too", override=True, task=task)
    deployed(owner, eng, tmp_path / "only-endpoint", mode=mode)
    run = subprocess.run(["bash", str(tmp_path / "only-endpoint" / "serve.sh")], capture_output=True, text=True)
    assert run.returncode == 0 and "Nothing to start here" in run.stdout


def test_the_command_line_follows_the_job_and_says_why_it_failed(world, tmp_path, tiny_adapters):  # noqa: F811
    """`tuneboard deploy` as the server runs it for a client: the job's progress is printed, then what was
    written; a job that fails exits 1 with its message (here the weights vanish while it runs)."""
    import io
    import threading

    import cli as cli_app
    from cli.context import invoke

    owner, _ = world

    def deploy_cli(folder: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = invoke(cli_app.app, ["deploy", "--out", folder, "--tasks", "tickets"], str(tmp_path), owner, out, err)
        return code, out.getvalue(), err.getvalue()

    code, out, err = deploy_cli("prod")
    assert code == 0, err
    prod = tmp_path / "prod"
    files = len([f for f in prod.rglob("*") if f.is_file()])
    assert re.search(r"^copying weights: .* of .*\(100%\)$", out, re.M) and re.search(r"^hashing: ", out, re.M)
    assert f"wrote {files} files to {prod} (run {prod / 'serve.sh'})" in out

    big = big_adapter(owner, tmp_path, tiny_adapters[0])
    pause_workers(owner, "deploy", "start", "copying weights")
    answer: list = []
    command = threading.Thread(target=lambda: answer.append(deploy_cli("prod2")))
    command.start()
    deadline = time.monotonic() + 60
    while not (job_id := owner.store.scalar("SELECT job_id FROM jobs WHERE kind = 'deploy' AND config LIKE ?",
                                            [f"%{tmp_path / 'prod2'}%"])):
        assert time.monotonic() < deadline and command.is_alive(), answer
        time.sleep(0.05)
    run = until_paused(owner, job_id)
    (big / "adapter_model.safetensors").unlink()
    (run / "go").touch()
    command.join(timeout=60)
    [(code, out, err)] = answer
    assert code == 1 and "Traceback" not in out + err
    assert err.startswith(f"error: {job_id} failed: {tmp_path / 'prod2'}: could not write the deployment (No such "
                          "file or directory"), err
    assert not (tmp_path / "prod2").exists()
