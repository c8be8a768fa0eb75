"""Small Streamlit pieces several pages share: the dataset in use, the model, a face gallery."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.datasets import DatasetError
from core.runs import ModelError

from . import state


def dataset_table() -> tuple[pd.DataFrame, state.DataSource]:
    """The sidebar's dataset, or the model's training labels (with the error shown) when it
    cannot be loaded, so a page always has data; stops the page when there is none at all."""
    source = state.selected_source()
    fallbacks = [source, state.training_labels(state.selected_model()), state.training_labels(state.default_model())]
    for candidate in dict.fromkeys(fallbacks):
        try:
            table = state.load_table(candidate)
        except DatasetError as exc:
            st.error(f"Cannot load {candidate.describe()}: {exc}")
            continue
        skipped = table.attrs.get("skipped") or []
        note = f"; {len(skipped)} unusable rows skipped" if skipped else ""
        st.caption(f"Data shown: {candidate.describe()} - {len(table):,} faces{note}.")
        if skipped:
            with st.expander(f"{len(skipped)} skipped rows"):
                st.dataframe(pd.DataFrame(skipped, columns=["file", "reason"]), hide_index=True)
        return table, candidate
    st.info("No dataset to show: choose one in the sidebar.")
    st.stop()


def predictor_or_stop(model_dir: Path | None = None):
    """The selected model's Predictor; explains and stops the page when the folder has no model."""
    try:
        return state.get_predictor(str(model_dir or state.selected_model()))
    except ModelError as exc:
        st.warning(f"{exc}. Pick a trained run in the sidebar, or train one on the Training page.")
        st.stop()


def analyzer_or_stop(use: str | None = "photos"):
    """The selected model's face-analysis pipeline (see `state.get_analyzer`), or a stopped page."""
    predictor_or_stop()
    return state.get_analyzer(state.selected_model(), use)


def gallery(images: list, captions: list[str], columns: int = 6) -> None:
    """Images (file paths or arrays) in a grid with one caption each."""
    for start in range(0, len(images), columns):
        for column, image, caption in zip(st.columns(columns), images[start:start + columns],
                                          captions[start:start + columns]):
            column.image(image, caption=caption, width="stretch")
