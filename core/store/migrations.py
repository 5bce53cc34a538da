"""Numbered schema migrations. Append new ones; never edit one that has shipped.

Each is applied once, in its own transaction, and recorded in `schema_migrations`.
JSON values are stored as VARCHAR so no DuckDB extension has to be fetched offline.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "users_and_audit", """
        CREATE TABLE users (
            username      VARCHAR PRIMARY KEY,
            password_hash VARCHAR NOT NULL,
            role          VARCHAR NOT NULL CHECK (role IN ('rater', 'lead', 'engineer')),
            disabled      BOOLEAN NOT NULL DEFAULT FALSE,
            created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by    VARCHAR
        );
        CREATE SEQUENCE audit_seq;
        CREATE TABLE audit_log (
            id      BIGINT PRIMARY KEY DEFAULT nextval('audit_seq'),
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            actor   VARCHAR NOT NULL,
            action  VARCHAR NOT NULL,
            target  VARCHAR,
            detail  VARCHAR
        );
    """),
    (2, "datasets", """
        CREATE TABLE datasets (
            name        VARCHAR PRIMARY KEY,
            description VARCHAR,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by  VARCHAR NOT NULL
        );
        CREATE TABLE dataset_versions (
            version_id    VARCHAR PRIMARY KEY,
            dataset       VARCHAR NOT NULL REFERENCES datasets(name),
            content_hash  VARCHAR NOT NULL,
            source_name   VARCHAR NOT NULL,
            source_format VARCHAR NOT NULL,
            n_examples    INTEGER NOT NULL,
            n_train       INTEGER NOT NULL,
            n_validation  INTEGER NOT NULL,
            n_test        INTEGER NOT NULL,
            split_spec    VARCHAR NOT NULL,
            tokenizer     VARCHAR,
            report        VARCHAR NOT NULL,
            created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by    VARCHAR NOT NULL
        );
        CREATE TABLE examples (
            version_id  VARCHAR NOT NULL,
            idx         INTEGER NOT NULL,
            split       VARCHAR NOT NULL CHECK (split IN ('train', 'validation', 'test')),
            source_line INTEGER NOT NULL,
            messages    VARCHAR NOT NULL,
            n_tokens    INTEGER,
            example_hash VARCHAR NOT NULL,
            PRIMARY KEY (version_id, idx)
        );
    """),
    (3, "jobs_and_events", """
        CREATE TABLE jobs (
            job_id       VARCHAR PRIMARY KEY,
            kind         VARCHAR NOT NULL,
            status       VARCHAR NOT NULL,
            run_dir      VARCHAR NOT NULL,
            config       VARCHAR NOT NULL,
            pid          INTEGER,
            created_by   VARCHAR NOT NULL,
            created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
            started_at   TIMESTAMP,
            finished_at  TIMESTAMP,
            ingest_offset BIGINT NOT NULL DEFAULT 0,
            last_seq     BIGINT NOT NULL DEFAULT 0,
            error        VARCHAR
        );
        CREATE TABLE job_events (
            job_id  VARCHAR NOT NULL,
            seq     BIGINT NOT NULL,
            emitted_at DOUBLE NOT NULL,
            type    VARCHAR NOT NULL,
            payload VARCHAR NOT NULL,
            PRIMARY KEY (job_id, seq)
        );
        CREATE TABLE ingest_problems (
            job_id      VARCHAR NOT NULL,
            byte_offset BIGINT NOT NULL,
            message     VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (job_id, byte_offset)
        );
    """),
    (4, "login_sessions", """
        CREATE TABLE login_sessions (
            token_hash VARCHAR PRIMARY KEY,
            username   VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            expires_at TIMESTAMP NOT NULL
        );
    """),
    (5, "training_runs_and_variants", """
        CREATE TABLE runs (
            job_id          VARCHAR PRIMARY KEY,
            dataset_version VARCHAR NOT NULL,
            base_model      VARCHAR NOT NULL,
            method          VARCHAR NOT NULL,
            config          VARCHAR NOT NULL,
            lineage         VARCHAR NOT NULL,
            best_checkpoint VARCHAR,
            best_eval_loss  DOUBLE,
            final_step      BIGINT,
            adapter_dir     VARCHAR,
            created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE model_variants (
            variant_id  VARCHAR PRIMARY KEY,
            kind        VARCHAR NOT NULL CHECK (kind IN ('base', 'adapter', 'merged', 'external')),
            name        VARCHAR NOT NULL,
            path        VARCHAR NOT NULL,
            base_model  VARCHAR NOT NULL,
            job_id      VARCHAR,
            detail      VARCHAR,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
    """),
    (6, "generation_sets", """
        CREATE TABLE generation_sets (
            set_id      VARCHAR PRIMARY KEY,
            name        VARCHAR NOT NULL,
            source      VARCHAR NOT NULL,
            base_model  VARCHAR NOT NULL,
            variants    VARCHAR NOT NULL,
            decoding    VARCHAR NOT NULL,
            requested_path VARCHAR NOT NULL,
            chosen_path VARCHAR,
            path_reason VARCHAR,
            plan        VARCHAR,
            n_prompts   INTEGER NOT NULL,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE generation_prompts (
            set_id      VARCHAR NOT NULL,
            prompt_idx  INTEGER NOT NULL,
            messages    VARCHAR NOT NULL,
            reference   VARCHAR,
            source_ref  VARCHAR,
            PRIMARY KEY (set_id, prompt_idx)
        );
        CREATE TABLE generations (
            set_id        VARCHAR NOT NULL,
            prompt_idx    INTEGER NOT NULL,
            variant_id    VARCHAR NOT NULL,
            output        VARCHAR NOT NULL,
            tokens_in     INTEGER NOT NULL,
            tokens_out    INTEGER NOT NULL,
            finish_reason VARCHAR NOT NULL,
            latency_ms    DOUBLE NOT NULL,
            backend       VARCHAR NOT NULL,
            decoding      VARCHAR NOT NULL,
            created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (set_id, prompt_idx, variant_id)
        );
        CREATE TABLE parity_checks (
            set_id      VARCHAR NOT NULL,
            variant_id  VARCHAR NOT NULL,
            backend     VARCHAR NOT NULL,
            reference   VARCHAR NOT NULL,
            n           INTEGER NOT NULL,
            exact       INTEGER NOT NULL,
            mean_common_prefix DOUBLE NOT NULL,
            detail      VARCHAR NOT NULL,
            PRIMARY KEY (set_id, variant_id)
        );
    """),
    (7, "review", """
        CREATE TABLE pair_sets (
            pair_set_id     VARCHAR PRIMARY KEY,
            name            VARCHAR NOT NULL,
            instructions    VARCHAR NOT NULL DEFAULT '',
            generation_set_id VARCHAR NOT NULL,
            variants        VARCHAR NOT NULL,
            comparisons     VARCHAR NOT NULL,
            design          VARCHAR NOT NULL,
            raters_per_pair INTEGER NOT NULL,
            gold_rate       DOUBLE NOT NULL,
            seed            BIGINT NOT NULL,
            assign_version  INTEGER NOT NULL DEFAULT 0,
            created_by      VARCHAR NOT NULL,
            created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        -- a and b are the variants in the pair set's canonical order; left_is_a is the stored
        -- coin flip that puts a on the left ("Response 1"). Gold pairs have gold_better.
        CREATE TABLE pairs (
            pair_set_id    VARCHAR NOT NULL,
            pair_id        INTEGER NOT NULL,
            prompt_idx     INTEGER NOT NULL,
            a              VARCHAR NOT NULL,
            b              VARCHAR NOT NULL,
            left_is_a      BOOLEAN NOT NULL,
            a_text         VARCHAR NOT NULL,
            b_text         VARCHAR NOT NULL,
            gold_better    VARCHAR CHECK (gold_better IN ('a', 'b')),
            gold_source    VARCHAR,
            identity_flags VARCHAR,
            withdrawn      BOOLEAN NOT NULL DEFAULT FALSE,
            PRIMARY KEY (pair_set_id, pair_id)
        );
        CREATE TABLE assignments (
            pair_set_id VARCHAR NOT NULL,
            rater       VARCHAR NOT NULL,
            pair_id     INTEGER NOT NULL,
            position    INTEGER NOT NULL,
            assigned_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (pair_set_id, rater, pair_id)
        );
        -- One vote per rater and pair (the key makes a resent vote count once); choice is what
        -- the rater clicked, outcome the same in canonical terms.
        CREATE TABLE votes (
            pair_set_id VARCHAR NOT NULL,
            pair_id     INTEGER NOT NULL,
            rater       VARCHAR NOT NULL,
            choice      VARCHAR NOT NULL CHECK (choice IN ('1', '2', 'tie', 'both_bad')),
            outcome     VARCHAR NOT NULL CHECK (outcome IN ('a', 'b', 'tie', 'both_bad')),
            rationale   VARCHAR,
            seconds     DOUBLE,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (pair_set_id, pair_id, rater)
        );
        CREATE TABLE skips (
            pair_set_id VARCHAR NOT NULL,
            pair_id     INTEGER NOT NULL,
            rater       VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (pair_set_id, pair_id, rater)
        );
        CREATE TABLE rater_exclusions (
            pair_set_id VARCHAR NOT NULL,
            rater       VARCHAR NOT NULL,
            excluded_by VARCHAR NOT NULL,
            reason      VARCHAR,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (pair_set_id, rater)
        );
        -- Each computation of the statistics, with what it was computed from.
        CREATE TABLE review_results (
            result_id    VARCHAR PRIMARY KEY,
            pair_set_id  VARCHAR NOT NULL,
            computed_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
            computed_by  VARCHAR NOT NULL,
            n_votes      INTEGER NOT NULL,
            last_vote_at TIMESTAMP,
            excluded     VARCHAR NOT NULL,
            settings     VARCHAR NOT NULL,
            fleiss_kappa DOUBLE,
            krippendorff_alpha DOUBLE,
            position_bias VARCHAR NOT NULL,
            leader       VARCHAR NOT NULL
        );
        CREATE TABLE review_ladder (
            result_id VARCHAR NOT NULL, variant VARCHAR NOT NULL, strength DOUBLE, rating DOUBLE,
            lo DOUBLE, hi DOUBLE, rank INTEGER, rank_lo INTEGER, rank_hi INTEGER, n INTEGER,
            PRIMARY KEY (result_id, variant)
        );
        CREATE TABLE review_comparisons (
            result_id VARCHAR NOT NULL, a VARCHAR NOT NULL, b VARCHAR NOT NULL, wins INTEGER, ties INTEGER,
            both_bad INTEGER, losses INTEGER, n INTEGER, rate DOUBLE, lo DOUBLE, hi DOUBLE, p_sign DOUBLE,
            significant BOOLEAN, winner VARCHAR, flips_winner INTEGER, flips_significance INTEGER,
            PRIMARY KEY (result_id, a, b)
        );
        CREATE TABLE review_agreement (
            result_id VARCHAR NOT NULL, rater_a VARCHAR NOT NULL, rater_b VARCHAR NOT NULL, n INTEGER,
            kappa DOUBLE, PRIMARY KEY (result_id, rater_a, rater_b)
        );
        CREATE TABLE review_raters (
            result_id VARCHAR NOT NULL, rater VARCHAR NOT NULL, votes INTEGER, gold_n INTEGER,
            gold_accuracy DOUBLE, majority_agreement DOUBLE, median_seconds DOUBLE, share_first DOUBLE,
            flags VARCHAR, excluded BOOLEAN, PRIMARY KEY (result_id, rater)
        );
    """),
    (8, "metric_scores", """
        -- One score per example: summaries resample examples. Keyed by metric version so an
        -- upgraded library is a new series, and re-scoring replaces rows (idempotent).
        CREATE TABLE metric_scores (
            set_id         VARCHAR NOT NULL,
            metric         VARCHAR NOT NULL,
            metric_version VARCHAR NOT NULL,
            variant_id     VARCHAR NOT NULL,
            prompt_idx     INTEGER NOT NULL,
            value          DOUBLE,
            job_id         VARCHAR NOT NULL,
            PRIMARY KEY (set_id, metric, metric_version, variant_id, prompt_idx)
        );
    """),
    (9, "metric_summaries", """
        -- What the Metrics page and Home read: computed once per scoring of a set (its score job),
        -- so dashboards never aggregate raw per-example rows. `computed_from` is the score jobs.
        CREATE TABLE metric_summary (
            set_id         VARCHAR NOT NULL,
            metric         VARCHAR NOT NULL,
            metric_version VARCHAR NOT NULL,
            variant_id     VARCHAR NOT NULL,
            mean           DOUBLE,
            lo             DOUBLE,
            hi             DOUBLE,
            n              INTEGER NOT NULL,
            computed_from  VARCHAR NOT NULL,
            settings       VARCHAR NOT NULL,
            computed_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (set_id, metric, variant_id)
        );
        CREATE TABLE metric_deltas (
            set_id       VARCHAR NOT NULL,
            metric       VARCHAR NOT NULL,
            variant_id   VARCHAR NOT NULL,
            baseline     VARCHAR NOT NULL,
            delta        DOUBLE,
            lo           DOUBLE,
            hi           DOUBLE,
            p            DOUBLE,
            p_holm       DOUBLE,
            p_bh         DOUBLE,
            significant  BOOLEAN NOT NULL,
            direction    VARCHAR NOT NULL,
            n            INTEGER NOT NULL,
            PRIMARY KEY (set_id, metric, variant_id)
        );
    """),
    (10, "dataset_metrics_and_tests", """
        -- A dataset version declares which metrics apply (JSON list; NULL: chosen from the references),
        -- and a code example may carry the Python tests its answer must pass (pass@k).
        ALTER TABLE dataset_versions ADD COLUMN metrics VARCHAR;
        ALTER TABLE examples ADD COLUMN tests VARCHAR;
    """),
    (11, "set_keys", """
        -- A numeric key per generation set, copied onto its per-example scores: DuckDB skips row
        -- groups by min/max, which for text keeps only a short prefix (every set id starts
        -- "generate-"), so a filter on set_id alone reads the whole table; one on set_seq does not.
        CREATE SEQUENCE generation_set_seq;
        ALTER TABLE generation_sets ADD COLUMN set_seq BIGINT DEFAULT nextval('generation_set_seq');
        ALTER TABLE metric_scores ADD COLUMN set_seq BIGINT;
        UPDATE metric_scores SET set_seq = g.set_seq FROM generation_sets g WHERE g.set_id = metric_scores.set_id;
    """),
    (12, "regression", """
        -- The probe suite's outcome per item and variant of a suite generation set (scored once),
        -- each gate judged from them with its settings, and promotions (a passing gate or a
        -- written override).
        CREATE TABLE regression_items (
            set_id        VARCHAR NOT NULL,
            item_id       VARCHAR NOT NULL,
            variant_id    VARCHAR NOT NULL,
            category      VARCHAR NOT NULL,
            correct       BOOLEAN NOT NULL,
            suite_version VARCHAR NOT NULL,
            PRIMARY KEY (set_id, item_id, variant_id)
        );
        CREATE TABLE regression_gates (
            gate_id     VARCHAR PRIMARY KEY,
            set_id      VARCHAR NOT NULL,
            variant_id  VARCHAR NOT NULL,
            baseline    VARCHAR NOT NULL,
            verdict     VARCHAR NOT NULL CHECK (verdict IN ('pass', 'fail', 'inconclusive')),
            detail      VARCHAR NOT NULL,
            settings    VARCHAR NOT NULL,
            computed_by VARCHAR NOT NULL,
            computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE promotions (
            promotion_id VARCHAR PRIMARY KEY,
            variant_id   VARCHAR NOT NULL,
            gate_id      VARCHAR,
            gate_verdict VARCHAR,
            override     BOOLEAN NOT NULL,
            reason       VARCHAR NOT NULL,
            promoted_by  VARCHAR NOT NULL,
            created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
    """),
    (13, "checkpoint_sweeps", """
        -- A checkpoint sweep: one run's kept checkpoints (and the base) answer the probe suite and
        -- the run's test split; the test-split set is scored when it finishes (the owner advances
        -- the sweep), and the page reads task score vs general score per checkpoint.
        CREATE TABLE checkpoint_sweeps (
            sweep_id   VARCHAR PRIMARY KEY,
            run_id     VARCHAR NOT NULL,
            variants   VARCHAR NOT NULL,
            suite_set  VARCHAR NOT NULL,
            task_set   VARCHAR NOT NULL,
            score_job  VARCHAR,
            error      VARCHAR,
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
    """),
    (14, "harness_results", """
        -- lm-evaluation-harness results (optional): one row per task and metric of a harness job's
        -- variant, as lm-eval reported them, with the lm-eval release that computed them.
        CREATE TABLE harness_results (
            job_id          VARCHAR NOT NULL,
            variant_id      VARCHAR NOT NULL,
            task            VARCHAR NOT NULL,
            metric          VARCHAR NOT NULL,
            value           DOUBLE,
            stderr          DOUBLE,
            n_samples       INTEGER,
            lm_eval_version VARCHAR,
            created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (job_id, variant_id, task, metric)
        );
    """),
    (15, "promotion_pointer", """
        -- Each task (dataset) has a promoted version: promotions become its history. A promote row
        -- pushes a version, a rollback row returns to the one promoted before; both carry a reason.
        CREATE SEQUENCE promotion_seq;
        ALTER TABLE promotions ADD COLUMN seq BIGINT DEFAULT nextval('promotion_seq');
        ALTER TABLE promotions ADD COLUMN task VARCHAR;
        ALTER TABLE promotions ADD COLUMN action VARCHAR DEFAULT 'promote';
        UPDATE promotions SET action = 'promote' WHERE action IS NULL;
        UPDATE promotions SET task = t.dataset
            FROM (SELECT v.variant_id, d.dataset FROM model_variants v JOIN runs r ON r.job_id = v.job_id
                  JOIN dataset_versions d ON d.version_id = r.dataset_version) t
            WHERE t.variant_id = promotions.variant_id;
        UPDATE promotions SET task = 'unassigned' WHERE task IS NULL;
    """),
    (16, "schedules_and_pipelines", """
        -- Scheduled retraining. A schedule fires on the owner's tick (every N hours, a cron
        -- expression, or a new version of its task's dataset) and starts a pipeline: retrain with
        -- the promoted version's config on the newest data, generate the test split and the probe
        -- suite, score, gate, and a blind pair set; the candidate then waits for a person.
        CREATE TABLE schedules (
            schedule_id VARCHAR PRIMARY KEY,
            name        VARCHAR NOT NULL,
            task        VARCHAR NOT NULL,
            trigger     VARCHAR NOT NULL CHECK (trigger IN ('interval', 'cron', 'new_data')),
            spec        VARCHAR NOT NULL,
            options     VARCHAR NOT NULL,
            enabled     BOOLEAN NOT NULL DEFAULT TRUE,
            next_run_at TIMESTAMP,
            created_by  VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE schedule_event_seq;
        CREATE TABLE schedule_events (
            id          BIGINT PRIMARY KEY DEFAULT nextval('schedule_event_seq'),
            schedule_id VARCHAR NOT NULL,
            fired_at    TIMESTAMP NOT NULL,
            outcome     VARCHAR NOT NULL CHECK (outcome IN ('started', 'skipped', 'failed')),
            pipeline_id VARCHAR,
            note        VARCHAR NOT NULL
        );
        CREATE TABLE pipelines (
            pipeline_id     VARCHAR PRIMARY KEY,
            schedule_id     VARCHAR,
            task            VARCHAR NOT NULL,
            dataset_version VARCHAR NOT NULL,
            promoted        VARCHAR,
            config          VARCHAR NOT NULL,
            options         VARCHAR NOT NULL,
            stage           VARCHAR NOT NULL,
            train_job       VARCHAR,
            candidate       VARCHAR,
            task_set        VARCHAR,
            suite_set       VARCHAR,
            score_job       VARCHAR,
            gate_id         VARCHAR,
            pair_set        VARCHAR,
            error           VARCHAR,
            decision        VARCHAR,
            decided_by      VARCHAR,
            decision_reason VARCHAR,
            created_by      VARCHAR NOT NULL,
            created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at     TIMESTAMP
        );
    """),
    (17, "contender_kinds", """
        -- Contenders: another model (kind 'model', its own engine) and a prompted base ('prompted').
        -- DuckDB cannot change a CHECK constraint in place: the table is rebuilt with its rows.
        CREATE TABLE model_variants_new (
            variant_id  VARCHAR PRIMARY KEY,
            kind        VARCHAR NOT NULL CHECK (kind IN ('base', 'adapter', 'merged', 'external', 'model',
                                                         'prompted')),
            name        VARCHAR NOT NULL,
            path        VARCHAR NOT NULL,
            base_model  VARCHAR NOT NULL,
            job_id      VARCHAR,
            detail      VARCHAR,
            created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        INSERT INTO model_variants_new SELECT variant_id, kind, name, path, base_model, job_id, detail, created_at
            FROM model_variants;
        DROP TABLE model_variants;
        ALTER TABLE model_variants_new RENAME TO model_variants;
    """),
    (18, "review_prompt_unit", """
        -- [trust]: the prompt is the unit of a review's statistics. Older results keep their rows
        -- (their settings carry the old method version and are recomputed in the background).
        ALTER TABLE review_comparisons RENAME COLUMN p_sign TO p;
        ALTER TABLE review_comparisons ADD COLUMN prompts INTEGER;
        ALTER TABLE review_comparisons ADD COLUMN raters INTEGER;
        ALTER TABLE review_comparisons ADD COLUMN dispersion DOUBLE;
        ALTER TABLE review_comparisons ADD COLUMN rate_without_low DOUBLE;
        ALTER TABLE review_comparisons ADD COLUMN rater_low VARCHAR;
        ALTER TABLE review_comparisons ADD COLUMN rate_without_high DOUBLE;
        ALTER TABLE review_comparisons ADD COLUMN rater_high VARCHAR;
        ALTER TABLE review_comparisons ADD COLUMN raters_moving_verdict VARCHAR;
        ALTER TABLE review_comparisons ADD COLUMN more_prompts INTEGER;
        ALTER TABLE review_raters ADD COLUMN gold_note VARCHAR;
        ALTER TABLE review_results ADD COLUMN n_prompts INTEGER;
        ALTER TABLE review_results ADD COLUMN icc DOUBLE;
    """),
    (19, "api_tokens_and_doors", """
        -- [api]: personal API tokens (only a hash is kept) and the door of each audited action.
        CREATE TABLE api_tokens (
            token_id     VARCHAR PRIMARY KEY,
            username     VARCHAR NOT NULL,
            name         VARCHAR NOT NULL,
            token_hash   VARCHAR NOT NULL,
            created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
            expires_at   TIMESTAMP NOT NULL,
            revoked_at   TIMESTAMP,
            last_used_at TIMESTAMP
        );
        ALTER TABLE audit_log ADD COLUMN door VARCHAR;
    """),
    (20, "webhooks", """
        -- [api] webhooks (core/webhooks.py): engineers' URLs for events; every event the owner has
        -- announced, once, keyed by what caused it (source_key); one delivery per hook and event,
        -- retried with backoff until delivered or given up (rows, so they outlive a restart).
        CREATE TABLE webhooks (
            hook_id    VARCHAR PRIMARY KEY,
            name       VARCHAR NOT NULL,
            url        VARCHAR NOT NULL,
            events     VARCHAR NOT NULL,
            secret     VARCHAR NOT NULL,
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            deleted_at TIMESTAMP,
            deleted_by VARCHAR
        );
        CREATE SEQUENCE webhook_event_seq;
        CREATE TABLE webhook_events (
            event_id   VARCHAR PRIMARY KEY,
            seq        BIGINT NOT NULL DEFAULT nextval('webhook_event_seq'),
            source_key VARCHAR NOT NULL UNIQUE,
            event      VARCHAR NOT NULL,
            body       VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE webhook_deliveries (
            delivery_id     VARCHAR PRIMARY KEY,
            hook_id         VARCHAR NOT NULL,
            event_id        VARCHAR NOT NULL,
            event           VARCHAR NOT NULL,
            status          VARCHAR NOT NULL CHECK (status IN ('pending', 'delivered', 'gave_up', 'cancelled')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TIMESTAMP,
            last_attempt_at TIMESTAMP,
            last_code       INTEGER,
            last_error      VARCHAR,
            delivered_at    TIMESTAMP,
            log             VARCHAR NOT NULL DEFAULT '[]',
            created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        -- What happened before webhooks existed counts as seen: nothing of the past is announced
        -- (the keys are core/webhooks.py's, which a test holds to these).
        INSERT INTO webhook_events (event_id, source_key, event)
        SELECT 'seen-' || md5(k), k, e FROM (
            SELECT 'run:' || job_id || ':' || status || ':' || CAST(epoch_ms(finished_at) AS VARCHAR) AS k,
                   CASE status WHEN 'succeeded' THEN 'run.finished' ELSE 'run.failed' END AS e
                FROM jobs WHERE kind = 'train' AND status IN ('succeeded', 'failed') AND finished_at IS NOT NULL
            UNION ALL SELECT 'gate:' || gate_id, 'gate.verdict' FROM regression_gates
            UNION ALL SELECT 'schedule:' || CAST(id AS VARCHAR), 'schedule.fired' FROM schedule_events
                WHERE outcome = 'started'
            UNION ALL SELECT 'promotion:' || promotion_id,
                   CASE action WHEN 'rollback' THEN 'rollback' ELSE 'promotion' END
                FROM promotions
            UNION ALL SELECT 'pairset:' || s.pair_set_id || ':' || CAST(s.assign_version AS VARCHAR), 'pairset.complete'
                FROM pair_sets s JOIN assignments a ON a.pair_set_id = s.pair_set_id
                JOIN pairs p ON p.pair_set_id = a.pair_set_id AND p.pair_id = a.pair_id
                LEFT JOIN votes v ON v.pair_set_id = a.pair_set_id AND v.pair_id = a.pair_id AND v.rater = a.rater
                WHERE NOT p.withdrawn AND a.rater NOT IN (SELECT x.rater FROM rater_exclusions x
                                                          WHERE x.pair_set_id = a.pair_set_id)
                GROUP BY s.pair_set_id, s.assign_version HAVING count(*) = count(v.rater)
        );
    """),
    (21, "sso_accounts", """
        -- [api] single sign-on: an account made by the OIDC provider's sign-in is tied to the
        -- provider's subject (issuer + sub), never to a name alone; it has no password here.
        ALTER TABLE users ADD COLUMN sso_subject VARCHAR;
    """),
    (22, "lost_workers", """
        -- [robust] a job whose launcher lost sight of its worker (a Ray cluster unreachable past its
        -- grace) is failed with the reason; events its worker writes later are still taken in.
        ALTER TABLE jobs ADD COLUMN lost BOOLEAN DEFAULT FALSE;
    """),
    (23, "metric_options", """
        -- [integrations] what some metrics need besides the references, declared with a dataset version:
        -- {"labels": [...]} for label_accuracy, {"json_schema": {...}} for schema_valid.
        ALTER TABLE dataset_versions ADD COLUMN metric_options VARCHAR;
    """),
    (24, "metric_corpus", """
        -- [integrations] corpus-level metrics (corpus BLEU, an evaluate module with one number per set): per
        -- variant the score on all prompts and on the score job's resampled prompt sets (`boot`, the same sets
        -- for every variant) and, against the base, the differences after random swaps (`swaps`).
        CREATE TABLE metric_corpus (
            set_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            metric_version VARCHAR NOT NULL,
            variant_id VARCHAR NOT NULL,
            value DOUBLE,
            n INTEGER NOT NULL,
            boot DOUBLE[] NOT NULL,
            swaps DOUBLE[],
            exact BOOLEAN DEFAULT FALSE,
            job_id VARCHAR NOT NULL,
            PRIMARY KEY (set_id, metric, metric_version, variant_id)
        );
    """),
    (25, "judges", """
        -- [judge] a judge: a model variant and a pairwise prompt, the prompt's text kept with its version
        -- (a digest of the text). Its runs are generation sets whose source kind is 'judge'.
        CREATE TABLE judges (
            judge_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            variant_id VARCHAR NOT NULL,
            prompt_name VARCHAR NOT NULL,
            prompt_version VARCHAR NOT NULL,
            system VARCHAR NOT NULL,
            template VARCHAR NOT NULL,
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
    """),
    (26, "pair_routes", """
        -- [judge] a measured judge pre-screening a pair set (core/judge/routing.py): 'judged' pairs leave the
        -- experts' queues, 'experts_first' ones come first in them, 'audit' ones stay where they were.
        CREATE TABLE pair_routes (
            pair_set_id VARCHAR NOT NULL,
            pair_id INTEGER NOT NULL,
            route VARCHAR NOT NULL CHECK (route IN ('judged', 'experts_first', 'audit')),
            judge_run VARCHAR NOT NULL,
            verdict VARCHAR,
            routed_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (pair_set_id, pair_id)
        );
    """),
    (27, "generation_choices", """
        -- [judge] where a set asked for it (core.serving.backends.Choices) and the backend gave logprobs, the
        -- probability of each option where the answer starts, as JSON ({"1": .., "2": .., "tie": .., "mass": ..}).
        ALTER TABLE generations ADD COLUMN choices VARCHAR;
    """),
    (28, "example_tags", """
        -- [judge] a row's tag (or category) from the imported file: the group it is reported in.
        ALTER TABLE examples ADD COLUMN tag VARCHAR;
    """),
]
