"""`python -m core video`: a recorded video into one row per person (people.csv), optionally every
face per frame (--faces) and an annotated copy a browser plays (--annotated, .mp4 or .webm)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import DEFAULT_MODEL_DIR, AnswerSettings
from .errors import EXIT_USAGE, CommandError
from .options import add_config_options, config_from_args

DETECTOR_HELP = ("face detector: yunet (small, far and turned faces: a shop entrance, a hall; default) or "
                 "blazeface (faster, for near, frontal faces only: a webcam, an interview)")


def add_parser(sub) -> None:
    from ..config import DETECTORS

    p = sub.add_parser("video", help="count the people in a video, with age and gender, one CSV row per person",
                       description="Every person in a recorded video, counted once: when they were in view and "
                                   "their age and gender (aggregated over their good views). Reads what FFmpeg "
                                   "reads (MP4, MOV, MKV, WebM, AVI; H.264, H.265, VP9, AV1...).")
    p.add_argument("video", metavar="INPUT", type=Path, help="video file")
    p.add_argument("--out", required=True, type=Path, help="people CSV to write (one row per person)")
    p.add_argument("--faces", type=Path, help="also write every face on every frame to this CSV")
    p.add_argument("--annotated", type=Path,
                   help="also write a copy with boxes, person numbers and answers: .mp4 (H.264) or .webm (VP9)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: %(default)s)")
    p.add_argument("--detector", choices=DETECTORS, default="yunet", help=DETECTOR_HELP)
    p.add_argument("--small-faces", action="store_true",
                   help="yunet at the video's full size (up to 1920 px): faces from about 25 px, for a far camera; "
                        "slower (default: 960 px, faces from about 35 px in 720p, 50 px in 1080p)")
    # defaults are VideoSettings' (core.video.recorded, not imported here: --help stays fast)
    p.add_argument("--every", type=int,
                   help="run the detector on every n-th frame, frames between keep its boxes (default 1: every "
                        "frame; 2-3 for speed when people move slowly)")
    p.add_argument("--max-gap", type=float, metavar="SECONDS",
                   help="how long a person may be hidden or missed and still be the same person (default 1.5)")
    p.add_argument("--min-score", type=float, help="detector confidence below which a face is ignored (default 0.6)")
    add_config_options(p, AnswerSettings())
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when the whole video was analysed (with or without people in it), 1 when it
    could not be read or stopped being readable (what was found before is written), 2 when the
    inputs are wrong (missing video, outputs that would overwrite it or each other)."""
    answers = config_from_args(args, AnswerSettings)
    if not args.video.is_file():
        raise CommandError(f"no such video file: {args.video}", EXIT_USAGE)
    from tqdm import tqdm

    from ..analysis.pipeline import FaceAnalyzer
    from ..detect import detector_for
    from ..inference.predictor import Predictor
    from ..video.recorded import VideoOutputs, VideoSettings, analyse_video, detector_use

    try:
        outputs = VideoOutputs(args.out, args.faces, args.annotated)
        outputs.check_apart_from(args.video)
        chosen = {"every": args.every, "max_gap_s": args.max_gap, "min_score": args.min_score}
        settings = VideoSettings(**{name: value for name, value in chosen.items() if value is not None})
        use = detector_use(args.detector, args.small_faces)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    analyzer = FaceAnalyzer(Predictor(args.model), detector_for(use), answers)
    bar = tqdm(unit="frame", desc="analysing", dynamic_ncols=True, disable=None)

    def progress(done: int, total: int | None) -> None:
        if total and bar.total != total:
            bar.total = max(total, done)
        bar.update(done - bar.n)

    try:
        run_ = analyse_video(args.video, analyzer, outputs, settings, progress)
    finally:
        bar.close()
    written = ", ".join(str(path) for path in (args.out, args.faces, args.annotated) if path)
    seconds = run_.frames / run_.info.fps
    if not run_.people:
        print(f"no people found in {args.video.name} ({run_.frames} frames, {seconds:.1f} s): "
              f"{args.out} has only its header", file=sys.stderr)
    else:
        print(f"{len(run_.people)} people in {args.video.name} ({run_.frames} frames, {seconds:.1f} s), "
              f"analysed at {run_.fps:.1f} frames/s: {written}")
    return 0
