"""The install (Makefile): the CPU wheel index is used only when given, and the torch it pins is the
project's. Read with `make -n -B` (print the commands, run nothing)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _install_commands(*variables: str) -> str:
    return subprocess.run(["make", "-n", "-B", "install", *variables], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_torch_comes_from_the_cpu_index_only_when_one_is_given():
    plain, cpu = _install_commands(), _install_commands(f"TORCH_INDEX={CPU_INDEX}")
    [torch_plain] = [line for line in plain.splitlines() if "torch==" in line]
    [torch_cpu] = [line for line in cpu.splitlines() if "torch==" in line]
    assert "index-url" not in torch_plain  # here: pip's own configuration (a local CPU wheel)
    assert f"--index-url {CPU_INDEX} torch==" in torch_cpu
    # Everything else is the same both ways (the index is for torch only).
    assert plain.replace(torch_plain, "") == cpu.replace(torch_cpu, "")
    pinned = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                  if d.startswith("torch=="))
    assert re.search(r"torch==[\w.]+", torch_cpu).group(0) == pinned  # the Makefile installs the pinned torch
