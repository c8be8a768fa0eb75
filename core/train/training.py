"""Training: data in memory at model resolution, a tf.data pipeline, and a run folder on disk.

A run folder (`--out`) ends up holding everything the dashboard and evaluation need:
`model.keras` + `model.json` (best epoch so far, written whenever validation improves, so an
interrupted run keeps its best model), `last.keras` (for `--resume`), `history.csv` (one row per
epoch, appended as training goes), `split.csv`, `labels.csv`, `config.json` (the run's settings,
written before the first epoch), and after training the test-split `metrics.json` and
`predictions.csv`.

A resumed run keeps its saved settings and split whatever options are passed (only `epochs` may
grow): a different image size or architecture cannot continue the saved weights, and a new split
would put images the model has already trained on into its test set.
"""
from __future__ import annotations

import csv
import json
import math
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .backend import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from ..analysis.pipeline import FaceFinder  # noqa: E402
from ..config import Config  # noqa: E402
from ..data.datasets import DatasetError, label_table, load_dataset, load_images, read_split, split_dataset  # noqa: E402
from ..detect import detector_for  # noqa: E402
from ..evaluate.calibrate import calibrate_images  # noqa: E402
from ..evaluate.evaluator import evaluate_run  # noqa: E402
from ..imaging.files import ImageError  # noqa: E402
from ..runs import CONFIG_FILE, HISTORY_FILE, LAST_FILE, MODEL_FILE, SETTINGS_FILE, SPLIT_FILE, TRAINING_LABELS_FILE  # noqa: E402
from .augment import augment_batch, degrade_images, hide_outside_face  # noqa: E402
from .model import build_model, save_atomically, save_model  # noqa: E402

STOPPED_EARLY = "training stopped before the first epoch finished: no model was saved; start again or --resume"


class TrainingStopped(RuntimeError):
    """Training was interrupted before any epoch finished, so the run folder holds no model."""


HISTORY_COLUMNS = [
    "epoch", "loss", "gender_loss", "age_loss", "gender_accuracy", "age_mae",
    "val_loss", "val_gender_loss", "val_age_loss", "val_gender_accuracy", "val_age_mae", "lr", "seconds",
]


@keras.saving.register_keras_serializable(package="core")
class AgeDistributionLoss(keras.losses.Loss):
    """Cross-entropy to a Gaussian label distribution around the true age, plus the L1 error of
    the distribution's expectation (so the predicted age itself is pulled towards the label).

    Targets are the age, or rows (age, teacher age, teacher weight w) when distilling (see
    `teacher_targets`): the target distribution is then (1 - w) x the Gaussian at the age + w x the
    Gaussian at the teacher's age, and the L1 term pulls towards (1 - w) x age + w x teacher age.
    With w = 0 both are exactly the plain loss."""

    def __init__(self, max_age: int = 116, sigma: float = 2.5, l1_weight: float = 0.1, name="age_distribution", **kwargs):
        super().__init__(name=name, **kwargs)
        self.max_age, self.sigma, self.l1_weight = max_age, sigma, l1_weight

    def call(self, y_true, y_pred):
        ages = tf.range(self.max_age + 1, dtype=tf.float32)
        true = tf.cast(y_true, tf.float32)
        if true.shape.rank == 2 and true.shape[-1] == 3:
            label, teacher, weight = true[:, 0:1], true[:, 1:2], true[:, 2:3]
        else:
            label = tf.reshape(true, [-1, 1])
            teacher, weight = label, tf.zeros_like(label)
        target = (1 - weight) * self._gaussian(ages, label) + weight * self._gaussian(ages, teacher)
        cross_entropy = -tf.reduce_sum(target * tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)), axis=1)
        expected = tf.linalg.matvec(y_pred, ages)
        return cross_entropy + self.l1_weight * tf.abs(expected - ((1 - weight) * label + weight * teacher)[:, 0])

    def _gaussian(self, ages, centre):
        density = tf.exp(-0.5 * tf.square((ages[None, :] - centre) / self.sigma))
        return density / tf.reduce_sum(density, axis=1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "max_age": self.max_age, "sigma": self.sigma, "l1_weight": self.l1_weight}


