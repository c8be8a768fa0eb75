"""Training runs launched from the dashboard: `python -m core train` as a background process.

The dashboard never trains in its own process: the child writes the run folder (history.csv
grows by one row per epoch) and a log, so the app stays responsive and pages only read files.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.config import PROJECT_ROOT, Config
from core.runs import HISTORY_FILE, LOG_FILE

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INTERRUPTED = 130  # the CLI's exit code after Ctrl-C before training began


DASHBOARD_EPOCHS = 10  # the form proposes a short run; the CLI's default is the full recipe


@dataclass(frozen=True)
class TrainSettings:
    """What the Training form sends to `python -m core train`: the dataset and a Config, whose
    user-set options become the same flags the CLI offers (`core.cli.add_config_options`)."""

    data: str
    config: Config = field(default_factory=lambda: Config(epochs=DASHBOARD_EPOCHS))
    fmt: str | None = None
    limit: int | None = None

    def command(self, out: Path) -> list[str]:
        args = [sys.executable, "-m", "core", "train", "--data", self.data, "--out", str(out)]
        for option in Config.options():
            flag, value = option.name.replace("_", "-"), getattr(self.config, option.name)
            args += [f"--{flag}" if value else f"--no-{flag}"] if option.type == "bool" else [f"--{flag}", str(value)]
        args += ["--format", self.fmt] if self.fmt else []
        return args + (["--limit", str(self.limit)] if self.limit else [])


@dataclass
class TrainingJob:
    run_dir: Path
    settings: TrainSettings
    process: subprocess.Popen
    stop_requested: bool = field(default=False)

    @property
    def status(self) -> str:
        """running, finished, stopped (by the user) or failed."""
        code = self.process.poll()
        if code is None:
            return "running"
        if code == 0:
            return "stopped" if self.stop_requested else "finished"
        return "stopped" if self.stop_requested and code in (INTERRUPTED, -signal.SIGINT) else "failed"

    def epochs_done(self) -> int:
        history = self.run_dir / HISTORY_FILE
        return max(0, len(history.read_text().splitlines()) - 1) if history.is_file() else 0

    def log_lines(self) -> list[str]:
        """The log as lines, progress-bar redraws (carriage returns) split into their own lines."""
        log = self.run_dir / LOG_FILE
        text = log.read_text(errors="replace") if log.is_file() else ""
        return [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]

    def error(self) -> str:
        """Why the run failed: the CLI's `error:` line, else the last log line (a traceback's end)."""
        lines = self.log_lines()
        return next((line for line in reversed(lines) if line.startswith("error:")), lines[-1] if lines else
                    f"exit code {self.process.returncode}")

    def stop(self) -> None:
        """Ctrl-C for the child: training stops at once, keeps and scores its best epoch so far."""
        if self.process.poll() is None:
            self.stop_requested = True
            self.process.send_signal(signal.SIGINT)


def start(run_dir: Path, settings: TrainSettings) -> TrainingJob:
    """Launch training into the new folder `run_dir`; returns at once."""
    run_dir.mkdir(parents=True, exist_ok=False)
    with (run_dir / LOG_FILE).open("w") as log:
        process = subprocess.Popen(
            settings.command(run_dir), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    return TrainingJob(run_dir, settings, process)
