"""Regression runs: the probe suite answered by the base and fine-tunes, judged and stored.

A run is a generation set whose prompts are the suite's items (greedy, through the same
serving paths as everything else; each prompt's source_ref is its item id). Once it has
finished, every output is scored by its item's rule, once, into regression_items; a gate
compares a fine-tune with the base item by item (core.regression.gate) and is stored with
its settings and the gate's method version (gates.METHOD_VERSION): a gate computed by an older
rule is judged again when it is read, by `judge` or `latest_gates`. Promotion
(core.lifecycle.promotion) needs a passing gate, or an engineer's override with a written reason.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, fields, replace

import pandas as pd

from core import audit, variants
from core.auth import OWNER, Action, User, require
from core.config import RegressionSettings, Settings
from core.errors import InvalidInput, NotFound
from core.jobs import Jobs
from core.regression import gate as gates
from core.regression import suite
from core.store import Store, insert_rows

# The settings a gate depends on (a new value judges again; the demo's knobs do not).
GATE_SETTINGS = ("max_drop_points", "category_max_drop", "max_pooled_drop_points", "require_significance", "alpha",
                 "min_items", "confidence")


def _fingerprint(settings: RegressionSettings) -> str:
    """What a stored gate was computed with: its settings and the gate's method version."""
    wanted = {k: v for k, v in asdict(settings).items() if k in GATE_SETTINGS}
    return json.dumps({**wanted, "method": gates.METHOD_VERSION}, sort_keys=True)


def suite_source() -> dict:
    return {"kind": "suite", "suite": suite.SUITE_NAME, "version": suite.SUITE_VERSION,
            "fingerprint": suite.fingerprint(), "name": f"{suite.SUITE_NAME} suite v{suite.SUITE_VERSION}"}


def start_run(store: Store, jobs: Jobs, settings: Settings, actor: User, variants: list[str], name: str = "",
              path: str = "auto", limit: int | None = None) -> str:
    """Generate the suite with the base and the given fine-tunes (greedy); returns the set id.
    `limit` keeps the first items of each category (quick looks; a gate needs the whole suite)."""
    from core.serving import Decoding, GenerationSpec, generate

    require(actor, Action.GENERATE)
    items = suite.items()
    if limit:
        taken: dict[str, int] = {}
        kept = []
        for it in items:
            taken[it.category] = taken.get(it.category, 0) + 1
            if taken[it.category] <= limit:
                kept.append(it)
        items = kept
    prompts = [{"messages": [dict(m) for m in it.messages], "reference": None, "source_ref": it.item_id}
               for it in items]
    decoding = Decoding(temperature=0.0, max_tokens=max(it.max_tokens for it in items))
    ids = ["base"] + [v for v in dict.fromkeys(variants) if v != "base"]
    if len(ids) < 2:
        raise InvalidInput("variants: choose at least one fine-tuned version to compare with the base.")
    label = name.strip() or f"{suite.SUITE_NAME} suite v{suite.SUITE_VERSION}: " + ", ".join(ids[1:])
    set_id = generate(store, jobs, settings, actor, GenerationSpec(label, ids, prompts, suite_source(), decoding, path))
    with store.transaction() as cur:
        audit.record(cur, actor, "regression.run", set_id, {"variants": ids[1:], "items": limit, "path": path})
    return set_id


def runs(store: Store, actor: User) -> list[dict]:
    """Suite generation sets, newest first, with their status."""
    require(actor, Action.METRICS_VIEW)
    rows = store.rows("""SELECT g.set_id, g.name, g.created_at, g.source, g.variants, g.n_prompts, j.status, j.error
                         FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id ORDER BY g.created_at DESC""")
    out = []
    for r in rows:
        r["source"] = json.loads(r["source"] or "{}")
        if r["source"].get("kind") == "suite":
            r["variants"] = json.loads(r["variants"])
            out.append(r)
    return out


