"""The complexity gate: a parameter set's untrained network measured by NeSsi before any training."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path

import pytest

from model_size_calculation.nessi import format_nessi_table, get_model_size
from utils.complexity import (
    check_complexity,
    enforce_limits,
    limit_problems,
    measure_tflite,
    network_input_shape,
    untrained_network,
    untrained_tflite,
)
from utils.errors import Task1aError
from utils.parameters import ParameterContainer, checked_defaults, command_line_layer
from utils.settings import ModelSizeSettings, build_settings, feature_settings

LIMITS = ModelSizeSettings(max_macs=30_000_000, max_memory_bytes=128_000)


@pytest.fixture(scope="module")
def params() -> dict:
    return ParameterContainer().resolve()


@pytest.fixture(scope="module")
def settings(params):
    return build_settings(params)


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
    with pytest.raises(Task1aError, match="'model_size.max_macs' must be an integer, got '30e6'"):  # never reaches the library
        command_line_layer(["model_size.max_macs=30e6"], checked_defaults())
    with pytest.raises(Task1aError, match="'model_size.parameter_bits' must be one of 8, 16, 32 or null, got 12"):
        command_line_layer(["model_size.parameter_bits=12"], checked_defaults())
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
    def limits(enforce):
        return ModelSizeSettings(LIMITS.max_macs, LIMITS.max_memory_bytes, enforce=enforce)

    assert limits("eval").enforced("eval") and not limits("eval").enforced("dev")
    assert limits("always").enforced("dev") and not limits("never").enforced("eval")
    assert ModelSizeSettings(1, 1).enforce == "eval"


def test_input_shape_follows_the_feature_parameters(params):
    assert network_input_shape(feature_settings(params["feature_extractor"])) == (40, 51, 1)
    other = copy.deepcopy(params)
    other["feature_extractor"]["parameters"]["n_mels"] = 64
    other["feature_extractor"]["segment_length_seconds"] = 0.5
    assert network_input_shape(feature_settings(other["feature_extractor"])) == (64, 1 + 22050 // 882, 1)  # centred frames, hop 882 samples


def test_a_bad_model_file_is_a_task1a_error(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(Task1aError, match="not a TFLite model"):
        measure_tflite(bad, LIMITS)


# --------------------------------------------------------------------------- the real conversion
@pytest.fixture(scope="module")
def shipped(settings, params):
    pytest.importorskip("tensorflow")
    return check_complexity(settings, params["set_id"])


def test_the_shipped_network_is_within_the_limits(shipped, reference_dir):
    """The default network measures as the official model file: the export has the official graph (a batch of one,
    no run-time shape arithmetic, the first dense layer fed the pooled tensor), so NeSsi gives the published figures."""
    text, problems = shipped
    assert problems == []
    official = get_model_size(reference_dir / "model_task1.tflite")
    assert (official["total_weight_bytes"], official["total_macs"]) == (46_512, 29_234_920)  # the published figures
    assert "Total weight size: 46,512" in text and "Total MACs: 29,234,920" in text
    # the dense layers keep their int32 biases (zero in an untrained network, which the converter would drop)
    assert re.search(r"\|\s+6,800 \|$", text, re.M) and re.search(r"\|\s+1,040 \|$", text, re.M)
    lines = text.splitlines()
    assert lines[0] == ("Complexity of set dcase2023_baseline: its untrained network (40 mels x 51 frames in), "
                        "converted to int8 TFLite as the learning stage exports it, counted by NeSsi:")
    assert "Memory:\t \t 46.512 K" in text and "MACC:\t \t 29.235 M" in text
    assert "warning:" not in text  # no run-time shape arithmetic
    assert lines[-1] == ("verdict: within the DCASE2023 limits (MACs 29,234,920 <= 30,000,000; "
                         "parameter memory 46,512 B <= 128,000 B)")


def schedule_rows(table: dict, content: bytes) -> list:
    """A parsed NeSsi table's operator rows as (operator type, output shape, (shape, bytes) of the tensors in memory,
    memory, MACs, weight bytes): what a row says, without the names and ids a converter chooses."""
    from model_size_calculation.tflite_reader import read_tflite_graph

    tensors = {t["id"]: (tuple(t["shape"]), t["bytes"]) for t in table["tensors"]}
    shapes = {t["name"]: tuple(t["shape"]) for t in table["tensors"]}
    kinds = [op.opcode_name for op in read_tflite_graph(content).operators]
    assert len(shapes) == len(tensors) and len(kinds) == len(table["operators"])
    return [(kind, shapes[op["name"]], sorted(tensors[i] for i in op["tensors_in_memory"]), op["memory_bytes"], op["macs"], op["weight_bytes"])
            for kind, op in zip(kinds, table["operators"])]


@pytest.fixture(scope="module")
def shipped_exports(settings) -> dict:
    """The shipped network's untrained exports, float io (the measured one) and int8 io."""
    pytest.importorskip("tensorflow")
    return {io: untrained_tflite(settings.features, settings.learner.model, io=io) for io in ("float", "int8")}


