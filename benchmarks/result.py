"""The one line a benchmark reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    name: str
    figure: str        # what was measured, with units
    comparison: str    # the two things compared
    ratio: float       # baseline / ours (higher is better) unless the goal says otherwise
    goal: str
    passed: bool
