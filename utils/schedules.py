"""Learning-rate schedules usable in YAML as Keras schedule configs, and the ``TRAINING_STEPS`` placeholder.

Owns :class:`WarmupCosineDecay` (registered with Keras, so an optimizer config may name it) and
:func:`with_training_steps`, which replaces the string ``TRAINING_STEPS`` anywhere in an optimizer
config by the training's number of optimizer steps (epochs x steps per epoch). In ``task1a.yaml``::

    optimizer:
      class_name: AdamW
      config:
        learning_rate: {class_name: WarmupCosineDecay, config: {learning_rate: 0.0005, warmup_steps: 200, total_steps: TRAINING_STEPS}}
        weight_decay: 0.0001
        epsilon: 1.0e-08

The schedule is the one of ``transformers.get_cosine_schedule_with_warmup`` (``num_cycles`` 0.5), which
the official DCASE2025 baseline uses per optimizer step: a linear warm-up from 0 to ``learning_rate``
over ``warmup_steps``, then a half cosine down to 0 at ``total_steps`` (a training shorter than the
warm-up, such as a device's few clips, stays in the warm-up, as with ``transformers``). The step is the optimizer's
``iterations`` (0-based), so the first batch trains at learning rate 0 when ``warmup_steps`` > 0.
"""

from __future__ import annotations

import math

import keras

TRAINING_STEPS = "TRAINING_STEPS"
"""The placeholder an optimizer config may hold for the training's number of optimizer steps."""


@keras.saving.register_keras_serializable(package="task1a")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up then cosine decay, per optimizer step (``transformers``' cosine schedule with warm-up).

    ``lr(step) = learning_rate * step / warmup_steps`` for ``step < warmup_steps``, then
    ``learning_rate * max(0, 0.5 * (1 + cos(pi * progress)))`` with
    ``progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)``: 0 at ``total_steps`` (a
    training of ``total_steps`` steps never goes beyond; past it the formula, as ``transformers``', rises again).
    """

    def __init__(self, learning_rate: float, warmup_steps: int, total_steps: int):
        if isinstance(total_steps, str):
            raise ValueError(f"WarmupCosineDecay total_steps {total_steps!r} was not replaced; the learning stage replaces {TRAINING_STEPS}")
        for name, value, low in (("learning_rate", learning_rate, 0), ("warmup_steps", warmup_steps, 0), ("total_steps", total_steps, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or not math.isfinite(value):
                raise ValueError(f"WarmupCosineDecay {name} must be a number >= {low}, got {value!r}")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warmup = ops.cast(self.warmup_steps, "float32")
        warming = step / ops.maximum(warmup, 1.0)
        progress = (step - warmup) / float(max(1, self.total_steps - self.warmup_steps))
        cosine = ops.maximum(0.0, 0.5 * (1.0 + ops.cos(math.pi * progress)))
        return self.learning_rate * ops.where(step < warmup, warming, cosine)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


CUSTOM_OBJECTS = {"WarmupCosineDecay": WarmupCosineDecay}
"""The schedules by the plain class name a YAML config gives (``keras.saving.custom_object_scope``)."""


def reference_learning_rate(step: int, learning_rate: float, warmup_steps: int, total_steps: int) -> float:
    """The schedule in plain Python (``transformers``' formula), for checking :class:`WarmupCosineDecay`."""
    if step < warmup_steps:
        return learning_rate * step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return learning_rate * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def with_training_steps(config, total_steps: int):
    """``config`` (an optimizer config, any nesting) with every ``"TRAINING_STEPS"`` string replaced by ``total_steps``."""
    if isinstance(config, dict):
        return {key: with_training_steps(value, total_steps) for key, value in config.items()}
    if isinstance(config, list):
        return [with_training_steps(value, total_steps) for value in config]
    return int(total_steps) if config == TRAINING_STEPS else config


def uses_training_steps(config) -> bool:
    """Whether an optimizer config holds the ``TRAINING_STEPS`` placeholder."""
    return with_training_steps(config, 0) != config
