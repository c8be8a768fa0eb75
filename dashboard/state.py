"""Process-wide caches and the session's global choices, shared by every page.

Models and the face detector load once per server process (`st.cache_resource`); tables and
run artifacts are read once per file version (`st.cache_data` keyed on the file's modification
time), so a run that is still training shows fresh curves without reloading anything else.
The default model and the folder for new runs come from environment variables, so tests and
deployments can point the app elsewhere.
"""
from __future__ import annotations

import json
import os
import uuid
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
import streamlit as st

from core import runs
from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, PROJECT_ROOT
from core.data.datasets import DatasetError, DatasetWarning, load_dataset, load_folder_csv, load_label_table
from core.labels import UNKNOWN_RACE
from core.runs import LITERT_FILE, TRAINING_LABELS_FILE, stamp

from . import access, jobs

TRAINING_LABELS = "training-labels"
SOURCE_KINDS = {TRAINING_LABELS: "Training labels of the model", "utkface": "UTKFace folder",
                "pixels-csv": "48x48 pixel CSV", "folder-csv": "Image folder + labels CSV"}


def default_model() -> Path:
    """The model shown first: $AGE_GENDER_MODEL_DIR (also read by the live page) or models/default."""
    return Path(os.environ.get("AGE_GENDER_MODEL_DIR") or DEFAULT_MODEL_DIR)


def runs_dir() -> Path:
    """Where runs launched from the dashboard go: $AGE_GENDER_RUNS_DIR or runs/ (gitignored)."""
    return Path(os.environ.get("AGE_GENDER_RUNS_DIR") or PROJECT_ROOT / "runs")


def server_roots() -> tuple[Path, ...]:
    """The folders visitors may name paths in (see `access`): $AGE_GENDER_SERVER_ROOTS, else by server.address."""
    return access.server_roots(os.environ.get(access.ROOTS_ENV), st.get_option("server.address"))


def without_server_folders(what: str) -> str:
    """What a page says instead of a form that cannot work when the server shares no folders
    (served to others without AGE_GENDER_SERVER_ROOTS: uploads only); `what` names the work."""
    return (f"This server shares no folders with visitors, so {what} cannot run here: use the pages that take "
            f"uploads (Single photo, Batch analysis, Video). The operator can share folders with {access.ROOTS_ENV} "
            "(docs/serving.md).")


def shared_path(typed: str, kind: access.Kind = "any") -> Path:
    """A typed server path this session may use (`access.server_path`): under the shared roots,
    and not in a run another session is still training; PathRefused otherwise."""
    return access.server_path(typed, server_roots(), kind, hidden=training_elsewhere())


def list_runs() -> list[Path]:
    """Run folders: the default model, then every run under models/ and the runs folder, except
    those other sessions are still training (theirs until they end)."""
    busy = {folder.resolve() for folder in training_elsewhere()}
    return [run for run in runs.list_runs([default_model()], [PROJECT_ROOT / "models", runs_dir()])
            if run.resolve() not in busy]


