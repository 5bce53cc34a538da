"""Judges and their runs: a judge is a model variant plus a pairwise prompt (core.judge.prompts),
kept with the prompt's text and version; a run judges every pair of a pair set in both orders.

A run is a generation set (source kind "judge") whose prompts are the rendered judge chats, two
per pair, answered greedily by the judge's variant: the serving paths, progress, cancel and
resume of generation jobs are the judge's too, and its raw outputs are stored like any other.
Each output is read (`prompts.parse`) when the run's verdicts are asked for, so the raw text
always stays beside the verdict drawn from it. What the judge is sent is what a rater sees: the
pair set's instructions, the conversation and the two responses, never a model's name. Raters
never see judge verdicts: reading them needs `review.results` (leads and engineers).
"""

from __future__ import annotations

import json
import uuid

import pandas as pd

from core import variants
from core.auth import Action, User, require
from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.jobs import Jobs
from core.judge import calibration, prompts
from core.store import Store

ORDERS = ("a", "b")  # which of the pair's responses the judge is shown first
JUDGE_TOKENS = 256   # a short reason and the verdict line (prompts.ANSWER_PATTERN fits at any tokenizer)
VERDICT_CHOICES = {"marker": "Verdict:", "options": ["1", "2", "tie"]}  # read where the backend gives logprobs


