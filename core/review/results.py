"""Results of a pair set: the votes as a frame, the statistics computed and stored, exports.

Each computation is stored (review_results and its tables) with what it was computed from:
the vote count and latest vote, the excluded raters, the settings. The Results page shows
the latest one and computes a new one when the votes, exclusions or pairs have changed.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from core.auth import OWNER, Action, User, require
from core.config import ReviewSettings
from core.errors import InvalidInput
from core.review import stats
from core.review.pairs import get_pair_set
from core.store import Store, insert_rows

TABLES = ("ladder", "comparisons", "agreement", "raters")
EXPORT_FORMATS = ("csv", "json", "parquet", "html")


def _votes_frame(store: Store, pair_set_id: str, include_excluded: bool = False) -> pd.DataFrame:
    """One row per vote in the columns core.review.stats expects (withdrawn pairs left out)."""
    return store.df(f"""
        SELECT v.pair_id AS item, p.prompt_idx AS prompt, v.rater, p.a, p.b, v.outcome,
               CASE WHEN p.left_is_a THEN 'a' ELSE 'b' END AS "first", v.seconds,
               p.gold_better IS NOT NULL AS gold, p.gold_better, v.created_at
        FROM votes v JOIN pairs p USING (pair_set_id, pair_id)
        WHERE v.pair_set_id = ? AND NOT p.withdrawn
          {"" if include_excluded else
           "AND v.rater NOT IN (SELECT rater FROM rater_exclusions WHERE pair_set_id = v.pair_set_id)"}
        ORDER BY v.created_at, v.pair_id, v.rater""", [pair_set_id])


def _fingerprint(store: Store, pair_set_id: str, review: ReviewSettings) -> str:
    """Changes whenever anything the statistics read changes."""
    state = store.row("""
        SELECT (SELECT count(*) FROM votes WHERE pair_set_id = $1) AS votes,
               (SELECT max(created_at) FROM votes WHERE pair_set_id = $1)::VARCHAR AS last_vote,
               (SELECT string_agg(rater, ',' ORDER BY rater) FROM rater_exclusions WHERE pair_set_id = $1) AS excluded,
               (SELECT string_agg(pair_id::VARCHAR || ':' || withdrawn::VARCHAR || ':' || coalesce(gold_better, '-'),
                                  ',' ORDER BY pair_id)
                  FROM pairs WHERE pair_set_id = $1 AND (withdrawn OR gold_better IS NOT NULL)) AS pairs""",
                      [pair_set_id])
    state["settings"] = asdict(review)
    state["method"] = stats.METHOD_VERSION
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Results:
    result_id: str
    pair_set_id: str
    computed_at: Any
    n_votes: int
    n_prompts: int | None
    icc: float | None
    excluded: list[str]
    settings: dict
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    position_bias: dict
    leader: dict
    ladder: pd.DataFrame
    comparisons: pd.DataFrame
    agreement: pd.DataFrame
    raters: pd.DataFrame


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def compute(store: Store, actor: User, pair_set_id: str, review: ReviewSettings) -> str:
    """Compute every statistic of a pair set from its votes now and store it; returns the result id."""
    require(actor, Action.REVIEW_RESULTS)
    ps = get_pair_set(store, actor, pair_set_id)
    print_ = _fingerprint(store, pair_set_id, review)
    everyone = _votes_frame(store, pair_set_id, include_excluded=True)
    excluded = [r["rater"] for r in store.rows("SELECT rater FROM rater_exclusions WHERE pair_set_id = ? "
                                               "ORDER BY rater", [pair_set_id])]
    votes = everyone[~everyone["rater"].isin(excluded)]
    anchor = None  # ratings centred on 1000: every variant keeps its own interval (an anchor's would be 0 wide)
    ladder = stats.bradley_terry(votes, rounds=review.bootstrap_rounds, level=review.confidence, seed=ps["seed"],
                                 anchor=anchor)
    comparisons = stats.comparisons(votes, level=review.confidence)
    agreement = stats.pairwise_cohen(votes)
    raters = stats.rater_table(everyone, too_fast_seconds=review.too_fast_seconds, alpha=review.alpha)
    raters["excluded"] = raters["rater"].isin(excluded)
    fleiss = stats.fleiss_from_votes(votes)
    alpha = stats.krippendorff_alpha_nominal(votes)
    bias = {k: _clean(v) for k, v in stats.position_bias(votes, level=review.confidence).items()}
    leader = {k: _clean(v) for k, v in stats.leader_robustness(votes, alpha=review.alpha).items()}
    result_id = f"result-{uuid.uuid4().hex[:12]}"
    last = votes["created_at"].max() if len(votes) else None
    settings = {**asdict(review), "fingerprint": print_, "anchor": anchor, "method": stats.METHOD_VERSION}
    ballots = votes[~votes["gold"].astype(bool)]
    with store.transaction() as cur:
        cur.execute("""INSERT INTO review_results (result_id, pair_set_id, computed_by, n_votes, last_vote_at, excluded,
                       settings, fleiss_kappa, krippendorff_alpha, position_bias, leader, n_prompts, icc)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [result_id, pair_set_id, actor.username, int(len(votes)), None if pd.isna(last) else last,
                     json.dumps(excluded), json.dumps(settings), _clean(fleiss), _clean(alpha), json.dumps(bias),
                     json.dumps(leader), int(ballots["prompt"].nunique()), _clean(stats.icc(votes))])
        for table, frame in zip(TABLES, (ladder, comparisons, agreement, raters)):
            if len(frame):
                cols = [c for c in _columns(cur, f"review_{table}") if c != "result_id"]
                data = frame.reindex(columns=cols).astype(object).where(frame.reindex(columns=cols).notna(), None)
                insert_rows(cur, f"review_{table}", ["result_id", *cols],
                            [[result_id] + [_clean(v) for v in row] for row in data.itertuples(index=False)])
    return result_id


