"""All tunable settings in one place.

`Config` drives data splitting, the model, training and inference. A trained model stores the
`Config` it was trained with in its settings JSON, so inference always preprocesses exactly as
training did.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default"
# The UTKFace folder the dashboard suggests and takes sample faces from; $AGE_GENDER_DATASET_DIR
# points elsewhere (docs/screenshots.py points it at nothing, so no dataset face is pictured).
DEFAULT_DATASET_DIR = Path(os.environ.get("AGE_GENDER_DATASET_DIR") or PROJECT_ROOT.parent / "shared" / "datasets" / "UTKFace")

GENDERS = ("male", "female")  # index = UTKFace gender code
RACES = ("White", "Black", "Asian", "Indian", "Others")  # index = UTKFace race code
AGE_BANDS = ((0, 12, "0-12"), (13, 19, "13-19"), (20, 39, "20-39"), (40, 59, "40-59"), (60, 200, "60+"))


DATASET_FORMATS = ("utkface", "pixels-csv", "folder-csv")  # loaders in core.datasets
DETECTORS = ("yunet", "blazeface")  # face detectors in core.faces.build_detector; the first is the default
ARCHITECTURES = ("resnet", "mobilenetv2")  # builders in core.model.ARCHITECTURE_BUILDERS
LR_SCHEDULES = ("cosine", "plateau")  # see core.training
GENDER_THRESHOLD = 0.5  # p_female at or above this reads as female


def gender_of(p_female: float) -> str:
    """The gender name a probability of female stands for (the one threshold used everywhere)."""
    return GENDERS[int(p_female >= GENDER_THRESHOLD)]


def _option(default, help: str, choices: tuple | None = None, low: float | None = None, high: float | None = None,
            path: bool = False):
    """A Config field that users set: its help text, choices and range drive both the CLI flag
    (`python -m core train --NAME`) and the dashboard's Training form. `path=True` marks a file
    on the server: the form accepts it only inside the folders the server shares."""
    return field(default=default, metadata={"help": help, "choices": choices, "low": low, "high": high, "path": path})


def user_options(cls) -> list[dataclasses.Field]:
    """The fields of a settings dataclass that users set (those declared with `_option`)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("help")]


QUALITY_GRADES = ("poor", "good")  # worst first: `AnswerSettings.min_quality` compares by index


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are reported, whatever model gives them: the age interval's coverage, whether
    to abstain on poor faces, and an optional age check. Flags of `predict` and `batch`, and the
    pages' controls (see `core.analysis.face_result` for what each does)."""

    interval: float = _option(0.8, "share of true ages the age interval should contain, calibrated on the "
                                   "model's validation split", low=0.5, high=0.99)
    min_quality: str = _option("poor", "faces of lower quality get status 'uncertain' (good: abstain on poor "
                                       "faces; poor: report every face, marked)", choices=QUALITY_GRADES)
    age_threshold: float | None = _option(None, "age to check faces against: age_check is over (the whole "
                                                "interval is at or above it), under, or uncertain", low=0, high=116)

    def __post_init__(self):
        for option in user_options(type(self)):
            value, low, high = getattr(self, option.name), option.metadata["low"], option.metadata["high"]
            if value is not None and low is not None and not low <= value <= high:
                raise ValueError(f"{option.name} must be between {low} and {high}, got {value}")
        if self.min_quality not in QUALITY_GRADES:
            raise ValueError(f"min_quality must be one of {QUALITY_GRADES}, not {self.min_quality!r}")


@dataclass
class Config:
    """Settings for one training run and for the model it produces."""

    # data (the defaults are the shipped model's recipe, see models/default/MODEL_CARD.md)
    image_size: int = _option(48, "input side in pixels", low=16, high=256)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = _option(42, "seed of the split and the shuffling", low=0)
    # model
    architecture: str = _option("resnet", "network: our compact residual CNN or Keras' MobileNetV2 (from scratch)",
                                choices=ARCHITECTURES)
    width: int = _option(24, "resnet: channels of the first stage (model size)", low=4, high=128)
    alpha: float = _option(0.5, "mobilenetv2: width multiplier", low=0.1, high=1.4)
    dropout: float = 0.2
    max_age: int = 116  # age head predicts a distribution over 0..max_age
    # training
    epochs: int = _option(40, "number of epochs", low=1, high=1000)
    batch_size: int = _option(64, "batch size", low=1, high=1024)
    learning_rate: float = _option(3e-3, "peak learning rate", low=1e-6, high=1.0)
    weight_decay: float = 1e-4
    age_sigma: float = _option(2.5, "std-dev of the age label distribution (years)", low=0.1, high=20.0)
    age_loss_weight: float = 1.0
    augment: bool = _option(True, "augment training images (flips, shifts, colour)")
    degrade: float = _option(0.0, "chance of each real-photo corruption per training image (blur, JPEG, noise, "
                                  "low resolution and light, colour cast, grey, occlusion bands, yaw); 0 = off",
                             low=0.0, high=1.0)
    face_only: float = _option(0.0, "chance per training image of hiding everything outside the inner face (hair, "
                                     "ears, background) behind a flat colour, so gender is not read from the "
                                     "hairstyle; 0 = off", low=0.0, high=1.0)
    realign: bool = _option(False, "re-crop training images with the project's own face detector and aligner "
                                   "(as photos are cropped in use) instead of the dataset's crops")
    teacher: str = _option("", "knowledge distillation: CSV of cached teacher outputs (file, p_female, age; made by "
                                "tools/teacher_labels.py) mixed into the training split's targets; empty = off",
                           path=True)
    teacher_weight: float = _option(0.5, "share of the teacher in each distilled target (0 = labels only, 1 = "
                                         "teacher only); used only with --teacher", low=0.0, high=1.0)
    embedding_teacher: str = _option("", "feature distillation: .npz of cached face embeddings of the training images "
                                          "(made by tools/teacher_labels.py embed); a training-only head learns to "
                                          "point the same way; empty = off", path=True)
    embedding_weight: float = _option(1.0, "weight of the embedding-matching loss (1 - cosine); used only with "
                                           "--embedding-teacher", low=0.0, high=100.0)
    lr_schedule: str = _option("cosine", "learning-rate schedule: warm-up + cosine decay, or reduce on plateau",
                               choices=LR_SCHEDULES)
    early_stopping_patience: int = 8
    # inference
    flip_tta: bool = True  # average predictions of the image and its mirror

    @classmethod
    def options(cls) -> list[dataclasses.Field]:
        """The fields users set (CLI flags, Training form), in declaration order."""
        return user_options(cls)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """Build from a dict, ignoring keys this version does not know (older/newer models)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


def age_band(age: float) -> str:
    """Name of the age band (0-12, 13-19, 20-39, 40-59, 60+) an age falls in."""
    for low, high, name in AGE_BANDS:
        if age < high + 1:
            return name
    return AGE_BANDS[-1][2]


AGE_BAND_NAMES = tuple(name for _, _, name in AGE_BANDS)
