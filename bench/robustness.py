"""Robustness: the model on faces damaged the way real photos damage them, through the photo pipeline.

Takes the validation split of the model's split.csv (UTKFace crops never trained on; `--limit`
of them, a fixed sample), damages each crop with each corruption of `core.data.corruptions` (low
resolution, blur, JPEG, noise, low light, colour cast, grey, bands over the eyes or mouth, yaw),
pastes it into a synthetic 640x480 scene (testkit/faces.py, as bench/pasted.py; same scene,
size and tilt for every corruption of a face, so only the damage differs) and sends the scene
through `FaceAnalyzer` detect + align + predict, scoring the most confident face. Then the
face-research-lab portraits (a check, never trained on) through the same pipeline
(`core.evaluate.evaluator.evaluate`). One table: detection rate, gender accuracy, age MAE (all ages and
0-12) per condition; gender and MAE are over the detected faces. A reference row scores the same
faces as aligned crops (no scene, no detector), so the pipeline's own cost is visible. Last line: JSON.

    python bench/robustness.py [--model models/default ...] [--limit 300] [--data ../shared/datasets/UTKFace]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis.pipeline import FaceAnalyzer  # noqa: E402
from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, PROJECT_ROOT  # noqa: E402
from core.data.corruptions import CORRUPTIONS  # noqa: E402
from core.data.datasets import load_dataset, select_split  # noqa: E402
from core.detect.blazeface import BlazeFaceDetector  # noqa: E402
from core.evaluate.evaluator import evaluate  # noqa: E402
from core.imaging.files import load_image  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from testkit.faces import background, paste  # noqa: E402

FRL_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "face-research-lab"
CLEAN = "clean"
CONDITIONS = (CLEAN, *CORRUPTIONS)
SCENE = (640, 480)


def scene_of(crop: np.ndarray, index: int) -> np.ndarray:
    """The crop pasted into face `index`'s synthetic scene: 130-330 px, tilted up to 12 degrees."""
    rng = np.random.default_rng(index)
    width, height = SCENE
    photo, side = background(width, height, seed=index), rng.uniform(130, 330)
    centre = (rng.uniform(side / 2 + 5, width - 5 - side / 2), rng.uniform(side / 2 + 5, height - 5 - side / 2))
    paste(photo, crop, centre, side, rng.uniform(-12, 12))
    return photo


def _figures(found: np.ndarray, ages: np.ndarray, p_female: np.ndarray, rows: pd.DataFrame) -> dict:
    """Detection rate over all faces; gender accuracy and age MAE over the detected ones."""
    true_age, true_gender = rows["age"].to_numpy()[found], rows["gender"].to_numpy()[found]
    error = np.abs(ages - true_age)
    children = true_age <= 12
    return {"n": int(len(rows)), "detection_rate": round(float(found.mean()), 4),
            "gender_accuracy": round(float(np.mean((p_female >= 0.5) == true_gender)), 4) if found.any() else None,
            "age_mae": round(float(error.mean()), 3) if found.any() else None,
            "age_mae_0_12": round(float(error[children].mean()), 3) if children.any() else None}


def corrupted_scores(analyzer: FaceAnalyzer, rows: pd.DataFrame) -> dict[str, dict]:
    """Figures per condition for the rows' crops, damaged, pasted, detected, aligned, predicted."""
    crops = [load_image(path) for path in rows["path"]]
    results = {}
    for number, condition in enumerate(CONDITIONS):
        def one(index: int) -> np.ndarray | None:
            crop = crops[index]
            if condition != CLEAN:
                crop = CORRUPTIONS[condition](crop, np.random.default_rng((index, number)))
            photo = scene_of(crop, index)
            faces = analyzer.detect(photo)
            return analyzer.align(photo, faces[:1])[0] if faces else None

        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            aligned = list(pool.map(one, range(len(crops))))
        found = np.array([face is not None for face in aligned])
        batch = np.stack([face for face in aligned if face is not None]) if found.any() else np.zeros((0,))
        ages, p_female = analyzer.predictor.predict_arrays(batch) if found.any() else (np.zeros(0), np.zeros(0))
        results[condition] = _figures(found, ages, p_female, rows)
        print(f"{condition}: {results[condition]}", file=sys.stderr, flush=True)
    return results


