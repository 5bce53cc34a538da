"""Metric results of generation sets: what the Metrics and Home pages read.

A set's summary (means with CIs per variant and metric, paired deltas vs the base with
adjusted p-values) is computed once per scoring and stored in metric_summary/metric_deltas
with the fingerprint of what it was computed from (the score jobs, the metric versions, the
settings, the summary method's version); pages read those small tables and never aggregate
raw per-example rows. The raw rows are read only to drill down into single examples and for
export. How the figures are computed: core.metrics.registry.summarize; what the multiple-
comparison family was, and which rows are proportions, is stored with the settings.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from core.auth import OWNER, Action, User, require
from core.config import MetricsSettings
from core.errors import InvalidInput, NotFound
from core.metrics import scoring
from core.metrics.registry import METRICS, higher_is_better, metric_kind, metric_version
from core.store import Store

TABLES = ("summary", "deltas", "scores")
# Bump when the summary computation changes: stored summaries are then recomputed.
# 3: proportion intervals and paired-proportion tests for 0/1 metrics, bootstrap-t and permutation hull for
#    the others, the family = declared non-descriptive metrics with Bonferroni simultaneous intervals.
SUMMARY_VERSION = 3
EXPORT_FORMATS = ("csv", "parquet", "html")
ORDERS = {"worst": "Worst for the variant", "best": "Best for the variant",
          "regressed": "Most worse than the base", "improved": "Most better than the base"}


@dataclass
class SetMetrics:
    set_id: str
    name: str
    created_at: Any
    source: dict
    base_model: str
    names: dict[str, str]          # variant id -> display name
    metrics: list[str]             # in the order the dataset (or the scoring) lists them
    computed_at: Any
    settings: dict
    summary: pd.DataFrame          # variant, metric, metric_version, mean, lo, hi, n
    # variant, baseline, metric, delta, lo, hi, p, p_holm, p_bh, significant, direction, n. lo/hi: the simultaneous
    # interval of the family (settings["family"]["level"]) for rows with p_holm, else at `confidence`. p_holm: the
    # family-adjusted p the verdict uses (Bonferroni since summary version 3; the column keeps its stored name),
    # None outside the family; p: None for descriptive metrics (not tested).
    deltas: pd.DataFrame

    @property
    def primary(self) -> str:
        return self.metrics[0]

    @property
    def per_example(self) -> list[str]:
        """The metrics with a score per example (corpus-level ones have one per set): what drill-downs list."""
        return [m for m in self.metrics if not any("corpus-level" in x for x in self.settings.get("methods", {}).get(m, []))]

    def label(self, variant: str) -> str:
        """The more telling of a variant's name and id ("base (SmolLM2-...)", "adapter:RUN"), both if unrelated."""
        name = self.names.get(variant, variant)
        return name if variant in name else variant if name in variant else f"{name} ({variant})"


def _settings_of(m: MetricsSettings) -> dict:
    return {k: v for k, v in asdict(m).items() if k in ("bootstrap_rounds", "confidence", "alpha", "pass_k")}


def _score_jobs(store: Store, set_id: str) -> list[dict]:
    """The set's score jobs, oldest first, `config` parsed (the jobs table is small: this never
    touches the per-example rows)."""
    jobs = store.rows("""SELECT job_id, status, last_seq, config FROM jobs WHERE kind = 'score'
                         AND json_extract_string(config, '$.set_id') = ? ORDER BY created_at, job_id""", [set_id])
    for j in jobs:
        j["config"] = json.loads(j["config"])
    return jobs


