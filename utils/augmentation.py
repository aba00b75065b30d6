"""Training-batch augmentation: mixup, SpecAugment time/frequency masks, time roll, Freq-MixStyle.

Pure numpy, applied by the learning stage's training feed to each training batch (never to
validation batches, never part of the exported model). Every augmentation is off by default; the
settings are ``learner_method_parameters.cnn.augmentation`` in task1a.yaml, checked by the registry
(:data:`utils.parameters.RULES`) and typed once (:class:`utils.settings.AugmentationSettings`).
A batch's random draws come from (seed, epoch, batch) alone (:func:`batch_rng`), so a resumed
training sees exactly the batches an uninterrupted one would.

Batches are ``X (b, n_mels, n_frames, 1)`` float32 and ``targets (b, n_columns)`` float32 (class
probabilities, possibly followed by a teacher's: mixup mixes every column with the same lambda).
"""

from __future__ import annotations

import numpy as np

from utils.settings import AugmentationSettings

MIXSTYLE_EPS = 1e-6  # added to the per-band variance before its square root (the DCASE2024 baseline's)
_STREAM = 0x617567  # keeps augmentation draws apart from any other (seed, epoch) stream


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


def augment_batch(X: np.ndarray, targets: np.ndarray, settings: AugmentationSettings, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All enabled augmentations in a fixed order: time roll, time masks, frequency masks, Freq-MixStyle, mixup.

    The order of the DCASE2024 baseline: roll and masks where it applies them (on the waveform and the
    power mel, before the log), Freq-MixStyle after the masking; mixup last.
    ``X (b, n_mels, n_frames, 1)``, ``targets (b, n_columns)``; with every setting off (``settings.off``)
    the inputs come back as they are (the same objects).
    """
    if settings.time_roll.max_shift:
        X = time_roll(X, settings.time_roll.max_shift, rng)
    for mask, axis in ((settings.time_mask, 2), (settings.frequency_mask, 1)):
        if mask.count and mask.max_width:
            X = mask_axis(X, axis, mask.count, mask.max_width, rng, mask.fill)
    if settings.freq_mixstyle.p:
        X = freq_mixstyle(X, settings.freq_mixstyle.p, settings.freq_mixstyle.alpha, rng)
    if settings.mixup.alpha:
        X, targets = mixup(X, targets, settings.mixup.alpha, rng)
    return X, targets
