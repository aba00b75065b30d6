"""The complexity gate: a parameter set's untrained network measured by NeSsi before any training."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

import pytest

from model_size_calculation.nessi import get_model_size
from utils.complexity import (
    check_complexity,
    enforce_limits,
    limits_enforced,
    limit_problems,
    measure_tflite,
    network_input_shape,
)
from utils.errors import Task1aError
from utils.parameters import ParameterContainer

LIMITS = {"max_macs": 30_000_000, "max_memory_bytes": 128_000}


@pytest.fixture(scope="module")
def params() -> dict:
    return ParameterContainer().resolve()


def widened(params: dict, filters: int) -> dict:
    wide = copy.deepcopy(params)
    for layer in wide["learner"]["parameters"]["model"]["config"]:
        if layer["class_name"] == "Conv2D":
            layer["config"]["filters"] = filters
    return wide


# ------------------------------------------------------------------------------------ pure parts
def test_limit_problems_name_the_figure_the_value_and_the_limit():
    assert limit_problems({"total_macs": 30_000_000, "total_weight_bytes": 128_000}, LIMITS) == []  # at the limit is within
    assert limit_problems({"total_macs": 41_943_040, "total_weight_bytes": 128_001}, LIMITS) == [
        "MACs 41,943,040 > 30,000,000 (model_size.max_macs)",
        "parameter memory 128,001 B > 128,000 B (model_size.max_memory_bytes)",
    ]
    with pytest.raises(Task1aError, match="model_size.max_macs must be a positive integer"):
        limit_problems({"total_macs": 1, "total_weight_bytes": 1}, {"max_macs": "30e6", "max_memory_bytes": 1})
    with pytest.raises(Task1aError, match="total_weight_bytes"):
        limit_problems({"total_macs": 1}, LIMITS)


def test_enforce_stops_an_over_limit_model_unless_told_not_to(caplog):
    over = {"total_macs": 41_943_040, "total_weight_bytes": 1_000}
    assert enforce_limits({"total_macs": 1, "total_weight_bytes": 1}, LIMITS, "set x") == []
    with pytest.raises(Task1aError, match=r"set x is over the DCASE2023 complexity limits: MACs 41,943,040 > "
                                          r"30,000,000 \(model_size.max_macs\); .*model_size.enforce: never"):
        enforce_limits(over, LIMITS, "set x", enforced=True)
    with caplog.at_level(logging.WARNING, logger="utils.complexity"):
        assert enforce_limits(over, LIMITS, "set x", enforced=False) == ["MACs 41,943,040 > 30,000,000 (model_size.max_macs)"]
    assert "going on" in caplog.text


def test_the_gate_is_on_in_challenge_mode_by_default():
    def params(mode, enforce):
        return {"general": {"mode": mode}, "model_size": dict(LIMITS, enforce=enforce)}

    assert limits_enforced(params("eval", "eval")) and not limits_enforced(params("dev", "eval"))
    assert limits_enforced(params("dev", "always")) and not limits_enforced(params("eval", "never"))


def test_input_shape_follows_the_feature_parameters(params):
    assert network_input_shape(params) == (40, 51, 1)
    other = copy.deepcopy(params)
    other["feature_extractor"]["parameters"]["n_mels"] = 64
    other["feature_extractor"]["segment_length_seconds"] = 0.5
    assert network_input_shape(other) == (64, 1 + 22050 // 882, 1)  # centred frames, hop 882 samples


def test_a_bad_model_file_is_a_task1a_error(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(Task1aError, match="not a TFLite model"):
        measure_tflite(bad, LIMITS)


# --------------------------------------------------------------------------- the real conversion
@pytest.fixture(scope="module")
def shipped(params):
    pytest.importorskip("tensorflow")
    return check_complexity(params)


def test_the_shipped_network_is_within_the_limits(shipped, reference_dir):
    """The default network measures as the pipeline's trained export does: the official model's figures,
    but for what today's converter makes of Flatten (README, Complexity)."""
    text, problems = shipped
    assert problems == []
    official = get_model_size(reference_dir / "model_task1.tflite")
    assert (official["total_weight_bytes"], official["total_macs"]) == (46_512, 29_234_920)  # the published figures
    # Flatten becomes SHAPE/STRIDED_SLICE/RESHAPE: 16 B of shape constants, and the first dense layer's
    # input is (1, 64), which NeSsi counts 64 wide (the official file's quirk counted 32: 3,200 MACs less).
    assert "Total weight size: 46,528" in text and "Total MACs: 29,238,120" in text
    assert official["total_weight_bytes"] + 12 + 4 == 46_528
    assert official["corrected_total_macs"] == 29_238_120 == official["total_macs"] + 100 * 32
    # the dense layers keep their int32 biases (zero in an untrained network, which the converter would drop)
    assert re.search(r"\|\s+6,800 \|$", text, re.M) and re.search(r"\|\s+1,040 \|$", text, re.M)
    lines = text.splitlines()
    assert lines[0] == ("Complexity of set dcase2023_baseline: its untrained network (40 mels x 51 frames in), "
                        "converted to int8 TFLite as the learning stage exports it, counted by NeSsi:")
    assert "Memory:\t \t 46.528 K" in text and "MACC:\t \t 29.238 M" in text
    assert lines[-1] == ("verdict: within the DCASE2023 limits (MACs 29,238,120 <= 30,000,000; "
                         "parameter memory 46,528 B <= 128,000 B)")


