"""The multi-task network (gender + age) and how it is saved and loaded.

Architecture: a compact residual CNN trained from scratch (no downloadable ImageNet weights
here); Keras' MobileNetV2, also from scratch, is the alternative `bench/compare.py` measures it
against. Two heads share the features:
- `gender`: probability that the face is female (sigmoid).
- `age`: a probability distribution over ages 0..max_age (softmax). It is trained against a
  Gaussian around the labelled age (label-distribution learning, as in DLDL), and the predicted
  age is its expectation. Noisy "apparent age" labels make a soft target more honest than a
  one-hot class, and the expectation gives a smooth regression value without the instability
  of a bare L1/L2 regression head.

A model lives in a folder: `model.keras` (Keras native format) and `model.json` (input size,
preprocessing, label conventions, the training `Config`, format version).
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from .config import GENDERS, Config  # noqa: E402

MODEL_FILE = "model.keras"
SETTINGS_FILE = "model.json"
FORMAT_VERSION = 1


class ModelError(RuntimeError):
    """A model folder is missing, incomplete or unreadable."""


def _conv_bn(x, filters: int, strides: int, config: Config, activate: bool = True):
    x = layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False,
        kernel_regularizer=keras.regularizers.l2(config.weight_decay),
    )(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if activate else x


def _residual_block(x, filters: int, strides: int, config: Config):
    shortcut = x
    y = _conv_bn(x, filters, strides, config)
    y = _conv_bn(y, filters, 1, config, activate=False)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def _resnet_features(x, config: Config):
    x = _conv_bn(x, config.width, 2, config)  # stem: halve the resolution at once
    for stage, multiplier in enumerate((1, 2, 4, 8)):
        x = _residual_block(x, config.width * multiplier, 1 if stage == 0 else 2, config)
    return x


def _mobilenet_features(x, config: Config):
    size = config.image_size
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=config.alpha,
                                              include_top=False, weights=None)
    # Keras builds it with batch-norm momentum 0.999, tuned for fine-tuning pretrained weights; from
    # scratch its inference statistics then lag training so far that a short run predicts one class.
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.99  # the Keras default, as in our resnet
    return backbone(x)


ARCHITECTURES = {"resnet": _resnet_features, "mobilenetv2": _mobilenet_features}


def build_model(config: Config) -> keras.Model:
    """A fresh, uncompiled multi-task model taking uint8-range RGB images of `config.image_size`."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.architecture!r}; choose from {sorted(ARCHITECTURES)}")
    inputs = keras.Input((config.image_size, config.image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = ARCHITECTURES[config.architecture](x, config)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(config.dropout)(x)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(x)
    age = layers.Dense(config.max_age + 1, activation="softmax", name="age")(x)
    return keras.Model(inputs, {"gender": gender, "age": age}, name="age_gender_net")


def save_atomically(model: keras.Model, path: Path) -> None:
    """Save to a temporary file, then rename: a Ctrl-C mid-save never leaves a truncated model."""
    path = Path(path)
    partial = path.with_name(f".partial-{path.name}")
    model.save(partial)
    os.replace(partial, path)


def save_model(model: keras.Model, folder: Path, config: Config) -> None:
    """Write `model.keras` and its settings JSON into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # An uncompiled twin sharing the layers: the file then holds weights only, no optimizer state.
    save_atomically(keras.Model(model.inputs, model.output, name=model.name), folder / MODEL_FILE)
    settings = {
        "format_version": FORMAT_VERSION,
        "input": {"size": config.image_size, "channels": "RGB", "dtype": "uint8 0-255",
                  "framing": "aligned face crop, as UTKFace's aligned & cropped images"},
        "outputs": {"gender": "probability of female (1 = female, 0 = male)",
                    "age": f"probability over ages 0..{config.max_age}; predicted age = expectation"},
        "genders": list(GENDERS),
        "config": config.to_dict(),
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "keras_version": keras.__version__,
    }
    partial = folder / f".partial-{SETTINGS_FILE}"
    partial.write_text(json.dumps(settings, indent=2))
    os.replace(partial, folder / SETTINGS_FILE)


def load_model(folder: Path) -> tuple[keras.Model, Config]:
    """Load a model folder written by `save_model`; raises ModelError with a clear message."""
    folder = Path(folder)
    if folder.is_file() and folder.name == MODEL_FILE:
        folder = folder.parent
    model_path, settings_path = folder / MODEL_FILE, folder / SETTINGS_FILE
    if not model_path.is_file():
        raise ModelError(f"no model at {folder} (expected {MODEL_FILE} in that folder)")
    try:
        settings = json.loads(settings_path.read_text())
        config = Config.from_dict(settings["config"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"model settings {settings_path} missing or unreadable: {exc}") from exc
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"cannot load {model_path}: {exc}") from exc
    return model, config
