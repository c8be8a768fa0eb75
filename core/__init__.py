"""Gender and age detection: datasets, model, training, evaluation and inference.

The public API (see the README): `Config`, `Predictor`, `FaceAnalyzer`, `build_detector` here, and
training's `core.train.training.train` (apart: it imports TensorFlow).
The heavy parts (TensorFlow, LiteRT, OpenCV) are imported on first use, so `import core` and
`python -m core --help` stay fast.
"""
from .config import DEFAULT_MODEL_DIR, Config

__version__ = "0.1.0"
_LAZY = {"Predictor": "core.inference.predictor", "FaceAnalyzer": "core.analysis.pipeline",
         "build_detector": "core.detect"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["Config", "DEFAULT_MODEL_DIR", "FaceAnalyzer", "Predictor", "build_detector"]
