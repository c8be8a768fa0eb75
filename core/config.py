"""All tunable settings in one place.

`Config` drives data splitting, the model, training and inference. A trained model stores the
`Config` it was trained with in its settings JSON, so inference always preprocesses exactly as
training did.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .labels import MAX_AGE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default"
# The UTKFace folder the dashboard suggests and takes sample faces from; $AGE_GENDER_DATASET_DIR
# points elsewhere (docs/screenshots.py points it at nothing, so no dataset face is pictured).
DEFAULT_DATASET_DIR = Path(os.environ.get("AGE_GENDER_DATASET_DIR") or PROJECT_ROOT.parent / "shared" / "datasets" / "UTKFace")

DATASET_FORMATS = ("utkface", "pixels-csv", "folder-csv")  # loaders in core.data.datasets
DETECTORS = ("yunet", "blazeface")  # face detectors of core.detect.build_detector
DEFAULT_DETECTOR = "yunet"  # for photos, batch and evaluation: finds turned and small faces (docs/detectors.md)
FULL_RANGE_MODES = ("auto", "always", "never")  # when BlazeFace adds its full-range model (core.detect.blazeface)
ARCHITECTURES = ("resnet", "mobilenetv2")  # builders in core.train.model.ARCHITECTURE_BUILDERS
LR_SCHEDULES = ("cosine", "plateau")  # see core.train.training


def _option(default, help: str, choices: tuple | None = None, low: float | None = None, high: float | None = None,
            path: bool = False, label: str = ""):
    """A Config field that users set: its help text, choices and range drive both the CLI flag
    (`python -m core train --NAME`) and the dashboard's forms, where `label` names it in plain
    words (default: the field's name). `path=True` marks a file on the server: the form accepts
    it only inside the folders the server shares."""
    return field(default=default, metadata={"help": help, "choices": choices, "low": low, "high": high, "path": path,
                                            "label": label})


def option_label(option: dataclasses.Field) -> str:
    """How a form names a user-set field: its plain-language label, else its name in words."""
    return option.metadata.get("label") or option.name.replace("_", " ").capitalize()


def user_options(cls) -> list[dataclasses.Field]:
    """The fields of a settings dataclass that users set (those declared with `_option`)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("help")]


@functools.cache
def option_types(cls) -> dict[str, type]:
    """Each field's value type, from its annotation (`float | None` gives float): what the CLI
    parses a flag's text as and what `validate_options` checks."""
    found = {}
    for name, hint in typing.get_type_hints(cls).items():
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        found[name] = hint
    return found


