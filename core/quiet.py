"""Silence native libraries that write to the process's stderr behind Python's back.

TensorFlow prints oneDNN/CUDA/absl lines when imported (`core.train.backend`) and LiteRT
announces its XNNPACK delegate when an interpreter is built; on a CPU machine these say nothing
useful and bury the CLI's own messages. Python's own errors are unaffected: they are raised, not
printed, inside.
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

_lock = threading.Lock()


@contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null while the block runs (process-wide, so serialised)."""
    with _lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real stderr (e.g. some embedded runners): nothing to hide
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
