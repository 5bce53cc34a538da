"""core.review.stats against independent references: choix, scikit-learn, the krippendorff
package, scipy, Fleiss' published example, and brute force for the flip counts."""

from __future__ import annotations

import math
from functools import lru_cache

import choix
import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from core.errors import InvalidInput
from core.review import stats

VOTE_COLUMNS = stats.VOTE_COLUMNS


def make_votes(strengths: dict[str, float], n: int, seed: int = 0, tie_rate: float = 0.15,
               raters: int = 5) -> pd.DataFrame:
    """n non-gold votes, one per item, drawn from Bradley-Terry with the given log-strengths."""
    rng = np.random.default_rng(seed)
    names = sorted(strengths)
    rows = []
    for item in range(n):
        a, b = (names[k] for k in sorted(rng.choice(len(names), 2, replace=False)))
        if rng.random() < tie_rate:
            outcome = "tie" if rng.random() < 0.7 else "both_bad"
        else:
            outcome = "a" if rng.random() < 1 / (1 + math.exp(strengths[b] - strengths[a])) else "b"
        rows.append([item, f"r{item % raters}", a, b, outcome, "ab"[rng.integers(2)], 10.0, False, None])
    return pd.DataFrame(rows, columns=VOTE_COLUMNS)


# ---------------------------------------------------------------- Bradley-Terry

def _battles(seed: int, n_items: int, n_battles: int):
    """Random battles with ties: our win matrix (ties half each way) and choix's data, where
    every decisive battle is doubled and a tie is one win to each side (the same likelihood x2)."""
    rng = np.random.default_rng(seed)
    true = rng.normal(size=n_items)
    W, data = np.zeros((n_items, n_items)), []
    for _ in range(n_battles):
        i, j = rng.choice(n_items, 2, replace=False)
        if rng.random() < 0.2:
            W[i, j] += 0.5
            W[j, i] += 0.5
            data += [(i, j), (j, i)]
        else:
            winner, loser = (i, j) if rng.random() < 1 / (1 + math.exp(true[j] - true[i])) else (j, i)
            W[winner, loser] += 1
            data += [(winner, loser)] * 2
    return W, data


@pytest.mark.parametrize("seed,n_items", [(0, 5), (1, 6), (2, 6)])
def test_bt_fit_matches_choix(seed, n_items):
    W, data = _battles(seed, n_items, 300)
    reference = choix.opt_pairwise(n_items, data, alpha=0)
    # prior=0: the plain MLE, which is what choix computes with alpha=0 (the data are dense
    # enough that every item wins and loses, so the MLE exists).
    ours = stats.bt_fit(W, prior=0)
    np.testing.assert_allclose(ours, reference - reference.mean(), atol=1e-3)
    assert abs(ours.mean()) < 1e-9


def test_bt_fit_many_fits_each_round_like_choix():
    cases = [_battles(seed, 5, 200) for seed in range(4)]
    ours = stats.bt_fit_many(np.stack([W for W, _ in cases]), prior=0)
    for row, (_, data) in zip(ours, cases):
        reference = choix.opt_pairwise(5, data, alpha=0)
        np.testing.assert_allclose(row, reference - reference.mean(), atol=1e-3)


def test_bt_two_items_three_wins_to_one_is_ln3():
    s = stats.bt_fit(np.array([[0.0, 3.0], [1.0, 0.0]]), prior=0)
    assert s[0] - s[1] == pytest.approx(math.log(3), abs=1e-9)


def test_bt_survives_a_variant_without_wins_and_a_disconnected_graph():
    W = np.zeros((4, 4))
    W[0, 1] = 5  # 1 never wins
    W[2, 3], W[3, 2] = 2, 1  # {2, 3} never meet {0, 1}
    s = stats.bt_fit(W)
    assert np.isfinite(s).all() and s[0] > s[1] and s[2] > s[3]


# ---------------------------------------------------------------- bootstrap ladder

STRENGTHS = {"base": 0.0, "lora-1": 0.4, "lora-2": 0.5, "sft": 1.5}