def validate_options(settings) -> None:
    """Raise ValueError naming the first user-set field of a settings dataclass whose value has
    the wrong type, lies outside its declared range or is not one of its choices. Every settings
    class calls it on creation, so the CLI, the forms and library callers refuse the same values."""
    kinds = option_types(type(settings))
    for option in user_options(type(settings)):
        value, meta, kind = getattr(settings, option.name), option.metadata, kinds[option.name]
        if value is None and option.default is None:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{option.name} must be {kind.__name__}, got {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ValueError(f"{option.name} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
        low, high = meta["low"], meta["high"]
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"{option.name} must be {bounds}, got {value!r}")


QUALITY_GRADES = ("poor", "good")  # worst first: `AnswerSettings.min_quality` compares by index


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are reported, whatever model gives them: the age interval's coverage, whether
    to abstain on poor faces, and an optional age check. Flags of `predict` and `batch`, and the
    pages' controls (see `core.analysis.results.face_result` for what each does)."""

    interval: float = _option(0.8, "share of true ages the age interval should contain, calibrated on the "
                                   "model's validation split", low=0.5, high=0.99, label="Age interval coverage")
    min_quality: str = _option("poor", "faces of lower quality get status 'uncertain' (good: abstain on poor "
                                       "faces; poor: report every face, marked)", choices=QUALITY_GRADES)
    age_threshold: float | None = _option(None, "age to check faces against: age_check is over (the whole "
                                                "interval is at or above it), under, or uncertain", low=0, high=MAX_AGE,
                                  label="Age threshold")

    def __post_init__(self):
        validate_options(self)


@dataclass
class Config:
    """Settings for one training run and for the model it produces."""

    # data (the defaults are the shipped model's recipe, see models/default/MODEL_CARD.md)
    image_size: int = _option(48, "input side in pixels", low=16, high=256, label="Input size (pixels)")
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = _option(42, "seed of the split, the shuffling, the initial weights and the augmentations", low=0, label="Random seed")
    # model
    architecture: str = _option("resnet", "network: our compact residual CNN or Keras' MobileNetV2 (from scratch)",
                                choices=ARCHITECTURES, label="Network")
    width: int = _option(24, "resnet: channels of the first stage (model size)", low=4, high=128, label="ResNet width (channels)")
    alpha: float = _option(0.5, "mobilenetv2: width multiplier", low=0.1, high=1.4, label="MobileNetV2 width multiplier")
    dropout: float = 0.2
    max_age: int = MAX_AGE  # age head predicts a distribution over 0..max_age
    # training
    epochs: int = _option(40, "number of epochs", low=1, high=1000, label="Epochs")
    batch_size: int = _option(64, "batch size", low=1, high=1024, label="Batch size")
    learning_rate: float = _option(3e-3, "peak learning rate", low=1e-6, high=1.0, label="Learning rate")
    weight_decay: float = 1e-4
    age_sigma: float = _option(2.5, "std-dev of the age label distribution (years)", low=0.1, high=20.0, label="Age label spread (years)")
    age_loss_weight: float = 1.0
    augment: bool = _option(True, "augment training images (flips, shifts, colour)", label="Flip, shift and recolour images")
    degrade: float = _option(0.0, "chance of each real-photo corruption per training image (blur, JPEG, noise, "
                                  "low resolution and light, colour cast, grey, occlusion bands, yaw); 0 = off",
                             low=0.0, high=1.0, label="Real-photo damage (share)")
    face_only: float = _option(0.0, "chance per training image of hiding everything outside the inner face (hair, "
                                     "ears, background) behind a flat colour, so gender is not read from the "
                                     "hairstyle; 0 = off", low=0.0, high=1.0, label="Hide hair and background (share)")
    balance: float = _option(0.0, "even out gender x age band x race within each training source: 0 = draw rows as "
                                  "they come, 1 = every such group as often as any other", low=0.0, high=1.0, label="Balance groups")
    realign: bool = _option(False, "re-crop training images with the project's own face detector and aligner "
                                   "(as photos are cropped in use) instead of the dataset's crops", label="Re-crop with our face finder")
    teacher: str = _option("", "knowledge distillation: CSV of cached teacher outputs (file, p_female, age; made by "
                                "tools/teacher_labels.py) mixed into the training split's targets; empty = off",
                           path=True, label="Teacher answers file (CSV)")
    teacher_weight: float = _option(0.5, "share of the teacher in each distilled target (0 = labels only, 1 = "
                                         "teacher only); used only with --teacher", low=0.0, high=1.0, label="Teacher weight")
    teacher_by_confidence: bool = _option(False, "weigh the teacher's gender opinion on each face by how sure it is "
                                                 "(|2 p_female - 1|), so where it hesitates (babies) the label leads; "
                                                 "used only with --teacher", label="Weigh the teacher's gender by its confidence")
    embedding_teacher: str = _option("", "feature distillation: .npz of cached face embeddings of the training images "
                                          "(made by tools/teacher_labels.py embed); a training-only head learns to "
                                          "point the same way; empty = off", path=True, label="Teacher embeddings file (.npz)")
    embedding_weight: float = _option(1.0, "weight of the embedding-matching loss (1 - cosine); used only with "
                                           "--embedding-teacher", low=0.0, high=100.0, label="Embedding weight")
    ema: float = _option(0.0, "average the weights as training goes (exponential moving average, this momentum per "
                              "step, e.g. 0.999 = about the last 1,000 steps): validation, the saved model and "
                              "early stopping use the average, which is steadier than the last step's weights; "
                              "0 = off", low=0.0, high=0.99999, label="Weight averaging (EMA momentum)")
    lr_schedule: str = _option("cosine", "learning-rate schedule: warm-up + cosine decay, or reduce on plateau",
                               choices=LR_SCHEDULES, label="Learning-rate schedule")
    early_stopping_patience: int = 8
    # inference
    flip_tta: bool = True  # average predictions of the image and its mirror

    def __post_init__(self):
        validate_options(self)
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise ValueError(f"val_fraction and test_fraction must be in [0, 1) with a sum below 1, got "
                             f"{self.val_fraction} and {self.test_fraction}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """Build from a dict, ignoring keys this version does not know (older/newer models)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


