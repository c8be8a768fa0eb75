"""The per-person table the Video and Live camera pages share: `core.video.people.PersonResult`
rows (people.csv's columns, in its order) with each person's best view as a picture in front.

Plain functions over results and arrays, no widgets except `show_table`: tested without a page.
"""
from __future__ import annotations

import base64
from typing import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from core.batch.spreadsheet import to_safe_csv
from core.video.people import PersonResult, people_frame

from . import components


def picture_url(rgb: np.ndarray | None) -> str | None:
    """A small RGB picture as a PNG data URL (what a table's image column shows), or None."""
    if rgb is None or rgb.size == 0:
        return None
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii") if ok else None


def table(people: Sequence[PersonResult], thumbnails: Mapping[int, np.ndarray] | None = None) -> pd.DataFrame:
    """people.csv's columns, with a `view` column of pictures first when there are thumbnails."""
    frame = people_frame(person.row() for person in people)
    if thumbnails is not None:
        frame.insert(0, "view", [picture_url(thumbnails.get(int(number))) for number in frame["person"]])
    return frame


def spans_table(spans: Sequence[tuple[int, float, float]], people: Sequence[PersonResult]) -> pd.DataFrame:
    """(person, from, to) stretches in view with each person's gender: `charts.presence`'s input."""
    gender = {person.person: person.gender for person in people}
    rows = [(number, start, end, gender[number]) for number, start, end in spans if number in gender]
    return pd.DataFrame(rows, columns=["person", "start_s", "end_s", "gender"])


def csv_text(people: Sequence[PersonResult]) -> str:
    """people.csv as the command line writes it (spreadsheet-safe cells)."""
    return to_safe_csv(people_frame(person.row() for person in people))


COLUMNS = {
    "view": st.column_config.ImageColumn("best view", width="small"),
    "person": st.column_config.NumberColumn("person", format="%d"),
    "first_seen_s": st.column_config.NumberColumn("first seen (s)", format="%.1f"),
    "last_seen_s": st.column_config.NumberColumn("last seen (s)", format="%.1f"),
    "p_female": st.column_config.NumberColumn("P(female)", format="%.2f"),
    "gender_confidence": components.FACE_COLUMNS["confidence"],
    "best_time_s": st.column_config.NumberColumn("best view at (s)", format="%.1f"),
}


def show_table(frame: pd.DataFrame, key: str) -> None:
    st.dataframe(frame, hide_index=True, column_config=COLUMNS, key=key,
                 row_height=64 if "view" in frame else None)
