"""Scoring a model on labelled faces: overall, per age band / gender / race, and per image.

`score(predictions)` is pure pandas so it can be checked by hand; `evaluate(...)` runs a
`Predictor` over a dataset and writes `metrics.json` and `predictions.csv`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import AGE_BAND_NAMES, GENDERS, RACES, AnswerSettings, age_band, gender_of
from .datasets import load_images
from .inference import Predictor
from .reliability import age_check_rates, gender_reliability, interval_coverage
from .runs import METRICS_FILE, PREDICTIONS_FILE

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
        "race": [RACES[r] if 0 <= r < len(RACES) else "" for r in table["race"]],
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
        "by_race": {race: _summary(rows[rows["race"] == race]) for race in RACES if (rows["race"] == race).any()},
        "gender_reliability": gender_reliability(rows),
    })
    if (coverage := interval_coverage(rows)) is not None:
        metrics.update(age_interval=coverage, age_checks=age_check_rates(rows))
    return metrics


def evaluate(predictor: Predictor, table: pd.DataFrame, images: np.ndarray | None = None,
             progress: Callable[[int, int], None] | None = None, chunk: int = 512) -> tuple[dict, pd.DataFrame]:
    """Predict every row of a dataset table (aligned crops, no face detection) and score it.

    Images are decoded chunk by chunk unless given, so memory stays bounded on big folders;
    unreadable images are skipped (and reported by `load_images`).
    """
    parts = []
    for start in range(0, len(table), chunk):
        rows = table.iloc[start:start + chunk]
        if images is None:
            batch, ok = load_images(rows, predictor.image_size, progress=False)
            rows, batch = rows[ok], batch[ok]
        else:
            batch = predictor.prepare(images[start:start + chunk])
        dist, p_female = predictor.predict_distributions(batch)
        intervals = predictor.age_intervals(dist, AnswerSettings().interval)
        parts.append(predictions_table(rows, predictor.expected_ages(dist), p_female, intervals))
        if progress:
            progress(min(start + chunk, len(table)), len(table))
    predictions = pd.concat(parts, ignore_index=True)
    return score(predictions), predictions


def write_results(folder: Path, metrics: dict, predictions: pd.DataFrame) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    predictions.to_csv(folder / PREDICTIONS_FILE, index=False)


def evaluate_run(run_folder: Path, test_table: pd.DataFrame, test_images: np.ndarray) -> dict:
    """Score a finished training run's best model on its test split and save the results there."""
    metrics, predictions = evaluate(Predictor(run_folder), test_table, test_images)
    metrics["split"] = "test"
    write_results(run_folder, metrics, predictions)
    return metrics


def metrics_markdown(metrics: dict) -> str:
    """The breakdown tables of a metrics dict as Markdown (for model cards and reports)."""
    lines = [f"Overall: n = {metrics['n']}, gender accuracy {metrics['gender_accuracy']:.2%}, "
             f"age MAE {metrics['age_mae']:.2f} years (RMSE {metrics['age_rmse']:.2f}, median absolute error "
             f"{metrics['age_median_abs_error']:.2f}, bias {metrics['age_bias']:+.2f}, "
             f"within 5 years {metrics['age_within_5_years']:.1%}).", ""]
    for key, title in (("by_age_band", "age band"), ("by_gender", "gender"), ("by_race", "race")):
        lines += [f"| {title} | n | gender accuracy | age MAE |", "| --- | ---: | ---: | ---: |"]
        for name, row in metrics[key].items():
            if row["n"]:
                lines.append(f"| {name} | {row['n']} | {row['gender_accuracy']:.2%} | {row['age_mae']:.2f} |")
        lines.append("")
    for key, title in (("gender_confusion", "Gender"), ("age_band_confusion", "Age band")):
        confusion = metrics[key]
        lines += [f"{title} confusion (rows true, columns predicted):", "",
                  "| true \\ predicted | " + " | ".join(confusion["labels"]) + " |",
                  "| --- |" + " ---: |" * len(confusion["labels"])]
        lines += [f"| {label} | " + " | ".join(str(v) for v in row) + " |"
                  for label, row in zip(confusion["labels"], confusion["matrix"])]
        lines.append("")
    return "\n".join(lines)
