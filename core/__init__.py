"""Gender and age detection: datasets, model, training, evaluation and inference.

The heavy modules (TensorFlow) are imported on first use, so `import core` and
`python -m core --help` stay fast.
"""
from .config import Config, DEFAULT_MODEL_DIR

__version__ = "0.1.0"


def train(*args, **kwargs):
    """See `core.training.train`."""
    from .training import train as _train

    return _train(*args, **kwargs)


def __getattr__(name):
    if name == "Predictor":
        from .inference import Predictor

        return Predictor
    raise AttributeError(name)


__all__ = ["Config", "DEFAULT_MODEL_DIR", "Predictor", "train"]
