"""Architecture and recipe comparison: same data, split, epochs and schedule for every candidate.

Trains each candidate with `core.train.training.train` for a short cosine run, then scores it on the
validation split (the test split stays untouched for the shipped model) with and without mirror
averaging, times it as bench/infer.py does, and runs bench/robustness.py on it (validation faces
damaged and pasted into scenes, and face-research-lab, both through the photo pipeline; a check
that selects between candidates, never trained on). Results accumulate in `<out>/results.json`, so
an interrupted comparison resumes with the candidates it has not finished (a trained candidate
whose scores are missing is scored, not retrained); the last line printed is a markdown table.

    python bench/compare.py [--data ../shared/datasets/UTKFace] [--epochs 5] [--out runs/compare]
                            [--only resnet-64-w24 ...] [--redo] [--robust-limit 300]
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

from infer import crops, crops_per_second  # noqa: E402
from robustness import benchmark  # noqa: E402

from core.config import DEFAULT_DATASET_DIR, Config  # noqa: E402
from core.data.datasets import SPLIT_FILE, load_dataset, load_images, select_split  # noqa: E402
from core.evaluate.evaluator import evaluate  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from core.train.training import HISTORY_FILE, train  # noqa: E402

CANDIDATES = {
    "resnet-64-w24": dict(architecture="resnet", image_size=64, width=24),
    "resnet-48-w24": dict(architecture="resnet", image_size=48, width=24),
    "resnet-64-w16": dict(architecture="resnet", image_size=64, width=16),
    "mobilenetv2-a0.5-64": dict(architecture="mobilenetv2", image_size=64, alpha=0.5),
    # recipes for real-world faces (issue 13), all at the shipped 48 px / width 24
    "degrade-48": dict(architecture="resnet", image_size=48, width=24, degrade=0.1),
    "degrade-realign-48": dict(architecture="resnet", image_size=48, width=24, degrade=0.1, realign=True),
    "degrade-light-48": dict(architecture="resnet", image_size=48, width=24, degrade=0.03),
}


def train_candidate(name: str, table: pd.DataFrame, folder: Path, epochs: int, redo: bool = False) -> dict:
    """Train one candidate into `folder` (unless, without `redo`, a finished run is there) and
    return its cost: epochs run, wall time (None when trained earlier), minutes spent in epochs,
    training speed."""
    wall_min = None
    if redo or not _finished(folder, epochs):
        started = time.perf_counter()
        train(table, folder, Config(epochs=epochs, **CANDIDATES[name]), evaluate_test=False)
        wall_min = round((time.perf_counter() - started) / 60, 1)
    history = pd.read_csv(folder / HISTORY_FILE)
    n_train = int((pd.read_csv(folder / SPLIT_FILE)["split"] == "train").sum())
    return {"name": name, **CANDIDATES[name], "epochs": len(history), "wall_min": wall_min,
            "epoch_min": round(history["seconds"].sum() / 60, 1),
            "train_img_per_s": round(n_train / history["seconds"].median(), 1)}


def _finished(folder: Path, epochs: int) -> bool:
    history = folder / HISTORY_FILE
    return (folder / "model.keras").is_file() and history.is_file() and len(pd.read_csv(history)) >= epochs


def score_candidate(folder: Path, table: pd.DataFrame, data: Path, robust_limit: int) -> dict:
    """Validation figures (aligned crops, with and without mirror averaging, children apart),
    speed, and the robustness benchmark with face-research-lab through the photo pipeline."""
    predictor = Predictor(folder)
    val = select_split(table, folder, "val").reset_index(drop=True)
    images, ok = load_images(val, predictor.image_size, progress=False)
    val, images = val[ok].reset_index(drop=True), images[ok]
    speed_batch = crops(256)
    result = {}
    for flip in (False, True):
        predictor = Predictor(folder, flip_tta=flip)
        metrics, _ = evaluate(predictor, val, images)
        suffix = "_flip" if flip else ""
        result[f"val_gender_acc{suffix}"] = round(metrics["gender_accuracy"], 4)
        result[f"val_age_mae{suffix}"] = round(metrics["age_mae"], 3)
        result[f"crops_per_s{suffix}"] = round(crops_per_second(predictor, speed_batch, runs=5), 1)
    result["val_age_mae_0_12_flip"] = round(metrics["by_age_band"]["0-12"]["age_mae"], 3)
    result["parameters"] = _parameters(folder)
    result["robustness"] = benchmark(folder, data, robust_limit)
    return result


def _parameters(folder: Path) -> int:
    import keras

    return keras.saving.load_model(folder / "model.keras", compile=False).count_params()


def markdown(results: list[dict]) -> str:
    head = ("| candidate | params | epochs | wall min (in epochs) | val gender acc (flip) | val MAE (flip) | val MAE 0-12 "
            "| pasted clean: gender / MAE | corrupted mean: gender / MAE / detected "
            "| face-research-lab: gender / MAE | crops/s (flip) |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    rows = []
    for r in results:
        robust = r.get("robustness")
        clean, damaged, photos = ((robust["conditions"]["clean"], robust["corrupted_mean"],
                                   robust.get("face_research_lab")) if robust else (None, None, None))
        rows.append(
            f"| {r['name']} | {r['parameters']:,} | {r['epochs']} | {r.get('wall_min') or ''} ({r.get('epoch_min', '')}) "
            f"| {r['val_gender_acc']:.2%} ({r['val_gender_acc_flip']:.2%}) "
            f"| {r['val_age_mae']:.2f} ({r['val_age_mae_flip']:.2f}) | {r.get('val_age_mae_0_12_flip', float('nan')):.2f} "
            + (f"| {clean['gender_accuracy']:.2%} / {clean['age_mae']:.2f} "
               f"| {damaged['gender_accuracy']:.2%} / {damaged['age_mae']:.2f} / {damaged['detection_rate']:.1%} "
               + (f"| {photos['gender_accuracy']:.2%} / {photos['age_mae']:.2f} " if photos else "| ")
               if robust else "| | | ")
            + f"| {r['crops_per_s']:.0f} ({r['crops_per_s_flip']:.0f}) |")
    return head + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATASET_DIR))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--only", nargs="+", choices=sorted(CANDIDATES), help="run only these candidates")
    parser.add_argument("--redo", action="store_true", help="retrain candidates already in results.json")
    parser.add_argument("--robust-limit", type=int, default=300, help="validation faces in the robustness benchmark")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else []
    table = load_dataset(args.data)
    for name in args.only or CANDIDATES:
        done = next((r for r in results if r["name"] == name and r["epochs"] == args.epochs), None)
        if done and not args.redo and "robustness" in done:
            continue
        print(f"== {name}", flush=True)
        result = train_candidate(name, table, out / name, args.epochs, args.redo)
        if result["wall_min"] is None and done:  # trained by an earlier invocation, which timed it
            result["wall_min"] = done.get("wall_min")
        result.update(score_candidate(out / name, table, Path(args.data), args.robust_limit))
        results = [r for r in results if r["name"] != name] + [result]
        results_file.write_text(json.dumps(results, indent=2))
        print(json.dumps(result), flush=True)
    print(markdown(results))


if __name__ == "__main__":
    main()
