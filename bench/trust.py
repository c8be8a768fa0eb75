"""Do the answers hold on faces the calibration never saw? The model card's interval and age-check
figures, on the TEST split, through the same code as `python -m core batch DIR --aligned`.

For each coverage asked (default 0.8 and 0.9): interval coverage overall and per age band (by
predicted and by true age), median width; for the 0.8 intervals, per age threshold (13, 18, 21,
25), the share of faces decided and the false-over / false-under rates. Prints Markdown tables
and a JSON summary as the last line.

    python bench/trust.py [--model models/default] [--data ../shared/datasets/UTKFace] [--interval 0.8 0.9]
    python bench/trust.py --photos ../shared/datasets/face-research-lab    # whole photos, never seen
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis.pipeline import FaceAnalyzer  # noqa: E402
from core.batch.engine import analyze_images  # noqa: E402
from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, AnswerSettings
from core.data.datasets import load_dataset, select_split  # noqa: E402
from core.evaluate.reliability import CHECK_THRESHOLDS, age_check_rates, interval_coverage  # noqa: E402
from core.inference.predictor import Predictor  # noqa: E402
from core.labels import AGE_BAND_NAMES  # noqa: E402


def test_rows(model: str, data: str, coverage: float):
    """Batch rows for the test split's aligned crops, with true ages, as the predictions table."""
    table = select_split(load_dataset(data), model, "test")
    analyzer = FaceAnalyzer(Predictor(model), answers=AnswerSettings(interval=coverage))
    rows = analyze_images(zip(table["file"], table["path"]), analyzer)
    true = dict(zip(table["file"], table["age"]))
    return rows.assign(age_true=rows["file"].map(true), age_pred=rows["age"])


def photo_rows(folder: Path, model: str, coverage: float):
    """The same on whole photos of a folder with a labels.csv (file, age, ...), e.g. the
    face-research-lab portraits: detected, aligned and read as `python -m core batch` does."""
    import pandas as pd

    from core.detect.blazeface import BlazeFaceDetector

    labels = pd.read_csv(folder / "labels.csv").dropna(subset=["age"])
    analyzer = FaceAnalyzer(Predictor(model), BlazeFaceDetector(), AnswerSettings(interval=coverage))
    rows = analyze_images([(name, folder / name) for name in labels["file"]], analyzer)
    rows = rows[(rows["status"] == "ok") & (rows["face"] == 1)]  # the portrait's (best) face
    return rows.assign(age_true=rows["file"].map(dict(zip(labels["file"], labels["age"]))), age_pred=rows["age"])


def markdown(coverages: dict, checks: dict) -> str:
    lines = ["| coverage asked | faces | covered | median width | " + " | ".join(AGE_BAND_NAMES) + " |",
             "| --- | ---: | ---: | ---: |" + " ---: |" * len(AGE_BAND_NAMES)]
    for level, report in coverages.items():
        for by in ("by_predicted_band", "by_true_band"):
            bands = " | ".join(f"{report[by][b]['coverage']:.1%} (w {report[by][b]['median_width']:.0f}, n {report[by][b]['n']})"
                               if report[by][b]["n"] else "-" for b in AGE_BAND_NAMES)
            lines.append(f"| {float(level):.0%}, bands {by.split('_')[1]} age | {report['n']} | {report['coverage']:.1%} "
                         f"| {report['median_width']:.0f} | {bands} |")
    lines += ["", "| threshold | decided | uncertain | wrong among decided | false over | false under |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {t} | {c['decided']:.1%} | {c['uncertain']:.1%} | {c['wrong_of_decided']:.1%} | {c['false_over']:.1%} | "
              f"{c['false_under']:.1%} |" for t, c in checks.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--data", default=str(DEFAULT_DATASET_DIR))
    parser.add_argument("--interval", type=float, nargs="+", default=[0.8, 0.9])
    parser.add_argument("--photos", type=Path, help="instead: a folder of labelled photos (labels.csv: file, age)")
    args = parser.parse_args()
    coverages, checks = {}, {}
    for level in args.interval:
        rows = photo_rows(args.photos, args.model, level) if args.photos else test_rows(args.model, args.data, level)
        coverages[str(level)] = interval_coverage(rows)
        if level == AnswerSettings().interval:
            checks = age_check_rates(rows, CHECK_THRESHOLDS)
    print(markdown(coverages, checks))
    print(json.dumps({"coverage": coverages, "age_checks": checks}))


if __name__ == "__main__":
    main()
