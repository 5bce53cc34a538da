"""[trust] calibration of blind-review verdicts: simulated studies with a known truth.

Each study: `prompts` prompts, `raters` votes per prompt drawn from a pool of five raters. A
prompt has its own preference (prompts differ strongly: on half of them side a wins a vote with
probability mean + spread, on the other half mean - spread); a vote is a tie with probability
TIE, else side a wins with the prompt's probability (plus the rater's bias). The truth is the
expected vote score (win 1, tie 0.5, loss 0) over prompts and the rater pool; a Bradley-Terry
truth is its logit on the Elo scale.

New (core.review.stats, the product's code): win rate over prompts with the quasi-binomial score
interval and its test; the Bradley-Terry ladder's prompt bootstrap. Old (the vote-level method
tuneboard used before [trust], reproduced here for comparison only): Wilson interval over votes
with ties as half, the sign test without ties for "significant", and a bootstrap of votes.

For two variants the Bradley-Terry fit is closed-form (log of the tie-split win ratio with the
ladder's 0.01 pseudo-wins each way), so its bootstrap is computed here without refitting;
tests/test_trust_simulation.py checks that closed form against core's bradley_terry.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom, norm

from core.review.stats import ELO_SCALE, _rates, small_sample_widen

TIE = 0.15
POOL = 5
LEVEL = 0.95
PRIOR = 0.01  # core.review.stats.bt_fit_many's pseudo-wins
BT_ROUNDS = 1000  # the ladder's default (review.bootstrap_rounds)

# (name, mean chance that a wins a decisive vote, spread between prompts, bias of rater 0)
SCENARIOS = [("null", 0.5, 0.35, 0.0), ("better", 0.62, 0.3, 0.0), ("biased rater", 0.5, 0.35, 0.25)]


def simulate(studies: int, prompts: int, raters: int, mean: float, spread: float, bias: float,
             rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Vote scores (studies, prompts, raters) and the true expected score."""
    side = np.where(rng.random((studies, prompts)) < 0.5, 1.0, -1.0)
    q = np.clip(mean + spread * side, 0.0, 1.0)
    who = np.argsort(rng.random((studies, prompts, POOL)), axis=2)[:, :, :raters]  # k distinct raters
    shift = np.where(who == 0, bias, 0.0)
    p_a = np.clip(q[:, :, None] + shift, 0.0, 1.0)
    tie = rng.random(p_a.shape) < TIE
    scores = np.where(tie, 0.5, (rng.random(p_a.shape) < p_a).astype(float))
    biases = np.array([bias] + [0.0] * (POOL - 1))
    q_values = np.clip(mean + spread * np.array([1.0, -1.0]), 0.0, 1.0)
    truth_a = np.clip(q_values[:, None] + biases[None, :], 0.0, 1.0).mean()
    return scores, TIE * 0.5 + (1 - TIE) * float(truth_a)


def _new_rates(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = scores.mean(axis=2)
    _, lo, hi, _, _ = _rates(m.sum(axis=1), (m * m).sum(axis=1), np.full(len(m), m.shape[1]), LEVEL)
    return lo, hi, (lo > 0.5) | (hi < 0.5)


def _old_rates(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = scores.reshape(len(scores), -1)
    n = flat.shape[1]
    wins, losses = (flat == 1.0).sum(axis=1), (flat == 0.0).sum(axis=1)
    p = flat.mean(axis=1)
    z = norm.ppf(0.5 + LEVEL / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    sign_p = np.minimum(1.0, 2 * binom.cdf(np.minimum(wins, losses), wins + losses, 0.5))
    return centre - half, centre + half, sign_p < 1 - LEVEL


def _rating(share_a: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Variant a's ladder rating (ratings centred on 1000) from its tie-split share of `total` votes."""
    w_ab, w_ba = share_a * total + PRIOR, (1 - share_a) * total + PRIOR
    return 1000 + ELO_SCALE * np.log(w_ab / w_ba) / 2


def _bt_cover(scores: np.ndarray, truth: float, rng: np.random.Generator) -> tuple[float, float]:
    """(new, old) coverage of the ladder's interval for variant a's rating, BT_ROUNDS rounds each."""
    target = 1000 + ELO_SCALE * math.log(truth / (1 - truth)) / 2
    q = (1 - LEVEL) / 2
    studies, prompts, raters = scores.shape
    total = prompts * raters
    per_prompt = scores.sum(axis=2)
    point = _rating(per_prompt.sum(axis=1) / total, total)
    flat = scores.reshape(studies, -1)
    shares = np.stack([(flat == 1.0).mean(axis=1), (flat == 0.0).mean(axis=1), (flat == 0.5).mean(axis=1)], axis=1)
    new_hits = old_hits = 0
    block = max(1, 2_000_000 // (BT_ROUNDS * prompts))
    for start in range(0, studies, block):
        part = slice(start, min(studies, start + block))
        w = rng.multinomial(prompts, np.full(prompts, 1 / prompts), size=(part.stop - part.start, BT_ROUNDS))
        boot = _rating(np.einsum("srp,sp->sr", w, per_prompt[part]) / total, total)  # prompts resampled
        lo, hi = small_sample_widen(point[part], *np.quantile(boot, [q, 1 - q], axis=1), prompts, LEVEL)
        new_hits += int(((lo <= target) & (target <= hi)).sum())
        for s in range(part.start, part.stop):  # votes resampled (the old method)
            counts = rng.multinomial(total, shares[s], size=BT_ROUNDS)
            boot = _rating((counts[:, 0] + 0.5 * counts[:, 2]) / total, total)
            lo, hi = np.quantile(boot, [q, 1 - q])
            old_hits += lo <= target <= hi
    return new_hits / studies, old_hits / studies


def calibrate(studies: int = 1000, seed: int = 0, bt_studies: int | None = None) -> list[dict]:
    """One row per grid point (prompts x raters x scenario): false-positive rate (null), power
    (better), interval coverage (all), new beside old; Bradley-Terry coverage on `bt_studies`."""
    rng = np.random.default_rng(seed)
    rows = []
    for prompts in (24, 100, 400):
        for raters in (1, 3, 5):
            for name, mean, spread, bias in SCENARIOS:
                scores, truth = simulate(studies, prompts, raters, mean, spread, bias, rng)
                lo, hi, sig = _new_rates(scores)
                olo, ohi, osig = _old_rates(scores)
                null = name == "null"
                bt_new, bt_old = _bt_cover(scores[: bt_studies or studies], truth, rng)
                rows.append({
                    "part": "review", "point": f"{prompts} prompts x {raters} raters, {name}", "studies": studies,
                    "fpr": float(sig.mean()) if null else None, "old_fpr": float(osig.mean()) if null else None,
                    "power": None if null or bias else float(sig.mean()),
                    "old_power": None if null or bias else float(osig.mean()),
                    "coverage": float(((lo <= truth) & (truth <= hi)).mean()),
                    "old_coverage": float(((olo <= truth) & (truth <= ohi)).mean()),
                    "bt_coverage": bt_new, "old_bt_coverage": bt_old,
                    "note": f"truth {truth:.3f}",
                })
    return rows
