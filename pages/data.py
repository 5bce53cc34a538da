"""Data: browse dataset versions, their validation reports and examples; import a file (pages/parts/data.py)."""

import json

import pandas as pd
import streamlit as st

from core.auth import Action
from core.datasets import get_version, list_examples, list_versions, set_metric_options, set_version_metrics
from core.datasets.formats import SPLITS
from core.metrics.registry import METRICS, metric_options_from_text
from dashboard.context import current_user, get_owner
from dashboard.widgets import conversation, problems_table, report_summary, user_errors
from pages.parts.data import METRICS_HELP, import_tab

PAGE_SIZE = 20


def render() -> None:
    user = current_user()
    st.title("Data")
    if user.may(Action.DATA_IMPORT):
        versions_tab, importing = st.tabs(["Versions", "Import"])
        with importing:
            import_tab(user)
    else:
        versions_tab = st.container()
    with versions_tab:
        _versions(user)


def _declared_metrics(user, version: dict) -> None:
    declared, options = version["metrics"], version["metric_options"] or {}
    st.caption("Metrics: " + (", ".join(declared) if declared else "chosen from the references when scoring")
               + (f" · labels: {', '.join(options['labels'])}" if options.get("labels") else "")
               + (" · a JSON schema" if options.get("json_schema") else ""))
    if not user.may(Action.DATA_IMPORT):
        return
    vid = version["version_id"]
    with st.form(f"metrics-{vid}", border=False):
        chosen = st.multiselect("Metrics that apply", list(METRICS), default=declared or [], help=METRICS_HELP,
                                key=f"declared-metrics-{vid}")
        labels = st.text_input("Labels for label_accuracy (comma-separated)", ", ".join(options.get("labels", [])),
                               help="Empty: the distinct references of the scored split.", key=f"labels-{vid}")
        schema = st.text_area("JSON schema for schema_valid", json.dumps(options["json_schema"], indent=2)
                              if options.get("json_schema") else "", key=f"schema-{vid}", height=120)
        if st.form_submit_button("Save metrics"):
            with user_errors():
                set_version_metrics(get_owner().store, user, vid, chosen)
                set_metric_options(get_owner().store, user, vid, metric_options_from_text(labels, schema))
                st.success("Saved: " + (", ".join(chosen) if chosen else "chosen from the references"))


def _versions(user) -> None:
    owner = get_owner()
    versions = list_versions(owner.store, user)
    if not versions:
        st.info("No datasets yet." + (" Import one in the Import tab." if user.may(Action.DATA_IMPORT) else ""))
        return
    table = pd.DataFrame(versions)[["dataset", "version_id", "n_examples", "n_train", "n_validation", "n_test",
                                    "source_name", "created_at", "created_by"]]
    st.dataframe(table, hide_index=True, width="stretch")
    labels = {v["version_id"]: f"{v['dataset']} · {v['version_id']} · {v['n_examples']} examples" for v in versions}
    chosen = st.selectbox("Version", list(labels), format_func=labels.get)
    version = get_version(owner.store, user, chosen)
    report = version["report"]
    st.subheader(f"{version['dataset']} · {version['version_id']}")
    st.caption(f"From {version['source_name']} ({version['source_format']}), split {version['split_spec']}, "
               f"imported {str(version['created_at'])[:19]} by {version['created_by']}.")
    report_summary(report)
    with st.expander(f"Validation report: {len(report.warnings)} warnings"):
        problems_table(report.problems)
    _declared_metrics(user, version)

    st.subheader("Examples")
    c1, c2, c3 = st.columns([1, 3, 1])
    split = c1.selectbox("Split", ["all", *SPLITS])
    search = c2.text_input("Search text", placeholder="words in any message")
    with user_errors():
        total, _ = list_examples(owner.store, user, chosen, None if split == "all" else split, search, limit=0)
        pages = max(1, -(-total // PAGE_SIZE))
        page = c3.number_input(f"Page (of {pages})", 1, pages, 1)
        _, rows = list_examples(owner.store, user, chosen, None if split == "all" else split, search,
                                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        st.caption(f"{total} matching examples")
        for r in rows:
            with st.expander(f"#{r['idx']} · {r['split']} · line {r['source_line']} · {r['n_tokens'] or '?'} tokens"):
                conversation(r["messages"])
