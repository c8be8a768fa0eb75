"""Scores of a predictions table: overall, per age band / gender / race, confusions, and how far
the answers can be trusted (`core.evaluate.reliability`). Pure pandas, so it can be checked by hand.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..labels import AGE_BAND_NAMES, GENDERS, RACE_NAMES, age_band, gender_of, race_name
from .reliability import age_check_rates, gender_reliability, interval_coverage

PREDICTION_COLUMNS = ["file", "age_true", "age_pred", "age_low", "age_high", "gender_true", "gender_pred", "p_female",
                      "race"]


def predictions_table(table: pd.DataFrame, ages: np.ndarray, p_female: np.ndarray,
                      intervals: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per image with true and predicted labels, genders and races spelled out, and the
    age interval (at `AnswerSettings().interval`) when the model is calibrated."""
    low, high = intervals if intervals is not None else (pd.array([pd.NA] * len(ages), "Int64"),) * 2
    return pd.DataFrame({
        "file": table["file"].to_numpy(),
        "age_true": table["age"].to_numpy(),
        "age_pred": np.round(ages.astype(float), 2),
        "age_low": pd.array(low, "Int64"),
        "age_high": pd.array(high, "Int64"),
        "gender_true": [GENDERS[g] for g in table["gender"]],
        "gender_pred": [gender_of(p) for p in p_female],
        "p_female": np.round(p_female.astype(float), 4),
        "race": [race_name(r) for r in table["race"]],
    })


def _summary(rows: pd.DataFrame) -> dict:
    error = rows["age_pred"] - rows["age_true"]
    return {
        "n": int(len(rows)),
        "gender_accuracy": float((rows["gender_pred"] == rows["gender_true"]).mean()) if len(rows) else None,
        "age_mae": float(error.abs().mean()) if len(rows) else None,
    }


def _confusion(true: pd.Series, pred: pd.Series, labels: tuple[str, ...]) -> dict:
    matrix = pd.crosstab(pd.Categorical(true, labels), pd.Categorical(pred, labels), dropna=False)
    return {"labels": list(labels), "matrix": matrix.to_numpy().astype(int).tolist(),
            "rows": "true", "columns": "predicted"}


def score(predictions: pd.DataFrame) -> dict:
    """All metrics for a predictions table (columns as PREDICTION_COLUMNS)."""
    if predictions.empty:
        raise ValueError("no predictions to score")
    rows = predictions.assign(band_true=predictions["age_true"].map(age_band),
                              band_pred=predictions["age_pred"].map(age_band))
    error = rows["age_pred"] - rows["age_true"]
    metrics = _summary(rows)
    metrics.update({
        "age_rmse": float(np.sqrt((error ** 2).mean())),
        "age_median_abs_error": float(error.abs().median()),
        "age_bias": float(error.mean()),
        "age_within_5_years": float((error.abs() <= 5).mean()),
        "age_error_quantiles": {str(q): float(error.quantile(q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)},
        "gender_confusion": _confusion(rows["gender_true"], rows["gender_pred"], GENDERS),
        "age_band_confusion": _confusion(rows["band_true"], rows["band_pred"], AGE_BAND_NAMES),
        "by_age_band": {band: _summary(rows[rows["band_true"] == band]) for band in AGE_BAND_NAMES},
        "by_gender": {gender: _summary(rows[rows["gender_true"] == gender]) for gender in GENDERS},
        "by_race": {race: _summary(rows[rows["race"] == race]) for race in RACE_NAMES if (rows["race"] == race).any()},
        "gender_reliability": gender_reliability(rows),
    })
    if (coverage := interval_coverage(rows)) is not None:
        metrics.update(age_interval=coverage, age_checks=age_check_rates(rows))
    return metrics