def test_a_widened_network_is_over_both_limits(shipped, params):
    text, problems = check_complexity(widened(params, 64))
    positions = 40 * 51
    macs = (positions * 64 * 49 * 1 + positions * 64 * 49 * 64  # two 7x7 convolutions at full resolution
            + 8 * 10 * 64 * 25 + 8 * 10 * 64 * 49 * 64 + 2 * 1 * 64 * 40  # pool 5x5, conv, pool 4x10
            + 128 * 100 + 100 * 10)  # dense layers (input 2 * 1 * 64 = 128 wide)
    memory = ((49 * 64 + 4 * 64) + 2 * (49 * 64 * 64 + 4 * 64)  # int8 kernels, int32 biases
              + (128 * 100 + 4 * 100) + (100 * 10 + 4 * 10) + 16)  # dense layers, Flatten's shape constants
    assert problems == [f"MACs {macs:,} > 30,000,000 (model_size.max_macs)",
                        f"parameter memory {memory:,} B > 128,000 B (model_size.max_memory_bytes)"]
    assert text.splitlines()[-1] == "verdict: OVER THE DCASE2023 LIMITS: " + "; ".join(problems)
    assert "[Warning] Multiply accumulate count" in text  # NeSsi's own warning, too


@pytest.mark.slow
def test_an_over_limit_network_is_refused_by_the_command_line_before_any_work(tmp_path):
    """--check_complexity says OVER and exits 1; a challenge-mode run stops in one line before the data or features."""
    import subprocess
    import sys

    import yaml

    from conftest import tiny_demo_parameters

    overrides = tiny_demo_parameters(tmp_path, energy=False)
    overrides["defaults"]["learner_method_parameters"]["cnn"]["model"] = {"constants": {"CONVOLUTION_KERNEL_SIZE": 9}}
    param_file = tmp_path / "big.yaml"
    param_file.write_text(yaml.safe_dump(overrides))
    repo = Path(__file__).resolve().parents[1]

    def task1a(*args):
        return subprocess.run([sys.executable, "task1a.py", "--no_progress", "-s", "demo", "-p", str(param_file), *args], cwd=repo,
                              capture_output=True, text=True, timeout=600)

    checked = task1a("--check_complexity")
    assert checked.returncode == 1
    assert "verdict: OVER THE DCASE2023 LIMITS: MACs 48,305,000 > 30,000,000 (model_size.max_macs)" in checked.stdout
    refused = task1a("--mode", "eval")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "MACs 48,305,000 > 30,000,000" in errors[0] and "model_size.enforce" in errors[0]
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "system" / "features").exists()  # no work was done
    dev = task1a("--check_complexity", "--set", "learner_method_parameters.cnn.model.constants.CONVOLUTION_KERNEL_SIZE=7")
    assert dev.returncode == 0 and "verdict: within the DCASE2023 limits" in dev.stdout
