"""Inference speed of the Predictor (LiteRT, or `--engine keras`) on aligned 200x200 face crops.

Times resizing + the model (with its flip averaging) on batches of decoded crops, several runs,
and prints the median. Last line: JSON with crops_per_s, batch_size, flip_tta, runs, load_s.

    python bench/infer.py [--model models/default] [--batch-size 256] [--runs 7] [--no-flip]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR  # noqa: E402
from core.imaging.files import load_image  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402


def crops(n: int) -> np.ndarray:
    """Real UTKFace crops when the dataset is beside the project, else random 200x200 images."""
    files = sorted(DEFAULT_DATASET_DIR.glob("*.chip.jpg"))[:n] if DEFAULT_DATASET_DIR.is_dir() else []
    if len(files) == n:
        return np.stack([load_image(f) for f in files])
    return np.random.default_rng(0).integers(0, 255, (n, 200, 200, 3), dtype=np.uint8)


def crops_per_second(predictor: Predictor, batch: np.ndarray, runs: int, verbose: bool = False) -> float:
    """Median rate of prepare + predict over `runs` passes of `batch` (after one warm-up pass)."""
    predictor.predict_arrays(predictor.prepare(list(batch)))  # warm-up pass
    rates = []
    for run in range(runs):
        started = time.perf_counter()
        predictor.predict_arrays(predictor.prepare(list(batch)))
        rates.append(len(batch) / (time.perf_counter() - started))
        if verbose:
            print(f"run {run + 1}: {rates[-1]:.0f} crops/s", flush=True)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-flip", action="store_true", help="without the mirror-image averaging (2x faster)")
    parser.add_argument("--engine", choices=("litert", "keras"), default="litert",
                        help="LiteRT export (default) or the Keras model (imports TensorFlow)")
    args = parser.parse_args()

    started = time.perf_counter()
    network = None
    if args.engine == "keras":
        from core.train.model import KerasNetwork

        network = KerasNetwork(args.model)
    predictor = Predictor(args.model, batch_size=args.batch_size, flip_tta=False if args.no_flip else None,
                          network=network)
    load_s = time.perf_counter() - started
    rate = crops_per_second(predictor, crops(args.batch_size), args.runs, verbose=True)
    print(json.dumps({"crops_per_s": round(rate, 1), "batch_size": args.batch_size,
                      "flip_tta": predictor.flip_tta, "engine": args.engine, "runs": args.runs, "load_s": round(load_s, 2), "model": args.model}))


if __name__ == "__main__":
    main()
