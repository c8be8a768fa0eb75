"""How models do on real-world photos: Adience fold 0 (phone photos with children, age brackets)
and face-research-lab (studio portraits, exact ages), through the photo pipeline (`evaluate`:
detect, align, predict, the most confident face of each photo), plus the model's own UTKFace
validation split, the one its recipe may be chosen on (or its test split, `--utk-split test`).

Both photo sets are checks, never trained, fitted or thresholded on; comparing finished models
on them is what they are for. Per model: gender accuracy, women's and men's recall, ages inside
the true bracket (predicted age in [lo, hi + 1)), per album and per bracket, and MAE.

    python bench/realworld.py --model models/default [--model runs/other ...]

Prints a table per model; the last line is JSON ({model: {set: figures}}).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR  # noqa: E402
from core.data.datasets import DatasetWarning, load_dataset, read_split, select_split  # noqa: E402
from core.evaluate.evaluator import evaluate  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
PHOTO_SETS = {"adience": DATASETS / "adience-fold0", "face-research-lab": DATASETS / "face-research-lab"}
KEPT = ("n", "gender_accuracy", "gender_recall", "age_in_bracket", "age_bracket_distance", "age_mae")


def utk_split(model: Path, part: str = "val") -> pd.DataFrame | None:
    """The UTKFace rows of the model's `part` split, or None without the dataset or a split."""
    if read_split(model) is None or not DEFAULT_DATASET_DIR.is_dir():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        return select_split(load_dataset(DEFAULT_DATASET_DIR), model, part)


def figures(metrics: dict) -> dict:
    kept = {key: metrics[key] for key in KEPT if key in metrics}
    for key in ("by_album", "by_bracket", "by_set"):
        if key in metrics:
            kept[key] = {name: {k: v for k, v in row.items() if k in KEPT} for name, row in metrics[key].items()}
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path, help="model folder (repeat to compare; default models/default)")
    parser.add_argument("--utk-split", choices=("val", "test", "none"), default="val",
                        help="also score the model's UTKFace validation (default) or test split, or neither")
    args = parser.parse_args()
    results = {}
    for model in args.model or [DEFAULT_MODEL_DIR]:
        predictor, found = Predictor(model), {}
        for name, path in ((name, path) for name, path in PHOTO_SETS.items() if path.is_dir()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DatasetWarning)
                table = load_dataset(path)
            found[name] = figures(evaluate(predictor, table)[0])
        rows = None if args.utk_split == "none" else utk_split(model, args.utk_split)
        if rows is not None and len(rows):
            found[f"utk-{args.utk_split}"] = figures(evaluate(predictor, rows, detect=False)[0])
        results[str(model)] = found
        _print(model, found)
    print(json.dumps(results))


def _print(model: Path, found: dict) -> None:
    print(f"== {model}")
    for name, row in found.items():
        recall = row.get("gender_recall", {})
        parts = [f"n {row['n']}", f"gender {row['gender_accuracy']:.2%}" if row.get("gender_accuracy") is not None else "",
                 f"women {recall['female']:.1%} / men {recall['male']:.1%}" if recall.get("female") is not None else "",
                 f"in bracket {row['age_in_bracket']:.1%}" if row.get("age_in_bracket") is not None else "",
                 f"MAE {row['age_mae']:.2f}" if row.get("age_mae") is not None else ""]
        print(f"  {name:<18} " + ", ".join(part for part in parts if part))
        for key in ("by_album", "by_bracket"):
            for group, values in row.get(key, {}).items():
                inside = values.get("age_in_bracket")
                print(f"    {key[3:]} {group:<14} n {values['n']:>4}  gender {values['gender_accuracy']:.1%}"
                      + (f"  in bracket {inside:.1%}" if inside is not None else ""))


if __name__ == "__main__":
    main()