def _run(store: Store, set_id: str) -> dict:
    row = store.row("""SELECT g.*, j.status FROM generation_sets g JOIN jobs j ON j.job_id = g.set_id
                       WHERE g.set_id = ?""", [set_id])
    if row is None:
        raise NotFound(f"No generation set {set_id!r}.")
    row["source"] = json.loads(row["source"] or "{}")
    if row["source"].get("kind") != "suite":
        raise InvalidInput(f"{set_id} is not a regression-suite run (its prompts come from "
                           f"{row['source'].get('kind', 'elsewhere')}).")
    return row


def outcomes(store: Store, actor: User, set_id: str) -> pd.DataFrame:
    """Per item and variant: right or wrong, with the prompt and the answer. Scored once, the first
    time it is asked for after the run finished."""
    require(actor, Action.METRICS_VIEW)
    run = _run(store, set_id)
    if not store.scalar("SELECT count(*) FROM regression_items WHERE set_id = ?", [set_id]):
        if run["status"] != "succeeded":
            raise InvalidInput(f"{set_id} is {run['status']}: outcomes are scored once it has finished.")
        if run["source"].get("fingerprint") != suite.fingerprint():
            raise InvalidInput(f"{set_id} was generated with {run['source'].get('name')}, whose items differ from "
                               f"the installed {suite.SUITE_NAME} suite v{suite.SUITE_VERSION}: start a new run.")
        _score(store, set_id, run["source"]["version"])
    return store.df("""SELECT r.item_id, r.category, r.variant_id, r.correct, g.output, p.messages
                       FROM regression_items r
                       JOIN generation_prompts p ON p.set_id = r.set_id AND p.source_ref = r.item_id
                       JOIN generations g ON g.set_id = r.set_id AND g.prompt_idx = p.prompt_idx
                                         AND g.variant_id = r.variant_id
                       WHERE r.set_id = ? ORDER BY r.category, r.item_id, r.variant_id""", [set_id])


def _score(store: Store, set_id: str, version: str) -> None:
    by_id = {it.item_id: it for it in suite.items()}
    rows = store.rows("""SELECT p.source_ref AS item_id, g.variant_id, g.output FROM generations g
                         JOIN generation_prompts p USING (set_id, prompt_idx) WHERE g.set_id = ?""", [set_id])
    scored = [[set_id, r["item_id"], r["variant_id"], by_id[r["item_id"]].category,
               bool(suite.score(by_id[r["item_id"]], r["output"])), version] for r in rows]
    with store.transaction() as cur:
        insert_rows(cur, "regression_items", ["set_id", "item_id", "variant_id", "category", "correct",
                                              "suite_version"], scored, verb="INSERT OR IGNORE")


def baseline_of(store: Store, set_id: str, variant: str, task: str | None = None) -> str:
    """What a version's gate compares it with. A fine-tune: the base it was trained from (it must keep what
    the base can do). A contender (a newer base, a prompted base): the promoted version of its task (`task`,
    else the tasks it was registered for), which it would replace, when that version answered the same
    run; else the base."""
    row = variants.get_row(store, variant)
    if not row or row["kind"] not in variants.CONTENDER_KINDS:
        return "base"
    from core.lifecycle import promotion

    current = promotion.promoted(store, OWNER)
    answered = {v["variant_id"] for v in json.loads(_run(store, set_id)["variants"])}
    for name in [task] if task else (variants.detail(row).get("tasks") or sorted(current)):
        promoted = (current.get(name) or {}).get("current")
        if promoted and promoted != variant and promoted in answered:
            return promoted
    return "base"


