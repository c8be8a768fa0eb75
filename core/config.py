"""All tunable settings in one place.

`Config` drives data splitting, the model, training and inference. A trained model stores the
`Config` it was trained with in its settings JSON, so inference always preprocesses exactly as
training did.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default"
DEFAULT_DATASET_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "UTKFace"

GENDERS = ("male", "female")  # index = UTKFace gender code
RACES = ("White", "Black", "Asian", "Indian", "Others")  # index = UTKFace race code
AGE_BANDS = ((0, 12, "0-12"), (13, 19, "13-19"), (20, 39, "20-39"), (40, 59, "40-59"), (60, 200, "60+"))


@dataclass
class Config:
    """Settings for one training run and for the model it produces."""

    # data (the defaults are the shipped model's recipe, see models/default/MODEL_CARD.md)
    image_size: int = 48
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 42
    # model
    architecture: str = "resnet"  # "resnet" (our compact residual CNN) or "mobilenetv2" (Keras, from scratch)
    width: int = 24  # resnet: channels of the first stage; later stages double it
    alpha: float = 0.5  # mobilenetv2: width multiplier
    dropout: float = 0.2
    max_age: int = 116  # age head predicts a distribution over 0..max_age
    # training
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    age_sigma: float = 2.5  # std-dev (years) of the label distribution around the true age
    age_loss_weight: float = 1.0
    augment: bool = True
    lr_schedule: str = "cosine"  # "cosine" (warm-up + cosine decay) or "plateau" (reduce on plateau)
    early_stopping_patience: int = 8
    # inference
    flip_tta: bool = True  # average predictions of the image and its mirror

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