def test_ladder_shape_and_bootstrap_behaviour():
    votes = make_votes(STRENGTHS, 600)
    ladder = stats.bradley_terry(votes, rounds=300, seed=3)
    assert list(ladder.columns) == stats.LADDER_COLUMNS
    assert ladder["rating"].is_monotonic_decreasing and ladder["rating"].mean() == pytest.approx(1000)
    assert ((ladder["lo"] <= ladder["rating"]) & (ladder["rating"] <= ladder["hi"])).all()
    assert ladder["rank"].tolist() == [1, 2, 3, 4]
    assert (ladder["rank_lo"] <= ladder["rank"]).all() and (ladder["rank"] <= ladder["rank_hi"]).all()
    top = ladder.iloc[0]
    assert top["variant"] == "sft" and top["rank_lo"] == top["rank_hi"] == 1  # dominates
    assert ladder["n"].sum() == 2 * len(votes)
    pd.testing.assert_frame_equal(ladder, stats.bradley_terry(votes, rounds=300, seed=3))


def test_ladder_narrows_with_more_votes():
    def width(n):
        ladder = stats.bradley_terry(make_votes(STRENGTHS, n, seed=1), rounds=300).set_index("variant")
        return (ladder["hi"] - ladder["lo"]).mean()

    assert width(4000) < 0.6 * width(400)


