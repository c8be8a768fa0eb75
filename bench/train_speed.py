"""Training throughput of candidate architectures (input size x width) on this machine's CPU.

Feeds random images through the real training pipeline (augmentation included) and times whole
epochs of a few hundred steps; prints images/s per candidate and, last, all results as JSON.
Run it on an idle machine: timings are compared as ratios within one run.

    python bench/train_speed.py [--steps 20] [--repeats 3]
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

from core.config import Config  # noqa: E402
from core.model import build_model  # noqa: E402
from core.training import compile_model, make_pipeline  # noqa: E402

CANDIDATES = [(48, 24), (64, 16), (64, 24), (64, 32), (80, 24), (96, 16)]  # (image_size, width)


def images_per_s(size: int, width: int, steps: int, repeats: int) -> tuple[float, int]:
    config = Config(image_size=size, width=width)
    model = build_model(config)
    compile_model(model, config)
    n = config.batch_size * steps
    rng = np.random.default_rng(0)
    data = make_pipeline(rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8), rng.integers(0, 90, n),
                         rng.integers(0, 2, n), config, training=True)
    model.fit(data.take(2), verbose=0)  # build the graph
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.fit(data, verbose=0)
        rates.append(n / (time.perf_counter() - started))
    return statistics.median(rates), model.count_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = []
    for size, width in CANDIDATES:
        rate, params = images_per_s(size, width, args.steps, args.repeats)
        results.append({"image_size": size, "width": width, "params": params, "train_images_per_s": round(rate, 1)})
        print(f"{size}px width {width}: {params:,} parameters, {rate:.0f} training images/s", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
