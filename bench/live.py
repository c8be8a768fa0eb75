"""Benchmark of the live camera pipeline: how many 640x480 frames per second it processes.

It builds a synthetic clip from real UTKFace faces (1, then 2, then 3 faces moving across a
textured background) and pushes every frame through `core.video.live.FrameProcessor.process`, the
exact code the live page's WebRTC callback runs. Frames are generated outside the timed part.

    python bench/live.py --json          # last line: {"fps": ..., "frame_ms_median": ...}

Target: >= 25 fps, and never below 15 fps, on 2 CPU cores. Without a shipped model in
models/default an untrained model of the default architecture stands in (same cost, nonsense
labels), so the figure is meaningful before training finishes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, Config  # noqa: E402
from testkit.video import pick_faces, scene  # noqa: E402

TARGET_FPS, MINIMUM_FPS = 25.0, 15.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="timed frames (default 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed frames first (graph tracing)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR, help="UTKFace folder")
    parser.add_argument("--detect-every", type=int, default=None,
                        help="override the page's setting (default: as the page runs, LiveSettings)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
    return parser.parse_args(argv)


def load_predictor(model_dir: Path, scratch: Path):
    """The model to time, and how to name it: the shipped one, or an untrained stand-in."""
    from core.inference.predictor import Predictor
    from core.runs import LITERT_FILE

    if (model_dir / LITERT_FILE).is_file():
        return Predictor(model_dir), str(model_dir)
    from core.train.model import build_model, save_model  # TensorFlow, only to make the stand-in

    config = Config()
    save_model(build_model(config), scratch, config)
    return Predictor(scratch), "untrained stand-in (default Config architecture)"


def run(args: argparse.Namespace) -> dict:
    from core.analysis.pipeline import FaceAnalyzer
    from core.detect import detector_for
    from core.video.live import FrameProcessor, LiveSettings

    if not args.dataset.is_dir():
        raise SystemExit(f"UTKFace not found at {args.dataset}; the benchmark needs real faces")
    faces = pick_faces(args.dataset, 3, seed=args.seed)
    total = args.warmup + args.frames
    with tempfile.TemporaryDirectory() as scratch:
        predictor, model_name = load_predictor(args.model, Path(scratch))
        settings = LiveSettings()
        if args.detect_every:
            settings = LiveSettings(detect_every=args.detect_every)
        processor = FrameProcessor(FaceAnalyzer(predictor, detector_for("live")), settings)
        times, cpu, found, shown = [], [], [], []
        for index, (frame, placed) in enumerate(scene(faces, total, appear_every=max(1, total // 6), seed=args.seed)):
            start, start_cpu = time.perf_counter(), time.process_time()
            _, states = processor.process(frame)
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if index >= args.warmup:
                times.append(elapsed)
                cpu.append(elapsed_cpu)
                found.append(len(states))
                shown.append(len(placed))
    ms = np.array(times) * 1000.0
    return {
        "fps": round(len(times) / float(np.sum(times)), 2),
        "frame_ms_median": round(float(np.median(ms)), 2),
        "frame_ms_p95": round(float(np.percentile(ms, 95)), 2),
        # CPU time of this process per frame (all its threads): unlike wall time it hardly
        # grows when other programs share the cores, so runs on a busy machine stay comparable
        "cpu_ms_per_frame": round(float(np.mean(cpu)) * 1000.0, 2),
        "detect_every": settings.detect_every,
        "frames": len(times),
        "faces_per_frame": round(float(np.mean(shown)), 2),
        "faces_found_per_frame": round(float(np.mean(found)), 2),
        "frame_size": "640x480",
        "model": model_name,
        "model_input": predictor.image_size,
        "cpu_count": os.cpu_count(),
        "target_fps": TARGET_FPS,
        "minimum_fps": MINIMUM_FPS,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    verdict = ("meets the target" if result["fps"] >= TARGET_FPS
               else "below target, above minimum" if result["fps"] >= MINIMUM_FPS else "BELOW MINIMUM")
    print(f"{result['frames']} frames 640x480, {result['faces_per_frame']} faces/frame "
          f"({result['faces_found_per_frame']} found), model {result['model']}")
    print(f"{result['fps']} fps, median {result['frame_ms_median']} ms/frame, "
          f"p95 {result['frame_ms_p95']} ms, {result['cpu_ms_per_frame']} ms CPU/frame: "
          f"{verdict} ({TARGET_FPS:g} fps target, {MINIMUM_FPS:g} minimum)")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