def judge(store: Store, actor: User, set_id: str, variant: str, settings: RegressionSettings,
          baseline: str | None = None, task: str | None = None) -> dict:
    """The gate of `variant` in this run against its baseline (`baseline_of` unless named): stored once
    per settings, then read back."""
    require(actor, Action.METRICS_VIEW)
    frame = outcomes(store, actor, set_id)
    baseline = baseline or baseline_of(store, set_id, variant, task)
    wanted = _fingerprint(settings)
    stored = store.row("""SELECT * FROM regression_gates WHERE set_id = ? AND variant_id = ? AND baseline = ?
                          AND settings = ? ORDER BY computed_at DESC LIMIT 1""", [set_id, variant, baseline, wanted])
    if stored is None:
        pivot = frame.pivot_table(index=["category", "item_id"], columns="variant_id", values="correct",
                                  aggfunc="first")
        if variant not in pivot or baseline not in pivot:
            raise InvalidInput(f"{set_id} has no outputs of {variant if variant not in pivot else baseline}.")
        pivot = pivot[[baseline, variant]].dropna()
        rows = [(cat, bool(b), bool(t)) for (cat, _), b, t in zip(pivot.index, pivot[baseline], pivot[variant])]
        result = gates.judge(rows, settings, sorted({c for c, _, _ in rows}))
        gate_id = f"gate-{uuid.uuid4().hex[:12]}"
        with store.transaction() as cur:
            cur.execute("""INSERT INTO regression_gates (gate_id, set_id, variant_id, baseline, verdict, detail,
                           settings, computed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                        [gate_id, set_id, variant, baseline, result.verdict, json.dumps(result.to_dict()), wanted,
                         actor.username])
        stored = store.row("SELECT * FROM regression_gates WHERE gate_id = ?", [gate_id])
    stored["detail"] = json.loads(stored["detail"])
    return stored


def flips(store: Store, actor: User, set_id: str, variant: str, baseline: str = "base") -> pd.DataFrame:
    """Items the base got right and the fine-tune wrong, with the prompt and both answers."""
    frame = outcomes(store, actor, set_id)
    base = frame[frame["variant_id"] == baseline].set_index("item_id")
    mine = frame[frame["variant_id"] == variant].set_index("item_id")
    both = base.join(mine, lsuffix="_base", rsuffix="_tuned", how="inner")
    lost = both[both["correct_base"] & ~both["correct_tuned"]]
    return pd.DataFrame({"item_id": lost.index, "category": lost["category_base"].to_numpy(),
                         "prompt": [json.loads(m)[-1]["content"] for m in lost["messages_base"]],
                         "base_answer": lost["output_base"].to_numpy(), "tuned_answer": lost["output_tuned"].to_numpy()})


def restate(store: Store) -> int:
    """Judge again, once, every version whose newest gate an older rule computed (latest_gates does
    it); returns how many. Run by the owner in the background at start."""
    stale = sum(1 for r in store.rows(_NEWEST_GATES)
                if json.loads(r["settings"] or "{}").get("method") != gates.METHOD_VERSION)
    if stale:
        latest_gates(store, OWNER)
    return stale


_NEWEST_GATES = """SELECT * FROM regression_gates QUALIFY row_number() OVER (PARTITION BY variant_id
                   ORDER BY computed_at DESC) = 1"""


def latest_gates(store: Store, actor: User) -> dict[str, dict]:
    """The newest gate of each variant (what the Models page shows and promotion reads). One computed
    by an older method is judged again with the settings it was stored with (new settings at their
    defaults), so no verdict of a retired rule lets a version through."""
    require(actor, Action.METRICS_VIEW)
    query = _NEWEST_GATES
    rows = store.rows(query)
    stale = [r for r in rows if json.loads(r["settings"] or "{}").get("method") != gates.METHOD_VERSION]
    for r in stale:
        stored = json.loads(r["settings"] or "{}")
        known = {f.name for f in fields(RegressionSettings)}
        settings = replace(RegressionSettings(), **{k: v for k, v in stored.items() if k in known})
        try:
            judge(store, actor, r["set_id"], r["variant_id"], settings, r["baseline"])
        except (InvalidInput, NotFound):
            continue  # its outputs are gone or unreadable: the old row stays, marked by its settings
    return {r["variant_id"]: r for r in (store.rows(query) if stale else rows)}
