"""`python -m core batch`: a whole folder of photos into a CSV (or Parquet parts), one row per face."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import DEFAULT_MODEL_DIR, FULL_RANGE_MODES, AnswerSettings
from .errors import EXIT_FAILED, EXIT_USAGE, CommandError
from .options import add_config_options, add_detector_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="analyse a folder of photos into a CSV, one row per face",
                       description="Age and gender of every face in a folder of photos, one CSV row per face.")
    p.add_argument("folder", metavar="DIR",
                   help="folder of photos (with --engine ray also a URI Ray can read, e.g. s3://bucket/photos)")
    p.add_argument("--out", required=True, type=Path,
                   help="CSV file to write (one row per face), or NAME.parquet: a folder of Parquet parts, for big "
                        "runs; never a file that is not results of `batch`, and earlier results only with "
                        "--resume or --overwrite")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: %(default)s)")
    p.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                   help="include sub-folders (default: yes)")
    p.add_argument("--aligned", action="store_true",
                   help="images are already aligned face crops (like UTKFace): skip detection")
    add_detector_option(p)
    p.add_argument("--full-range", choices=FULL_RANGE_MODES, default="auto",
                   help="blazeface only: when to add its slower model for small, distant faces: auto (when "
                        "the fast one finds none or only small ones; default), always (group photos), never")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="keep the rows already in --out and analyse only the files it lacks (same folder "
                               "and options as the run that wrote them: they are recorded beside the results)")
    existing.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    add_config_options(p, AnswerSettings())
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: threads on this machine (default); ray: a Ray cluster (pip install -r "
                        "requirements-scale.txt), for archives larger than one machine analyses in time")
    p.add_argument("--address", help="with --engine ray: the cluster to join (auto, or ray://HOST:10001); "
                                     "default: start a Ray on this machine for the run")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when at least one image could be analysed, 1 when none could (or there is
    none), 2 for what cannot start (missing folder or model, an --out that would overwrite a
    file, results that cannot be resumed, an engine that cannot run)."""
    if args.address and args.engine != "ray":
        raise CommandError("--address is for --engine ray", EXIT_USAGE)
    if args.engine == "local" and not Path(args.folder).is_dir():
        raise CommandError(f"not a folder: {args.folder}", EXIT_USAGE)
    from tqdm import tqdm

    from ..batch.engine import NoImages, run_batch
    from ..batch.settings import BatchSettings
    from ..runs import ModelError

    settings = BatchSettings(args.model, args.detector, args.full_range, args.aligned,
                             config_from_args(args, AnswerSettings))
    bars = []

    def progress(total: int):
        bars.append(tqdm(total=total, unit="img", desc="analysing", dynamic_ncols=True, disable=None))
        return lambda done, _total: bars[0].update(done - bars[0].n)

    existing = "resume" if args.resume else "overwrite" if args.overwrite else "refuse"
    start = time.perf_counter()
    try:
        done = run_batch(args.folder, args.out, settings, existing, args.recursive, args.engine, args.address,
                         progress)
    except NoImages as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    except (OSError, ModelError, ValueError) as exc:
        message = f"cannot write {args.out}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CommandError(message, EXIT_USAGE) from None
    finally:
        for bar in bars:
            bar.close()
    print(done.totals.summary(time.perf_counter() - start, args.out, analysed=done.analysed, notes=done.notes))
    if not done.totals.analysed_any:
        raise CommandError(f"none of the images in {args.folder} could be analysed (their errors are in {args.out})")
    return 0
