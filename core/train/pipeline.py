"""Batches for training and validation: images held in memory at model resolution, drawn by
index, then damaged like real photos, hidden outside the face and augmented (`core.train.augment`).

Each training epoch draws as many rows as the training split has: a fresh permutation when
every row is as likely as any other, else rows drawn by their sampling weights
(`core.data.sources.sampling_weights`: a share of the batches per source, balanced cells), so
a small source can weigh as much as a big one. The draws of every epoch come from the seed and
the epoch's number, so a resumed run sees the batches it would have seen.
"""
from __future__ import annotations

import numpy as np

from ..config import Config
from .augment import augment_batch, degrade_images, hide_outside_face
from .backend import import_tensorflow
from .targets import Targets

tf = import_tensorflow()


def epoch_order(n: int, epoch: int, seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    """The rows of one training epoch, in order: a permutation, or n weighted draws."""
    rng = np.random.default_rng([seed, epoch])
    if weights is None:
        return rng.permutation(n)
    return rng.choice(n, size=n, p=weights / weights.sum())


def make_pipeline(images: np.ndarray, targets: Targets, config: Config, training: bool,
                  weights: np.ndarray | None = None, first_epoch: int = 0):
    """(dataset, batches per epoch). Training: the epochs first_epoch..config.epochs - 1, drawn
    as `epoch_order` says and augmented; otherwise every row once, in order."""
    heads = targets.as_dict()
    steps = int(np.ceil(len(images) / config.batch_size))
    if not training:
        data = tf.data.Dataset.from_tensor_slices((images, heads)).batch(config.batch_size)
        return data.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(tf.data.AUTOTUNE), steps
    order = np.concatenate([_batched(epoch_order(len(images), epoch, config.seed, weights), config.batch_size)
                            for epoch in range(first_epoch, config.epochs)])
    names = list(heads)

    def gather(index):
        return (images[index].astype(np.float32), *(heads[name][index] for name in names))

    def load(index):
        out = tf.numpy_function(gather, [index], [tf.float32] + [tf.float32] * len(names))
        out[0].set_shape([None, *images.shape[1:]])
        for tensor, name in zip(out[1:], names):
            tensor.set_shape([None, heads[name].shape[1]])
        return out[0], dict(zip(names, out[1:]))

    data = tf.data.Dataset.from_tensor_slices(order).map(lambda index: index[index >= 0]).map(
        load, num_parallel_calls=tf.data.AUTOTUNE)
    if config.degrade > 0:
        data = data.map(lambda x, y: (degrade_images(x, config.degrade), y), num_parallel_calls=tf.data.AUTOTUNE)
    if config.face_only > 0:
        data = data.map(lambda x, y: (hide_outside_face(x, config.face_only), y), num_parallel_calls=tf.data.AUTOTUNE)
    if config.augment:
        data = data.map(lambda x, y: (augment_batch(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE), steps


def _batched(order: np.ndarray, size: int) -> np.ndarray:
    """An epoch's rows as a (batches, size) array, the last batch padded with -1."""
    padded = np.full(int(np.ceil(len(order) / size)) * size, -1, np.int64)
    padded[:len(order)] = order
    return padded.reshape(-1, size)
