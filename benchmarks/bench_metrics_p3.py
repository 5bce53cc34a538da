"""P3: what one Metrics page load asks of the store, over 10M stored per-example metric rows.

The store (a real DuckDB file in a temporary folder) holds one dataset, "support-tickets",
scored 500 times: 500 finished generation sets x 4 variants (base + 3 adapters) x 5 metrics
(json_valid, field_accuracy, exact_match, chrf, words, at the registry's current versions) x
1,000 prompts = 10,000,000 metric_scores rows, written in set order as real scoring stores
them (one score job per set, inserted when it finishes). Each set has its generation_sets row,
a succeeded `generate` job, a succeeded `score` job whose config names the set, metrics and
versions, and its 1,000 generation_prompts and 4,000 generations rows. The values, prompts
and outputs are seeded stand-ins written with SQL (INSERT ... SELECT FROM range()), not scored
text. Ids are shaped as core.jobs makes them ("generate-20240504-180000-3cf166"): they share a
long prefix, so DuckDB's (prefix-truncated) string min/max cannot skip row groups on set_id,
as in a real workspace: a filter on set_id alone would read every row group of metric_scores.

Summaries: the newest set is the one the page views; its metric_summary/metric_deltas rows
are computed for real by core.metrics.results.latest (bootstrap CIs, paired deltas, Holm/BH,
fingerprint) with an engineer user and MetricsSettings(). The other 499 sets' rows are a
stand-in written by one SQL aggregation (means with normal-approximation intervals, deltas as
differences of means): they have the same shape and count (20 summary + 15 delta rows per
set), which is what the page's reads cost.

Ours: warm loads of the two pages, each timed as a whole: Metrics (scored_sets, latest of
the viewed set: its fingerprint comes from the score jobs and matches, so nothing is
recomputed; trend of one metric; examples: the worst 5 of an adapter) and Home (scored_sets,
best_version); median and p95 of REPS loads. Per-example rows are read only by examples, by
the set's numeric key (set_seq), which DuckDB's min/max skipping can use. Baseline: the naive
page that aggregates the raw rows on every load: per-(set, variant, metric) mean, standard
deviation and count over all 10M rows (what the trend shows) plus the viewed set's means
(its headline); that baseline is generous, as it leaves out the bootstrap, the deltas and
every other call. The ratio is baseline median / Metrics page median. Goal: p95 <= 150 ms
for each page.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.result import Result
from core.auth import CLI_USER
from core.config import MetricsSettings
from core.metrics import results
from core.metrics.registry import METRICS
from core.store import Store

SETS, PROMPTS, REPS, NAIVE_REPS = 500, 1000, 20, 5
DATASET, VERSION_ID = "support-tickets", "support-tickets-v1"
METRIC_NAMES = ["json_valid", "field_accuracy", "exact_match", "chrf", "words"]
VARIANTS = ["base", "adapter:v1", "adapter:v2", "adapter:v3"]
GOAL_MS = 150.0
LAST: dict = {}  # per-call timings and set-up seconds of the last run(), for reports


def _ids(k: int) -> tuple[str, str]:
    """Set k's generation set id and score job id, shaped like core.jobs makes them (kind-time-hex)."""
    made = datetime(2024, 1, 1) + timedelta(hours=6 * k)
    tag = hashlib.md5(str(k).encode()).hexdigest()
    return (f"generate-{made:%Y%m%d-%H%M%S}-{tag[:6]}",
            f"score-{made + timedelta(hours=1):%Y%m%d-%H%M%S}-{tag[6:12]}")


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join(f"'{x}'" for x in items) + "]"


