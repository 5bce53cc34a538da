"""The Data page's Import tab: a file (upload or server path), its options, the validation report; files
over core.datasets.imports.JOB_ABOVE_BYTES are checked or imported by a job whose progress shows here."""

from pathlib import Path

import streamlit as st

from core.auth import Action
from core.datasets import ImportOptions, import_dataset, validate
from core.datasets.formats import FORMATS, MAPPABLE
from core.datasets.imports import import_status, needs_job, start_import
from core.metrics.registry import METRICS
from core.tokenizer import token_counter
from dashboard.context import get_owner, require_page
from dashboard.widgets import job_progress, problems_table, report_summary, user_errors

METRICS_HELP = ("Which metrics score generations of this data. Empty: chosen from the references when scoring "
                "(tests_pass first when every row has tests). " + " ".join(f"**{n}**: {m.help}"
                                                                            for n, m in METRICS.items()))


def _source() -> tuple[bytes | None, str]:
    how = st.radio("Source", ["Upload a file", "Path on the server"], horizontal=True)
    if how == "Upload a file":
        upload = st.file_uploader("Dataset file (.jsonl chat or prompt/completion, .csv, .parquet)",
                                  type=["jsonl", "json", "ndjson", "csv", "tsv", "parquet"])
        return (upload.getvalue(), upload.name) if upload else (None, "")
    path = st.text_input("File path on the server", placeholder="/data/tickets.jsonl").strip()
    if not path:
        return None, ""
    file = Path(path).expanduser()
    if not file.is_file():
        st.error(f"{file}: no such file on the server.")
        return None, ""
    return file.read_bytes(), file.name


def _options_form(settings) -> ImportOptions:
    with st.expander("Options: name, format, column mapping, split"):
        name = st.text_input("Dataset name", help="Lower-case letters, digits, '-' and '_'. Default: the file name.")
        fmt = st.selectbox("Format", ["from the file name", *FORMATS])
        st.caption("Column mapping (CSV, Parquet or JSONL with other field names): leave empty for the defaults.")
        cols = st.columns(len(MAPPABLE))
        mapping = {key: cols[i].text_input(key, placeholder=key).strip() for i, key in enumerate(MAPPABLE)}
        c1, c2, c3, c4 = st.columns(4)
        train = c1.number_input("Train", 0.0, 1.0, float(settings.data.split[0]), 0.05)
        val = c2.number_input("Validation", 0.0, 1.0, float(settings.data.split[1]), 0.05)
        test = c3.number_input("Test", 0.0, 1.0, float(settings.data.split[2]), 0.05)
        seed = c4.number_input("Split seed", 0, 2**31 - 1, int(settings.data.seed))
    metrics = st.multiselect("Metrics that apply", list(METRICS), help=METRICS_HELP, key="import-metrics")
    return ImportOptions.from_settings(settings, name=name.strip(), seed=int(seed), metrics=metrics,
                                       format=None if fmt == "from the file name" else fmt,
                                       mapping={k: v for k, v in mapping.items() if v},
                                       split=(round(train, 6), round(val, 6), round(test, 6)))


def import_tab(user) -> None:
    owner = get_owner()
    data, file = _source()
    options = None
    with user_errors():
        options = _options_form(owner.settings)
    c1, c2 = st.columns([1, 6])
    do_validate = c1.button("Validate", disabled=data is None or options is None)
    do_import = c2.button("Import", type="primary", disabled=data is None or options is None)
    as_job = (do_import or do_validate) and needs_job(len(data))
    if as_job:
        with user_errors():
            job_id = start_import(owner.store, owner.jobs, user, data, file, options,
                                  base_model=owner.settings.base_model, check_only=do_validate)
            st.session_state["import-jobs"] = [job_id, *st.session_state.get("import-jobs", [])][:5]
            st.success(f"{'Checking' if do_validate else 'Importing'} {file} as job {job_id}: its progress is "
                       "shown below.")
    _import_jobs()
    if as_job or not (do_validate or do_import):
        return
    with st.spinner("Loading the base model's tokenizer ..."):
        count, tok_name, why = token_counter(owner.settings.base_model)
    if why:
        st.info(f"Token statistics skipped: {why}")
    with user_errors(), st.spinner(f"Checking {file} ..."):
        if do_validate:
            report = validate(data, file, options, count, tok_name).report
            (st.success if report.ok else st.error)(
                f"{file}: {'can be imported' if report.ok else 'cannot be imported until the errors are fixed'}.")
        else:
            result = import_dataset(owner.store, user, data, file, options, count, tok_name)
            report = result.report
            if result.created:
                st.success(f"Imported **{result.dataset}** version `{result.version_id}`.")
            elif result.metrics_updated:
                st.info(f"Same content and split as **{result.dataset}** version `{result.version_id}`: nothing new "
                        f"was imported; its metrics are now {', '.join(options.metrics or [])}.")
            else:
                st.info(f"Same content and split as **{result.dataset}** version `{result.version_id}`: "
                        "nothing new was imported.")
        report_summary(report)
        problems_table(report.problems)


@st.fragment(run_every="2s")
def _import_jobs() -> None:
    """This session's import jobs: progress while they run, then the version or the problems."""
    job_ids = st.session_state.get("import-jobs") or []
    if not job_ids:
        return
    user, owner = require_page(Action.DATA_IMPORT), get_owner()
    for job_id in job_ids:
        status = import_status(owner.store, owner.jobs, user, job_id)
        if not status["done"]:
            job_progress(f"{'Checking' if status['check_only'] else 'Importing'} {status['file']}", job_id,
                         status["progress"])
            continue
        result = status["result"]
        if status["status"] == "succeeded" and status["check_only"]:
            verdict = "can be imported" if result["ok"] else "cannot be imported until the errors are fixed"
            (st.success if result["ok"] else st.error)(
                f"{status['file']}: {verdict} ({result['examples']} valid examples).")
        elif status["status"] == "succeeded" and result:
            if result["created"]:
                st.success(f"Imported **{result['dataset']}** version `{result['version_id']}` from "
                           f"{status['file']}.")
            else:
                st.info(f"{status['file']}: same content and split as **{result['dataset']}** version "
                        f"`{result['version_id']}`: nothing new was imported.")
        else:
            st.error(f"{status['file']} ({job_id}): {status['status']}. {status['error'] or ''}")
        if status["report"] is not None:
            with st.expander(f"Validation report of {status['file']}"):
                report_summary(status["report"])
                problems_table(status["report"].problems)
