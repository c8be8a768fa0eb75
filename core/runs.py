"""The run folder: what a training run writes, what makes a folder a run, and reading its settings.

Kept free of TensorFlow (and of everything heavier than the standard library) so that the
dashboard, the CLI's predict and batch commands and the LiteRT predictor can all name and read
run files without paying for a TensorFlow import. Every other module takes file names from here.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable

from .config import Config

MODEL_FILE = "model.keras"  # Keras weights of the best epoch (training, export, `evaluate --keras`)
LITERT_FILE = "model.tflite"  # the same network for inference without TensorFlow
SETTINGS_FILE = "model.json"  # input size, label conventions, the training Config
LAST_FILE = "last.keras"  # the latest epoch, for --resume
CONFIG_FILE = "config.json"  # the run's Config, written before the first epoch (what --resume continues)
HISTORY_FILE = "history.csv"  # one row per finished epoch
SPLIT_FILE = "split.csv"  # which image went to train / val / test (and, with several sources, from which)
SOURCES_FILE = "sources.json"  # the datasets a run trained on, with their shares of the batches
TRAINING_LABELS_FILE = "labels.csv"  # the labels the run was trained on (for the Demographics page)
METRICS_FILE = "metrics.json"  # test-split scores, with breakdowns
PREDICTIONS_FILE = "predictions.csv"  # one row per test image
CALIBRATION_FILE = "calibration.json"  # age-interval factors fitted on the validation split
LOG_FILE = "train.log"  # what a run launched from the dashboard printed
RUN_MARKERS = (MODEL_FILE, HISTORY_FILE, TRAINING_LABELS_FILE)  # any of these makes a folder a run
# Every file a run writes (what replacing a run removes; nothing else of its folder)
RUN_FILES = (MODEL_FILE, LITERT_FILE, SETTINGS_FILE, LAST_FILE, CONFIG_FILE, HISTORY_FILE, SPLIT_FILE, SOURCES_FILE,
             TRAINING_LABELS_FILE, METRICS_FILE, PREDICTIONS_FILE, CALIBRATION_FILE)


class ModelError(RuntimeError):
    """A model folder is missing, incomplete or unreadable."""


def model_folder(path: str | Path) -> Path:
    """The run folder of a path that may name the folder itself or a model file inside it."""
    path = Path(path)
    return path.parent if path.is_file() and path.name in (MODEL_FILE, LITERT_FILE) else path


def is_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in RUN_MARKERS)


def list_runs(first: Iterable[Path], roots: Iterable[Path]) -> list[Path]:
    """Run folders: those in `first` (in order), then every run directly under each root,
    each folder once (by its resolved path)."""
    candidates = list(first)
    for root in roots:
        candidates += sorted(root.iterdir()) if root.is_dir() else []
    found: dict[Path, Path] = {}
    for folder in candidates:
        if is_run(folder):
            found.setdefault(folder.resolve(), folder)
    return list(found.values())


def read_settings(folder: str | Path) -> tuple[dict, Config]:
    """The run's model.json and the Config it holds; ModelError when absent or unreadable."""
    path = model_folder(folder) / SETTINGS_FILE
    try:
        settings = json.loads(path.read_text())
        return settings, Config.from_dict(settings["config"])
    except FileNotFoundError as exc:
        raise ModelError(f"no model at {path.parent} (expected {SETTINGS_FILE} in that folder)") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model settings {path} are unreadable: {exc}") from exc


def stamp(path: str | Path) -> int:
    """Modification time (ns) of a file, 0 when missing: a file version for caches."""
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return 0


def unscored_reason(folder: str | Path) -> str:
    """Why a run folder that is not training has no test results, in words for its owner: it
    never saved a model, or it ended (stopped, killed, crashed) before scoring the one it saved."""
    folder = model_folder(folder)
    if not (folder / MODEL_FILE).is_file() and not (folder / LITERT_FILE).is_file():
        return ("training there ended before its first epoch finished, so it saved no model: "
                "resume it (Training page or `train --resume`) or start it again")
    return ("training there ended (stopped or killed) before scoring its best model on the test split: "
            "run a fresh evaluation, or resume the run to finish it")


def run_summary(folder: str | Path) -> dict:
    """A run at a glance: epochs done, input size and width, the best validation epoch's age MAE
    and gender accuracy (by validation loss, the epoch the model was saved at), and the test
    figures once scored; None for what the folder does not hold (yet). Files being written or
    not of this tool are skipped, not raised."""
    folder = model_folder(folder)
    summary = {"epochs": 0, "image_size": None, "width": None, "best_val_age_mae": None, "best_val_gender_accuracy": None,
               "test_age_mae": None, "test_gender_accuracy": None}
    try:
        config = json.loads((folder / SETTINGS_FILE).read_text()).get("config", {})
        summary.update(image_size=config.get("image_size"), width=config.get("width"))
    except (OSError, ValueError, AttributeError):
        pass
    try:
        with (folder / HISTORY_FILE).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        summary["epochs"] = len(rows)
        scored = [row for row in rows if _number(row.get("val_loss")) is not None]
        if scored:
            best = min(scored, key=lambda row: _number(row["val_loss"]))
            summary.update(best_val_age_mae=_number(best.get("val_age_mae")),
                           best_val_gender_accuracy=_number(best.get("val_gender_accuracy")))
    except (OSError, csv.Error):
        pass
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text())
        summary.update(test_age_mae=_number(metrics.get("age_mae")), test_gender_accuracy=_number(metrics.get("gender_accuracy")))
    except (OSError, ValueError, AttributeError):
        pass
    return summary


def _number(value) -> float | None:
    """A finite number from a file's cell, else None (empty, text, NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
