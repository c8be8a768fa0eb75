"""Training: curves of run folders overlaid, and new runs launched in the background."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import DEFAULT_DATASET_DIR, Config
from core.datasets import FORMATS
from dashboard import charts, jobs, state, tables

REFRESH_SECONDS = 2
DETECT = "detect"


def run_summary(runs: dict[str, Path]) -> pd.DataFrame:
    """One row per run: its size, best validation epoch and test metrics when it has them."""
    rows = []
    for name, folder in runs.items():
        history = state.read_artifact(folder, "history.csv")
        metrics = state.read_artifact(folder, "metrics.json") or {}
        config = (state.read_artifact(folder, "model.json") or {}).get("config", {})
        scored = history.dropna(subset=["val_loss"]) if history is not None else pd.DataFrame()
        best = scored.loc[scored["val_loss"].idxmin()] if len(scored) else {}
        rows.append({"run": name, "epochs": 0 if history is None else len(history),
                     "image size": config.get("image_size"), "width": config.get("width"),
                     "best val age MAE": best.get("val_age_mae"), "best val gender acc": best.get("val_gender_accuracy"),
                     "test age MAE": metrics.get("age_mae"), "test gender acc": metrics.get("gender_accuracy")})
    return pd.DataFrame(rows)


def job_panel(name: str, job: jobs.TrainingJob) -> None:
    status, done, total = job.status, job.epochs_done(), job.settings.epochs
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
    runs = {state.display_name(r): r for r in state.list_runs() if (r / "history.csv").is_file()} | launched
    if not runs:
        st.info("No run folder with a history.csv yet: train one below.")
        return
    chosen = [r for r in st.session_state.get("compare_runs", []) if r in runs]
    st.session_state["compare_runs"] = chosen or [next(
        (n for n, r in runs.items() if r.resolve() == state.selected_model().resolve()), next(iter(runs)))]
    names = st.multiselect("Runs to compare", list(runs), key="compare_runs")
    histories = {n: h for n in names if (h := state.read_artifact(runs[n], "history.csv")) is not None}
    for column, (metric, label) in zip(st.columns(len(tables.CURVE_METRICS)), tables.CURVE_METRICS.items()):
        column.plotly_chart(charts.curves(tables.history_long(histories, metric), label, label), key=f"curve_{metric}")
    st.dataframe(run_summary({n: runs[n] for n in names}), hide_index=True)


def monitor(polling: bool) -> None:
    """Jobs and curves; while a job runs this fragment redraws itself every few seconds."""
    launched = state.training_jobs()
    if polling and not any(job.status == "running" for job in launched.values()):
        st.rerun()  # the last job just ended: redraw the whole page, without polling
    for name, job in reversed(launched.items()):
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
        settings = jobs.TrainSettings(
            data=str(Path(data).expanduser()), fmt=None if s["train_format"] == DETECT else s["train_format"],
            epochs=s["train_epochs"], image_size=s["train_image_size"], width=s["train_width"],
            batch_size=s["train_batch_size"], learning_rate=s["train_lr"], limit=s["train_limit"] or None,
            augment=s["train_augment"])
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


def _choice(column, label: str, options: list, default, key: str) -> None:
    """A selectbox preselecting the CLI's default (added to the options if they lack it)."""
    options = sorted({*options, default})
    column.selectbox(label, options, index=options.index(default), key=key)


def launch_form() -> None:
    source = state.selected_source()
    suggestion = source.path if source.has_images else str(DEFAULT_DATASET_DIR) if DEFAULT_DATASET_DIR.is_dir() else ""
    st.session_state.setdefault("train_name", new_run_name())
    with st.form("train_form"):
        st.caption(f"Runs are written under `{state.display_name(state.runs_dir())}`, "
                   "by `python -m core train` in a separate process.")
        left, right = st.columns([1, 2])
        left.text_input("Run name", key="train_name")
        right.text_input("Dataset (UTKFace folder, 48x48 pixel CSV, or folder with labels.csv)",
                         value=suggestion, key="train_data")
        row = st.columns(4)
        row[0].selectbox("Format", [DETECT, *FORMATS], key="train_format")
        row[1].number_input("Epochs", 1, 500, jobs.TrainSettings.epochs, key="train_epochs")
        _choice(row[2], "Image size", [32, 48, 64, 96, 128], Config.image_size, "train_image_size")
        _choice(row[3], "Width (model size)", [8, 16, 24, 32, 48, 64], Config.width, "train_width")
        row = st.columns(4)
        _choice(row[0], "Batch size", [16, 32, 64, 128], Config.batch_size, "train_batch_size")
        row[1].number_input("Learning rate", 1e-5, 1.0, Config.learning_rate, step=5e-4, format="%.4f", key="train_lr")
        row[2].number_input("Use at most N images (0 = all)", 0, None, 0, step=500, key="train_limit")
        row[3].checkbox("Augment", value=True, key="train_augment")
        st.form_submit_button("Start training", type="primary", on_click=launch)
    if st.session_state.get("train_feedback"):
        st.error(st.session_state["train_feedback"])


st.title("Training")
st.caption("Curves of each epoch (solid: training, dashed: validation), read from each run folder's history.csv.")
polling = any(job.status == "running" for job in state.training_jobs().values())
st.fragment(monitor, run_every=REFRESH_SECONDS if polling else None)(polling)
st.subheader("Train a new model")
launch_form()
