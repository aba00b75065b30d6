"""Augmentation: each one does what it says on fixed small batches; off is bit-identical; the export is unchanged."""

import numpy as np
import pytest

from utils import augmentation as aug
from utils.errors import Task1aError
from utils.settings import AugmentationSettings, learner_from_block

B, MELS, FRAMES, CLASSES = 6, 8, 12, 4


def batch(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, MELS, FRAMES, 1)).astype(np.float32)
    targets = np.eye(CLASSES, dtype=np.float32)[np.arange(B) % CLASSES]
    return X, targets


def settings(**changes) -> AugmentationSettings:
    """The augmentation settings of the shipped defaults with ``changes``, checked by the registry and typed."""
    return learner_from_block({"augmentation": changes}).augmentation


def test_off_leaves_the_batch_bit_identical():
    X, targets = batch()
    off = settings()
    assert off.off and off == AugmentationSettings()
    out_X, out_targets = aug.augment_batch(X.copy(), targets.copy(), off, aug.batch_rng(0, 0, 0))
    np.testing.assert_array_equal(out_X, X)
    np.testing.assert_array_equal(out_targets, targets)
    # count without width (or width without count) is off as well
    assert settings(time_mask={"count": 2}).off


def test_mixup_mixes_features_and_targets_with_the_same_lambda():
    # Example i is the constant i + 1 and of class i % 4: each output's value gives lambda and partner.
    X = np.broadcast_to(np.arange(1, B + 1, dtype=np.float32)[:, None, None, None], (B, MELS, FRAMES, 1)).copy()
    targets = np.eye(B, dtype=np.float32)  # one class per example here, so the partner is visible in the targets
    mixed_X, mixed_targets = aug.augment_batch(X, targets, settings(mixup={"alpha": 0.4}), aug.batch_rng(1, 2, 3))
    assert not np.array_equal(mixed_X, X)
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(B):
        partner = [j for j in np.flatnonzero(mixed_targets[i]) if j != i]
        lam = mixed_targets[i, i]
        expected = lam * (i + 1) + sum(mixed_targets[i, j] * (j + 1) for j in partner)
        np.testing.assert_allclose(mixed_X[i], expected, rtol=1e-5)
    assert np.any((mixed_targets > 0.01) & (mixed_targets < 0.99)), "no example was really mixed"


@pytest.mark.parametrize("name, axis, size", [("time_mask", 2, FRAMES), ("frequency_mask", 1, MELS)])
def test_masks_set_bands_to_the_example_mean(name, axis, size):
    X, targets = batch(3)
    out, out_targets = aug.augment_batch(X, targets, settings(**{name: {"count": 2, "max_width": 3}}), aug.batch_rng(0, 1, 0))
    np.testing.assert_array_equal(out_targets, targets)
    changed_any = False
    for i in range(B):
        fill = X[i].mean()
        other_axes = tuple(a for a in (0, 1, 2) if a != axis - 1)
        changed = np.any(out[i] != X[i], axis=other_axes)  # per index along the masked axis
        assert changed.shape == (size,)
        masked = np.take(out[i], np.flatnonzero(changed), axis=axis - 1)
        np.testing.assert_array_equal(masked, np.full_like(masked, fill))
        assert changed.sum() <= 2 * 3  # at most count * max_width
        kept = np.flatnonzero(~changed)
        np.testing.assert_array_equal(np.take(out[i], kept, axis=axis - 1), np.take(X[i], kept, axis=axis - 1))
        changed_any |= bool(changed.any())
    assert changed_any


def test_time_roll_is_a_circular_roll_within_max_shift():
    X, targets = batch(4)
    out, _ = aug.augment_batch(X, targets, settings(time_roll={"max_shift": 3}), aug.batch_rng(2, 0, 5))
    shifts = []
    for i in range(B):
        matches = [s for s in range(-3, 4) if np.array_equal(out[i], np.roll(X[i], s, axis=1))]
        assert matches, f"example {i} is not np.roll of the input by at most 3 frames"
        shifts.append(matches[0])
    assert any(shifts)


