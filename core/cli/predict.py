"""`python -m core predict`: age and gender of every face in a few image files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import DEFAULT_MODEL_DIR, AnswerSettings
from .errors import EXIT_FAILED
from .options import add_config_options, add_detector_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="age and gender for image files",
                       description="Predict age and gender for each face in each image.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default models/default)")
    p.add_argument("--aligned", action="store_true", help="images are already aligned face crops: skip detection")
    p.add_argument("--json", action="store_true", help="one JSON object per face (the batch CSV's columns) instead of text")
    add_config_options(p, AnswerSettings())
    add_detector_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Faces on stdout, one line (or JSON object) each; a file that cannot be read is an
    `error: FILE: reason` line on stderr (with --json, a status "error" object on stdout, like
    a batch row). Exit code 1 when no file could be read."""
    answers = config_from_args(args, AnswerSettings)
    from ..analysis.pipeline import FaceAnalyzer
    from ..detect import build_detector
    from ..imaging.files import ImageError
    from ..inference.predictor import Predictor

    analyzer = FaceAnalyzer(Predictor(args.model), None if args.aligned else build_detector(args.detector), answers)
    failed = 0
    for path in args.images:
        try:
            results = analyzer.analyze_photo(Path(path))
        except ImageError as exc:
            if args.json:
                print(json.dumps({"file": path, "status": "error", "error": str(exc)}))
            else:
                print(f"error: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if not results:
            print(json.dumps({"file": path, "status": "no_face"}) if args.json else f"{path}: no face")
        for face in results:
            print(json.dumps(face.row(path)) if args.json else f"{path}:{_describe(face, args.aligned, answers)}")
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
