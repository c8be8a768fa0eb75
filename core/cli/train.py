"""`python -m core train`: a run folder from one or several datasets (TensorFlow is imported
only to run it)."""
from __future__ import annotations

import argparse

from ..config import DATASET_FORMATS
from .errors import EXIT_INTERRUPTED, CommandError
from .options import add_config_options, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on one or several datasets",
                       description="Train a gender + age model and write a run folder (model, history, metrics). "
                                   "Several --data train from several sources at once; each labelled folder's "
                                   "rows may lack an age or a gender, or give an age bracket (age_lo, age_hi).")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="UTKFace folder, 48x48 pixel CSV, or folder with labels.csv; repeat for several sources")
    p.add_argument("--format", action="append", choices=DATASET_FORMATS,
                   help="dataset format (default: detect); once for every --data, or once per --data in order")
    p.add_argument("--weight", action="append", type=float, metavar="W",
                   help="each --data's share of the training batches, in order (default: its share of the rows)")
    p.add_argument("--out", required=True, help="run folder to write, e.g. models/my-run")
    add_config_options(p)
    p.add_argument("--limit", type=int, help="use only N images drawn at random from all sources (quick trials)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its model, history, "
                                                             "split, metrics); without it such a folder is refused")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    sources = _sources(args)
    if args.resume and args.overwrite:
        raise CommandError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit must be a positive number of images, got {args.limit}")
    from ..data.sources import load_sources
    from ..train.training import TrainingStopped, train

    table = load_sources(sources)
    if args.limit:
        attrs = table.attrs
        table = table.sample(n=min(args.limit, len(table)), random_state=config.seed)
        table.attrs = attrs
    try:
        metrics = train(table, args.out, config, resume=args.resume, overwrite=args.overwrite)
    except TrainingStopped as exc:  # Ctrl-C before any model was saved: exit as interrupted, but say so
        raise CommandError(str(exc), EXIT_INTERRUPTED) from None
    print(f"done: {args.out}  test gender accuracy {metrics['gender_accuracy']:.4f}, age MAE {metrics['age_mae']:.2f} "
          f"on {metrics['n']} images" if metrics and metrics.get("age_mae") is not None else f"done: {args.out}")
    return 0


def _sources(args: argparse.Namespace) -> list:
    """The `DataSource`s of the --data, --format and --weight flags (paired by order)."""
    from ..data.sources import DataSource

    count = len(args.data)
    formats, weights = args.format or [None], args.weight or [None]
    if len(formats) not in (1, count):
        raise CommandError(f"give --format once, or once per --data ({count}), not {len(formats)} times")
    if len(weights) != count and args.weight:
        raise CommandError(f"give --weight once per --data ({count}), not {len(weights)} times")
    return [DataSource(path, formats[i] if len(formats) == count else formats[0], weights[i] if args.weight else None)
            for i, path in enumerate(args.data)]
