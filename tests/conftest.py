"""Shared fixtures: the real dataset (skipped when absent), tiny models, and the shipped model."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
try:  # pylibsrtp (under streamlit-webrtc) segfaults when imported after TensorFlow: load it first
    import pylibsrtp  # noqa: F401
except ImportError:
    pass

from core.config import DEFAULT_DATASET_DIR, DEFAULT_MODEL_DIR, Config  # noqa: E402

TINY_CONFIG = Config(image_size=32, width=8, epochs=1, batch_size=16, max_age=116)


@pytest.fixture(scope="session")
def utkface_dir() -> Path:
    """The UTKFace folder from ../shared/datasets; tests that need it skip when it is absent."""
    if not DEFAULT_DATASET_DIR.is_dir():
        pytest.skip(f"UTKFace dataset not found at {DEFAULT_DATASET_DIR}")
    return DEFAULT_DATASET_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """An untrained tiny model saved like a real one: for plumbing tests, not for accuracy."""
    from core.train.model import build_model, save_model

    folder = tmp_path_factory.mktemp("tiny_model")
    save_model(build_model(TINY_CONFIG), folder, TINY_CONFIG)
    return folder


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The shipped model, for tests whose assertions need a trained network."""
    if not (DEFAULT_MODEL_DIR / "model.keras").is_file():
        pytest.skip(f"shipped model not found at {DEFAULT_MODEL_DIR}")
    return DEFAULT_MODEL_DIR
