"""Faults: killed workers, a dashboard restart, a full or read-only disk, a corrupt event file.

Each is done for real: SIGKILL to a worker process, the owner closed and opened again (as a
dashboard restart does), a tmpfs mounted small enough to fill and then remounted read-only,
garbage written into a live run's event file. The kill -9 of the dashboard in the middle of
rating is in tests/test_proof_load.py (it needs the server and its raters).

The disk tests mount a tmpfs, which needs root (CAP_SYS_ADMIN): CI machines run as root; a
machine where mounting is refused skips them and says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import load_settings
from core.datasets import ImportOptions, import_dataset, list_versions
from core.errors import StoreError
from core.jobs.events import EVENTS_FILE
from core.jobs.launchers import job_processes
from core.owner import Owner
from core.serving import Decoding, GenerationSpec, generate, get_set, prompts_from_version
from core.training import start_training
from core.training.config import CHECKPOINTS, TrainConfig

pytestmark = pytest.mark.slow

TUNEBOARD = str(Path(sys.executable).with_name("tuneboard"))


@pytest.fixture
def tickets(owner, accounts, demo_files) -> str:
    good, _ = demo_files
    return import_dataset(owner.store, accounts["engineer"], good.read_bytes(), good.name,
                          ImportOptions(name="tickets")).version_id


def _train_config(tiny_model: str, version: str, **over) -> TrainConfig:
    values = dict(base_model=tiny_model, dataset_version=version, learning_rate=3e-3, max_steps=40, batch_size=8,
                  eval_every=5, lora_rank=8, lora_alpha=16, modules_to_save=["lm_head"], max_seq_len=256,
                  early_stopping_patience=0)
    values.update(over)
    return TrainConfig(**values)


def _until(predicate, owner, timeout: float = 240, poll: float = 0.1) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        owner.jobs.reconcile()
        time.sleep(poll)


def _events_exactly_once(owner, job_id: str) -> None:
    """Every line of the run's event file is one stored event; none twice, none missing."""
    lines = Path(owner.jobs.get(job_id)["run_dir"], EVENTS_FILE).read_text().splitlines()
    seqs = [json.loads(line)["seq"] for line in lines]
    stored = owner.store.rows("SELECT seq FROM job_events WHERE job_id = ? ORDER BY seq", [job_id])
    assert [r["seq"] for r in stored] == sorted(seqs) and len(set(seqs)) == len(seqs)


# ---- killed workers, then a restart ------------------------------------------------------

def test_killed_training_worker_is_failed_and_resumes_after_a_restart(settings, env, owner, accounts, tickets,
                                                                       tiny_model):
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"], _train_config(tiny_model, tickets))
    run_dir = Path(owner.jobs.get(job_id)["run_dir"])
    _until(lambda: len(owner.jobs.events(job_id, "train")) >= 12, owner)   # past the checkpoint at step 10
    os.kill(owner.jobs.get(job_id)["pid"], signal.SIGKILL)
    job = owner.jobs.wait(job_id, timeout=60, poll=0.2)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(job_id) == []  # nothing it started outlives it
    killed_at = max(e["step"] for e in owner.jobs.events(job_id, "train"))
    checkpoints = sorted(int(p.name.split("-")[1]) for p in (run_dir / CHECKPOINTS).glob("checkpoint-*"))
    assert checkpoints and checkpoints[-1] <= killed_at

    owner.close()                                    # the dashboard restarts
    reopened = Owner.open(settings, monitor=False, env=env)
    try:
        assert reopened.jobs.get(job_id)["status"] == "failed"
        reopened.jobs.resume(accounts["engineer"], job_id)
        job = reopened.jobs.wait(job_id, timeout=300, poll=0.3)
        assert job["status"] == "succeeded", reopened.jobs.log_tail(job_id)
        assert reopened.jobs.events(job_id, "started")[-1]["resumed_from"].endswith(f"checkpoint-{checkpoints[-1]}")
        steps = [e["step"] for e in reopened.jobs.events(job_id, "train")]
        # Steps after the checkpoint were trained again by the resumed worker; every step up to
        # the end was trained, the resumed part once.
        assert steps[-1] == 40 and set(steps) == set(range(1, 41))
        resumed = steps[len(steps) - (40 - checkpoints[-1]):]
        assert resumed == list(range(checkpoints[-1] + 1, 41))
        _events_exactly_once(reopened, job_id)
        assert reopened.store.scalar("SELECT count(*) FROM model_variants WHERE job_id = ?", [job_id]) == 1
    finally:
        reopened.close()


