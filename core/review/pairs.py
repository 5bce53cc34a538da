"""Pair sets: blind A/B pairs made from stored generations, gold pairs, rater assignment.

A pair holds two variants in the set's canonical order (a, b) and a stored coin flip that
decides which of them is "Response 1". Nothing here reaches a rater's browser: the rating
page only ever gets `core.review.desk.PairView`.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from core import audit
from core.auth import Action, Role, User, require
from core.errors import InvalidInput, NotFound
from core.fields import out_of_range, setting
from core.review import stats
from core.store import Store, insert_rows

DESIGNS = ("baseline", "all-pairs")
GOLD_REFERENCE = "gold:reference"
GOLD_CORRUPTED = "gold:corrupted"

# Words by which a response can give its model away (a model naming itself or its maker).
# Variant names, run ids and the base model's name are added per pair set.
IDENTITY_WORDS = (
    "openai", "chatgpt", "gpt-3", "gpt-4", "gpt", "anthropic", "claude", "llama", "meta ai", "mistral",
    "mixtral", "qwen", "gemma", "gemini", "phi-3", "deepseek", "smollm", "smollm2", "hugging face",
    "huggingface",
)
# Hints worth a flag inside a response, but fine in a pair set's name: they name no side.
GENERIC_HINTS = ("language model", "fine-tuned", "finetuned", "base model", "lora", "adapter")
# Parts of model and folder names too common to identify anything.
_COMMON_PARTS = {"base", "adapter", "merged", "external", "instruct", "chat", "model", "models", "runs", "workspace",
                 "checkpoint", "final", "gguf", "tmp", "home"}
@dataclass
class PairSetSpec:
    """What a lead asks for; the form, the CLI and the stored record use this one object."""

    name: str
    generation_set_id: str
    variants: list[str]
    design: str = setting("baseline", "baseline: each variant against the baseline (fine-tuned vs base); "
                          "all-pairs: every two variants.", choices=DESIGNS)
    baseline: str = "base"
    raters: list[str] = field(default_factory=list)
    raters_per_pair: int = setting(3, "How many raters see each pair; 2 or more give agreement statistics.",
                                   min=1, max=100)
    gold_rate: float = setting(0.1, "Share of gold pairs (the reference answer against a corrupted one) mixed in "
                               "to check raters.", min=0.0, max=0.5)
    seed: int = 0
    instructions: str = setting("", "Shown to raters above every pair. Must not name a model.")
    max_prompts: int = setting(0, "Use only the first N prompts of the generation set (0 = all).",
                               min=0, max=10_000_000)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def identity_terms(variants: list[dict[str, Any]], base_model: str) -> list[str]:
    """Every word that would tell a rater which model wrote a response (lower case)."""
    terms = set(IDENTITY_WORDS)

    def add(value: str) -> None:
        for part in re.split(r"[:/\\\s()]+", value.lower()):
            if len(part) >= 4 and part not in _COMMON_PARTS:
                terms.add(part)
                # "smollm2" from "smollm2-135m-instruct": the parts that mix letters and digits.
                terms.update(sub for sub in re.split(r"[-_.]", part)
                             if len(sub) >= 4 and re.search(r"[a-z]", sub) and re.search(r"\d", sub))

    for v in variants:
        for key in ("variant_id", "name", "model"):
            add(str(v.get(key) or ""))
    add(Path(base_model).name if base_model else "")
    return sorted(terms)


def identity_hits(text: str, terms: list[str]) -> list[str]:
    low = text.lower()
    return [t for t in terms if re.search(r"(?<![a-z0-9])" + re.escape(t) + r"(?![a-z0-9])", low)]


def _check_blind_text(label: str, text: str, terms: list[str], problems: list[str]) -> None:
    hits = identity_hits(text, terms)
    if hits:
        problems.append(f"{label}: raters see it, so it must not name a model or run ({', '.join(hits)}); "
                        "use a neutral name such as 'Support replies, round 1'.")


def _corrupt(reference: str, other: str | None, rng: np.random.Generator) -> tuple[str, str]:
    """A clearly worse answer for a gold pair: another prompt's reference, or the reference cut short."""
    if other is not None and other.strip() != reference.strip() and rng.random() < 0.5:
        return other, "reference vs another prompt's reference"
    words = reference.split()
    keep = max(1, len(words) * 2 // 5)
    return " ".join(words[:keep]), "reference vs the reference cut to 40%"


def _raters(store: Store, usernames: list[str]) -> list[str]:
    problems = []
    found = {r["username"]: r for r in store.rows(
        "SELECT username, role, disabled FROM users WHERE username IN (SELECT unnest(?))", [usernames])} \
        if usernames else {}
    for name in usernames:
        r = found.get(name)
        if r is None:
            problems.append(f"raters: no account {name!r}")
        elif r["role"] != Role.RATER.value:
            problems.append(f"raters: {name} is a {r['role']}; only rater accounts rate pairs")
        elif r["disabled"]:
            problems.append(f"raters: {name} is disabled")
    if len(set(usernames)) != len(usernames):
        problems.append("raters: a rater is listed twice")
    if problems:
        raise InvalidInput("; ".join(problems))
    return list(usernames)


def plan_pair_set(store: Store, actor: User, spec: PairSetSpec) -> stats.Plan | None:
    """What the pair set `spec` describes could detect, before it is made (stats.plan): the
    prompts of its thinnest comparison, its raters per pair, the prior intra-class correlation.
    None while the spec names fewer than two of the set's variants."""
    require(actor, Action.REVIEW_MANAGE)
    variants = list(dict.fromkeys(spec.variants))
    if len(variants) < 2 or spec.raters_per_pair < 1:
        return None
    if spec.design == "baseline":
        if spec.baseline not in variants:
            return None
        comparisons = [(v, spec.baseline) for v in variants if v != spec.baseline]
    else:
        comparisons = list(combinations(variants, 2))
    have: dict[str, set[int]] = {}
    for r in store.rows("SELECT DISTINCT variant_id, prompt_idx FROM generations WHERE set_id = ? "
                        "AND variant_id IN (SELECT unnest(?))", [spec.generation_set_id, variants]):
        have.setdefault(r["variant_id"], set()).add(r["prompt_idx"])
    every = sorted(set().union(*have.values())) if have else []
    chosen = set(every[: spec.max_prompts] if spec.max_prompts else every)
    prompts = min(len(have.get(a, set()) & have.get(b, set()) & chosen) for a, b in comparisons)
    return stats.plan(prompts, spec.raters_per_pair) if prompts else None


def create_pair_set(store: Store, actor: User, spec: PairSetSpec) -> str:
    """Build every pair (and the gold pairs) of a pair set and, if raters are named, assign them."""
    require(actor, Action.REVIEW_MANAGE)
    problems: list[str] = []
    name = spec.name.strip()
    if not name or len(name) > 120:
        problems.append("name: give the pair set a name of 1 to 120 characters")
    gen = store.row("SELECT * FROM generation_sets WHERE set_id = ?", [spec.generation_set_id])
    if gen is None:
        raise NotFound(f"generation_set_id: no generation set {spec.generation_set_id!r}; start one on the "
                       "Generations page first.")
    if json.loads(gen["source"] or "{}").get("kind") == "judge":
        raise InvalidInput(f"generation_set_id: {spec.generation_set_id} is a judge run (its outputs are verdicts, "
                           "and experts never see a judge's verdict); choose a generation set of answers.")
    gen_variants = json.loads(gen["variants"])
    by_id = {v["variant_id"]: v for v in gen_variants}
    variants = list(dict.fromkeys(spec.variants))
    for v in variants:
        if v not in by_id:
            problems.append(f"variants: {v!r} is not in generation set {spec.generation_set_id} "
                            f"(it has {', '.join(by_id)})")
    if len(variants) < 2:
        problems.append("variants: choose at least two variants to compare")
    problems += out_of_range(spec)
    if spec.design == "baseline" and spec.baseline not in variants:
        problems.append(f"baseline: {spec.baseline!r} must be one of the chosen variants")
    if len(spec.instructions) > 4000:
        problems.append("instructions: at most 4,000 characters")
    terms = identity_terms(gen_variants, gen["base_model"])  # any model of the set, chosen or not
    output_terms = sorted(set(terms) | set(GENERIC_HINTS))
    _check_blind_text("name", name, terms, problems)
    _check_blind_text("instructions", spec.instructions, terms, problems)
    if spec.raters:
        try:
            _raters(store, spec.raters)
        except InvalidInput as exc:
            problems.append(str(exc))
        if spec.raters_per_pair > len(spec.raters):
            problems.append(f"raters_per_pair: {spec.raters_per_pair} raters per pair needs at least that many "
                            f"raters (got {len(spec.raters)})")
    if problems:
        raise InvalidInput("The pair set was not created:\n" + "\n".join(f"  - {p}" for p in problems))

    if spec.design == "baseline":
        comparisons = [(v, spec.baseline) for v in variants if v != spec.baseline]
    else:
        comparisons = list(combinations(variants, 2))
    outs = store.rows("SELECT prompt_idx, variant_id, output FROM generations WHERE set_id = ? "
                      "AND variant_id IN (SELECT unnest(?))", [spec.generation_set_id, variants])
    text = {(o["prompt_idx"], o["variant_id"]): o["output"] for o in outs}
    prompts = sorted({p for p, _ in text})
    if spec.max_prompts:
        prompts = prompts[: spec.max_prompts]
    refs = {r["prompt_idx"]: r["reference"] for r in store.rows(
        "SELECT prompt_idx, reference FROM generation_prompts WHERE set_id = ? AND reference IS NOT NULL "
        "AND length(trim(reference)) > 0", [spec.generation_set_id])}

    rng = np.random.default_rng(spec.seed)
    rows: list[list[Any]] = []
    for a, b in comparisons:
        for p in prompts:
            if (p, a) in text and (p, b) in text:
                ta, tb = text[(p, a)], text[(p, b)]
                hits = sorted(set(identity_hits(ta, output_terms)) | set(identity_hits(tb, output_terms)))
                rows.append([p, a, b, bool(rng.random() < 0.5), ta, tb, None, None, json.dumps(hits)])
    if not rows:
        raise InvalidInput(f"variants: generation set {spec.generation_set_id} has no prompt with outputs from "
                           "both sides of any comparison; wait for it to finish or pick other variants.")
    gold_prompts = [p for p in prompts if p in refs]
    n_gold = int(round(len(rows) * spec.gold_rate / (1.0 - spec.gold_rate))) if gold_prompts else 0
    # Each gold prompt at most once (a rater never meets the same gold pair twice).
    for p in rng.permutation(gold_prompts)[:n_gold]:
        p = int(p)
        other = refs[gold_prompts[int(rng.integers(len(gold_prompts)))]] if len(gold_prompts) > 1 else None
        corrupted, source = _corrupt(refs[p], other, rng)
        if corrupted.strip() == refs[p].strip():
            continue  # a one-word reference cannot be cut short: no gold pair from it
        rows.append([p, GOLD_REFERENCE, GOLD_CORRUPTED, bool(rng.random() < 0.5), refs[p], corrupted, "a", source,
                     "[]"])
    n_gold = sum(1 for r in rows if r[6] is not None)
    order = rng.permutation(len(rows))  # pair ids carry no hint of comparison or gold
    pair_set_id = f"pairs-{_now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    record = {"variants": variants, "comparisons": [list(c) for c in comparisons], "design": spec.design}
    with store.transaction() as cur:
        cur.execute("""INSERT INTO pair_sets (pair_set_id, name, instructions, generation_set_id, variants,
                       comparisons, design, raters_per_pair, gold_rate, seed, created_by)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [pair_set_id, name, spec.instructions.strip(), spec.generation_set_id,
                     json.dumps(variants), json.dumps(record["comparisons"]), spec.design, spec.raters_per_pair,
                     spec.gold_rate, spec.seed, actor.username])
        insert_rows(cur, "pairs", ["pair_set_id", "pair_id", "prompt_idx", "a", "b", "left_is_a", "a_text", "b_text",
                                   "gold_better", "gold_source", "identity_flags"],
                    [[pair_set_id, int(new_id)] + rows[old] for new_id, old in enumerate(order)])
        audit.record(cur, actor, "pair_set.create", pair_set_id,
                     json.dumps({"pairs": len(rows), "gold": n_gold, **record}))
        if spec.raters:
            _assign(cur, pair_set_id, spec.raters, spec.raters_per_pair, spec.seed)
    return pair_set_id


def _assign(cur, pair_set_id: str, raters: list[str], k: int, seed: int) -> dict[str, int]:
    """Give each live pair k raters, evenly; keep what was voted and what still fits.

    Stable: run twice with the same raters it changes nothing. A rater dropped from the list
    loses only unvoted pairs; those go to the least-loaded remaining raters. A rater added
    later takes over unvoted pairs from the most-loaded until loads differ by at most one.
    Returns new assignments per rater.
    """
    pair_ids = [r[0] for r in cur.execute(
        "SELECT pair_id FROM pairs WHERE pair_set_id = ? AND NOT withdrawn ORDER BY pair_id", [pair_set_id]).fetchall()]
    voted: dict[int, set[str]] = {}
    for pid, rater in cur.execute("SELECT pair_id, rater FROM votes WHERE pair_set_id = ?", [pair_set_id]).fetchall():
        voted.setdefault(pid, set()).add(rater)
    assigned: dict[int, set[str]] = {}
    for pid, rater in cur.execute("SELECT pair_id, rater FROM assignments WHERE pair_set_id = ?",
                                  [pair_set_id]).fetchall():
        assigned.setdefault(pid, set()).add(rater)
    rng = np.random.default_rng([seed, len(raters), k, 17])
    load = {r: 0 for r in raters}
    before = {r: sum(1 for rs in assigned.values() if r in rs) for r in raters}
    keep: dict[int, set[str]] = {}
    for pid in pair_ids:
        done = voted.get(pid, set())
        # With fewer raters per pair than before, the least-loaded keep their pending pairs.
        pending = sorted((assigned.get(pid, set()) - done) & set(raters), key=lambda r: (before[r] + load[r], r))
        kept = set(done) | set(pending[: max(0, k - len(done))])
        keep[pid] = kept
        for r in kept & set(raters):
            load[r] += 1
    new: dict[str, list[int]] = {r: [] for r in raters}
    for pid in [pair_ids[i] for i in rng.permutation(len(pair_ids))]:
        need = k - len(keep[pid])
        if need <= 0:
            continue
        eligible = [r for r in raters if r not in keep[pid]]
        jitter = rng.random(len(eligible))
        chosen = [eligible[i] for i in sorted(range(len(eligible)), key=lambda i: (load[eligible[i]], jitter[i]))[:need]]
        for r in chosen:
            keep[pid].add(r)
            load[r] += 1
            new[r].append(pid)
    # Even out: move unvoted pairs from the most- to the least-loaded (a rater added later gets work).
    for pid in [pair_ids[i] for i in rng.permutation(len(pair_ids))]:
        movable = sorted((r for r in keep[pid] if r in load and r not in voted.get(pid, set())),
                         key=lambda r: -load[r])
        for r in movable:
            free = [u for u in raters if u not in keep[pid]]
            if not free:
                break
            u = min(free, key=lambda x: (load[x], x))
            if load[r] - load[u] <= 1:
                continue
            keep[pid].discard(r)
            keep[pid].add(u)
            load[r] -= 1
            load[u] += 1
            if pid in new[r]:
                new[r].remove(pid)
            new[u].append(pid)
    # Drop unvoted assignments that are no longer wanted, then append the new ones to each queue.
    stale = [(pid, r) for pid, rs in assigned.items() for r in rs
             if r not in voted.get(pid, set()) and r not in keep.get(pid, set())]
    if stale:
        cur.executemany("DELETE FROM assignments WHERE pair_set_id = ? AND pair_id = ? AND rater = ?",
                        [[pair_set_id, pid, r] for pid, r in stale])
    rows = []
    for r, pids in new.items():
        start = cur.execute("SELECT coalesce(max(position), -1) + 1 FROM assignments WHERE pair_set_id = ? "
                            "AND rater = ?", [pair_set_id, r]).fetchone()[0]
        for offset, i in enumerate(rng.permutation(len(pids))):
            rows.append([pair_set_id, r, pids[i], start + offset])
    if rows:
        insert_rows(cur, "assignments", ["pair_set_id", "rater", "pair_id", "position"], rows)
    cur.execute("UPDATE pair_sets SET assign_version = assign_version + 1, raters_per_pair = ? "
                "WHERE pair_set_id = ?", [k, pair_set_id])
    return {r: len(p) for r, p in new.items()}


def assign_raters(store: Store, actor: User, pair_set_id: str, raters: list[str], k: int | None = None) -> dict[str, int]:
    """(Re)assign a pair set's pairs to these raters, k per pair. Votes already cast are kept."""
    require(actor, Action.REVIEW_MANAGE)
    ps = get_pair_set(store, actor, pair_set_id)
    k = ps["raters_per_pair"] if k is None else int(k)
    _raters(store, raters)
    if not 1 <= k <= len(raters):
        raise InvalidInput(f"raters_per_pair: {k} raters per pair needs between 1 and {len(raters)} "
                           f"(the number of raters chosen)")
    with store.transaction() as cur:
        added = _assign(cur, pair_set_id, raters, k, ps["seed"])
        audit.record(cur, actor, "pair_set.assign", pair_set_id, json.dumps({"raters": raters, "k": k, "added": added}))
    return added


def withdraw_pair(store: Store, actor: User, pair_set_id: str, pair_id: int, withdrawn: bool = True) -> None:
    """Take a pair out of rating and of every statistic (e.g. a response names its model)."""
    require(actor, Action.REVIEW_MANAGE)
    with store.transaction() as cur:
        if not cur.execute("SELECT 1 FROM pairs WHERE pair_set_id = ? AND pair_id = ?", [pair_set_id, pair_id]).fetchone():
            raise NotFound(f"No pair {pair_id} in {pair_set_id}.")
        cur.execute("UPDATE pairs SET withdrawn = ? WHERE pair_set_id = ? AND pair_id = ?",
                    [withdrawn, pair_set_id, pair_id])
        if withdrawn:
            cur.execute("""DELETE FROM assignments a WHERE a.pair_set_id = ? AND a.pair_id = ? AND NOT EXISTS
                           (SELECT 1 FROM votes v WHERE v.pair_set_id = a.pair_set_id AND v.pair_id = a.pair_id
                            AND v.rater = a.rater)""", [pair_set_id, pair_id])
        cur.execute("UPDATE pair_sets SET assign_version = assign_version + 1 WHERE pair_set_id = ?", [pair_set_id])
        if not withdrawn:  # back in rating: it gets its raters again among the set's current raters
            ps = cur.execute("SELECT raters_per_pair, seed FROM pair_sets WHERE pair_set_id = ?", [pair_set_id]).fetchone()
            raters = [r[0] for r in cur.execute("SELECT DISTINCT rater FROM assignments WHERE pair_set_id = ? "
                                                "ORDER BY rater", [pair_set_id]).fetchall()]
            if raters:
                _assign(cur, pair_set_id, raters, min(ps[0], len(raters)), ps[1])
        audit.record(cur, actor, "pair.withdraw" if withdrawn else "pair.restore", pair_set_id, str(pair_id))


def mark_gold(store: Store, actor: User, pair_set_id: str, pair_id: int, better: str | None) -> None:
    """Make a pair a gold pair whose right answer is side `better` ("a" or "b"), or unmark it with None.

    Sides, not model names: an engineer marks gold from the unlabeled texts without unblinding.
    Gold pairs check raters and leave the win rates.
    """
    require(actor, Action.REVIEW_MANAGE)
    pair = store.row("SELECT a, b, gold_source FROM pairs WHERE pair_set_id = ? AND pair_id = ?", [pair_set_id, pair_id])
    if pair is None:
        raise NotFound(f"No pair {pair_id} in {pair_set_id}.")
    if pair["a"].startswith("gold:"):
        raise InvalidInput(f"Pair {pair_id} is a generated gold pair (a reference against a corrupted answer); "
                           "withdraw it instead.")
    if better is None:
        side, source = None, None
    elif better in ("a", "b"):
        side, source = better, f"marked by {actor.username}"
    else:
        raise InvalidInput(f"better: {better!r} must be side a or side b")
    with store.transaction() as cur:
        cur.execute("UPDATE pairs SET gold_better = ?, gold_source = ? WHERE pair_set_id = ? AND pair_id = ?",
                    [side, source, pair_set_id, pair_id])
        audit.record(cur, actor, "pair.gold", pair_set_id, json.dumps({"pair_id": pair_id, "better": better}))


def set_exclusion(store: Store, actor: User, pair_set_id: str, rater: str, excluded: bool, reason: str = "") -> None:
    """Leave a rater's votes out of every statistic of this pair set (or bring them back)."""
    require(actor, Action.REVIEW_MANAGE)
    get_pair_set(store, actor, pair_set_id)
    with store.transaction() as cur:
        cur.execute("DELETE FROM rater_exclusions WHERE pair_set_id = ? AND rater = ?", [pair_set_id, rater])
        if excluded:
            cur.execute("INSERT INTO rater_exclusions (pair_set_id, rater, excluded_by, reason) VALUES (?, ?, ?, ?)",
                        [pair_set_id, rater, actor.username, reason[:500]])
        audit.record(cur, actor, "rater.exclude" if excluded else "rater.include", pair_set_id, rater)


def exclusions(store: Store, actor: User, pair_set_id: str) -> list[dict]:
    require(actor, Action.REVIEW_RESULTS)
    return store.rows("SELECT * FROM rater_exclusions WHERE pair_set_id = ? ORDER BY rater", [pair_set_id])


def rater_accounts(store: Store, actor: User) -> list[str]:
    """Enabled rater accounts, for a lead choosing whom to assign."""
    require(actor, Action.REVIEW_MANAGE)
    return [r["username"] for r in store.rows(
        "SELECT username FROM users WHERE role = 'rater' AND NOT disabled ORDER BY username")]


def pairs_blind(store: Store, actor: User, pair_set_id: str) -> list[dict]:
    """Pairs with their texts as side a / side b but no model names (for marking gold without unblinding)."""
    require(actor, Action.REVIEW_MANAGE)
    return store.rows("""SELECT pair_id, prompt_idx, a_text, b_text, gold_better, gold_source, withdrawn,
                                identity_flags <> '[]' AS flagged,
                                (SELECT count(*) FROM votes v WHERE v.pair_set_id = p.pair_set_id
                                   AND v.pair_id = p.pair_id) AS votes
                         FROM pairs p WHERE pair_set_id = ? ORDER BY pair_id""", [pair_set_id])


def list_pair_sets(store: Store, actor: User) -> list[dict]:
    require(actor, Action.REVIEW_RESULTS)
    return store.rows("""
        SELECT s.pair_set_id, s.name, s.generation_set_id, s.design, s.raters_per_pair, s.gold_rate, s.created_by,
               s.created_at,
               (SELECT count(*) FROM pairs p WHERE p.pair_set_id = s.pair_set_id AND NOT p.withdrawn) AS pairs,
               (SELECT count(*) FROM pairs p WHERE p.pair_set_id = s.pair_set_id AND p.gold_better IS NOT NULL
                  AND NOT p.withdrawn) AS gold,
               (SELECT count(*) FROM assignments a WHERE a.pair_set_id = s.pair_set_id) AS assigned,
               (SELECT count(*) FROM votes v WHERE v.pair_set_id = s.pair_set_id) AS votes
        FROM pair_sets s ORDER BY s.created_at DESC""")


def get_pair_set(store: Store, actor: User, pair_set_id: str) -> dict:
    require(actor, Action.REVIEW_RESULTS)
    row = store.row("SELECT * FROM pair_sets WHERE pair_set_id = ?", [pair_set_id])
    if row is None:
        raise NotFound(f"No pair set {pair_set_id!r}; create one on the Review page.")
    for c in ("variants", "comparisons"):
        row[c] = json.loads(row[c])
    return row


def progress(store: Store, actor: User, pair_set_id: str) -> list[dict]:
    """Per rater: assigned, voted, skipped (what a lead watches while rating goes on)."""
    require(actor, Action.REVIEW_RESULTS)
    return store.rows("""
        SELECT a.rater, count(*) AS assigned, count(v.rater) AS voted,
               count(*) FILTER (WHERE s.rater IS NOT NULL AND v.rater IS NULL) AS skipped,
               max(v.created_at) AS last_vote
        FROM assignments a JOIN pairs p USING (pair_set_id, pair_id)
        LEFT JOIN votes v ON v.pair_set_id = a.pair_set_id AND v.pair_id = a.pair_id AND v.rater = a.rater
        LEFT JOIN skips s ON s.pair_set_id = a.pair_set_id AND s.pair_id = a.pair_id AND s.rater = a.rater
        WHERE a.pair_set_id = ? AND NOT p.withdrawn GROUP BY a.rater ORDER BY a.rater""", [pair_set_id])


def flagged_pairs(store: Store, actor: User, pair_set_id: str) -> list[dict]:
    """Pairs whose responses contain words that could name their model, for the lead to withdraw or keep."""
    require(actor, Action.REVIEW_REVEAL)
    rows = store.rows("""SELECT pair_id, prompt_idx, a, b, identity_flags, withdrawn, a_text, b_text FROM pairs
                         WHERE pair_set_id = ? AND identity_flags <> '[]' ORDER BY pair_id""", [pair_set_id])
    for r in rows:
        r["identity_flags"] = json.loads(r["identity_flags"])
    return rows


def pairs_revealed(store: Store, actor: User, pair_set_id: str) -> list[dict]:
    """Every pair with its model names and votes: the lead's drill-down (never for raters)."""
    require(actor, Action.REVIEW_REVEAL)
    return store.rows("""
        SELECT p.pair_id, p.prompt_idx, p.a, p.b, CASE WHEN p.left_is_a THEN p.a ELSE p.b END AS response_1,
               p.gold_better, p.gold_source, p.withdrawn, p.identity_flags, p.a_text, p.b_text,
               gp.messages,
               list(struct_pack(rater := v.rater, choice := v.choice, outcome := v.outcome,
                                rationale := v.rationale, seconds := v.seconds) ORDER BY v.rater)
                 FILTER (WHERE v.rater IS NOT NULL) AS votes
        FROM pairs p JOIN pair_sets s USING (pair_set_id)
        JOIN generation_prompts gp ON gp.set_id = s.generation_set_id AND gp.prompt_idx = p.prompt_idx
        LEFT JOIN votes v ON v.pair_set_id = p.pair_set_id AND v.pair_id = p.pair_id
        WHERE p.pair_set_id = ?
        GROUP BY ALL ORDER BY p.pair_id""", [pair_set_id])