def test_the_shipped_network_counts_like_the_published_table_row_by_row(shipped_exports, reference_dir):
    from test_nessi import parse_nessi_table

    content = shipped_exports["float"]
    ours = parse_nessi_table(format_nessi_table(measure_tflite(content, LIMITS)))
    published = parse_nessi_table((reference_dir / "model_task1.nessi.txt").read_text())
    official_rows = schedule_rows(published, (reference_dir / "model_task1.tflite").read_bytes())
    our_rows = schedule_rows(ours, content)
    # TF 2.1 made the first convolution (one input channel) a DEPTHWISE_CONV_2D with depth multiplier 16; TF 2.21 keeps
    # CONV_2D: the same 40 * 51 * 16 * 7 * 7 products and the same weights (16 * 7 * 7 int8, 16 int32), so the same row.
    assert official_rows[1][0] == "DEPTHWISE_CONV_2D" and our_rows[1][0] == "CONV_2D"
    our_rows[1] = ("DEPTHWISE_CONV_2D", *our_rows[1][1:])
    assert our_rows == official_rows  # QUANTIZE, 3 convolutions, 2 poolings, the dense layer on (1, 2, 1, 32), ... DEQUANTIZE
    assert official_rows[6][:3] == ("FULLY_CONNECTED", (1, 100), [((1, 2, 1, 32), 64), ((1, 100), 100)])
    assert sorted((tuple(t["shape"]), t["bytes"]) for t in ours["tensors"]) == sorted((tuple(t["shape"]), t["bytes"]) for t in published["tensors"])
    assert (ours["peak"], ours["macs"], ours["weights"]) == (published["peak"], published["macs"], published["weights"]) == (65_280, 29_234_920, 46_512)


def test_the_int8_io_export_has_the_same_rows_without_the_io_conversions(shipped_exports):
    floating, integer = (measure_tflite(shipped_exports[io], LIMITS) for io in ("float", "int8"))
    assert floating["runtime_shape_operators"] == integer["runtime_shape_operators"] == []
    assert [op["opcode"] for op in integer["operators"]] == [op["opcode"] for op in floating["operators"]][1:-1]  # no QUANTIZE, DEQUANTIZE
    assert [op["opcode"] for op in integer["operators"]][5] == "FULLY_CONNECTED"
    assert [(op["memory_bytes"], op["macs"], op["weight_bytes"]) for op in integer["operators"]] == \
        [(op["memory_bytes"], op["macs"], op["weight_bytes"]) for op in floating["operators"]][1:-1]
    assert (integer["total_macs"], integer["total_weight_bytes"], integer["peak_memory_bytes"]) == (29_234_920, 46_512, 65_280)


def test_a_graph_that_computes_shapes_at_run_time_is_named_by_the_gate(settings, caplog):
    """The converter's own form of the shipped network (a dynamic batch) makes Flatten run-time shape arithmetic:
    --check_complexity's figures and the gate name the operators; NeSsi counts 3,200 MACs and 16 B more."""
    from utils.tflite import convert_to_tflite

    figures = measure_tflite(convert_to_tflite(*untrained_network(settings.features, settings.learner.model), official_form=False), LIMITS)
    assert figures["runtime_shape_operators"] == ["6 SHAPE", "7 STRIDED_SLICE", "8 PACK", "9 RESHAPE"]
    assert (figures["total_macs"], figures["total_weight_bytes"]) == (29_234_920 + 100 * 32, 46_512 + 4 * 4)  # 64-wide dense input; 4 int32 constants
    with caplog.at_level(logging.WARNING, logger="utils.complexity"):
        assert enforce_limits(figures, LIMITS, "set x", enforced=True) == []
    (record,) = caplog.records
    assert record.getMessage().startswith("set x: the converted graph computes tensor shapes at run time "
                                          "(6 SHAPE, 7 STRIDED_SLICE, 8 PACK, 9 RESHAPE): ")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="utils.complexity"):
        enforce_limits(measure_tflite(untrained_tflite(settings.features, settings.learner.model), LIMITS), LIMITS, "set y")
    assert not caplog.records  # the export of the same network: none


def test_a_widened_network_is_over_both_limits(shipped, params):
    text, problems = check_complexity(build_settings(widened(params, 64)), "wide")
    positions = 40 * 51
    macs = (positions * 64 * 49 * 1 + positions * 64 * 49 * 64  # two 7x7 convolutions at full resolution
            + 8 * 10 * 64 * 25 + 8 * 10 * 64 * 49 * 64 + 2 * 1 * 64 * 40  # pool 5x5, conv, pool 4x10
            + 64 * 100 + 100 * 10)  # dense layers, the first fed the (1, 2, 1, 64) pooling output: NeSsi counts 64 wide
    memory = ((49 * 64 + 4 * 64) + 2 * (49 * 64 * 64 + 4 * 64)  # int8 kernels, int32 biases
              + (128 * 100 + 4 * 100) + (100 * 10 + 4 * 10))  # dense layers (no shape constants: Flatten is folded)
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
    assert "verdict: OVER THE DCASE2023 LIMITS: MACs 48,301,800 > 30,000,000 (model_size.max_macs)" in checked.stdout
    refused = task1a("--mode", "eval")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "MACs 48,301,800 > 30,000,000" in errors[0] and "model_size.enforce" in errors[0]
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "system" / "features").exists()  # no work was done
    dev = task1a("--check_complexity", "--set", "learner_method_parameters.cnn.model.constants.CONVOLUTION_KERNEL_SIZE=7")
    assert dev.returncode == 0 and "verdict: within the DCASE2023 limits" in dev.stdout