def _columns(cur, table: str) -> list[str]:
    return [r[0] for r in cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]


def latest(store: Store, actor: User, pair_set_id: str, review: ReviewSettings, refresh: bool = True) -> Results | None:
    """The newest stored result; with `refresh`, a new one first when the inputs changed since."""
    require(actor, Action.REVIEW_RESULTS)
    row = store.row("SELECT * FROM review_results WHERE pair_set_id = ? ORDER BY computed_at DESC LIMIT 1",
                    [pair_set_id])
    if refresh and (row is None or json.loads(row["settings"]).get("fingerprint") != _fingerprint(store, pair_set_id,
                                                                                                   review)):
        if store.scalar("SELECT count(*) FROM votes WHERE pair_set_id = ?", [pair_set_id]) == 0 and row is None:
            return None
        compute(store, actor, pair_set_id, review)
        row = store.row("SELECT * FROM review_results WHERE pair_set_id = ? ORDER BY computed_at DESC LIMIT 1",
                        [pair_set_id])
    if row is None:
        return None
    rid = row["result_id"]
    frames = {t: store.df(f"SELECT * EXCLUDE (result_id) FROM review_{t} WHERE result_id = ?", [rid]) for t in TABLES}
    frames["ladder"] = frames["ladder"].sort_values("rating", ascending=False, ignore_index=True)
    return Results(rid, pair_set_id, row["computed_at"], row["n_votes"], row["n_prompts"], row["icc"],
                   json.loads(row["excluded"]),
                   json.loads(row["settings"]), row["fleiss_kappa"], row["krippendorff_alpha"],
                   json.loads(row["position_bias"]), json.loads(row["leader"]), **frames)


