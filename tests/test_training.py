import json
import shutil

import numpy as np
import pandas as pd
import pytest

from core.config import Config
from core.inference.predictor import Predictor
from core.train.model import build_model, load_model, save_model
from core.train.training import HISTORY_COLUMNS, HISTORY_FILE, RunRecorder, TrainingStopped, cosine_schedule, train
from testkit.datasets import synthetic_face, write_utkface_folder

CONFIG = Config(image_size=32, width=8, epochs=5, batch_size=16, learning_rate=3e-3, augment=True,
                val_fraction=0.2, test_fraction=0.2, early_stopping_patience=10)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    write_utkface_folder(data, n=80)
    out = tmp_path_factory.mktemp("run")
    metrics = train(data, out, CONFIG)
    return out, metrics


def test_training_lowers_the_loss_and_writes_history(run):
    out, _ = run
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["loss"].iloc[-1] < 0.95 * history["loss"].iloc[0]  # 0.81-0.91 over repeated runs
    assert history["val_gender_accuracy"].between(0, 1).all() and (history["val_age_mae"] > 0).all()


def test_run_folder_holds_a_loadable_model_and_its_test_results(run):
    out, metrics = run
    for name in ("model.keras", "model.json", "last.keras", "split.csv", "labels.csv", "metrics.json", "predictions.csv",
                 "calibration.json"):
        assert (out / name).is_file(), name
    split = pd.read_csv(out / "split.csv")
    assert set(split["split"]) == {"train", "val", "test"}
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions["file"]) == set(split.loc[split["split"] == "test", "file"])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["n"] == len(predictions) == metrics["n"]
    assert saved["age_mae"] == pytest.approx((predictions["age_pred"] - predictions["age_true"]).abs().mean(), abs=0.01)
    predictor = Predictor(out)
    assert predictor.image_size == 32 and predictor.config.width == 8
    val_faces = int((split["split"] == "val").sum())
    assert f"({val_faces} faces with an exact age" in predictor.calibration.source  # ranges fitted on validation, tested on test
    assert predictions["age_low"].notna().all() and "age_interval" in saved
    settings = json.loads((out / "model.json").read_text())
    assert settings["input"]["size"] == 32 and settings["genders"] == ["male", "female"]


def test_resume_continues_from_the_last_epoch_with_the_runs_settings_and_split(run, tmp_path):
    import shutil

    out, _ = run
    copy = tmp_path / "resumed"
    shutil.copytree(out, copy)
    data = copy.parent / "data"
    write_utkface_folder(data, n=80)
    other = CONFIG.replace(epochs=6, image_size=48, seed=1, test_fraction=0.5)
    with pytest.warns(UserWarning, match=r"ignored: image_size=48 \(the run has 32\), test_fraction=0.5 \(the run has 0.2\), "
                                         r"seed=1 \(the run has 42\)$"):
        train(data, copy, other, resume=True, evaluate_test=False)
    assert pd.read_csv(copy / "history.csv")["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert (copy / "split.csv").read_text() == (out / "split.csv").read_text()
    assert json.loads((copy / "model.json").read_text())["config"]["image_size"] == 32


def test_zero_epochs_is_refused_before_anything_is_loaded(tmp_path):
    with pytest.raises(ValueError, match=r"^epochs must be between 1 and 1000, got 0$"):
        train(tmp_path / "no-such-dataset", tmp_path / "run", CONFIG.replace(epochs=0))
    assert not (tmp_path / "run").exists()


def _stop_after(monkeypatch, epochs_done: int) -> None:
    """Make training see Ctrl-C (the dashboard's Stop) in the first batch after `epochs_done` epochs."""
    def on_train_batch_end(self, batch, logs=None):
        history = self.out / HISTORY_FILE
        if (len(history.read_text().splitlines()) - 1 if history.is_file() else 0) >= epochs_done:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "on_train_batch_end", on_train_batch_end)


def test_stop_before_the_first_epoch_says_so_and_resume_keeps_the_saved_settings(tmp_path, monkeypatch):
    write_utkface_folder(tmp_path / "data", n=40)
    out = tmp_path / "run"
    _stop_after(monkeypatch, 0)
    with pytest.raises(TrainingStopped, match="^training stopped before the first epoch finished: no model was saved; "
                                              "start again or --resume$"):
        train(tmp_path / "data", out, CONFIG.replace(epochs=2))
    assert not (out / "model.keras").exists()
    split = (out / "split.csv").read_text()
    monkeypatch.undo()  # the run was killed before any checkpoint: --resume trains it from epoch 1, same split
    with pytest.warns(UserWarning, match=r"image_size=48 \(the run has 32\)"):
        train(tmp_path / "data", out, CONFIG.replace(epochs=1, image_size=48), resume=True, evaluate_test=False)
    assert (out / "split.csv").read_text() == split
    assert json.loads((out / "model.json").read_text())["config"]["image_size"] == 32
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1]