def define_judge(store: Store, actor: User, name: str, variant_id: str, prompt: str = "balanced",
                 system: str = "", template: str = "") -> str:
    """A judge from a variant and a built-in prompt, or the caller's own (`system` and `template`)."""
    require(actor, Action.JOBS_RUN)
    name = name.strip()
    if not name:
        raise InvalidInput("name: give the judge a name")
    if store.scalar("SELECT count(*) FROM judges WHERE name = ?", [name]):
        raise InvalidInput(f"name: a judge called {name!r} exists; choose another name")
    if template.strip():
        chosen = prompts.check_prompt(prompt, system, template)
    elif prompt in prompts.BUILT_IN:
        chosen = prompts.BUILT_IN[prompt]
    else:
        raise InvalidInput(f"prompt: {prompt!r} is not one of {', '.join(prompts.BUILT_IN)} (or give a template)")
    row = variants.get_row(store, variant_id)
    kind = row["kind"] if row else None
    if variant_id != "base" and kind is None:
        raise InvalidInput(f"variant: no variant {variant_id!r}; see the Generations page or `tuneboard contenders "
                           "list`")
    if kind == "prompted":
        raise InvalidInput(f"variant: {variant_id} is a prompted contender, whose system prompt would replace the "
                           "judge's; choose its model or the base")
    judge_id = f"judge-{uuid.uuid4().hex[:8]}"
    store.execute("""INSERT INTO judges (judge_id, name, variant_id, prompt_name, prompt_version, system, template,
                     created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                  [judge_id, name, variant_id, chosen.name, chosen.version, chosen.system, chosen.template,
                   actor.username])
    return judge_id


def list_judges(store: Store, actor: User) -> list[dict]:
    require(actor, Action.REVIEW_RESULTS)
    return store.rows("SELECT * FROM judges ORDER BY created_at DESC, name")


def _judge(store: Store, judge_id: str) -> dict:
    row = store.row("SELECT * FROM judges WHERE judge_id = ? OR name = ?", [judge_id, judge_id])
    if row is None:
        raise NotFound(f"No judge {judge_id!r}; see `tuneboard judge list`.")
    return row


def _pairs(store: Store, pair_set_id: str) -> tuple[dict, list[dict]]:
    info = store.row("SELECT * FROM pair_sets WHERE pair_set_id = ?", [pair_set_id])
    if info is None:
        raise NotFound(f"No pair set {pair_set_id!r}; see `tuneboard review list`.")
    pairs = store.rows("""SELECT p.pair_id, p.a_text, p.b_text, g.messages FROM pairs p
                          JOIN generation_prompts g ON g.set_id = ? AND g.prompt_idx = p.prompt_idx
                          WHERE p.pair_set_id = ? AND NOT p.withdrawn ORDER BY p.pair_id""",
                       [info["generation_set_id"], pair_set_id])
    return info, pairs


def run_judge(store: Store, jobs: Jobs, settings: Settings, actor: User, judge_id: str, pair_set_id: str,
              path: str = "auto") -> str:
    """Judge every pair of a pair set in both orders (greedy); returns the run's set id (its job id)."""
    from core.serving import Choices, Decoding, GenerationSpec, generate

    require(actor, Action.JOBS_RUN)
    judge = _judge(store, judge_id)
    info, pairs = _pairs(store, pair_set_id)
    if not pairs:
        raise InvalidInput(f"{pair_set_id} has no pairs to judge (all withdrawn?)")
    prompt = prompts.JudgePrompt(judge["prompt_name"], judge["system"], judge["template"])
    chats = []
    for p in pairs:
        texts = {"a": p["a_text"], "b": p["b_text"]}
        for first in ORDERS:
            second = "b" if first == "a" else "a"
            chats.append({"messages": prompts.render(prompt, json.loads(p["messages"]), info["instructions"],
                                                     texts[first], texts[second]),
                          "reference": None, "source_ref": f"{pair_set_id}:{p['pair_id']}:{first}"})
    source = {"kind": "judge", "judge_id": judge["judge_id"], "judge": judge["name"], "pair_set_id": pair_set_id,
              "prompt": judge["prompt_name"], "prompt_version": judge["prompt_version"],
              "variant_id": judge["variant_id"]}
    spec = GenerationSpec(f"judge {judge['name']} on {info['name']}", [judge["variant_id"]], chats, source,
                          Decoding(temperature=0.0, max_tokens=JUDGE_TOKENS), path, pattern=prompts.ANSWER_PATTERN,
                          choices=Choices.of({"choices": VERDICT_CHOICES}))
    return generate(store, jobs, settings, actor, spec)


def runs(store: Store, actor: User, pair_set_id: str | None = None) -> list[dict]:
    """Judge runs, newest first, with their job status and how many of their judge calls are answered."""
    require(actor, Action.REVIEW_RESULTS)
    rows = store.rows("""SELECT g.set_id, g.name, g.created_at, g.source, g.n_prompts, j.status, j.error,
                                (SELECT count(*) FROM generations o WHERE o.set_id = g.set_id) AS n_outputs
                         FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id
                         WHERE json_extract_string(g.source, '$.kind') = 'judge' ORDER BY g.created_at DESC""")
    for r in rows:
        r["source"] = json.loads(r["source"])
    return [r for r in rows if pair_set_id in (None, r["source"]["pair_set_id"])]


def _sides(first: str, said: str | None) -> str | None:
    """The judge's answer about "Response 1" / "Response 2" as a side of the pair."""
    if said in (None, "tie"):
        return said
    return first if said == "1" else ("b" if first == "a" else "a")


def verdicts(store: Store, actor: User, set_id: str) -> pd.DataFrame:
    """One row per judged pair: the verdict of each order in terms of a / b / tie (None: unreadable),
    the combined verdict, both raw outputs, the words of a response that address the judge, the tag of
    the pair's prompt in its dataset (None where it has none), and, where
    the backend gave logprobs for both orders, the judge's probability of a, b and a tie (the mean over
    the two orders of its probability of each answer where its verdict starts; None otherwise)."""
    require(actor, Action.REVIEW_RESULTS)
    source = store.scalar("SELECT source FROM generation_sets WHERE set_id = ?", [set_id])
    if source is None or json.loads(source).get("kind") != "judge":
        raise NotFound(f"No judge run {set_id!r}; see `tuneboard judge runs`.")
    pair_set_id = json.loads(source)["pair_set_id"]
    rows = store.rows("""SELECT p.source_ref, g.output, g.choices FROM generation_prompts p
                         JOIN generations g ON g.set_id = p.set_id AND g.prompt_idx = p.prompt_idx
                         WHERE p.set_id = ?""", [set_id])
    texts = {r["pair_id"]: r for r in store.rows(
        """SELECT p.pair_id, p.a_text, p.b_text, e.tag FROM pairs p
           JOIN pair_sets s ON s.pair_set_id = p.pair_set_id
           LEFT JOIN generation_prompts g ON g.set_id = s.generation_set_id AND g.prompt_idx = p.prompt_idx
           LEFT JOIN examples e ON e.version_id = split_part(g.source_ref, ':', 1)
                AND e.idx = TRY_CAST(split_part(g.source_ref, ':', 3) AS INTEGER)
           WHERE p.pair_set_id = ?""", [pair_set_id])}
    by_pair: dict[int, dict] = {}
    for r in rows:
        _, pair_id, first = r["source_ref"].rsplit(":", 2)
        row = by_pair.setdefault(int(pair_id), {"pair_id": int(pair_id), "a_first": None, "b_first": None,
                                                "a_first_raw": None, "b_first_raw": None, "probs": {}})
        row[f"{first}_first"], row[f"{first}_first_raw"] = _sides(first, prompts.parse(r["output"])), r["output"]
        if r["choices"]:
            said = json.loads(r["choices"])
            row["probs"][first] = {_sides(first, k): said[k] for k in ("1", "2", "tie")}
    for row in by_pair.values():
        probs = row.pop("probs")
        both = len(probs) == 2
        for side in ("a", "b", "tie"):
            row[f"p_{side}"] = (probs["a"][side] + probs["b"][side]) / 2 if both else None
    out = pd.DataFrame(list(by_pair.values()), columns=["pair_id", "a_first", "b_first", "a_first_raw",
                                                         "b_first_raw", "p_a", "p_b", "p_tie"]).sort_values("pair_id")
    out["verdict"] = [calibration.combine(x, y) for x, y in zip(out["a_first"], out["b_first"])]
    out["injection"] = [prompts.injection(texts[p]["a_text"]) or prompts.injection(texts[p]["b_text"])
                        if p in texts else None for p in out["pair_id"]]
    out["flagged"] = out["injection"].notna()
    out["tag"] = [texts[p]["tag"] if p in texts else None for p in out["pair_id"]]
    return out.reset_index(drop=True)


def _votes(store: Store, pair_set_id: str) -> pd.DataFrame:
    """The experts' votes on a pair set (excluded raters left out, as in the review results)."""
    return store.df("""SELECT v.pair_id, v.rater, v.outcome FROM votes v WHERE v.pair_set_id = ? AND v.rater NOT IN
                       (SELECT rater FROM rater_exclusions WHERE pair_set_id = v.pair_set_id)""", [pair_set_id])


def against_experts(store: Store, actor: User, set_id: str, level: float = 0.95) -> dict:
    """The run's judge against the pair set's expert votes (core.judge.calibration), with the
    judge's name and fingerprint. Votes of excluded raters are left out, as in the review results."""
    judged = verdicts(store, actor, set_id)
    source = json.loads(store.scalar("SELECT source FROM generation_sets WHERE set_id = ?", [set_id]))
    votes = _votes(store, source["pair_set_id"])
    return {"judge": source["judge"], "prompt": source["prompt"], "prompt_version": source["prompt_version"],
            "variant_id": source["variant_id"], "pair_set_id": source["pair_set_id"],
            **calibration.calibrate(judged, votes, level=level)}


def alignment(store: Store, actor: User, pair_set_id: str, seed: int = 0) -> dict:
    """The judge prompts run on one pair set compared on its expert votes (core.judge.calibration.
    compare_prompts): each judge's newest finished run, chosen on a calibration half, reported on the
    other."""
    require(actor, Action.REVIEW_RESULTS)
    newest: dict[str, str] = {}
    for r in runs(store, actor, pair_set_id):  # newest first
        if r["status"] == "succeeded":
            newest.setdefault(r["source"]["judge"], r["set_id"])
    votes = _votes(store, pair_set_id)
    judged = {name: verdicts(store, actor, set_id) for name, set_id in newest.items()}
    return {"runs": newest, **calibration.compare_prompts(judged, votes, seed=seed)}


def comparisons(store: Store, actor: User, set_id: str, level: float = 0.95) -> list[dict]:
    """The judge's own verdict per comparison of the pair set (gold pairs left out, as in the experts'
    ladder), kept apart from the experts': per pair a
    score for side a (win 1, tie or inconsistent 0.5, loss 0; unreadable pairs left out), and a's win
    rate over pairs with the interval and test the expert results use (core.review.stats.prompt_rate)."""
    from core.review.stats import prompt_rate

    judged = verdicts(store, actor, set_id)
    pair_set_id = json.loads(store.scalar("SELECT source FROM generation_sets WHERE set_id = ?", [set_id]))[
        "pair_set_id"]
    sides = store.df("SELECT pair_id, a, b FROM pairs WHERE pair_set_id = ?", [pair_set_id])
    frame = judged.merge(sides, on="pair_id")
    frame = frame[~frame["a"].str.startswith("gold:")]  # gold pairs check raters (and judges), not the ladder
    out = []
    for (a, b), g in frame.groupby(["a", "b"], sort=True):
        read = g[g["verdict"].notna()]
        scores = read["verdict"].map({"a": 1.0, "b": 0.0, "tie": 0.5, "inconsistent": 0.5}).to_numpy(float)
        rate = prompt_rate(scores, level)
        out.append({"a": a, "b": b, "pairs": int(len(g)), "a_wins": int((read["verdict"] == "a").sum()),
                    "b_wins": int((read["verdict"] == "b").sum()), "ties": int((read["verdict"] == "tie").sum()),
                    "inconsistent": int((read["verdict"] == "inconsistent").sum()),
                    "unreadable": int(g["verdict"].isna().sum()), "rate": rate.rate, "lo": rate.lo, "hi": rate.hi,
                    "p": rate.p, "significant": rate.significant})
    return out
