"""Statistics over blind A/B preference votes: win rates, Bradley-Terry ratings with
bootstrap intervals, rater agreement, position bias, robustness and rater quality.

Input is a votes frame (columns item, rater, a, b, outcome, first, seconds, gold,
gold_better, and prompt: the prompt a pair is about; without it each pair is its own prompt).
Gold rows only ever judge raters; every other statistic drops them.

The rules every figure follows are stated once, below: UNIT_RULE (the prompt is the unit of
analysis, never the vote) and TIE_RULE (a tie or both-bad is half a win to each side).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm
from scipy.stats import t as student_t

from core.errors import InvalidInput

OUTCOMES = ("a", "b", "tie", "both_bad")
VOTE_COLUMNS = ["item", "rater", "a", "b", "outcome", "first", "seconds", "gold", "gold_better"]
ELO_SCALE = 400 / math.log(10)
LADDER_COLUMNS = ["variant", "strength", "rating", "lo", "hi", "rank", "rank_lo", "rank_hi", "n"]
COMPARISON_COLUMNS = ["a", "b", "wins", "ties", "both_bad", "losses", "n", "prompts", "raters", "rate", "lo", "hi",
                      "p", "significant", "winner", "dispersion", "rate_without_low", "rater_low",
                      "rate_without_high", "rater_high", "raters_moving_verdict", "flips_winner",
                      "flips_significance", "more_prompts"]
PAIR_COLUMNS = ["rater_a", "rater_b", "n", "kappa"]
RATER_COLUMNS = ["rater", "votes", "gold_n", "gold_accuracy", "gold_note", "majority_agreement",
                 "median_seconds", "share_first", "flags"]


# ---------------------------------------------------------------- the rules, in one place

METHOD_VERSION = 2  # 1: votes as independent observations; 2: the prompt is the unit
TIE_RULE = ("A tie or 'both bad' counts as half a win to each side, everywhere: win rates, intervals, tests, "
            "the ladder, the verdict and the robustness figures.")
UNIT_RULE = ("The prompt is the unit: each prompt's score is the mean of its raters' votes (win 1, tie 0.5, "
             "loss 0); the win rate is the mean over prompts, and its interval and test treat prompts, not votes, "
             "as the independent observations.")
SCORES = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
PLAN_ICC = 0.3   # intra-class correlation of votes on one prompt assumed before a set has votes
PLAN_POWER = 0.8
GOLD_COMPETENT = 0.75  # a careful expert gets at least 3 in 4 gold pairs right
GOLD_RULE = ("'random?' is raised only on evidence: the whole interval of a rater's gold accuracy lies below 75% "
             "(or of their agreement with the other raters' majority, below 50%). Until their gold pairs can tell, "
             "gold_note says 'not enough gold pairs yet' (4 of 4 right is there, not flagged).")


def wilson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval; counts may be fractional."""
    if n <= 0:
        return 0.0, 1.0
    z = norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def _dispersion(sums: np.ndarray, sumsq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Variance of prompt scores over the most a [0, 1] score can vary at that mean, in (0, 1].

    Computed with one pseudo-prompt scored 0 and one scored 1 added: it stays defined when
    every prompt scores the same (all wins: 1, the binomial case; all ties: small, not 0),
    and shrinks towards the binomial case when there are few prompts.
    """
    m = (sums + 1.0) / (n + 2.0)
    var = (sumsq + 1.0 - (n + 2.0) * m * m) / (n + 1.0)
    return np.clip(var / (m * (1.0 - m)), 1e-6, 1.0)


def _rates(sums, sumsq, n, level: float) -> tuple[np.ndarray, ...]:
    """(rate, lo, hi, p, dispersion) of mean prompt scores, vectorised over studies/comparisons.

    A quasi-binomial score (Wilson) interval: Var(mean) = c * p(1 - p) / n, the dispersion c from
    the prompt scores (_dispersion), and Student's t with n - 1 degrees of freedom in place of
    the normal quantile. The test of 0.5 is the same score statistic, so p < 1 - level exactly
    when the interval excludes 0.5: the word and the interval cannot disagree. The interval
    stays inside [0, 1] and is never zero-wide (24 of 24 prompts won: about [0.86, 1]).
    """
    sums, sumsq, n = (np.asarray(x, dtype=float) for x in (sums, sumsq, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, sums / n, np.nan)
        c = _dispersion(sums, sumsq, n)
        n_eff = n / c
        df = np.maximum(n - 1.0, 1.0)
        q = student_t.ppf(0.5 + level / 2, df)
        q2 = q * q
        centre = (rate + q2 / (2 * n_eff)) / (1 + q2 / n_eff)
        half = q / (1 + q2 / n_eff) * np.sqrt(rate * (1 - rate) / n_eff + q2 / (4 * n_eff * n_eff))
        lo, hi = np.clip(np.fmin(centre - half, rate), 0.0, 1.0), np.clip(np.fmax(centre + half, rate), 0.0, 1.0)
        p = 2 * student_t.sf(np.abs(rate - 0.5) / np.sqrt(0.25 / n_eff), df)
    few = n < 2  # one prompt says nothing about the spread between prompts
    lo, hi, p = np.where(few, 0.0, lo), np.where(few, 1.0, hi), np.where(few, 1.0, p)
    return rate, lo, hi, p, c


@dataclass(frozen=True)
class PromptRate:
    """A win rate over prompts with its interval and test (see _rates)."""

    prompts: int
    rate: float
    lo: float
    hi: float
    p: float
    dispersion: float

    @property
    def significant(self) -> bool:
        return bool(self.lo > 0.5 or self.hi < 0.5)


def prompt_rate(scores: Sequence[float] | np.ndarray, level: float = 0.95) -> PromptRate:
    """Win rate of side a from one score per prompt (each in [0, 1])."""
    s = np.asarray(scores, dtype=float)
    if s.size and (np.isnan(s).any() or s.min() < 0 or s.max() > 1):
        raise InvalidInput("prompt scores must lie in [0, 1] (win 1, tie 0.5, loss 0, averaged over raters)")
    rate, lo, hi, p, c = _rates(s.sum(), (s * s).sum(), s.size, level)
    if s.size == 0:
        return PromptRate(0, math.nan, 0.0, 1.0, 1.0, math.nan)
    return PromptRate(int(s.size), float(rate), float(lo), float(hi), float(p), float(c))


def _normal(q: float) -> float:
    return float(norm.ppf(q))


@dataclass(frozen=True)
class Plan:
    """What a pair set can detect before a vote is cast."""

    prompts: int
    raters_per_prompt: int
    icc: float
    design_effect: float
    effective_votes: float
    detectable_rate: float  # the smallest win rate above 0.5 found with PLAN_POWER

    def sentence(self) -> str:
        return (f"With {self.prompts} prompts and {self.raters_per_prompt} rater(s) each, this set can tell a win rate "
                f"of {100 * self.detectable_rate:.0f}% (or {100 * (1 - self.detectable_rate):.0f}%) from a draw "
                f"{int(100 * PLAN_POWER)} times in 100 (the {self.prompts * self.raters_per_prompt} votes count as "
                f"{self.effective_votes:.0f} independent ones: votes on one prompt agree with an intra-class "
                f"correlation of {self.icc:.2f}).")


def plan(prompts: int, raters_per_prompt: int, icc: float | None = None, level: float = 0.95,
         power: float = PLAN_POWER) -> Plan:
    """The smallest detectable win rate of a design: prompts x raters, votes on a prompt correlated
    by `icc` (PLAN_ICC before a set has votes), no ties assumed (ties only make it easier)."""
    if prompts < 1 or raters_per_prompt < 1:
        raise InvalidInput("a plan needs at least one prompt and one rater per prompt")
    icc = PLAN_ICC if icc is None or not math.isfinite(icc) else min(1.0, max(0.0, float(icc)))
    k = int(raters_per_prompt)
    deff = 1 + (k - 1) * icc
    c = deff / k  # a prompt score's variance over a single vote's
    q = float(student_t.ppf(0.5 + level / 2, max(prompts - 1, 1)))
    zb = _normal(power)
    delta = 0.25
    for _ in range(50):  # delta = (q * 0.5 + zb * sqrt(p1 (1 - p1))) * sqrt(c / n), p1 = 0.5 + delta
        delta = min(0.5, (q * 0.5 + zb * math.sqrt(max(0.25 - delta * delta, 0.0))) * math.sqrt(c / prompts))
    return Plan(int(prompts), k, icc, deff, prompts * k / deff, 0.5 + delta)


def prompts_for_power(rate: float, dispersion: float, level: float = 0.95, power: float = PLAN_POWER) -> int | None:
    """Prompts (in all) that give `power` at the difference observed so far; None when it is 0."""
    delta = abs(rate - 0.5)
    if not math.isfinite(delta) or delta < 1e-9:
        return None
    q, zb = _normal(0.5 + level / 2), _normal(power)
    n = (q * 0.5 * math.sqrt(dispersion) + zb * math.sqrt(dispersion * rate * (1 - rate))) ** 2 / delta ** 2
    return max(2, math.ceil(n))


def _first_true(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """Smallest k in [lo, hi] with ok(k), for ok monotone False...True; ok(hi) must hold."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


# ---------------------------------------------------------------- votes frames

def _ballots(votes: pd.DataFrame) -> pd.DataFrame:
    """The non-gold votes, checked: these feed every statistic except rater quality."""
    if votes.empty:
        return pd.DataFrame(columns=VOTE_COLUMNS)
    missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
    if missing:
        raise InvalidInput(f"votes frame lacks columns {missing}; expected {VOTE_COLUMNS}")
    bad = sorted({str(o) for o in votes["outcome"].unique() if o not in OUTCOMES})
    if bad:
        raise InvalidInput(f"votes have unknown outcomes {bad}; expected one of {list(OUTCOMES)}")
    return votes[~votes["gold"].fillna(False).astype(bool)]


def _outcome_codes(votes: pd.DataFrame) -> np.ndarray:
    """0..3 in the order of OUTCOMES."""
    return votes["outcome"].map({o: i for i, o in enumerate(OUTCOMES)}).to_numpy(dtype=np.int64)


def _one_per_rater(ballots: pd.DataFrame) -> pd.DataFrame:
    """Agreement measures count each rater once per item; a repeated vote keeps the last."""
    return ballots.drop_duplicates(["item", "rater"], keep="last")


def _prompts(ballots: pd.DataFrame) -> pd.Series:
    """The prompt each vote is about: the `prompt` column, or the pair (`item`) when a frame has none."""
    return ballots["prompt"] if "prompt" in ballots.columns else ballots["item"]


def _scored(ballots: pd.DataFrame) -> pd.DataFrame:
    """a, b, prompt, rater, score (side a's, by TIE_RULE) of each vote."""
    return pd.DataFrame({"a": ballots["a"].to_numpy(), "b": ballots["b"].to_numpy(),
                         "prompt": _prompts(ballots).to_numpy(), "rater": ballots["rater"].astype(str).to_numpy(),
                         "score": ballots["outcome"].map(SCORES).to_numpy(dtype=float)})


def _by_prompt(g: pd.DataFrame) -> pd.DataFrame:
    """Per prompt: S (sum of vote scores), K (votes), m (the prompt's score)."""
    by = g.groupby("prompt", sort=True)["score"].agg(S="sum", K="size")
    by["m"] = by["S"] / by["K"]
    return by


def _without_each_rater(g: pd.DataFrame, by_prompt: pd.DataFrame, level: float) -> pd.DataFrame:
    """rate, lo, hi with each rater's votes left out in turn (a prompt only they rated drops out)."""
    pr = g.groupby(["prompt", "rater"], sort=False)["score"].agg(["sum", "size"]).reset_index()
    pr = pr.join(by_prompt, on="prompt")
    left = (pr["K"] - pr["size"]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(left > 0, (pr["S"] - pr["sum"]).to_numpy() / left, 0.0)
    m_p = pr["m"].to_numpy()
    pr["d_sum"] = mean - m_p
    pr["d_sumsq"] = mean * mean - m_p * m_p
    pr["d_n"] = np.where(left > 0, 0, -1)
    per = pr.groupby("rater", sort=True)[["d_sum", "d_sumsq", "d_n"]].sum()
    m = by_prompt["m"].to_numpy()
    rate, lo, hi, _, _ = _rates(m.sum() + per["d_sum"].to_numpy(), (m * m).sum() + per["d_sumsq"].to_numpy(),
                                len(m) + per["d_n"].to_numpy(), level)
    return pd.DataFrame({"rate": rate, "lo": lo, "hi": hi}, index=per.index)


def _flips(g: pd.DataFrame, by_prompt: pd.DataFrame, level: float) -> tuple[int, int]:
    """(flips to lose the leader, flips to change whether the difference is significant).

    A flip turns one vote against the current leader (a win into a loss, or a tie into a loss)
    or, while the difference is not significant, towards it (a loss or a tie into a win). Votes
    are flipped in the order that moves the win rate most (a whole win before a tie, a prompt with
    fewer raters first), so the first count is the fewest possible. -1: flipping every such vote
    does not change it.
    """
    n = len(by_prompt)
    m = by_prompt["m"].to_numpy()
    leader_is_a = m.mean() >= 0.5
    score = g["score"].to_numpy() if leader_is_a else 1.0 - g["score"].to_numpy()
    prompt = by_prompt.index.get_indexer(g["prompt"])
    K = by_prompt["K"].to_numpy()[prompt]
    start = m if leader_is_a else 1.0 - m

    def path(step: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Win rates and significance after 0, 1, 2, ... flips along the best order."""
        idx = np.flatnonzero(usable)
        effect = step[idx] / K[idx]
        order = np.argsort(-np.abs(effect), kind="stable")
        idx, effect = idx[order], effect[order]
        p_of = prompt[idx]
        earlier = pd.Series(effect).groupby(p_of).cumsum().to_numpy() - effect
        before = start[p_of] + earlier
        after = before + effect
        sums = start.sum() + np.concatenate([[0.0], np.cumsum(effect)])
        sumsq = (start * start).sum() + np.concatenate([[0.0], np.cumsum(after * after - before * before)])
        rate, lo, hi, _, _ = _rates(sums, sumsq, np.full(len(sums), n), level)
        return rate, (lo > 0.5) | (hi < 0.5)

    rate, significant = path(np.where(score == 1.0, -1.0, -0.5), score > 0)
    lost = np.flatnonzero(rate <= 0.5 + 1e-12)
    to_winner = int(lost[0]) if len(lost) else -1
    if significant[0]:
        changed = np.flatnonzero(~significant)
    else:
        _, significant = path(np.where(score == 0.0, 1.0, 0.5), score < 1)
        changed = np.flatnonzero(significant)
    return to_winner, int(changed[0]) if len(changed) else -1


def icc_oneway(groups: Sequence | np.ndarray, values: Sequence[float] | np.ndarray,
               strata: Sequence | np.ndarray | None = None) -> float:
    """One-way random-effects intra-class correlation ICC(1) (Shrout & Fleiss 1979), with the
    unequal-group-size correction k0; `strata` (e.g. the comparison) give each its own mean.
    nan without a group of two or more; clipped to [0, 1]."""
    frame = pd.DataFrame({"g": np.asarray(groups), "x": np.asarray(values, dtype=float),
                          "s": 0 if strata is None else np.asarray(strata)})
    by = frame.groupby(["s", "g"], sort=False)["x"]
    k = by.size().to_numpy(dtype=float)
    if (k >= 2).sum() == 0:
        return math.nan
    N, g, c = k.sum(), len(k), frame["s"].nunique()
    means = by.transform("mean")
    grand = frame.groupby("s")["x"].transform("mean")
    msb = float(((means - grand) ** 2).sum()) / max(g - c, 1)
    msw = float(((frame["x"] - means) ** 2).sum()) / max(N - g, 1)
    k0 = (N - (k * k).sum() / N) / max(g - c, 1)
    if msb + (k0 - 1) * msw <= 0:
        return math.nan
    return float(min(1.0, max(0.0, (msb - msw) / (msb + (k0 - 1) * msw))))


def icc(votes: pd.DataFrame) -> float:
    """Intra-class correlation of vote scores on one prompt (icc_oneway), comparisons as strata.
    0: votes on one prompt agree no more than votes on different prompts; nan before any prompt
    has two votes. It sets the design effect of the set's plan (plan)."""
    scored = _scored(_one_per_rater(_ballots(votes)))
    if scored.empty:
        return math.nan
    return icc_oneway(scored["prompt"], scored["score"], scored["a"] + "\x00" + scored["b"])


def comparisons(votes: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per compared pair of variants (a, b): side a's win rate over prompts (UNIT_RULE,
    TIE_RULE) with its interval and test (_rates), the units (votes, prompts, raters), the lowest
    and highest rate with one rater left out (and the raters whose removal would change the
    verdict), flip counts (_flips), and, while not significant, how many more prompts would give
    80% power at the rate seen so far."""
    ballots = _ballots(votes)
    if ballots.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    scored = _scored(ballots)
    outcome = ballots["outcome"].to_numpy()
    rows = []
    for (a, b), g in scored.groupby(["a", "b"], sort=True):
        by_prompt = _by_prompt(g)
        r = prompt_rate(by_prompt["m"].to_numpy(), level)
        counts = pd.Series(outcome[g.index]).value_counts()
        without = _without_each_rater(g, by_prompt, level)
        if len(without) >= 2:
            low, high = without["rate"].idxmin(), without["rate"].idxmax()
            sig = ((without["lo"] > 0.5) | (without["hi"] < 0.5)).to_numpy()
            side = np.sign(without["rate"].to_numpy() - 0.5)
            moves = (sig != r.significant) | (sig & (side != np.sign(r.rate - 0.5)))
            loo = [float(without.loc[low, "rate"]), str(low), float(without.loc[high, "rate"]), str(high),
                   ", ".join(str(x) for x in without.index[moves])]
        else:
            loo = [math.nan, None, math.nan, None, ""]
        flips_winner, flips_sig = _flips(g, by_prompt, level)
        needed = None if r.significant else prompts_for_power(r.rate, r.dispersion, level)
        winner = a if r.rate > 0.5 else b if r.rate < 0.5 else None
        rows.append([a, b, int(counts.get("a", 0)), int(counts.get("tie", 0)), int(counts.get("both_bad", 0)),
                     int(counts.get("b", 0)), len(g), r.prompts, int(g["rater"].nunique()), r.rate, r.lo, r.hi, r.p,
                     r.significant, winner, r.dispersion, *loo, flips_winner, flips_sig,
                     None if needed is None else max(0, needed - r.prompts)])
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)

# ---------------------------------------------------------------- Bradley-Terry

def bt_fit_many(W: np.ndarray, prior: float = 0.01, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Bradley-Terry MLE log-strengths, centred, for a stack of win matrices (R, n, n).

    W[r, i, j] = wins of i over j in round r (ties already split half and half). Newton's
    method on the concave log-likelihood, all rounds at once. `prior` pseudo-wins are added
    each way between every pair: without them a variant with no wins sits at -infinity and
    a disconnected comparison graph has no unique answer; 0.01 of a vote moves real ladders
    by far less than their bootstrap intervals. prior=0 gives the plain MLE (which then
    needs a connected graph in which every variant both wins and loses).
    """
    W = np.array(W, dtype=float)
    R, n, _ = W.shape
    off = 1.0 - np.eye(n)
    W = W * off + prior * off
    N = W + W.transpose(0, 2, 1)
    wins = W.sum(axis=2)
    s = np.zeros((R, n))
    # The log-likelihood ignores a common shift; adding the all-ones matrix to the
    # (Laplacian) Hessian pins that direction without changing the step elsewhere.
    ones = np.ones((n, n))
    for _ in range(max_iter):
        P = 1.0 / (1.0 + np.exp(s[:, None, :] - s[:, :, None]))  # P[r, i, j] = P(i beats j)
        grad = wins - (N * P).sum(axis=2)
        Q = N * P * (1.0 - P)
        A = -Q + np.eye(n) * Q.sum(axis=2)[:, :, None] + ones
        step = np.linalg.solve(A, grad[..., None])[..., 0]
        # Damping: far-off optima (a variant that almost never wins) are reached in a few
        # bounded steps instead of an overshoot.
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(big, 1e-300))
        s += step
        s -= s.mean(axis=1, keepdims=True)
        if big.max() < tol:
            break
    return s


def bt_fit(wins_matrix: np.ndarray, prior: float = 0.01) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0) from one n x n win matrix; see bt_fit_many."""
    return bt_fit_many(np.asarray(wins_matrix, dtype=float)[None], prior=prior)[0]


@dataclass(frozen=True)
class _Tally:
    """Votes collapsed into cells (a, b, kind); `vote_cell` maps each vote to its cell."""

    variants: list[str]
    cell_a: np.ndarray   # index of a
    cell_b: np.ndarray   # index of b
    kind: np.ndarray     # 0: a won, 1: b won, 2: tie or both bad (TIE_RULE: half each way)
    count: np.ndarray
    vote_cell: np.ndarray

    def matrices(self, counts: np.ndarray) -> np.ndarray:
        """Win matrices (R, n, n) from cell counts (R, K)."""
        n = len(self.variants)
        share = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])[self.kind]  # to (a over b, b over a)
        M = np.zeros((len(self.kind), n * n))
        cells = np.arange(len(self.kind))
        np.add.at(M, (cells, self.cell_a * n + self.cell_b), share[:, 0])
        np.add.at(M, (cells, self.cell_b * n + self.cell_a), share[:, 1])
        return (np.atleast_2d(counts) @ M).reshape(-1, n, n)


def _tally(ballots: pd.DataFrame) -> _Tally:
    codes, variants = pd.factorize(pd.concat([ballots["a"], ballots["b"]], ignore_index=True), sort=True)
    n, rows = len(variants), len(ballots)
    kind = _outcome_codes(ballots).clip(max=2)  # tie and both-bad weigh the same (TIE_RULE)
    cells, vote_cell, count = np.unique((codes[:rows] * n + codes[rows:]) * 3 + kind, return_inverse=True,
                                        return_counts=True)
    return _Tally([str(v) for v in variants], cells // 3 // n, cells // 3 % n, cells % 3, count, vote_cell.ravel())


def small_sample_widen(point, lo, hi, prompts: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap bounds moved away from the point by t(n-1)/z * sqrt(n/(n-1)), n prompts.

    The bootstrap's spread is the plug-in one (divisor n) and its quantiles are normal-like; with
    24 prompts the ladder's percentile intervals covered 91% at nominal 95% in the [trust]
    simulations. This is the same correction a t interval makes over a z interval (1.08 at 24
    prompts, 1.004 at 400); benchmarks/trust_review.py measures the coverage it gives.
    """
    point, lo, hi = (np.asarray(x, dtype=float) for x in (point, lo, hi))
    if prompts < 2:
        return lo, hi
    z = norm.ppf(0.5 + level / 2)
    f = student_t.ppf(0.5 + level / 2, prompts - 1) / z * math.sqrt(prompts / (prompts - 1))
    return point - f * np.maximum(point - lo, 0.0), point + f * np.maximum(hi - point, 0.0)


def _prompt_bootstrap(ballots: pd.DataFrame, tally: _Tally, rounds: int, seed: int,
                      block: int = 100) -> Iterator[np.ndarray]:
    """Cell counts (b, K) of `rounds` bootstrap samples of prompts, `block` rounds at a time.

    A prompt is drawn with all its votes (in every comparison it appears in). Prompts whose votes
    fall in the same cells (same pair, same outcomes) are interchangeable, so drawing P prompts
    with replacement is one multinomial draw over these kinds of prompt, weighted by how many
    prompts each kind has: hundreds of categories instead of tens of thousands of prompts.
    """
    prompt, _ = pd.factorize(_prompts(ballots))
    K = len(tally.count)
    pairs, votes = np.unique(prompt.astype(np.int64) * K + tally.vote_cell, return_counts=True)
    pair_prompt, pair_cell = pairs // K, pairs % K
    signature = pd.Series(pair_cell * (int(votes.max()) + 1) + votes).groupby(pair_prompt).agg(tuple)
    kind_of, kinds = pd.factorize(signature)
    P = len(kind_of)
    per_kind = np.zeros((len(kinds), K))
    first = np.unique(kind_of, return_index=True)[1]  # one prompt of each kind
    rows = signature.index.to_numpy()[first]
    mask = np.isin(pair_prompt, rows)
    np.add.at(per_kind, (kind_of[np.searchsorted(signature.index.to_numpy(), pair_prompt[mask])],
                         pair_cell[mask]), votes[mask])
    share = np.bincount(kind_of, minlength=len(kinds)) / P
    rng = np.random.default_rng(seed)
    for start in range(0, rounds, block):
        yield rng.multinomial(P, share, size=min(block, rounds - start)) @ per_kind


def _ranks(s: np.ndarray) -> np.ndarray:
    """1 + number of variants strictly stronger (shared ranks on exact ties), along the last axis."""
    return 1 + (s[..., None, :] > s[..., :, None]).sum(axis=-1)


def bradley_terry(votes: pd.DataFrame, rounds: int = 1000, level: float = 0.95, seed: int = 0,
                  anchor: str | None = None) -> pd.DataFrame:
    """Ladder of variants: BT strength, Elo-like rating, percentile bootstrap CIs and rank ranges.

    The bootstrap resamples prompts, each with all its votes (UNIT_RULE; _prompt_bootstrap), and
    fits a block of rounds at once.
    """
    ballots = _ballots(votes)
    if ballots.empty:
        return pd.DataFrame(columns=LADDER_COLUMNS)
    tally = _tally(ballots)
    variants = tally.variants
    if anchor is not None and anchor not in variants:
        raise InvalidInput(f"anchor {anchor!r} is not among the rated variants {variants}")
    ref = variants.index(anchor) if anchor is not None else None

    def rating(s: np.ndarray) -> np.ndarray:
        base = s[..., [ref]] if ref is not None else 0.0  # s is centred: mean rating 1000
        return ELO_SCALE * (s - base) + 1000.0

    s = bt_fit(tally.matrices(tally.count)[0])
    point, rank = rating(s), _ranks(s)
    if rounds > 0:
        boot = np.concatenate([bt_fit_many(tally.matrices(counts))
                               for counts in _prompt_bootstrap(ballots, tally, rounds, seed)])
        q = (1 - level) / 2
        lo, hi = small_sample_widen(point, *np.quantile(rating(boot), [q, 1 - q], axis=0),
                                    int(_prompts(ballots).nunique()), level)
        boot_ranks = _ranks(boot)
        rank_lo = np.quantile(boot_ranks, q, axis=0, method="lower").astype(int)
        rank_hi = np.quantile(boot_ranks, 1 - q, axis=0, method="higher").astype(int)
    else:
        lo = hi = np.full(len(variants), math.nan)
        rank_lo = rank_hi = rank
    involved = pd.concat([ballots["a"], ballots["b"]]).value_counts()
    ladder = pd.DataFrame({"variant": variants, "strength": s, "rating": point, "lo": lo, "hi": hi,
                           "rank": rank, "rank_lo": rank_lo, "rank_hi": rank_hi,
                           "n": [int(involved.get(v, 0)) for v in variants]})
    return ladder.sort_values(["rating", "variant"], ascending=[False, True], ignore_index=True)


def leader_robustness(votes: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Fewest head-to-head votes between the BT leader and runner-up that, flipped to the
    runner-up, dethrone the leader (its strength no longer strictly the highest).

    The leader's wins over the runner-up are flipped first (a win moves a whole vote, a tie
    half), then ties and both-bad votes. The leader's lead shrinks monotonically with the
    flips, so a binary search refits only O(log n) times. flips = -1 when flipping every
    such vote is not enough (or they never met). `alpha` is unused; it keeps the signature
    in line with the other robustness functions.
    """
    ballots = _ballots(votes)
    tally = _tally(ballots) if not ballots.empty else None
    if tally is None or len(tally.variants) < 2:
        return {"leader": None, "runner_up": None, "flips": None}
    W = tally.matrices(tally.count)[0]
    s = bt_fit(W)
    leader, runner = (int(i) for i in np.argsort(-s, kind="stable")[:2])
    pair = ((tally.cell_a == leader) & (tally.cell_b == runner)) | ((tally.cell_a == runner) & (tally.cell_b == leader))
    ties = float(tally.count[pair & (tally.kind == 2)].sum())
    won = np.where(tally.cell_a == leader, tally.kind == 0, tally.kind == 1)
    leader_wins = float(tally.count[pair & won].sum())

    def dethroned(k: int) -> bool:
        moved = min(k, leader_wins) + 0.5 * max(0.0, k - leader_wins)
        Wk = W.copy()
        Wk[leader, runner] -= moved
        Wk[runner, leader] += moved
        sk = bt_fit(Wk)
        return sk[leader] <= np.delete(sk, leader).max() + 1e-9

    total = int(leader_wins + ties)
    flips = -1 if not dethroned(total) else _first_true(0, total, dethroned)
    return {"leader": tally.variants[leader], "runner_up": tally.variants[runner], "flips": flips}


# ---------------------------------------------------------------- agreement

def cohen_kappa(x: Sequence, y: Sequence) -> float:
    """Cohen's kappa of two raters' labels on the same items; nan when undefined."""
    if len(x) != len(y):
        raise InvalidInput(f"cohen_kappa needs paired labels; got {len(x)} and {len(y)}")
    if len(x) == 0:
        return math.nan
    codes, labels = pd.factorize(pd.Series(list(x) + list(y), dtype=object))
    k, n = len(labels), len(x)
    return float(_kappas(np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(1, k, k))[0])


def _kappas(tables: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each k x k confusion table in a stack; nan where chance agreement is 1."""
    share = tables / tables.sum(axis=(1, 2), keepdims=True)
    observed = np.trace(share, axis1=1, axis2=2)
    expected = (share.sum(axis=2) * share.sum(axis=1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1.0, (observed - expected) / (1.0 - expected), np.nan)


def pairwise_cohen(votes: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa for every pair of raters over the items both rated (at least 2)."""
    ballots = _one_per_rater(_ballots(votes))
    rated = pd.DataFrame({"item": ballots["item"].to_numpy(), "rater": ballots["rater"].astype(str).to_numpy(),
                          "label": _outcome_codes(ballots)})
    both = rated.merge(rated, on="item", suffixes=("_a", "_b"))
    both = both[both["rater_a"] < both["rater_b"]]
    if both.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    pair, raters = pd.MultiIndex.from_frame(both[["rater_a", "rater_b"]]).factorize(sort=True)
    k = len(OUTCOMES)
    tables = np.bincount(pair * k * k + both["label_a"].to_numpy() * k + both["label_b"].to_numpy(),
                         minlength=len(raters) * k * k).reshape(-1, k, k)
    table = pd.DataFrame({"rater_a": raters.get_level_values(0), "rater_b": raters.get_level_values(1),
                          "n": tables.sum(axis=(1, 2)), "kappa": _kappas(tables)})
    return table[table["n"] >= 2].reset_index(drop=True)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories count matrix. Items may have different
    numbers of raters (each item's agreement uses its own n_i); items with fewer than two
    ratings carry no agreement and are dropped. Equal counts give the classic formula."""
    counts = np.asarray(counts, dtype=float)
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if len(counts) == 0:
        return math.nan
    agreement = ((counts ** 2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p = counts.sum(axis=0) / n_i.sum()
    expected = float((p ** 2).sum())
    return math.nan if expected >= 1.0 else (agreement.mean() - expected) / (1.0 - expected)


def _item_counts(votes: pd.DataFrame) -> np.ndarray:
    """items x outcomes counts of the non-gold votes, one vote per rater and item."""
    return _counts_by_item(_one_per_rater(_ballots(votes)))[1]


def _counts_by_item(ballots: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(item index of each row, items x outcomes counts)."""
    item, items = pd.factorize(ballots["item"])
    k = len(OUTCOMES)
    counts = np.bincount(item * k + _outcome_codes(ballots), minlength=len(items) * k).reshape(-1, k)
    return item, counts


def fleiss_from_votes(votes: pd.DataFrame) -> float:
    return fleiss_kappa(_item_counts(votes))


def _alpha_nominal_counts(counts: np.ndarray) -> float:
    """Krippendorff's nominal alpha from units x values counts (coincidence matrix form)."""
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]  # a lone rating has nothing to agree with
    if len(counts) == 0:
        return math.nan
    weighted = counts / (m - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=0)
    total = n_c.sum()
    disagreement_observed = coincidence.sum() - np.trace(coincidence)
    disagreement_expected = total ** 2 - (n_c ** 2).sum()
    if disagreement_expected <= 0:
        return math.nan
    return float(1.0 - (total - 1) * disagreement_observed / disagreement_expected)


def krippendorff_alpha_matrix(data: np.ndarray) -> float:
    """Nominal alpha from a raters x items matrix of numeric codes, np.nan where missing."""
    data = np.asarray(data, dtype=float)
    values = np.unique(data[~np.isnan(data)])
    counts = np.stack([(data == v).sum(axis=0) for v in values], axis=1) if len(values) else np.zeros((0, 0))
    return _alpha_nominal_counts(counts)


def krippendorff_alpha_nominal(votes: pd.DataFrame) -> float:
    return _alpha_nominal_counts(_item_counts(votes))


# ---------------------------------------------------------------- position bias and raters

def position_bias(votes: pd.DataFrame, level: float = 0.95) -> dict:
    """How often the response shown first wins among decisive non-gold votes, vs 0.5."""
    ballots = _ballots(votes)
    decisive = ballots[ballots["outcome"].isin(["a", "b"])]
    n = len(decisive)
    first = int((decisive["outcome"] == decisive["first"]).sum())
    lo, hi = wilson(first, n, level)
    return {"n": n, "first": first, "share_first": first / n if n else math.nan, "lo": lo, "hi": hi,
            "p": float(binomtest(first, n, 0.5).pvalue) if n else 1.0}


def _majority_agreement(ballots: pd.DataFrame) -> pd.DataFrame:
    """Per non-gold vote: does it match the strict majority of the *other* raters on the item?
    Rows where the others have no strict majority are dropped."""
    ballots = _one_per_rater(ballots)
    codes = _outcome_codes(ballots)
    item, counts = _counts_by_item(ballots)
    others = counts[item]
    others[np.arange(len(codes)), codes] -= 1
    top = others.argmax(axis=1)
    strict = others.max(axis=1) * 2 > others.sum(axis=1)
    return pd.DataFrame({"rater": ballots["rater"].to_numpy()[strict], "agree": (top == codes)[strict]},
                        columns=["rater", "agree"])


GOLD_NEAR_CHANCE = "near chance"
GOLD_TOO_FEW = "not enough gold pairs yet"


def gold_standing(correct: int, n: int, level: float = 0.95) -> str:
    """What a rater's gold pairs say: "" (none yet), GOLD_NEAR_CHANCE (even the top of the
    interval of their gold accuracy is below GOLD_COMPETENT), "credible" (its bottom is at or
    above it) or GOLD_TOO_FEW (the interval still reaches both sides: 4 of 4 right is here)."""
    if n <= 0:
        return ""
    lo, hi = wilson(correct, n, level)
    return GOLD_NEAR_CHANCE if hi < GOLD_COMPETENT else "credible" if lo >= GOLD_COMPETENT else GOLD_TOO_FEW


def rater_table(votes: pd.DataFrame, too_fast_seconds: float = 3.0, alpha: float = 0.05) -> pd.DataFrame:
    """One row per rater: gold accuracy, agreement with the others' majority, speed, side
    preference, and flags for raters whose votes look random, rushed or one-sided (on evidence
    only; too few gold pairs is the note GOLD_TOO_FEW, not a flag)."""
    if votes.empty:
        return pd.DataFrame(columns=RATER_COLUMNS)
    ballots = _ballots(votes)
    gold = votes[votes["gold"].fillna(False).astype(bool)]
    by_rater = votes.groupby("rater", sort=True)
    table = pd.DataFrame({"votes": by_rater.size(), "median_seconds": by_rater["seconds"].median()})
    raters = table.index

    def hits(hit: pd.Series, who: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(hits, trials) per rater, 0 for raters without trials."""
        grouped = hit.astype(int).groupby(who.to_numpy()).agg(["sum", "size"])
        grouped = grouped.reindex(raters, fill_value=0)
        return grouped["sum"], grouped["size"]

    gold_correct, table["gold_n"] = hits(gold["outcome"] == gold["gold_better"], gold["rater"])
    majority = _majority_agreement(ballots)
    agree, majority_n = hits(majority["agree"], majority["rater"])
    decisive = ballots[ballots["outcome"].isin(["a", "b"])]
    first, decisive_n = hits(decisive["outcome"] == decisive["first"], decisive["rater"])
    with np.errstate(invalid="ignore"):
        table["gold_accuracy"] = gold_correct / table["gold_n"]
        table["majority_agreement"] = agree / majority_n
        table["share_first"] = first / decisive_n

    def flags(r) -> str:
        found = []
        # Only on evidence: gold accuracy credibly below GOLD_COMPETENT (gold_standing), or
        # agreement with the others' majority credibly below one half (which catches a random
        # rater served too little gold). Too few gold pairs is a note, never a flag.
        majority_hi = wilson(agree[r.Index], majority_n[r.Index], 1 - alpha)[1] if majority_n[r.Index] else 1.0
        if r.gold_note == GOLD_NEAR_CHANCE or majority_hi < 0.5:
            found.append("random?")
        if r.median_seconds < too_fast_seconds:
            found.append("too fast")
        if decisive_n[r.Index] >= 10 and (r.share_first >= 0.9 or r.share_first <= 0.1):
            found.append("one side")
        return "; ".join(found)

    table["gold_note"] = [gold_standing(int(gold_correct[r]), int(table.loc[r, "gold_n"]), 1 - alpha) for r in raters]
    table["flags"] = [flags(r) for r in table.itertuples()]
    return table.rename_axis("rater").reset_index()[RATER_COLUMNS]


def summary(votes: pd.DataFrame, rounds: int = 1000, level: float = 0.95, seed: int = 0,
            anchor: str | None = None, alpha: float = 0.05, too_fast_seconds: float = 3.0) -> dict:
    """Everything the results page shows for one review, computed once."""
    ballots = _ballots(votes)
    return {
        "ladder": bradley_terry(votes, rounds=rounds, level=level, seed=seed, anchor=anchor),
        "comparisons": comparisons(votes, level=level),
        "pairwise_cohen": pairwise_cohen(votes),
        "fleiss": fleiss_from_votes(votes),
        "alpha_nominal": krippendorff_alpha_nominal(votes),
        "position_bias": position_bias(votes, level=level),
        "raters": rater_table(votes, too_fast_seconds=too_fast_seconds, alpha=alpha),
        "leader_robustness": leader_robustness(votes, alpha=alpha),
        "n_votes": len(ballots),
        "n_prompts": int(_prompts(ballots).nunique()),
        "icc": icc(votes),
        "n_gold": len(votes) - len(ballots),
    }