def _fingerprint(store: Store, set_id: str, m: MetricsSettings) -> str:
    """Changes whenever the set's scores can have: only score-job ingest writes metric_scores, and it
    moves that job's last_seq in the same transaction."""
    state = {"jobs": [[j["job_id"], j["last_seq"], j["config"].get("versions")] for j in _score_jobs(store, set_id)],
             "current": {n: x.version for n, x in METRICS.items()}, "settings": _settings_of(m),
             "summary_version": SUMMARY_VERSION}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def compute(store: Store, actor: User, set_id: str, m: MetricsSettings) -> None:
    """Summarize a set's stored scores now and replace its stored summary."""
    require(actor, Action.METRICS_VIEW)
    summary, deltas = scoring.summary(store, actor, set_id, rounds=m.bootstrap_rounds, level=m.confidence,
                                      alpha=m.alpha, ks=tuple(m.pass_k))
    if not summary:
        return
    print_ = _fingerprint(store, set_id, m)
    family = [d for d in deltas if d["in_family"]]
    settings = json.dumps({
        **_settings_of(m), "fingerprint": print_, "summary_version": SUMMARY_VERSION,
        "family": {"size": len(family), "adjustment": "bonferroni",
                   "level": family[0]["level"] if family else None,
                   "metrics": list(dict.fromkeys(d["metric"] for d in family))},
        "proportions": [[r["variant"], r["metric"]] for r in summary if r["kind"] == "binary"],
        "methods": {metric: sorted({r["method"] for r in summary + deltas if r["metric"] == metric})
                    for metric in dict.fromkeys(r["metric"] for r in summary)}})
    with store.transaction() as cur:
        cur.execute("DELETE FROM metric_summary WHERE set_id = ?", [set_id])
        cur.execute("DELETE FROM metric_deltas WHERE set_id = ?", [set_id])
        cur.executemany("""INSERT INTO metric_summary (set_id, metric, metric_version, variant_id, mean, lo, hi, n,
                           computed_from, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        [[set_id, r["metric"], metric_version(r["metric"]), r["variant"], _clean(r["mean"]),
                          _clean(r["lo"]), _clean(r["hi"]), int(r["n"]), print_, settings] for r in summary])
        cur.executemany("""INSERT INTO metric_deltas (set_id, metric, variant_id, baseline, delta, lo, hi, p, p_holm,
                           p_bh, significant, direction, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        [[set_id, d["metric"], d["variant"], d["baseline"], _clean(d["delta"]), _clean(d["lo"]),
                          _clean(d["hi"]), _clean(d["p"]), _clean(d["p_holm"]), _clean(d["p_bh"]),
                          bool(d["significant"]), d["direction"], int(d["n"])] for d in deltas])


def restate(store: Store, m: MetricsSettings) -> int:
    """Recompute, once, every stored summary an older summary method computed (SUMMARY_VERSION);
    returns how many. Run by the owner in the background, so a page never pays for it."""
    stale = [r["set_id"] for r in store.rows("SELECT DISTINCT set_id, settings FROM metric_summary")
             if json.loads(r["settings"]).get("summary_version") != SUMMARY_VERSION]
    for set_id in dict.fromkeys(stale):
        compute(store, OWNER, set_id, m)
    return len(set(stale))


def _metric_order(store: Store, set_id: str, present: set[str]) -> list[str]:
    """The dataset's declared metrics first, then the order the score jobs listed them."""
    order: list[str] = []
    row = store.row("SELECT source FROM generation_sets WHERE set_id = ?", [set_id])
    source = json.loads(row["source"]) if row and row["source"] else {}
    if source.get("version_id"):
        declared = store.row("SELECT metrics FROM dataset_versions WHERE version_id = ?", [source["version_id"]])
        order += json.loads(declared["metrics"]) if declared and declared["metrics"] else []
    for job in _score_jobs(store, set_id):
        order += job["config"].get("metrics", [])
    expanded: list[str] = []
    for name in order:
        expanded += sorted((p for p in present if p.startswith("pass@")), key=lambda p: int(p[5:])) \
            if name == "tests_pass" else [name]
    expanded += sorted(present)
    return [n for n in dict.fromkeys(expanded) if n in present]


def latest(store: Store, actor: User, set_id: str, m: MetricsSettings, refresh: bool = True) -> SetMetrics | None:
    """The stored summary of a set; with `refresh`, recomputed first when its scores changed. None: not scored."""
    require(actor, Action.METRICS_VIEW)
    info = store.row("SELECT * FROM generation_sets WHERE set_id = ?", [set_id])
    if info is None:
        raise NotFound(f"No generation set {set_id!r}; see `tuneboard generate --list`.")
    stored = store.row("SELECT settings, computed_at FROM metric_summary WHERE set_id = ? LIMIT 1", [set_id])
    if refresh and (stored is None or json.loads(stored["settings"]).get("fingerprint") != _fingerprint(store, set_id, m)):
        if store.scalar("""SELECT (SELECT count(*) FROM metric_scores WHERE set_id = ?)
                                  + (SELECT count(*) FROM metric_corpus WHERE set_id = ?)""", [set_id, set_id]):
            compute(store, actor, set_id, m)
            stored = store.row("SELECT settings, computed_at FROM metric_summary WHERE set_id = ? LIMIT 1", [set_id])
    if stored is None:
        return None
    summary = store.df("""SELECT variant_id AS variant, metric, metric_version, mean, lo, hi, n FROM metric_summary
                          WHERE set_id = ? ORDER BY variant_id <> 'base', variant_id, metric""", [set_id])
    deltas = store.df("""SELECT variant_id AS variant, baseline, metric, delta, lo, hi, p, p_holm, p_bh, significant,
                                direction, n FROM metric_deltas WHERE set_id = ? ORDER BY variant_id, metric""", [set_id])
    names = {v["variant_id"]: v.get("name") or v["variant_id"] for v in json.loads(info["variants"])}
    metrics = _metric_order(store, set_id, set(summary["metric"]))
    return SetMetrics(set_id, info["name"], info["created_at"], json.loads(info["source"] or "{}"), info["base_model"],
                      names, metrics, stored["computed_at"], json.loads(stored["settings"]), summary, deltas)


def scored_sets(store: Store, actor: User, dataset: str | None = None) -> list[dict]:
    """Generation sets scored by a finished score job, newest first, with their source dataset."""
    require(actor, Action.METRICS_VIEW)
    rows = store.rows("""SELECT g.set_id, g.name, g.created_at, g.source, g.n_prompts, g.variants, s.summarized
                         FROM generation_sets g
                         JOIN (SELECT DISTINCT json_extract_string(config, '$.set_id') AS set_id FROM jobs
                               WHERE kind = 'score' AND status = 'succeeded') j USING (set_id)
                         LEFT JOIN (SELECT set_id, max(computed_at) AS summarized FROM metric_summary GROUP BY set_id) s
                              USING (set_id)
                         ORDER BY g.created_at DESC""")
    for r in rows:
        r["source"] = json.loads(r["source"] or "{}")
        r["dataset"] = r["source"].get("dataset") or r["source"].get("name") or r["source"].get("kind", "")
    return [r for r in rows if dataset in (None, r["dataset"])]


def trend(store: Store, actor: User, dataset: str, m: MetricsSettings, metric: str | None = None,
          sets: list[dict] | None = None) -> pd.DataFrame:
    """Every scored set of a dataset: each variant's means with CIs, and its delta vs that set's base.

    One row per (set, variant, metric), with the set's time, for charts of versions over time.
    `sets`: scored_sets() already read for this page."""
    require(actor, Action.METRICS_VIEW)
    sets = [s for s in (scored_sets(store, actor) if sets is None else sets) if s["dataset"] == dataset]
    for s in sets:
        if s["summarized"] is None:
            latest(store, actor, s["set_id"], m)
    ids = [s["set_id"] for s in sets]
    frame = store.df("""
        SELECT s.set_id, g.name AS set_name, g.created_at, s.variant_id AS variant, s.metric, s.mean, s.lo, s.hi,
               d.delta, d.significant, d.direction
        FROM metric_summary s JOIN generation_sets g USING (set_id)
        LEFT JOIN metric_deltas d ON d.set_id = s.set_id AND d.metric = s.metric AND d.variant_id = s.variant_id
        WHERE list_contains(?, s.set_id) AND (? IS NULL OR s.metric = ?)
        ORDER BY g.created_at, s.variant_id""", [ids, metric, metric])
    names = {v["variant_id"]: v.get("name") or v["variant_id"] for s in sets for v in json.loads(s["variants"])}
    frame["name"] = frame["variant"].map(lambda v: names.get(v, v))
    return frame


def examples(store: Store, actor: User, set_id: str, metric: str, variant: str, order: str = "worst",
             limit: int = 5) -> list[dict]:
    """The examples at one end of a variant's scores (or of its difference from the base), each with
    its prompt, reference and every variant's output and score."""
    require(actor, Action.METRICS_VIEW)
    if order not in ORDERS:
        raise InvalidInput(f"order: {order!r} is not one of {', '.join(ORDERS)}")
    stored = "tests_pass" if metric.startswith("pass@") else metric
    if stored not in METRICS:
        raise InvalidInput(f"metric: {metric!r} is not a known metric")
    if store.scalar("SELECT count(*) FROM metric_corpus WHERE set_id = ? AND metric = ?", [set_id, stored]):
        raise InvalidInput(f"metric: {metric} is corpus-level (one score for the whole set): it has no per-example "
                           "scores to rank")
    descending = (order in ("best", "improved")) == (higher_is_better(stored) is not False)
    series = _series(store, set_id, stored)  # one read serves the ranking and every shown score
    mine = series.get(variant, pd.Series(dtype=float)).dropna()
    if order in ("improved", "regressed"):
        mine = (mine - series.get("base", pd.Series(dtype=float)).reindex(mine.index)).dropna()
    idx = [int(i) for i in mine.sort_index().sort_values(ascending=not descending, kind="stable").index[:int(limit)]]
    if not idx:
        return []
    prompts = {r["prompt_idx"]: r for r in store.rows(
        "SELECT prompt_idx, messages, reference FROM generation_prompts WHERE set_id = ? AND list_contains(?, prompt_idx)",
        [set_id, idx])}
    outs = store.rows("""SELECT prompt_idx, variant_id, output FROM generations WHERE set_id = ?
                         AND list_contains(?, prompt_idx) ORDER BY variant_id <> 'base', variant_id""", [set_id, idx])
    for o in outs:
        value = series.get(o["variant_id"], pd.Series(dtype=float)).get(o["prompt_idx"])
        o["value"] = None if value is None or pd.isna(value) else float(value)
    return [{"prompt_idx": i, "messages": json.loads(prompts[i]["messages"]), "reference": prompts[i]["reference"],
             "outputs": [o for o in outs if o["prompt_idx"] == i]} for i in idx]


def _series(store: Store, set_id: str, metric: str) -> dict[str, pd.Series]:
    """variant -> the set's per-example scores of one metric (current version), indexed by prompt."""
    frame = store.df("""SELECT variant_id, prompt_idx, value FROM metric_scores
                        WHERE set_seq = ? AND set_id = ? AND metric = ? AND metric_version = ?""",
                     [scoring.set_seq(store, set_id), set_id, metric, METRICS[metric].version])
    return {v: part.set_index("prompt_idx")["value"].astype(float) for v, part in frame.groupby("variant_id")}


def raw_scores(store: Store, actor: User, set_id: str) -> pd.DataFrame:
    """Every stored per-example score of a set (all metric versions), for export."""
    require(actor, Action.METRICS_VIEW)
    return store.df("""SELECT set_id, metric, metric_version, variant_id AS variant, prompt_idx, value, job_id
                       FROM metric_scores WHERE set_seq = ? AND set_id = ? ORDER BY metric, variant_id, prompt_idx""",
                    [scoring.set_seq(store, set_id), set_id])


# ---- words ---------------------------------------------------------------------------
def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}" if abs(x) >= 100 \
        else f"{x:.{digits}f}"


