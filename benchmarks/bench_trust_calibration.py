"""[trust] calibration: are tuneboard's verdicts right as often as they claim?

Simulated studies with a known truth, 1,000+ per grid point (benchmarks/trust_review.py,
trust_metrics.py, trust_gate.py say how each is drawn):
- reviews: 24, 100 and 400 prompts x 1, 3 and 5 raters per prompt; prompts that differ strongly,
  ties, a biased rater; the win rate's test and interval, the Bradley-Terry interval;
- binary metrics: n = 24, 100, 400 and true rates 0.5, 0.8, 0.95, 0.99 (and continuous ones);
- the regression gate: 7 categories of 50 and of 200 items.
Goals at every point: a false-positive rate <= 6.5% at nominal 5%, interval coverage >= 93% at
nominal 95%. Each row prints the method used before [trust] beside the new one, from the same
simulated studies. The figure is the worst point; the ratio is the old worst false-positive rate
over the new one.
"""

from __future__ import annotations

from benchmarks import trust_gate, trust_metrics, trust_review
from benchmarks.result import Result

STUDIES = 1000
FPR_GOAL, COVERAGE_GOAL = 0.065, 0.93


def _f(x) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def _coverages(row: dict) -> list[float]:
    return [row[k] for k in ("coverage", "bt_coverage") if row.get(k) is not None]


def run() -> Result:
    rows = (trust_review.calibrate(STUDIES, seed=0) + trust_metrics.calibrate(STUDIES, seed=0)
            + trust_gate.calibrate(STUDIES, seed=0))
    print(f"{'part':8} {'point':44} {'fpr':>6} {'(old)':>6} {'cover':>6} {'(old)':>6} {'power':>6} {'(old)':>6} "
          f"{'BT cov':>6} {'(old)':>6}")
    misses = []
    for r in rows:
        print(f"{r['part']:8} {r['point'][:44]:44} {_f(r['fpr']):>6} {_f(r.get('old_fpr')):>6} "
              f"{_f(r['coverage']):>6} {_f(r.get('old_coverage')):>6} {_f(r.get('power')):>6} "
              f"{_f(r.get('old_power')):>6} {_f(r.get('bt_coverage')):>6} {_f(r.get('old_bt_coverage')):>6}"
              + (f"  {r['note']}" if r.get("note") else ""), flush=True)
        if r["fpr"] is not None and r["fpr"] > FPR_GOAL:
            misses.append(f"{r['part']} {r['point']}: fpr {r['fpr']:.3f}")
        misses += [f"{r['part']} {r['point']}: coverage {c:.3f}" for c in _coverages(r) if c < COVERAGE_GOAL]
    fprs = [r["fpr"] for r in rows if r["fpr"] is not None]
    old_fprs = [r["old_fpr"] for r in rows if r.get("old_fpr") is not None]
    covers = [c for r in rows for c in _coverages(r)]
    for miss in misses:
        print(f"MISSED: {miss}")
    worst_fpr, worst_cover = max(fprs), min(covers)
    return Result("trust_calibration",
                  f"worst fpr {worst_fpr:.3f}, worst coverage {worst_cover:.3f} over {len(rows)} points x {STUDIES} "
                  "studies",
                  f"old worst fpr {max(old_fprs):.3f} / new", max(old_fprs) / max(worst_fpr, 1e-9),
                  f"fpr<={FPR_GOAL}, coverage>={COVERAGE_GOAL}", not misses)
