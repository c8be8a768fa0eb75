"""Training runs launched from the dashboard: `python -m core train` as a background process.

The dashboard never trains in its own process: the child writes the run folder (history.csv
grows by one row per epoch) and a log, so the app stays responsive and pages only read files.
Each run belongs to the session that started it (only that one may stop it or read its log), and
`Registry` caps how many train at once: every session shares the server's two cores.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.config import PROJECT_ROOT, Config, user_options
from core.runs import HISTORY_FILE, LOG_FILE

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INTERRUPTED = 130  # the CLI's exit code after Ctrl-C before training began
MAX_TRAININGS_ENV = "AGE_GENDER_MAX_TRAININGS"  # runs training at once on this server (default 1)


DASHBOARD_EPOCHS = 10  # the form proposes a short run; the CLI's default is the full recipe


@dataclass(frozen=True)
class TrainSettings:
    """What the Training form sends to `python -m core train`: the datasets (one or several,
    with their shares of the batches, or none given: by size) and a Config, whose user-set
    options become the same flags the CLI offers (`core.cli.options.add_config_options`)."""

    data: tuple[str, ...] | str
    config: Config = field(default_factory=lambda: Config(epochs=DASHBOARD_EPOCHS))
    fmt: str | None = None
    limit: int | None = None
    resume: bool = False  # continue the run in `out` (its saved Config and split win, see core.train.training)
    weights: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "data", (self.data,) if isinstance(self.data, str) else tuple(self.data))
        if self.weights and len(self.weights) != len(self.data):
            raise ValueError(f"{len(self.weights)} shares for {len(self.data)} datasets: give one per dataset, or none")

    def command(self, out: Path) -> list[str]:
        args = [sys.executable, "-m", "core", "train", *(arg for path in self.data for arg in ("--data", path)),
                *(arg for weight in self.weights for arg in ("--weight", f"{weight:g}")), "--out", str(out)]
        for option in user_options(Config):
            flag, value = option.name.replace("_", "-"), getattr(self.config, option.name)
            args += [f"--{flag}" if value else f"--no-{flag}"] if isinstance(value, bool) else [f"--{flag}", str(value)]
        args += ["--format", self.fmt] if self.fmt else []
        args += ["--resume"] if self.resume else []
        return args + (["--limit", str(self.limit)] if self.limit else [])


@dataclass
class TrainingJob:
    run_dir: Path
    settings: TrainSettings
    process: subprocess.Popen
    owner: str  # the session that started it (`state.session_id`)
    stop_requested: bool = field(default=False)

    @property
    def active(self) -> bool:
        """Still running (or stopping): it holds one of the server's training places."""
        return self.process.poll() is None

    @property
    def status(self) -> str:
        """running, stopping (asked to stop, scoring its best epoch), finished, stopped (by the user) or failed."""
        code = self.process.poll()
        if code is None:
            return "stopping" if self.stop_requested else "running"
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
        """Ctrl-C for the child: training ends after the current step, then scores its best epoch so far."""
        if self.process.poll() is None:
            self.stop_requested = True
            self.process.send_signal(signal.SIGINT)


RESUMABLE = ("stopped", "failed")  # ended runs that --resume can continue


class ServerBusy(RuntimeError):
    """As many runs are training as the server allows; the message says so."""


def max_trainings() -> int:
    """How many runs may train at once: $AGE_GENDER_MAX_TRAININGS, default 1."""
    return int(os.environ.get(MAX_TRAININGS_ENV) or 1)


class Registry:
    """The runs launched from this server process, shared by every session (`state.training_jobs`).

    One lock, so that the cap holds when two sessions press Start together and no session reads
    the table while another changes it; readers get a copy."""

    def __init__(self) -> None:
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, TrainingJob]:
        """Display name -> job, oldest first."""
        with self._lock:
            return dict(self._jobs)

    def start(self, name: str, run_dir: Path, settings: TrainSettings, owner: str) -> TrainingJob:
        """`start` a run for `owner`, unless the cap is reached (ServerBusy) or it fails (OSError)."""
        with self._lock:
            self._refuse_when_full("start yours")
            job = self._jobs[name] = start(run_dir, settings, owner)
            return job

    def resume(self, name: str, owner: str) -> TrainingJob:
        """Continue `owner`'s stopped or failed run `name` from its last saved epoch (ServerBusy
        when the cap is reached); the run keeps its folder, log and panel."""
        with self._lock:
            job = self._jobs[name]
            if job.owner != owner or job.status not in RESUMABLE:
                raise ValueError(f"{name} is not a stopped run of this session")
            self._refuse_when_full("resume")
            job = self._jobs[name] = start(job.run_dir, replace(job.settings, resume=True), owner)
            return job

    def _refuse_when_full(self, then: str) -> None:
        """ServerBusy when the cap of concurrent trainings is reached (call with the lock held)."""
        active = sum(job.active for job in self._jobs.values())
        if active >= max_trainings():
            raise ServerBusy(f"{active} run(s) already training on this server, the most it allows at once "
                             f"(set by {MAX_TRAININGS_ENV}): {then} when one ends")

    def dismiss(self, name: str, owner: str) -> None:
        """Forget an ended run of `owner` (its folder stays, among the runs to compare)."""
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and job.owner == owner and not job.active:
                del self._jobs[name]


def start(run_dir: Path, settings: TrainSettings, owner: str) -> TrainingJob:
    """Launch training into the new folder `run_dir` (or, resuming, the run's own) for the
    session `owner`; returns at once."""
    run_dir.mkdir(parents=True, exist_ok=settings.resume)
    with (run_dir / LOG_FILE).open("a" if settings.resume else "w") as log:
        process = subprocess.Popen(
            settings.command(run_dir), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    return TrainingJob(run_dir, settings, process, owner)