def restate(store: Store, review: ReviewSettings) -> int:
    """Recompute, once, every pair set whose newest stored result was computed by an older
    method (stats.METHOD_VERSION); returns how many. Run by the owner in the background, so a
    page never pays for it."""
    stale = [r["pair_set_id"] for r in store.rows("""
        SELECT pair_set_id, settings FROM review_results
        QUALIFY row_number() OVER (PARTITION BY pair_set_id ORDER BY computed_at DESC) = 1""")
             if json.loads(r["settings"]).get("method") != stats.METHOD_VERSION]
    for pair_set_id in stale:
        compute(store, OWNER, pair_set_id, review)
    return len(stale)


def export(store: Store, actor: User, pair_set_id: str, review: ReviewSettings, fmt: str,
           table: str = "comparisons", res: Results | None = None) -> tuple[bytes, str, str]:
    """(data, file name, MIME type) of one results table as CSV, JSON (records) or Parquet, or the whole
    HTML report.

    `table` may also be "votes": every vote with the model names, for the lead only.
    """
    require(actor, Action.REVIEW_RESULTS)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    if fmt != "html" and table == "votes":
        require(actor, Action.REVIEW_REVEAL)  # before anything is computed (and stored) for the caller
    elif fmt != "html" and table not in TABLES:
        raise InvalidInput(f"table: {table!r} is not one of {', '.join(TABLES + ('votes',))}")
    res = res if res is not None and res.pair_set_id == pair_set_id else latest(store, actor, pair_set_id, review)
    if res is None:
        raise InvalidInput("There are no votes in this pair set yet: nothing to export.")
    if fmt == "html":
        return report_html(store, actor, res).encode(), f"{pair_set_id}-report.html", "text/html"
    frame = _votes_frame(store, pair_set_id, include_excluded=True) if table == "votes" else getattr(res, table)
    name = f"{pair_set_id}-{table}.{fmt}"
    if fmt == "csv":
        return frame.to_csv(index=False).encode(), name, "text/csv"
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso").encode(), name, "application/json"
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue(), name, "application/vnd.apache.parquet"


