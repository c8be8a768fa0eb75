"""Fitting a run's answers on its validation split: age intervals and the gender temperature.

The method is `core.inference.calibration` (what `Predictor` reads); here the run's model is run
over held-out faces and the result saved into the run folder. Training does it at its end,
`python -m core calibrate` again for any run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.datasets import DatasetError, load_dataset, load_images, select_split
from ..inference.calibration import AgeCalibration, fit
from ..inference.predictor import Predictor
from ..runs import model_folder, read_settings


def calibrate_folder(model_dir: str | Path, data: str | Path, data_format: str | None = None) -> AgeCalibration:
    """Fit on the validation split of the run's split.csv (images read from `data`) and save.
    ModelError first when `model_dir` holds no model (before any dataset is read)."""
    image_size = read_settings(model_dir)[1].image_size
    table = select_split(load_dataset(data, data_format), model_folder(model_dir), "val")
    if table.empty:
        raise DatasetError(f"none of the images in {data} are in the validation split of {model_dir}")
    images, ok = load_images(table, image_size, progress=False)
    return calibrate_images(model_dir, images[ok], table["age"].to_numpy()[ok], table["gender"].to_numpy()[ok],
                            f"validation split of {model_folder(model_dir).name}/split.csv ({int(ok.sum())} faces)")


def calibrate_images(model_dir: str | Path, images: np.ndarray, true_ages: np.ndarray, genders: np.ndarray,
                     source: str) -> AgeCalibration:
    """Fit on held-out images (uint8, any size) with their true ages and genders, and save into the run."""
    predictor = Predictor(model_dir)
    dist, p_female = predictor.predict_distributions(predictor.prepare(images), raw=True)
    calibration = fit(dist, true_ages, source, p_female, genders)
    calibration.save(predictor.model_dir)
    return calibration
