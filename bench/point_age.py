"""Which single age to read from the predicted age distribution: its expectation (what the
product reports), median or mode, scored on a model's UTKFace validation (or test) split.

Why: the age head predicts a distribution over 0..max_age; the expectation is what the loss
trains, the median minimises the expected absolute error (the MAE we report), and the mode is
the single most likely year. The three differ most where the distribution is skewed (children,
the elderly), so each is scored overall and per age band, with its bias (mean of predicted -
true), and by the share of faces whose age falls in an Adience-style bracket that are read
inside it (predicted age in [lo, hi + 1), brackets 0-2, 4-6, ..., 60-100).

    python bench/point_age.py --model models/default [--model runs/other ...] [--split test]

Last line: JSON {model: {estimate: {"mae", "in_bracket", "bands": {band: [mae, bias]}}}}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from realworld import utk_split  # noqa: E402

from core.config import DEFAULT_MODEL_DIR  # noqa: E402
from core.data.datasets import load_images  # noqa: E402
from core.evaluate.metrics import inside_bracket  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402

BANDS = ((0, 3), (4, 7), (8, 12), (13, 19), (20, 39), (40, 59), (60, 200))
BRACKETS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))


def estimates(dist: np.ndarray) -> dict[str, np.ndarray]:
    """Expectation, median (interpolated inside the year where the cumulative mass passes 1/2) and mode."""
    ages = np.arange(dist.shape[1])
    cdf = np.cumsum(dist, axis=1)
    year = np.minimum((cdf < 0.5).sum(axis=1), dist.shape[1] - 1)
    below = np.where(year > 0, cdf[np.arange(len(dist)), year - 1], 0.0)
    median = year - 0.5 + (0.5 - below) / np.maximum(dist[np.arange(len(dist)), year], 1e-12)
    return {"expectation": dist @ ages, "median": median, "mode": dist.argmax(axis=1).astype(float)}


def scores(predicted: np.ndarray, true: np.ndarray) -> dict:
    error = predicted - true
    inside = [(true >= lo) & (true <= hi) for lo, hi in BRACKETS]
    hits = sum(inside_bracket(predicted[rows], lo, hi).sum() for rows, (lo, hi) in zip(inside, BRACKETS))
    bands = {f"{lo}-{hi}": [round(float(np.abs(error[rows]).mean()), 3), round(float(error[rows].mean()), 2)]
             for lo, hi in BANDS if (rows := (true >= lo) & (true <= hi)).any()}
    return {"mae": round(float(np.abs(error).mean()), 3), "in_bracket": round(float(hits / sum(map(np.sum, inside))), 4),
            "bands": bands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path, help="model folder (repeat to compare; default models/default)")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    args = parser.parse_args()
    results = {}
    for model in args.model or [DEFAULT_MODEL_DIR]:
        table = utk_split(model, args.split)
        if table is None:
            raise SystemExit(f"error: {model} has no split.csv, or ../shared/datasets/UTKFace is missing")
        predictor = Predictor(model)
        batch, ok = load_images(table, predictor.image_size, progress=False)
        dist, _ = predictor.predict_distributions(batch[ok])
        true = table["age"].to_numpy(float)[ok]
        results[str(model)] = {name: scores(age, true) for name, age in estimates(dist).items()}
        for name, row in results[str(model)].items():
            bands = "  ".join(f"{band} {mae:.2f} ({bias:+.2f})" for band, (mae, bias) in row["bands"].items())
            print(f"{model} {args.split} {name:11s} MAE {row['mae']:.3f}  in bracket {row['in_bracket']:.1%}  {bands}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