def build(store: Store) -> str:
    """Write the 500 scored sets; returns the viewed (newest) set's id."""
    M, V, N = len(METRIC_NAMES), len(VARIANTS), PROMPTS
    per_set = M * V * N
    metrics_sql, variants_sql = _sql_list(METRIC_NAMES), _sql_list(VARIANTS)
    versions_sql = _sql_list([METRICS[m].version for m in METRIC_NAMES])
    sets_sql, jobs_sql = (_sql_list(list(x)) for x in zip(*(_ids(k) for k in range(SETS))))
    records = json.dumps([{"variant_id": v, "kind": v.split(":")[0], "name": v.split(":")[-1], "path": "",
                           "model": "", "api_key_env": ""} for v in VARIANTS])
    source = json.dumps({"kind": "dataset", "dataset": DATASET, "version_id": VERSION_ID, "split": "test"})
    with store.transaction() as cur:
        cur.execute("INSERT INTO datasets (name, description, created_by) VALUES (?, 'benchmark', 'cli')", [DATASET])
        cur.execute("""INSERT INTO dataset_versions (version_id, dataset, content_hash, source_name, source_format,
                       n_examples, n_train, n_validation, n_test, split_spec, report, created_by, metrics)
                       VALUES (?, ?, 'x', 'tickets.jsonl', 'jsonl', 10000, 8000, 1000, 1000, '{}', '{}', 'cli', ?)""",
                    [VERSION_ID, DATASET, json.dumps(METRIC_NAMES)])
        cur.execute(f"""INSERT INTO generation_sets (set_id, name, source, base_model, variants, decoding,
                        requested_path, chosen_path, n_prompts, created_at)
                        SELECT {sets_sql}[1 + k], printf('support-tickets test #%d', k), ?, 'demo-base',
                               ?, '{{}}', 'transformers', 'transformers', {N},
                               TIMESTAMP '2024-01-01' + k * INTERVAL 6 HOUR
                        FROM range({SETS}) t(k)""", [source, records])
        cur.execute(f"""INSERT INTO jobs (job_id, kind, status, run_dir, config, created_by, created_at, started_at,
                        finished_at, last_seq)
                        SELECT {sets_sql}[1 + k], 'generate', 'succeeded', '', '{{}}', 'cli', ts, ts, ts, {2 + N}
                        FROM (SELECT k, TIMESTAMP '2024-01-01' + k * INTERVAL 6 HOUR AS ts FROM range({SETS}) t(k))
                        UNION ALL
                        SELECT {jobs_sql}[1 + k], 'score', 'succeeded', '',
                               json_object('set_id', {sets_sql}[1 + k], 'metrics', {metrics_sql},
                                           'versions', map_from_entries(list_zip({metrics_sql}, {versions_sql})),
                                           'n_rows', {V * N}, 'processes', 0)::VARCHAR,
                               'cli', ts + INTERVAL 1 HOUR, ts + INTERVAL 1 HOUR, ts + INTERVAL 2 HOUR, {2 + M * V}
                        FROM (SELECT k, TIMESTAMP '2024-01-01' + k * INTERVAL 6 HOUR AS ts FROM range({SETS}) t(k))""")
        cur.execute(f"""INSERT INTO generation_prompts (set_id, prompt_idx, messages, reference, source_ref)
                        SELECT {sets_sql}[1 + i // {N}], (i % {N})::INTEGER,
                               json_array(json_object('role', 'system', 'content',
                                                      'Triage the ticket; answer with a JSON object.'),
                                          json_object('role', 'user', 'content',
                                                      printf('Ticket %d: my order %d has not arrived.', i % {N},
                                                             hash(i) % 100000)))::VARCHAR,
                               printf('{{"category": "shipping", "priority": "%s", "order": %d}}',
                                      ['low', 'medium', 'high'][(1 + hash(i) % 3)::INTEGER], hash(i) % 100000),
                               printf('{VERSION_ID}:test:%d', i % {N})
                        FROM range({SETS * N}) t(i)""")
        cur.execute(f"""INSERT INTO generations (set_id, prompt_idx, variant_id, output, tokens_in, tokens_out,
                        finish_reason, latency_ms, backend, decoding)
                        SELECT {sets_sql}[1 + i // {V * N}], ((i // {V}) % {N})::INTEGER,
                               {variants_sql}[1 + i % {V}],
                               printf('{{"category": "%s", "priority": "%s", "order": %d}}',
                                      ['shipping', 'billing', 'account'][(1 + hash(i, 1) % 3)::INTEGER],
                                      ['low', 'medium', 'high'][(1 + hash(i, 2) % 3)::INTEGER], hash(i) % 100000),
                               60, 20, 'stop', 1.0, 'transformers', '{{}}'
                        FROM range({SETS * V * N}) t(i)""")
        # Set order, then (metric, variant) series, then prompt: the order score jobs store them.
        cur.execute(f"""INSERT INTO metric_scores (set_id, metric, metric_version, variant_id, prompt_idx, value,
                        job_id, set_seq)
                        SELECT {sets_sql}[1 + s], {metrics_sql}[1 + m], {versions_sql}[1 + m],
                               {variants_sql}[1 + v], p::INTEGER,
                               CASE m WHEN 0 THEN (h % 100 < 85 + 3 * v)::DOUBLE
                                      WHEN 1 THEN least(1.0, 0.45 + 0.05 * v + (h % 1000) / 2000.0)
                                      WHEN 2 THEN (h % 100 < 25 + 8 * v)::DOUBLE
                                      WHEN 3 THEN 35.0 + 4 * v + (h % 4000) / 100.0
                                      ELSE (15 + h % 50)::DOUBLE END,
                               {jobs_sql}[1 + s], seqs[1 + s]
                        FROM (SELECT (SELECT list(set_seq ORDER BY set_id) FROM generation_sets) AS seqs,
                                     i // {per_set} AS s, (i // {V * N}) % {M} AS m, (i // {N}) % {V} AS v,
                                     i % {N} AS p, hash(i) AS h FROM range({SETS * per_set}) t(i))""")
    viewed = _ids(SETS - 1)[0]
    # Stand-in summaries of the other sets: one SQL aggregation (the viewed set's are computed for real).
    settings = json.dumps({"bootstrap_rounds": 1000, "confidence": 0.95, "alpha": 0.05, "pass_k": [1, 5, 10],
                           "fingerprint": "stand-in"})
    with store.transaction() as cur:
        cur.execute("""INSERT INTO metric_summary (set_id, metric, metric_version, variant_id, mean, lo, hi, n,
                       computed_from, settings, computed_at)
                       SELECT s.set_id, metric, metric_version, variant_id, avg(value),
                              avg(value) - 1.96 * stddev_samp(value) / sqrt(count(value)),
                              avg(value) + 1.96 * stddev_samp(value) / sqrt(count(value)), count(value),
                              'stand-in', ?, any_value(g.created_at) + INTERVAL 2 HOUR
                       FROM metric_scores s JOIN generation_sets g USING (set_id) WHERE s.set_id <> ?
                       GROUP BY ALL""", [settings, viewed])
        cur.execute("""INSERT INTO metric_deltas (set_id, metric, variant_id, baseline, delta, lo, hi, p, p_holm,
                       p_bh, significant, direction, n)
                       SELECT s.set_id, s.metric, s.variant_id, 'base', s.mean - b.mean,
                              s.mean - b.mean - (s.hi - s.lo) / 2, s.mean - b.mean + (s.hi - s.lo) / 2,
                              0.01, 0.05, 0.03, false, 'same', s.n
                       FROM metric_summary s JOIN metric_summary b ON b.set_id = s.set_id AND b.metric = s.metric
                            AND b.variant_id = 'base' WHERE s.variant_id <> 'base'""")
    return viewed


