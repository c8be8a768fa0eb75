"""Small Streamlit pieces several pages share: the dataset in use, the model, a face gallery."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.config import QUALITY_GRADES, AnswerSettings, option_label, user_options
from core.data.datasets import DatasetError
from core.imaging.files import ImageError, load_image
from core.runs import ModelError

from . import state


def page_failed(exc: Exception) -> None:
    """What a page shows when it fails unexpectedly: one line in our words with a reference, in
    place of Streamlit's error box (its type, message and links to outside help); the traceback
    goes to the server's log under the same reference, for the operator."""
    reference = uuid.uuid4().hex[:8]
    logging.getLogger("dashboard").error("page failed (reference %s)", reference, exc_info=exc)
    st.error(f"Something went wrong on this page, and it stopped. Try again, or with other settings; if it happens "
             f"again, tell the operator reference {reference} (the details are in the server's log).",
             icon=":material/error:")


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


def upload_limit_mb() -> int:
    """The server's upload cap in MB (server.maxUploadSize, per file), applied to a page's uploads
    together too. The browser refuses a larger file before the page sees it (a red mark next to
    it), so pages state the cap in their own text."""
    return int(st.get_option("server.maxUploadSize"))


def refuse_oversized(files, advice: str) -> None:
    """Stops the page with an error when the uploads (a file, a list, or None) add up to more than the cap."""
    uploaded = files if isinstance(files, list) else [files] if files else []
    total_mb = sum(f.size for f in uploaded) / 2**20
    if total_mb > upload_limit_mb():
        st.error(f"This upload is {total_mb:,.1f} MB; the limit is {upload_limit_mb()} MB. {advice}")
        st.stop()


GALLERY_SIDE = 400  # files are decoded at about this size for a gallery (JPEGs at once, in draft mode)


def gallery(images: list, captions: list[str], columns: int = 6) -> None:
    """Images (file paths or arrays) in a grid with one caption each. Files are decoded as every
    image of the project is (`core.imaging.files`), so one that cannot be read (an empty .jpg,
    a text file) shows why in its place instead of stopping the page."""
    for start in range(0, len(images), columns):
        for column, image, caption in zip(st.columns(columns), images[start:start + columns],
                                          captions[start:start + columns]):
            try:
                pixels = image if isinstance(image, np.ndarray) else load_image(image, max_side=GALLERY_SIDE)
            except ImageError as exc:
                column.caption(f"{caption}: cannot show this file ({exc})")
                continue
            column.image(pixels, caption=caption, width="stretch")


def answer_settings(key: str, threshold: bool = True, stacked: bool = False) -> AnswerSettings:
    """Widgets for `AnswerSettings` (labels and ranges from its fields), keyed by page: the
    interval's coverage beside the switches for abstaining on poor faces and, when offered, an age
    check; or all `stacked` in the current container (a narrow sidebar)."""
    fields = {option.name: option for option in user_options(AnswerSettings)}
    options = {name: option.metadata for name, option in fields.items()}
    defaults = AnswerSettings()
    # Two columns, the switches one above the other: three side by side cut their labels at 800 px.
    left, middle = [st] * 2 if stacked else st.columns(2)
    right = middle
    interval = left.slider(option_label(fields["interval"]), options["interval"]["low"], options["interval"]["high"],
                           defaults.interval, 0.05, format="%.2f", key=f"{key}_interval", help=options["interval"]["help"])
    abstain = middle.checkbox("Mark poor-quality faces uncertain", defaults.min_quality == "good",
                              key=f"{key}_abstain", help=options["min_quality"]["help"])
    age_threshold = None
    if threshold and right.checkbox("Check an age threshold", key=f"{key}_check"):
        age_threshold = right.number_input(option_label(fields["age_threshold"]), float(options["age_threshold"]["low"]),
                                           float(options["age_threshold"]["high"]), 18.0, 1.0, format="%g",
                                           key=f"{key}_threshold", help=options["age_threshold"]["help"])
    return AnswerSettings(interval=interval, min_quality=QUALITY_GRADES[int(abstain)], age_threshold=age_threshold)


def face_table(results) -> list[dict]:
    """FaceResults as the rows the photo and live pages show: the answers a person reads first
    (gender, age, its range, the quality verdict and its issues) on the left, where a narrow
    column shows them without scrolling; the confidence, the check and the raw numbers after."""
    return [{"face": f.number, "gender": f.gender, "age": f.age_years,
             "age range": f.age_text if f.age_low is not None else "",
             "quality": f.quality.grade if f.quality else "", "issues": ", ".join(f.quality.issues) if f.quality else "",
             "confidence": f.gender_confidence, **({"age check": f.age_check} if f.age_check is not None else {}),
             "status": f.status, "p_female": f.p_female}
            for f in results]


FACE_COLUMNS = {"confidence": st.column_config.ProgressColumn("gender confidence", min_value=0.5, max_value=1.0,
                                                              format="percent"),
                "p_female": st.column_config.NumberColumn("P(female)", format="%.2f")}