def _pct(x: float) -> str:
    text = f"{100 * x:.0f}"
    return f"{100 * x:.1f}%" if text in ("0", "100") and 0.0 < x < 1.0 else f"{text}%"


def _is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def figure(res: SetMetrics, variant: str, metric: str) -> str:
    """One variant's figure on one metric with its interval, e.g. "24 of 24: 100% (95% CI 84%–100%)" for a
    0/1 metric, "0.412 (95% CI 0.380–0.445) over 24 examples" otherwise; "–" when not summarized."""
    rows = res.summary[(res.summary["variant"] == variant) & (res.summary["metric"] == metric)]
    if rows.empty or _is_nan(rows.iloc[0]["mean"]):
        return "–"
    r = rows.iloc[0]
    level = int(round(100 * res.settings.get("confidence", 0.95)))
    n = int(r["n"])
    if [variant, metric] in res.settings.get("proportions", []) and metric_kind(metric) == "binary":
        return (f"{int(round(r['mean'] * n))} of {n}: {_pct(r['mean'])} ({level}% CI {_pct(r['lo'])}–"
                f"{_pct(r['hi'])})")
    return f"{_num(r['mean'])} ({level}% CI {_num(r['lo'])}–{_num(r['hi'])}) over {n} examples"


def short_verdict(d: dict) -> str:
    """"significant", "n.s." (tested, interval covers 0) or "not tested" (outside the family) for a delta row."""
    return "significant" if d["significant"] else "not tested" if _is_nan(d.get("p_holm")) else "n.s."


