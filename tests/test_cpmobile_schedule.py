"""The DCASE2024/2025 learning-rate schedule (utils.schedules.WarmupCosineDecay, the editions branch) equals the
PyTorch reference step by step: tests/data/reference/cpmobile_schedule.npz holds the rates torch's LambdaLR gave
AdamW with the published warm-up + cosine formula (tools/reference/schedule.py; docs/reference_fixtures.md, Schedule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

schedules = pytest.importorskip("utils.schedules", reason="utils/schedules.py comes with the editions branch")

FIXTURE = Path(__file__).resolve().parent / "data" / "reference" / "cpmobile_schedule.npz"


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as fixture:
        return {key: fixture[key] for key in fixture.files}


def cases(reference):
    return sorted(key.split("/")[0] for key in reference if key.endswith("/settings"))


def test_the_fixture_has_the_recipe_and_edge_cases(reference):
    assert cases(reference) == ["no_warmup", "recipe", "short"]
    rate, warmup, total = reference["recipe/settings"]
    assert (rate, warmup) == (0.005, 2000)
    rates = reference["recipe/learning_rates"]
    assert rates[0] == 0 and rates[int(warmup)] == rate and rates[int(total)] == 0
    assert np.all(np.diff(rates[: int(warmup) + 1]) > 0) and np.all(np.diff(rates[int(warmup) : int(total) + 1]) < 0)
    assert rates[int(total) + 1] > 0  # the published formula rises again past total_steps (a training never gets there)


def test_warmup_cosine_decay_equals_torch_lambdalr_step_by_step(reference):
    for case in cases(reference):
        rate, warmup, total = reference[f"{case}/settings"]
        expected = reference[f"{case}/learning_rates"]
        schedule = schedules.WarmupCosineDecay(float(rate), int(warmup), int(total))
        rates = np.array([float(schedule(step)) for step in range(len(expected))])
        np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-9, err_msg=case)


def test_the_yaml_form_inside_adamw_follows_the_optimizer_steps(reference):
    """The recipe's optimizer config, TRAINING_STEPS replaced by the learning stage's count (here the case's total)."""
    import keras

    from utils.learning import build_optimizer

    rate, warmup, total = reference["short/settings"]
    expected = reference["short/learning_rates"]
    optimizer = build_optimizer({"class_name": "AdamW", "config": {
        "learning_rate": {"class_name": "WarmupCosineDecay", "config": {"learning_rate": float(rate), "warmup_steps": int(warmup),
                                                                        "total_steps": "TRAINING_STEPS"}},
        "weight_decay": 1e-4, "epsilon": 1e-8}}, training_steps=int(total))
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer.build([variable])
    for step, rate_at_step in enumerate(expected):
        assert int(optimizer.iterations.numpy()) == step
        np.testing.assert_allclose(float(optimizer.learning_rate), rate_at_step, rtol=1e-5, atol=1e-9)
        optimizer.apply_gradients([(keras.ops.ones_like(variable), variable)])