PAGES = ("metrics", "home")


def page_loads(store: Store, user, m: MetricsSettings, viewed: str) -> tuple[dict, dict]:
    """Seconds per call of one load of each page (the calls pages/metrics.py and pages/home.py make),
    and what each returned."""
    t, out = {}, {}

    def timed(name, call):
        t0 = time.perf_counter()
        out[name] = call()
        t[name] = time.perf_counter() - t0
        return out[name]

    sets = timed("metrics:scored_sets", lambda: results.scored_sets(store, user))
    timed("metrics:latest", lambda: results.latest(store, user, viewed, m))
    timed("metrics:trend", lambda: results.trend(store, user, DATASET, m, "field_accuracy", sets))
    timed("metrics:examples", lambda: results.examples(store, user, viewed, "field_accuracy", VARIANTS[-1], "worst", 5))
    home_sets = timed("home:scored_sets", lambda: results.scored_sets(store, user))
    timed("home:best_version", lambda: results.best_version(store, user, m, DATASET, home_sets))
    return t, out


def naive_load(store: Store, viewed: str):
    """The figures aggregated from the raw rows: every set's means (the trend) and the viewed set's."""
    every = store.df("""SELECT set_id, variant_id, metric, avg(value) AS mean, stddev_samp(value) AS sd,
                               count(value) AS n FROM metric_scores GROUP BY ALL""")
    mine = store.df("""SELECT variant_id, metric, avg(value) AS mean, stddev_samp(value) AS sd, count(value) AS n
                       FROM metric_scores WHERE set_id = ? GROUP BY ALL""", [viewed])
    return every, mine