def difference_words(res: SetMetrics, d: dict) -> str:
    """The difference, its interval and the verdict, in one clause that never disagrees with itself."""
    family = res.settings.get("family") or {}
    if _is_nan(d.get("p")):
        level = int(round(100 * res.settings.get("confidence", 0.95)))
        return (f"difference {d['delta']:+.3f} ({level}% CI {d['lo']:+.3f} to {d['hi']:+.3f}): descriptive, "
                f"{d['direction']} (not tested)")
    if _is_nan(d.get("p_holm")):
        level = int(round(100 * res.settings.get("confidence", 0.95)))
        return (f"difference {d['delta']:+.3f} ({level}% CI {d['lo']:+.3f} to {d['hi']:+.3f}), p = {d['p']:.3g}: "
                "exploratory (not among the dataset's declared metrics), no verdict")
    alpha = res.settings.get("alpha", 0.05)
    each = family.get("level")
    span = f"simultaneous {100 * (1 - alpha):g}% CI" + (f", each at {100 * each:.4g}%" if each and
                                                          family.get("size", 1) > 1 else "")
    word = f"significant, {d['direction']}" if d["significant"] else "not significant"
    return (f"difference {d['delta']:+.3f} ({span}: {d['lo']:+.3f} to {d['hi']:+.3f}), p = {d['p']:.3g}, "
            f"Bonferroni-adjusted {d['p_holm']:.3g}: {word}")


