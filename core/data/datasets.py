"""Face datasets as one pandas table, and the seeded stratified split.

Every loader returns a DataFrame with one row per usable face and the columns
`file` (name, unique within the dataset), `path` (image file, or None), `age` (int),
`gender` (0 = male, 1 = female), `race` (0-4 as in UTKFace), `age_lo` and `age_hi` (the age
as a bracket, inclusive: both equal `age` for an exact age); -1 stands for unknown in every
label column. A labelled folder's rows may carry an exact age, an age bracket (`age` is then
the bracket's middle) or no age, and may lack a gender (not both); any other column of its
labels file (album, set, ...) is kept as text, for breakdowns. The 48x48 CSV format adds
`pixels` (a 48x48 uint8 array) instead of a path. Rows that cannot be used are skipped,
counted in `table.attrs["skipped"]` as (name, reason) pairs, and reported with a
`DatasetWarning`, so a bad row never stops a load and is never dropped silently.

Every loader checks labels with the same parsers (`parse_labels`: age 0-116, gender 0/1 or
male/female, race 0-4, a race name or unknown), because one out-of-range age is enough to turn
the training loss into NaN.
A file or image path listed twice keeps its first row only: a duplicate could otherwise land in
both the training and the test split. A label file that cannot be read at all (empty, binary,
not UTF-8) raises a `DatasetError` naming the file. Text in another encoding is refused rather
than guessed: a wrong guess would silently misread file names, and re-saving as UTF-8 (Excel:
"CSV UTF-8") is a one-step fix the message spells out.
"""
from __future__ import annotations

import codecs
import io
import math
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DATASET_FORMATS as FORMATS
from ..config import Config
from ..imaging.files import ImageError, is_image_file, load_image
from ..imaging.pixels import gray_to_rgb, resize_square
from ..labels import MAX_AGE, RACES, age_band
from ..runs import SPLIT_FILE

FOLDER_LABELS_FILE = "labels.csv"  # a folder-csv dataset's labels (a run folder's is core.runs.TRAINING_LABELS_FILE)
UTKFACE_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg(\.chip\.jpg)?$", re.IGNORECASE)
COLUMNS = ["file", "path", "age", "gender", "race", "age_lo", "age_hi"]
LABEL_COLUMNS = ("age", "gender", "race", "age_lo", "age_hi")  # ints, -1 = unknown
GENDER_WORDS = {"0": 0, "m": 0, "male": 0, "man": 0, "1": 1, "f": 1, "female": 1, "woman": 1}
UNKNOWN_RACE = ("", "-1", "unknown")
# Race names other datasets use, as UTKFace's codes; UTKFace's own description puts Hispanic,
# Latino and Middle Eastern people under "Others".
RACE_WORDS = {**{name.lower(): code for code, name in enumerate(RACES)}, "caucasian": 0, "hispanic": 4,
              "latino": 4, "mideastern": 4, "middle eastern": 4}
UNKNOWN = -1


class DatasetError(ValueError):
    """A dataset cannot be loaded at all (missing, empty, wrong format)."""


class DatasetWarning(UserWarning):
    """Some rows of a dataset were skipped."""


def _exact(labels: tuple[int, int, int]) -> tuple[int, int, int, int, int]:
    """(age, gender, race) of an exact age, with its bracket (age, age) added."""
    return (*labels, labels[0], labels[0])