def test_freq_mixstyle_mixes_per_band_statistics():
    X, targets = batch(5)
    X = X * np.linspace(0.5, 3.0, B)[:, None, None, None] + np.arange(B)[:, None, None, None]  # examples differ in style
    out, out_targets = aug.augment_batch(X, targets, settings(freq_mixstyle={"p": 1.0, "alpha": 0.3}), aug.batch_rng(0, 0, 0))
    assert out.shape == X.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out_targets, targets)
    before_mu, after_mu = X.mean(axis=(2, 3)), out.mean(axis=(2, 3))
    assert not np.allclose(before_mu, after_mu)
    # Normalised per band, input and output are the same content (only the style moved).
    def normalised(a):
        return (a - a.mean(axis=(2, 3), keepdims=True)) / np.sqrt(a.var(axis=(2, 3), keepdims=True) + aug.MIXSTYLE_EPS)
    np.testing.assert_allclose(normalised(out), normalised(X), atol=1e-3)
    # Each new band mean lies between the example's own and another's (a convex mix).
    low, high = before_mu.min(axis=0), before_mu.max(axis=0)
    assert np.all(after_mu >= low - 1e-4) and np.all(after_mu <= high + 1e-4)
    # p = 0: nothing; the draw depends on (seed, epoch, batch) only
    np.testing.assert_array_equal(aug.freq_mixstyle(X, 0.0, 0.3, aug.batch_rng(0, 0, 0)), X)
    again, _ = aug.augment_batch(X, targets, settings(freq_mixstyle={"p": 1.0, "alpha": 0.3}), aug.batch_rng(0, 0, 0))
    np.testing.assert_array_equal(again, out)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"mixup": {"alpha": -1}}, "'learner_method_parameters.cnn.augmentation.mixup.alpha' must be a number >= 0"),
        ({"time_mask": {"count": 1.5}}, "'learner_method_parameters.cnn.augmentation.time_mask.count' must be an integer"),
        ({"freq_mixstyle": {"p": 1.5}}, r"'learner_method_parameters.cnn.augmentation.freq_mixstyle.p' must be a number in \[0, 1\]"),
        ({"freq_mixstyle": {"alpha": 0}}, "'learner_method_parameters.cnn.augmentation.freq_mixstyle.alpha' must be a number > 0"),
        ({"cutout": {}}, "unknown parameter 'learner_method_parameters.cnn.augmentation.cutout'"),
        ({"time_roll": {"shift": 2}}, r"unknown parameter 'learner_method_parameters.cnn.augmentation.time_roll.shift' \(known here: max_shift\)"),
    ],
)
def test_bad_settings_are_one_line_errors(config, message):
    """Refused once, when the settings are typed (the registry); augmentation trusts them."""
    with pytest.raises(Task1aError, match=message) as raised:
        learner_from_block({"augmentation": config})
    assert "\n" not in str(raised.value)


def test_demo_training_with_every_augmentation_exports_the_same_macs(tmp_path):
    from model_size_calculation.nessi import get_model_size
    from tests.test_learning import small_cnn_parameters, toy_problem
    from utils.learning import train_model
    from utils.tflite import export_tflite_models

    X, y = toy_problem(40, seed=1)
    macs = {}
    for name, config in (("plain", None), ("augmented", {
        "mixup": {"alpha": 0.3}, "time_mask": {"count": 1, "max_width": 5}, "frequency_mask": {"count": 1, "max_width": 4},
        "time_roll": {"max_shift": 4}, "freq_mixstyle": {"p": 1.0, "alpha": 0.3},
    })):
        parameters = small_cnn_parameters(epochs=1, initial_delay=0)
        if config:
            parameters["augmentation"] = config
        result = train_model(learner_from_block(parameters), X[:30], y[:30], X[30:], y[30:], tmp_path / name, progress=False)
        assert np.isfinite(result.history[0]["loss"])
        paths = export_tflite_models(result.model, X[:30], y[:30], np.array(["a"] * 30), tmp_path / name, ios=("float",), n_examples=10)
        macs[name] = get_model_size(paths["float"])["total_macs"]
    assert macs["plain"] == macs["augmented"] > 0


def test_the_training_feed_augments_the_same_batches_on_every_reading():
    from utils.learning import EpochFeed

    X, targets = batch(6)
    X = X[..., 0]
    augmented = EpochFeed(X, targets, 4, seed=1, shuffle=True, augmentation=settings(time_roll={"max_shift": 3}, mixup={"alpha": 0.3}))
    plain = EpochFeed(X, targets, 4, seed=1, shuffle=True)
    first, again, untouched = list(augmented.batches(2)), list(augmented.batches(2)), list(plain.batches(2))
    for (a_X, a_t), (b_X, b_t), (p_X, p_t) in zip(first, again, untouched):
        np.testing.assert_array_equal(a_X, b_X)  # a resumed epoch re-reads exactly these
        np.testing.assert_array_equal(a_t, b_t)
        assert not np.array_equal(a_X, p_X)
    assert not np.array_equal(list(augmented.batches(3))[0][0], first[0][0])  # another epoch, other draws


def test_off_values_agree_with_the_yaml_defaults_and_the_hash_registry():
    """Off settings leave the learner folder hash as before the options existed (utils.parameters.UNHASHED_VALUES)."""
    from utils.parameters import RESEARCH_OFF, UNHASHED_VALUES, ParameterContainer

    cnn = ParameterContainer().defaults["learner_method_parameters"]["cnn"]
    assert cnn["augmentation"] == RESEARCH_OFF["augmentation"] == UNHASHED_VALUES["learner.parameters.augmentation"]
    assert cnn["distillation"] == RESEARCH_OFF["distillation"] == UNHASHED_VALUES["learner.parameters.distillation"]
    assert cnn["initial_weights"] is None is UNHASHED_VALUES["learner.parameters.initial_weights"]
    assert cnn["trainable_layers"] is None is UNHASHED_VALUES["learner.parameters.trainable_layers"]


