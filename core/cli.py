"""`python -m core {train,evaluate,predict,batch}`: the command line over the core library.

Expected problems (missing folder, no images, unreadable model, wrong format) end with one
clear line on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .config import DEFAULT_MODEL_DIR, Config

EXIT_USAGE, EXIT_FAILED = 2, 1


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a gender + age model and write a run folder (model, history, metrics).")
    p.add_argument("--data", required=True, help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv")
    p.add_argument("--format", choices=("utkface", "pixels-csv", "folder-csv"), help="dataset format (default: detect)")
    p.add_argument("--out", required=True, help="run folder to write, e.g. models/my-run")
    defaults = Config()
    for name, kind, text in (
        ("epochs", int, "number of epochs"), ("image_size", int, "input side in pixels"),
        ("batch_size", int, "batch size"), ("learning_rate", float, "peak learning rate"),
        ("width", int, "resnet: channels of the first stage (model size)"),
        ("alpha", float, "mobilenetv2: width multiplier"), ("seed", int, "seed of the split"),
        ("age_sigma", float, "std-dev of the age label distribution (years)"),
    ):
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name),
                       help=f"{text} (default {getattr(defaults, name)})")
    p.add_argument("--architecture", choices=("resnet", "mobilenetv2"), default=defaults.architecture,
                   help=f"network (default {defaults.architecture})")
    p.add_argument("--lr-schedule", choices=("cosine", "plateau"), default=defaults.lr_schedule,
                   help=f"learning-rate schedule (default {defaults.lr_schedule})")
    p.add_argument("--limit", type=int, help="use only the first N images (quick trials)")
    p.add_argument("--no-augment", action="store_true", help="disable augmentation")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on a labelled dataset of aligned face crops",
                       description="Gender accuracy, age MAE and their breakdowns on every valid image of a dataset.")
    p.add_argument("--data", required=True, help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv")
    p.add_argument("--format", choices=("utkface", "pixels-csv", "folder-csv"), help="dataset format (default: detect)")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                   help="score only the images of this split of the model's split.csv (default: all images)")
    p.add_argument("--out", help="folder to write metrics.json and predictions.csv into")
    p.add_argument("--no-flip", action="store_true", help="without mirror-image averaging (twice as fast)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="age and gender for image files",
                       description="Predict age and gender for each face in each image.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--aligned", action="store_true", help="images are already aligned face crops: skip detection")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Gender and age detection.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,predict,batch}")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    sub.add_parser("batch", help="analyse a folder of photos into a CSV (see `batch --help`)", add_help=False)
    return parser


def run_train(args) -> int:
    from .datasets import load_dataset
    from .training import TrainingStopped, train

    config = Config(epochs=args.epochs, image_size=args.image_size, batch_size=args.batch_size,
                    learning_rate=args.learning_rate, architecture=args.architecture,
                    width=args.width, alpha=args.alpha, seed=args.seed, age_sigma=args.age_sigma,
                    lr_schedule=args.lr_schedule, augment=not args.no_augment)
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
    predictor = Predictor(args.model, flip_tta=False if args.no_flip else None)
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
        metrics, predictions = evaluate(predictor, table, progress=lambda done, _total: bar.update(done - bar.n))
    metrics.update({"model": str(args.model), "data": str(args.data), "split": args.split})
    if args.out:
        write_results(Path(args.out), metrics, predictions)
    print(f"{metrics['n']} images: gender accuracy {metrics['gender_accuracy']:.4f}, age MAE {metrics['age_mae']:.2f} years")
    for band, row in metrics["by_age_band"].items():
        if row["n"]:
            print(f"  age {band:>5}: n={row['n']:>5}  gender accuracy {row['gender_accuracy']:.4f}  age MAE {row['age_mae']:.2f}")
    if args.json:
        print(json.dumps(metrics))
    return 0


def run_predict(args) -> int:
    from .batch import analyze_images
    from .inference import Predictor

    predictor = Predictor(args.model)

    rows = analyze_images([(path, Path(path)) for path in args.images], predictor, aligned=args.aligned)
    for row in rows.itertuples():
        if row.status == "ok":
            where = "" if args.aligned else f" face {row.face} at ({row.x},{row.y},{row.w}x{row.h})"
            print(f"{row.file}:{where} {row.gender} (p_female {row.p_female:.2f}), age {row.age:.0f}")
        else:
            print(f"{row.file}: {row.status.replace('_', ' ')}{': ' + row.error if row.status == 'error' else ''}")
    return EXIT_FAILED if (rows["status"] == "error").all() else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["batch"]:
        from .batch import cli_main

        return cli_main(argv[1:])
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    from .datasets import DatasetError
    from .images import ImageError
    from .model import ModelError

    runners = {"train": run_train, "evaluate": run_evaluate, "predict": run_predict}
    try:
        return runners[args.command](args)
    except (DatasetError, ModelError, ImageError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
