"""Training: curves of run folders overlaid, and new runs launched in the background."""
from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import DATASET_FORMATS, DEFAULT_DATASET_DIR, PROJECT_ROOT, Config, option_label, option_types, user_options
from core.runs import CONFIG_FILE, HISTORY_FILE, SETTINGS_FILE
from core.runs import run_summary as summarize
from dashboard import access, charts, jobs, state, tables

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 2
DETECT = "detect"
STOP_HELP = ("Ends training after the current step; the best epoch so far is kept, scored on the test split "
             "and saved, which takes 10-20 s more.")
STOPPING = ("Stopping: the current training step ends, then the best epoch so far is scored on the test split "
            "and saved (10-20 s on two cores; 13 s for a tiny run).")


SUMMARY_COLUMNS = {"epochs": "epochs", "image_size": "image size", "width": "width",
                   "best_val_age_mae": "best val age MAE", "best_val_gender_accuracy": "best val gender acc",
                   "test_age_mae": "test age MAE", "test_gender_accuracy": "test gender acc"}


def run_summary(runs: dict[str, Path]) -> pd.DataFrame:
    """One row per run (`core.runs.run_summary`), with the page's column names."""
    return pd.DataFrame([{"run": name, **{SUMMARY_COLUMNS[key]: value for key, value in summarize(folder).items()}}
                         for name, folder in runs.items()])


def planned_epochs(folder: Path) -> int | None:
    """The epochs a run was started for (its settings), None when unknown."""
    config = state.read_artifact(folder, CONFIG_FILE) or (state.read_artifact(folder, SETTINGS_FILE) or {}).get("config", {})
    return config.get("epochs")


def job_panel(name: str, job: jobs.TrainingJob) -> None:
    """One of this session's runs: progress, Stop while it trains, Dismiss once it has ended."""
    status, done, total = job.status, job.epochs_done(), job.settings.config.epochs
    lines = job.log_lines()
    with st.container(border=True):
        head, action = st.columns([6, 1])
        head.markdown(f"**{name}**: {status}, epoch {done} of {total}")
        if status == "running":
            action.button("Stop", key=f"stop_{name}", on_click=job.stop, help=STOP_HELP)
        elif not job.active:
            action.button("Dismiss", key=f"dismiss_{name}", on_click=state.training_jobs().dismiss,
                          args=(name, state.session_id()),
                          help="Hides this panel; the run stays among the runs to compare.")
            if status in jobs.RESUMABLE:
                action.button("Resume", key=f"resume_{name}", on_click=resume, args=(name,),
                              help="Continues from the last saved epoch with the run's own settings and split.")
        if status == "stopping":
            st.status(STOPPING, state="running")
        finished = status == "finished"
        st.progress(1.0 if finished else min(1.0, done / total), text=lines[-1][:150] if lines else "starting...")
        if status == "failed":
            st.error(f"Training failed: {job.error()}")
        with st.expander("Log"):
            st.code("\n".join(lines[-30:]) or "(empty)", language=None, wrap_lines=True)


def my_jobs() -> dict[str, jobs.TrainingJob]:
    """The runs this session started (a copy: other sessions may add runs meanwhile)."""
    me = state.session_id()
    return {name: job for name, job in state.training_jobs().snapshot().items() if job.owner == me}