def test_the_typed_settings_defaults_are_the_declared_off_values():
    """utils.parameters.RESEARCH_OFF is the one declaration of "off": the settings dataclasses' defaults must equal it."""
    from pathlib import Path

    from utils.parameters import RESEARCH_OFF
    from utils.settings import DistillationSettings, LearnerSettings, augmentation_settings, distillation_settings

    assert augmentation_settings(RESEARCH_OFF["augmentation"]) == AugmentationSettings() and AugmentationSettings().off
    assert distillation_settings(RESEARCH_OFF["distillation"]) is None  # no teacher: off
    teacher = dict(RESEARCH_OFF["distillation"], teacher_outputs="teacher.csv")
    assert distillation_settings(teacher) == DistillationSettings(Path("teacher.csv"))  # temperature, weight: the declared defaults
    defaults = {name: field.default for name, field in LearnerSettings.__dataclass_fields__.items()}
    assert defaults["distillation"] is None and defaults["augmentation"] == AugmentationSettings()
    assert defaults["initial_weights"] is RESEARCH_OFF["initial_weights"] and defaults["trainable_layers"] is RESEARCH_OFF["trainable_layers"]


def test_frequency_masks_can_fill_with_the_log_floor():
    """fill: log(1e-5) is the DCASE2024 baseline's masking (zeros in the power mel before log(x + 1e-5))."""
    X, targets = batch(7)
    floor = float(np.log(1e-5))
    out, _ = aug.augment_batch(X, targets, settings(frequency_mask={"count": 1, "max_width": 4, "fill": floor}), aug.batch_rng(0, 0, 1))
    masked = out != X
    assert masked.any()
    np.testing.assert_array_equal(out[masked], np.float32(floor))
    for i in range(B):  # whole bands (every frame of a masked band), at most max_width of them
        bands = np.flatnonzero(masked[i, :, :, 0].any(axis=1))
        assert len(bands) <= 4 and masked[i, bands].all()
    with pytest.raises(Task1aError, match="'learner_method_parameters.cnn.augmentation.frequency_mask.fill' must be a number in .* or null"):
        settings(frequency_mask={"count": 1, "max_width": 4, "fill": "floor"})


def test_freq_mixstyle_uses_the_unbiased_variance_as_the_reference():
    """The formula with torch's var (n - 1) and eps 1e-6, per example and band over time, reproduced from the same draws."""
    X, _ = batch(8)
    # small values (variance near eps): only there does n - 1 against n show (the mix is blind to a common scale of sigma)
    X = (X * np.linspace(0.5, 3.0, B)[:, None, None, None] * 1e-3).astype(np.float32)
    out = aug.freq_mixstyle(X, 1.0, 0.3, aug.batch_rng(3, 0, 0))
    rng = aug.batch_rng(3, 0, 0)
    rng.random()
    lam = rng.beta(0.3, 0.3, size=(B, 1, 1, 1)).astype(np.float32)
    perm = rng.permutation(B)
    mu = X.mean(axis=(2, 3), keepdims=True)
    sigma = np.sqrt(X.var(axis=(2, 3), keepdims=True, ddof=1) + 1e-6)
    expected = (X - mu) / sigma * (lam * sigma + (1 - lam) * sigma[perm]) + (lam * mu + (1 - lam) * mu[perm])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-8)
    biased = np.sqrt(X.var(axis=(2, 3), keepdims=True) + 1e-6)
    assert not np.allclose(out, (X - mu) / biased * (lam * biased + (1 - lam) * biased[perm]) + (lam * mu + (1 - lam) * mu[perm]), rtol=1e-4, atol=1e-8)


def test_the_reference_order_roll_masks_then_freq_mixstyle_then_mixup():
    X, targets = batch(9)
    config = settings(time_roll={"max_shift": 3}, frequency_mask={"count": 1, "max_width": 3, "fill": -11.5},
                      freq_mixstyle={"p": 1.0, "alpha": 0.3}, mixup={"alpha": 0.3})
    out, out_targets = aug.augment_batch(X, targets, config, aug.batch_rng(1, 1, 1))
    rng = aug.batch_rng(1, 1, 1)
    expected = aug.time_roll(X, 3, rng)
    expected = aug.mask_axis(expected, 1, 1, 3, rng, -11.5)
    expected = aug.freq_mixstyle(expected, 1.0, 0.3, rng)
    expected, expected_targets = aug.mixup(expected, targets, 0.3, rng)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out_targets, expected_targets)
