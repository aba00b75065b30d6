"""NeSsi figures: identical to the published table of the official model, right on models made by
today's converter (expectations computed here from the layer shapes), robust to bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_size_calculation import format_nessi_table, get_model_size
from model_size_calculation.nessi import (
    OFFICIAL_MAX_MACS,
    OFFICIAL_MAX_MEMORY_BYTES,
    ModelSizeError,
    nessi_macs,
    nessi_memory,
)
from model_size_calculation.tflite_reader import (
    MODEL_OPERATOR_CODES,
    OPCODE_BUILTIN_CODE,
    OPCODE_DEPRECATED_BUILTIN_CODE,
    _FlatbufferView,
)
from model_size_calculation.tflite_schema import BUILTIN_OPERATOR_NAMES, TENSOR_TYPES

REPO_DIR = Path(__file__).resolve().parents[1]
INT8_BYTES, INT32_BYTES, FLOAT32_BYTES = 1, 4, 4


# ---------------------------------------------------------------------------------------------
# The official model and its published table
# ---------------------------------------------------------------------------------------------

def parse_nessi_table(text: str) -> dict:
    """Rows and totals of a NeSsi text table (numbers with thousands separators); tests/test_complexity.py
    reads the shipped network's table with it too."""
    def number(cell):
        return int(cell.replace(",", ""))

    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    tensor_part, schedule_part = text.split("Operator execution schedule:")
    tensors = [cells(line) for line in tensor_part.splitlines() if re.match(r"\|\s*\d", line)]
    operators = [cells(line) for line in schedule_part.splitlines()
                 if line.startswith("|") and "[" in line]
    return {
        "tensors": [{"id": int(i), "name": n, "shape": [int(d) for d in re.findall(r"\d+", s)],
                     "bytes": number(b)} for i, n, s, b in tensors],
        "operators": [{"name": n, "tensors_in_memory": [int(d) for d in re.findall(r"\d+", ids)],
                       "memory_bytes": number(m), "macs": number(c), "weight_bytes": number(w)}
                      for n, ids, m, c, w in operators],
        "peak": number(re.search(r"Current peak memory usage: ([\d,]+) B", text).group(1)),
        "macs": number(re.search(r"Total MACs: ([\d,]+)", text).group(1)),
        "weights": number(re.search(r"Total weight size: ([\d,]+)", text).group(1)),
    }


@pytest.fixture(scope="module")
def reference_model(reference_dir) -> Path:
    return reference_dir / "model_task1.tflite"


@pytest.fixture(scope="module")
def published(reference_dir) -> dict:
    text = (reference_dir / "model_task1.nessi.txt").read_text()
    return {"text": text, **parse_nessi_table(text)}


def test_reference_rows_and_totals_equal_published_table(reference_model, published):
    figures = get_model_size(reference_model)
    assert published["tensors"] and len(published["operators"]) == 10
    assert [{k: t[k] for k in ("id", "name", "shape", "bytes")} for t in figures["tensors"]] \
        == published["tensors"]
    assert [{k: op[k] for k in ("name", "tensors_in_memory", "memory_bytes", "macs",
                                "weight_bytes")} for op in figures["operators"]] \
        == published["operators"]
    assert figures["peak_memory_bytes"] == published["peak"] == 65_280
    assert figures["total_macs"] == published["macs"] == 29_234_920
    assert figures["total_weight_bytes"] == published["weights"] == 46_512


def test_reference_text_is_the_published_text(reference_model, published):
    text = format_nessi_table(get_model_size(reference_model.read_bytes()))
    assert text.startswith(published["text"].rstrip("\n") + "\n")
    # then the official tool's statistics lines, then the fully-connected footnote
    tail = text[len(published["text"].rstrip("\n")):]
    assert "Model statistics:\nMACC:\t \t 29.235 M\nMemory:\t \t 46.512 K\n" in tail
    assert "[Warning]" not in tail
    assert "29,238,120" in tail  # the corrected total: dense input 64 wide, not 32