def curves_section(mine: dict[str, jobs.TrainingJob]) -> None:
    listed = {state.display_name(r): r for r in state.list_runs() if (r / HISTORY_FILE).is_file()}
    runs = listed | {name: job.run_dir for name, job in mine.items()}
    if not runs:
        st.info(f"No run folder with a {HISTORY_FILE} yet: train one below.")
        return
    chosen = [r for r in st.session_state.get("compare_runs", []) if r in runs]
    st.session_state["compare_runs"] = chosen or [next(
        (n for n, r in runs.items() if r.resolve() == state.selected_model().resolve()), next(iter(runs)))]
    names = st.multiselect("Runs to compare", list(runs), key="compare_runs")
    histories = {n: h for n in names if (h := state.read_artifact(runs[n], HISTORY_FILE)) is not None}
    aligned = st.toggle("Align runs by their share of planned epochs", key="curves_progress",
                        help="A 10-epoch run and a 40-epoch one side by side: each run's epochs as a share of its own.")
    planned = {n: planned_epochs(runs[n]) for n in names} if aligned else None
    for column, (metric, label) in zip(st.columns(len(tables.CURVE_METRICS)), tables.CURVE_METRICS.items()):
        column.plotly_chart(charts.curves(tables.history_long(histories, metric, planned), label, label,
                                          x="progress" if aligned else "epoch"), key=f"curve_{metric}")
    st.dataframe(run_summary({n: runs[n] for n in names}), hide_index=True)


def monitor(polling: bool) -> None:
    """This session's jobs and the curves; while one of its jobs runs this fragment redraws itself
    every few seconds."""
    mine = my_jobs()
    if polling and not any(job.active for job in mine.values()):
        st.rerun()  # the last job just ended: redraw the whole page, without polling
    if others := state.training_elsewhere():
        st.caption(f"{len(others)} run(s) training for other sessions: they join the runs to compare once they end.")
    for name, job in reversed(mine.items()):
        job_panel(name, job)
    curves_section(mine)


def resume(name: str) -> None:
    """Resume button callback: continue the run, or say why not."""
    try:
        state.training_jobs().resume(name, state.session_id())
        st.session_state["train_feedback"] = None
    except jobs.ServerBusy as exc:
        st.session_state["train_feedback"] = f"Not resumed: {exc}."
    except OSError as exc:
        logger.exception("cannot resume %s", name)
        st.session_state["train_feedback"] = f"Cannot resume {name}: {exc.strerror or 'see the server log'}."


class RunRefused(ValueError):
    """The Training form's settings cannot start a run; the message says why."""


def launch() -> None:
    """Form callback: start the run, or say why not."""
    s = st.session_state
    try:
        display = start_run(s)
    except RunRefused as exc:
        s["train_feedback"] = str(exc)
        return
    s["compare_runs"] = [*s.get("compare_runs", []), display]
    s["train_name"] = new_run_name()
    s["train_feedback"] = None


def start_run(s) -> str:
    """Validate the form's settings and start `python -m core train` in the background for this
    session; returns the run's display name, raises RunRefused."""
    name, typed = s["train_name"].strip(), [line.strip() for line in s["train_data"].splitlines() if line.strip()]
    run_dir = state.runs_dir() / name
    display = state.display_name(run_dir)
    if not jobs.RUN_NAME.match(name):
        raise RunRefused("Run name: letters, digits, dot, dash or underscore (up to 64), please.")
    if run_dir.exists():
        raise RunRefused(f"{display} already exists: choose another run name.")
    if not typed:
        raise RunRefused("Datasets: give a UTKFace folder, a 48x48 pixel CSV, or a folder with labels.csv (one a line).")
    datasets = []
    for data in typed:
        try:
            datasets.append(str(state.shared_path(data)))
        except access.PathRefused as exc:
            raise RunRefused(f"Dataset {exc}.") from None
    try:
        weights = tuple(float(w) for w in s["train_weights"].replace(",", " ").split())
        config = Config(**{option.name: _form_value(option, s[f"train_{option.name}"]) for option in user_options(Config)})
        settings = jobs.TrainSettings(data=tuple(datasets), config=config, weights=weights,
                                      fmt=None if s["train_format"] == DETECT else s["train_format"],
                                      limit=s["train_limit"] or None)
    except RunRefused:
        raise
    except ValueError as exc:  # a Config or a share the settings refuse
        raise RunRefused(f"Not started: {exc}.") from None
    try:
        state.training_jobs().start(display, run_dir, settings, state.session_id())
    except jobs.ServerBusy as exc:
        raise RunRefused(f"Not started: {exc}.") from None
    except OSError as exc:
        logger.exception("cannot start training in %s", run_dir)
        raise RunRefused(f"Cannot start training in {display}: {exc.strerror or 'see the server log'}.") from None
    return display


