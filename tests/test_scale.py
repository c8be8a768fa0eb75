"""The Ray engine (`batch --engine ray`) on a local two-worker Ray: the local engine's rows, bad
files as error rows, resume, Parquet parts. Skipped when Ray (requirements-scale.txt) is absent."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from core.batch.output import read_results  # noqa: E402
from core.cli import main  # noqa: E402
from testkit.faces import astronaut_crops, jpeg_bytes, one_face_photo, write_bad_folder  # noqa: E402

PHOTOS = 24


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes' worth of CPUs; the engine joins it instead of starting its own."""
    ray.init(num_cpus=2, object_store_memory=128 * 2**20, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A few dozen one-face photos beside every kind of bad file a real folder holds (the
    astronaut's twelve crops, each in two or three photos at different sizes and places)."""
    root = tmp_path_factory.mktemp("scale")
    crops = (astronaut_crops(12) * 3)[:PHOTOS + 1]
    write_bad_folder(root, one_face_photo(crops[0], seed=1))
    (root / "many").mkdir()
    for i, crop in enumerate(crops[1:]):
        (root / "many" / f"p{i:02d}.jpg").write_bytes(jpeg_bytes(one_face_photo(crop, side=140 + 7 * i, seed=i)))
    return root


def batch(folder, out, model, *extra) -> tuple[int, pd.DataFrame]:
    code = main(["batch", str(folder), "--out", str(out), "--model", str(model), *extra])
    return code, read_results(out).sort_values(["file", "face"], ignore_index=True)


@pytest.fixture(scope="module")
def local(folder, tiny_model_dir, tmp_path_factory):
    return batch(folder, tmp_path_factory.mktemp("local") / "local.csv", tiny_model_dir)[1]


@pytest.fixture(scope="module")
def on_ray(cluster, folder, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "ray.csv"
    code, table = batch(folder, out, tiny_model_dir, "--engine", "ray")
    assert code == 0
    return out, table


def test_ray_gives_the_local_engines_rows(local, on_ray):
    pd.testing.assert_frame_equal(on_ray[1], local)
    assert (local["status"] == "ok").sum() >= PHOTOS  # the photos' faces, and the good copies'


def test_bad_files_become_error_rows(on_ray):
    errors = on_ray[1].set_index("file").loc[["empty.jpg", "truncated.jpg", "text.png", "dangling.jpg"]]
    assert set(errors["status"]) == {"error"}
    assert "empty" in errors.loc["empty.jpg", "error"] and "truncated" in errors.loc["truncated.jpg", "error"]


def test_a_uri_folder_is_read_through_rays_filesystems(local, folder, tiny_model_dir, tmp_path, cluster):
    code, table = batch(f"file://{folder / 'many'}", tmp_path / "uri.csv", tiny_model_dir, "--engine", "ray")
    expected = local[local["file"].str.startswith("many/")].assign(file=lambda t: t["file"].str[5:])
    assert code == 0 and table["error"].isna().all()
    pd.testing.assert_frame_equal(table.drop(columns="error"), expected.drop(columns="error").reset_index(drop=True))


def test_summary_matches_the_local_engine(folder, tiny_model_dir, tmp_path, cluster, capsys):
    texts = []
    for engine in ("local", "ray"):
        main(["batch", str(folder), "--out", str(tmp_path / f"{engine}.csv"), "--model", str(tiny_model_dir), "--engine", engine])
        lines = capsys.readouterr().out.splitlines()
        texts.append([lines[0].split(" in ")[0]] + lines[1:-1])  # all but the timing and the file name
    assert texts[0] == texts[1] and "  error: empty file (1)" in texts[1]


def test_resume_analyses_only_what_is_missing(on_ray, local, tiny_model_dir, folder, tmp_path, cluster, capsys):
    out = tmp_path / "resumed.csv"
    text = on_ray[0].read_text(encoding="utf-8")
    out.write_text(text[: len(text) // 2], encoding="utf-8")  # killed mid-line, halfway
    code, table = batch(folder, out, tiny_model_dir, "--engine", "ray", "--resume")
    assert code == 0
    pd.testing.assert_frame_equal(table, local)
    assert "from the earlier run)" in capsys.readouterr().out


def test_parquet_parts_hold_the_same_rows_and_resume(local, tiny_model_dir, folder, tmp_path, cluster, monkeypatch):
    """Small model batches and parts: many parts, each of whole images, whatever the batch."""
    import core.batch.parts
    import core.batch.ray

    monkeypatch.setattr(core.batch.ray, "IMAGES_PER_TASK", 4)
    monkeypatch.setattr(core.batch.ray, "BATCH_FACES", 4)
    monkeypatch.setattr(core.batch.parts, "PART_ROWS", 10)
    out = tmp_path / "results.parquet"
    code, table = batch(folder, out, tiny_model_dir, "--engine", "ray")
    parts = sorted(out.glob("part-*.parquet"))
    assert code == 0 and len(parts) >= 3
    pd.testing.assert_frame_equal(table, local)
    assert len(pd.read_parquet(out)) == len(local)  # the folder reads as one table
    for part in parts[-2:]:  # a run killed two parts before its end, one part half written
        part.unlink()
    (out / ".part-00009.parquet.partial").write_bytes(b"PAR1 cut short")
    code, table = batch(folder, out, tiny_model_dir, "--engine", "ray", "--resume")
    assert code == 0
    pd.testing.assert_frame_equal(table, local)


def test_ray_is_imported_only_for_the_ray_engine(folder, tiny_model_dir, tmp_path):
    script = (f"import sys; from core.cli import main; main(['batch', {str(folder)!r}, '--out', "
              f"{str(tmp_path / 'out.csv')!r}, '--model', {str(tiny_model_dir)!r}]); "
              "import core.cli; assert 'ray' not in sys.modules, 'ray was imported'")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)


def test_a_cluster_job_ships_the_whole_core_package(monkeypatch):
    """With --address the workers get the project's code from the job: it must be `core`
    itself (with its __init__), not the batch package the engine lives in."""
    from core.batch import ray as engine
    from core.batch.settings import BatchSettings

    calls = []
    monkeypatch.setattr(engine.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(engine.ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(engine, "_reachable", lambda address: None)  # no head to answer the probe here
    engine.RayEngine(BatchSettings(), address="ray://head:10001")
    (shipped,) = calls[0]["runtime_env"]["py_modules"]
    assert Path(shipped).name == "core" and (Path(shipped) / "__init__.py").is_file()