def test_reference_quirk_limits_and_independent_tensor_facts(reference_model):
    from ai_edge_litert.interpreter import Interpreter

    figures = get_model_size(reference_model)
    # the interpreter (not our reader) says which tensors exist, their shapes and dtypes
    details = {d["index"]: d for d in Interpreter(model_path=str(reference_model))
               .get_tensor_details()}
    for tensor in figures["tensors"]:
        detail = details[tensor["id"]]
        assert tensor["name"] == detail["name"]
        assert tensor["shape"] == detail["shape"].tolist()
        assert tensor["bytes"] == detail["shape"].prod() * np.dtype(detail["dtype"]).itemsize
    dense = next(op for op in figures["operators"] if op["name"] == "sequential/dense/Relu")
    weight = next(d for d in details.values() if d["name"].endswith("dense/MatMul/"
                                                                     "ReadVariableOp/transpose"))
    out_dim, in_dim = weight["shape"]
    assert dense["macs"] == out_dim * 32  # official: last dim of the (1, 2, 1, 32) input
    assert dense["corrected_macs"] == out_dim * in_dim == 6_400
    assert figures["corrected_total_macs"] == figures["total_macs"] + out_dim * (in_dim - 32)
    assert figures["limits"] == {"macs": 30_000_000, "memory_bytes": 128_000,
                                 "memory_counts": "total_weight_bytes"}
    assert figures["macs_ok"] and figures["memory_ok"]
    json.dumps(figures)  # JSON-able


def test_limits_warn_like_the_official_tool(reference_model):
    figures = get_model_size(reference_model, max_macs=29_000_000, max_memory_bytes=40_000)
    assert not figures["macs_ok"] and not figures["memory_ok"]
    text = format_nessi_table(figures)
    assert ("[Warning] Multiply accumulate count 29234920 is more than the allowed maximum of "
            "29000000") in text
    assert "[Warning] parameter count 46512 is more than the allowed maximum of 40000" in text
    assert OFFICIAL_MAX_MACS == 30e6 and OFFICIAL_MAX_MEMORY_BYTES == 128e3


def test_schema_tables_match_the_maintained_schema():
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    operators = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    assert BUILTIN_OPERATOR_NAMES == tuple(operators[i] for i in range(len(operators)))
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    assert {code: name for code, (name, _) in TENSOR_TYPES.items()} == types


# ---------------------------------------------------------------------------------------------
# Models made by TensorFlow 2.21 (built and converted once per session)
# ---------------------------------------------------------------------------------------------

def _convert(model, quantize: bool, int8_io: bool = False) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        rng = np.random.default_rng(0)
        shape = (1,) + tuple(model.input_shape[1:])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.random(shape, dtype=np.float32)] for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="session")