def photo_scores(analyzer: FaceAnalyzer, folder: Path) -> dict:
    """face-research-lab (or any labelled photo folder) through the photo pipeline."""
    table = load_dataset(folder, "folder-csv")
    metrics, predictions = evaluate(analyzer.predictor, table, detect=True, detector=analyzer.detector)
    no_face = sum(row["reason"] == "no face found" for row in metrics["skipped"])
    children = predictions["age_true"] <= 12
    error = (predictions["age_pred"] - predictions["age_true"]).abs()
    return {"n": metrics["n"], "detection_rate": round(metrics["n"] / (metrics["n"] + no_face), 4),
            "gender_accuracy": round(metrics["gender_accuracy"], 4), "age_mae": round(metrics["age_mae"], 3),
            "age_mae_0_12": round(float(error[children].mean()), 3) if children.any() else None,
            "age_bias": round(metrics["age_bias"], 3)}


def benchmark(model: str | Path, data: Path, limit: int, photos: Path | None = FRL_DIR,
              detector: BlazeFaceDetector | None = None) -> dict:
    """Every condition on `limit` validation faces, their mean over corruptions, and the photo folder."""
    analyzer = FaceAnalyzer(Predictor(model), detector or BlazeFaceDetector())
    val = select_split(load_dataset(data), model, "val")
    rows = val.sample(n=min(limit, len(val)), random_state=0).reset_index(drop=True)
    conditions = corrupted_scores(analyzer, rows)
    damaged = [conditions[name] for name in CORRUPTIONS]
    mean = {key: round(float(np.mean([row[key] for row in damaged if row[key] is not None])), 4)
            for key in ("detection_rate", "gender_accuracy", "age_mae", "age_mae_0_12")}
    predictor = analyzer.predictor
    ages, p_female = predictor.predict_arrays(predictor.prepare(list(rows["path"])))
    aligned = _figures(np.ones(len(rows), bool), ages, p_female, rows)  # the same faces without scene or detector
    result = {"model": str(model), "faces": len(rows), "aligned": aligned, "conditions": conditions,
              "corrupted_mean": mean}
    if photos is not None and Path(photos).is_dir():
        result["face_research_lab"] = photo_scores(analyzer, Path(photos))
    return result


def _cells(row: dict) -> str:
    fmt = lambda value, spec: "" if value is None else format(value, spec)  # noqa: E731
    return (f"{fmt(row['detection_rate'], '.1%')} | {fmt(row['gender_accuracy'], '.2%')} | "
            f"{fmt(row['age_mae'], '.2f')} | {fmt(row['age_mae_0_12'], '.2f')}")


def markdown(results: list[dict]) -> str:
    """One table: a row per model and condition, the corruptions' mean, and the photo folder."""
    lines = ["| model | condition | detected | gender acc | age MAE | MAE 0-12 |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for result in results:
        name = Path(result["model"]).name
        if "aligned" in result:
            lines.append(f"| {name} | aligned crop, no scene (reference) | {_cells(result['aligned'])} |")
        lines += [f"| {name} | {condition} | {_cells(row)} |" for condition, row in result["conditions"].items()]
        lines.append(f"| {name} | **mean of corruptions** | {_cells(result['corrupted_mean'])} |")
        if "face_research_lab" in result:
            lines.append(f"| {name} | face-research-lab photos | {_cells(result['face_research_lab'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[str(DEFAULT_MODEL_DIR)], help="model folder(s) to compare")
    parser.add_argument("--data", default=str(DEFAULT_DATASET_DIR), help="UTKFace folder (the model's split.csv)")
    parser.add_argument("--photos", default=str(FRL_DIR), help="labelled photo folder to check (face-research-lab)")
    parser.add_argument("--limit", type=int, default=300, help="validation faces to damage (fixed sample)")
    args = parser.parse_args()
    detector = BlazeFaceDetector()
    results = [benchmark(model, Path(args.data), args.limit, Path(args.photos), detector) for model in args.model]
    print(markdown(results))
    print(json.dumps(results if len(results) > 1 else results[0]))


if __name__ == "__main__":
    main()
