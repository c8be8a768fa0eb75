"""Error curves behind the face-quality thresholds of `core.analysis.quality`.

On the model's VALIDATION split (the test split stays untouched for the model card's figures):

- small, blurry, dark, bright: every crop is degraded step by step (shrunk to s px and blown up
  again as a small face in a photo is; Gaussian blur; brightness scaled down or up), the quality
  measure is taken on a crop of MEASURE_SIDE px exactly as the photo pipeline does, and the age MAE,
  gender accuracy and 80 % interval coverage are reported per bin of the measure;
- turned: each crop goes through the photo pipeline (BlazeFace, alignment), binned by the
  estimated yaw; tilted: crops are rotated, then detected and aligned (roll as measured);
- and, when AFW is beside the project, how the yaw estimate reads faces of annotated pose.

A bin is "worse" when its age MAE exceeds 1.2x the undegraded MAE or its gender accuracy is 3
points below; each threshold is the boundary of the worse bins nearest to the good side. Prints
Markdown tables for the model card and a JSON summary as the last line.

    python bench/quality.py [--model models/default] [--limit 2136] [--out runs/bench/quality.json] [--only-afw]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis.pipeline import FaceAnalyzer  # noqa: E402
from core.analysis.quality import MAX_YAW, MEASURE_SIDE, crop_measures  # noqa: E402
from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR
from core.data.datasets import load_dataset, select_split  # noqa: E402
from core.detect.blazeface import BlazeFaceDetector  # noqa: E402
from core.imaging.files import load_image
from core.imaging.pixels import resize_square  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from core.labels import GENDERS  # noqa: E402

MAE_FACTOR, ACCURACY_DROP = 1.2, 0.03  # what makes a bin "worse" than undegraded faces
SIZES = (200, 96, 64, 48, 40, 32, 24, 16, 12)  # px: the face shrunk to this, then blown up again
BLURS = (0, 1, 1.5, 2, 3, 4, 6, 8)  # Gaussian sigma at 200 px
DARKER = (1, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08)  # brightness factors
BRIGHTER = (1, 1.3, 1.6, 2, 2.5, 3, 4)
ROLLS = (0, 15, 30, 45, 60)  # degrees the crops are rotated by before detection
YAW_EDGES = (0, 10, 20, 30, 40, 50, 60, 90)
BINS = 10  # quantile bins of a pooled measure
MIN_BIN = 20  # smaller bins are not reported


def degraded(images: np.ndarray, kind: str, level: float) -> np.ndarray:
    if kind == "small":
        side = images.shape[1]
        return np.stack([cv2.resize(cv2.resize(i, (int(level),) * 2, interpolation=cv2.INTER_AREA), (side, side),
                                    interpolation=cv2.INTER_LINEAR) for i in images]) if level < side else images
    if kind == "blurry":
        return np.stack([cv2.GaussianBlur(i, (0, 0), level) for i in images]) if level else images
    return np.clip(images.astype(np.float32) * level, 0, 255).astype(np.uint8)


def scores(rows: pd.DataFrame) -> dict:
    covered = (rows["age_low"] <= rows["age_true"]) & (rows["age_true"] <= rows["age_high"])
    return {"n": int(len(rows)), "age_mae": float((rows["age_pred"] - rows["age_true"]).abs().mean()),
            "gender_accuracy": float((rows["gender_pred"] == rows["gender_true"]).mean()),
            "coverage": float(covered.mean())}


def read(analyzer: FaceAnalyzer, crops: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """Model answers for 200 px crops (as the model's input), with the crop measures."""
    size = analyzer.predictor.image_size
    inputs = np.stack([resize_square(c, size) for c in crops])
    predictions = analyzer.predict(inputs)
    measures = np.array([crop_measures(resize_square(c, MEASURE_SIDE)) for c in crops])  # as the pipeline measures
    return pd.DataFrame({"age_true": table["age"].to_numpy(), "gender_true": [GENDERS[g] for g in table["gender"]],
                         "age_pred": [p.age for p in predictions], "gender_pred": [p.gender for p in predictions],
                         "age_low": [p.age_low for p in predictions], "age_high": [p.age_high for p in predictions],
                         "sharpness": measures[:, 0], "brightness": measures[:, 1], "clipped": measures[:, 2]})


def curve(rows: pd.DataFrame, measure: str, edges) -> list[dict]:
    bins = pd.cut(rows[measure], edges, include_lowest=True, duplicates="drop")
    out = []
    for interval, group in rows.groupby(bins, observed=True):
        if len(group) >= MIN_BIN:
            out.append({"low": float(interval.left), "high": float(interval.right), **scores(group)})
    return out


def threshold(points: list[dict], base: dict, higher_is_better: bool) -> float | None:
    """The boundary between the worse bins and the good side (None: no bin is worse)."""
    worse = [p["age_mae"] > MAE_FACTOR * base["age_mae"] or p["gender_accuracy"] < base["gender_accuracy"] - ACCURACY_DROP
             for p in points]
    if not any(worse):
        return None
    if higher_is_better:
        return max(p["high"] for p, w in zip(points, worse) if w)
    return min(p["low"] for p, w in zip(points, worse) if w)


def synthetic(analyzer, crops, table, kind, levels) -> pd.DataFrame:
    parts = [read(analyzer, degraded(crops, kind, level), table).assign(level=level) for level in levels]
    return pd.concat(parts, ignore_index=True)


def through_detector(analyzer: FaceAnalyzer, crops, table, angles) -> pd.DataFrame:
    """Crops rotated by each angle, then detected, aligned and read as photos are."""
    rows = []
    for angle in angles:
        turn = cv2.getRotationMatrix2D((crops.shape[2] / 2, crops.shape[1] / 2), angle, 1.0)
        for crop, (age, gender) in zip(crops, zip(table["age"], table["gender"])):
            image = cv2.warpAffine(crop, turn, crop.shape[1::-1], borderMode=cv2.BORDER_REPLICATE) if angle else crop
            found = analyzer.analyze(image)
            face = found[0] if found else None
            rows.append({"angle": angle, "found": face is not None, "age_true": age, "gender_true": GENDERS[gender],
                         **({"age_pred": face.age, "gender_pred": face.gender, "age_low": face.age_low,
                             "age_high": face.age_high, "yaw": abs(face.quality.yaw), "roll": abs(face.quality.roll)}
                            if face else {})})
    return pd.DataFrame(rows)


def afw_yaw(folder: Path, threshold: float) -> list[dict]:
    """How the yaw estimate reads faces of known pose: AFW's annotated faces (no ages, so no error
    curve), matched to detections by centre, per band of annotated |yaw|."""
    from core.analysis.pipeline import load_photo
    from core.analysis.quality import yaw_of

    faces, detector, rows = pd.read_csv(folder / "faces.csv"), BlazeFaceDetector(full_range="always"), []
    for file, group in faces.groupby("file"):
        image, scale = load_photo(folder / "images" / file)
        for face in detector.detect(image):
            x, y = (face.x + face.w / 2) * scale, (face.y + face.h / 2) * scale
            hit = group[(group.x <= x) & (x <= group.x + group.w) & (group.y <= y) & (y <= group.y + group.h)]
            if len(hit):
                rows.append({"true": abs(hit.iloc[0]["yaw_deg"]), "estimated": abs(yaw_of(face))})
    table = pd.DataFrame(rows)
    bands = pd.cut(table["true"], [0, 15, 30, 45, 60, 90], include_lowest=True)
    return [{"low": float(band.left), "high": float(band.right), "n": int(len(g)),
             "median_estimate": float(g["estimated"].median()), "flagged": float((g["estimated"] > threshold).mean())}
            for band, g in table.groupby(bands, observed=True)]


def markdown(title: str, unit: str, points: list[dict]) -> str:
    lines = [f"| {title} ({unit}) | n | age MAE | gender accuracy | 80 % interval coverage |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {p['low']:.4g}-{p['high']:.4g} | {p['n']} | {p['age_mae']:.2f} | {p['gender_accuracy']:.1%} | "
              f"{p['coverage']:.1%} |" for p in points]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--data", default=str(DEFAULT_DATASET_DIR))
    parser.add_argument("--limit", type=int, default=2136, help="validation faces used (random sample)")
    parser.add_argument("--pose-limit", type=int, default=600, help="of those, faces rotated for the roll curve")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/quality.json"))
    parser.add_argument("--afw", type=Path, default=DEFAULT_DATASET_DIR.parent / "afw",
                        help="AFW folder, to see how the yaw estimate reads faces of annotated pose (skipped if absent)")
    parser.add_argument("--only-afw", action="store_true", help="just the AFW check (the curves take ~15 min)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.only_afw:
        print(json.dumps({"afw_yaw": afw_yaw(args.afw, MAX_YAW)}))
        return

    table = select_split(load_dataset(args.data), args.model, "val")
    table = table.sample(n=min(args.limit, len(table)), random_state=0)
    crops = np.stack([load_image(path) for path in table["path"]])
    analyzer = FaceAnalyzer(Predictor(args.model))
    base = scores(read(analyzer, crops, table))
    print(f"{len(table)} validation faces, undegraded: age MAE {base['age_mae']:.2f}, gender accuracy "
          f"{base['gender_accuracy']:.1%}, 80 % interval coverage {base['coverage']:.1%}", flush=True)

    summary = {"faces": len(table), "undegraded": base, "curves": {}, "thresholds": {}}
    small = synthetic(analyzer, crops, table, "small", SIZES)
    size_points = [{"low": float(s), "high": float(s), **scores(small[small["level"] == s])} for s in SIZES][::-1]
    worse_sizes = [p["low"] for p in size_points if p["age_mae"] > MAE_FACTOR * base["age_mae"]
                   or p["gender_accuracy"] < base["gender_accuracy"] - ACCURACY_DROP]
    good_above = [s for s in SIZES if s > max(worse_sizes, default=0)]
    summary["curves"]["size_px"], summary["thresholds"]["MIN_SIZE_PX"] = size_points, min(good_above)
    for kind, levels, measure, better_high in (("blurry", BLURS, "sharpness", True),
                                               ("dark", DARKER, "brightness", True),
                                               ("bright", BRIGHTER, "clipped", False)):
        rows = synthetic(analyzer, crops, table, kind, levels)
        edges = np.unique(np.quantile(rows[measure], np.linspace(0, 1, BINS + 1)))
        points = curve(rows, measure, edges)
        summary["curves"][f"{measure} ({kind})"] = points
        summary["thresholds"][f"{measure} ({kind})"] = threshold(points, base, better_high)
        print(f"{kind}: done ({time.perf_counter() - started:.0f} s)", flush=True)

    pose = FaceAnalyzer(analyzer.predictor, BlazeFaceDetector())
    upright = through_detector(pose, crops, table, [0])
    found = upright[upright["found"]]
    summary["detected_upright"] = float(upright["found"].mean())
    summary["curves"]["yaw"] = curve(found, "yaw", YAW_EDGES)
    summary["thresholds"]["MAX_YAW"] = threshold(summary["curves"]["yaw"], scores(found), False)
    tilted = through_detector(pose, crops[:args.pose_limit], table.iloc[:args.pose_limit], ROLLS)
    summary["curves"]["rotated"] = [{"low": float(a), "high": float(a), "detected": float(g["found"].mean()),
                                     "median_roll": float(g["roll"].median()), **scores(g[g["found"]])}
                                    for a, g in tilted.groupby("angle")]
    if args.afw.is_dir():
        summary["afw_yaw"] = afw_yaw(args.afw, MAX_YAW)
        print("\n| AFW annotated yaw | faces | median estimate | flagged turned |\n| --- | ---: | ---: | ---: |")
        print("\n".join(f"| {p['low']:.0f}-{p['high']:.0f} | {p['n']} | {p['median_estimate']:.0f} | {p['flagged']:.0%} |"
                        for p in summary["afw_yaw"]))
    summary["seconds"] = round(time.perf_counter() - started)

    for name, points in summary["curves"].items():
        print(f"\n{markdown(name, 'degrees rotated' if name == 'rotated' else 'measure', points)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({"thresholds": summary["thresholds"], "detected_upright": summary["detected_upright"],
                      "rotated_detected": [round(p["detected"], 3) for p in summary["curves"]["rotated"]],
                      "seconds": summary["seconds"]}))


if __name__ == "__main__":
    main()