def tf_models() -> dict:
    """The baseline architecture (int8, float io) and a small functional model with a
    depthwise-separable block, a residual ADD, a concatenation, global average pooling (MEAN)
    and a dense layer without bias (int8 io and float)."""
    pytest.importorskip("tensorflow")
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(0)
    baseline = keras.Sequential([
        keras.Input((40, 51, 1)),
        layers.Conv2D(16, 7, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(16, 7, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D((5, 5)), layers.Dropout(0.3),
        layers.Conv2D(32, 7, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D((4, 10)), layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(100, activation="relu", bias_initializer="random_uniform"),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax", bias_initializer="random_uniform"),
    ])
    inputs = keras.Input((16, 12, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu",
                      bias_initializer="random_uniform")(inputs)
    depthwise = layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_uniform")(x)
    pointwise = layers.Conv2D(8, 1, use_bias=False)(depthwise)
    added = layers.Add()([x, pointwise])
    joined = layers.Concatenate()([added, x])
    pooled = layers.MaxPooling2D(2)(joined)
    mean = layers.GlobalAveragePooling2D()(pooled)
    outputs = layers.Dense(10, use_bias=False)(mean)
    blocks = keras.Model(inputs, outputs)
    return {
        "baseline_keras": baseline,
        "baseline_int8": _convert(baseline, quantize=True),
        "blocks_keras": blocks,
        "blocks_int8_io": _convert(blocks, quantize=True, int8_io=True),
        "blocks_float": _convert(blocks, quantize=False),
    }


# The baseline from its layer shapes: (kernel elements, bias elements, MACs) per parametric layer,
# MACs per pooling layer (output elements x window).
BASELINE_CONVS = [  # out_h * out_w * out_c * k_h * k_w * in_c
    (16 * 7 * 7 * 1, 16, 40 * 51 * 16 * 7 * 7 * 1),
    (16 * 7 * 7 * 16, 16, 40 * 51 * 16 * 7 * 7 * 16),
    (32 * 7 * 7 * 16, 32, 8 * 10 * 32 * 7 * 7 * 16),
]
BASELINE_POOLS = [8 * 10 * 16 * 5 * 5, 2 * 1 * 32 * 4 * 10]
BASELINE_DENSES = [(64 * 100, 100, 64 * 100), (100 * 10, 10, 100 * 10)]


def test_baseline_architecture_figures(tf_models):
    figures = get_model_size(tf_models["baseline_int8"])
    by_opcode = {}
    for op in figures["operators"]:
        by_opcode.setdefault(op["opcode"], []).append(op)
    convs = by_opcode.get("CONV_2D", []) + by_opcode.get("DEPTHWISE_CONV_2D", [])
    convs.sort(key=lambda op: op["index"])
    assert [(op["weight_bytes"], op["macs"]) for op in convs] == [
        (kernel * INT8_BYTES + bias * INT32_BYTES, macs) for kernel, bias, macs in BASELINE_CONVS]
    assert [op["macs"] for op in by_opcode["MAX_POOL_2D"]] == BASELINE_POOLS
    # the converter's own form (from_keras_model, a dynamic batch): Flatten becomes RESHAPE, so the first dense
    # layer's input is 64 wide: no quirk here (the project's export folds it: tests/test_complexity.py, 29,234,920)
    assert [(op["weight_bytes"], op["macs"]) for op in by_opcode["FULLY_CONNECTED"]] == [
        (kernel * INT8_BYTES + bias * INT32_BYTES, macs) for kernel, bias, macs in
        BASELINE_DENSES]
    expected_macs = sum(c[2] for c in BASELINE_CONVS) + sum(BASELINE_POOLS) \
        + sum(d[2] for d in BASELINE_DENSES)
    assert figures["total_macs"] == expected_macs == 29_238_120
    assert "corrected_total_macs" not in figures
    # peak: the second convolution holds its int8 input and output, (1, 40, 51, 16) each
    assert figures["peak_memory_bytes"] == 2 * 40 * 51 * 16 * INT8_BYTES
    first = figures["operators"][0]
    assert first["opcode"] == "QUANTIZE"  # float32 input quantised inside the graph
    assert first["memory_bytes"] == 40 * 51 * (FLOAT32_BYTES + INT8_BYTES)
    assert figures["operators"][-1]["opcode"] == "DEQUANTIZE"


def test_keras_figures_of_the_baseline(tf_models):
    figures = get_model_size(tf_models["baseline_keras"], "keras")
    per_layer = [800, 64, 12_560, 64, 25_120, 128, 6_500, 1_010]  # the official summary
    assert figures["parameters"] == sum(per_layer)
    assert figures["parameter_bytes_by_dtype"] == {"float32": sum(per_layer) * FLOAT32_BYTES}
    assert figures["non_trainable_parameters"] == 2 * (16 + 16 + 32)  # BN moving mean, variance
    # the Keras count takes Dense(64 -> 100) from its weights, as the corrected TFLite count (the official quirk: 32)
    assert figures["total_macs"] == 29_238_120
    assert figures["macs_ok"] and figures["memory_ok"]
    assert "Total MACs: 29,238,120" in format_nessi_table(figures)


H, W, C_IN, C = 16, 12, 3, 8  # the functional model's input and width


def _blocks_expectations(weight_bytes: int, bias_bytes: int) -> dict:
    """(MACs, weight bytes) per operator type, from the layer shapes. The converter gives the
    bias-free 1x1 convolution a zero bias; the dense layer stays without one (input -1)."""
    return {
        "conv3x3": (H * W * C * 3 * 3 * C_IN, (C * 3 * 3 * C_IN) * weight_bytes + C * bias_bytes),
        "depthwise": (H * W * C * 3 * 3, 3 * 3 * C * weight_bytes + C * bias_bytes),
        "conv1x1": (H * W * C * C, C * C * weight_bytes + C * bias_bytes),
        "add": (H * W * C, 0),
        "concatenation": (0, 0),
        "max_pool": ((H // 2) * (W // 2) * 2 * C * 2 * 2, 0),
        "mean": ((H // 2) * (W // 2) * 2 * C, 2 * INT32_BYTES),  # reduction axes (1, 2)
        "dense": (2 * C * 10, 2 * C * 10 * weight_bytes),
    }


@pytest.mark.parametrize("variant, weight_bytes, bias_bytes, activation_bytes", [
    ("blocks_int8_io", INT8_BYTES, INT32_BYTES, INT8_BYTES),
    ("blocks_float", FLOAT32_BYTES, FLOAT32_BYTES, FLOAT32_BYTES),
])
def test_depthwise_residual_concat_mean_no_bias(tf_models, variant, weight_bytes, bias_bytes,
                                               activation_bytes):
    figures = get_model_size(tf_models[variant])
    expected = _blocks_expectations(weight_bytes, bias_bytes)
    opcodes = ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "CONCATENATION", "MAX_POOL_2D",
               "MEAN", "FULLY_CONNECTED"]
    # int8 io: no QUANTIZE/DEQUANTIZE; float: none either
    assert [op["opcode"] for op in figures["operators"]] == opcodes
    assert [(op["macs"], op["weight_bytes"]) for op in figures["operators"]] \
        == list(expected.values())
    assert figures["total_macs"] == sum(macs for macs, _ in expected.values())
    assert figures["total_weight_bytes"] == sum(size for _, size in expected.values())
    # peak at the concatenation: x (still needed), the sum and the concatenated output
    feature_map = H * W * C * activation_bytes
    assert figures["peak_memory_bytes"] == feature_map + feature_map + 2 * feature_map
    graph_input = figures["tensors"][0]
    assert graph_input["bytes"] == H * W * C_IN * activation_bytes
    assert figures["total_macs"] == get_model_size(tf_models["blocks_keras"], "keras")["total_macs"]


def _patch_opcode(model_bytes: bytes, opcode_name: str, new_code: int) -> bytes:
    """The model with every use of ``opcode_name`` renamed to builtin code ``new_code`` (written
    the way the converter writes codes above 127: placeholder 127 in the int8 field)."""
    data = bytearray(model_bytes)
    view = _FlatbufferView(bytes(data))
    old_code = BUILTIN_OPERATOR_NAMES.index(opcode_name)
    for table in view.table_vector(view.root_table(), MODEL_OPERATOR_CODES):
        builtin = view.field_pos(table, OPCODE_BUILTIN_CODE)
        deprecated = view.field_pos(table, OPCODE_DEPRECATED_BUILTIN_CODE)
        if builtin is not None and view.scalar("i", builtin) == old_code:
            data[builtin:builtin + 4] = new_code.to_bytes(4, "little")
            if deprecated is not None:
                data[deprecated] = 127
            return bytes(data)
    raise AssertionError(f"{opcode_name} not found")


@pytest.mark.parametrize("new_code", [150, 4000])
def test_newer_and_unknown_operators_are_named_not_fatal(tf_models, new_code):
    figures = get_model_size(_patch_opcode(tf_models["blocks_int8_io"], "MEAN", new_code))
    mean_row = figures["operators"][6]
    expected_name = BUILTIN_OPERATOR_NAMES[new_code] if new_code < len(BUILTIN_OPERATOR_NAMES) \
        else f"BUILTIN_OPERATOR_{new_code}"
    assert mean_row["opcode"] == expected_name and mean_row["opcode_number"] == new_code
    assert mean_row["macs"] == 0  # counted only for the official tool's operators
    assert mean_row["weight_bytes"] == 2 * INT32_BYTES
    assert expected_name in json.dumps(figures)


# ---------------------------------------------------------------------------------------------
# Bad input and the command line
# ---------------------------------------------------------------------------------------------

def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "model_size_calculation/nessi.py", *map(str, args)],
                          cwd=REPO_DIR, capture_output=True, text=True, timeout=60)


def test_cli_json_equals_the_api(reference_model):
    result = _cli(reference_model, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(get_model_size(reference_model)))


def test_cli_prints_the_table(reference_model, published):
    result = _cli(reference_model)
    assert result.returncode == 0 and result.stdout.startswith(published["text"].rstrip("\n"))


def test_cli_bad_inputs_give_one_line_errors(tmp_path, reference_model):
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(reference_model.read_bytes()[:30_000])
    for bad in (tmp_path / "missing.tflite", tmp_path, REPO_DIR / "task1a.yaml", truncated):
        result = _cli(bad)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, \
            result.stderr


def test_every_truncation_is_reported(reference_model):
    data = reference_model.read_bytes()
    for cut in range(0, len(data), 97):
        with pytest.raises(ModelSizeError, match="truncated|not a TFLite"):
            get_model_size(data[:cut])
    with pytest.raises(ModelSizeError, match="truncated"):
        get_model_size(data[:-1])


def test_wrong_arguments_are_one_clear_error(reference_model):
    with pytest.raises(ModelSizeError, match="model_type 'onnx'"):
        get_model_size(reference_model, "onnx")
    with pytest.raises(ModelSizeError, match="path or bytes"):
        get_model_size(12, "tflite")
    with pytest.raises(ModelSizeError, match="keras.Model"):
        get_model_size(reference_model, "keras")


def test_the_package_stands_alone():
    """Nothing of utils is imported, as a module or as the script."""
    code = ("import sys; import model_size_calculation.nessi; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'utils'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_DIR, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    source = (REPO_DIR / "model_size_calculation" / "nessi.py").read_text()
    assert not re.search(r"^\s*(from|import) utils", source, re.M)


def test_a_keras_file_is_answered_with_what_to_measure(tmp_path):
    import zipfile

    keras_file = tmp_path / "model.keras"  # a .keras file is a zip archive
    with zipfile.ZipFile(keras_file, "w") as archive:
        archive.writestr("config.json", "{}")
    result = _cli(keras_file)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "is a Keras (.keras zip) model, not TFLite" in result.stderr
    assert "convert it to int8 TFLite first" in result.stderr
    assert "python task1a.py --check_complexity" in result.stderr
    (tmp_path / "model_float.tflite").write_bytes(b"")  # the learning stage exports beside model.keras
    with pytest.raises(ModelSizeError, match=re.escape(f"measure {tmp_path / 'model_float.tflite'} "
                                                       "exported beside it")):
        get_model_size(keras_file)
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelSizeError, match="Keras/HDF5"):
        get_model_size(h5)


def test_nessi_units():
    assert nessi_memory(46_512) == "46.512 K" and nessi_memory(128_000) == "128.000 K"
    assert nessi_macs(29_234_920) == "29.235 M" and nessi_macs(30_000_000) == "30.000 M"