def parse_utkface_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from a UTKFace file name, or None when the name is malformed."""
    match = UTKFACE_NAME.match(name)
    try:
        return parse_labels(*match.group(1, 2, 3)) if match else None
    except ValueError:
        return None


def parse_labels(age: object, gender: object, race: object = "") -> tuple[int, int, int]:
    """(age, gender, race) as ints from the text of any label source; ValueError says what is wrong.

    Shared by every loader so they accept and refuse exactly the same values: age a whole number
    0-116 ("30" or "30.0", not "30.5"), gender 0/1/male/female/m/f in any case (also "0.0"), race
    0-4, or empty/unknown/-1 for -1.
    """
    try:
        number = float(str(age).strip())
    except ValueError:
        number = math.nan
    if not (number.is_integer() and 0 <= number <= MAX_AGE):
        raise ValueError(f"age {age!r} is not a whole number of years 0-{MAX_AGE}")
    gender_code = GENDER_WORDS.get(_integer_text(gender).lower())
    if gender_code is None:
        raise ValueError(f"gender {gender!r} is not 0/1/male/female")
    return int(number), gender_code, parse_race(race)


def parse_race(race: object) -> int:
    """A race code 0-4 from a code or a name (RACE_WORDS); -1 for empty or unknown."""
    text = _integer_text(race).lower()
    if text in UNKNOWN_RACE:
        return UNKNOWN
    if text in RACE_WORDS:
        return RACE_WORDS[text]
    if text not in ("0", "1", "2", "3", "4"):
        raise ValueError(f"race {race!r} is not 0-4, a race name or empty")
    return int(text)


def parse_folder_labels(record: dict) -> tuple[int, int, int, int, int]:
    """(age, gender, race, age_lo, age_hi) of a labelled folder's row, where the age may be
    exact (`age`), a bracket (`age_lo`, `age_hi`, inclusive) or missing, and the gender may be
    missing; ValueError when a value is wrong or the row has neither an age nor a gender."""
    age_text = str(record.get("age", "")).strip()
    bracket = [str(record.get(key, "")).strip() for key in ("age_lo", "age_hi")]
    gender_text = str(record.get("gender", "")).strip()
    if age_text:
        age = parse_labels(age_text, "0")[0]
        lo = hi = age
    elif any(bracket):
        lo, hi = (parse_labels(value, "0")[0] for value in bracket)
        if lo > hi:
            raise ValueError(f"age bracket {lo}-{hi} ends before it starts")
        age = (lo + hi + 1) // 2
    else:
        age = lo = hi = UNKNOWN
    gender = parse_labels("0", gender_text)[1] if gender_text else UNKNOWN
    if age == UNKNOWN and gender == UNKNOWN:
        raise ValueError("no age and no gender")
    return age, gender, parse_race(record.get("race", "")), lo, hi


def _integer_text(value: object) -> str:
    """"1.0" -> "1" (spreadsheets write whole numbers with a decimal point); other text as is."""
    text = str(value).strip()
    return text[:-2] if text.endswith(".0") else text


def load_utkface(folder: str | Path) -> pd.DataFrame:
    """A UTKFace folder: labels come from `{age}_{gender}_{race}_{datetime}.jpg(.chip.jpg)` names."""
    folder = _existing_dir(folder)
    rows, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
        match = UTKFACE_NAME.match(path.name)
        if not match:
            skipped.append((path.name, "file name is not {age}_{gender}_{race}_{datetime}.jpg"))
            continue
        try:
            rows.append((path.name, str(path), *_exact(parse_labels(*match.group(1, 2, 3)))))
        except ValueError as exc:  # e.g. an age over 116
            skipped.append((path.name, str(exc)))
    return _finish(pd.DataFrame(rows, columns=COLUMNS), skipped, f"UTKFace folder {folder}", "utkface")


def load_pixels_csv(csv_path: str | Path) -> pd.DataFrame:
    """The 48x48 grayscale CSV (`age, ethnicity, gender, img_name, pixels`)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"no such CSV file: {csv_path}")
    raw = _read_csv(csv_path)
    missing = {"age", "ethnicity", "gender", "img_name", "pixels"} - set(raw.columns)
    if missing:
        raise DatasetError(f"{csv_path} lacks the column(s) {', '.join(sorted(missing))} of the 48x48 pixel format")
    rows, skipped = [], []
    for index, record in raw.iterrows():
        name = record["img_name"] or f"row{index + 2}"
        try:
            labels = parse_labels(record["age"], record["gender"], record["ethnicity"])
        except ValueError as exc:
            skipped.append((name, str(exc)))
            continue
        try:
            pixels = np.array(record["pixels"].split(), dtype=np.int64)
        except ValueError:
            skipped.append((name, "non-numeric pixels"))
            continue
        if pixels.size != 48 * 48:
            skipped.append((name, f"{pixels.size} pixel values instead of 2304 (48x48)"))
        elif pixels.min() < 0 or pixels.max() > 255:
            skipped.append((name, "pixel value out of range 0-255"))
        else:
            rows.append((name, None, *_exact(labels), pixels.reshape(48, 48).astype(np.uint8)))
    table = pd.DataFrame(rows, columns=COLUMNS + ["pixels"])
    return _finish(table, skipped, f"pixel CSV {csv_path}", "pixels-csv")


