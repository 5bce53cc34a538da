"""Statistics over blind A/B preference votes: win rates, Bradley-Terry ratings with
bootstrap intervals, rater agreement, position bias, robustness and rater quality.

Input is a votes frame (columns item, rater, a, b, outcome, first, seconds, gold,
gold_better). Gold rows only ever judge raters; every other statistic drops them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom, binomtest, norm

from core.errors import InvalidInput

OUTCOMES = ("a", "b", "tie", "both_bad")
VOTE_COLUMNS = ["item", "rater", "a", "b", "outcome", "first", "seconds", "gold", "gold_better"]
ELO_SCALE = 400 / math.log(10)
LADDER_COLUMNS = ["variant", "strength", "rating", "lo", "hi", "rank", "rank_lo", "rank_hi", "n"]
COMPARISON_COLUMNS = ["a", "b", "wins", "ties", "both_bad", "losses", "n", "rate", "lo", "hi",
                      "p_sign", "significant", "winner", "flips_winner", "flips_significance"]
PAIR_COLUMNS = ["rater_a", "rater_b", "n", "kappa"]
RATER_COLUMNS = ["rater", "votes", "gold_n", "gold_accuracy", "majority_agreement",
                 "median_seconds", "share_first", "flags"]


# ---------------------------------------------------------------- proportions and tests

def wilson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval; counts may be fractional (ties count half)."""
    if n <= 0:
        return 0.0, 1.0
    z = norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test of wins against losses; 1.0 with no decisive votes."""
    wins, losses = int(wins), int(losses)
    # Under p = 0.5 the two tails mirror each other, so this equals scipy's binomtest
    # p-value, without its search (which dominates on long tables).
    return min(1.0, 2.0 * float(binom.cdf(min(wins, losses), wins + losses, 0.5)))


@dataclass(frozen=True)
class WinRate:
    wins: int
    ties: int
    losses: int
    both_bad: int
    n: int
    rate: float
    lo: float
    hi: float
    p_sign: float


def win_rate(wins: int, ties: int, losses: int, both_bad: int = 0, level: float = 0.95) -> WinRate:
    """Win rate of side a with ties and both-bad as half a win (Chatbot Arena's "tie (bothbad)")."""
    n = wins + ties + both_bad + losses
    if n == 0:
        return WinRate(wins, ties, losses, both_bad, 0, math.nan, 0.0, 1.0, 1.0)
    score = wins + (ties + both_bad) / 2
    lo, hi = wilson(score, n, level)
    return WinRate(wins, ties, losses, both_bad, n, score / n, lo, hi, sign_test(wins, losses))


def _first_true(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """Smallest k in [lo, hi] with ok(k), for ok monotone False...True; ok(hi) must hold."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def flips_to_change(wins: int, ties: int, losses: int, both_bad: int = 0,
                    alpha: float = 0.05) -> tuple[int, int]:
    """(flips to lose the winner, flips to change the sign test's verdict at alpha).

    A flip turns one vote against the current leader. Turning a win into a loss moves the
    margin by 2, a tie by 1, so wins are always flipped first; once the margin reaches 0
    the winner is gone, hence ceil(margin / 2). The p-value is monotone along that path
    (and along the mirror path loss->win, then tie->win, which is cheaper than tie->win
    first), so a binary search finds the smallest count. -1: significance is out of reach.
    """
    w, l, t = int(wins), int(losses), int(ties) + int(both_bad)
    if l > w:  # measure from the leading side's point of view; the counts are symmetric
        w, l = l, w
    margin = w - l
    to_winner = (margin + 1) // 2
    if sign_test(w, l) < alpha:
        to_significance = _first_true(1, to_winner, lambda k: sign_test(w - k, l + k) >= alpha)
    else:
        def flipped(k: int) -> tuple[int, int]:
            return w + k, l - min(k, l)  # losses become wins first, then ties do

        total = l + t
        if total == 0 or sign_test(*flipped(total)) >= alpha:
            to_significance = -1
        else:
            to_significance = _first_true(1, total, lambda k: sign_test(*flipped(k)) < alpha)
    return to_winner, to_significance


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


def comparisons(votes: pd.DataFrame, level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """One row per pair (a, b): win rate of a with Wilson CI, sign test and flip counts."""
    ballots = _ballots(votes)
    if ballots.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    counts = (ballots.groupby(["a", "b"])["outcome"].value_counts().unstack(fill_value=0)
              .reindex(columns=list(OUTCOMES), fill_value=0))
    rows = []
    for (a, b), c in counts.iterrows():
        r = win_rate(int(c["a"]), int(c["tie"]), int(c["b"]), int(c["both_bad"]), level)
        winner = a if r.rate > 0.5 else b if r.rate < 0.5 else None
        flips_winner, flips_sig = flips_to_change(r.wins, r.ties, r.losses, r.both_bad, alpha)
        rows.append([a, b, r.wins, r.ties, r.both_bad, r.losses, r.n, r.rate, r.lo, r.hi,
                     r.p_sign, r.p_sign < alpha, winner, flips_winner, flips_sig])
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
    """Votes collapsed into cells (a, b, kind): the bootstrap redraws cell counts, not rows."""

    variants: list[str]
    cell_a: np.ndarray   # index of a
    cell_b: np.ndarray   # index of b
    kind: np.ndarray     # 0: a won, 1: b won, 2: tie or both bad
    count: np.ndarray

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
    kind = _outcome_codes(ballots).clip(max=2)  # tie and both-bad weigh the same here
    cells, count = np.unique((codes[:rows] * n + codes[rows:]) * 3 + kind, return_counts=True)
    return _Tally([str(v) for v in variants], cells // 3 // n, cells // 3 % n, cells % 3, count)


def _ranks(s: np.ndarray) -> np.ndarray:
    """1 + number of variants strictly stronger (shared ranks on exact ties), along the last axis."""
    return 1 + (s[..., None, :] > s[..., :, None]).sum(axis=-1)


def bradley_terry(votes: pd.DataFrame, rounds: int = 1000, level: float = 0.95, seed: int = 0,
                  anchor: str | None = None) -> pd.DataFrame:
    """Ladder of variants: BT strength, Elo-like rating, percentile bootstrap CIs and rank ranges.

    The bootstrap resamples votes with replacement. Votes are interchangeable within a cell
    (ordered pair x outcome), so one multinomial draw per round over the cells is the same
    resample as drawing rows, and all rounds are fitted together.
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
        rng = np.random.default_rng(seed)
        total = int(tally.count.sum())
        draws = rng.multinomial(total, tally.count / total, size=rounds)
        boot = bt_fit_many(tally.matrices(draws))
        q = (1 - level) / 2
        lo, hi = np.quantile(rating(boot), [q, 1 - q], axis=0)
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


def rater_table(votes: pd.DataFrame, too_fast_seconds: float = 3.0, min_gold: int = 4,
                alpha: float = 0.05) -> pd.DataFrame:
    """One row per rater: gold accuracy, agreement with the others' majority, speed, side
    preference, and flags for raters whose votes look random, rushed or one-sided."""
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
        # Gold is the direct test of competence; agreement with the others' majority catches
        # a random rater who was served too little gold.
        correct = int(gold_correct[r.Index])
        if (r.gold_n >= min_gold and binomtest(correct, r.gold_n, 0.5, alternative="greater").pvalue >= alpha) \
                or (majority_n[r.Index] >= 10 and r.majority_agreement < 0.4):
            found.append("random?")
        if r.median_seconds < too_fast_seconds:
            found.append("too fast")
        if decisive_n[r.Index] >= 10 and (r.share_first >= 0.9 or r.share_first <= 0.1):
            found.append("one side")
        return "; ".join(found)

    table["flags"] = [flags(r) for r in table.itertuples()]
    return table.rename_axis("rater").reset_index()[RATER_COLUMNS]


def summary(votes: pd.DataFrame, rounds: int = 1000, level: float = 0.95, seed: int = 0,
            anchor: str | None = None, alpha: float = 0.05, too_fast_seconds: float = 3.0) -> dict:
    """Everything the results page shows for one review, computed once."""
    ballots = _ballots(votes)
    return {
        "ladder": bradley_terry(votes, rounds=rounds, level=level, seed=seed, anchor=anchor),
        "comparisons": comparisons(votes, level=level, alpha=alpha),
        "pairwise_cohen": pairwise_cohen(votes),
        "fleiss": fleiss_from_votes(votes),
        "alpha_nominal": krippendorff_alpha_nominal(votes),
        "position_bias": position_bias(votes, level=level),
        "raters": rater_table(votes, too_fast_seconds=too_fast_seconds, alpha=alpha),
        "leader_robustness": leader_robustness(votes, alpha=alpha),
        "n_votes": len(ballots),
        "n_gold": len(votes) - len(ballots),
    }
