"""Deployment of the promoted versions: the vLLM command (checked by vLLM's own parser), the
folder production runs (weights with sha256, serve.sh, deployment.json, README), refusals that
say what to do, and roles."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from core.datasets import ImportOptions, import_dataset
from core.errors import InvalidInput, PermissionDenied
from core.lifecycle import deploy, promotion
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
    written = deploy.write(owner.store, acc["engineer"], owner.settings, out)
    assert {out / "serve.sh", out / "deployment.json", out / "README.md"} <= set(written)
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
    script = (out / "serve.sh").read_text()
    assert os.access(out / "serve.sh", os.X_OK) and "set -euo pipefail" in script
    assert 'tickets="$HERE/adapters/tickets"' in script and "--max-loras 2" in script
    subprocess.run(["bash", "-n", str(out / "serve.sh")], check=True)
    readme = (out / "README.md").read_text()
    assert "--tensor-parallel-size" in readme and "Ray" in readme and "`model` field" in readme

    # A re-deploy replaces the folder whole; a folder with other things in it is refused.
    deploy.write(owner.store, acc["engineer"], owner.settings, out, tasks=["refunds"])
    assert not (out / "adapters" / "tickets").exists() and (out / "adapters" / "refunds").is_dir()
    assert sorted(p.name for p in out.parent.iterdir()) == ["deploy"]  # no temp folders left behind
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        deploy.write(owner.store, acc["engineer"], owner.settings, tmp_path / "other")
    refs = deploy.write(owner.store, acc["engineer"], owner.settings, tmp_path / "refs", copy_weights=False)
    assert not (tmp_path / "refs" / "adapters").exists() and len(refs) == 3


def test_merged_mode_needs_a_merged_copy_that_passed_parity(world, tmp_path, tiny_model):
    owner, acc = world
    out = tmp_path / "deploy"
    p = deploy.plan(owner.store, acc["engineer"], owner.settings, mode="merged")
    assert len(p.problems) == 2 and all("Merge and export" in m for m in p.problems)
    assert "tuneboard runs merge train-tickets" in " ".join(p.problems)
    with pytest.raises(InvalidInput, match="Merge and export"):
        deploy.write(owner.store, acc["engineer"], owner.settings, out, mode="merged")
    assert not out.exists()
    _merged(owner, "train-tickets", tiny_model, ok=False)
    p = deploy.plan(owner.store, acc["engineer"], owner.settings, ["tickets"], mode="merged")
    assert p.problems and "failed in its parity check" in p.problems[0]
    _merged(owner, "train-refunds", tiny_model, ok=True)
    deploy.write(owner.store, acc["engineer"], owner.settings, out, ["refunds"], mode="merged")
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
            deploy.write(owner.store, acc[who], owner.settings, tmp_path / "d")
    with pytest.raises(PermissionDenied):
        deploy.plan(owner.store, acc["rater"], owner.settings)
    assert not (tmp_path / "d").exists()
    with pytest.raises(InvalidInput, match="tasks: nope has no promoted version.*refunds, tickets"):
        deploy.plan(owner.store, acc["engineer"], owner.settings, ["nope"])
    with pytest.raises(InvalidInput, match="mode: 'gguf'"):
        deploy.plan(owner.store, acc["engineer"], owner.settings, mode="gguf")
    with pytest.raises(InvalidInput, match="pipeline_parallel: 0"):
        deploy.plan(owner.store, acc["engineer"], owner.settings, pipeline_parallel=0)


def test_no_promoted_version_says_how_to_get_one(owner, accounts):
    with pytest.raises(InvalidInput, match="no task has a promoted version.*tuneboard promote"):
        deploy.plan(owner.store, accounts["engineer"], owner.settings)


def test_a_promoted_base_is_served_under_the_task_and_external_is_refused(world, tmp_path, tiny_model):
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
    deploy.write(store, eng, owner.settings, tmp_path / "d")
    script = (tmp_path / "d" / "serve.sh").read_text()
    assert script.count("&\npids+=($!)") == 2 and "wait -n" in script and '"$HERE/models/tickets"' in script
    subprocess.run(["bash", "-n", str(tmp_path / "d" / "serve.sh")], check=True)
    from core.serving import register_external

    register_external(store, eng, "gpt", "https://api.example.com/v1", "gpt-x")
    promotion.promote(store, eng, "external:gpt", "the vendor model wins on tickets", override=True, task="refunds")
    p = deploy.plan(store, eng, owner.settings)
    assert any("external contender" in m and m.startswith("refunds") for m in p.problems)
