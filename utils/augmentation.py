"""Training-batch augmentation: mixup, SpecAugment time/frequency masks, time roll, Freq-MixStyle.

Pure numpy, applied by the learning stage's training feed to each training batch (never to
validation batches, never part of the exported model). Every augmentation is off by default; the
settings are ``learner_method_parameters.cnn.augmentation`` in task1a.yaml (:func:`check_augmentation`).
A batch's random draws come from (seed, epoch, batch) alone (:func:`batch_rng`), so a resumed
training sees exactly the batches an uninterrupted one would.

Batches are ``X (b, n_mels, n_frames, 1)`` float32 and ``targets (b, n_columns)`` float32 (class
probabilities, possibly followed by a teacher's: mixup mixes every column with the same lambda).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.errors import Task1aError
from utils.parameters import RESEARCH_OFF

KEY = "learner_method_parameters.cnn.augmentation"
# Off values of every setting: the schema, declared once in the registry (the YAML's defaults repeat them).
OFF = RESEARCH_OFF["augmentation"]
MIXSTYLE_EPS = 1e-6  # added to the per-band variance before its square root (the DCASE2024 baseline's)
_STREAM = 0x617567  # keeps augmentation draws apart from any other (seed, epoch) stream


def _number(value: Any, key: str, low: float, high: float | None = None, integer: bool = False, low_open: bool = False) -> float:
    kind = int if integer else (int, float)
    bad = isinstance(value, bool) or not isinstance(value, kind) or value < low or (low_open and value == low) or (high is not None and value > high)
    if bad:
        span = f"({low}, " if low_open else f"[{low}, "
        span += f"{high}]" if high is not None else "inf)"
        raise Task1aError(f"{KEY}.{key} must be {'an integer' if integer else 'a number'} in {span}, got {value!r}; fix the value")
    return value


def check_augmentation(config: Any) -> dict:
    """The augmentation settings with every missing entry off; one-line error naming a bad key.

    Ranges: mixup.alpha >= 0 (0 off), *_mask.count / max_width and time_roll.max_shift integers
    >= 0 (0 off), frequency_mask.fill null (the example's mean) or a number, freq_mixstyle.p in
    [0, 1] (0 off), freq_mixstyle.alpha > 0.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict) or set(config) - set(OFF):
        raise Task1aError(f"{KEY} must be a mapping with keys {', '.join(OFF)}, got {config!r}; fix the value")
    settings = {}
    for name, off in OFF.items():
        entry = config.get(name) or {}
        if not isinstance(entry, dict) or set(entry) - set(off):
            raise Task1aError(f"{KEY}.{name} must be a mapping with keys {', '.join(off)}, got {entry!r}; fix the value")
        settings[name] = {**off, **entry}
    _number(settings["mixup"]["alpha"], "mixup.alpha", 0.0)
    for name in ("time_mask", "frequency_mask"):
        for key in ("count", "max_width"):
            _number(settings[name][key], f"{name}.{key}", 0, integer=True)
    fill = settings["frequency_mask"]["fill"]
    if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float)) or not np.isfinite(fill)):
        raise Task1aError(f"{KEY}.frequency_mask.fill must be null (the example's mean) or a finite number, got {fill!r}; fix the value")
    _number(settings["time_roll"]["max_shift"], "time_roll.max_shift", 0, integer=True)
    _number(settings["freq_mixstyle"]["p"], "freq_mixstyle.p", 0.0, 1.0)
    _number(settings["freq_mixstyle"]["alpha"], "freq_mixstyle.alpha", 0.0, low_open=True)
    return settings


def is_off(settings: dict) -> bool:
    """Whether :func:`augment_batch` leaves every batch as it is."""
    return (settings["mixup"]["alpha"] == 0 and settings["time_roll"]["max_shift"] == 0 and settings["freq_mixstyle"]["p"] == 0
            and all(settings[name]["count"] == 0 or settings[name]["max_width"] == 0 for name in ("time_mask", "frequency_mask")))


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The random stream of one training batch: (seed, epoch, batch) alone."""
    return np.random.default_rng([_STREAM, seed, epoch, batch])


# ----------------------------------------------------------------------------------------------
# The augmentations (pure: a new array, the input untouched)


def mixup(X: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mixup: each example i becomes ``lam_i * x_i + (1 - lam_i) * x_perm(i)``, its targets the same mix.

    ``lam_i ~ Beta(alpha, alpha)`` per example, ``perm`` a permutation of the batch.
    """
    lam = rng.beta(alpha, alpha, size=len(X)).astype(np.float32)
    perm = rng.permutation(len(X))
    mixed_X = lam[:, None, None, None] * X + (1 - lam[:, None, None, None]) * X[perm]
    mixed_targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[perm]
    return mixed_X.astype(np.float32), mixed_targets.astype(np.float32)