def load_folder_csv(folder: str | Path, labels_csv: str | Path | None = None) -> pd.DataFrame:
    """A folder of images plus a labels CSV: `file` (relative to the folder) and at least one of
    `age`, `age_lo` + `age_hi` (a bracket, inclusive) and `gender` (0/1 or male/female); optional
    `race`; any other column is kept as text. A row may lack an age or a gender, not both.
    Files named outside the folder (absolute, or through `..`) are skipped: a labels file
    describes its own folder, and may not reach elsewhere on the machine."""
    folder = _existing_dir(folder)
    labels_path = Path(labels_csv) if labels_csv else folder / FOLDER_LABELS_FILE
    if not labels_path.is_file():
        raise DatasetError(f"no labels file {labels_path} (columns: file, then age, age_lo + age_hi, and/or gender)")
    raw = _read_csv(labels_path)
    if "file" not in raw.columns:
        raise DatasetError(f"{labels_path} lacks the column file")
    if not {"age", "gender"} & set(raw.columns) and not {"age_lo", "age_hi"} <= set(raw.columns):
        raise DatasetError(f"{labels_path} has no label column: it needs age, age_lo + age_hi, or gender")
    extra = [column for column in raw.columns if column not in ("file", "path", *LABEL_COLUMNS, "pixels")]
    rows, skipped = [], []
    for record in raw.to_dict("records"):
        name = record["file"]
        try:
            labels = parse_folder_labels(record)
        except ValueError as exc:
            skipped.append((name, str(exc)))
            continue
        relative = Path(os.path.normpath(name))
        if relative.is_absolute() or relative.parts[:1] == ("..",):
            skipped.append((name, "names a file outside the dataset's folder"))
        elif not (folder / relative).is_file():
            skipped.append((name, "image file not found"))
        else:
            rows.append((name, str(folder / relative), *labels, *(record[column] for column in extra)))
    table = pd.DataFrame(rows, columns=COLUMNS + extra)
    return _finish(table, skipped, f"labelled folder {folder}", "folder-csv")


def detect_format(path: str | Path) -> str:
    """Guess the dataset format: a .csv file is the pixel format, a folder with labels.csv is
    folder-csv, a folder of UTKFace-named images is UTKFace; anything else is a one-line error
    (a photo folder without its labels file, say, rather than a flood of skipped names)."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return "pixels-csv"
    if path.is_dir():
        if (path / FOLDER_LABELS_FILE).is_file():
            return "folder-csv"
        with os.scandir(path) as entries:
            names = [entry.name for entry, _ in zip((e for e in entries if is_image_file(Path(e.name))), range(200))]
        if not names or any(UTKFACE_NAME.match(name) for name in names):
            return "utkface"
        raise DatasetError(f"{path} has no {FOLDER_LABELS_FILE} (columns: file, then age, age_lo + age_hi, and/or "
                           f"gender) and its images are not named like UTKFace's ({{age}}_{{gender}}_{{race}}_...jpg)")
    raise DatasetError(f"no dataset at {path} (expected a folder or a .csv file)")


def load_dataset(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Load any supported dataset; `fmt` is one of FORMATS, or None to detect it."""
    fmt = fmt or detect_format(path)
    loaders = {"utkface": load_utkface, "pixels-csv": load_pixels_csv, "folder-csv": load_folder_csv}
    if fmt not in loaders:
        raise DatasetError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    table = loaders[fmt](path)
    table.attrs["name"] = Path(path).stem  # the source name a run over several datasets gives it
    return table