def pct(x: Any) -> str:
    """A share as a whole percent, with a decimal where rounding would make it read as 50%."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    text = f"{100 * x:.0f}%"
    return f"{100 * x:.1f}%" if text == "50%" and abs(x - 0.5) > 1e-12 else text


def units(c: dict) -> str:
    """ "40 prompts, 120 votes, 3 raters each" of one comparison row."""
    prompts, votes = c.get("prompts"), c["n"]
    if not prompts:
        return f"{votes} votes"
    each = votes / prompts
    return (f"{prompts} prompt{'s' if prompts != 1 else ''}, {votes} votes, "
            f"{each:.0f} rater{'s' if round(each) != 1 else ''} each" if abs(each - round(each)) < 1e-9
            else f"{prompts} prompts, {votes} votes, {each:.1f} raters each on average")


def comparison_sentence(c: dict, level: float) -> str:
    """The verdict of one comparison: its word follows from the interval printed beside it."""
    a, b, rate = c["a"], c["b"], c["rate"]
    ci = f"{int(round(100 * level))}% CI {pct(c['lo'])}–{pct(c['hi'])}"
    if c["significant"]:
        better, share = (a, rate) if rate > 0.5 else (b, 1 - rate)
        head = (f"{a} vs {b}: {better} is better — preferred on {pct(share)} of prompts ({a}'s win rate "
                f"{pct(rate)}, {ci}, all of it {'above' if rate > 0.5 else 'below'} 50%")
        head += f"; {units(c)}; p = {c['p']:.3g})."
    else:
        head = (f"{a} vs {b}: no clear difference — {a}'s win rate {pct(rate)} ({ci} includes 50%; "
                f"{units(c)}; p = {c['p']:.3g}).")
        more = c.get("more_prompts")
        if more is not None and not (isinstance(more, float) and math.isnan(more)):
            head += (f" About {int(more)} more prompts would give 80% power at the rate seen so far." if more > 0 else
                     " The set has enough prompts for 80% power at the rate seen so far; this is chance-sized.")
    low, high = c.get("rate_without_low"), c.get("rate_without_high")
    if low is not None and not (isinstance(low, float) and math.isnan(low)):
        head += (f" Leaving one rater out moves {a}'s win rate between {pct(low)} (without {c['rater_low']}) and "
                 f"{pct(high)} (without {c['rater_high']})")
        moving = c.get("raters_moving_verdict") or ""
        head += f"; without {moving} the verdict would change." if moving else "; the verdict holds without any one."
    flips = c.get("flips_significance")
    if flips is not None and not (isinstance(flips, float) and math.isnan(flips)) and flips >= 0:
        head += f" {int(flips)} flipped vote(s) would change whether it is significant."
    return head


def verdict(res: Results) -> list[str]:
    """The result in sentences, as a lead would say it."""
    level = res.settings.get("confidence", 0.95)
    lines = [comparison_sentence(c, level) for c in res.comparisons.to_dict("records")]
    lead = res.leader
    if lead.get("leader"):
        if lead["flips"] is not None and lead["flips"] >= 0:
            robust = f"{lead['flips']} flipped vote(s) would change the leader"
        else:
            robust = "they were not compared head to head, so no single flipped vote between them decides it"
        lines.append(f"Bradley-Terry leader: {lead['leader']} (runner-up {lead['runner_up']}); {robust}.")
    pb = res.position_bias
    if pb.get("n"):
        lines.append(f"Response 1 was chosen in {pct(pb['share_first'])} of {pb['n']} decisive votes "
                     f"(p = {pb['p']:.3g}{', position bias' if pb['p'] < res.settings['alpha'] else ''}).")
    return lines


def plan_now(store: Store, actor: User, pair_set_id: str, res: Results | None, review: ReviewSettings) -> stats.Plan:
    """The set's plan figure: its prompts and raters per pair, with the intra-class correlation
    of its own votes once some prompt has two (stats.PLAN_ICC before)."""
    require(actor, Action.REVIEW_RESULTS)
    ps = get_pair_set(store, actor, pair_set_id)
    prompts = store.scalar("SELECT count(DISTINCT prompt_idx) FROM pairs WHERE pair_set_id = ? AND NOT withdrawn "
                           "AND gold_better IS NULL", [pair_set_id])
    icc = res.icc if res is not None else None
    return stats.plan(max(1, int(prompts or 0)), int(ps["raters_per_pair"]), icc, level=review.confidence)


def report_html(store: Store, actor: User, res: Results) -> str:
    """A self-contained HTML report (no scripts, every value escaped)."""
    require(actor, Action.REVIEW_RESULTS)
    ps = get_pair_set(store, actor, res.pair_set_id)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(ps['name'])} — tuneboard review</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}</style></head><body>",
             f"<h1>{esc(ps['name'])}</h1>",
             f"<p>Pair set {esc(ps['pair_set_id'])} from generation set {esc(ps['generation_set_id'])}; "
             f"{res.n_prompts} prompts, {res.n_votes} votes; computed {esc(str(res.computed_at))} (result {esc(res.result_id)}); "
             f"excluded raters: {esc(', '.join(res.excluded) or 'none')}.</p>",
             "<h2>Verdict</h2><ul>" + "".join(f"<li>{esc(v)}</li>" for v in verdict(res)) + "</ul>",
             f"<p>{esc(stats.UNIT_RULE)} {esc(stats.TIE_RULE)}</p>",
             f"<p>Fleiss' κ {res.fleiss_kappa if res.fleiss_kappa is not None else '–'}; "
             f"Krippendorff's α {res.krippendorff_alpha if res.krippendorff_alpha is not None else '–'}.</p>"]
    for title, frame in (("Bradley-Terry ladder", res.ladder), ("Comparisons", res.comparisons),
                         ("Agreement (Cohen's κ per rater pair)", res.agreement), ("Raters", res.raters)):
        parts.append(f"<h2>{esc(title)}</h2>" + frame.to_html(index=False, escape=True, na_rep="–",
                                                              float_format=lambda x: f"{x:.3f}"))
    parts.append("</body></html>")
    return "\n".join(parts)
