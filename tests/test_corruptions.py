"""The real-photo corruptions shared by training augmentation and bench/robustness.py."""
import numpy as np
import pytest

from core.data.corruptions import CORRUPTIONS, degrade_batch
from testkit.datasets import synthetic_face


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
@pytest.mark.parametrize("side", [48, 200])
def test_each_corruption_changes_the_crop_and_keeps_its_shape(name, side):
    crop = synthetic_face(30, 1, size=side)
    out = CORRUPTIONS[name](crop, np.random.default_rng(0))
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - crop).mean() > 1.0
    again = CORRUPTIONS[name](crop, np.random.default_rng(0))
    assert np.array_equal(out, again)  # the same generator state gives the same damage


def test_degrade_batch_respects_its_probability():
    batch = np.stack([synthetic_face(30, i % 2, seed=i) for i in range(16)]).astype(np.float32)
    assert np.array_equal(degrade_batch(batch, seed=1, probability=0.0), batch)
    damaged = degrade_batch(batch, seed=1, probability=1.0)
    assert damaged.shape == batch.shape and damaged.dtype == np.float32
    assert (np.abs(damaged - batch).mean(axis=(1, 2, 3)) > 1.0).all()


def test_training_pipeline_degrades_batches():
    from core.config import Config
    from core.train.pipeline import make_pipeline
    from core.train.targets import Targets

    images = np.stack([synthetic_face(30, i % 2, seed=i) for i in range(8)])
    config = Config(batch_size=8, degrade=1.0, augment=False)
    plain = Config(batch_size=8, augment=False)
    targets = Targets(np.tile([[0, 1, 0]], (8, 1)).astype(np.float32), np.tile([[30, 30, 30, 0, 1]], (8, 1)).astype(np.float32))
    damaged, _ = next(iter(make_pipeline(images, targets, config, training=True)[0]))
    clean, _ = next(iter(make_pipeline(images, targets, plain, training=True)[0]))
    assert damaged.shape == clean.shape == (8, 48, 48, 3)
    assert float(np.abs(np.sort(damaged.numpy().ravel()) - np.sort(clean.numpy().ravel())).mean()) > 1.0