def split_dataset(table: pd.DataFrame, config: Config) -> pd.Series:
    """'train' / 'val' / 'test' per row, stratified by source, gender and age band (unknown
    gender and age are strata of their own), reproducible by seed.

    Rows are ordered by file name before shuffling, so the split depends only on the set of
    files and the seed, not on directory listing order. The split is drawn per file and rows
    repeating a file share its first row's split, so no image is ever both trained and tested on.
    """
    rng = np.random.default_rng(config.seed)
    files = table.drop_duplicates("file")
    split = pd.Series("train", index=files["file"].to_numpy(), dtype=object)
    strata = files.assign(_band=files["age"].map(lambda age: age_band(age) if age >= 0 else "unknown"),
                          _source=files["source"] if "source" in files else "")
    for _, group in strata.sort_values("file").groupby(["_source", "gender", "_band"], sort=True):
        order = rng.permutation(group["file"].to_numpy())
        n_test = int(round(len(order) * config.test_fraction))
        n_val = int(round(len(order) * config.val_fraction))
        split[order[:n_test]] = "test"
        split[order[n_test:n_test + n_val]] = "val"
    return table["file"].map(split)


def label_table(table: pd.DataFrame) -> pd.DataFrame:
    """The labels alone (file, age, gender, race; the bracket and the source when the table has
    rows without an exact age or several sources), e.g. to ship a training set's demographics."""
    columns = ["file", "age", "gender", "race"]
    if "age_lo" in table and ((table["age_lo"] != table["age"]) | (table["age_hi"] != table["age"])).any():
        columns += ["age_lo", "age_hi"]
    if "source" in table and table["source"].nunique() > 1:
        columns.append("source")
    return table[columns].reset_index(drop=True)


def load_label_table(path: str | Path) -> pd.DataFrame:
    """A run folder's `labels.csv` (`label_table`'s columns; no pixels): a training set's demographics."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no label table at {path}")
    raw = _read_csv(path)
    missing = {"file", "age", "gender", "race"} - set(raw.columns)
    if missing:
        raise DatasetError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
    extra = [column for column in ("source",) if column in raw]
    rows, skipped = [], []
    for record in raw.to_dict("records"):
        known = {key: "" if str(record.get(key, "")).strip() in ("", "-1") else record[key]
                 for key in ("age", "gender", "age_lo", "age_hi")}
        if known["age_lo"] == known["age_hi"]:  # an exact age (or none): no bracket to read
            known["age_lo"] = known["age_hi"] = ""
        else:
            known["age"] = ""
        try:
            labels = parse_folder_labels({**known, "race": record["race"]})
        except ValueError as exc:
            skipped.append((record["file"], str(exc)))
            continue
        rows.append((record["file"], None, *labels, *(record[column] for column in extra)))
    return _finish(pd.DataFrame(rows, columns=COLUMNS + extra), skipped, f"label table {path}")


def read_split(model_dir: str | Path) -> pd.DataFrame | None:
    """The (file, split) table a training run saved, or None when the model folder has none."""
    path = Path(model_dir) / SPLIT_FILE
    return pd.read_csv(path) if path.is_file() else None


def select_split(table: pd.DataFrame, model_dir: str | Path, split: str) -> pd.DataFrame:
    """The rows of `table` that the model's run put in `split` ('train', 'val' or 'test'). For a
    run over several sources (split.csv names rows SOURCE/FILE), a table loaded from one of
    them (`load_dataset` notes its name) is matched on that source's rows."""
    saved = read_split(model_dir)
    if saved is None:
        raise DatasetError(f"the model at {model_dir} has no {SPLIT_FILE}, so its {split} split is unknown")
    chosen = saved.loc[saved["split"] == split]
    if "source" in saved and "source" not in table and table.attrs.get("name") in set(saved["source"]):
        name = table.attrs["name"]
        chosen = chosen.loc[chosen["source"] == name, "file"].str.removeprefix(f"{name}/")
        return table[table["file"].isin(chosen)]
    return table[table["file"].isin(chosen["file"])]


