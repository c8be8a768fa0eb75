"""Scoring a model on labelled faces: overall, per age band / gender / race, and per image.

`score(predictions)` is pure pandas so it can be checked by hand; `evaluate(...)` runs a
`Predictor` over a dataset (aligned crops as they are, photos through the photo pipeline) and
`write_results` writes `metrics.json` and `predictions.csv`.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .analysis import Detector, FaceAnalyzer, detector_for, load_photo
from .config import AGE_BAND_NAMES, GENDERS, RACES, AnswerSettings, age_band, gender_of
from .datasets import load_images
from .images import ImageError
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


def needs_detection(table: pd.DataFrame) -> bool:
    """Whether a dataset's images are photos whose faces must be found and aligned: those of a
    labelled folder (folder-csv) are; UTKFace's crops and the 48x48 pixel CSV are aligned already."""
    return table.attrs.get("format") == "folder-csv"


def evaluate(predictor: Predictor, table: pd.DataFrame, images: np.ndarray | None = None,
             progress: Callable[[int, int], None] | None = None, chunk: int = 512,
             detect: bool | None = None, detector: Detector | None = None) -> tuple[dict, pd.DataFrame]:
    """Predict every row of a dataset table and score it.

    With `detect` (default: `needs_detection(table)` unless decoded `images` are given), each image is a photo that goes through the
    photo pipeline (`FaceAnalyzer`: detect, align, predict) as `batch` sends it, and its most
    confident face is scored; otherwise each image is taken as an aligned crop. Nothing is dropped
    silently: rows the loader skipped (no label, ...), unreadable images and photos without a face
    are listed in `metrics["skipped"]` (file, reason), photos with several faces in
    `metrics["several_faces"]` (file, faces). Images are decoded chunk by chunk unless given, so
    memory stays bounded on big folders.
    """
    detect = images is None and needs_detection(table) if detect is None else detect
    if detect and images is not None:
        raise ValueError("decoded images are aligned crops: detection needs the photos' files")
    analyzer = FaceAnalyzer(predictor, (detector or detector_for("photos")) if detect else None)  # as batch
    skipped = [{"file": name, "reason": reason} for name, reason in table.attrs.get("skipped", [])]
    several: list[dict] = []
    parts = []
    chunk = min(chunk, 64) if detect else chunk  # photos are slow: report progress more often
    for start in range(0, len(table), chunk):
        rows = table.iloc[start:start + chunk]
        if images is not None:
            batch = predictor.prepare(images[start:start + chunk])
        elif detect:
            rows, batch = _detected(analyzer, rows, skipped, several)
        else:
            batch, ok = load_images(rows, predictor.image_size, progress=False)
            skipped += [{"file": name, "reason": "unreadable image"} for name in rows.loc[~ok, "file"]]
            rows, batch = rows[ok], batch[ok]
        if len(rows):
            dist, p_female = predictor.predict_distributions(batch)
            intervals = predictor.age_intervals(dist, AnswerSettings().interval)
            parts.append(predictions_table(rows, predictor.expected_ages(dist), p_female, intervals))
        if progress:
            progress(min(start + chunk, len(table)), len(table))
    if not parts:
        raise ValueError(f"no image could be scored: {_reasons(skipped)}")
    predictions = pd.concat(parts, ignore_index=True)
    metrics = score(predictions)
    metrics.update({"faces": "detected and aligned" if detect else "aligned crops",
                    "skipped": skipped, "several_faces": several})
    return metrics, predictions


def _detected(analyzer: FaceAnalyzer, rows: pd.DataFrame, skipped: list[dict],
              several: list[dict]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows whose photo has a face, and each one's aligned best face (detection on threads)."""
    def find(path: str) -> tuple[np.ndarray | None, int, str]:
        try:
            image, _ = load_photo(Path(path))
        except ImageError as exc:
            return None, 0, str(exc)
        faces = analyzer.detect(image)
        return (analyzer.align(image, faces[:1])[0] if faces else None), len(faces), "no face found"

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        found = list(pool.map(find, rows["path"]))
    keep = np.array([crop is not None for crop, _, _ in found], bool)
    for name, (crop, count, reason) in zip(rows["file"], found):
        if crop is None:
            skipped.append({"file": name, "reason": reason})
        elif count > 1:
            several.append({"file": name, "faces": count})
    crops = [crop for crop, _, _ in found if crop is not None]
    size = analyzer.predictor.image_size
    return rows[keep], np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)


def _reasons(skipped: list[dict]) -> str:
    """"2 x no face found, 1 x age '' is not ..." : why images were skipped, most common first."""
    counts = pd.Series([row["reason"] for row in skipped], dtype=object).value_counts()
    return ", ".join(f"{count} x {reason}" for reason, count in counts.items()) or "no images"


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
