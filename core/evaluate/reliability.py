"""Whether the answers can be trusted, measured on labelled faces: do the age intervals hold their
coverage (overall and per age band), how often is an age check wrong or undecided, and does the
gender confidence mean what it says (reliability diagram).

Pure numpy/pandas over a predictions table (`core.evaluate.metrics.PREDICTION_COLUMNS`), so the
evaluation metrics, the bench scripts, the tests and the Evaluation page compute them one way.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.calibration import age_check
from ..labels import AGE_BAND_NAMES, age_band

CHECK_THRESHOLDS = (13, 18, 21, 25)  # the age checks the model card publishes
RELIABILITY_BINS = 10  # equal-width bins of the gender confidence from 0.5 to 1


def _coverage(rows: pd.DataFrame) -> dict:
    inside = rows["age_low"].le(rows["age_true"]) & rows["age_true"].le(rows["age_high"])
    width = rows["age_high"] - rows["age_low"]
    return {"n": int(len(rows)), "coverage": float(inside.mean()) if len(rows) else None,
            "median_width": float(width.median()) if len(rows) else None}


def interval_coverage(predictions: pd.DataFrame) -> dict | None:
    """Share of true ages inside [age_low, age_high] and the median width, overall and per age
    band, both by predicted age (what the calibration aims at) and by true age (what a user of a
    given age gets); None when the table has no intervals."""
    rows = predictions.dropna(subset=["age_low", "age_high"]) if "age_low" in predictions else predictions.iloc[:0]
    if rows.empty:
        return None
    predicted, true = rows["age_pred"].map(age_band), rows["age_true"].map(age_band)
    return {**_coverage(rows),
            "by_predicted_band": {band: _coverage(rows[predicted == band]) for band in AGE_BAND_NAMES},
            "by_true_band": {band: _coverage(rows[true == band]) for band in AGE_BAND_NAMES}}


def age_check_rates(predictions: pd.DataFrame, thresholds=CHECK_THRESHOLDS) -> dict | None:
    """Per threshold T: the share of faces decided (over or under), the share of decided faces
    decided wrongly, and the false-over (under T, said over) and false-under (T or over, said
    under) rates among all faces of each side; None without intervals."""
    rows = predictions.dropna(subset=["age_low", "age_high"]) if "age_low" in predictions else predictions.iloc[:0]
    if rows.empty:
        return None
    report = {}
    for threshold in thresholds:
        checks = np.array([age_check(low, high, threshold) for low, high in zip(rows["age_low"], rows["age_high"])])
        young = rows["age_true"].to_numpy() < threshold
        false_over, false_under = (checks == "over") & young, (checks == "under") & ~young
        decided = checks != "uncertain"
        report[str(threshold)] = {
            "n": int(len(rows)), "decided": float(decided.mean()), "uncertain": float(1 - decided.mean()),
            "wrong_of_decided": float((false_over | false_under).sum() / max(1, decided.sum())),
            "false_over": float(false_over.sum() / max(1, young.sum())),
            "false_under": float(false_under.sum() / max(1, (~young).sum())),
        }
    return report


def gender_reliability(predictions: pd.DataFrame, bins: int = RELIABILITY_BINS) -> dict:
    """Reliability diagram data: per bin of gender confidence (max(p, 1 - p)), the faces, their
    mean confidence and the share whose gender was right; and the expected calibration error
    (the faces-weighted mean gap between the two)."""
    confidence = np.maximum(predictions["p_female"], 1 - predictions["p_female"]).to_numpy()
    correct = (predictions["gender_pred"] == predictions["gender_true"]).to_numpy()
    index = np.clip(((confidence - 0.5) * 2 * bins).astype(int), 0, bins - 1)
    rows = []
    for i in range(bins):
        mine = index == i
        rows.append({"low": 0.5 + i / (2 * bins), "high": 0.5 + (i + 1) / (2 * bins), "n": int(mine.sum()),
                     "confidence": float(confidence[mine].mean()) if mine.any() else None,
                     "accuracy": float(correct[mine].mean()) if mine.any() else None})
    gaps = sum(r["n"] * abs(r["confidence"] - r["accuracy"]) for r in rows if r["n"])
    return {"bins": rows, "ece": float(gaps / max(1, len(confidence)))}
