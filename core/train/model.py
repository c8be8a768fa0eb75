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

A model lives in a run folder (file names in `core.runs`): `model.keras` (Keras native format),
`model.tflite` (the same network exported for LiteRT, which is what `core.inference` runs) and
`model.json` (input size, preprocessing, label conventions, the training `Config`, format version).
"""
from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..quiet import native_stderr_silenced
from .backend import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402
from keras import layers  # noqa: E402

from ..config import ARCHITECTURES, Config  # noqa: E402
from ..labels import GENDERS  # noqa: E402
from ..runs import LITERT_FILE, MODEL_FILE, SETTINGS_FILE, ModelError, model_folder, read_settings  # noqa: E402

FORMAT_VERSION = 1
PRODUCT_OUTPUTS = ("gender", "age")  # what a saved model answers; `embedding` exists only while training


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


ARCHITECTURE_BUILDERS = {"resnet": _resnet_features, "mobilenetv2": _mobilenet_features}
assert tuple(ARCHITECTURE_BUILDERS) == ARCHITECTURES, "core.config.ARCHITECTURES names the builders here"


def build_model(config: Config, embedding_size: int = 0) -> keras.Model:
    """A fresh, uncompiled multi-task model taking uint8-range RGB images of `config.image_size`;
    with `embedding_size` > 0 also the training-only `embedding` head (feature distillation)."""
    inputs = keras.Input((config.image_size, config.image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = ARCHITECTURE_BUILDERS[config.architecture](x, config)
    features = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(config.dropout)(features)
    outputs = {"gender": layers.Dense(1, activation="sigmoid", name="gender")(x),
               "age": layers.Dense(config.max_age + 1, activation="softmax", name="age")(x)}
    if embedding_size:  # feature distillation (core.train.training.EmbeddingLoss); not saved with the model
        outputs["embedding"] = layers.Dense(embedding_size, name="embedding")(features)
    return keras.Model(inputs, outputs, name="age_gender_net")


def save_atomically(model: keras.Model, path: Path) -> None:
    """Save to a temporary file, then rename: a Ctrl-C mid-save never leaves a truncated model."""
    path = Path(path)
    partial = path.with_name(f".partial-{path.name}")
    model.save(partial)
    os.replace(partial, path)


def export_litert(model: keras.Model, folder: Path) -> None:
    """Write the network as `model.tflite` (float32, any batch size) for TensorFlow-free inference.

    Float32 because it matches the Keras model to float rounding (see tests/test_inference.py);
    the network is small enough (3 MB) that float16 or int8 would save little."""
    size = model.inputs[0].shape[1]
    partial = Path(folder) / f".partial-{LITERT_FILE}"
    with native_stderr_silenced():
        model.export(str(partial), format="litert", verbose=False,
                     input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="image")])
    os.replace(partial, Path(folder) / LITERT_FILE)


@contextmanager
def _ctrl_c_deferred():
    """Hold a Ctrl-C (SIGINT) until the block ends: a Stop pressed while a checkpoint is being
    written (the LiteRT export takes seconds) must not leave model.keras without its export and
    settings. Only the main thread can handle signals; elsewhere the block simply runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda *args: pending.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            raise KeyboardInterrupt


def save_model(model: keras.Model, folder: Path, config: Config) -> None:
    """Write `model.keras`, its LiteRT export and its settings JSON into `folder`, together."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _ctrl_c_deferred():
        _save_all(model, folder, config)


def _save_all(model: keras.Model, folder: Path, config: Config) -> None:
    # An uncompiled twin sharing the layers: the file then holds weights only, no optimizer state,
    # and only the outputs the product reads (a distillation head stays behind).
    twin = keras.Model(model.inputs, {name: model.output[name] for name in PRODUCT_OUTPUTS}, name=model.name)
    save_atomically(twin, folder / MODEL_FILE)
    export_litert(twin, folder)
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
    folder = model_folder(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise ModelError(f"no model at {folder} (expected {MODEL_FILE} in that folder)")
    _, config = read_settings(folder)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"model file {model_path} is corrupt or not a Keras model ({type(exc).__name__})") from exc
    return model, config


def export_folder(folder: Path) -> Path:
    """(Re)write a run folder's `model.tflite` from its `model.keras` (e.g. a run trained before
    the LiteRT export existed); returns the file written."""
    model, _ = load_model(folder)
    export_litert(model, model_folder(folder))
    return model_folder(folder) / LITERT_FILE


class KerasNetwork:
    """A run's Keras model as a `core.inference.predictor.Network`: the reference its LiteRT
    export is checked against (`Predictor(folder, network=KerasNetwork(folder))`)."""

    def __init__(self, folder: Path):
        self._model, _ = load_model(folder)

    def __call__(self, images):
        out = self._model([images], training=False)
        return keras.ops.convert_to_numpy(out["age"]), keras.ops.convert_to_numpy(out["gender"])[:, 0]