def test_cell_bootstrap_agrees_with_a_row_bootstrap():
    """The multinomial-over-cells draw is the same resample as drawing rows with replacement."""
    votes = make_votes(STRENGTHS, 800, seed=2)
    ours = stats.bradley_terry(votes, rounds=400, seed=0).set_index("variant")
    names = list(ours.index.sort_values())
    ia, ib = votes["a"].map(names.index).to_numpy(), votes["b"].map(names.index).to_numpy()
    to_a = votes["outcome"].map({"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}).to_numpy()
    rng = np.random.default_rng(9)
    W = np.zeros((400, len(names), len(names)))
    for r in range(400):  # rows drawn with replacement, one win matrix per round
        rows = rng.integers(0, len(votes), len(votes))
        np.add.at(W[r], (ia[rows], ib[rows]), to_a[rows])
        np.add.at(W[r], (ib[rows], ia[rows]), 1 - to_a[rows])
    rows = pd.DataFrame(400 / math.log(10) * stats.bt_fit_many(W) + 1000, columns=names)
    np.testing.assert_allclose(ours["lo"], rows.quantile(0.025)[ours.index], atol=15)
    np.testing.assert_allclose(ours["hi"], rows.quantile(0.975)[ours.index], atol=15)


def test_ladder_anchor_gold_and_empty():
    votes = make_votes(STRENGTHS, 300)
    anchored = stats.bradley_terry(votes, rounds=50, anchor="base").set_index("variant")
    assert anchored.loc["base", "rating"] == pytest.approx(1000)
    gold = votes.head(50).assign(gold=True, gold_better="a", outcome="b")
    pd.testing.assert_frame_equal(stats.bradley_terry(pd.concat([votes, gold]), rounds=50),
                                  stats.bradley_terry(votes, rounds=50))
    assert stats.bradley_terry(votes.iloc[:0]).columns.tolist() == stats.LADDER_COLUMNS
    with pytest.raises(InvalidInput, match="anchor"):
        stats.bradley_terry(votes, anchor="nope")


# ---------------------------------------------------------------- win rates, sign test, flips

@pytest.mark.parametrize("k,n", [(0, 5), (3, 10), (9, 10), (17, 40), (40, 40), (123, 300)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    r = stats.win_rate(k, 0, n - k)
    assert (r.lo, r.hi) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_win_rate_counts_ties_and_both_bad_as_half():
    r = stats.win_rate(6, 1, 2, both_bad=1)
    assert (r.n, r.rate) == (10, pytest.approx(0.7))
    assert r.p_sign == pytest.approx(binomtest(6, 8).pvalue)
    assert stats.win_rate(9, 3, 1).p_sign == pytest.approx(0.021484375)  # 9 of 10, two-sided
    empty = stats.win_rate(0, 0, 0)
    assert math.isnan(empty.rate) and (empty.lo, empty.hi, empty.p_sign) == (0, 1, 1)
    assert stats.win_rate(0, 4, 0).p_sign == 1.0


@lru_cache(maxsize=None)
def _p(w: int, l: int) -> float:
    return 1.0 if w + l == 0 else binomtest(w, w + l).pvalue


def _brute_force_flips(w, t, l, alpha=0.05):
    """Try every split of flips between wins/ties (against the leader) or losses/ties (for it)."""
    if l > w:
        w, l = l, w
    winner = min((x + y for x in range(w + 1) for y in range(t + 1) if w - x <= l + x + y), default=0)
    if w == l:
        winner = 0
    if _p(w, l) < alpha:
        sig = min(x + y for x in range(w + 1) for y in range(t + 1) if _p(w - x, l + x + y) >= alpha)
    else:
        options = [x + y for lead, trail in ((w, l), (l, w)) for x in range(trail + 1)
                   for y in range(t + 1) if _p(lead + x + y, trail - x) < alpha]
        sig = min(options, default=-1)
    return winner, sig


def test_flips_hand_worked():
    assert stats.flips_to_change(6, 0, 2)[0] == 2
    assert stats.flips_to_change(6, 0, 2) == _brute_force_flips(6, 0, 2)
    assert stats.flips_to_change(5, 0, 5) == (0, _brute_force_flips(5, 0, 5)[1])
    assert stats.flips_to_change(1, 0, 0) == (1, -1)  # one vote can never be significant


def test_flips_match_brute_force():
    for w in range(11):
        for l in range(11):
            for t in range(4):
                assert stats.flips_to_change(w, t, l) == _brute_force_flips(w, t, l), (w, t, l)


def test_comparisons_table():
    votes = make_votes(STRENGTHS, 400)
    gold = votes.head(30).assign(gold=True, gold_better="a")
    table = stats.comparisons(pd.concat([votes, gold]))
    assert list(table.columns) == stats.COMPARISON_COLUMNS and len(table) == 6
    assert table["n"].sum() == len(votes)
    row = table.set_index(["a", "b"]).loc[("base", "sft")]
    counts = votes[(votes["a"] == "base") & (votes["b"] == "sft")]["outcome"].value_counts()
    assert (row["wins"], row["losses"]) == (counts.get("a", 0), counts.get("b", 0))
    assert row["winner"] == "sft" and bool(row["significant"])
    assert row["flips_winner"] == (row["losses"] - row["wins"] + 1) // 2
    assert stats.comparisons(votes.iloc[:0]).columns.tolist() == stats.COMPARISON_COLUMNS
    with pytest.raises(InvalidInput, match="unknown outcomes"):
        stats.comparisons(votes.assign(outcome="A"))
    with pytest.raises(InvalidInput, match="gold"):
        stats.comparisons(votes.drop(columns="gold"))


def test_leader_robustness_two_variants_is_the_winner_flip_count():
    rng = np.random.default_rng(5)
    for _ in range(8):
        w, t, l = (int(x) for x in rng.integers(0, 12, size=3))
        if w == l:
            continue
        outcomes = ["a"] * w + ["tie"] * t + ["b"] * l
        votes = pd.DataFrame({"item": range(len(outcomes)), "rater": "r", "a": "x", "b": "y",
                              "outcome": outcomes, "first": "a", "seconds": 5.0, "gold": False,
                              "gold_better": None})
        result = stats.leader_robustness(votes)
        assert result["leader"] == ("x" if w > l else "y")
        assert result["flips"] == stats.flips_to_change(w, t, l)[0]


def test_leader_robustness_matches_a_linear_search():
    votes = make_votes({"base": 0.0, "lora": 0.6, "sft": 0.8}, 300, seed=4)
    result = stats.leader_robustness(votes)
    ladder = stats.bradley_terry(votes, rounds=0)
    assert (result["leader"], result["runner_up"]) == tuple(ladder["variant"][:2])
    leader, runner = result["leader"], result["runner_up"]
    pair = votes[((votes["a"] == leader) & (votes["b"] == runner)) | ((votes["a"] == runner) & (votes["b"] == leader))]
    leader_won = pair.index[pair["outcome"] == np.where(pair["a"] == leader, "a", "b")]
    tied = pair.index[pair["outcome"].isin(["tie", "both_bad"])]
    order = list(leader_won) + list(tied)
    for k in range(len(order) + 1):  # refit the flipped votes frame from scratch
        flipped = votes.copy()
        flipped.loc[order[:k], "outcome"] = np.where(flipped.loc[order[:k], "a"] == runner, "a", "b")
        ratings = stats.bradley_terry(flipped, rounds=0).set_index("variant")["rating"]
        if ratings[leader] <= ratings.drop(leader).max() + 1e-6:
            break
    assert result["flips"] == k
    assert stats.leader_robustness(votes[votes["a"] == "nobody"])["flips"] is None


# ---------------------------------------------------------------- agreement

FLEISS_1971 = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
               [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_fleiss_published_example():
    assert stats.fleiss_kappa(np.array(FLEISS_1971)) == pytest.approx(0.2099, abs=5e-4)  # 0.210


def test_fleiss_drops_single_ratings_and_handles_unequal_counts():
    counts = np.array(FLEISS_1971)
    with_lone = np.vstack([counts, [[0, 0, 1, 0, 0]]])
    assert stats.fleiss_kappa(with_lone) == pytest.approx(stats.fleiss_kappa(counts))
    # Unequal rater counts: per-item agreement with its own n_i, averaged over items.
    uneven = np.array([[2, 0], [1, 2], [3, 0]])
    p_i = np.array([1.0, 1 / 3, 1.0])
    p = np.array([6, 2]) / 8
    assert stats.fleiss_kappa(uneven) == pytest.approx((p_i.mean() - (p ** 2).sum()) / (1 - (p ** 2).sum()))
    assert math.isnan(stats.fleiss_kappa(np.zeros((0, 3))))


@pytest.mark.parametrize("seed", range(4))
def test_cohen_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = np.array(stats.OUTCOMES)
    x = labels[rng.integers(0, 4, 60)]
    y = np.where(rng.random(60) < 0.5, x, labels[rng.integers(0, 4, 60)])
    assert stats.cohen_kappa(list(x), list(y)) == pytest.approx(cohen_kappa_score(x, y), abs=1e-12)
    assert math.isnan(stats.cohen_kappa(["a", "a"], ["a", "a"]))


def test_pairwise_cohen_on_votes():
    rng = np.random.default_rng(0)
    coverage = {"ann": 30, "bob": 30, "cy": 12, "dee": 1}  # dee shares one item: no kappa
    rows = [[item, rater, "x", "y", stats.OUTCOMES[rng.integers(0, 4)], "a", 5.0, False, None]
            for rater, n in coverage.items() for item in range(n)]
    votes = pd.DataFrame(rows, columns=VOTE_COLUMNS).sample(frac=1, random_state=1)
    table = stats.pairwise_cohen(votes)
    assert table[["rater_a", "rater_b", "n"]].values.tolist() == [
        ["ann", "bob", 30], ["ann", "cy", 12], ["bob", "cy", 12]]
    for ra, rb, _, kappa in table.itertuples(index=False):
        x, y = (votes[votes["rater"] == r].set_index("item")["outcome"] for r in (ra, rb))
        shared = x.index.intersection(y.index)
        assert kappa == pytest.approx(cohen_kappa_score(x[shared], y[shared]), abs=1e-12)
    assert stats.pairwise_cohen(votes.iloc[:0]).columns.tolist() == stats.PAIR_COLUMNS


@pytest.mark.parametrize("seed", range(4))
def test_krippendorff_matrix_matches_package(seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4, size=(5, 40)).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    reference = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert stats.krippendorff_alpha_matrix(data) == pytest.approx(reference, abs=1e-9)


def test_krippendorff_from_votes_matches_package():
    rng = np.random.default_rng(7)
    rows = [[item, f"r{rater}", "x", "y", stats.OUTCOMES[rng.integers(0, 4) if rng.random() < 0.5 else item % 4],
             "a", 5.0, False, None]
            for item in range(50) for rater in range(4) if rng.random() < 0.7]
    votes = pd.DataFrame(rows, columns=VOTE_COLUMNS)
    codes = votes.assign(code=votes["outcome"].map(stats.OUTCOMES.index))
    matrix = codes.pivot(index="rater", columns="item", values="code").to_numpy(dtype=float)
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert stats.krippendorff_alpha_nominal(votes) == pytest.approx(reference, abs=1e-9)
    counts = pd.crosstab(votes["item"], votes["outcome"]).to_numpy()
    assert stats.fleiss_from_votes(votes) == pytest.approx(stats.fleiss_kappa(counts))


# ---------------------------------------------------------------- position bias and raters

def test_position_bias():
    votes = make_votes(STRENGTHS, 200)
    votes.loc[votes.index[:60], "outcome"] = votes["first"][:60]  # a lean towards Response 1
    bias = stats.position_bias(votes)
    decisive = votes[votes["outcome"].isin(["a", "b"])]
    first = int((decisive["outcome"] == decisive["first"]).sum())
    assert (bias["n"], bias["first"]) == (len(decisive), first)
    assert bias["p"] == pytest.approx(binomtest(first, len(decisive)).pvalue)
    assert bias["lo"] < bias["share_first"] < bias["hi"]
    assert stats.position_bias(votes.iloc[:0])["p"] == 1.0


def _rater_votes() -> pd.DataFrame:
    """Items 0-39 rated by good1, good2, good3, rando, speedy, lefty; plus 8 gold pairs each.
    The truth on every item is 'a'; good raters and speedy know it, rando guesses,
    lefty always picks Response 1 (shown on alternating sides)."""
    rng = np.random.default_rng(11)
    rows = []
    for rater in ("good1", "good2", "good3", "rando", "speedy", "lefty"):
        for item in range(48):
            gold = item >= 40
            first = "ab"[item % 2]
            if rater == "rando":
                outcome = "ab"[rng.integers(2)] if rng.random() < 0.8 else "tie"
            elif rater == "lefty":
                outcome = first
            else:
                outcome = "a" if rng.random() < 0.95 else "tie"
            rows.append([item, rater, "base", "sft", outcome, first, 1.0 if rater == "speedy" else 12.0,
                         gold, "a" if gold else None])
    return pd.DataFrame(rows, columns=VOTE_COLUMNS)


def test_rater_table_flags():
    table = stats.rater_table(_rater_votes()).set_index("rater")
    assert table.columns.tolist() == stats.RATER_COLUMNS[1:]
    for good in ("good1", "good2", "good3"):
        assert table.loc[good, "flags"] == ""
        assert table.loc[good, "gold_accuracy"] >= 0.75 and table.loc[good, "majority_agreement"] > 0.8
    assert "random?" in table.loc["rando", "flags"]
    assert table.loc["speedy", "flags"] == "too fast" and table.loc["speedy", "median_seconds"] == 1.0
    assert "one side" in table.loc["lefty", "flags"] and table.loc["lefty", "share_first"] == 1.0
    assert (table["votes"] == 48).all() and (table["gold_n"] == 8).all()


def test_summary_bundles_everything():
    votes = pd.concat([make_votes(STRENGTHS, 300), _rater_votes().assign(item=lambda f: f["item"] + 1000)])
    result = stats.summary(votes, rounds=50)
    assert set(result) >= {"ladder", "comparisons", "pairwise_cohen", "fleiss", "alpha_nominal",
                           "position_bias", "raters", "leader_robustness", "n_votes"}
    assert result["n_votes"] == int((~votes["gold"]).sum())
    assert result["leader_robustness"]["leader"] == result["ladder"]["variant"][0]
