"""`BatchSettings`: what a batch analyses photos with, built once by the CLI or a page.

Frozen and hashable, so it is also what the Ray workers receive and what keys their analyzer
cache: only what changes the analysis belongs here (not where results go or how to resume).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.pipeline import FaceAnalyzer
from ..config import DEFAULT_DETECTOR, DEFAULT_MODEL_DIR, DETECTORS, FULL_RANGE_MODES, AnswerSettings
from ..detect import build_detector
from ..inference.predictor import Predictor


@dataclass(frozen=True)
class BatchSettings:
    """The model, the detector (or `aligned`: images are ready crops) and the answer settings."""

    model: str = str(DEFAULT_MODEL_DIR)
    detector: str = DEFAULT_DETECTOR
    full_range: str = "auto"  # blazeface only: when to add its full-range model (core.detect.blazeface)
    aligned: bool = False
    answers: AnswerSettings = field(default_factory=AnswerSettings)

    def __post_init__(self):
        object.__setattr__(self, "model", str(self.model))
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {self.detector!r}")
        if self.full_range not in FULL_RANGE_MODES:
            raise ValueError(f"full_range must be one of {', '.join(FULL_RANGE_MODES)}, not {self.full_range!r}")

    def with_absolute_model(self) -> "BatchSettings":
        """The same settings with the model folder as an absolute path (a URI stays as given),
        so they mean the same to a worker whatever its working folder."""
        return self if "://" in self.model else dataclasses.replace(self, model=str(Path(self.model).absolute()))

    def analyzer(self, threads: int | None = None) -> FaceAnalyzer:
        """The detector and model these settings ask for: the one place every engine builds them
        (the local engine once, the Ray engine once per worker process)."""
        options = {"full_range": self.full_range} if self.detector == "blazeface" else {}
        detector = None if self.aligned else build_detector(self.detector, **options)
        return FaceAnalyzer(Predictor(self.model, threads=threads), detector, self.answers)

    def to_dict(self) -> dict:
        """Plain values (for recording with the results)."""
        return dataclasses.asdict(self)