def test_stop_after_an_epoch_keeps_and_scores_the_best_model(tmp_path, monkeypatch):
    write_utkface_folder(tmp_path / "data", n=40)
    out = tmp_path / "run"
    _stop_after(monkeypatch, 1)
    metrics = train(tmp_path / "data", out, CONFIG.replace(epochs=3))
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1]
    assert (out / "model.keras").is_file() and metrics["n"] == len(pd.read_csv(out / "predictions.csv")) > 0


def test_cli_train_explains_a_stop_before_the_first_epoch(tmp_path, monkeypatch, capsys):
    from core import cli
    from core.train import training

    def stopped(*args, **kwargs):
        raise TrainingStopped(training.STOPPED_EARLY)

    write_utkface_folder(tmp_path / "data", n=4)
    monkeypatch.setattr(training, "train", stopped)
    assert cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {training.STOPPED_EARLY}"
    monkeypatch.undo()
    assert cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--epochs", "0"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: epochs must be between 1 and 1000, got 0"


def test_cosine_schedule_warms_up_then_decays():
    config = Config(learning_rate=1.0, epochs=10)
    rates = [cosine_schedule(config)(epoch, 0.0) for epoch in range(10)]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(rates[2:], rates[3:]))
    assert rates[-1] >= 0.02


def test_predictor_matches_batch_and_single_predictions(tiny_model_dir):
    predictor = Predictor(tiny_model_dir)
    crops = np.random.default_rng(0).integers(0, 255, (5, 50, 50, 3), dtype=np.uint8)
    ages, p_female = predictor.predict_arrays(predictor.prepare(list(crops)))
    assert ages.shape == (5,) and ((p_female >= 0) & (p_female <= 1)).all()
    assert ((ages >= 0) & (ages <= 116)).all()
    single = predictor.predict_one(crops[3])
    assert single.age == pytest.approx(ages[3], abs=1e-3) and single.p_female == pytest.approx(p_female[3], abs=1e-5)
    assert predictor.predict_arrays(np.zeros((0, 32, 32, 3), np.uint8))[0].shape == (0,)


def test_mobilenetv2_option_saves_loads_and_predicts_like_the_trained_model(tmp_path):
    config = Config(architecture="mobilenetv2", alpha=0.35, image_size=32)
    model = build_model(config)
    assert "mobilenetv2" in [layer.name.split("_")[0] for layer in model.layers]
    save_model(model, tmp_path, config)
    crops = np.random.default_rng(1).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    expected = model(crops.astype("float32"), training=False)
    predictor = Predictor(tmp_path, flip_tta=False)
    assert predictor.config.architecture == "mobilenetv2" and predictor.config.alpha == 0.35
    loaded, _ = load_model(tmp_path)
    backbone = next(layer for layer in loaded.layers if layer.name.startswith("mobilenetv2"))
    momenta = {layer.momentum for layer in backbone.layers if layer.__class__.__name__ == "BatchNormalization"}
    assert momenta == {0.99}  # not Keras' fine-tuning value 0.999, which breaks training from scratch
    ages, p_female = predictor.predict_arrays(crops)
    assert p_female == pytest.approx(np.asarray(expected["gender"])[:, 0], abs=1e-5)
    assert ages == pytest.approx(np.asarray(expected["age"]) @ np.arange(117), abs=1e-3)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="architecture must be one of resnet, mobilenetv2, got 'vgg'"):
        build_model(Config(architecture="vgg"))


def test_realign_recrops_faces_with_our_detector_and_keeps_the_rest(tmp_path, monkeypatch):
    """Config.realign: real crops are re-framed by detector + aligner (as in photos); images
    without a face (synthetic stripes) keep their crop. The real crops are astronaut variants
    saved under UTKFace names, so no dataset is needed."""
    from PIL import Image

    from core.data.datasets import load_dataset, load_images
    from core.data.faces import face_crops
    from core.detect import detector_for
    from core.detect.align import align_face
    from core.imaging.files import load_image
    from testkit.faces import astronaut_crops

    monkeypatch.setenv("AGE_GENDER_CACHE_DIR", str(tmp_path / "cache"))
    write_utkface_folder(tmp_path / "synthetic", n=3)
    (tmp_path / "real").mkdir()
    for i, crop in enumerate(astronaut_crops(4, seed=5)):
        Image.fromarray(crop).save(tmp_path / "real" / f"40_1_0_2017011700000000{i}.jpg.chip.jpg", quality=95)
    real = load_dataset(tmp_path / "real")
    table = pd.concat([real, load_dataset(tmp_path / "synthetic")], ignore_index=True)
    images, ok = load_images(table, 48, progress=False)
    assert ok.all()
    out, found = face_crops(table, 48, realign=True)
    assert found.all() and np.array_equal(out[4:], images[4:])
    detector = detector_for("photos")
    for i in range(4):
        photo = load_image(table["path"].iloc[i])
        assert np.array_equal(out[i], align_face(photo, detector.detect(photo)[0], 48))
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 4 and len(list((tmp_path / "cache").rglob("*.none"))) == 3
    again, _ = face_crops(table, 48, realign=True)  # from the cache
    assert np.array_equal(again, out)


