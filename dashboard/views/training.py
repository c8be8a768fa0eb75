"""Training: curves of run folders overlaid, and new runs launched in the background."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import DATASET_FORMATS, DEFAULT_DATASET_DIR, Config
from core.runs import HISTORY_FILE, METRICS_FILE, SETTINGS_FILE
from dashboard import charts, jobs, state, tables

REFRESH_SECONDS = 2
DETECT = "detect"


def run_summary(runs: dict[str, Path]) -> pd.DataFrame:
    """One row per run: its size, best validation epoch and test metrics when it has them."""
    rows = []
    for name, folder in runs.items():
        history = state.read_artifact(folder, HISTORY_FILE)
        metrics = state.read_artifact(folder, METRICS_FILE) or {}
        config = (state.read_artifact(folder, SETTINGS_FILE) or {}).get("config", {})
        scored = history.dropna(subset=["val_loss"]) if history is not None else pd.DataFrame()
        best = scored.loc[scored["val_loss"].idxmin()] if len(scored) else {}
        rows.append({"run": name, "epochs": 0 if history is None else len(history),
                     "image size": config.get("image_size"), "width": config.get("width"),
                     "best val age MAE": best.get("val_age_mae"), "best val gender acc": best.get("val_gender_accuracy"),
                     "test age MAE": metrics.get("age_mae"), "test gender acc": metrics.get("gender_accuracy")})
    return pd.DataFrame(rows)


def job_panel(name: str, job: jobs.TrainingJob) -> None:
    status, done, total = job.status, job.epochs_done(), job.settings.config.epochs
    lines = job.log_lines()
    with st.container(border=True):
        head, action = st.columns([6, 1])
        head.markdown(f"**{name}**: {status}, epoch {done} of {total}")
        if status == "running":
            action.button("Stop", key=f"stop_{name}", on_click=job.stop,
                          help="Stops now; the best epoch so far is kept and scored on the test split.")
        finished = status == "finished"
        st.progress(1.0 if finished else min(1.0, done / total), text=lines[-1][:150] if lines else "starting...")
        if status == "failed":
            st.error(f"Training failed: {job.error()}")
        with st.expander("Log"):
            st.code("\n".join(lines[-30:]) or "(empty)", language=None)


def curves_section() -> None:
    launched = {name: job.run_dir for name, job in state.training_jobs().items()}
    runs = {state.display_name(r): r for r in state.list_runs() if (r / HISTORY_FILE).is_file()} | launched
    if not runs:
        st.info(f"No run folder with a {HISTORY_FILE} yet: train one below.")
        return
    chosen = [r for r in st.session_state.get("compare_runs", []) if r in runs]
    st.session_state["compare_runs"] = chosen or [next(
        (n for n, r in runs.items() if r.resolve() == state.selected_model().resolve()), next(iter(runs)))]
    names = st.multiselect("Runs to compare", list(runs), key="compare_runs")
    histories = {n: h for n in names if (h := state.read_artifact(runs[n], HISTORY_FILE)) is not None}
    for column, (metric, label) in zip(st.columns(len(tables.CURVE_METRICS)), tables.CURVE_METRICS.items()):
        column.plotly_chart(charts.curves(tables.history_long(histories, metric), label, label), key=f"curve_{metric}")
    st.dataframe(run_summary({n: runs[n] for n in names}), hide_index=True)


def monitor(polling: bool) -> None:
    """Jobs and curves; while a job runs this fragment redraws itself every few seconds."""
    launched = state.training_jobs()
    if polling and not any(job.status == "running" for job in launched.values()):
        st.rerun()  # the last job just ended: redraw the whole page, without polling
    for name, job in reversed(list(launched.items())):  # other sessions may add jobs meanwhile
        job_panel(name, job)
    curves_section()


def launch() -> None:
    """Form callback: validate the settings and start `python -m core train` in the background."""
    s = st.session_state
    name, data = s["train_name"].strip(), s["train_data"].strip()
    run_dir = state.runs_dir() / name
    if not jobs.RUN_NAME.match(name):
        s["train_feedback"] = "Run name: letters, digits, dot, dash or underscore (up to 64), please."
    elif run_dir.exists():
        s["train_feedback"] = f"{state.display_name(run_dir)} already exists: choose another run name."
    elif not data or not Path(data).expanduser().exists():
        s["train_feedback"] = f"No dataset at {data!r}."
    else:
        config = Config(**{option.name: s[f"train_{option.name}"] for option in Config.options()})
        settings = jobs.TrainSettings(data=str(Path(data).expanduser()), config=config,
                                      fmt=None if s["train_format"] == DETECT else s["train_format"],
                                      limit=s["train_limit"] or None)
        display = state.display_name(run_dir)
        try:
            state.training_jobs()[display] = jobs.start(run_dir, settings)
        except OSError as exc:
            s["train_feedback"] = f"Cannot start training in {display}: {exc}"
            return
        s["compare_runs"] = [*s.get("compare_runs", []), display]
        s["train_name"] = new_run_name()
        s["train_feedback"] = None


def new_run_name() -> str:
    return f"run-{datetime.now():%Y%m%d-%H%M%S}"


def option_widget(option, default) -> None:
    """The form widget for one user-set Config field: a selectbox for choices, a checkbox for
    switches, a number input bounded as Config says; keyed `train_<field>` for `launch`."""
    meta, key, label = option.metadata, f"train_{option.name}", option.name.replace("_", " ").capitalize()
    if meta["choices"]:
        st.selectbox(label, meta["choices"], index=meta["choices"].index(default), key=key, help=meta["help"])
    elif option.type == "bool":
        st.checkbox(label, value=default, key=key, help=meta["help"])
    elif option.type == "int":
        st.number_input(label, int(meta["low"]), None if meta["high"] is None else int(meta["high"]), default,
                        step=1, key=key, help=meta["help"])
    else:
        st.number_input(label, meta["low"], meta["high"], default, format="%g", key=key, help=meta["help"])


def launch_form() -> None:
    source = state.selected_source()
    suggestion = source.path if source.has_images else str(DEFAULT_DATASET_DIR) if DEFAULT_DATASET_DIR.is_dir() else ""
    st.session_state.setdefault("train_name", new_run_name())
    defaults = jobs.TrainSettings(data="").config
    with st.form("train_form"):
        st.caption(f"Runs are written under `{state.display_name(state.runs_dir())}`, "
                   "by `python -m core train` in a separate process.")
        left, middle, right = st.columns([1, 2, 1])
        left.text_input("Run name", key="train_name")
        middle.text_input("Dataset (UTKFace folder, 48x48 pixel CSV, or folder with labels.csv)",
                          value=suggestion, key="train_data")
        right.selectbox("Format", [DETECT, *DATASET_FORMATS], key="train_format")
        options = Config.options()
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
polling = any(job.status == "running" for job in state.training_jobs().values())
st.fragment(monitor, run_every=REFRESH_SECONDS if polling else None)(polling)
st.subheader("Train a new model")
launch_form()
