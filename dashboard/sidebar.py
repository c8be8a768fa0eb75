"""The sidebar's global choices (model and dataset), rendered on every run by app.py.

The choices are written to session state (`model_dir`, `data_source`) where every page reads
them through `state.selected_model()` and `state.selected_source()`.
"""
from __future__ import annotations

import streamlit as st

from core.config import DEFAULT_DATASET_DIR
from core.runs import LITERT_FILE

from . import access, state

OTHER = "Other folder..."
PATH_HINTS = {"utkface": "Folder of UTKFace images (`{age}_{gender}_{race}_*.jpg`)",
              "pixels-csv": "CSV file with `age, ethnicity, gender, img_name, pixels`",
              "folder-csv": "Image folder (with labels.csv, or give the labels CSV below)"}


def render() -> None:
    with st.sidebar:
        _model_picker()
        _dataset_picker()


def _model_picker() -> None:
    st.subheader("Model")
    runs = {state.display_name(run): run for run in state.list_runs()}
    default = state.display_name(state.default_model())
    names = list(runs) + ([OTHER] if state.server_roots() else [])  # typed folders only under shared roots
    gone = st.session_state.get("model_choice")
    if gone is not None and gone not in names:  # the chosen run was deleted or moved meanwhile
        del st.session_state["model_choice"]  # the picker falls back to the default, and says so below
    choice = st.selectbox("Run folder", names, index=names.index(default) if default in runs else 0,
                          key="model_choice", help="Run folders under models/ and runs/, or a folder you type.")
    if gone is not None and gone not in names:
        st.warning(f"Run folder `{gone}` is no longer there (deleted or moved): showing `{choice}`.")
    model_dir = runs.get(choice, state.default_model())
    if choice == OTHER and (typed := st.text_input("Model folder", key="model_path",
                                                   placeholder="/path/to/run-folder").strip()):
        try:
            model_dir = state.shared_path(typed, "folder")
        except access.PathRefused as exc:
            st.error(f"Model folder {exc}; showing `{state.display_name(model_dir)}`.")
    st.session_state["model_dir"] = str(model_dir)
    if not (model_dir / LITERT_FILE).is_file():
        st.caption(f":orange[No {LITERT_FILE} in `{state.display_name(model_dir)}` yet: "
                   "pages that predict need a trained model.]")


def _dataset_picker() -> None:
    st.subheader("Dataset")
    roots = state.server_roots()
    kinds = list(state.SOURCE_KINDS) if roots else [state.TRAINING_LABELS]  # datasets are server paths
    kind = st.selectbox("Source", kinds, format_func=state.SOURCE_KINDS.get, key="data_kind",
                        help="Without a dataset, pages show the labels the selected model was trained on.")
    if kind == state.TRAINING_LABELS:
        source = state.training_labels(state.selected_model())
    else:
        shared = kind == "utkface" and access.is_shared(DEFAULT_DATASET_DIR, roots, "folder")
        suggestion = str(DEFAULT_DATASET_DIR) if shared else ""
        path = st.text_input(PATH_HINTS[kind], value=suggestion, key=f"data_path_{kind}").strip()
        labels = st.text_input("Labels CSV (optional)", key="labels_csv").strip() if kind == "folder-csv" else ""
        source = state.DataSource(kind, path, labels)  # as typed: `state.load_table` resolves it
    st.session_state["data_source"] = source
