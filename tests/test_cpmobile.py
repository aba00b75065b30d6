"""The DCASE2024/2025 baseline network (utils/cpmobile.py) against the PyTorch reference's committed fixture.

tests/data/reference/cpmobile_network.npz was written by tools/reference/cpmobile_fixtures.py from
tools/reference/network.py (torch, seeded random weights with random BN statistics, four real TAU
clips' log-mels, float64 logits); torch is never imported here (docs/reference_fixtures.md, Network).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from utils.cpmobile import PUBLISHED_MACS, PUBLISHED_PARAMETERS, cp_mobile, load_torch_state, logits_model, trainable_parameter_count
from utils.errors import Task1aError
from utils.settings import ModelSizeSettings

FIXTURE = Path(__file__).resolve().parent / "data" / "reference" / "cpmobile_network.npz"
LIMITS_2024 = ModelSizeSettings(max_macs=30_000_000, max_memory_bytes=128_000, parameter_bits=16)


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as fixture:
        return {key: fixture[key] for key in fixture.files}


@pytest.fixture(scope="module")
def loaded(reference):
    model = cp_mobile((256, 65, 1), 10)
    load_torch_state(model, {key[len("weight/"):]: value for key, value in reference.items() if key.startswith("weight/")})
    return model


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_tflite(content: bytes, x: np.ndarray) -> np.ndarray:
    from utils.tflite import _interpreter_class

    interpreter = _interpreter_class()(model_content=content, num_threads=1)
    details = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(details["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(details["index"], x.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).astype(np.float64)


def test_the_fixture_is_the_reference_of_real_clips_with_the_licence_notice(reference):
    assert reference["inputs"].shape == (4, 256, 65) and reference["inputs"].dtype == np.float32
    assert reference["logits"].shape == (4, 10) and reference["logits"].dtype == np.float64
    assert all(str(clip).startswith("tau20") for clip in reference["clips"])
    assert "Tampere University" in str(reference["notice"]) and "non-commercial" in str(reference["notice"])
    # log(power mel + 1e-5): nothing below the floor; the BN statistics are not PyTorch's initial 0 / 1
    assert reference["inputs"].min() >= np.log(1e-5) - 1e-4
    assert not np.allclose(reference["weight/blocks.2.depthwise_bn.running_var"], 1.0)


def test_the_parameter_count_is_the_published_one(reference):
    model = cp_mobile((256, 65, 1), 10)
    assert trainable_parameter_count(model) == PUBLISHED_PARAMETERS == int(reference["trainable_parameters"])
    trainable_torch = sum(value.size for key, value in reference.items() if key.startswith("weight/") and not key.endswith(("running_mean", "running_var")))
    assert trainable_torch == PUBLISHED_PARAMETERS


def test_the_keras_logits_equal_the_pytorch_reference(reference, loaded):
    logits = logits_model(loaded)(reference["inputs"][..., None], training=False).numpy()
    np.testing.assert_allclose(logits, reference["logits"], rtol=0, atol=1e-4)
    assert np.ptp(reference["logits"]) > 1.0  # the logits differ (the comparison is not of near-zero numbers)
    probabilities = loaded(reference["inputs"][..., None], training=False).numpy()  # the model's output: the softmax
    np.testing.assert_allclose(probabilities, softmax(reference["logits"]), rtol=0, atol=1e-5)


def test_a_wrong_mapping_would_be_seen(reference):
    """The check has teeth: the depthwise kernels transposed the other way change the logits far beyond 1e-4."""
    model = cp_mobile((256, 65, 1), 10)
    state = {key[len("weight/"):]: value for key, value in reference.items() if key.startswith("weight/")}
    state["blocks.0.depthwise.weight"] = state["blocks.0.depthwise.weight"].transpose(0, 1, 3, 2)
    load_torch_state(model, state)
    logits = logits_model(model)(reference["inputs"][..., None], training=False).numpy()
    assert np.abs(logits - reference["logits"]).max() > 1e-2
    with pytest.raises(Task1aError, match="no weights for layer head_conv_bn"):
        load_torch_state(model, {key: value for key, value in state.items() if not key.startswith("head_conv_bn")})


@pytest.mark.slow
def test_the_float16_tflite_path_is_within_1e_2(reference, loaded):
    from utils.tflite import convert_to_float16_tflite

    logits = run_tflite(convert_to_float16_tflite(logits_model(loaded)), reference["inputs"][..., None])
    np.testing.assert_allclose(logits, reference["logits"], rtol=0, atol=1e-2)
    probabilities = run_tflite(convert_to_float16_tflite(loaded), reference["inputs"][..., None])
    np.testing.assert_allclose(probabilities, softmax(reference["logits"]), rtol=0, atol=1e-2)


@pytest.mark.slow
def test_the_exports_fit_the_2024_limits_and_nessi_counts_the_published_convolutions(loaded, reference):
    """int8 and float16 exports within 30 M MACs and 128 kB at 16 bit; NeSsi's convolution MACs are torchinfo's
    published count less its batch-norm MACs (2 per channel and BN layer), and NeSsi adds the adds and pools."""
    from utils.complexity import measure_tflite
    from utils.tflite import convert_to_float16_tflite, convert_to_tflite

    bn_channels = sum(value.size for key, value in reference.items() if key.startswith("weight/") and key.endswith("running_mean"))
    int8 = measure_tflite(convert_to_tflite(loaded, reference["inputs"], io="float"), LIMITS_2024)
    float16 = measure_tflite(convert_to_float16_tflite(loaded), LIMITS_2024)
    for figures in (int8, float16):
        convolutions = sum(op["macs"] for op in figures["operators"] if op["opcode"] in ("CONV_2D", "DEPTHWISE_CONV_2D"))
        assert convolutions == PUBLISHED_MACS - 2 * bn_channels
        assert convolutions < figures["total_macs"] <= LIMITS_2024.max_macs
        # BN folded: one bias per normalised channel instead of scale and shift
        assert PUBLISHED_PARAMETERS - bn_channels <= figures["parameter_count"] < PUBLISHED_PARAMETERS
        assert figures["parameter_memory_bytes"] == figures["parameter_count"] * 2 <= LIMITS_2024.max_memory_bytes
        assert figures["memory_ok"] and figures["macs_ok"]
    assert int8["total_weight_bytes"] < float16["total_weight_bytes"] < 2 * float16["parameter_count"] + 4096


def test_layer_names_are_stable_and_trainable_layer_patterns_work():
    from utils.learning import set_trainable_layers

    first, second = cp_mobile((256, 65, 1), 10), cp_mobile((256, 65, 1), 10)
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    trained = set_trainable_layers(first, ["block6_*", "head_*"])
    assert trained and all(name.startswith(("block6_", "head_")) for name in trained)
    assert 0 < trainable_parameter_count(first) < PUBLISHED_PARAMETERS


@pytest.mark.parametrize("constants, message", [({"BN_EPSILON": 0}, "BN_EPSILON must be a number in"), ({"DROPOUT": 0.1}, "constants.DROPOUT")])
def test_bad_constants_are_one_line_errors(constants, message):
    from utils.model import build_model

    with pytest.raises(Task1aError, match=message):
        build_model({"constants": constants, "config": "utils.cpmobile.cp_mobile"}, (256, 65, 1), 10)
