"""`python -m core {train,evaluate,predict,batch,calibrate,export}`: the command line over the core library.

Expected problems (missing folder, no images, unreadable model, wrong format) end with one
clear line on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .config import (DATASET_FORMATS as FORMATS, DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, DETECTORS, AnswerSettings,
                     Config, user_options)
from .runs import CALIBRATION_FILE

_PARSERS = {"int": int, "float": float, "str": str}  # settings' field annotations (strings; "| None" optional)

EXIT_USAGE, EXIT_FAILED = 2, 1


def add_config_options(parser: argparse.ArgumentParser, defaults=None) -> None:
    """One `--name` flag per user-set field of a settings dataclass (Config unless `defaults`
    is another, e.g. AnswerSettings()): help, type and choices come from the dataclass."""
    defaults = defaults or Config()
    for option in user_options(type(defaults)):
        flag, default, meta = f"--{option.name.replace('_', '-')}", getattr(defaults, option.name), option.metadata
        if option.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=f"{meta['help']} (default: {'yes' if default else 'no'})")
        else:
            shown = "none" if default is None else default
            parser.add_argument(flag, type=_PARSERS[option.type.split(" | ")[0]], default=default,
                                choices=meta["choices"], help=f"{meta['help']} (default {shown})")


def config_from_args(args: argparse.Namespace, kind=Config):
    """The settings dataclass `kind` (Config by default) from flags made by `add_config_options`."""
    return kind(**{option.name: getattr(args, option.name) for option in user_options(kind)})


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a gender + age model and write a run folder (model, history, metrics).")
    p.add_argument("--data", required=True, help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv")
    p.add_argument("--format", choices=FORMATS, help="dataset format (default: detect)")
    p.add_argument("--out", required=True, help="run folder to write, e.g. models/my-run")
    add_config_options(p)
    p.add_argument("--limit", type=int, help="use only the first N images (quick trials)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on a labelled dataset (aligned crops or photos)",
                       description="Gender accuracy, age MAE and their breakdowns on every valid image of a dataset. "
                                   "Photos of a labelled folder (folder-csv) are detected and aligned as `batch` "
                                   "does, scoring each photo's most confident face; UTKFace folders and the pixel "
                                   "CSV are taken as aligned crops. Images that cannot be scored are listed.")
    p.add_argument("--data", required=True, help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv")
    p.add_argument("--format", choices=FORMATS, help="dataset format (default: detect)")
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


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="age and gender for image files",
                       description="Predict age and gender for each face in each image.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--aligned", action="store_true", help="images are already aligned face crops: skip detection")
    p.add_argument("--json", action="store_true", help="one JSON object per face (the batch CSV's columns) instead of text")
    add_config_options(p, AnswerSettings())
    add_detector_option(p)


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """`--detector`, shared by predict and batch."""
    parser.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0],
                        help="face detector: yunet (finds turned, small and masked faces; default) or "
                             "blazeface (faster, near frontal faces)")


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a model's age intervals on its validation split",
                       description="Write calibration.json into the model folder: the factors that make age "
                                   "intervals hold their stated coverage (see core/calibration.py).")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--data", default=str(DEFAULT_DATASET_DIR),
                   help="dataset holding the validation images of the model's split.csv (default %(default)s)")
    p.add_argument("--format", choices=FORMATS, help="dataset format (default: detect)")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a run folder's model.tflite from its model.keras",
                       description="Export a trained model for TensorFlow-free inference (LiteRT). Training does "
                                   "this itself; use it for run folders trained before the export existed.")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Gender and age detection.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,predict,batch,calibrate,export}")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_calibrate(sub)
    _add_export(sub)
    sub.add_parser("batch", help="analyse a folder of photos into a CSV (see `batch --help`)", add_help=False)
    return parser


def run_train(args) -> int:
    from .datasets import load_dataset
    from .training import TrainingStopped, train

    config = config_from_args(args)
    table = load_dataset(args.data, args.format)
    if args.limit:
        table = table.sample(n=min(args.limit, len(table)), random_state=config.seed)
    try:
        metrics = train(table, args.out, config, resume=args.resume)
    except TrainingStopped as exc:  # Ctrl-C before any model was saved: exit as interrupted, but say so
        print(f"error: {exc}", file=sys.stderr)
        return 130
    print(f"done: {args.out}  test gender accuracy {metrics['gender_accuracy']:.4f}, age MAE {metrics['age_mae']:.2f} "
          f"on {metrics['n']} images" if metrics else f"done: {args.out}")
    return 0


def run_evaluate(args) -> int:
    from .datasets import DatasetError, load_dataset, read_split, select_split
    from .evaluation import evaluate, write_results
    from .inference import Predictor

    table = load_dataset(args.data, args.format)
    predictor = Predictor(args.model, flip_tta=False if args.no_flip else None,
                          engine="keras" if args.keras else "litert")
    if args.split != "all":
        table = select_split(table, args.model, args.split)
        if table.empty:
            raise DatasetError(f"none of the images in {args.data} belong to the model's {args.split} split")
    elif (saved := read_split(args.model)) is not None:
        seen = table["file"].isin(saved.loc[saved["split"] != "test", "file"]).sum()
        if seen:
            print(f"warning: {seen} of these {len(table)} images were used to train or validate this model; "
                  f"use --split test for an honest score", file=sys.stderr)
    from tqdm import tqdm

    with tqdm(total=len(table), desc="evaluating", unit="img", disable=None) as bar:
        metrics, predictions = evaluate(predictor, table, detect=args.detect,
                                        progress=lambda done, _total: bar.update(done - bar.n))
    metrics.update({"model": str(args.model), "data": str(args.data), "split": args.split})
    if args.out:
        write_results(Path(args.out), metrics, predictions)
    _report_unscored(metrics)
    print(f"{metrics['faces']}: {metrics['n']} images: gender accuracy {metrics['gender_accuracy']:.4f}, age MAE {metrics['age_mae']:.2f} years")
    for band, row in metrics["by_age_band"].items():
        if row["n"]:
            print(f"  age {band:>5}: n={row['n']:>5}  gender accuracy {row['gender_accuracy']:.4f}  age MAE {row['age_mae']:.2f}")
    if args.json:
        print(json.dumps(metrics))
    return 0


def _report_unscored(metrics: dict, shown: int = 10) -> None:
    """Warn on stderr about every image that was not scored, or scored among several faces."""
    for key, what, detail in (("skipped", "not scored", "reason"),
                              ("several_faces", "with several faces (the most confident one scored)", "faces")):
        rows = metrics[key]
        if rows:
            listing = "; ".join(f"{row['file']}: {row[detail]}" for row in rows[:shown])
            more = f"; and {len(rows) - shown} more (see metrics.json)" if len(rows) > shown else ""
            print(f"warning: {len(rows)} image(s) {what}: {listing}{more}", file=sys.stderr)


def run_predict(args) -> int:
    from .analysis import FaceAnalyzer
    from .faces import build_detector
    from .images import ImageError
    from .inference import Predictor

    answers = config_from_args(args, AnswerSettings)
    analyzer = FaceAnalyzer(Predictor(args.model), None if args.aligned else build_detector(args.detector), answers)
    failed = 0
    for path in args.images:
        try:
            results = analyzer.analyze_photo(Path(path))
        except ImageError as exc:
            print(json.dumps({"file": path, "status": "error", "error": str(exc)}) if args.json else f"{path}: error: {exc}")
            failed += 1
            continue
        if not results:
            print(json.dumps({"file": path, "status": "no_face"}) if args.json else f"{path}: no face")
        for face in results:
            print(json.dumps({"file": path, **face.row()}) if args.json else f"{path}:{_describe(face, args.aligned, answers)}")
    return EXIT_FAILED if failed == len(args.images) else 0


def _describe(face, aligned: bool, answers: AnswerSettings) -> str:
    """One face as a line of text: where, gender and its confidence, age and interval, quality, check."""
    where = "" if aligned else f" face {face.number} at ({face.x},{face.y},{face.w}x{face.h})"
    age = f"age {face.age_years}" + ("" if face.age_low is None else f" ({face.age_low}-{face.age_high}, "
                                                                       f"{answers.interval:.0%} interval)")
    quality = "" if face.quality is None else f", quality {face.quality.grade}" + (
        f" ({';'.join(face.quality.issues)})" if face.quality.issues else "")
    check = "" if face.age_check is None else f", age check {face.age_threshold:g}: {face.age_check}"
    status = " [uncertain]" if face.status == "uncertain" else ""
    return (f"{where}{status} {face.gender} (p_female {face.p_female:.2f}, confidence {face.gender_confidence:.0%}), "
            f"{age}{quality}{check}")


def run_calibrate(args) -> int:
    from .calibration import calibrate_folder

    calibration = calibrate_folder(args.model, args.data, args.format)
    factors = ", ".join(f"{band} {calibration.factor(band, 0.8):.2f}" for band in calibration.factors)
    print(f"wrote {Path(args.model) / CALIBRATION_FILE} from the {calibration.source}; 80 % factors: {factors}; "
          f"gender temperature {calibration.gender_temperature:g}")
    return 0


def run_export(args) -> int:
    from .model import export_folder

    print(f"wrote {export_folder(args.model)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["batch"]:
        from .batch import cli_main

        return cli_main(argv[1:])
    args = build_parser().parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # libraries' deprecations are not the user's business
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"
    from .runs import ModelError

    runners = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict, "calibrate": run_calibrate,
               "export": run_export}
    try:
        return runners[args.command](args)
    except (ModelError, ValueError, OSError) as exc:  # DatasetError and ImageError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