def _form_value(option, value):
    """A form value as Config takes it; a server path only inside the shared folders."""
    if not option.metadata["path"] or not str(value).strip():
        return value.strip() if isinstance(value, str) else value
    try:
        return str(state.shared_path(value.strip(), kind="file"))
    except access.PathRefused as exc:
        raise RunRefused(f"{option_label(option)} {exc}.") from None


def new_run_name() -> str:
    return f"run-{datetime.now():%Y%m%d-%H%M%S}"


def option_widget(option, default) -> None:
    """The form widget for one user-set Config field: a selectbox for choices, a checkbox for
    switches, a text box for paths, a number input bounded as Config says; keyed
    `train_<field>` for `launch`."""
    meta, key, label = option.metadata, f"train_{option.name}", option_label(option)
    kind = option_types(Config)[option.name]
    if meta["choices"]:
        st.selectbox(label, meta["choices"], index=meta["choices"].index(default), key=key, help=meta["help"])
    elif kind is bool:
        st.checkbox(label, value=default, key=key, help=meta["help"])
    elif kind is str:
        st.text_input(label, value=default, key=key, help=meta["help"])
    elif kind is int:
        st.number_input(label, int(meta["low"]), None if meta["high"] is None else int(meta["high"]), default,
                        step=1, key=key, help=meta["help"])
    else:
        st.number_input(label, meta["low"], meta["high"], default, format="%g", key=key, help=meta["help"])


def launch_form() -> None:
    source = state.selected_source()
    candidate = source.path if source.has_images else str(DEFAULT_DATASET_DIR)
    # as the visitor may type it: relative to the project, never the server's absolute path
    suggestion = os.path.relpath(candidate, PROJECT_ROOT) if access.is_shared(candidate, state.server_roots()) else ""
    st.session_state.setdefault("train_name", new_run_name())
    defaults = jobs.TrainSettings(data="").config
    with st.form("train_form"):
        st.caption(f"Runs are written under `{state.display_name(state.runs_dir())}`, "
                   "by `python -m core train` in a separate process.")
        left, middle, right = st.columns([1, 2, 1])
        left.text_input("Run name", key="train_name")
        middle.text_area("Datasets, one a line (UTKFace folder, 48x48 pixel CSV, or folder with labels.csv)",
                         value=suggestion, key="train_data", height=80,
                         help="Several datasets train one model together. A folder's labels.csv may give an age, an "
                              "age bracket (age_lo, age_hi) or no age, and may lack a gender: each part of the model "
                              "learns from the rows that have its label.")
        right.selectbox("Format", [DETECT, *DATASET_FORMATS], key="train_format")
        right.text_input("Shares of the batches", key="train_weights", placeholder="by size",
                         help="One number per dataset, in order (e.g. 3 1: the first gives three batches in four); "
                              "empty: each dataset in proportion to its images.")
        options = user_options(Config)
        for start in range(0, len(options), 4):
            for column, option in zip(st.columns(4), options[start:start + 4]):
                with column:
                    option_widget(option, getattr(defaults, option.name))
        st.number_input("Use at most N images (0 = all)", 0, None, 0, step=500, key="train_limit")
        st.form_submit_button("Start training", type="primary", on_click=launch)
    if st.session_state.get("train_feedback"):
        st.error(st.session_state["train_feedback"])


st.title("Training")
st.caption("Curves of each epoch (solid: training, dashed: validation), read from each run folder's history.csv.")
polling = any(job.active for job in my_jobs().values())
st.fragment(monitor, run_every=REFRESH_SECONDS if polling else None)(polling)
st.subheader("Train a new model")
launch_form() if state.server_roots() else st.info(state.without_server_folders("training (it reads a dataset on the server)"))