def test_face_only_hides_the_hair_and_background_of_the_chosen_crops_and_keeps_the_face():
    from core.train.augment import FACE_ELLIPSE, hide_outside_face

    images = np.stack([synthetic_face(30, i % 2, seed=i) for i in range(64)]).astype(np.float32)
    size = images.shape[1]
    line = (np.arange(size) + 0.5) / size
    cx, cy, half_width, half_height = FACE_ELLIPSE
    inside = ((line[None, :] - cx) / half_width) ** 2 + ((line[:, None] - cy) / half_height) ** 2 <= 1
    assert 0.6 < inside.mean() < 0.7 and inside[size // 2, size // 2] and not inside[0, 0]
    np.testing.assert_array_equal(hide_outside_face(images, 0.0).numpy(), images)
    hidden = hide_outside_face(images, 1.0).numpy()
    np.testing.assert_array_equal(hidden[:, inside], images[:, inside])  # the face is untouched
    outside = hidden[:, ~inside]  # (n, pixels, 3): one flat colour per image
    assert (np.ptp(outside, axis=1) == 0).all() and outside.min() >= 0 and outside.max() <= 255
    assert not np.array_equal(hidden[:, ~inside], images[:, ~inside])
    some = hide_outside_face(images, 0.5).numpy()
    changed = (some != images).any(axis=(1, 2, 3))
    assert 16 < changed.sum() < 48  # about half of the 64 crops


def test_training_pipeline_hides_the_hair_when_asked():
    from core.train.pipeline import make_pipeline
    from core.train.targets import Targets

    images = np.stack([synthetic_face(30, i % 2, seed=i) for i in range(8)])
    targets = Targets(np.tile([[0, 1, 0]], (8, 1)).astype(np.float32), np.tile([[30, 30, 30, 0, 1]], (8, 1)).astype(np.float32))
    batch, _ = next(iter(make_pipeline(images, targets, Config(batch_size=8, face_only=1.0, augment=False),
                                       training=True)[0]))
    corners = batch.numpy()[:, :3, :3].reshape(8, -1, 3)
    assert (np.ptp(corners, axis=1) == 0).all()  # the corners are outside the face: flat
    assert not np.array_equal(batch.numpy(), images.astype(np.float32))


def test_a_finished_run_is_replaced_only_when_asked(tmp_path, capsys):
    from core import cli

    write_utkface_folder(tmp_path / "data", n=24)
    args = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--image-size", "32",
            "--width", "8", "--epochs", "1", "--batch-size", "16"]
    assert cli.main(args) == 0
    model = (tmp_path / "run" / "model.keras").read_bytes()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    assert cli.main(args) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"error: {tmp_path / 'run'} already holds a run: --resume continues it, --overwrite replaces it"
    assert (tmp_path / "run" / "model.keras").read_bytes() == model  # untouched
    assert cli.main(args + ["--overwrite"]) == 0
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 1
    assert cli.main(args + ["--overwrite", "--resume"]) == 1
    assert cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "empty"), "--resume"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"error: nothing to resume in {tmp_path / 'empty'}: no run was started there (train without --resume)"
    assert not (tmp_path / "empty").exists()


def test_weight_averaging_saves_and_validates_the_average_not_the_last_step(tmp_path):
    import keras
    data = tmp_path / "data"
    write_utkface_folder(data, n=60)
    config = CONFIG.replace(epochs=3, ema=0.99)
    out = tmp_path / "run"
    train(data, out, config, evaluate_test=False,
          on_epoch=lambda row: shutil.copy(out / "last.keras", tmp_path / f"last-{row['epoch']}.keras"))
    assert json.loads((out / "config.json").read_text())["ema"] == 0.99

    def weights(epoch):  # (checkpoint's weights, the optimizer's other copy) after that epoch
        model = keras.saving.load_model(tmp_path / f"last-{epoch}.keras")
        return ([np.asarray(v) for v in model.trainable_weights],
                [np.asarray(v) for v in model.optimizer._model_variables_moving_average])

    def change(before, after):
        return sum(float(np.abs(a - b).sum()) for a, b in zip(before, after))

    (saved_1, other_1), (saved_2, other_2) = weights(1), weights(2)
    # an average of ~100 steps moves far less from one epoch (3 steps) to the next than the weights
    # themselves: the checkpoint holds the average, the optimizer the last step's weights
    assert change(saved_1, saved_2) < 0.5 * change(other_1, other_2)
    # the best model (as validated) is an average too: the same weights as that epoch's checkpoint
    history = pd.read_csv(out / "history.csv")
    best_epoch = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    checkpoint = keras.saving.load_model(tmp_path / f"last-{best_epoch}.keras")
    saved = {w.path: np.asarray(w) for w in keras.saving.load_model(out / "model.keras").trainable_weights}
    assert all(np.allclose(saved[w.path], np.asarray(w)) for w in checkpoint.trainable_weights if w.path in saved)
    train(data, out, config.replace(epochs=4), resume=True, evaluate_test=False)  # resumes with its averaged weights
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2, 3, 4]