def load_images(table: pd.DataFrame, size: int, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize every row's image to size x size: (uint8 array, mask of rows that loaded).

    Decoding runs on threads (Pillow and OpenCV release the GIL). Unreadable files are reported
    with a DatasetWarning and masked out rather than stopping the load.
    """
    images = np.zeros((len(table), size, size, 3), np.uint8)
    ok = np.ones(len(table), bool)
    problems = []

    def decode(i: int) -> None:
        row = table.iloc[i]
        try:
            pixels = row["pixels"] if "pixels" in table.columns and row["pixels"] is not None else None
            image = gray_to_rgb(pixels) if pixels is not None else load_image(row["path"])
            images[i] = resize_square(image, size)
        except ImageError as exc:
            ok[i] = False
            problems.append((row["file"], str(exc)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        work = pool.map(decode, range(len(table)))
        if progress is not False:
            from tqdm import tqdm

            # progress=None shows the bar only on a terminal (not in log files)
            work = tqdm(work, total=len(table), desc="loading images", unit="img", leave=False, disable=None if progress is None else False)
        for _ in work:
            pass
    if problems:
        warn_skipped(problems, "unreadable image(s) skipped")
    return images, ok


def _finish(table: pd.DataFrame, skipped: list[tuple[str, str]], source: str, fmt: str | None = None) -> pd.DataFrame:
    """The loaders' common end: drop repeated files, warn about skipped rows, fix the dtypes, and
    note the format (`attrs["format"]`: evaluation detects faces in folder-csv photos only)."""
    where = table["path"].map(lambda path: os.path.realpath(path) if path else None)
    repeated = table["file"].duplicated() | (where.notna() & where.duplicated())
    skipped = skipped + [(name, "duplicate of an earlier row") for name in table.loc[repeated, "file"]]
    table = table[~repeated].reset_index(drop=True)
    if skipped:
        warn_skipped(skipped, f"row(s) of {source} skipped")
    if table.empty:
        raise DatasetError(f"no usable labelled images in {source}")
    table = table.astype(dict.fromkeys(LABEL_COLUMNS, int))
    table.attrs["skipped"] = skipped
    table.attrs["source"] = source
    table.attrs["format"] = fmt
    return table


def warn_skipped(skipped: list[tuple[str, str]], what: str) -> None:
    """One DatasetWarning for skipped rows: how many, and the first 20 with their reasons."""
    listing = "; ".join(f"{name!r}: {reason}" for name, reason in skipped[:20])
    more = f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    warnings.warn(f"{len(skipped)} {what}: {listing}{more}", DatasetWarning, stacklevel=3)


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as a table of strings; DatasetError naming the file when it is not readable CSV text."""
    data = path.read_bytes()
    if not data.strip():
        raise DatasetError(f"{path} is empty")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode Text", Notepad's "Unicode"
        raise DatasetError(f"{path} is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)")
    if b"\0" in data:
        raise DatasetError(f"{path} is not a CSV file (it holds binary data)")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
                           f"save it as UTF-8 (in Excel: CSV UTF-8)") from exc
    header = text.split("\n", 1)[0]
    if ";" in header and "," not in header:
        raise DatasetError(f"{path} separates its columns with ';': save it with commas (in Excel: CSV UTF-8, "
                           f"comma delimited)")
    try:  # short rows give NaN even with keep_default_na=False: make them empty text like other gaps
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).fillna("")
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path} is not a valid CSV file ({str(exc).strip()})") from exc


def _existing_dir(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"no such folder: {folder}")
    return folder
