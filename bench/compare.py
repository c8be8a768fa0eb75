"""Architecture comparison: same data, split, epochs and schedule for every candidate.

Trains each candidate with `core.training.train` for a short cosine run, then scores it on the
validation split (the test split stays untouched for the shipped model) with and without mirror
averaging, and times it as bench/infer.py does. Results accumulate in `<out>/results.json`, so an
interrupted comparison resumes with the candidates it has not finished; the last line printed
is a markdown table.

    python bench/compare.py [--data ../shared/datasets/UTKFace] [--epochs 5] [--out runs/compare]
                            [--only resnet-64-w24 ...] [--redo]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core.config import DEFAULT_DATASET_DIR, Config  # noqa: E402
from core.datasets import SPLIT_FILE, load_dataset, load_images, select_split  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.inference import Predictor  # noqa: E402
from core.training import HISTORY_FILE, train  # noqa: E402
from infer import crops, crops_per_second  # noqa: E402

CANDIDATES = {
    "resnet-64-w24": dict(architecture="resnet", image_size=64, width=24),
    "resnet-48-w24": dict(architecture="resnet", image_size=48, width=24),
    "resnet-64-w16": dict(architecture="resnet", image_size=64, width=16),
    "mobilenetv2-a0.5-64": dict(architecture="mobilenetv2", image_size=64, alpha=0.5),
    # recipes for real-world faces (issue 13), all at the shipped 48 px / width 24
    "degrade-48": dict(architecture="resnet", image_size=48, width=24, degrade=0.1),
    "degrade-realign-48": dict(architecture="resnet", image_size=48, width=24, degrade=0.1, realign=True),
}


def run_candidate(name: str, table: pd.DataFrame, out: Path, epochs: int) -> dict:
    config = Config(epochs=epochs, **CANDIDATES[name])
    folder = out / name
    started = time.perf_counter()
    train(table, folder, config, evaluate_test=False)
    wall_s = time.perf_counter() - started
    history = pd.read_csv(folder / HISTORY_FILE)
    n_train = int((pd.read_csv(folder / SPLIT_FILE)["split"] == "train").sum())

    val = select_split(table, folder, "val").reset_index(drop=True)
    images, ok = load_images(val, config.image_size, progress=False)
    val, images = val[ok].reset_index(drop=True), images[ok]
    speed_batch = crops(256)
    result = {"name": name, **CANDIDATES[name], "epochs": len(history), "wall_min": round(wall_s / 60, 1),
              "train_img_per_s": round(n_train / history["seconds"].median(), 1)}
    for flip in (False, True):
        predictor = Predictor(folder, flip_tta=flip)
        metrics, _ = evaluate(predictor, val, images)
        suffix = "_flip" if flip else ""
        result[f"val_gender_acc{suffix}"] = round(metrics["gender_accuracy"], 4)
        result[f"val_age_mae{suffix}"] = round(metrics["age_mae"], 3)
        result[f"crops_per_s{suffix}"] = round(crops_per_second(predictor, speed_batch, runs=5), 1)
    result["parameters"] = predictor.model.count_params()
    return result


def markdown(results: list[dict]) -> str:
    head = ("| candidate | params | train img/s | val gender acc (flip) | val MAE (flip) "
            "| crops/s (flip) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
    return head + "\n".join(
        f"| {r['name']} | {r['parameters']:,} | {r['train_img_per_s']:.0f} "
        f"| {r['val_gender_acc']:.2%} ({r['val_gender_acc_flip']:.2%}) "
        f"| {r['val_age_mae']:.2f} ({r['val_age_mae_flip']:.2f}) "
        f"| {r['crops_per_s']:.0f} ({r['crops_per_s_flip']:.0f}) |" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATASET_DIR))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--only", nargs="+", choices=sorted(CANDIDATES), help="run only these candidates")
    parser.add_argument("--redo", action="store_true", help="retrain candidates already in results.json")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else []
    table = load_dataset(args.data)
    for name in args.only or CANDIDATES:
        if not args.redo and any(r["name"] == name and r["epochs"] == args.epochs for r in results):
            continue
        print(f"== {name}", flush=True)
        result = run_candidate(name, table, out, args.epochs)
        results = [r for r in results if r["name"] != name] + [result]
        results_file.write_text(json.dumps(results, indent=2))
        print(json.dumps(result), flush=True)
    print(markdown(results))


if __name__ == "__main__":
    main()
