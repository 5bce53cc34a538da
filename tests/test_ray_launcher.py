"""RayJobsLauncher against a real single-node Ray cluster on loopback (the many-machines path).

The cluster is started once for the module (about 12-17 s on 2 cores), in its own temp dir,
process group and free ports, and torn down by killing that process group only: `ray stop`
would stop every Ray cluster this user runs on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.job_submission", reason="ray is not installed (pip install 'ray[default]'); "
                    "the Ray launcher cannot be tested")

from core.config import load_settings  # noqa: E402
from core.errors import ConfigError, JobError  # noqa: E402
from core.jobs import Jobs  # noqa: E402
from core.jobs.launchers import RAY_JOB_FILE, RayJobsLauncher  # noqa: E402
from core.owner import training_launchers  # noqa: E402

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="module")
def ray_address():
    """A head node on 127.0.0.1 with the dashboard (the Jobs API); yields its http address."""
    temp_dir = tempfile.mkdtemp(prefix="tbray", dir="/tmp")  # short: Ray's unix sockets live under it
    dashboard_port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address", "127.0.0.1",
               "--port", "0", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
               "--dashboard-agent-listen-port", str(_free_port()), "--ray-client-server-port", str(_free_port()),
               "--num-cpus", "2", "--include-dashboard", "true", "--disable-usage-stats", "--temp-dir", temp_dir]
    began = time.monotonic()
    # Its own session: every daemon `ray start` leaves behind stays in this process group.
    proc = subprocess.Popen(command, cwd=temp_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    pgid = proc.pid
    try:
        try:
            output, _ = proc.communicate(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`ray start` did not finish within {START_TIMEOUT_S} s")
        if proc.returncode != 0:
            pytest.fail(f"`ray start` failed ({proc.returncode}):\n{output[-3000:]}")
        print(f"ray head node up in {time.monotonic() - began:.1f} s")
        yield f"http://127.0.0.1:{dashboard_port}"
    finally:
        for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
            if not _group_alive(pgid):
                break
            os.killpg(pgid, sig)
            deadline = time.monotonic() + wait_s
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def launcher(ray_address, monkeypatch) -> RayJobsLauncher:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    # The venv's interpreter: the cluster's processes need not have it first on their PATH.
    return RayJobsLauncher(ray_address, python=sys.executable, stop_grace_s=10)


@pytest.fixture
def jobs(owner, launcher) -> Jobs:
    return Jobs(owner.store, owner.settings.runs_dir, launchers={"ticker": launcher})


def _ray_status(launcher: RayJobsLauncher, job: dict) -> str:
    """Ray's final status of the job: the worker's last event can come before Ray notices its exit."""
    submission_id = launcher.submission_id(job["job_id"], job["pid"])
    deadline = time.monotonic() + 30
    while True:
        status = str(launcher._client().get_job_status(submission_id).value)
        if status not in RayJobsLauncher.ALIVE or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _wait_started(jobs: Jobs, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while not jobs.events(job_id, "started") and time.monotonic() < deadline:
        jobs.ingest(job_id)
        time.sleep(0.05)
    assert jobs.events(job_id, "started"), "the worker never started on the cluster"


def test_ticker_runs_on_the_cluster_and_is_ingested_once(jobs, launcher, accounts):
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 5, "interval": 0.05})
    job = jobs.wait(job_id, timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert [e["step"] for e in jobs.events(job_id, "tick")] == [1, 2, 3, 4, 5]
    assert jobs.ingest(job_id).events == 0
    jobs.reconcile()
    assert jobs.store.scalar("SELECT count(*) FROM job_events WHERE job_id = ?", [job_id]) == 7
    record = json.loads(Path(job["run_dir"], RAY_JOB_FILE).read_text())
    assert record["submission_id"] == launcher.submission_id(job_id, job["pid"])
    assert 0 < job["pid"] < 2**31
    assert _ray_status(launcher, job) == "SUCCEEDED"
    assert not launcher.alive(job_id, job["pid"])


def test_cancel_stops_the_ray_job(jobs, launcher, accounts):
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 2000, "interval": 0.05})
    _wait_started(jobs, job_id)
    jobs.cancel(accounts["engineer"], job_id)
    job = jobs.wait(job_id, timeout=60)
    assert job["status"] == "cancelled"
    assert jobs.events(job_id)[-1]["type"] == "cancelled"
    assert _ray_status(launcher, job) in ("STOPPED", "SUCCEEDED")  # stop_job or the cancel file, whichever first


def test_stop_job_alone_terminates_the_worker(jobs, launcher, accounts):
    """Without the cancel file: Ray's SIGTERM reaches the worker, which reports 'cancelled'."""
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 2000, "interval": 0.05})
    _wait_started(jobs, job_id)
    job = jobs.get(job_id)
    launcher.stop(job_id, job["pid"])
    job = jobs.wait(job_id, timeout=60)
    assert job["status"] == "cancelled"
    assert _ray_status(launcher, job) == "STOPPED"


