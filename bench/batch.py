"""Throughput of batch folder analysis, end to end (decode, detect, align, predict, rows).

Builds 640x480 JPEG photos with one face each (UTKFace crops pasted on synthetic backgrounds)
in a temporary folder, runs `analyze_folder` on it several times and prints, as its last line,
JSON with the median `images_per_s`. Uses models/default when present, else a throwaway
untrained model of the default architecture (same cost per face).

    .venv/bin/python bench/batch.py [--images 300] [--runs 5] [--detector yunet]
    .venv/bin/python bench/batch.py --model models/default --model runs/other   # compared in one run

With several `--model`s each run times every model in turn on the same photos, and the JSON holds
each model's medians and its photos/s as a ratio to the first model's (the comparison to trust on
a shared machine).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis.pipeline import FaceAnalyzer  # noqa: E402
from core.batch.engine import analyze_folder  # noqa: E402
from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, DETECTORS, Config  # noqa: E402
from core.detect import build_detector  # noqa: E402
from core.imaging.files import load_image  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from core.runs import LITERT_FILE  # noqa: E402
from testkit.faces import jpeg_bytes, one_face_photo, utk_crops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--detector", choices=DETECTORS, default=DETECTORS[0])
    parser.add_argument("--model", action="append", type=Path, help="model folder (repeatable; default models/default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(Path(tmp) / "photos", args.images)
        models = [(path, str(path)) for path in args.model] if args.model else [model_folder(Path(tmp) / "model")]
        detector = build_detector(args.detector)
        analyzers = [FaceAnalyzer(Predictor(path), detector) for path, _ in models]
        for analyzer in analyzers:
            analyze_folder(photos, analyzer)  # warm-up: loads caches
        rates, cpu_ms, found = [[] for _ in models], [[] for _ in models], [0.0 for _ in models]
        for run in range(args.runs):
            for index, analyzer in enumerate(analyzers):
                start, cpu_start = time.perf_counter(), time.process_time()
                table = analyze_folder(photos, analyzer)
                rates[index].append(args.images / (time.perf_counter() - start))
                cpu_ms[index].append((time.process_time() - cpu_start) * 1000 / args.images)
                found[index] = (table["status"] == "ok").groupby(table["file"]).any().mean()
                print(f"run {run + 1}, {models[index][1]}: {rates[index][-1]:.1f} images/s, {cpu_ms[index][-1]:.1f} CPU ms "
                      f"per image, face found in {found[index]:.1%} of photos", file=sys.stderr)
    # On a shared machine wall-clock rates are noisy; CPU time per image says what the cores
    # could do if they were ours alone.
    results = [{"images_per_s": round(statistics.median(r), 1), "runs": [round(x, 1) for x in r],
                "cpu_ms_per_image": round(statistics.median(c), 1), "face_found": round(float(f), 3), "model": kind}
               for r, c, f, (_, kind) in zip(rates, cpu_ms, found, models)]
    common = {"images": args.images, "photo": "640x480 JPEG, one face", "detector": args.detector,
              "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1)}
    if len(results) == 1:
        print(json.dumps({**results[0], **common}))
    else:
        for result, r in zip(results, rates):
            result["ratio_to_first"] = round(statistics.median(a / b for a, b in zip(r, rates[0])), 3)
        print(json.dumps({"models": results, **common}))


def make_photos(folder: Path, count: int) -> Path:
    """`count` 640x480 one-face JPEGs, faces 160-320 px, from different UTKFace crops."""
    if not DEFAULT_DATASET_DIR.is_dir():
        sys.exit(f"UTKFace not found at {DEFAULT_DATASET_DIR}")
    folder.mkdir(parents=True)
    for i, (path, _, _) in enumerate(utk_crops(DEFAULT_DATASET_DIR, count, seed=1)):
        side = 160 + (i * 37) % 160
        (folder / f"photo_{i:04d}.jpg").write_bytes(jpeg_bytes(one_face_photo(load_image(path), side=side, seed=i)))
    return folder


def model_folder(scratch: Path) -> tuple[Path, str]:
    if (DEFAULT_MODEL_DIR / LITERT_FILE).is_file():
        return DEFAULT_MODEL_DIR, "models/default"
    from core.train.model import build_model, save_model

    config = Config()
    save_model(build_model(config), scratch, config)
    return scratch, f"throwaway untrained (image_size={config.image_size}, width={config.width})"


if __name__ == "__main__":
    main()