@keras.saving.register_keras_serializable(package="core")
def mae(y_true, y_pred):
    """Mean absolute error in years of the expected age (logged as `age_mae`)."""
    ages = tf.range(tf.shape(y_pred)[-1], dtype=tf.float32)
    true = tf.reshape(tf.cast(y_true, tf.float32), [tf.shape(y_pred)[0], -1])[:, 0]  # the label, also of (age, teacher, w) rows
    return tf.abs(tf.linalg.matvec(y_pred, ages) - true)


@keras.saving.register_keras_serializable(package="core")
class GenderAccuracy(keras.metrics.BinaryAccuracy):
    """Binary accuracy against the target rounded at 0.5: the label itself, also when a distilled
    target mixes it with a teacher's p_female at teacher_weight up to 0.5."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(tf.cast(tf.cast(y_true, tf.float32) >= 0.5, tf.float32), y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="core")
class EmbeddingLoss(keras.losses.Loss):
    """1 - cosine between the training-only `embedding` head and a teacher's embedding of the same
    image. Targets are rows (mask, embedding...): mask 0 (validation, test, images the teacher has
    no embedding for) contributes nothing, so validation loss stays the labels' loss."""

    def __init__(self, name="embedding_cosine", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        true = tf.cast(y_true, tf.float32)
        mask, target = true[:, 0], tf.math.l2_normalize(true[:, 1:], axis=1)
        return mask * (1.0 - tf.reduce_sum(target * tf.math.l2_normalize(y_pred, axis=1), axis=1))


def compile_model(model: keras.Model, config: Config) -> None:
    loss = {"gender": keras.losses.BinaryCrossentropy(), "age": AgeDistributionLoss(config.max_age, config.age_sigma)}
    weights = {"gender": 1.0, "age": config.age_loss_weight}
    if "embedding" in model.output:
        loss["embedding"], weights["embedding"] = EmbeddingLoss(), config.embedding_weight
    model.compile(
        optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay),
        loss=loss, loss_weights=weights,
        metrics={"gender": [GenderAccuracy(name="accuracy")], "age": [mae]},
    )


TEACHER_COLUMNS = ("file", "p_female", "age")


def load_teacher(path: str | Path) -> pd.DataFrame:
    """A teacher CSV (tools/teacher_labels.py) indexed by file: p_female and age; one-line errors."""
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
    teacher = teacher.dropna(subset=["p_female", "age"]).drop_duplicates("file").set_index("file")
    return teacher[["p_female", "age"]].astype(float)


def teacher_targets(table: pd.DataFrame, config: Config, teacher: pd.DataFrame | None = None) -> np.ndarray:
    """Knowledge distillation (`Config.teacher`): per row (teacher p_female, teacher age, weight).

    Why: UTKFace labels are hard (gender 0/1) and noisy (apparent ages, one number); teachers
    trained on other, larger data (face-api.js AgeGenderNet, the dlib-models networks, see
    tools/teacher_labels.py) carry what they learned there in soft answers, which a small
    student fits more easily and which generalise beyond UTKFace's framing. Their answers are
    computed once and cached, so the product never runs a teacher. Targets become
    (1 - w) x label + w x teacher for gender (see `make_pipeline`) and a mixture of Gaussians at
    the label and at the teacher's age for age (see `AgeDistributionLoss`), w = teacher_weight.

    Only training-split rows get w > 0 (validation and test stay scored against labels alone);
    training rows missing from the teacher CSV keep their labels (w = 0), counted and logged.
    Without a teacher every weight is 0 and training is exactly the plain recipe."""
    soft = np.zeros((len(table), 3), np.float32)
    soft[:, 0], soft[:, 1] = table["gender"].to_numpy(), table["age"].to_numpy()
    if not config.teacher:
        return soft
    teacher = load_teacher(config.teacher) if teacher is None else teacher
    train = (table["split"] == "train").to_numpy()
    known = table["file"].isin(teacher.index).to_numpy() & train
    rows = teacher.reindex(table["file"][known])
    soft[known, 0] = rows["p_female"].clip(0, 1).to_numpy()
    soft[known, 1] = rows["age"].clip(0, config.max_age).to_numpy()
    soft[known, 2] = config.teacher_weight
    print(f"teacher {config.teacher}: {known.sum()} of {train.sum()} training images distilled at weight "
          f"{config.teacher_weight}; {train.sum() - known.sum()} not in it keep their labels only", flush=True)
    return soft


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


