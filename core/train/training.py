"""Training: one or several datasets in, a run folder on disk out.

The data (`core.data.sources`) are split per source, their faces cropped at model resolution
(`core.data.faces`: photos found and aligned by the product's own pipeline, once, cached), each
row's targets built (`core.train.targets`: labels, missing ones masked, brackets, teachers),
and batches drawn by each source's share (`core.train.pipeline`) for the losses of
`core.train.losses`.

A run folder (`--out`) ends up holding everything the dashboard and evaluation need:
`model.keras` + `model.json` (best epoch so far, written whenever validation improves, so an
interrupted run keeps its best model), `last.keras` (for `--resume`), `history.csv` (one row per
epoch, appended as training goes), `split.csv` (each row's split and source), `labels.csv`,
`sources.json` (the datasets and their shares), `config.json` (the run's settings, written
before the first epoch), and after training `calibration.json` and the test split's
`metrics.json` and `predictions.csv`.

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
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .backend import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from ..config import Config  # noqa: E402
from ..data.datasets import DatasetError, label_table, read_split, split_dataset  # noqa: E402
from ..data.faces import face_crops  # noqa: E402
from ..data.sources import DataSource, load_sources, sampling_weights  # noqa: E402
from ..evaluate.calibrate import calibrate_images  # noqa: E402
from ..evaluate.evaluator import evaluate_run  # noqa: E402
from ..runs import CONFIG_FILE, HISTORY_FILE, LAST_FILE, MODEL_FILE, RUN_FILES, SETTINGS_FILE, SOURCES_FILE, SPLIT_FILE, TRAINING_LABELS_FILE, is_run  # noqa: E402
from .losses import compile_model  # noqa: E402
from .model import build_model, save_atomically, save_model  # noqa: E402
from .pipeline import make_pipeline  # noqa: E402
from .targets import build_targets, load_embedding_teacher, load_teacher  # noqa: E402

STOPPED_EARLY = "training stopped before the first epoch finished: no model was saved; start again or --resume"


class TrainingStopped(RuntimeError):
    """Training was interrupted before any epoch finished, so the run folder holds no model."""


HISTORY_COLUMNS = [
    "epoch", "loss", "gender_loss", "age_loss", "gender_accuracy", "age_mae",
    "val_loss", "val_gender_loss", "val_age_loss", "val_gender_accuracy", "val_age_mae", "lr", "seconds",
]


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


def train(data: str | Path | pd.DataFrame | Sequence[DataSource], out: str | Path, config: Config | None = None,
          fmt: str | None = None, resume: bool = False, on_epoch: Callable[[dict], None] | None = None,
          evaluate_test: bool = True, overwrite: bool = False) -> dict:
    """Train a model on one dataset (a path, with `fmt` or detected), several (`DataSource`s),
    or a table already loaded (by `load_sources`), into the run folder `out`.

    Returns the test-split metrics (or an empty dict with `evaluate_test=False`). Ctrl-C stops
    training early but keeps the best model and still evaluates it; before the first epoch has
    finished there is no model, and it raises TrainingStopped saying so. `resume` continues the
    run in `out` with its saved settings and split (see the module docstring); a folder that
    already holds a run is refused unless resumed or `overwrite` (its run files are then removed
    first, nothing else of the folder), so a finished model is never replaced by mistake.
    """
    config = config or Config()  # a Config refuses values out of range itself (epochs 0, ...)
    out = Path(out)
    if resume and saved_config(out) is None:
        raise ValueError(f"nothing to resume in {out}: no run was started there (train without --resume)")
    if not resume and is_run(out):
        if not overwrite:
            raise ValueError(f"{out} already holds a run: --resume continues it, --overwrite replaces it")
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    sources = _sources(data, fmt)
    table = data if isinstance(data, pd.DataFrame) else load_sources(sources)
    if "source" not in table:  # a table from one loader: its photos are those of a labelled folder
        table = table.assign(source=sources[0].name, photo=table.attrs.get("format") == "folder-csv")
    out.mkdir(parents=True, exist_ok=True)
    table = table.reset_index(drop=True)
    saved = saved_config(out) if resume else None
    if saved is not None:
        config = _keep_run_settings(saved, config)
        table = _with_saved_split(table, out)
    else:
        table["split"] = split_dataset(table, config)
    # read first: a missing or malformed teacher file fails before the images are loaded
    teacher = load_teacher(config.teacher) if config.teacher else None
    embedding_teacher = load_embedding_teacher(config.embedding_teacher) if config.embedding_teacher else None
    images, ok = face_crops(table, config.image_size, config.realign)
    table, images = table[ok].reset_index(drop=True), images[ok]
    if saved is None:
        _write_run_files(out, table, config, sources)

    parts = {name: (table["split"] == name).to_numpy() for name in ("train", "val", "test")}
    if parts["train"].sum() == 0 or parts["val"].sum() == 0:
        raise ValueError(f"too few images ({len(table)}) to make training and validation splits")
    targets = build_targets(table, config, teacher, embedding_teacher)
    train_rows = table[parts["train"]].reset_index(drop=True)
    weights = sampling_weights(train_rows, sources, config.balance)
    weights = None if np.allclose(weights, weights.mean()) else weights

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
        keras.utils.set_random_seed(config.seed)  # the same settings give the same initial weights and augmentations
        model = build_model(config, 0 if embedding_teacher is None else embedding_teacher.shape[1])
        compile_model(model, config)
    print(f"training on {parts['train'].sum()} images, validating on {parts['val'].sum()}, "
          f"testing on {parts['test'].sum()}; {model.count_params():,} parameters"
          + (f"; sources {_shares(train_rows, weights)}" if train_rows["source"].nunique() > 1 else ""), flush=True)

    training, steps = make_pipeline(images[parts["train"]], targets[parts["train"]], config, training=True,
                                    weights=weights, first_epoch=initial_epoch)
    validation, _ = make_pipeline(images[parts["val"]], targets[parts["val"]], config, training=False)
    # With weight averaging the averaged weights are swapped in for validation and at each epoch's end,
    # so RunRecorder saves them and early stopping judges them; this callback must come first.
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema > 0 else []
    callbacks += [
        RunRecorder(out, config, on_epoch=on_epoch),
        keras.callbacks.EarlyStopping(patience=config.early_stopping_patience, restore_best_weights=True),
        keras.callbacks.LearningRateScheduler(cosine_schedule(config)) if config.lr_schedule == "cosine"
        else keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=3, min_lr=config.learning_rate / 100),
    ]
    try:
        model.fit(training, validation_data=validation, epochs=config.epochs, steps_per_epoch=steps,
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=0,
                  shuffle=False)  # the pipeline draws each epoch's rows; this silences Keras' warning that it cannot
    except KeyboardInterrupt:
        if not (out / MODEL_FILE).is_file():
            raise TrainingStopped(STOPPED_EARLY) from None
        print("interrupted: keeping the best model saved so far", flush=True)
    val = table[parts["val"]]
    ages = _exact_ages(val)
    calibrate_images(out, images[parts["val"]], ages, val["gender"].to_numpy(),
                     f"validation split of this run ({int((ages >= 0).sum())} faces with an exact age, "
                     f"{int((val['gender'] >= 0).sum())} with a gender)")
    if not evaluate_test or parts["test"].sum() == 0:
        return {}
    return evaluate_run(out, table[parts["test"]], images[parts["test"]])


def _sources(data, fmt: str | None) -> list[DataSource]:
    """The `DataSource`s behind `train`'s `data` argument."""
    if isinstance(data, pd.DataFrame):
        listed = data.attrs.get("sources")
        if listed:
            return [DataSource(item["path"], None, item["weight"], item["name"]) for item in listed]
        return [DataSource(data.attrs.get("source") or "data", None, None, "data")]
    if isinstance(data, (str, Path)):
        return [DataSource(str(data), fmt)]
    return list(data)