def mask_axis(X: np.ndarray, axis: int, count: int, max_width: int, rng: np.random.Generator, fill_value: float | None = None) -> np.ndarray:
    """SpecAugment masks: ``count`` bands per example along ``axis`` (1 mel, 2 time), each of width
    uniform in [0, max_width] at a uniform start, set to the example's mean (taken before masking), or
    to ``fill_value`` when given: ``log(1e-5)`` is the DCASE2024 baseline's masking, zeros in the power
    mel before ``log(x + 1e-5)``."""
    X = X.copy()
    size = X.shape[axis]
    fill = X.mean(axis=(1, 2, 3)) if fill_value is None else np.full(len(X), fill_value, dtype=X.dtype)
    for i in range(len(X)):
        for _ in range(count):
            width = int(rng.integers(0, min(max_width, size) + 1))
            start = int(rng.integers(0, size - width + 1))
            band = [i, slice(None), slice(None)]
            band[axis] = slice(start, start + width)
            X[tuple(band)] = fill[i]
    return X


def time_roll(X: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each example rolled circularly along time by a shift uniform in [-max_shift, max_shift] (``np.roll``)."""
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(X))
    return np.stack([np.roll(x, int(shift), axis=1) for x, shift in zip(X, shifts)])


def freq_mixstyle(X: np.ndarray, p: float, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Freq-MixStyle (Schmid et al.; the DCASE2024 Task 1 baseline's ``mixstyle``), on the whole batch with probability ``p``.

    Per example and mel band, the mean and standard deviation over time (and channel) are mixed
    with those of another example of the batch: ``x' = (x - mu) / sigma * sigma_mix + mu_mix`` with
    ``mu_mix = lam * mu + (1 - lam) * mu_perm`` (same for sigma), ``lam ~ Beta(alpha, alpha)`` per
    example, ``sigma = sqrt(var + 1e-6)``, ``var`` the unbiased variance (n - 1, torch's ``var``) as the
    reference computes it.
    """
    if rng.random() >= p:
        return X
    mu = X.mean(axis=(2, 3), keepdims=True)
    sigma = np.sqrt(X.var(axis=(2, 3), keepdims=True, ddof=1) + MIXSTYLE_EPS)
    lam = rng.beta(alpha, alpha, size=(len(X), 1, 1, 1)).astype(np.float32)
    perm = rng.permutation(len(X))
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sigma_mix = lam * sigma + (1 - lam) * sigma[perm]
    return ((X - mu) / sigma * sigma_mix + mu_mix).astype(np.float32)


def augment_batch(X: np.ndarray, targets: np.ndarray, settings: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All enabled augmentations in a fixed order: time roll, time masks, frequency masks, Freq-MixStyle, mixup.

    The order of the DCASE2024 baseline: roll and masks where it applies them (on the waveform and the
    power mel, before the log), Freq-MixStyle after the masking; mixup last.
    ``X (b, n_mels, n_frames, 1)``, ``targets (b, n_columns)``; with every setting off the inputs
    come back as they are (the same objects).
    """
    if settings["time_roll"]["max_shift"]:
        X = time_roll(X, settings["time_roll"]["max_shift"], rng)
    for name, axis in (("time_mask", 2), ("frequency_mask", 1)):
        if settings[name]["count"] and settings[name]["max_width"]:
            X = mask_axis(X, axis, settings[name]["count"], settings[name]["max_width"], rng, settings[name].get("fill"))
    if settings["freq_mixstyle"]["p"]:
        X = freq_mixstyle(X, settings["freq_mixstyle"]["p"], settings["freq_mixstyle"]["alpha"], rng)
    if settings["mixup"]["alpha"]:
        X, targets = mixup(X, targets, settings["mixup"]["alpha"], rng)
    return X, targets
