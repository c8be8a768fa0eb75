"""What each training row teaches each head: labels, teachers' opinions, and how much they weigh.

Target rows (read by `core.train.losses`):
- gender: (target, weight, label). `label` is 0/1 or -1 (unknown); `target` is the label, or
  with a teacher (1 - w) x label + w x the teacher's p_female; a row without a gender but with a
  teacher's opinion learns that opinion at weight w; a row with neither has weight 0. With
  `teacher_by_confidence`, w is scaled per row by the teacher's confidence |2 p_female - 1|:
  teachers read adults' gender well but hesitate on babies (face-api.js/probe: 67 % right on
  UTKFace's training faces aged 0-2, 98 % on adults), and a hesitant opinion mixed in at full
  weight only softens a label that is more likely right.
- age: (lo, hi, teacher age, teacher share, weight). lo = hi for an exact age, lo < hi for a
  bracket, lo = hi = -1 for none; with a teacher the share is w, and a row without an age but
  with a teacher's age learns that age alone (share 1) at weight w.
- embedding (feature distillation): (mask, teacher embedding...).

Why teachers (`Config.teacher`, `Config.embedding_teacher`): labels are hard (gender 0/1) and
noisy (apparent ages, one number) or missing (gender-only sources); teachers trained on other,
larger data (face-api.js AgeGenderNet, a probe on dlib's face-recognition embedding, see
tools/teacher_labels.py) carry what they learned there in soft answers, which a small student
fits more easily and which generalise beyond one dataset's faces. Their answers are computed
once and cached, so the product never runs a teacher. Only training-split rows are distilled:
validation and test stay scored against labels alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Config
from ..data.datasets import DatasetError

TEACHER_COLUMNS = ("file", "p_female", "age")


@dataclass(frozen=True)
class Targets:
    """The target rows of a table, per head (see the module docstring)."""

    gender: np.ndarray  # (n, 3)
    age: np.ndarray  # (n, 5)
    embedding: np.ndarray | None = None  # (n, 1 + d)

    def __getitem__(self, rows) -> "Targets":
        return Targets(self.gender[rows], self.age[rows], None if self.embedding is None else self.embedding[rows])

    def as_dict(self) -> dict[str, np.ndarray]:
        heads = {"gender": self.gender, "age": self.age}
        return heads if self.embedding is None else {**heads, "embedding": self.embedding}


def load_teacher(path: str | Path) -> pd.DataFrame:
    """A teacher CSV (tools/teacher_labels.py) indexed by file: p_female and age, either of which
    may be empty (the teacher has no opinion on that head for that image); one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"teacher file {path} does not exist (make it with tools/teacher_labels.py)")
    try:
        teacher = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"teacher file {path} cannot be read as CSV: {exc}") from None
    missing = [column for column in TEACHER_COLUMNS if column not in teacher]
    if missing:
        raise DatasetError(f"teacher file {path} lacks the column(s) {', '.join(missing)}")
    teacher = teacher.dropna(subset=["p_female", "age"], how="all").drop_duplicates("file").set_index("file")
    return teacher[["p_female", "age"]].astype(float)


def load_embedding_teacher(path: str | Path) -> pd.DataFrame:
    """A teacher .npz (tools/teacher_labels.py embed) as one row of embedding per file; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"embedding teacher {path} does not exist (make it with tools/teacher_labels.py embed)")
    try:
        with np.load(path) as cache:
            files, embeddings = cache["files"], cache["embeddings"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"embedding teacher {path} is not an .npz with files and embeddings: {exc}") from None
    table = pd.DataFrame(embeddings, index=pd.Index(files, name="file"))
    return table[~table.index.duplicated()]


def build_targets(table: pd.DataFrame, config: Config, teacher: pd.DataFrame | None = None,
                  embedding_teacher: pd.DataFrame | None = None) -> Targets:
    """Every row's targets, with the teachers' opinions on its training rows (see the module docstring)."""
    n, w = len(table), config.teacher_weight
    gender, lo, hi = (table[column].to_numpy(np.float32) for column in ("gender", "age_lo", "age_hi"))
    genders = np.stack([np.maximum(gender, 0), (gender >= 0).astype(np.float32), gender], axis=1)
    ages = np.stack([lo, hi, np.maximum(lo, 0), np.zeros(n, np.float32), (lo >= 0).astype(np.float32)], axis=1)
    if teacher is not None:
        train = (table["split"] == "train").to_numpy()
        known = table["file"].isin(teacher.index).to_numpy() & train
        opinion = teacher.reindex(table["file"]).to_numpy(np.float64)
        p_teacher = np.clip(np.nan_to_num(opinion[:, 0]), 0, 1).astype(np.float32)
        age_teacher = np.clip(np.nan_to_num(opinion[:, 1]), 0, config.max_age).astype(np.float32)
        says_gender, says_age = known & ~np.isnan(opinion[:, 0]), known & ~np.isnan(opinion[:, 1])
        has_gender, has_age = gender >= 0, lo >= 0
        share = w * np.abs(2 * p_teacher - 1) if config.teacher_by_confidence else np.full(n, w, np.float32)
        mix = says_gender & has_gender
        genders[mix, 0] = (1 - share[mix]) * gender[mix] + share[mix] * p_teacher[mix]
        only = says_gender & ~has_gender
        genders[only, 0], genders[only, 1] = p_teacher[only], share[only]
        ages[says_age, 2] = age_teacher[says_age]
        ages[says_age & has_age, 3] = w
        only = says_age & ~has_age
        ages[only, 3], ages[only, 4] = 1.0, w
        taught = int(((says_gender & ~has_gender) | (says_age & ~has_age)).sum())
        print(f"teacher {config.teacher}: {known.sum()} of {train.sum()} training images distilled at weight {w}; "
              f"{train.sum() - known.sum()} not in it keep their labels only"
              + (f"; {taught} of them lack a label the teacher gives" if taught else ""), flush=True)
    return Targets(genders, ages, embedding_targets(table, config, embedding_teacher))


def embedding_targets(table: pd.DataFrame, config: Config, teacher: pd.DataFrame | None) -> np.ndarray | None:
    """Feature distillation (`Config.embedding_teacher`): per row (mask, teacher embedding).

    Why: a face-recognition network trained on millions of faces in the wild (dlib's ResNet, see
    tools/teacher_labels.py) encodes what faces look like in 128 numbers per face, far more than
    one soft label carries; a head that must point its features the same way makes the small
    student learn features like the teacher's, on every face it has, labelled or not. Only
    training rows the teacher knows get mask 1. None without an embedding teacher (the model
    then has no such head)."""
    if teacher is None:
        return None
    train = (table["split"] == "train").to_numpy()
    known = table["file"].isin(teacher.index).to_numpy() & train
    rows = np.zeros((len(table), teacher.shape[1] + 1), np.float32)
    rows[known, 0] = 1.0
    rows[known, 1:] = teacher.reindex(table["file"][known]).to_numpy()
    print(f"embedding teacher {config.embedding_teacher}: {known.sum()} of {train.sum()} training images matched "
          f"at weight {config.embedding_weight}; {train.sum() - known.sum()} not in it are left out of that loss",
          flush=True)
    return rows
