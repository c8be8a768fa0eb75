"""TensorFlow, imported once for the training package without its start-up chatter.

Only `core.train` imports TensorFlow (tests/test_architecture.py holds every other module to
that): predicting, batch, video and the dashboard run LiteRT and never pay for it.
"""
from __future__ import annotations

import os
import sys

from ..quiet import native_stderr_silenced


def import_tensorflow():
    """`import tensorflow` without its start-up chatter; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_stderr_silenced():
        import tensorflow

        tensorflow.config.list_physical_devices()  # probes CUDA now, while silenced ("failed call to cuInit")
    return tensorflow
