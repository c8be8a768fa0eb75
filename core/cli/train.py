"""`python -m core train`: a run folder from a dataset (TensorFlow is imported only to run it)."""
from __future__ import annotations

import argparse

from ..config import DATASET_FORMATS
from .errors import EXIT_INTERRUPTED, CommandError
from .options import add_config_options, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a gender + age model and write a run folder (model, history, metrics).")
    p.add_argument("--data", required=True, help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv")
    p.add_argument("--format", choices=DATASET_FORMATS, help="dataset format (default: detect)")
    p.add_argument("--out", required=True, help="run folder to write, e.g. models/my-run")
    add_config_options(p)
    p.add_argument("--limit", type=int, help="use only the first N images (quick trials)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from ..data.datasets import load_dataset
    from ..train.training import TrainingStopped, train

    table = load_dataset(args.data, args.format)
    if args.limit:
        table = table.sample(n=min(args.limit, len(table)), random_state=config.seed)
    try:
        metrics = train(table, args.out, config, resume=args.resume)
    except TrainingStopped as exc:  # Ctrl-C before any model was saved: exit as interrupted, but say so
        raise CommandError(str(exc), EXIT_INTERRUPTED) from None
    print(f"done: {args.out}  test gender accuracy {metrics['gender_accuracy']:.4f}, age MAE {metrics['age_mae']:.2f} "
          f"on {metrics['n']} images" if metrics else f"done: {args.out}")
    return 0
