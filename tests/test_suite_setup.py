"""The suite's own machinery (tests/conftest.py): shared fixtures built once per run, however
many workers ask for them at the same moment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUILD = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.conftest import built_once

class Factory:  # what built_once reads of pytest's TempPathFactory
    def getbasetemp(self):
        return Path({base!r}) / os.environ["PYTEST_XDIST_WORKER"]

def build(folder):
    folder.mkdir(parents=True)
    with open({log!r}, "a") as log:
        log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    time.sleep(1.0)  # long enough for the other worker to arrive while this one builds
    (folder / "weights").write_text("w")

folder = built_once(Factory(), "model", build)
print(folder, (folder / "weights").read_text())
"""


def test_two_workers_asking_at_once_build_the_fixture_once(tmp_path):
    log = tmp_path / "builds.log"
    code = BUILD.format(root=str(ROOT), base=str(tmp_path), log=str(log))
    workers = [subprocess.Popen([sys.executable, "-c", code], env={"PYTEST_XDIST_WORKER": f"gw{i}", "PATH": "/usr/bin"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    assert len(log.read_text().splitlines()) == 1  # one build
    shared = tmp_path / "built-once" / "model"
    assert {out.strip() for out, _ in outputs} == {f"{shared} w"}  # both got the same, finished folder