def test_failing_worker_is_marked_failed_with_its_log(jobs, accounts):
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 8, "interval": 0.01, "fail_at": 3})
    job = jobs.wait(job_id, timeout=120)
    assert job["status"] == "failed"
    assert "failing on purpose at step 3" in job["error"]
    assert [e["step"] for e in jobs.events(job_id, "tick")] == [1, 2]


def test_unreachable_cluster_fails_the_launch_with_a_message(owner, accounts, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    address = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    jobs = Jobs(owner.store, owner.settings.runs_dir, launchers={"ticker": RayJobsLauncher(address, timeout_s=5)})
    with pytest.raises(JobError, match="cannot be reached"):
        jobs.submit(accounts["engineer"], "ticker", {"steps": 1})
    job = jobs.list(accounts["engineer"], "ticker")[0]
    assert job["status"] == "failed" and address in job["error"]
    # A running job whose cluster is unreachable stays running: the next reconcile asks again.
    assert RayJobsLauncher(address, timeout_s=5).alive(job["job_id"], 12345)


def test_settings_choose_the_ray_launcher_for_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray tuneboard.toml
    env = {"TUNEBOARD_TRAINING_LAUNCHER": "ray", "TUNEBOARD_TRAINING_RAY_ADDRESS": "http://head:8265/"}
    launcher = training_launchers(load_settings(env=env))
    assert isinstance(launcher["train"], RayJobsLauncher) and launcher["train"].address == "http://head:8265"
    with pytest.raises(ConfigError, match="training.ray_address"):
        load_settings(env={**env, "TUNEBOARD_TRAINING_RAY_ADDRESS": "head:6379"})


def test_a_run_on_a_cluster_that_stops_answering_fails_after_the_grace_and_its_late_events_are_shown(
        jobs, launcher, accounts, ray_address):
    """The cluster's dashboard stops answering (here: the launcher is pointed at a port nothing listens on)
    while the worker runs on. Within `unreachable_grace_s` the run stays running; past it, it fails with the
    reason; what the worker writes afterwards is still taken in and shown, and the run stays failed."""
    job_id = jobs.submit(accounts["engineer"], "ticker", {"steps": 60, "interval": 0.05})
    _wait_started(jobs, job_id)
    launcher.unreachable_grace_s = 1.0
    launcher.address, launcher._client_cache = f"http://127.0.0.1:{_free_port()}", None
    launcher.timeout_s = 2
    jobs.reconcile()
    assert jobs.get(job_id)["status"] == "running"  # a blip is not a death
    time.sleep(1.2)
    jobs.reconcile()
    job = jobs.get(job_id)
    assert job["status"] == "failed" and "could not be reached for 1 s" in job["error"] and job["lost"]
    seen = len(jobs.events(job_id, "tick"))
    run_dir = Path(job["run_dir"])
    deadline = time.monotonic() + 60
    while '"finished"' not in (run_dir / "events.jsonl").read_text() and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker runs on, on the cluster
    jobs.reconcile()
    job = jobs.get(job_id)
    assert [e["step"] for e in jobs.events(job_id, "tick")] == list(range(1, 61)) and seen < 60
    assert job["status"] == "failed" and "Later its worker reported 'finished'" in job["error"]
    launcher.address, launcher._client_cache = ray_address, None  # the cluster answers again
    assert not launcher.alive(job_id, job["pid"]) or _ray_status(launcher, job) == "SUCCEEDED"
