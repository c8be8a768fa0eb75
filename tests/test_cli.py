import json
import os
import subprocess
import sys

import pytest

from core.config import PROJECT_ROOT
from testkit.datasets import write_utkface_folder


def run_cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=timeout)


@pytest.mark.parametrize("sub", ["train", "evaluate", "predict", "calibrate"])
def test_every_subcommand_has_help(sub):
    result = run_cli(sub, "--help")
    assert result.returncode == 0
    assert "usage: python -m core " + sub in result.stdout


def test_top_level_help_lists_subcommands():
    result = run_cli("--help")
    assert result.returncode == 0
    for sub in ("train", "evaluate", "predict", "batch"):
        assert sub in result.stdout


@pytest.mark.parametrize("args, message", [
    (["evaluate", "--data", "/nonexistent/folder"], "error: no dataset at /nonexistent/folder"),
    (["train", "--data", "/nonexistent/folder", "--out", "/tmp/never"], "error: no dataset at"),
    (["evaluate", "--data", "{empty}"], "error: no usable labelled images"),
    (["evaluate", "--data", "{faces}", "--model", "{empty}"], "error: no model at"),
    (["evaluate", "--data", "{faces}", "--model", "{broken}"], "is not a usable LiteRT model"),
    (["evaluate", "--data", "{faces}", "--model", "{broken}", "--keras"], "is corrupt or not a Keras model"),
    (["evaluate", "--data", "{faces}", "--format", "pixels-csv"], "error: no such CSV file"),
    (["calibrate", "--model", "/nonexistent"], "error: no model at /nonexistent (expected model.json in that folder)"),
])
def test_expected_problems_give_one_clear_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    write_utkface_folder(tmp_path / "faces", n=2)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.keras").write_bytes(b"not a zip")
    (broken / "model.tflite").write_bytes(b"not a flatbuffer")
    (broken / "model.json").write_text('{"config": {}}')
    args = [a.format(empty=tmp_path / "empty", faces=tmp_path / "faces", broken=broken) for a in args]
    result = run_cli(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_predict_aligned_crops(tmp_path, tiny_model_dir):
    write_utkface_folder(tmp_path, n=2)
    (tmp_path / "bad.jpg").write_bytes(b"")
    files = sorted(tmp_path.iterdir())
    result = run_cli("predict", "--aligned", "--model", tiny_model_dir, *files)
    assert result.returncode == 0, result.stderr
    good = result.stdout.strip().splitlines()  # faces only: errors go to stderr
    assert len(good) == 2 and all(("male" in line or "female" in line) and "age" in line for line in good)
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'bad.jpg'}: empty file (0 bytes)"]


def test_train_writes_a_run_with_the_chosen_architecture(tmp_path):
    write_utkface_folder(tmp_path / "faces", n=40)
    result = run_cli("train", "--data", tmp_path / "faces", "--out", tmp_path / "run", "--epochs", 1,
                     "--image-size", 32, "--batch-size", 8, "--architecture", "mobilenetv2", "--alpha", 0.35, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done:" in result.stdout and "test gender accuracy" in result.stdout
    config = json.loads((tmp_path / "run" / "model.json").read_text())["config"]
    assert (config["architecture"], config["alpha"], config["image_size"], config["epochs"]) == ("mobilenetv2", 0.35, 32, 1)
    assert len((tmp_path / "run" / "history.csv").read_text().strip().splitlines()) == 2  # header + 1 epoch
    noise = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert noise == []  # no TensorFlow, CUDA, absl or deprecation lines: the Training page's log shows this


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="counts the process's threads in /proc; OpenBLAS starts none on one core")
def test_the_command_line_starts_no_blas_threads():
    """numpy's OpenBLAS would start a spinning thread per extra core (0.2 CPU s per command)."""
    script = ("import os, runpy, sys\n"
              "sys.argv = ['core', '--help']\n"
              "try:\n    runpy.run_module('core', run_name='__main__')\nexcept SystemExit:\n    pass\n"
              "import numpy\n"
              "print(len(os.listdir('/proc/self/task')))\n")
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1"
