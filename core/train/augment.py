"""Training-time augmentation on whole batches, as TensorFlow ops inside the tf.data pipeline.

One random similarity transform per image (rotation, scale, shift, horizontal flip) applied
with a single projective warp, then brightness and contrast jitter. Batched ops keep the input
pipeline far cheaper than the model's own step on a 2-core CPU.

`degrade_images` adds the damage of real photos (`core.data.corruptions`, `Config.degrade`) before
that; it runs the same numpy/OpenCV code the robustness benchmark uses, through
`tf.numpy_function` (a few milliseconds per batch of 48 px crops). `hide_outside_face`
(`Config.face_only`) takes the hairstyle away from some crops, also before the warp.
"""
from __future__ import annotations

import math

from ..data.corruptions import degrade_batch
from .backend import import_tensorflow

tf = import_tensorflow()

MAX_ROTATION_DEG = 12.0
SCALE_RANGE = (0.9, 1.12)
MAX_SHIFT = 0.07  # fraction of the image side
BRIGHTNESS = 0.15  # fraction of the 0-255 range
CONTRAST_RANGE = (0.75, 1.25)
# The inner face of an aligned crop as an ellipse, in fractions of the crop side: centre x, y,
# half-width, half-height. From core.detect.align.YUNET_TEMPLATE (eyes at y 0.29, x 0.29 and 0.68;
# mouth at y 0.68): brow to chin, cheek to cheek; it keeps about 65 % of the crop.
FACE_ELLIPSE = (0.487, 0.50, 0.40, 0.52)


def augment_batch(images: tf.Tensor) -> tf.Tensor:
    """Randomly transform a float32 batch (n, h, w, 3) with values 0-255; returns the same shape."""
    n = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    angle = tf.random.uniform([n], -1.0, 1.0) * (MAX_ROTATION_DEG * math.pi / 180)
    scale = tf.random.uniform([n], *SCALE_RANGE)
    shift = tf.random.uniform([n, 2], -MAX_SHIFT, MAX_SHIFT) * size
    flip = tf.where(tf.random.uniform([n]) < 0.5, -1.0, 1.0)
    # Output pixel p maps to input pixel A p + b: rotate/scale about the centre, then shift.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre = (size - 1) / 2
    a0, a1 = cos * flip, -sin
    b0, b1 = sin * flip, cos
    a2 = centre - a0 * centre - a1 * centre + shift[:, 0]
    b2 = centre - b0 * centre - b1 * centre + shift[:, 1]
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT",
    )
    brightness = tf.random.uniform([n, 1, 1, 1], -BRIGHTNESS, BRIGHTNESS) * 255.0
    contrast = tf.random.uniform([n, 1, 1, 1], *CONTRAST_RANGE)
    mean = tf.reduce_mean(warped, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((warped - mean) * contrast + mean + brightness, 0.0, 255.0)


def degrade_images(images: tf.Tensor, probability: float) -> tf.Tensor:
    """Each corruption of `core.data.corruptions` applied to each image with `probability`."""
    seed = tf.random.uniform([], 0, 2**31 - 1, dtype=tf.int64)  # drawn by TF: seeded runs repeat
    degraded = tf.numpy_function(lambda x, s: degrade_batch(x, int(s), probability), [images, seed], tf.float32,
                                 stateful=True)
    return tf.ensure_shape(degraded, images.shape)


def hide_outside_face(images: tf.Tensor, probability: float) -> tf.Tensor:
    """With `probability` per image, everything outside FACE_ELLIPSE (hair, ears, neck,
    background) becomes one flat random colour, so the model must also read gender and age from
    the face itself, not only from the hairstyle. Made to test whether the hairstyle is why women
    with their hair tied back read as men (all of Model 2's face-research-lab errors); at 0.4 it
    did not fix them (models/default/MODEL_CARD.md). Run before `augment_batch`, whose warp then
    moves the ellipse with the face."""
    n, size = tf.shape(images)[0], tf.shape(images)[1]
    line = (tf.range(size, dtype=tf.float32) + 0.5) / tf.cast(size, tf.float32)
    cx, cy, half_width, half_height = FACE_ELLIPSE
    inside = ((line[None, :] - cx) / half_width) ** 2 + ((line[:, None] - cy) / half_height) ** 2 <= 1.0
    hide = tf.logical_and(tf.random.uniform([n, 1, 1, 1]) < probability, tf.logical_not(inside)[None, :, :, None])
    return tf.where(hide, tf.random.uniform([n, 1, 1, 3], 0.0, 255.0), images)
