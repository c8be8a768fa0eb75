"""`python -m core evaluate | calibrate | export`: scoring a run, fitting its answers, exporting it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import DATASET_FORMATS, DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR
from ..runs import CALIBRATION_FILE


def add_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on a labelled dataset (aligned crops or photos)",
                       description="Gender accuracy, age MAE and their breakdowns on every valid image of a dataset. "
                                   "Photos of a labelled folder (folder-csv) are detected and aligned as `batch` "
                                   "does, scoring each photo's most confident face; UTKFace folders and the pixel "
                                   "CSV are taken as aligned crops. Images that cannot be scored are listed.")
    p.add_argument("--data", required=True, help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv")
    p.add_argument("--format", choices=DATASET_FORMATS, help="dataset format (default: detect)")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                   help="score only the images of this split of the model's split.csv (default: all images)")
    p.add_argument("--out", help="folder to write metrics.json and predictions.csv into")
    faces = p.add_mutually_exclusive_group()
    faces.add_argument("--aligned", dest="detect", action="store_false", default=None,
                       help="take every image as an aligned face crop (default for UTKFace and the pixel CSV)")
    faces.add_argument("--detect", dest="detect", action="store_true",
                       help="find and align the face in every image (default for a folder with labels.csv)")
    p.add_argument("--no-flip", action="store_true", help="without mirror-image averaging (twice as fast)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")
    p.add_argument("--keras", action="store_true",
                   help="run the Keras model instead of its LiteRT export (imports TensorFlow; for checking the export)")
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("calibrate", help="fit a model's age intervals on its validation split",
                       description="Write calibration.json into the model folder: the factors that make age "
                                   "intervals hold their stated coverage (see core/inference/calibration.py).")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--data", default=str(DEFAULT_DATASET_DIR),
                   help="dataset holding the validation images of the model's split.csv (default %(default)s)")
    p.add_argument("--format", choices=DATASET_FORMATS, help="dataset format (default: detect)")
    p.set_defaults(run=run_calibrate)

    p = sub.add_parser("export", help="write a run folder's model.tflite from its model.keras",
                       description="Export a trained model for TensorFlow-free inference (LiteRT). Training does "
                                   "this itself; use it for run folders trained before the export existed.")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.set_defaults(run=run_export)


def run_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.datasets import DatasetError, load_dataset, read_split, select_split
    from ..evaluate.evaluator import evaluate, write_results
    from ..inference.predictor import Predictor

    table = load_dataset(args.data, args.format)
    network = None
    if args.keras:
        from ..train.model import KerasNetwork

        network = KerasNetwork(args.model)
    predictor = Predictor(args.model, flip_tta=False if args.no_flip else None, network=network)
    if args.split != "all":
        table = select_split(table, args.model, args.split)
        if table.empty:
            raise DatasetError(f"none of the images in {args.data} belong to the model's {args.split} split")
    elif (saved := read_split(args.model)) is not None:
        seen = table["file"].isin(saved.loc[saved["split"] != "test", "file"]).sum()
        if seen:
            print(f"warning: {seen} of these {len(table)} images were used to train or validate this model; "
                  f"use --split test for an honest score", file=sys.stderr)
    with tqdm(total=len(table), desc="evaluating", unit="img", disable=None) as bar:
        metrics, predictions = evaluate(predictor, table, detect=args.detect,
                                        progress=lambda done, _total: bar.update(done - bar.n))
    metrics.update({"model": str(args.model), "data": str(args.data), "split": args.split})
    if args.out:
        write_results(Path(args.out), metrics, predictions)
    _report_unscored(metrics)
    for line in summary_lines(metrics):
        print(line)
    if args.json:
        print(json.dumps(metrics))
    return 0


def summary_lines(metrics: dict) -> list[str]:
    """The scores in words: overall, women's and men's recall, brackets, and the breakdowns."""
    def figures(row: dict) -> str:
        parts = [f"gender accuracy {row['gender_accuracy']:.4f}" if row.get("gender_accuracy") is not None else "",
                 f"age MAE {row['age_mae']:.2f}" if row.get("age_mae") is not None else "",
                 f"in bracket {row['age_in_bracket']:.1%}" if row.get("age_in_bracket") is not None else ""]
        return ", ".join(part for part in parts if part)

    recall = metrics["gender_recall"]
    lines = [f"{metrics['faces']}: {metrics['n']} images: {figures(metrics)}"]
    if recall["female"] is not None and recall["male"] is not None:
        lines.append(f"  gender recall: women {recall['female']:.1%}, men {recall['male']:.1%}")
    if "age_bracket_distance" in metrics:
        lines.append(f"  age outside the bracket by {metrics['age_bracket_distance']:.2f} years on average")
    groups = [("age", metrics["by_age_band"])] + ([("bracket", metrics["by_bracket"])] if "by_bracket" in metrics else []) \
        + [(key[3:], value) for key, value in metrics.items() if key.startswith("by_") and key[3:] not in
           ("age_band", "bracket", "gender", "race")]
    for title, breakdown in groups:
        lines += [f"  {title} {name:>6}: n={row['n']:>5}  {figures(row)}" for name, row in breakdown.items() if row["n"]]
    return lines


def _report_unscored(metrics: dict, shown: int = 10) -> None:
    """Warn on stderr about every image that was not scored, or scored among several faces."""
    for key, what, detail in (("skipped", "not scored", "reason"),
                              ("several_faces", "with several faces (the most confident one scored)", "faces")):
        rows = metrics[key]
        if rows:
            listing = "; ".join(f"{row['file']}: {row[detail]}" for row in rows[:shown])
            more = f"; and {len(rows) - shown} more (see metrics.json)" if len(rows) > shown else ""
            print(f"warning: {len(rows)} image(s) {what}: {listing}{more}", file=sys.stderr)


def run_calibrate(args: argparse.Namespace) -> int:
    from ..evaluate.calibrate import calibrate_folder

    calibration = calibrate_folder(args.model, args.data, args.format)
    factors = ", ".join(f"{band} {calibration.factor(band, 0.8):.2f}" for band in calibration.factors)
    print(f"wrote {Path(args.model) / CALIBRATION_FILE} from the {calibration.source}; 80 % factors: {factors}; "
          f"gender temperature {calibration.gender_temperature:g}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..train.model import export_folder

    print(f"wrote {export_folder(args.model)}")
    return 0
