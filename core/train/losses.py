"""The training losses and metrics: each head learns from the rows that carry its label.

Rows may lack a gender or an age (a source of gender-only portraits), or carry an age bracket
instead of an exact age (the brackets of a survey or a benchmark). So every target row says
what it holds (`core.train.targets`), and each loss weighs each row by its `weight` (0: no
label and no teacher opinion for this head). The metrics score the labels alone: gender
accuracy on rows with a gender, age MAE on rows with an exact age.
"""
from __future__ import annotations

from .backend import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from ..config import Config  # noqa: E402

EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="core")
class AgeDistributionLoss(keras.losses.Loss):
    """The age head's loss, for targets (lo, hi, teacher age, teacher share w, weight) per row
    (a plain age per row is read as an exact age without a teacher):

    - exact age (lo = hi >= 0): cross-entropy to a Gaussian label distribution around it (as in
      DLDL; noisy apparent ages make a soft target more honest than one class), plus the L1
      error of the distribution's expectation, so the point age is pulled towards the label;
    - bracket (lo < hi): minus the log of the predicted probability mass inside [lo, hi] (the
      interval likelihood: any distribution inside the bracket is right), plus the L1 distance
      of the expectation to the bracket (zero inside it);
    - no age (lo < 0): only the teacher's part, at w = 1.
    A teacher age mixes in as the same Gaussian terms around it, at share w. The row's total is
    multiplied by its weight."""

    def __init__(self, max_age: int = 116, sigma: float = 2.5, l1_weight: float = 0.1, name="age_distribution", **kwargs):
        super().__init__(name=name, **kwargs)
        self.max_age, self.sigma, self.l1_weight = max_age, sigma, l1_weight

    def call(self, y_true, y_pred):
        ages = tf.range(self.max_age + 1, dtype=tf.float32)
        lo, hi, teacher, share, weight = _age_columns(y_true)
        log_p = tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0))
        expected = tf.linalg.matvec(y_pred, ages)
        known = lo >= 0
        safe_lo, safe_hi = tf.maximum(lo, 0.0), tf.maximum(hi, 0.0)  # finite terms where the label is unknown
        exact_ce = -tf.reduce_sum(self._gaussian(ages, safe_lo) * log_p, axis=1)
        inside = tf.cast((ages[None, :] >= safe_lo[:, None]) & (ages[None, :] <= safe_hi[:, None]), tf.float32)
        bracket_ce = -tf.math.log(tf.clip_by_value(tf.reduce_sum(y_pred * inside, axis=1), EPSILON, 1.0))
        exact = tf.equal(safe_lo, safe_hi)
        label_ce = tf.where(exact, exact_ce, bracket_ce)
        label_l1 = tf.maximum(safe_lo - expected, 0.0) + tf.maximum(expected - safe_hi, 0.0)
        teacher_ce = -tf.reduce_sum(self._gaussian(ages, teacher) * log_p, axis=1)
        teacher_l1 = tf.abs(expected - teacher)
        share = tf.where(known, share, tf.ones_like(share))
        # the L1 term of an exact label with a teacher pulls to the mix of both ages, as ever
        mixed_l1 = tf.where(known & exact, tf.abs(expected - ((1 - share) * safe_lo + share * teacher)),
                            (1 - share) * label_l1 + share * teacher_l1)
        loss = (1 - share) * label_ce + share * teacher_ce + self.l1_weight * mixed_l1
        return weight * loss

    def _gaussian(self, ages, centre):
        density = tf.exp(-0.5 * tf.square((ages[None, :] - centre[:, None]) / self.sigma))
        return density / tf.reduce_sum(density, axis=1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "max_age": self.max_age, "sigma": self.sigma, "l1_weight": self.l1_weight}


def _age_columns(y_true):
    """(lo, hi, teacher, share, weight) of age targets; a plain age per row is an exact label."""
    true = tf.cast(y_true, tf.float32)
    if true.shape.rank == 2 and true.shape[-1] == 5:
        return tuple(true[:, i] for i in range(5))
    age = tf.reshape(true, [-1])
    return age, age, age, tf.zeros_like(age), tf.ones_like(age)


@keras.saving.register_keras_serializable(package="core")
class GenderLoss(keras.losses.Loss):
    """Binary cross-entropy to the (possibly soft) target, weighted per row; targets are rows
    (target, weight, label)."""

    def __init__(self, name="gender_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        true = tf.cast(y_true, tf.float32)
        p = tf.clip_by_value(tf.reshape(y_pred, [-1]), EPSILON, 1 - EPSILON)
        target, weight = true[:, 0], true[:, 1]
        return weight * -(target * tf.math.log(p) + (1 - target) * tf.math.log(1 - p))


@keras.saving.register_keras_serializable(package="core")
class GenderAccuracy(keras.metrics.BinaryAccuracy):
    """Accuracy against the gender label (column 2 of the target rows), on rows that have one."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        label = tf.cast(y_true, tf.float32)[:, 2]
        return super().update_state(tf.maximum(label, 0.0)[:, None], y_pred, tf.cast(label >= 0, tf.float32))


@keras.saving.register_keras_serializable(package="core")
class AgeMAE(keras.metrics.Mean):
    """Mean absolute error in years of the expected age, on rows with an exact age label
    (logged as `age_mae`)."""

    def __init__(self, name="mae", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        lo, hi, _, _, _ = _age_columns(y_true)
        ages = tf.range(tf.shape(y_pred)[-1], dtype=tf.float32)
        labelled = tf.cast((lo >= 0) & tf.equal(lo, hi), tf.float32)
        return super().update_state(tf.abs(tf.linalg.matvec(y_pred, ages) - lo), labelled)


@keras.saving.register_keras_serializable(package="core")
class EmbeddingLoss(keras.losses.Loss):
    """1 - cosine between the training-only `embedding` head and a teacher's embedding of the same
    image. Targets are rows (mask, embedding...): mask 0 (validation, test, images the teacher has
    no embedding for) contributes nothing, so validation loss stays the labels' loss."""

    def __init__(self, name="embedding_cosine", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        true = tf.cast(y_true, tf.float32)
        mask, target = true[:, 0], tf.math.l2_normalize(true[:, 1:], axis=1)
        return mask * (1.0 - tf.reduce_sum(target * tf.math.l2_normalize(y_pred, axis=1), axis=1))


def compile_model(model: keras.Model, config: Config) -> None:
    loss = {"gender": GenderLoss(), "age": AgeDistributionLoss(config.max_age, config.age_sigma)}
    weights = {"gender": 1.0, "age": config.age_loss_weight}
    if "embedding" in model.output:
        loss["embedding"], weights["embedding"] = EmbeddingLoss(), config.embedding_weight
    model.compile(
        optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay,
                                         use_ema=config.ema > 0, ema_momentum=config.ema or 0.99),
        loss=loss, loss_weights=weights,
        metrics={"gender": [GenderAccuracy(name="accuracy")], "age": [AgeMAE()]},
    )
