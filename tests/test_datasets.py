import warnings

import numpy as np
import pandas as pd
import pytest

from core.config import Config
from core.data.datasets import (
    DatasetError,
    DatasetWarning,
    detect_format,
    load_dataset,
    load_folder_csv,
    load_images,
    load_label_table,
    load_pixels_csv,
    load_utkface,
    parse_labels,
    parse_utkface_name,
    split_dataset,
)
from core.labels import age_band
from testkit.datasets import synthetic_face, write_utkface_folder


@pytest.mark.parametrize("name, expected", [
    ("100_0_0_20170112213500903.jpg.chip.jpg", (100, 0, 0)),
    ("1_1_4_20161221193016140.jpg.chip.jpg", (1, 1, 4)),
    ("26_1_2_20170116174525125.jpg", (26, 1, 2)),
    # the malformed names of the public archive
    ("24_0_1_20170116220224657 .jpg.chip.jpg", None),
    ("39_1_20170116174525125.jpg.chip.jpg", None),
    ("55_0_0_20170116232725357jpg.chip.jpg", None),
    ("61_1_20170109142408075.jpg.chip.jpg", None),
    ("30_2_0_20170116174525125.jpg.chip.jpg", None),  # gender must be 0 or 1
    ("30_0_7_20170116174525125.jpg.chip.jpg", None),  # race must be 0-4
    ("readme.jpg", None),
])
def test_parse_utkface_name(name, expected):
    assert parse_utkface_name(name) == expected


def test_load_utkface_skips_and_reports_malformed_names(tmp_path):
    rows = write_utkface_folder(tmp_path, n=6)
    (tmp_path / "39_1_20170116174525125.jpg.chip.jpg").write_bytes((tmp_path / rows[0][0]).read_bytes())
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(DatasetWarning, match="1 row.*39_1_20170116174525125"):
        table = load_utkface(tmp_path)
    assert len(table) == 6
    assert table.attrs["skipped"] == [("39_1_20170116174525125.jpg.chip.jpg",
                                       "file name is not {age}_{gender}_{race}_{datetime}.jpg")]
    expected = {name: (age, gender, race) for name, age, gender, race in rows}
    for row in table.itertuples():
        assert (row.age, row.gender, row.race) == expected[row.file]


def test_load_utkface_real_folder_skips_the_five_malformed(utkface_dir):
    with pytest.warns(DatasetWarning, match="^5 row"):
        table = load_utkface(utkface_dir)
    assert len(table.attrs["skipped"]) == 5
    assert len(table) > 19000
    assert table["gender"].isin([0, 1]).all() and table["race"].between(0, 4).all()


def test_load_pixels_csv_good_and_bad_rows(tmp_path):
    good = " ".join(["128"] * 2304)
    csv = pd.DataFrame({
        "age": ["25", "40", "x", "30", "50"],
        "ethnicity": ["0", "2", "1", "1", "3"],
        "gender": ["1", "0", "1", "0", "0"],
        "img_name": ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"],
        "pixels": [good, good.replace("128", "7", 1), good, " ".join(["1"] * 100), good.replace("128", "abc", 1)],
    })
    path = tmp_path / "age_gender.csv"
    csv.to_csv(path, index=False)
    with pytest.warns(DatasetWarning, match="3 row"):
        table = load_pixels_csv(path)
    assert table["file"].tolist() == ["a.jpg", "b.jpg"]
    assert table["age"].tolist() == [25, 40] and table["gender"].tolist() == [1, 0] and table["race"].tolist() == [0, 2]
    assert table["pixels"].iloc[1].shape == (48, 48) and table["pixels"].iloc[1][0, 0] == 7
    reasons = dict(table.attrs["skipped"])
    assert "100 pixel values" in reasons["d.jpg"] and reasons["c.jpg"] == "age 'x' is not a whole number of years 0-116"
    assert reasons["e.jpg"] == "non-numeric pixels"


def test_load_pixels_csv_wrong_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="lacks the column"):
        load_pixels_csv(path)


