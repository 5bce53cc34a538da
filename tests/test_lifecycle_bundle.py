"""Run bundles: a run's whole record in one zip, read back safely, and reproduced in a fresh workspace.

The fast tests record a run directly (rows as training would write them, a fake base-model
folder) with a really scored generation set, a real gate on the probe suite, a blind review
with simulated raters and a promotion; the slow test trains the tiny model for real, moves
the bundle to a second workspace and checks the reproduction trains to the same losses.

Every bundle here is written by a `bundle` job: the owner's job service launches the real worker
(core.lifecycle.bundle_worker); to act while it is half-way (cancel it, kill it, take its target
away) the launcher runs it under the deploy tests' pausing shim."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.auth import Role, User
from core.config import MetricsSettings, load_settings
from core.datasets import ImportOptions, import_dataset
from core.demo.review import rater_accounts, seed_generation_set, simulated_choice
from core.errors import InvalidInput, JobError, NotFound, PermissionDenied
from core.jobs.launchers import job_processes
from core.lifecycle import promotion
from core.lifecycle.bundle import (FORMAT_VERSION, STAGED, bundle_file, bundle_status, config_toml, read_bundle,
                                   reproduce_bundle, start_bundle)
from core.metrics import results
from core.metrics.scoring import start_scoring
from core.owner import Owner
from core.regression import runs
from core.review import pairs
from core.review.desk import RatingDesk
from core.review.pairs import PairSetSpec
from core.training import lineage
from core.training.config import TrainConfig
from tests.apptest import use_fast_password_hashing
from tests.test_lifecycle_deploy import pause_workers, until_paused
from tests.test_regression_runs import seed_suite_set

FAST = MetricsSettings(bootstrap_rounds=200)
RUN = "train-recorded"
WHY = "passes the gate and reads better"
TABLES = ("jobs", "runs", "dataset_versions", "examples", "model_variants")


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


class NoWorker:
    """A launcher that starts nothing: the fast tests check what is recorded, not training."""

    def start(self, job_id: str, module: str, run_dir: Path) -> int:
        return 0

    def alive(self, job_id: str, pid: int | None) -> bool:
        return False

    def stop(self, job_id: str, pid: int | None) -> None:
        return None

    def end(self, job_id, pid) -> int:
        return 0


def exported(owner, actor, out: Path | None = None, data: bool = True, run: str = RUN) -> Path:
    """The run record written by the bundle job (the real worker process); the zip's path."""
    job_id = start_bundle(owner.store, owner.jobs, actor, owner.settings, run, out, include_data=data)
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "succeeded", job["error"] or owner.jobs.log_tail(job_id)
    return bundle_file(owner.store, owner.jobs, actor, job_id)


def _fake_base(folder: Path) -> str:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    return str(folder)


def _counts(store) -> dict[str, int]:
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


@pytest.fixture
def run_only(owner, accounts, demo_files, tmp_path):
    """A finished run of `tickets` (on a fake base folder) with training events, an adapter and a checkpoint."""
    store, eng = owner.store, accounts["engineer"]
    good, _ = demo_files
    version = import_dataset(store, eng, good.read_bytes(), good.name, ImportOptions(name="tickets")).version_id
    base = _fake_base(tmp_path / "base-model")
    config = TrainConfig(base_model=base, dataset_version=version, max_steps=4, eval_every=2, seed=21,
                         modules_to_save=["lm_head"], learning_rate=3e-3)
    from core.datasets import get_version

    record = lineage(config, get_version(store, eng, version))
    losses = [2.5, 2.1, 1.8, 1.6]
    with store.transaction() as cur:
        cur.execute("INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by) VALUES "
                    "(?, 'train', 'succeeded', '/runs/x', '{}', 'eve')", [RUN])
        cur.execute("""INSERT INTO runs (job_id, dataset_version, base_model, method, config, lineage, best_checkpoint,
                       best_eval_loss, final_step, adapter_dir) VALUES (?, ?, ?, 'lora', ?, ?, '/runs/x/checkpoint-4',
                       1.7, 4, '/runs/x/adapter')""",
                    [RUN, version, base, json.dumps(config.to_dict()), json.dumps(record)])
        events = [("train", {"step": i + 1, "loss": x, "learning_rate": 1e-3}) for i, x in enumerate(losses)]
        events[1:1] = [("eval", {"step": 2, "eval_loss": 1.9})]
        events.append(("eval", {"step": 4, "eval_loss": 1.7}))
        cur.executemany("INSERT INTO job_events VALUES (?, ?, ?, ?, ?)",
                        [[RUN, seq, time.time(), t, json.dumps(p)] for seq, (t, p) in enumerate(events, start=1)])
        for vid, detail in ((f"adapter:{RUN}", {"dataset_version": version}),
                            (f"adapter:{RUN}@2", {"run_id": RUN, "step": 2, "checkpoint": True})):
            cur.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model, job_id, detail) VALUES "
                        "(?, 'adapter', ?, '/runs/x/adapter', ?, ?, ?)", [vid, vid, base, RUN, json.dumps(detail)])
    return dict(version=version, config=config, lineage=record, losses=losses, base=base)


