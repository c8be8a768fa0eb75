"""What averaging several trained models would gain: each model alone against the mean of them.

Why: when candidates trained with different recipes or seeds differ by run-to-run noise, the
mean of their answers (p_female and point age) shows how much of the remaining error is that
noise (which averaging removes) and how much every model shares (which only a better recipe or
more data can remove). Scored exactly as `python -m core evaluate` scores (`core.evaluate`):
the UTKFace validation and test splits of the first model's split.csv (every model must share
it), and face-research-lab and Adience fold 0 (with its share of ages in the true bracket)
through the photo pipeline.

    .venv/bin/python bench/ensemble.py RUN RUN [RUN ...]

Last line: JSON with gender accuracy and MAE of every model and of the mean, per set.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.config import DEFAULT_DATASET_DIR  # noqa: E402
from core.data.datasets import load_dataset, read_split, select_split  # noqa: E402
from core.evaluate.evaluator import evaluate  # noqa: E402
from core.evaluate.metrics import score  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from core.labels import gender_of  # noqa: E402

PHOTO_SETS = {name: ROOT.parent / "shared" / "datasets" / name for name in ("face-research-lab", "adience-fold0")}


def averaged(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The first table with p_female and age_pred replaced by the mean over the models, on the
    images every model scored (detection does not depend on the model, so these are normally
    all of them; the intersection only guarantees a like-for-like mean)."""
    common = set.intersection(*(set(table["file"]) for table in tables))
    tables = [table[table["file"].isin(common)].sort_values("file", ignore_index=True) for table in tables]
    mean = tables[0].copy()
    mean["p_female"] = np.mean([table["p_female"].to_numpy() for table in tables], axis=0)
    mean["age_pred"] = np.mean([table["age_pred"].to_numpy() for table in tables], axis=0)
    mean["gender_pred"] = [gender_of(p) for p in mean["p_female"]]
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="model folders (two or more)")
    parser.add_argument("--utkface", type=Path, default=DEFAULT_DATASET_DIR)
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give two or more model folders")
    splits = [read_split(run) for run in args.runs]
    if any(split is None or not split.equals(splits[0]) for split in splits):
        raise SystemExit("error: the models must share one split.csv (same data and seed)")
    utkface = load_dataset(args.utkface)
    sets = {name: select_split(utkface, args.runs[0], name) for name in ("val", "test")}
    sets.update({name: load_dataset(folder) for name, folder in PHOTO_SETS.items() if folder.is_dir()})
    predictors = [Predictor(run) for run in args.runs]
    results = {}
    for set_name, table in sets.items():
        tables = [evaluate(predictor, table)[1] for predictor in predictors]
        rows = {run.name: score(predictions) for run, predictions in zip(args.runs, tables)}
        rows["mean of all"] = score(averaged(tables))
        results[set_name] = {name: {"gender_accuracy": round(m["gender_accuracy"] * 100, 2), "n": m["n"],
                                    **({"age_mae": round(m["age_mae"], 2)} if m.get("age_mae") is not None else {}),
                                    **({"age_in_bracket": round(m["age_in_bracket"] * 100, 2)} if "age_in_bracket" in m else {})}
                             for name, m in rows.items()}
        for name, m in results[set_name].items():
            age = f"in bracket {m['age_in_bracket']:5.2f} %" if "age_in_bracket" in m else f"MAE {m.get('age_mae', float('nan')):5.2f}"
            print(f"{set_name:18s} {name:24s} gender {m['gender_accuracy']:6.2f} %  {age}  (n {m['n']})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