def test_load_folder_csv(tmp_path):
    from PIL import Image

    for name in ("p1.png", "p2.jpg"):
        Image.fromarray(synthetic_face(30, 1)).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("file,age,gender\np1.png,30,female\np2.jpg,41,0\nmissing.jpg,20,1\np1.png,20,unknown\n")
    assert detect_format(tmp_path) == "folder-csv"
    with pytest.warns(DatasetWarning, match="2 row"):
        table = load_dataset(tmp_path)
    assert table[["file", "age", "gender", "race"]].values.tolist() == [["p1.png", 30, 1, -1], ["p2.jpg", 41, 0, -1]]
    images, ok = load_images(table, 16, progress=False)
    assert images.shape == (2, 16, 16, 3) and ok.all()


def test_missing_or_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        load_utkface(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no usable labelled images"):
        load_utkface(tmp_path)
    with pytest.raises(DatasetError, match="no labels file"):
        load_folder_csv(tmp_path)


def test_split_is_stratified_reproducible_and_order_independent():
    rng = np.random.default_rng(1)
    n = 2000
    table = pd.DataFrame({"file": [f"f{i:05d}.jpg" for i in range(n)], "age": rng.integers(0, 90, n),
                          "gender": rng.integers(0, 2, n), "race": rng.integers(0, 5, n)})
    config = Config(seed=7, val_fraction=0.1, test_fraction=0.2)
    split = split_dataset(table, config)
    counts = split.value_counts(normalize=True)
    assert abs(counts["test"] - 0.2) < 0.01 and abs(counts["val"] - 0.1) < 0.01
    bands = table["age"].map(age_band)
    for (gender, band), index in table.groupby([table["gender"], bands]).groups.items():
        share = (split[index] == "test").mean()
        assert abs(share - 0.2) < 0.05, (gender, band, share)
    shuffled = table.sample(frac=1, random_state=3)
    again = split_dataset(shuffled, config)
    assert (again.sort_index() == split).all()
    other_seed = split_dataset(table, config.replace(seed=8))
    assert (other_seed != split).any()


def test_load_images_masks_unreadable_files(tmp_path):
    write_utkface_folder(tmp_path, n=3)
    broken = tmp_path / "20_0_0_20170101000000000.jpg.chip.jpg"
    broken.write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        table = load_utkface(tmp_path)
    with pytest.warns(DatasetWarning, match="empty file"):
        images, ok = load_images(table, 24, progress=False)
    assert ok.tolist() == [name != broken.name for name in table["file"]]
    assert images[ok].mean() > 20


@pytest.mark.parametrize("age, gender, race, expected", [
    ("30", "1", "2", (30, 1, 2)),
    ("2.0", "0.0", "4.0", (2, 0, 4)),  # whole numbers written by spreadsheets
    (" 116 ", "FEMALE", "", (116, 1, -1)),
    ("0", "M", "unknown", (0, 0, -1)),
    ("45", "f", "-1", (45, 1, -1)),  # -1 is how our own label tables write an unknown race
    ("-5", "1", "", "age '-5' is not a whole number of years 0-116"),
    ("500", "1", "", "age '500' is not a whole number of years 0-116"),
    ("117", "1", "", "age '117' is not a whole number of years 0-116"),
    ("2.5", "1", "", "age '2.5' is not a whole number of years 0-116"),
    ("abc", "1", "", "age 'abc' is not a whole number of years 0-116"),
    ("nan", "1", "", "age 'nan' is not a whole number of years 0-116"),
    ("30", "2", "", "gender '2' is not 0/1/male/female"),
    ("30", "x", "", "gender 'x' is not 0/1/male/female"),
    ("30", "1", "7", "race '7' is not 0-4, a race name or empty"),
])
def test_parse_labels_accepts_and_refuses_the_same_values_for_every_loader(age, gender, race, expected):
    if isinstance(expected, tuple):
        assert parse_labels(age, gender, race) == expected
    else:
        with pytest.raises(ValueError) as info:
            parse_labels(age, gender, race)
        assert str(info.value) == expected


def _faces(folder, names):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(synthetic_face(30, i % 2, seed=i)).save(folder / name)


def test_every_loader_skips_out_of_range_ages_with_a_reason(tmp_path):
    _faces(tmp_path / "folder", ["ok.png", "young.png", "old.png"])
    (tmp_path / "folder" / "labels.csv").write_text("file,age,gender\nok.png,30,1\nyoung.png,-5,0\nold.png,500,1\n")
    good = " ".join(["128"] * 2304)
    pd.DataFrame({"age": ["30", "-5", "500"], "ethnicity": ["0", "1", "9"], "gender": ["1", "0", "1"],
                  "img_name": ["ok.jpg", "young.jpg", "old.jpg"], "pixels": [good] * 3}).to_csv(tmp_path / "px.csv", index=False)
    (tmp_path / "table.csv").write_text("file,age,gender,race\nok.jpg,30,1,0\nyoung.jpg,-5,0,0\nold.jpg,500,1,-1\n")
    _faces(tmp_path / "utk", ["30_1_0_20170101000000001.jpg", "500_1_0_20170101000000002.jpg"])
    loaders = {"folder-csv": lambda: load_folder_csv(tmp_path / "folder"), "pixels-csv": lambda: load_pixels_csv(tmp_path / "px.csv"),
               "label table": lambda: load_label_table(tmp_path / "table.csv")}
    for name, load in loaders.items():
        with pytest.warns(DatasetWarning, match="2 row"):
            table = load()
        assert table["age"].tolist() == [30], name
        reasons = [reason for _, reason in table.attrs["skipped"]]
        assert reasons == ["age '-5' is not a whole number of years 0-116", "age '500' is not a whole number of years 0-116"], name
    with pytest.warns(DatasetWarning, match="1 row"):
        table = load_utkface(tmp_path / "utk")
    assert table["age"].tolist() == [30]
    assert table.attrs["skipped"] == [("500_1_0_20170101000000002.jpg", "age '500' is not a whole number of years 0-116")]


def test_duplicated_label_rows_are_dropped_and_never_straddle_splits(tmp_path):
    names = [f"p{i:02d}.png" for i in range(30)]
    _faces(tmp_path, names)
    lines = [f"{name},{20 + i},{i % 2}" for i, name in enumerate(names)]
    (tmp_path / "labels.csv").write_text("file,age,gender\n" + "\n".join(lines * 3) + f"\n./{names[0]},20,0\n")
    with pytest.warns(DatasetWarning, match="61 row"):
        table = load_folder_csv(tmp_path)
    assert table["file"].tolist() == names
    assert [reason for _, reason in table.attrs["skipped"]] == ["duplicate of an earlier row"] * 61
    assert ("./p00.png", "duplicate of an earlier row") in table.attrs["skipped"]  # the same image by another path
    config = Config(val_fraction=0.2, test_fraction=0.2)
    tripled = pd.concat([table] * 3, ignore_index=True).sample(frac=1, random_state=0)
    split = split_dataset(tripled, config)
    assert tripled.assign(split=split).groupby("file")["split"].nunique().max() == 1
    assert set(split) == {"train", "val", "test"}
    assert split.groupby(tripled["file"]).first().sort_index().tolist() == split_dataset(table, config).tolist()


@pytest.mark.parametrize("content, message", [
    (b"", "labels.csv is empty"),
    (b"  \n\n", "labels.csv is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "labels.csv is not a CSV file (it holds binary data)"),
    ("file,age,gender\nJos\u00e9.png,30,1\n".encode("latin-1"),
     "labels.csv is not UTF-8 text (byte 0xe9 at position 19); save it as UTF-8 (in Excel: CSV UTF-8)"),
    (b'file,age,gender\n"p.png,30,1\n', "labels.csv is not a valid CSV file"),
    ("file,age,gender\np.png,30,1\n".encode("utf-16"), "labels.csv is UTF-16 text; save it as UTF-8"),
])
def test_unreadable_label_files_name_the_file(tmp_path, content, message):
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(DatasetError) as info:
        load_folder_csv(tmp_path)
    assert str(info.value).startswith(str(tmp_path / message))  # names the file, then says what is wrong


def test_empty_pixel_csv_names_the_file(tmp_path):
    (tmp_path / "age_gender.csv").write_bytes(b"")
    with pytest.raises(DatasetError) as info:
        load_pixels_csv(tmp_path / "age_gender.csv")
    assert str(info.value) == f"{tmp_path / 'age_gender.csv'} is empty"


def test_utf8_with_a_byte_order_mark_loads(tmp_path):
    _faces(tmp_path, ["Jos\u00e9.png"])
    (tmp_path / "labels.csv").write_bytes("\ufefffile,age,gender\nJos\u00e9.png,30,female\n".encode("utf-8"))
    assert load_folder_csv(tmp_path)[["file", "age", "gender"]].values.tolist() == [["Jos\u00e9.png", 30, 1]]
