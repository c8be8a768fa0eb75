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


# Each command's help must offer the flags its docs promise (a parser that lost one fails here).
PROMISED_FLAGS = {"train": ["--data", "--format", "--weight", "--out", "--epochs", "--image-size", "--balance", "--teacher",
                            "--resume", "--overwrite", "--limit"],
                  "evaluate": ["--data", "--model", "--split", "--out", "--aligned", "--detect", "--no-flip", "--json", "--keras"],
                  "predict": ["--model", "--aligned", "--json", "--interval", "--min-quality", "--age-threshold", "--detector"],
                  "batch": ["--out", "--model", "--recursive", "--aligned", "--detector", "--full-range", "--resume", "--engine",
                            "--address", "--interval"],
                  "calibrate": ["--model", "--data", "--format"], "export": ["--model"]}


@pytest.mark.parametrize("sub", sorted(PROMISED_FLAGS))
def test_every_subcommand_has_help_with_its_flags(sub):
    result = run_cli(sub, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m core " + sub)
    for flag in PROMISED_FLAGS[sub]:
        assert f" {flag}" in result.stdout, flag


def test_top_level_help_lists_subcommands_and_stays_fast():
    """--help must not load TensorFlow, LiteRT or OpenCV: it answers at once."""
    code = ("import sys; sys.argv = ['python -m core', '--help']\nfrom core.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'cv2', 'ai_edge_litert', 'pandas') if m in sys.modules]\n"
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    for sub in PROMISED_FLAGS:
        assert sub in result.stdout


def test_ctrl_c_in_a_batch_says_interrupted_and_keeps_whole_rows(tmp_path, tiny_model_dir):
    import signal
    import time

    from PIL import Image

    from testkit.datasets import synthetic_face

    (tmp_path / "in").mkdir()
    for i in range(3000):  # enough that even a fast run on an idle machine is still going when Ctrl-C comes
        Image.fromarray(synthetic_face(30, i % 2, size=48, seed=i % 50)).save(tmp_path / "in" / f"p{i:04d}.png")
    out = tmp_path / "rows.csv"
    # started with SIGINT ignored, as `cmd &` without job control (and a server started so) passes
    # it down: the command must still stop on it (the dashboard's Stop sends SIGINT)
    run = subprocess.Popen([sys.executable, "-m", "core", "batch", str(tmp_path / "in"), "--out", str(out), "--model",
                            str(tiny_model_dir), "--aligned"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while (not out.exists() or len(out.read_text().splitlines()) < 130) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    rows = out.read_text().splitlines()
    assert 130 <= len(rows) - 1 < 3000 and all(row.count(",") == rows[0].count(",") for row in rows)


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