@pytest.fixture
def recorded(owner, accounts, run_only):
    """The run judged by a scored test-split set, a suite gate, a blind review and a promotion."""
    store, eng, lead = owner.store, accounts["engineer"], accounts["lead"]
    adapter = f"adapter:{RUN}"
    scored = seed_generation_set(store, n_prompts=16, variants=("base", adapter), seed=2)
    job = owner.jobs.wait(start_scoring(store, owner.jobs, eng, scored), timeout=120)
    assert job["status"] == "succeeded", job["error"]
    unrelated = seed_generation_set(store, n_prompts=4, variants=("base", "adapter:other"), seed=3)
    suite_set = seed_suite_set(store, {}, tuned=adapter)
    gate = runs.judge(store, lead, suite_set, adapter, owner.settings.regression)
    raters = rater_accounts(store, ["ann", "bob"], "correct-horse-battery")
    pair_set = pairs.create_pair_set(store, lead, PairSetSpec("Round 1", scored, ["base", adapter], raters=raters,
                                                              raters_per_pair=2, gold_rate=0.0, seed=1))
    desk, rng = RatingDesk(store, 0.0), np.random.default_rng(0)
    truth = {r["pair_id"]: r for r in store.rows(
        """SELECT p.*, gp.reference FROM pairs p JOIN generation_prompts gp ON gp.set_id = ? AND
           gp.prompt_idx = p.prompt_idx WHERE p.pair_set_id = ?""", [scored, pair_set])}
    for name in raters:
        while (view := desk.next_pair(User(name, Role.RATER), pair_set)) is not None:
            desk.vote(User(name, Role.RATER), pair_set, view.ticket, simulated_choice(truth[view.ticket], 0.9, rng))
    promoted = promotion.promote(store, eng, adapter, WHY)
    owner.settings.metrics = FAST
    return {**run_only, "scored": scored, "unrelated": unrelated, "suite_set": suite_set, "gate": gate,
            "pair_set": pair_set, "promoted": promoted}