def embedding_targets(table: pd.DataFrame, config: Config, teacher: pd.DataFrame | None) -> np.ndarray | None:
    """Feature distillation (`Config.embedding_teacher`): per row (mask, teacher embedding).

    Why: a face-recognition network trained on millions of faces in the wild (dlib's ResNet, see
    tools/teacher_labels.py) encodes what faces beyond UTKFace look like in 128 numbers per face,
    far more than one soft label carries; a head that must point its features the same way makes
    the small student learn features like the teacher's. Only training rows the teacher knows get
    mask 1. None without an embedding teacher (the model then has no such head)."""
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


def make_pipeline(images: np.ndarray, ages: np.ndarray, genders: np.ndarray, config: Config,
                  training: bool, soft: np.ndarray | None = None,
                  embeddings: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of (uint8-range float images, {"gender", "age"} targets); augmented when training.

    `soft` (rows of `teacher_targets`) distils: the gender target becomes (1 - w) x label +
    w x teacher p_female, and the age target the row (age, teacher age, w) that
    `AgeDistributionLoss` reads; without it w = 0 (plain labels). `embeddings` (rows of
    `embedding_targets`) adds the `embedding` target that `EmbeddingLoss` reads."""
    if soft is None:
        soft = np.stack([genders, ages, np.zeros(len(ages))], axis=1).astype(np.float32)
    weight = soft[:, 2].astype(np.float32)
    gender = (1 - weight) * genders.astype(np.float32) + weight * soft[:, 0]
    targets = {"gender": gender[:, None].astype(np.float32),
               "age": np.stack([ages.astype(np.float32), soft[:, 1], weight], axis=1).astype(np.float32)}
    if embeddings is not None:
        targets["embedding"] = embeddings
    data = tf.data.Dataset.from_tensor_slices((images, targets))
    if training:
        data = data.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(config.batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y),
                                             num_parallel_calls=tf.data.AUTOTUNE)
    if training and config.degrade > 0:
        data = data.map(lambda x, y: (degrade_images(x, config.degrade), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and config.face_only > 0:
        data = data.map(lambda x, y: (hide_outside_face(x, config.face_only), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and config.augment:
        data = data.map(lambda x, y: (augment_batch(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


class RunRecorder(keras.callbacks.Callback):
    """Appends each epoch to history.csv, prints a progress line, saves best and last models."""

    def __init__(self, out: Path, config: Config, monitor: str = "val_loss",
                 on_epoch: Callable[[dict], None] | None = None):
        super().__init__()
        self.out, self.config, self.monitor, self.on_epoch = out, config, monitor, on_epoch
        self.best = math.inf
        self.started = time.time()
        history = out / HISTORY_FILE
        if history.is_file():
            previous = pd.read_csv(history)
            if len(previous) and self.monitor in previous:
                self.best = float(previous[self.monitor].min())

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "seconds": round(time.time() - self.started, 1)}
        row.update({k: float(v) for k, v in logs.items() if k in HISTORY_COLUMNS})
        history = self.out / HISTORY_FILE
        new_file = not history.is_file()
        with history.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        improved = row.get(self.monitor, math.inf) < self.best
        if improved:
            self.best = row[self.monitor]
            save_model(self.model, self.out, self.config)
        save_atomically(self.model, self.out / LAST_FILE)
        print(
            f"epoch {row['epoch']:>3}/{self.config.epochs}  {row['seconds']:>6.1f}s  "
            f"loss {row.get('loss', float('nan')):.3f}  gender acc {row.get('gender_accuracy', float('nan')):.3f}  "
            f"age MAE {row.get('age_mae', float('nan')):.2f}  |  val gender acc "
            f"{row.get('val_gender_accuracy', float('nan')):.3f}  val age MAE {row.get('val_age_mae', float('nan')):.2f}"
            f"{'  *saved best' if improved else ''}",
            flush=True,
        )
        if self.on_epoch:
            self.on_epoch(row)


def cosine_schedule(config: Config, warmup_epochs: int = 2) -> Callable[[int, float], float]:
    """Linear warm-up then cosine decay to 2% of the peak learning rate, by epoch."""
    def rate(epoch: int, _current: float) -> float:
        if epoch < warmup_epochs:
            return config.learning_rate * (epoch + 1) / (warmup_epochs + 1)
        progress = (epoch - warmup_epochs) / max(1, config.epochs - warmup_epochs)
        return config.learning_rate * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
    return rate


def train(data: str | Path | pd.DataFrame, out: str | Path, config: Config | None = None, fmt: str | None = None,
          resume: bool = False, on_epoch: Callable[[dict], None] | None = None,
          evaluate_test: bool = True) -> dict:
    """Train a model on a dataset (path or loaded table) into the run folder `out`.

    Returns the test-split metrics (or an empty dict with `evaluate_test=False`). Ctrl-C stops
    training early but keeps the best model and still evaluates it; before the first epoch has
    finished there is no model, and it raises TrainingStopped saying so. `resume` continues the
    run in `out` with its saved settings and split (see the module docstring).
    """
    config = config or Config()  # a Config refuses values out of range itself (epochs 0, ...)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = data if isinstance(data, pd.DataFrame) else load_dataset(data, fmt)
    table = table.reset_index(drop=True)
    saved = saved_config(out) if resume else None
    if saved is not None:
        config = _keep_run_settings(saved, config)
        table = _with_saved_split(table, out)
    else:
        if resume:
            print(f"nothing to resume in {out}: starting a new run", flush=True)
        table["split"] = split_dataset(table, config)
    # read first: a missing or malformed teacher file fails before the images are loaded
    teacher = load_teacher(config.teacher) if config.teacher else None
    embedding_teacher = load_embedding_teacher(config.embedding_teacher) if config.embedding_teacher else None
    images, ok = load_images(table, config.image_size)
    table, images = table[ok].reset_index(drop=True), images[ok]
    if config.realign:
        images = realigned(table, images, config.image_size)
    if saved is None:
        table[["file", "split"]].to_csv(out / SPLIT_FILE, index=False)
        label_table(table).to_csv(out / TRAINING_LABELS_FILE, index=False)
        (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))

    parts = {name: (table["split"] == name).to_numpy() for name in ("train", "val", "test")}
    if parts["train"].sum() == 0 or parts["val"].sum() == 0:
        raise ValueError(f"too few images ({len(table)}) to make training and validation splits")
    soft = teacher_targets(table, config, teacher)
    embeddings = embedding_targets(table, config, embedding_teacher)
    pipeline = {name: make_pipeline(images[mask], table["age"].to_numpy()[mask], table["gender"].to_numpy()[mask],
                                    config, training=name == "train", soft=soft[mask],
                                    embeddings=None if embeddings is None else embeddings[mask])
                for name, mask in parts.items()}

    initial_epoch = 0
    if saved is not None and (out / LAST_FILE).is_file() and (out / HISTORY_FILE).is_file():
        model = keras.saving.load_model(out / LAST_FILE)
        initial_epoch = len(pd.read_csv(out / HISTORY_FILE))
        print(f"resuming {out} after epoch {initial_epoch}", flush=True)
    else:
        if saved is not None:
            print(f"{out} has no checkpoint (it stopped before its first epoch finished): training it "
                  f"from epoch 1 with its saved settings and split", flush=True)
        (out / HISTORY_FILE).unlink(missing_ok=True)
        model = build_model(config, 0 if embedding_teacher is None else embedding_teacher.shape[1])
        compile_model(model, config)
    print(f"training on {parts['train'].sum()} images, validating on {parts['val'].sum()}, "
          f"testing on {parts['test'].sum()}; {model.count_params():,} parameters", flush=True)

    callbacks = [
        RunRecorder(out, config, on_epoch=on_epoch),
        keras.callbacks.EarlyStopping(patience=config.early_stopping_patience, restore_best_weights=True),
        keras.callbacks.LearningRateScheduler(cosine_schedule(config)) if config.lr_schedule == "cosine"
        else keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=3, min_lr=config.learning_rate / 100),
    ]
    try:
        model.fit(pipeline["train"], validation_data=pipeline["val"], epochs=config.epochs,
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=0,
                  shuffle=False)  # the pipeline shuffles; this silences Keras' warning that it cannot
    except KeyboardInterrupt:
        if not (out / MODEL_FILE).is_file():
            raise TrainingStopped(STOPPED_EARLY) from None
        print("interrupted: keeping the best model saved so far", flush=True)
    calibrate_images(out, images[parts["val"]], table["age"].to_numpy()[parts["val"]],
                     table["gender"].to_numpy()[parts["val"]], f"validation split of this run ({int(parts['val'].sum())} faces)")
    if not evaluate_test or parts["test"].sum() == 0:
        return {}
    return evaluate_run(out, table[parts["test"]], images[parts["test"]])


def realigned(table: pd.DataFrame, images: np.ndarray, size: int) -> np.ndarray:
    """Every image re-cropped by the project's own detector and aligner (`Config.realign`), i.e.
    framed as the model sees faces in photos rather than as the dataset's makers cropped them.
    Images where no face is found (and pixel-CSV rows, which have no file) keep their crop."""
    from concurrent.futures import ThreadPoolExecutor

    finder, out = FaceFinder(detector_for("photos"), size), images.copy()  # photos' detector and aligner

    def one(i: int) -> bool:
        path = table["path"].iloc[i]
        if not path:
            return False
        try:
            found = finder.find(Path(path))
        except ImageError:
            return False
        if found.faces:
            out[i] = found.crops[0]
        return bool(found.faces)

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = sum(pool.map(one, range(len(table))))
    print(f"realigned {found} of {len(table)} images with the project's detector; the others keep their crop",
          flush=True)
    return out


def saved_config(run: Path) -> Config | None:
    """The Config a run folder was started with: its config.json, else (runs older than that file)
    the one in its best model's settings; None for a folder where no run started."""
    for name, key in ((CONFIG_FILE, None), (SETTINGS_FILE, "config")):
        if (run / name).is_file():
            settings = json.loads((run / name).read_text())
            return Config.from_dict(settings[key] if key else settings)
    return None


def _keep_run_settings(saved: Config, asked: Config) -> Config:
    """The saved settings with only `epochs` taken from `asked`; warns about each other value ignored."""
    run, wanted = saved.to_dict(), asked.to_dict()
    ignored = [f"{name}={value!r} (the run has {run[name]!r})" for name, value in wanted.items()
               if name != "epochs" and value != run[name]]
    if ignored:
        warnings.warn(f"resuming with the run's saved settings; ignored: {', '.join(ignored)}", UserWarning, stacklevel=3)
    return saved.replace(epochs=asked.epochs)


def _with_saved_split(table: pd.DataFrame, run: Path) -> pd.DataFrame:
    """`table` restricted to the run's split.csv, each row in its saved split (never drawn again)."""
    split = read_split(run)
    if split is None:
        raise DatasetError(f"{run} has no {SPLIT_FILE}, so it cannot be resumed without a new split; "
                           f"train into a new folder instead")
    saved = split.drop_duplicates("file").set_index("file")["split"]  # runs made before loaders dropped repeats
    table = table.assign(split=table["file"].map(saved))
    unknown = table["split"].isna()
    if unknown.any():
        warnings.warn(f"{unknown.sum()} image(s) of the dataset are not in {run / SPLIT_FILE} and are left out "
                      f"of the resumed run", UserWarning, stacklevel=3)
    return table[~unknown].reset_index(drop=True)