def verdict(res: SetMetrics) -> list[str]:
    """Each fine-tune vs the base, metric by metric, as a lead would say it. The word follows from the
    interval beside it: "significant" exactly when that interval excludes 0."""
    lines = []
    means = {(r["variant"], r["metric"]): r for r in res.summary.to_dict("records")}
    rank = {m: i for i, m in enumerate(res.metrics)}
    for d in sorted(res.deltas.to_dict("records"), key=lambda d: (rank.get(d["metric"], len(rank)), d["variant"])):
        if (d["variant"], d["metric"]) not in means or (d["baseline"], d["metric"]) not in means:
            continue
        lines.append(f"{res.label(d['variant'])} vs {d['baseline']}, {d['metric']}: "
                     f"{figure(res, d['variant'], d['metric'])} vs {figure(res, d['baseline'], d['metric'])}; "
                     f"{difference_words(res, d)}.")
    return lines


def comparisons_note(res: SetMetrics) -> str:
    """What the verdicts' family is and how its intervals are adjusted ("" with no difference shown)."""
    if res.deltas.empty:
        return ""
    if "family" not in res.settings:  # a summary stored before version 3, read without refreshing
        return (f"{len(res.deltas)} comparisons; p-values adjusted with Holm's method (summary method version 2, "
                "recomputed with the current method on the next refresh).")
    family = res.settings["family"] or {}
    m = int(family.get("size", 0))
    alpha = res.settings.get("alpha", 0.05)
    level = int(round(100 * res.settings.get("confidence", 0.95)))
    tested = ", ".join(family.get("metrics", []))
    if m == 0:
        text = "No difference here is in the tested family (the dataset's declared, non-descriptive metrics)."
    elif m == 1:
        text = (f"One difference is tested ({tested} vs the base); its interval is a {100 * (1 - alpha):g}% interval "
                "and 'significant' means it excludes 0.")
    else:
        text = (f"{m} differences are tested together (each fine-tune vs the base on {tested}): each interval beside "
                f"a verdict is one of {m} simultaneous {100 * (1 - alpha):g}% intervals (Bonferroni: each at "
                f"{100 * (1 - alpha / m):.4g}%), so all {m} hold together with {100 * (1 - alpha):g}% confidence, and "
                "'significant' means the interval excludes 0 (the same as a Bonferroni-adjusted p below "
                f"{alpha:g}).")
    untested = res.deltas[res.deltas["p_holm"].isna()]
    descriptive = sorted(set(untested[untested["p"].isna()]["metric"]))
    exploratory = sorted(set(untested[untested["p"].notna()]["metric"]))
    if descriptive:
        text += f" {', '.join(descriptive)}: descriptive, shown with a {level}% interval and not tested."
    if exploratory:
        text += (f" {', '.join(exploratory)}: not declared by the dataset, shown with {level}% intervals as "
                 "exploratory, without a verdict.")
    return text