def run() -> Result:
    user, m = CLI_USER, MetricsSettings()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "tuneboard.duckdb")
        try:
            t0 = time.perf_counter()
            viewed = build(store)
            first = results.latest(store, user, viewed, m)  # computes and stores the viewed set's summary
            store.execute("CHECKPOINT")
            setup = time.perf_counter() - t0

            page_loads(store, user, m, viewed)  # warm-up
            loads, per_call = {p: [] for p in PAGES}, {}
            for _ in range(REPS):
                t, out = page_loads(store, user, m, viewed)
                for page in PAGES:
                    loads[page].append(sum(v for k, v in t.items() if k.startswith(page + ":")))
                for k, v in t.items():
                    per_call.setdefault(k, []).append(v)

            naive_load(store, viewed)  # warm-up
            naive = []
            for _ in range(NAIVE_REPS):
                t1 = time.perf_counter()
                every, mine = naive_load(store, viewed)
                naive.append(time.perf_counter() - t1)

            # The page showed the right things, and nothing was recomputed.
            rows = out["metrics:examples"]
            sql = {(r["variant_id"], r["metric"]): r["mean"] for r in mine.to_dict("records")}
            got = {(r["variant"], r["metric"]): r["mean"] for r in out["metrics:latest"].summary.to_dict("records")}
            checks = {
                "rows": store.scalar("SELECT count(*) FROM metric_scores") == SETS * PROMPTS * 20,
                "not recomputed": out["metrics:latest"].computed_at == first.computed_at
                and out["home:best_version"]["results"].computed_at == first.computed_at,
                "sets": len(out["metrics:scored_sets"]) == SETS and out["metrics:scored_sets"][0]["set_id"] == viewed,
                "means": set(got) == set(sql) and all(abs(got[k] - sql[k]) < 1e-9 for k in sql),
                "trend": len(out["metrics:trend"]) == SETS * 4 and out["metrics:trend"]["set_id"].nunique() == SETS
                and len(every) == SETS * 20,
                "examples": len(rows) == 5 and all(len(r["outputs"]) == len(VARIANTS) for r in rows),
                "best": out["home:best_version"]["set"]["set_id"] == viewed and len(out["metrics:latest"].deltas) == 15,
            }
        finally:
            store.close()

    p95 = {page: np.percentile(v, 95) * 1000 for page, v in loads.items()}
    p50 = {page: np.percentile(v, 50) * 1000 for page, v in loads.items()}
    t_naive = float(np.median(naive)) * 1000
    LAST.update(setup_s=setup, p50_ms=p50, p95_ms=p95, naive_ms=t_naive, checks=checks,
                per_call_ms={k: (np.median(v) * 1000, np.percentile(v, 95) * 1000) for k, v in per_call.items()})
    failed = [k for k, ok in checks.items() if not ok]
    worst = max(p95.values())
    return Result("metrics_p3", f"10M rows: p95 Metrics page {p95['metrics']:.0f} ms, Home {p95['home']:.0f} ms"
                  + (f" CHECKS FAILED: {', '.join(failed)}" if failed else ""),
                  f"vs {t_naive:,.0f} ms aggregating raw rows", t_naive / p50["metrics"],
                  f"p95<={GOAL_MS:g}ms per page", not failed and worst <= GOAL_MS)