def test_killed_generation_worker_is_failed_and_resumes_after_a_restart(settings, env, owner, accounts, tickets,
                                                                         tiny_model, monkeypatch):
    monkeypatch.setattr(owner.settings.serving, "chunk", 2)
    prompts, source = prompts_from_version(owner.store, accounts["engineer"], tickets, "test", limit=12)
    set_id = generate(owner.store, owner.jobs, owner.settings, accounts["engineer"],
                      GenerationSpec("kill me", ["base"], prompts, source, Decoding(max_tokens=48),
                                     path="transformers"))
    _until(lambda: owner.jobs.events(set_id, "generated"), owner, poll=0.05)
    os.kill(owner.jobs.get(set_id)["pid"], signal.SIGKILL)
    job = owner.jobs.wait(set_id, timeout=60, poll=0.2)
    assert job["status"] == "failed" and "exited without finishing" in job["error"]
    assert job_processes(set_id) == []  # nothing it started outlives it
    before = get_set(owner.store, accounts["engineer"], set_id)["n_outputs"]
    assert 0 < before < len(prompts)

    owner.close()
    reopened = Owner.open(settings, monitor=False, env=env)
    try:
        reopened.jobs.resume(accounts["engineer"], set_id)
        job = reopened.jobs.wait(set_id, timeout=300, poll=0.2)
        assert job["status"] == "succeeded", reopened.jobs.log_tail(set_id)
        assert get_set(reopened.store, accounts["engineer"], set_id)["n_outputs"] == len(prompts)
        made = [row["prompt_idx"] for e in reopened.jobs.events(set_id, "generated") for row in e["rows"]]
        assert sorted(made) == sorted(set(made)) and len(made) == len(prompts)  # nothing generated twice
        assert reopened.store.scalar("SELECT count(*) FROM generations WHERE set_id = ?", [set_id]) == len(prompts)
        _events_exactly_once(reopened, set_id)
    finally:
        reopened.close()


# ---- a corrupt event file -----------------------------------------------------------------

def test_corrupt_line_in_a_live_run_is_skipped_reported_and_the_run_goes_on(owner, accounts, env, tickets,
                                                                            tiny_model, tmp_path):
    job_id = start_training(owner.store, owner.jobs, accounts["engineer"],
                            _train_config(tiny_model, tickets, max_steps=20, eval_every=10))
    path = Path(owner.jobs.get(job_id)["run_dir"], EVENTS_FILE)
    _until(lambda: len(owner.jobs.events(job_id, "train")) >= 3, owner)
    with open(path, "ab") as fh:           # a disk hiccup or a stray writer: garbage between events
        fh.write(b"\x00\x00{\"seq\": oops not json\n")
    job = owner.jobs.wait(job_id, timeout=300, poll=0.2)
    assert job["status"] == "succeeded", owner.jobs.log_tail(job_id)
    assert [e["step"] for e in owner.jobs.events(job_id, "train")] == list(range(1, 21))
    [problem] = owner.jobs.ingest_problems(job_id)
    assert "unreadable event line" in problem["message"]
    note = owner.jobs.skipped_note(job_id)
    assert note.startswith("1 line(s)") and str(problem["byte_offset"]) in note

    # The engineer is told: `tuneboard runs show` prints it (the Train page shows the same note).
    owner.close()
    shown = subprocess.run([TUNEBOARD, "runs", "show", job_id], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, **env}, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "warning: 1 line(s) of this job's event file" in shown.stdout and "Traceback" not in shown.stderr