def _rewrite(path: Path, out: Path, change=None, extra: dict[str, bytes] | None = None) -> Path:
    """A copy of a bundle with bundle.json changed by `change(manifest)` and members added."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if change:
        manifest = json.loads(members["bundle.json"])
        change(manifest)
        members["bundle.json"] = json.dumps(manifest).encode()
        members["config.toml"] = config_toml(manifest["run"]["config"]).encode()  # kept consistent
    members.update(extra or {})
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


@pytest.fixture
def fresh(tmp_path, env):
    """A second, empty workspace (same base model path) whose training launcher starts nothing."""
    env2 = {**env, "TUNEBOARD_WORKSPACE": str(tmp_path / "ws2")}
    other = Owner.open(load_settings(env=env2), monitor=False, env=env2)
    other.jobs.launchers["train"] = NoWorker()
    yield other
    other.close()


def test_bundle_holds_every_part_of_the_record(owner, accounts, recorded, tmp_path):
    store, lead = owner.store, accounts["lead"]
    with pytest.raises(PermissionDenied):
        start_bundle(store, owner.jobs, accounts["rater"], owner.settings, RUN, tmp_path / "b.zip")
    started = time.perf_counter()
    path = exported(owner, lead, tmp_path / "out" / "b.zip")
    elapsed = time.perf_counter() - started
    assert path == tmp_path / "out" / "b.zip" and list(path.parent.iterdir()) == [path]  # no temp file left
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["bundle.json", "config.toml", "data/test.jsonl", "data/train.jsonl",
                                         "data/validation.jsonl"]
        assert all(i.date_time[0] > 1980 and i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
        raw = zf.read("bundle.json")
        data = {s: [json.loads(x) for x in zf.read(f"data/{s}.jsonl").decode().splitlines()]
                for s in ("train", "validation", "test")}
        (tmp_path / "config.toml").write_bytes(zf.read("config.toml"))
    json.loads(raw, parse_constant=lambda c: pytest.fail(f"{c} in bundle.json"))  # strict JSON: no NaN
    b = read_bundle(path)
    assert b["format_version"] == FORMAT_VERSION and b["tuneboard_version"]
    run = b["run"]
    assert run["job_id"] == RUN and run["status"] == "succeeded" and run["config"] == recorded["config"].to_dict()
    assert run["lineage"] == json.loads(json.dumps(recorded["lineage"]))
    assert run["lineage"]["seed"] == 21 and run["lineage"]["base_model"]["files_sha256"]
    assert run["best_eval_loss"] == 1.7 and run["final_step"] == 4 and run["best_checkpoint"].endswith("checkpoint-4")
    assert TrainConfig.from_toml(tmp_path / "config.toml") == recorded["config"]  # what the CLI accepts

    version = store.row("SELECT * FROM dataset_versions WHERE version_id = ?", [recorded["version"]])
    ds = b["dataset"]
    assert (ds["version_id"], ds["dataset"], ds["content_hash"]) == (version["version_id"], "tickets",
                                                                       version["content_hash"])
    assert ds["split_spec"] == json.loads(version["split_spec"]) and ds["split_spec"]["mode"] == "seeded"
    assert ds["counts"] == {"examples": version["n_examples"], "train": version["n_train"],
                            "validation": version["n_validation"], "test": version["n_test"]}
    # Exactly the stored rows: the content hash recomputes from them.
    for split, rows in data.items():
        stored = store.rows("SELECT idx, messages, example_hash FROM examples WHERE version_id = ? AND split = ? "
                            "ORDER BY idx", [recorded["version"], split])
        assert [(r["idx"], r["messages"], r["example_hash"]) for r in rows] == \
            [(r["idx"], json.loads(r["messages"]), r["example_hash"]) for r in stored]
    # Each row's hash, with its tag where it has one (the demo tickets are tagged by category).
    hashes = sorted(r["example_hash"] + (f" tag={r['tag']}" if "tag" in r else "") for rows in data.values()
                    for r in rows)
    assert all("tag" in r for rows in data.values() for r in rows)
    assert hashlib.sha256("\n".join(hashes).encode()).hexdigest() == version["content_hash"]

    t = b["training"]
    assert [x["loss"] for x in t["train_losses"]] == recorded["losses"] and t["final_train_loss"] == 1.6
    assert t["final_eval_loss"] == 1.7 and t["steps"] == 4 and [e["step"] for e in t["eval_losses"]] == [2, 4]
    assert {v["variant_id"] for v in b["versions"]} == {f"adapter:{RUN}", f"adapter:{RUN}@2"}

    sets = {s["set_id"]: s for s in b["generation_sets"]}
    assert set(sets) == {recorded["scored"], recorded["suite_set"]}  # not the set without this run's versions
    expected = results.latest(store, lead, recorded["scored"], FAST)
    got = sets[recorded["scored"]]["metrics"]
    assert got["metrics"] == expected.metrics and len(got["summary"]) == len(expected.summary)
    for row, want in zip(got["summary"], expected.summary.to_dict("records")):
        assert row["variant"] == want["variant"] and row["metric"] == want["metric"]
        nan = want["mean"] != want["mean"]  # NaN in the frame is null in the bundle
        assert row["mean"] is None if nan else row["mean"] == pytest.approx(want["mean"])
    assert {(d["variant"], d["metric"]) for d in got["deltas"]} == \
        {(d["variant"], d["metric"]) for d in expected.deltas.to_dict("records")}
    assert sets[recorded["suite_set"]]["metrics"] is None  # the suite is gated, not scored

    [gate] = b["gates"]
    assert gate["gate_id"] == recorded["gate"]["gate_id"] and gate["verdict"] == "pass"
    assert gate["detail"] == json.loads(json.dumps(recorded["gate"]["detail"]))
    [pair_set] = b["pair_sets"]
    review = pair_set["review"]
    assert pair_set["pair_set_id"] == recorded["pair_set"] and review["n_votes"] > 0
    assert {r["variant"] for r in review["ladder"]} == {"base", f"adapter:{RUN}"}
    assert review["comparisons"][0]["n"] > 0
    [promo] = b["promotions"]
    assert promo["promotion_id"] == recorded["promoted"] and promo["gate_id"] == gate["gate_id"]
    assert promo["reason"] == WHY and promo["task"] == "tickets"
    assert isinstance(promo["created_at"], str)  # timestamps as ISO text
    assert elapsed < 30

    lean = read_bundle(exported(owner, lead, tmp_path, data=False))
    assert lean["data"] == {"included": False, "files": {}}
    assert sorted(zipfile.ZipFile(tmp_path / f"{RUN}.zip").namelist()) == ["bundle.json", "config.toml"]


def test_the_job_reports_progress_in_bytes_and_is_audited_when_taken_in(owner, accounts, run_only):
    store, lead = owner.store, accounts["lead"]
    job_id = start_bundle(store, owner.jobs, lead, owner.settings, RUN)  # no target: into the job's run folder
    staged = Path(owner.jobs.get(job_id)["run_dir"], STAGED)
    data_bytes = sum((staged / "data" / f"{s}.jsonl").stat().st_size for s in ("train", "validation", "test"))
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "succeeded", job["error"] or owner.jobs.log_tail(job_id)
    status = bundle_status(store, owner.jobs, lead, job_id)
    path = bundle_file(store, owner.jobs, lead, job_id)
    assert path == Path(job["run_dir"], f"{RUN}.zip") and status["result"] == {
        "path": str(path), "file": f"{RUN}.zip", "bytes": path.stat().st_size}
    assert not staged.exists()  # the staged record goes once the zip is whole
    progress = owner.jobs.events(job_id, "progress")
    assert [e["stage"] for e in progress][0] == "hashing" and progress[-1]["stage"] == "zipping"
    hashed = [e for e in progress if e["stage"] == "hashing"][-1]
    assert hashed["done"] == hashed["total"] == data_bytes
    assert progress[-1]["done"] == progress[-1]["total"] > data_bytes  # the manifest and config.toml too
    assert status["progress"] == {k: progress[-1][k] for k in ("stage", "done", "total")} and status["done"]
    manifest = read_bundle(path)
    assert manifest["created_by"] == "leo" and sorted(manifest["data"]["files"]) == [
        "data/test.jsonl", "data/train.jsonl", "data/validation.jsonl"]
    rows = store.rows("SELECT actor, action, target, detail, door FROM audit_log WHERE action LIKE 'bundle.%' "
                      "ORDER BY id")
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [("leo", "bundle.start", job_id),
                                                                      ("leo", "bundle.export", RUN)]
    assert json.loads(rows[1]["detail"]) == {"path": str(path), "data": True} and rows[1]["door"] == "server"
    owner.jobs.reconcile()
    assert store.scalar("SELECT count(*) FROM audit_log WHERE action = 'bundle.export'") == 1  # exactly once

    for call in (bundle_status, bundle_file):
        with pytest.raises(PermissionDenied):
            call(store, owner.jobs, accounts["rater"], job_id)
    with pytest.raises(NotFound, match="that is a training run"):
        bundle_status(store, owner.jobs, lead, RUN)
    with pytest.raises(InvalidInput, match="is a file"):
        start_bundle(store, owner.jobs, lead, owner.settings, RUN, path / "inside.zip")
    path.unlink()
    with pytest.raises(NotFound, match="prepare it again"):
        bundle_file(store, owner.jobs, lead, job_id)


def test_cancelled_or_killed_half_way_the_earlier_zip_stays_whole(owner, accounts, run_only, tmp_path):
    lead, target = accounts["lead"], tmp_path / "b.zip"
    before = exported(owner, lead, target).read_bytes()
    pause_workers(owner, "bundle", "advance", "zipping")  # bundle.json is in the temporary zip; the rest not
    job_id = start_bundle(owner.store, owner.jobs, lead, owner.settings, RUN, target)
    until_paused(owner, job_id)
    [partial] = tmp_path.glob(".b.zip.*.partial")
    assert partial.stat().st_size > 0
    with pytest.raises(JobError, match="is still being written"):
        bundle_file(owner.store, owner.jobs, lead, job_id)
    owner.jobs.cancel(lead, job_id)  # a lead may cancel the bundle job a lead may start
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "cancelled", owner.jobs.log_tail(job_id)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.glob(".b.zip*")) == []
    with pytest.raises(JobError, match="cancelled"):
        bundle_file(owner.store, owner.jobs, lead, job_id)

    job_id = start_bundle(owner.store, owner.jobs, lead, owner.settings, RUN, target)
    until_paused(owner, job_id)
    os.kill(owner.jobs.get(job_id)["pid"], signal.SIGKILL)
    job = owner.jobs.wait(job_id, timeout=30)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == []  # nothing it started outlives it
    assert target.read_bytes() == before  # never half a zip under the name: only a hidden .partial beside it
    assert [p.name.endswith(".partial") for p in tmp_path.glob(".b.zip*")] == [True]
    assert owner.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'bundle.export'") == 1


def test_a_target_taken_away_while_it_runs_fails_the_job_with_a_message(owner, accounts, run_only, tmp_path):
    lead, target = accounts["lead"], tmp_path / "records" / "b.zip"
    pause_workers(owner, "bundle", "start", "zipping")
    job_id = start_bundle(owner.store, owner.jobs, lead, owner.settings, RUN, target)
    run = until_paused(owner, job_id)
    (tmp_path / "records").write_text("someone made this a file meanwhile")
    (run / "go").touch()
    job = owner.jobs.wait(job_id, timeout=60)
    assert job["status"] == "failed", owner.jobs.log_tail(job_id)
    assert job["error"] == (f"{target}: the run record could not be written (File exists: {tmp_path / 'records'}); "
                            "no zip was left there.")
    status = bundle_status(owner.store, owner.jobs, lead, job_id)
    assert status["status"] == "failed" and status["result"] is None and status["error"] == job["error"]
    assert owner.store.scalar("SELECT count(*) FROM audit_log WHERE action = 'bundle.export'") == 0


def test_read_bundle_refuses_damaged_foreign_and_unsafe_files(owner, accounts, run_only, tmp_path):
    path = exported(owner, accounts["lead"], tmp_path / "b.zip")
    blob = path.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InvalidInput, match="not a readable zip"):
        read_bundle(cut)
    flipped = tmp_path / "flipped.zip"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("data/train.jsonl")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    flipped.write_bytes(blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1:])
    with pytest.raises(InvalidInput, match="damaged|sha256"):
        read_bundle(flipped)
    plain = tmp_path / "foreign.json"
    plain.write_text('{"hello": "world"}')
    with pytest.raises(InvalidInput, match="not a tuneboard run bundle"):
        read_bundle(plain)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("bundle.json", json.dumps({"format": "someone-else", "rows": [1, 2]}))
    with pytest.raises(InvalidInput, match="not a tuneboard run bundle"):
        read_bundle(foreign)
    with pytest.raises(InvalidInput, match=r"\.\./evil\.sh.*points outside"):
        read_bundle(_rewrite(path, tmp_path / "evil.zip", extra={"../evil.sh": b"rm -rf ~"}))
    with pytest.raises(InvalidInput, match="unexpected member"):
        read_bundle(_rewrite(path, tmp_path / "more.zip", extra={"notes.txt": b"hi"}))
    with pytest.raises(InvalidInput, match="newer tuneboard"):
        read_bundle(_rewrite(path, tmp_path / "new.zip", lambda m: m.update(format_version=FORMAT_VERSION + 1)))
    with pytest.raises(InvalidInput, match="'gates' must be list"):
        read_bundle(_rewrite(path, tmp_path / "gates.zip", lambda m: m.update(gates=None)))
    with pytest.raises(InvalidInput, match="learning_rate"):
        read_bundle(_rewrite(path, tmp_path / "lr.zip", lambda m: m["run"]["config"].update(learning_rate="fast")))
    with pytest.raises(InvalidInput, match="config.toml differs from the run config"):
        read_bundle(_rewrite(path, tmp_path / "toml.zip", extra={"config.toml": b"[train]\nseed = 1\n"}))
    with pytest.raises(InvalidInput, match="content hash"):
        read_bundle(_rewrite(path, tmp_path / "hash.zip", lambda m: m["dataset"].update(content_hash="0" * 64)))


def test_reproduce_refuses_other_data_or_base_files_and_writes_nothing(owner, accounts, run_only, fresh, tmp_path):
    recorded = run_only
    eng = accounts["engineer"]
    lean = exported(owner, eng, tmp_path / "lean.zip", data=False)
    with pytest.raises(PermissionDenied):
        reproduce_bundle(owner.store, owner.jobs, accounts["lead"], owner.settings, lean)
    before = _counts(owner.store)
    other_data = _rewrite(lean, tmp_path / "other-data.zip", lambda m: m["dataset"].update(content_hash="f" * 64))
    with pytest.raises(InvalidInput, match=f"content hash here is {'.*'}, the bundle's is {'f' * 64}"):
        reproduce_bundle(owner.store, owner.jobs, eng, owner.settings, other_data)
    assert _counts(owner.store) == before

    admin = User("admin", Role.ENGINEER)
    with pytest.raises(InvalidInput, match="not in this workspace and the bundle carries no data"):
        reproduce_bundle(fresh.store, fresh.jobs, admin, fresh.settings, lean)
    full = exported(owner, eng, tmp_path / "full.zip")
    recorded_hash = read_bundle(full)["run"]["lineage"]["base_model"]["files_sha256"]
    weights = Path(recorded["base"], "model.safetensors")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # the base model's files changed since
    from core.training import model_fingerprint

    now = model_fingerprint(recorded["base"])["files_sha256"]
    with pytest.raises(InvalidInput, match=f"files with sha256 {recorded_hash}, but here it has files sha256 {now}"):
        reproduce_bundle(fresh.store, fresh.jobs, admin, fresh.settings, full)
    assert _counts(fresh.store) == {t: 0 for t in TABLES}  # the data was not imported either


def test_reproduce_imports_the_same_version_and_records_differences(owner, accounts, run_only, fresh, tmp_path):
    """In an empty workspace the data lands on the same version id and split; package differences
    are recorded on the new run, not refused."""
    recorded = run_only
    full = exported(owner, accounts["engineer"], tmp_path / "full.zip")
    older = _rewrite(full, tmp_path / "older.zip",
                     lambda m: m["run"]["lineage"]["packages"].update(torch="1.0.0", oldlib="0.1"))
    job_id = reproduce_bundle(fresh.store, fresh.jobs, User("admin", Role.ENGINEER), fresh.settings, older)
    run = fresh.store.row("SELECT * FROM runs WHERE job_id = ?", [job_id])
    assert json.loads(run["config"]) == recorded["config"].to_dict()  # same data version id, same seed
    split_of = lambda store: {r["example_hash"]: (r["idx"], r["split"]) for r in store.rows(  # noqa: E731
        "SELECT example_hash, idx, split FROM examples WHERE version_id = ?", [recorded["version"]])}
    assert split_of(fresh.store) == split_of(owner.store)
    assert fresh.store.scalar("SELECT content_hash FROM dataset_versions") == \
        owner.store.scalar("SELECT content_hash FROM dataset_versions")
    origin = json.loads(run["lineage"])["reproduced_from"]
    assert origin["run_id"] == RUN and origin["dataset_imported"] is True
    assert origin["package_differences"]["torch"]["bundle"] == "1.0.0"
    assert origin["package_differences"]["oldlib"] == {"bundle": "0.1", "here": None}
    assert any("package versions differ" in w for w in origin["warnings"])
    # The snapshot the worker would train on holds the same rows in the same order.
    original = owner.store.rows("SELECT messages FROM examples WHERE version_id = ? AND split = 'train' ORDER BY idx",
                                [recorded["version"]])
    snapshot = Path(fresh.jobs.get(job_id)["run_dir"], "data", "train.jsonl").read_text().splitlines()
    assert snapshot == [r["messages"] for r in original]

    def hub(m):
        m["run"]["config"]["base_model"] = "org/some-model"
        m["run"]["lineage"]["base_model"] = {"id": "org/some-model", "files_sha256": None}
    again = reproduce_bundle(fresh.store, fresh.jobs, User("admin", Role.ENGINEER), fresh.settings,
                             _rewrite(full, tmp_path / "hub.zip", hub))
    origin = json.loads(fresh.store.scalar("SELECT lineage FROM runs WHERE job_id = ?", [again]))["reproduced_from"]
    assert origin["dataset_imported"] is False  # the version is here now
    assert any("hub id: only the id was compared" in w for w in origin["warnings"])


@pytest.mark.slow
def test_round_trip_reproduces_the_losses_in_a_fresh_workspace(owner, accounts, demo_files, tiny_model, tmp_path,
                                                              env):
    good, _ = demo_files
    eng = accounts["engineer"]
    version = import_dataset(owner.store, eng, good.read_bytes(), good.name, ImportOptions(name="tickets")).version_id
    config = TrainConfig(base_model=tiny_model, dataset_version=version, learning_rate=3e-3, max_steps=6,
                         batch_size=8, eval_every=3, lora_rank=8, lora_alpha=16, modules_to_save=["lm_head"],
                         max_seq_len=256, early_stopping_patience=0)
    from core.training import get_run, start_training

    first = start_training(owner.store, owner.jobs, eng, config)
    job = owner.jobs.wait(first, timeout=300, poll=0.3)
    assert job["status"] == "succeeded", owner.jobs.log_tail(first)
    path = exported(owner, eng, tmp_path / "run.zip", run=first)
    original = [e["loss"] for e in owner.jobs.events(first, "train")]
    assert len(original) == 6 and [x["loss"] for x in read_bundle(path)["training"]["train_losses"]] == original

    env2 = {**env, "TUNEBOARD_WORKSPACE": str(tmp_path / "ws2")}
    other = Owner.open(load_settings(env=env2), monitor=False, env=env2)
    try:
        admin = User("admin", Role.ENGINEER)
        second = reproduce_bundle(other.store, other.jobs, admin, other.settings, path)
        job = other.jobs.wait(second, timeout=300, poll=0.3)
        assert job["status"] == "succeeded", other.jobs.log_tail(second)
        a, b = get_run(owner.store, eng, first), get_run(other.store, admin, second)
        assert b["config"] == a["config"]
        assert other.store.scalar("SELECT content_hash FROM dataset_versions WHERE version_id = ?", [version]) == \
            owner.store.scalar("SELECT content_hash FROM dataset_versions WHERE version_id = ?", [version])
        assert b["lineage"]["base_model"]["files_sha256"] == a["lineage"]["base_model"]["files_sha256"]
        assert b["lineage"]["reproduced_from"]["package_differences"] == {}
        # Same seed, data, base files and code: the same losses (the tolerance of test_training's reproduce).
        assert [e["loss"] for e in other.jobs.events(second, "train")] == pytest.approx(original, rel=1e-5)
    finally:
        other.close()