def display_name(folder: Path) -> str:
    """A run folder as the user knows it: relative to the project when inside it."""
    folder = Path(folder)
    try:
        return str(folder.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(folder)


# -- models ------------------------------------------------------------------------------------

_loaded_at: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _model_unchanged(predictor) -> bool:
    return _loaded_at.get(predictor) == stamp(Path(predictor.model_dir) / LITERT_FILE)


@st.cache_resource(show_spinner="Loading the model...", max_entries=4, validate=_model_unchanged)
def get_predictor(model_dir: str | Path):
    """The run folder's `core.inference.predictor.Predictor` (LiteRT: no TensorFlow in the app), loaded
    once per server process and again when its model changes (a run still training saves a
    better epoch)."""
    from core.inference.predictor import Predictor

    version = stamp(Path(model_dir) / LITERT_FILE)
    predictor = Predictor(model_dir)
    _loaded_at[predictor] = version
    return predictor


@st.cache_resource(show_spinner="Loading the face detector...")
def get_detector(use: str = "photos"):
    """One detector per use ("photos", "group photos", "live": `core.detect.DETECTOR_FOR`)
    for every session and viewer; `detect` is thread-safe."""
    from core.detect import detector_for

    return detector_for(use)


def get_analyzer(model_dir: str | Path, use: str | None = "photos"):
    """The pipeline for the chosen model and detector use (`None`: inputs are aligned crops);
    built from the cached parts, so it costs nothing to ask again."""
    from core.analysis.pipeline import FaceAnalyzer

    return FaceAnalyzer(get_predictor(str(model_dir)), None if use is None else get_detector(use))


# -- run artifacts -----------------------------------------------------------------------------

def read_artifact(run_dir: Path, name: str) -> pd.DataFrame | dict | None:
    """A run folder's CSV or JSON file, or None when it is not (yet, or not fully) written."""
    path = Path(run_dir) / name
    if not path.is_file():
        return None
    try:
        return _read_artifact(str(path), stamp(path))
    except (OSError, ValueError):  # half-written while training, or not ours
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _read_artifact(path: str, version: int) -> pd.DataFrame | dict:
    if path.endswith(".json"):
        return json.loads(Path(path).read_text())
    table = pd.read_csv(path)
    if "race" in table and not pd.api.types.is_numeric_dtype(table["race"]):
        table["race"] = table["race"].fillna(UNKNOWN_RACE)  # predictions.csv of older runs: empty = unknown
    return table


# -- datasets ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataSource:
    """A dataset the user chose: `kind` is TRAINING_LABELS or a core dataset format."""

    kind: str
    path: str
    labels_csv: str = ""

    @property
    def has_images(self) -> bool:
        return self.kind != TRAINING_LABELS

    def describe(self) -> str:
        if self.kind == TRAINING_LABELS:
            return f"the training labels of model `{display_name(Path(self.path).parent)}` (labels only)"
        labels = f" with labels `{self.labels_csv}`" if self.labels_csv else ""
        return f"{SOURCE_KINDS[self.kind]} `{self.path}`{labels}"


def training_labels(model_dir: Path) -> DataSource:
    return DataSource(TRAINING_LABELS, str(Path(model_dir) / TRAINING_LABELS_FILE))


def load_table(source: DataSource) -> pd.DataFrame:
    """The source's faces (core's table: file, path, age, gender, race [, pixels]); raises DatasetError.

    A dataset's paths must be shared (`access.server_path`); training labels are in a run folder
    the app listed or already accepted. Skipped rows are listed in `attrs["skipped"]` as core's
    loaders report them."""
    if not source.path:
        raise DatasetError("no path given")
    path, labels = source.path, source.labels_csv
    if source.has_images:
        try:
            path = str(shared_path(path))
            labels = str(shared_path(labels, "file")) if labels else ""
        except access.PathRefused as exc:
            raise DatasetError(str(exc)) from None
    version = stamp(Path(path)) + (stamp(Path(labels)) if labels else 0)
    return _load_table(source.kind, path, labels, version)


@st.cache_data(show_spinner="Reading the dataset...", max_entries=8)
def _load_table(kind: str, path: str, labels_csv: str, version: int) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)  # the skipped rows stay in attrs["skipped"]
        if kind == TRAINING_LABELS:
            return load_label_table(path)
        if kind == "folder-csv":
            return load_folder_csv(path, labels_csv or None)
        return load_dataset(path, kind)


def find_images(files: Iterable[str], source: DataSource) -> dict[str, object]:
    """Image (file path, or pixel array of the 48x48 format) for each of `files` that can be found:
    first in the chosen dataset, then in the default UTKFace folder when it is on this machine."""
    wanted = set(files)
    found: dict[str, object] = {}
    candidates = [source] if source.has_images else []
    if DEFAULT_DATASET_DIR.is_dir():
        candidates.append(DataSource("utkface", str(DEFAULT_DATASET_DIR)))
    for candidate in candidates:
        try:
            table = load_table(candidate)
        except DatasetError:
            continue
        rows = table[table["file"].isin(wanted - found.keys())]
        images = rows["pixels"] if "pixels" in rows else rows["path"]
        found.update(zip(rows["file"], images))
    return found


# -- the session's choices (set by the sidebar on every run) -----------------------------------

def selected_model() -> Path:
    return Path(st.session_state.get("model_dir") or default_model())


def selected_source() -> DataSource:
    return st.session_state.get("data_source") or training_labels(selected_model())


def session_id() -> str:
    """This browser session, as the owner of the runs it starts (a reload starts a new session)."""
    return st.session_state.setdefault("session_id", uuid.uuid4().hex)


@st.cache_resource
def training_jobs() -> jobs.Registry:
    """Runs launched from this server process, seen by all sessions."""
    return jobs.Registry()


def training_elsewhere() -> list[Path]:
    """Run folders other sessions are training: their panels, logs, curves and labels are not shown."""
    me = session_id()
    return [job.run_dir for job in training_jobs().snapshot().values() if job.owner != me and job.active]
