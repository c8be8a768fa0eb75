"""Inference speed of the Predictor (LiteRT, or `--engine keras`) on aligned 200x200 face crops.

Times resizing + the model (with its flip averaging) on batches of decoded crops, several runs,
and prints the median. Last line: JSON with crops_per_s, batch_size, flip_tta, runs, load_s.

    python bench/infer.py [--model models/default] [--batch-size 256] [--runs 7] [--no-flip]
    python bench/infer.py --model models/default --model runs/other   # compared in one run

With several `--model`s the runs alternate between them (so a change in the machine's load hits
all alike) and the JSON holds each model's median and its ratio to the first.
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
    return statistics.median(interleaved_rates([predictor], batch, runs, verbose)[0])


def interleaved_rates(predictors: list[Predictor], batch: np.ndarray, runs: int, verbose: bool = False) -> list[list[float]]:
    """Crops/s of each predictor over `runs` rounds, each round timing every predictor once in turn."""
    for predictor in predictors:
        predictor.predict_arrays(predictor.prepare(list(batch)))  # warm-up pass
    rates: list[list[float]] = [[] for _ in predictors]
    for run in range(runs):
        for index, predictor in enumerate(predictors):
            started = time.perf_counter()
            predictor.predict_arrays(predictor.prepare(list(batch)))
            rates[index].append(len(batch) / (time.perf_counter() - started))
            if verbose:
                print(f"run {run + 1}, model {index + 1}: {rates[index][-1]:.0f} crops/s", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model folder (repeatable; default models/default)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-flip", action="store_true", help="without the mirror-image averaging (2x faster)")
    parser.add_argument("--engine", choices=("litert", "keras"), default="litert",
                        help="LiteRT export (default) or the Keras model (imports TensorFlow)")
    args = parser.parse_args()

    models = args.model or [str(DEFAULT_MODEL_DIR)]
    predictors, load_s = [], []
    for model in models:
        started = time.perf_counter()
        network = None
        if args.engine == "keras":
            from core.train.model import KerasNetwork

            network = KerasNetwork(model)
        predictors.append(Predictor(model, batch_size=args.batch_size, flip_tta=False if args.no_flip else None,
                                    network=network))
        load_s.append(time.perf_counter() - started)
    rates = [statistics.median(r) for r in interleaved_rates(predictors, crops(args.batch_size), args.runs, verbose=True)]
    common = {"batch_size": args.batch_size, "flip_tta": predictors[0].flip_tta, "engine": args.engine, "runs": args.runs}
    if len(models) == 1:
        print(json.dumps({"crops_per_s": round(rates[0], 1), **common, "load_s": round(load_s[0], 2), "model": models[0]}))
    else:
        print(json.dumps({**common, "models": {model: {"crops_per_s": round(rate, 1), "ratio_to_first": round(rate / rates[0], 3),
                                                        "load_s": round(load, 2)} for model, rate, load in zip(models, rates, load_s)}}))


if __name__ == "__main__":
    main()
