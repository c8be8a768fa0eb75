"""The model-sized face crop of every row of a dataset table, as training and calibration read it.

Ready crops (UTKFace, the pixel CSV) are only resized (`core.data.datasets.load_images`). Photos
(a labelled folder's portraits, `photo` rows, or every row with `realign`) go through the
product's own photo pipeline (`core.analysis.pipeline.FaceFinder`: the photos' detector and
aligner, the most confident face), so the model learns faces framed as it will see them in use.
Finding faces is slow (tens of ms a photo) and epochs need the same crops again, so each crop
is cached on disk once, keyed by the image's content (SHA-1 of its bytes), the crop size and a
fingerprint of the detection and alignment code and weights: changing the aligner (or the
detector, its weights, the photo loader) makes a new cache, never a stale crop.

The cache lives outside the project (`$AGE_GENDER_CACHE_DIR`, default ~/.cache/agegender): its
crops are made from dataset images, which must never be committed.
"""
from __future__ import annotations

import functools
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from ..analysis.pipeline import FaceFinder
from ..detect import detector_for
from ..imaging.files import ImageError
from .datasets import load_images, warn_skipped

NO_FACE = "no face found"


@functools.cache
def pipeline_fingerprint() -> str:
    """12 hex digits that change whenever the code or weights that frame a photo's face change:
    the photo loader, both detectors, alignment and the YuNet weights."""
    core = Path(__file__).resolve().parent.parent
    parts = [core / "analysis" / "pipeline.py", core / "imaging" / "files.py", core / "imaging" / "pixels.py",
             *sorted((core / "detect").glob("*.py")), *sorted((core / "detect" / "weights").glob("*.tflite"))]
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part.read_bytes())
    return digest.hexdigest()[:12]


def cache_folder(size: int) -> Path:
    """Where crops of this size and pipeline are kept (`$AGE_GENDER_CACHE_DIR`, else ~/.cache/agegender)."""
    root = Path(os.environ.get("AGE_GENDER_CACHE_DIR") or Path.home() / ".cache" / "agegender")
    return root / "faces" / f"{pipeline_fingerprint()}-{size}px"


def face_crops(table: pd.DataFrame, size: int, realign: bool = False,
               progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 crops of size x size, mask of rows that gave one): ready crops resized, photos found
    and aligned, from the cache when it has them. With `realign`, ready crops with a file are
    found and aligned too, keeping their own crop where no face is found. Photos without a crop
    (unreadable, no face found) are reported with a DatasetWarning."""
    photos = table["photo"].to_numpy(bool) if "photo" in table else np.zeros(len(table), bool)
    images, ok = np.zeros((len(table), size, size, 3), np.uint8), np.ones(len(table), bool)
    if (~photos).any():
        images[~photos], ok[~photos] = load_images(table[~photos], size, progress=False)
    recrop = photos | (realign & ~photos & ok & table["path"].fillna("").astype(bool).to_numpy())
    if not recrop.any():
        return images, ok
    index = np.flatnonzero(recrop)
    crops, reasons = _found_faces(table["path"].to_numpy()[index], size, progress)
    problems, kept = [], 0
    for i, crop, reason in zip(index, crops, reasons):
        if crop is not None:
            images[i] = crop
        elif photos[i]:
            ok[i] = False
            problems.append((table["file"].iloc[i], reason))
        else:
            kept += 1
    if realign:
        print(f"realigned {int((recrop & ~photos).sum()) - kept} of {int((~photos).sum())} crops with the project's "
              f"detector; the other {kept + int((~recrop & ~photos).sum())} keep their crop", flush=True)
    if problems:
        warn_skipped(problems, "photo(s) without a usable face skipped")
    return images, ok


def _found_faces(paths, size: int, progress) -> tuple[list[np.ndarray | None], list[str]]:
    """Each photo's aligned best face (None and the reason when there is none), cached."""
    folder, finder = cache_folder(size), FaceFinder(detector_for("photos"), size)

    def one(path: str) -> tuple[np.ndarray | None, str]:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return None, f"cannot read file: {exc.strerror or exc}"
        key = hashlib.sha1(data).hexdigest()
        stored = folder / key[:2] / f"{key}.png"
        missing = stored.with_suffix(".none")
        if stored.is_file():
            return cv2.cvtColor(cv2.imread(str(stored), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), ""
        if missing.is_file():
            return None, missing.read_text() or NO_FACE
        try:
            found = finder.find(data)
        except ImageError as exc:
            crop, reason = None, str(exc)
        else:
            crop, reason = (found.crops[0], "") if found.faces else (None, NO_FACE)
        stored.parent.mkdir(parents=True, exist_ok=True)
        # a name of this thread's own: two files with the same content may be found at once
        partial = stored.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.png")
        if crop is None:
            partial.write_text(reason)
            os.replace(partial, missing)
        elif cv2.imwrite(str(partial), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
            os.replace(partial, stored)
        return crop, reason

    results = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done, result in enumerate(pool.map(one, paths), 1):
            results.append(result)
            if progress is not None:
                progress(done, len(paths))
    return [crop for crop, _ in results], [reason for _, reason in results]