def methods_note(res: SetMetrics) -> str:
    """How the intervals and p-values were computed, in one paragraph for the page and the report."""
    return ("0/1 metrics (e.g. json_valid, exact_match): Agresti-Coull intervals for each version, Tango's score "
            "interval with McNemar's test for the paired difference. Other metrics: bootstrap-t intervals for each "
            "version; for the paired difference the hull of the inverted sign-flip permutation test and the "
            "bootstrap-t interval, significant only when both exclude 0. Resampling rounds grow with the number of "
            f"tested differences; summary method version {res.settings.get('summary_version', 2)}.")


def export(store: Store, actor: User, res: SetMetrics, fmt: str, table: str = "summary") -> tuple[bytes, str, str]:
    """(data, file name, MIME type): one table as CSV or Parquet, or the HTML report."""
    require(actor, Action.METRICS_VIEW)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "html":
        return report_html(store, actor, res).encode(), f"{res.set_id}-metrics.html", "text/html"
    frames = {"summary": res.summary, "deltas": res.deltas}
    if table not in TABLES:
        raise InvalidInput(f"table: {table!r} is not one of {', '.join(TABLES)}")
    frame = frames[table] if table in frames else raw_scores(store, actor, res.set_id)
    frame = frame.assign(set_id=res.set_id) if "set_id" not in frame else frame
    name = f"{res.set_id}-{table}.{fmt}"
    if fmt == "csv":
        return frame.to_csv(index=False).encode(), name, "text/csv"
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue(), name, "application/vnd.apache.parquet"


