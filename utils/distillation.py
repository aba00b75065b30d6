"""Knowledge distillation: a teacher's class probabilities as soft targets, and the distillation loss.

Settings: ``learner_method_parameters.cnn.distillation: {teacher_outputs, temperature, weight}``
(``teacher_outputs: null`` is off), checked by the registry and typed once
(:class:`utils.settings.DistillationSettings`, the teacher's path resolved against the run's root).
The teacher's outputs are either the official system-output CSV (tab separated ``filename scene_label <one probability column per class>``, matched to the
training segments by filename, a file's row serving all its segments) or a ``.npy`` of shape
``(n_training_segments, n_classes)`` in the order of the training split's segments.

How the loss gets the teacher: the training targets are widened to ``(b, 2 * n_classes)`` = the
(smoothed) one-hot targets followed by the teacher's probabilities; validation rows carry zeros
there and get the plain configured loss (so ``val_loss`` stays the log loss). Metrics see only the
first ``n_classes`` columns (:func:`sliced_metrics`).

The model ends in softmax, so there are no logits to read: the student's log-probabilities
``log p`` ARE logits up to a per-row constant, and softmax is blind to such a constant, so
``softmax(z / T) = softmax(log p / T)``; likewise the teacher's logits are ``log q``. Hence::

    loss = weight * T^2 * KL(softmax(log q / T) || softmax(log p / T)) + (1 - weight) * configured_loss

with ``p`` and ``q`` clipped to ``[1e-7, 1]`` before the log (a saturated softmax has exact zeros).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from utils.errors import Task1aError

KEY = "learner_method_parameters.cnn.distillation"
PROBABILITY_TOLERANCE = 0.01  # a teacher row must sum to 1 within this (printed CSVs are rounded); rows are renormalised
LOG_EPSILON = 1e-7


def _check_probabilities(probabilities: np.ndarray, path: Path, class_count: int) -> np.ndarray:
    if probabilities.ndim != 2 or probabilities.shape[1] != class_count:
        raise Task1aError(f"teacher outputs {path}: {probabilities.shape[1] if probabilities.ndim == 2 else '?'} classes per row, expected {class_count}; give "
                          f"the teacher's {class_count} class probabilities")
    sums = probabilities.sum(axis=1)
    bad = np.flatnonzero(~np.isfinite(sums) | (probabilities.min(axis=1) < 0) | (np.abs(sums - 1) > PROBABILITY_TOLERANCE))
    if len(bad):
        raise Task1aError(f"teacher outputs {path}: row {bad[0]} is not a probability distribution (sum {sums[bad[0]]:.4g}); give softmax probabilities, not "
                          "logits")
    from utils.evaluation import normalise_probabilities  # the one renormalisation (training has its imports anyway)

    return normalise_probabilities(probabilities).astype(np.float32)


def _rows_by_name(path: Path, names: Sequence[str], class_count: int) -> np.ndarray:
    """Teacher rows of a system-output CSV for ``names`` (exact filename, else the unique basename)."""
    from utils.system_output import read_system_output

    filenames, _, probabilities = read_system_output(path)
    probabilities = _check_probabilities(probabilities, path, class_count)
    exact = {name: i for i, name in enumerate(filenames)}
    by_base: dict[str, int | None] = {}
    for i, name in enumerate(filenames):
        base = Path(name).name
        by_base[base] = None if base in by_base else i
    rows = np.empty(len(names), dtype=np.int64)
    for k, name in enumerate(names):
        row = exact.get(name, by_base.get(Path(name).name))
        if row is None:
            raise Task1aError(f"teacher outputs {path} have no row for training file {name}; give the teacher's outputs on every training file")
        rows[k] = row
    return probabilities[rows]


def load_teacher(path: str | Path, n_training: int, class_count: int, training_names: Sequence[str] | None = None) -> np.ndarray:
    """The teacher's probabilities for the training segments, ``(n_training, class_count)`` float32.

    ``path``: a ``.npy`` (rows in training order) or a system-output CSV (matched by
    ``training_names``, one per training segment).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise Task1aError(f"{KEY}.teacher_outputs {path} not found; give the teacher's system-output CSV or .npy")
    if path.suffix == ".npy":
        try:
            probabilities = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise Task1aError(f"teacher outputs {path} unreadable ({exc}); give a numpy .npy array") from None
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2 or probabilities.shape[0] != n_training:
            raise Task1aError(f"teacher outputs {path} have shape {probabilities.shape}, expected ({n_training}, {class_count}) (one row per training segment, "
                              "in order)")
        return _check_probabilities(probabilities, path, class_count)
    if training_names is None or len(training_names) != n_training:
        raise Task1aError(f"teacher outputs {path}: a CSV is matched by filename, but the training segments' filenames were not given; use a .npy or pass "
                          "training_names")
    return _rows_by_name(path, list(training_names), class_count)


# ----------------------------------------------------------------------------------------------
# Keras side (imports Keras when called)


def distillation_loss(base_loss, class_count: int, temperature: float, weight: float):
    """A Keras loss on ``y_true (b, 2 * class_count)`` = [targets, teacher probabilities] (see the module docstring)."""
    import keras
    from keras import ops

    per_example = base_loss.call if isinstance(base_loss, keras.losses.Loss) else base_loss
    t = float(temperature)

    class DistillationLoss(keras.losses.Loss):
        def call(self, y_true, y_pred):
            targets, teacher = y_true[:, :class_count], y_true[:, class_count:]
            base = per_example(targets, y_pred)
            student = ops.log_softmax(ops.log(ops.clip(y_pred, LOG_EPSILON, 1.0)) / t, axis=-1)
            soft = ops.log_softmax(ops.log(ops.clip(teacher, LOG_EPSILON, 1.0)) / t, axis=-1)
            kl = ops.sum(ops.exp(soft) * (soft - student), axis=-1)
            has_teacher = ops.sum(teacher, axis=-1) > 0
            return ops.where(has_teacher, weight * t * t * kl + (1 - weight) * base, base)

    return DistillationLoss(name="distillation")


def sliced_metrics(names: Sequence[str], class_count: int) -> list:
    """Keras metrics ``names`` on the first ``class_count`` target columns, logged under their own names."""
    import keras

    class FirstColumns(keras.metrics.Metric):
        def __init__(self, inner):
            super().__init__(name=inner.name)
            self.inner = inner  # tracked: its variables are this metric's

        def update_state(self, y_true, y_pred, sample_weight=None):
            return self.inner.update_state(y_true[:, :class_count], y_pred, sample_weight)

        def result(self):
            return self.inner.result()

        def reset_state(self):
            self.inner.reset_state()

    metrics = []
    for name in names:
        inner = keras.metrics.get(name)
        if not isinstance(inner, keras.metrics.Metric):
            inner = keras.metrics.MeanMetricWrapper(inner, name=name)
        metrics.append(FirstColumns(inner))
    return metrics
