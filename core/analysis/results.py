"""`FaceResult`, the one result type of every entry point, and the output columns it owns.

A face's row (the batch CSV, the Parquet parts, `predict --json`, the pages' tables) is
`FaceResult.row`; a photo that gives no face (none found, unreadable) is `failure_row`. Both have
exactly `COLUMNS`, whose types (`COLUMN_TYPES`) make the CSV's read-back types and the Parquet
schema, so a field added here reaches every output or none.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..config import QUALITY_GRADES, AnswerSettings
from ..detect.face import Face
from ..inference.calibration import age_check
from ..inference.predictor import AgeReadout, GenderReadout, Prediction
from .quality import QUALITY_COLUMN_TYPES, Quality

if TYPE_CHECKING:  # pandas is imported where frames are made: writing a CSV needs none
    import pandas as pd

DEFAULT_ANSWERS = AnswerSettings()
FACE_STATUSES = ("ok", "uncertain")  # rows that are faces; the others: no_face, error
# Every output column, in order, with its type: int (missing allowed), float, or str (text).
COLUMN_TYPES: dict[str, type] = {
    "file": str, "status": str, "face": int, "x": int, "y": int, "w": int, "h": int, "det_score": float,
    "age": float, "age_low": int, "age_high": int, "gender": str, "p_female": float, "gender_confidence": float,
    "age_threshold": float, "age_check": str, **QUALITY_COLUMN_TYPES, "error": str,
}
COLUMNS = list(COLUMN_TYPES)
INTEGER_COLUMNS = tuple(name for name, kind in COLUMN_TYPES.items() if kind is int)
FLOAT_COLUMNS = tuple(name for name, kind in COLUMN_TYPES.items() if kind is float)
TEXT_COLUMNS = tuple(name for name, kind in COLUMN_TYPES.items() if kind is str)


@dataclass(frozen=True)
class FaceResult(GenderReadout, AgeReadout):
    """One face in a photo or frame: where it is and what the model says about it.

    `number` counts faces from 1 in the order they are reported (by detection score; in live
    video, the track's number) and is drawn on the face's box, so tables and pictures agree.
    `age` is rounded to 0.1 year once, here; `age_years` is the whole number shown to people.
    `age_low`..`age_high` (whole years, inclusive) holds the true age with the calibrated
    coverage asked for (None when the model has no calibration); `quality` holds the face's
    measures and issues; `status` is "uncertain" when the face is below the quality asked for
    (the numbers stay, for reference, but should not be relied on); `age_check` is the answer
    to an age threshold when one was asked for (see `face_result`)."""

    number: int
    x: int
    y: int
    w: int
    h: int
    det_score: float | None  # None for crops taken as already aligned
    left_eye: tuple[float, float] | None  # the eye on the image's left side, image pixels
    right_eye: tuple[float, float] | None
    age: float
    p_female: float
    age_low: int | None = None
    age_high: int | None = None
    quality: Quality | None = None
    status: str = "ok"
    age_threshold: float | None = None
    age_check: str | None = None

    def label(self, show_probability: bool = False) -> str:
        """"1 female, 28 (25-31)": the point age and its range (with the gender's probability
        when asked), the age check when one was asked for ("18+", "<18", "18?") and, for a poor
        face, its issues ("poor: blurry"): the text drawn on the box and shown under crops."""
        certainty = f" {self.gender_confidence:.0%}" if show_probability else ""
        ranged = "" if self.age_low is None else f" ({self.age_low}-{self.age_high})"
        parts = [f"{self.number} {self.gender}{certainty}, {self.age_years}{ranged}"]
        if self.age_check is not None:
            threshold = f"{self.age_threshold:g}"
            parts.append({"over": f"{threshold}+", "under": f"<{threshold}"}.get(self.age_check, f"{threshold}?"))
        if self.quality is not None and self.quality.issues:
            parts.append(("uncertain: " if self.status == "uncertain" else "poor: ") + ",".join(self.quality.issues))
        return " | ".join(parts)

    def row(self, file: str) -> dict:
        """The face as an output row of `file`: exactly COLUMNS, in their order."""
        # a shallow copy: `asdict` would deep-copy the quality measures only for them to be dropped
        values = {field.name: getattr(self, field.name) for field in fields(self)
                  if field.name not in ("left_eye", "right_eye", "quality")}
        values["face"] = values.pop("number")
        quality = self.quality.columns() if self.quality is not None else dict.fromkeys(QUALITY_COLUMN_TYPES)
        row = {"file": file, **values, "gender": self.gender, "gender_confidence": round(self.gender_confidence, 4),
               **quality, "error": None}
        return {column: row[column] for column in COLUMNS}


def face_result(number: int, face: Face | None, prediction: Prediction, shape: tuple, scale: float = 1.0,
                quality: Quality | None = None, answers: AnswerSettings = DEFAULT_ANSWERS) -> FaceResult:
    """The result for a detected face (or, with `face=None`, for a whole aligned crop of `shape`),
    in the pixels of the original image, which is `scale` times the analysed one.

    `answers` decides the rest: a face below `min_quality` gets status "uncertain"; with an
    `age_threshold` T, `age_check` is "over" when the whole interval is at or above T, "under"
    when it is below, "uncertain" when it straddles T, the face is uncertain, or there is no
    interval (an uncalibrated model's point age alone is no basis for a decision)."""
    age, p_female = round(float(prediction.age), 1), round(float(prediction.p_female), 4)
    poor = quality is not None and QUALITY_GRADES.index(quality.grade) < QUALITY_GRADES.index(answers.min_quality)
    status = "uncertain" if poor else "ok"
    check = None if answers.age_threshold is None else age_check(
        None if poor else prediction.age_low, None if poor else prediction.age_high, answers.age_threshold)
    trust = dict(age_low=prediction.age_low, age_high=prediction.age_high, quality=quality, status=status,
                 age_threshold=answers.age_threshold, age_check=check)
    if face is None:
        height, width = (round(side * scale) for side in shape[:2])
        return FaceResult(number, 0, 0, width, height, None, None, None, age, p_female, **trust)
    eye = lambda point: (round(point[0] * scale, 1), round(point[1] * scale, 1))  # noqa: E731
    return FaceResult(number, round(face.x * scale), round(face.y * scale), round(face.w * scale),
                      round(face.h * scale), round(face.score, 3), eye(face.left_eye), eye(face.right_eye),
                      age, p_female, **trust)


def failure_row(file: str, status: str, error: str | None = None) -> dict:
    """The row of a photo that gives no face: status no_face, or error with the reason in words."""
    return {column: None for column in COLUMNS} | {"file": file, "status": status, "error": error}


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a frame with exactly COLUMNS, each of its one type whatever its cells: integer
    columns stay integers despite empty cells, and a text column with no text is still text."""
    import numpy as np
    import pandas as pd

    unknown = {key for row in rows for key in row} - set(COLUMN_TYPES)
    if unknown:
        raise ValueError(f"not output columns: {', '.join(sorted(unknown))}")
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in INTEGER_COLUMNS:
        table[column] = table[column].astype("Int64")
    for column in FLOAT_COLUMNS:
        table[column] = table[column].astype("float64")
    for column in TEXT_COLUMNS:
        # text, missing where empty (as a CSV reads back), never a column of float NaN
        table[column] = table[column].replace("", np.nan).astype("str")
    return table