def report_html(store: Store, actor: User, res: SetMetrics, worst_per_metric: int = 3) -> str:
    """A self-contained report: no scripts, every value escaped, model output as plain text."""
    require(actor, Action.METRICS_VIEW)
    esc = html.escape
    src = res.source
    origin = (f"{src.get('dataset')} {src.get('version_id')}, {src.get('split')} split" if src.get("kind") == "dataset"
              else esc(json.dumps(src)))
    level = int(round(100 * res.settings.get("confidence", 0.95)))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(res.name)} — tuneboard metrics</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}"
             "pre{white-space:pre-wrap;margin:0}</style></head><body>",
             f"<h1>{esc(res.name)}</h1>",
             f"<p>Generation set {esc(res.set_id)} from {esc(origin)}; base model {esc(res.base_model)}; "
             f"summary computed {esc(str(res.computed_at))} with at least {res.settings.get('bootstrap_rounds')} "
             f"resampling rounds, {level}% intervals.</p>",
             "<h2>Verdict</h2><ul>" + "".join(f"<li>{esc(v)}</li>" for v in verdict(res)) + "</ul>",
             f"<p>{esc(comparisons_note(res))}</p>", f"<p>{esc(methods_note(res))}</p>"]
    named = res.summary.assign(variant=res.summary["variant"].map(res.label))
    for title, frame in (("Metrics", named), ("Differences vs the base", res.deltas)):
        parts.append(f"<h2>{esc(title)}</h2>" + frame.to_html(index=False, escape=True, na_rep="–",
                                                              float_format=lambda x: f"{x:.4f}"))
    tuned = [v for v in res.names if v != "base" and v in set(res.summary["variant"])]
    for metric in res.metrics[:3]:
        for variant in tuned[:3]:
            rows = examples(store, actor, res.set_id, metric, variant, "worst", worst_per_metric)
            if not rows:
                continue
            parts.append(f"<h3>Worst {metric} examples of {esc(res.label(variant))}</h3><table>"
                         "<tr><th>#</th><th>Prompt</th><th>Reference</th><th>Outputs</th></tr>")
            for ex in rows:
                prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in ex["messages"])
                outs = "".join(f"<p><b>{esc(res.label(o['variant_id']))}</b> ({_num(o['value'])})</p>"
                               f"<pre>{esc(o['output'])}</pre>" for o in ex["outputs"])
                parts.append(f"<tr><td>{ex['prompt_idx']}</td><td><pre>{esc(prompt)}</pre></td>"
                             f"<td><pre>{esc(ex['reference'] or '')}</pre></td><td>{outs}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---- Home ----------------------------------------------------------------------------
def best_version(store: Store, actor: User, m: MetricsSettings, dataset: str | None = None,
                 sets: list[dict] | None = None) -> dict | None:
    """The fine-tune that leads on the primary metric of the newest scored set (of a dataset), with its
    metrics and deltas vs the base, and the pair-set verdicts that involve it."""
    require(actor, Action.METRICS_VIEW)
    sets = [s for s in (scored_sets(store, actor) if sets is None else sets) if dataset in (None, s["dataset"])]
    for s in sets:
        res = latest(store, actor, s["set_id"], m)
        if res is None:
            continue
        primary = res.primary
        ranked = res.summary[(res.summary["metric"] == primary) & (res.summary["variant"] != "base")]
        if ranked.empty:
            continue
        ranked = ranked.sort_values("mean", ascending=higher_is_better(primary) is False, kind="stable")
        variant = str(ranked.iloc[0]["variant"])
        return {"set": s, "results": res, "variant": variant, "name": res.label(variant), "primary": primary,
                "summary": res.summary[res.summary["variant"].isin([variant, "base"])],
                "deltas": res.deltas[res.deltas["variant"] == variant],
                "review": _review_lines(store, actor, variant)}
    return None


def _review_lines(store: Store, actor: User, variant: str) -> list[dict]:
    """Blind-review verdicts (stored results, not recomputed) of pair sets in which the variant took part."""
    if not actor.may(Action.REVIEW_RESULTS):
        return []
    out = []
    for row in store.rows("""SELECT r.result_id, r.pair_set_id, p.name, r.n_votes, r.computed_at,
                                    c.a, c.b, c.rate, c.lo, c.hi, c.n, c.prompts, c.p, c.significant
                             FROM review_results r JOIN pair_sets p USING (pair_set_id)
                             JOIN review_comparisons c USING (result_id)
                             WHERE (c.a = ? OR c.b = ?) AND r.computed_at = (SELECT max(computed_at) FROM
                                   review_results x WHERE x.pair_set_id = r.pair_set_id)
                             ORDER BY r.computed_at DESC""", [variant, variant]):
        mine = row["rate"] if row["a"] == variant else 1 - row["rate"]
        lo, hi = (row["lo"], row["hi"]) if row["a"] == variant else (1 - row["hi"], 1 - row["lo"])
        other = row["b"] if row["a"] == variant else row["a"]
        out.append({**row, "other": other, "win_rate": mine, "win_lo": lo, "win_hi": hi})
    return out
