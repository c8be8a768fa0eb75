"""The Ray engine of `python -m core batch --engine ray`: the local engine's steps on a cluster.

Ray Data runs the pipeline, streaming: a Ray task lists the folder (so the files need only be
reachable from the cluster, not from the machine that starts the job); tasks decode, detect and
align a few images each (`core.batch.steps.find_photo`, the local engine's own step); an actor
pool runs the model, one `Predictor` per actor loaded once, on batches of many images
(`core.batch.steps.read_photos`); the rows stream back to the caller, which writes them as the
local engine does. Using the very same per-image functions is what makes both engines give the
same rows.

Rows of one image always travel together (one dataset row per image until the model, whose
output block holds whole images), so `--resume`'s rule "the last file in the output may be
incomplete" holds here too. Rows come in the order images finish, not in file order.

Importing this module imports Ray; `core.batch.engine` imports it only for `engine="ray"`.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import socket
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import ray

from ..analysis.pipeline import FaceAnalyzer
from ..analysis.results import failure_row
from ..imaging.files import MAX_FILE_BYTES, is_listed_image
from .folders import scan_folder
from .parts import SCHEMA
from .settings import BatchSettings
from .steps import BATCH_FACES, FoundPhoto, Progress, find_photo, read_photos

IMAGES_PER_TASK = 32  # images a detection task decodes: few, so the work spreads evenly
# Logical CPUs per model actor and per detection task. The model is about a fifth of the work
# per photo, so an actor is mostly idle: its share lets two detection tasks run beside it on a
# 2-core node (1 actor + 2 tasks = 0.25 + 2 x 0.75), keeping both cores busy.
MODEL_CPUS = 0.25
DETECT_CPUS = 0.75
LOCAL_OBJECT_STORE = 256 * 2**20  # the local Ray's object store: crops in flight, not whole photos
CONNECT_TIMEOUT = 5.0  # seconds to wait for a cluster's --address to answer


class RayEngine:
    """Joins (or starts) a Ray cluster; `scan` and `rows` are those of the local engine."""

    def __init__(self, settings: BatchSettings, address: str | None = None):
        self._settings = settings.with_absolute_model()
        # On a cluster a model actor lost with its node is restarted elsewhere; on one machine a
        # lost actor (out of memory) would only die again, and Ray logs a notice per restartable actor.
        self._restarts = -1 if address else 0
        _connect(address)

    def scan(self, folder: str, recursive: bool = True) -> tuple[list[tuple[str, str]], list[dict], list[str]]:
        """The folder's images as the local engine lists them, listed by a task on the cluster,
        which also loads the model there once, so a bad `--model` fails before any work."""
        found = ray.get(_scan.remote(_absolute(folder), recursive, self._settings))
        if isinstance(found, Exception):
            raise found
        return found

    def rows(self, items: Sequence[tuple[str, str]], progress: Progress) -> Iterator[list[dict]]:
        """Lists of rows, each complete for a group of images, in the order groups finish."""
        if not items:
            return
        images = ray.data.from_items([{"name": name, "path": str(path)} for name, path in items],
                                     override_num_blocks=math.ceil(len(items) / IMAGES_PER_TASK))
        found = images.map_batches(_detect, fn_args=(self._settings,), batch_size=None, batch_format="numpy",
                                   num_cpus=DETECT_CPUS)
        with warnings.catch_warnings():  # Ray 2.60 has no named parameter for max_restarts yet
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
            rows = found.map_batches(_Reader, fn_constructor_args=(self._settings,), batch_size=BATCH_FACES,
                                     batch_format="numpy",
                                     compute=ray.data.ActorPoolStrategy(min_size=1, max_size=_model_actors()),
                                     num_cpus=MODEL_CPUS, max_restarts=self._restarts)
        done = 0
        for block in rows.iter_batches(batch_size=None, batch_format="pyarrow"):
            group = block.to_pylist()
            done += len({row["file"] for row in group})
            progress(done, len(items))
            yield group


def _absolute(path: str) -> str:
    """A local path that means the same to a worker whatever its working folder; URIs as given."""
    return path if "://" in path else os.path.abspath(path)


def _connect(address: str | None) -> None:
    """Join the cluster at `address`, or start a small private Ray on this machine (one logical
    CPU per core, a small object store, no dashboard) that ends with this process; quiet either way."""
    if not ray.is_initialized():
        _init(address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the CLI has its own bar, with rate and ETA
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # e.g. "progress bars disabled"


def _init(address: str | None) -> None:
    if address:
        _reachable(address)
    # Token authentication stays on; only its notice that it is on is hushed.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    quiet = dict(logging_level=logging.WARNING, log_to_driver=False, configure_logging=True)
    if address:  # the workers get this package with the job; its requirements must be installed there
        ray.init(address=address, runtime_env={"py_modules": [str(Path(__file__).parents[1])]}, **quiet)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE,
                 include_dashboard=False, **quiet)


def _reachable(address: str) -> None:
    """ConnectionError, in one line, when nothing answers at a HOST:PORT or ray://HOST:PORT
    address within CONNECT_TIMEOUT seconds (Ray itself retries for minutes, printing C++ warnings)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local" or a form Ray checks itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ConnectionError(f"cannot reach a Ray cluster at {address} ({reason} within {CONNECT_TIMEOUT:g} s): "
                              "check --address, or leave it out to start a Ray on this machine") from None