def _exact_ages(table: pd.DataFrame) -> np.ndarray:
    """Each row's age when it is exact, else -1 (a bracket or no age: not for fitting intervals)."""
    exact = (table["age_lo"] == table["age_hi"]).to_numpy()
    return np.where(exact, table["age"].to_numpy(), -1)


def _shares(rows: pd.DataFrame, weights: np.ndarray | None) -> str:
    """"utk 70 %, mebeauty 30 %": each source's share of the training draws."""
    shares = (pd.Series(weights if weights is not None else np.ones(len(rows)), index=rows.index)
              .groupby(rows["source"]).sum())
    return ", ".join(f"{name} {share / shares.sum():.0%}" for name, share in shares.items())


def _write_run_files(out: Path, table: pd.DataFrame, config: Config, sources: Sequence[DataSource]) -> None:
    """What a new run records before its first epoch: split (with each row's source), labels,
    the sources and the settings."""
    columns = ["file", "split", "source"] if table["source"].nunique() > 1 else ["file", "split"]
    table[columns].to_csv(out / SPLIT_FILE, index=False)
    label_table(table).to_csv(out / TRAINING_LABELS_FILE, index=False)
    listed = table.attrs.get("sources") or [source.to_dict() for source in sources]
    (out / SOURCES_FILE).write_text(json.dumps(listed, indent=2))
    (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))


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
