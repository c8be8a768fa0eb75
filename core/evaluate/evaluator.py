"""Scoring a model on a labelled dataset: `evaluate` runs a `Predictor` over it (aligned crops as
they are, photos through the photo pipeline as `batch` sends them) and scores the predictions
(`core.evaluate.metrics.score`); `write_results` writes `metrics.json` and `predictions.csv`.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..analysis.pipeline import FaceAnalyzer
from ..config import AnswerSettings
from ..data.datasets import load_images
from ..detect import Detector, detector_for
from ..imaging.files import ImageError
from ..inference.predictor import Predictor
from ..runs import METRICS_FILE, PREDICTIONS_FILE
from .metrics import group_columns, has_brackets, predictions_table, score


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
    groups, brackets = group_columns(table), has_brackets(table)  # the whole set's, for every chunk
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
            parts.append(predictions_table(rows, predictor.expected_ages(dist), p_female, intervals, groups, brackets))
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
    """The rows whose photo has a face, and each one's aligned best face (the per-photo step of
    the pipeline, on threads)."""
    def find(path: str) -> tuple[np.ndarray | None, int, str]:
        try:
            found = analyzer.find(Path(path))
        except ImageError as exc:
            return None, 0, str(exc)
        return (found.crops[0] if found.faces else None), len(found.faces), "no face found"

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