# ---- a full disk, a read-only workspace ---------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB tmpfs holding the workspace; unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the disk-fault tests need root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path: Path) -> None:
    with open(path, "wb") as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()


def _cli(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TUNEBOARD, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **env},
                          timeout=180)


def test_full_disk_gives_a_clear_error_and_leaves_the_database_whole(small_disk, tmp_path, tiny_model, demo_files,
                                                                      accounts):
    env = {"TUNEBOARD_WORKSPACE": str(small_disk / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
           "TUNEBOARD_ADMIN_PASSWORD": "disk-test-admin-pw"}
    good, _ = demo_files
    first = _cli(env, tmp_path, "data", "import", "--name", "tickets", str(good))
    assert first.returncode == 0, first.stdout + first.stderr
    with contextlib.chdir(tmp_path):
        settings = load_settings(env=env)
    o = Owner.open(settings, monitor=False, env=env)
    examples = o.store.scalar("SELECT count(*) FROM examples")
    o.close()
    ws_files = sorted(p.relative_to(small_disk) for p in small_disk.rglob("*") if p.is_file())

    _fill(small_disk / "filler")
    # The CLI: a message that says what happened and what to do, no traceback, nothing half-imported.
    other = tmp_path / "other.jsonl"
    other.write_bytes(good.read_bytes().replace(b"order", b"parcel"))
    full = _cli(env, tmp_path, "data", "import", "--name", "more", str(other))
    assert full.returncode != 0
    said = full.stdout + full.stderr
    assert "Traceback" not in said and ("full" in said or "No space" in said), said
    # Core, as the dashboard calls it: a StoreError (the page shows it), no exception of another kind.
    with pytest.raises(StoreError, match="full"):
        o = Owner.open(settings, monitor=False, env=env)
        try:
            import_dataset(o.store, accounts["engineer"], other.read_bytes(), other.name, ImportOptions(name="more"))
        finally:
            o.close()

    os.remove(small_disk / "filler")
    # Nothing of the failed imports is left behind; the database opens with everything it had.
    left = sorted(p.relative_to(small_disk) for p in small_disk.rglob("*") if p.is_file() and p.suffix != ".wal")
    assert [p for p in left if p not in ws_files] == []
    o = Owner.open(settings, monitor=False, env=env)
    try:
        assert [v["dataset"] for v in list_versions(o.store, accounts["engineer"])] == ["tickets"]
        assert o.store.scalar("SELECT count(*) FROM examples") == examples
        o.store.execute("CHECKPOINT")  # the whole file is readable and writable again
    finally:
        o.close()
    again = _cli(env, tmp_path, "data", "import", "--name", "more", str(other))
    assert again.returncode == 0, again.stdout + again.stderr


def test_read_only_workspace_gives_a_clear_error_and_no_damage(small_disk, tmp_path, tiny_model, demo_files):
    env = {"TUNEBOARD_WORKSPACE": str(small_disk / "ws"), "TUNEBOARD_MODEL_BASE": tiny_model,
           "TUNEBOARD_ADMIN_PASSWORD": "disk-test-admin-pw"}
    good, _ = demo_files
    assert _cli(env, tmp_path, "data", "import", "--name", "tickets", str(good)).returncode == 0
    db = small_disk / "ws" / "tuneboard.duckdb"
    digest = db.read_bytes()

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        for args in (("data", "list"), ("data", "import", "--name", "more", str(good))):
            done = _cli(env, tmp_path, *args)
            said = done.stdout + done.stderr
            assert done.returncode != 0 and "Traceback" not in said, said
            assert "cannot be written" in said or "read-only" in said.lower(), said
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert db.read_bytes() == digest
    listed = _cli(env, tmp_path, "data", "list")
    assert listed.returncode == 0 and "tickets" in listed.stdout
