"""Training from several sources: labels that lack an age or a gender or give a bracket, sources
stacked with their own names and shares, photos found and aligned once (cached), and a real
training run over two sources that records which row came from where."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.config import Config
from core.data.datasets import DatasetError, DatasetWarning, detect_format, load_dataset, load_folder_csv, split_dataset
from core.data.sources import DataSource, load_sources, sampling_weights
from testkit.datasets import synthetic_face, write_utkface_folder
from testkit.faces import write_portraits


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(synthetic_face(30, i % 2, seed=i)).save(folder / name)


def test_folder_rows_may_lack_an_age_or_a_gender_or_give_a_bracket(tmp_path):
    _images(tmp_path, ["exact.png", "bracket.png", "gender.png", "age.png", "none.png", "bad.png", "upside.png"])
    (tmp_path / "labels.csv").write_text(
        "file,age,age_lo,age_hi,gender,race,album\n"
        "exact.png,30,,,female,caucasian,a\nbracket.png,,4,6,male,,a\ngender.png,,,,f,hispanic,b\n"
        "age.png,41,,,,,b\nnone.png,,,,,,b\nbad.png,,8,200,m,,b\nupside.png,,9,3,m,,b\n")
    with pytest.warns(DatasetWarning, match="3 row"):
        table = load_folder_csv(tmp_path)
    assert table[["file", "age", "gender", "race", "age_lo", "age_hi", "album"]].values.tolist() == [
        ["exact.png", 30, 1, 0, 30, 30, "a"], ["bracket.png", 5, 0, -1, 4, 6, "a"], ["gender.png", -1, 1, 4, -1, -1, "b"],
        ["age.png", 41, -1, -1, 41, 41, "b"]]
    assert dict(table.attrs["skipped"]) == {"none.png": "no age and no gender",
                                            "bad.png": "age '200' is not a whole number of years 0-116",
                                            "upside.png": "age bracket 9-3 ends before it starts"}


def test_a_labels_file_may_not_name_files_outside_its_folder(tmp_path):
    _images(tmp_path / "data", ["in.png"])
    _images(tmp_path, ["secret.png"])
    (tmp_path / "data" / "labels.csv").write_text(f"file,gender\nin.png,1\n../secret.png,1\n{tmp_path / 'secret.png'},0\n")
    with pytest.warns(DatasetWarning, match="2 row"):
        table = load_folder_csv(tmp_path / "data")
    assert table["file"].tolist() == ["in.png"]
    assert {reason for _, reason in table.attrs["skipped"]} == {"names a file outside the dataset's folder"}


def test_formats_that_cannot_be_read_say_why(tmp_path):
    _images(tmp_path / "photos", ["holiday.png"])
    with pytest.raises(DatasetError, match="has no labels.csv .* not named like UTKFace's"):
        detect_format(tmp_path / "photos")
    (tmp_path / "photos" / "labels.csv").write_text("file;age;gender\nholiday.png;30;1\n")
    with pytest.raises(DatasetError, match="separates its columns with ';'"):
        load_dataset(tmp_path / "photos")
    (tmp_path / "photos" / "labels.csv").write_text("file,race\nholiday.png,0\n")
    with pytest.raises(DatasetError, match="has no label column"):
        load_dataset(tmp_path / "photos")


def test_sources_stack_with_their_names_and_shares(tmp_path):
    write_utkface_folder(tmp_path / "utk", n=20)
    _images(tmp_path / "portraits", [f"p{i}.png" for i in range(10)])
    (tmp_path / "portraits" / "labels.csv").write_text("file,gender\n" + "".join(f"p{i}.png,{i % 2}\n" for i in range(10)))
    sources = [DataSource(tmp_path / "utk"), DataSource(tmp_path / "portraits", weight=3, name="web")]
    table = load_sources(sources)
    assert table["source"].value_counts().to_dict() == {"utk": 20, "web": 10}
    assert table["file"].str.startswith(("utk/", "web/")).all() and table["file"].is_unique
    assert table.loc[table["source"] == "web", "photo"].all() and not table.loc[table["source"] == "utk", "photo"].any()
    assert [item["rows"] for item in table.attrs["sources"]] == [20, 10]
    weights = sampling_weights(table, [DataSource("utk", weight=1), DataSource("web", weight=3, name="web")])
    shares = pd.Series(weights).groupby(table["source"].to_numpy()).sum()
    assert shares["web"] == pytest.approx(0.75) and shares["utk"] == pytest.approx(0.25)
    split = split_dataset(table, Config(seed=1, val_fraction=0.2, test_fraction=0.2))
    assert set(split[table["source"] == "web"]) == {"train", "val", "test"}  # stratified per source too
    with pytest.raises(DatasetError, match="share a name"):
        load_sources([DataSource(tmp_path / "utk"), DataSource(tmp_path / "utk")])


def test_balance_evens_out_the_cells_of_a_source():
    table = pd.DataFrame({"source": "s", "gender": [0] * 9 + [1], "age": 30, "race": 0})
    plain = sampling_weights(table, [DataSource("s")], balance=0.0)
    even = sampling_weights(table, [DataSource("s")], balance=1.0)
    assert plain[-1] == pytest.approx(0.1) and even[-1] == pytest.approx(0.5)  # the one woman: 1 draw in 10, then half
    assert even.sum() == pytest.approx(1.0)


def test_training_from_two_sources_records_them_and_caches_the_photos_faces(tmp_path, monkeypatch, capsys):
    from core.train.training import train

    monkeypatch.setenv("AGE_GENDER_CACHE_DIR", str(tmp_path / "cache"))
    write_utkface_folder(tmp_path / "crops", n=40)
    names = write_portraits(tmp_path / "photos", 12)
    rows = [f"{name},,,,female" for name in names[:8]] + [f"{name},,20,29," for name in names[8:]]
    (tmp_path / "photos" / "labels.csv").write_text("file,age,age_lo,age_hi,gender\n" + "\n".join(rows) + "\n")
    config = Config(image_size=32, width=8, epochs=2, batch_size=16, augment=False, val_fraction=0.25, test_fraction=0.25)
    sources = [DataSource(tmp_path / "crops", name="crops"), DataSource(tmp_path / "photos", weight=1.0, name="photos")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # every astronaut photo gives a face
        metrics = train(sources, tmp_path / "run", config)
    out = capsys.readouterr().out
    assert "sources crops " in out and "photos " in out
    split = pd.read_csv(tmp_path / "run" / "split.csv")
    assert set(split["source"]) == {"crops", "photos"} and split["file"].str.match(r"^(crops|photos)/").all()
    assert {item["name"]: item["rows"] for item in json.loads((tmp_path / "run" / "sources.json").read_text())} == \
        {"crops": 40, "photos": 12}
    labels = pd.read_csv(tmp_path / "run" / "labels.csv")
    assert {"age_lo", "age_hi", "source"} <= set(labels.columns) and (labels["gender"] == -1).sum() == 4
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 2 and np.isfinite(history[["loss", "val_loss", "val_age_mae"]].to_numpy()).all()
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 12  # each photo's face, cropped once
    assert metrics["n"] == (split["split"] == "test").sum()


def test_each_epoch_draws_its_rows_by_weight_and_again_the_same_on_resume():
    from core.train.pipeline import epoch_order

    assert sorted(epoch_order(10, epoch=3, seed=1)) == list(range(10))  # equal weights: every row once
    weights = np.array([0.9] + [0.1 / 9] * 9)
    draws = np.concatenate([epoch_order(10, epoch, seed=1, weights=weights) for epoch in range(200)])
    assert (draws == 0).mean() == pytest.approx(0.9, abs=0.02)
    assert np.array_equal(epoch_order(10, 7, 1, weights), epoch_order(10, 7, 1, weights))
    assert not np.array_equal(epoch_order(10, 7, 1, weights), epoch_order(10, 8, 1, weights))


def test_two_photos_with_the_same_content_are_cropped_at_once_without_a_clash(tmp_path, monkeypatch):
    """The cache is keyed by content: identical files found by two threads at the same time once
    raced on one temporary name, and training stopped on 'No such file or directory'."""
    import threading

    from core.data import faces
    from core.data.faces import face_crops

    monkeypatch.setenv("AGE_GENDER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(faces.os, "cpu_count", lambda: 2)
    together, replace = threading.Barrier(2, timeout=5), faces.os.replace

    def replace_together(*args):  # both threads have written their crop of the same content: now keep it
        try:
            together.wait()
        except threading.BrokenBarrierError:
            pass
        return replace(*args)

    monkeypatch.setattr(faces.os, "replace", replace_together)
    names = write_portraits(tmp_path / "photos", 1) * 2
    table = pd.DataFrame({"file": [f"{i}.jpg" for i in range(2)], "path": [str(tmp_path / "photos" / n) for n in names],
                          "photo": True})
    images, ok = face_crops(table, 48)
    assert ok.all() and all(np.array_equal(image, images[0]) for image in images)
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 1


def test_a_source_loaded_alone_finds_its_rows_in_a_multi_source_runs_split(tmp_path):
    """evaluate --split test, calibrate and the bench read one dataset against a run over several."""
    from core.data.datasets import select_split

    write_utkface_folder(tmp_path / "UTKFace", n=6)
    table = load_dataset(tmp_path / "UTKFace")
    names = sorted(table["file"])
    (tmp_path / "run").mkdir()
    pd.DataFrame({"file": [f"UTKFace/{n}" for n in names] + ["web/x.jpg", "web/" + names[0]],
                  "split": ["test", "val", "test", "train", "train", "test", "test", "test"],
                  "source": ["UTKFace"] * 6 + ["web", "web"]}).to_csv(tmp_path / "run" / "split.csv", index=False)
    assert sorted(select_split(table, tmp_path / "run", "test")["file"]) == [names[0], names[2], names[5]]
    assert sorted(select_split(table, tmp_path / "run", "val")["file"]) == [names[1]]
