"""How the `unconfirmed` quality issue reads AFW: the otherwise good faces a second detector does
not confirm (`core.analysis.quality.confirmed`), and whether any of them is one of AFW's
annotated faces (box overlap 0.3 or more). Needs AFW beside the project (data/README.md).

    python bench/confirm.py [--model models/default]    # prints the flagged faces and one JSON line
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import FaceAnalyzer, Predictor, build_detector  # noqa: E402
from core.config import DEFAULT_MODEL_DIR, PROJECT_ROOT  # noqa: E402
from core.imaging.boxes import iou  # noqa: E402

AFW = PROJECT_ROOT.parent / "shared" / "datasets" / "afw"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    args = parser.parse_args()
    analyzer = FaceAnalyzer(Predictor(args.model), build_detector())
    truth = pd.read_csv(AFW / "faces.csv")
    good, flagged = 0, []
    for path in sorted((AFW / "images").glob("*.jpg")):
        boxes = truth.loc[truth["file"] == path.name, ["x", "y", "w", "h"]].to_numpy(dtype=float)
        boxes[:, 2:] += boxes[:, :2]  # (x0, y0, x1, y1), as core.imaging.boxes reads boxes
        for face in analyzer.analyze_photo(path):
            issues = face.quality.issues
            good += not issues
            if issues == ("unconfirmed",):
                corners = [face.x, face.y, face.x + face.w, face.y + face.h]
                overlap = float(iou(corners, boxes).max()) if len(boxes) else 0.0
                flagged.append({"file": path.name, "face": face.number, "det_score": face.det_score,
                                "best_overlap": round(overlap, 2)})
    for row in flagged:
        print(row)
    annotated = sum(row["best_overlap"] >= 0.3 for row in flagged)
    print(f"{len(flagged)} of {good + len(flagged)} otherwise good faces unconfirmed, {annotated} of them annotated faces")
    print(json.dumps({"good": good, "unconfirmed": len(flagged), "unconfirmed_annotated": annotated}))


if __name__ == "__main__":
    main()