def _model_actors() -> int:
    """The most model actors worth having: the model being about a fifth of the work, one actor
    per four CPUs of the cluster keeps up; each more would only cost a start and its memory."""
    return max(1, round(ray.cluster_resources().get("CPU", 1) * MODEL_CPUS))


@functools.cache
def _analyzer(settings: BatchSettings) -> FaceAnalyzer:
    """One analyzer per worker process, reused by every task that process runs."""
    return settings.analyzer(threads=1)


@ray.remote(num_cpus=0.1)
def _scan(folder: str, recursive: bool, settings: BatchSettings):
    """(files, problems, notes) as `scan_folder` gives them, or the exception that stopped it
    (returned, not raised, so the caller sees the plain error and not a remote traceback)."""
    try:
        _analyzer(settings)
        return _list_uri(folder, recursive) if "://" in folder else scan_folder(folder, recursive)
    except Exception as exc:  # noqa: BLE001 - any failure here is the caller's to report
        return exc


def _list_uri(uri: str, recursive: bool) -> tuple[list[tuple[str, str]], list[dict], list[str]]:
    """`scan_folder` for a folder on a filesystem Ray reads (s3://, gs://, hdfs://, file://)."""
    filesystem, base = pafs.FileSystem.from_uri(uri)
    if filesystem.get_file_info(base).type != pafs.FileType.Directory:
        raise NotADirectoryError(f"not a folder: {uri}")
    infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=recursive))
    paths = sorted(info.path for info in infos if info.type == pafs.FileType.File and is_listed_image(Path(info.path)))
    prefix = uri[:len(uri) - len(base)] if uri.endswith(base) else uri.split("://")[0] + "://"
    return [(path[len(base):].lstrip("/"), prefix + path) for path in paths], [], []


def _detect(batch: dict[str, np.ndarray], settings: BatchSettings) -> dict[str, np.ndarray]:
    """Decode, detect and align a task's images: one `FoundPhoto` per image (a Python object column)."""
    analyzer = _analyzer(settings)
    found = [_find_at(analyzer, str(name), str(path)) for name, path in zip(batch["name"], batch["path"])]
    column = np.empty(len(found), dtype=object)
    column[:] = found
    return {"found": column}


def _find_at(analyzer: FaceAnalyzer, name: str, path: str) -> FoundPhoto:
    """`find_photo` for a local path or a URI; a URI's bytes are read here so a read error is a row too."""
    if "://" not in path:
        return find_photo(analyzer, name, Path(path))
    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
        size = filesystem.get_file_info(inner).size or 0
        if size > MAX_FILE_BYTES:
            return FoundPhoto(name, row=failure_row(name, "error", f"file too large for an image ({size / 2**20:.0f} MB)"))
        with filesystem.open_input_stream(inner) as stream:
            data = stream.read()
    except OSError as exc:
        return FoundPhoto(name, row=failure_row(name, "error", f"cannot read file: {exc}"))
    return find_photo(analyzer, name, data)


class _Reader:
    """A model actor: loads the analyzer once, then turns batches of found images into rows."""

    def __init__(self, settings: BatchSettings):
        self._analyzer = _analyzer(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        return pa.Table.from_pylist(read_photos(self._analyzer, list(batch["found"])), schema=SCHEMA)
