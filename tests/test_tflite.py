"""TFLite export and inference: stratified calibration examples, float/int8 io, own-scale quantization."""

import logging

import keras
import numpy as np
import pytest

from model_size_calculation.tflite_reader import read_tflite_graph
from utils.errors import Task1aError
from utils.model import build_model, set_seeds
from utils.tflite import TFLiteClassifier, convert_to_tflite, evaluate_quantization, export_tflite_models, select_representative_examples
from utils.tflite_graph import BUFFER_ALIGNMENT, fold_reshapes_into_fully_connected, runtime_shape_operators

CLASS_COUNT = 10
DEVICES = np.array(["a", "b", "c", "s1", "s2", "s3"])


def toy_problem(n, seed):
    """Separable toy features (n, 40, 51) in [-1, 1]-ish: class c raises mel bands 4c..4c+3."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % CLASS_COUNT)
    X = rng.normal(-0.3, 0.2, (n, 40, 51)).astype(np.float32)
    for label in range(CLASS_COUNT):
        X[y == label, 4 * label : 4 * label + 4, :] += 0.8
    devices = DEVICES[rng.integers(0, len(DEVICES), n)]
    return X, y, devices


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained on the toy problem and its two exported TFLite variants."""
    set_seeds(0)
    model = build_model(
        {
            "constants": {},
            "config": [
                {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "padding": "same"}},
                {"class_name": "BatchNormalization", "config": {"axis": -1}},
                {"class_name": "Activation", "config": {"activation": "relu"}},
                {"class_name": "MaxPooling2D", "config": {"pool_size": [4, 5]}},
                {"class_name": "Flatten", "config": {}},
                {"class_name": "Dense", "config": {"units": "CLASS_COUNT", "activation": "softmax"}},
            ],
        }
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    X, y, devices = toy_problem(400, seed=0)
    model.fit(X[:300, ..., None], np.eye(CLASS_COUNT)[y[:300]], batch_size=16, epochs=3, verbose=0)
    folder = tmp_path_factory.mktemp("tflite")
    paths = export_tflite_models(model, X[:300], y[:300], devices[:300], folder, n_examples=60, seed=0)
    representative = X[:300][select_representative_examples(y[:300], devices[:300], n=60, seed=0)]  # as the export drew them
    return {"model": model, "paths": paths, "X_val": X[300:], "y_val": y[300:], "representative": representative}


def test_representative_examples_are_stratified_over_classes_and_devices():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 3000)
    devices = np.where(rng.random(3000) < 0.7, "a", DEVICES[rng.integers(1, 6, 3000)])  # device a dominates
    indices = select_representative_examples(y, devices, n=100, seed=0)
    assert len(indices) == len(set(indices)) == 100 and indices.min() >= 0 and indices.max() < 3000
    cells = [f"{label}/{device}" for label, device in zip(y, devices)]
    names, sizes = np.unique(cells, return_counts=True)
    chosen = dict(zip(*np.unique([cells[i] for i in indices], return_counts=True)))
    assert set(chosen) == set(names)  # every (class, device) cell is represented
    # One per cell, the remaining examples in proportion to the cells' sizes (to within one).
    proportional = 1 + (100 - len(names)) * (sizes - 1) / (sizes - 1).sum()
    counts = np.array([chosen[name] for name in names])
    assert np.all(np.abs(counts - proportional) < 1)
    np.testing.assert_array_equal(indices, select_representative_examples(y, devices, n=100, seed=0))
    assert not np.array_equal(indices, select_representative_examples(y, devices, n=100, seed=1))
    with pytest.raises(Task1aError, match="representative_examples"):
        select_representative_examples(y[:50], devices[:50], n=100)


def test_both_variants_are_exported_with_their_io_types(trained):
    assert set(trained["paths"]) == {"float", "int8"}
    floating, integer = TFLiteClassifier(trained["paths"]["float"]), TFLiteClassifier(trained["paths"]["int8"])
    assert floating.io_type == "float" and np.dtype(floating.input_details["dtype"]) == np.float32
    assert integer.io_type == "int8" and np.dtype(integer.input_details["dtype"]) == np.int8
    assert np.dtype(integer.output_details["dtype"]) == np.int8
    assert integer.input_details["quantization"][0] > 0


def test_int8_io_model_quantizes_inputs_with_its_own_scale_and_zero_point(trained):
    X = trained["X_val"][:20]
    classifier = TFLiteClassifier(trained["paths"]["int8"], batch_size=8)
    probabilities = classifier.predict_proba(X)

    # Independent manual run: quantize with the input tensor's scale/zero point, dequantize the output.
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(trained["paths"]["int8"]))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = source["quantization"], target["quantization"]

    def run(quantized_input):
        rows = []
        for x in quantized_input:
            interpreter.set_tensor(source["index"], x[None, ..., None])
            interpreter.invoke()
            rows.append((interpreter.get_tensor(target["index"])[0].astype(np.float64) - out_zero) * out_scale)
        rows = np.array(rows)
        return rows / rows.sum(axis=1, keepdims=True)

    manual = run(np.clip(np.round(X / in_scale) + in_zero, -128, 127).astype(np.int8))
    np.testing.assert_allclose(probabilities, manual, atol=1e-12)
    # The float-io model quantizes inside its graph with the same parameters: same answers.
    floating = TFLiteClassifier(trained["paths"]["float"]).predict_proba(X)
    assert np.max(np.abs(floating - probabilities)) <= 2 * out_scale
    assert np.mean(floating.argmax(axis=1) == probabilities.argmax(axis=1)) >= 0.95
    # The official loop's bare dtype cast (no scale, no zero point) gives other answers.
    cast = run(X.astype(np.int8))
    assert np.max(np.abs(cast - probabilities)) > 0.1


def test_batched_inference_equals_one_by_one_and_rows_sum_to_one(trained):
    X = trained["X_val"][:23]
    for io in ("float", "int8"):
        batched = TFLiteClassifier(trained["paths"][io], batch_size=10).predict_proba(X)
        single = TFLiteClassifier(trained["paths"][io], batch_size=1).predict_proba(X)
        np.testing.assert_allclose(batched, single, atol=1e-12)
        np.testing.assert_allclose(batched.sum(axis=1), 1.0, atol=1e-12)
        assert batched.shape == (23, CLASS_COUNT) and batched.dtype == np.float64


def test_tflite_accuracy_within_one_point_of_keras(trained):
    report = evaluate_quantization(trained["model"], trained["paths"], trained["X_val"], trained["y_val"])
    assert report["keras"]["accuracy"] >= 0.9  # the toy problem is learnt
    for io in ("float", "int8"):
        assert abs(report[io]["accuracy"] - report["keras"]["accuracy"]) <= 0.01
        assert abs(report[io]["log_loss"] - report["keras"]["log_loss"]) < 0.1
        assert report[io]["agreement_with_keras"] >= 0.97


def test_official_model_file_runs(reference_dir):
    classifier = TFLiteClassifier(reference_dir / "model_task1.tflite", batch_size=4)
    assert classifier.io_type == "float"
    X = np.random.default_rng(0).uniform(-1, 1, (6, 40, 51)).astype(np.float32)
    probabilities = classifier.predict_proba(X)
    assert probabilities.shape == (6, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)


def test_missing_truncated_or_foreign_files_are_one_line_errors(tmp_path, trained):
    with pytest.raises(Task1aError, match="not found"):
        TFLiteClassifier(tmp_path / "absent.tflite")
    text = tmp_path / "notes.tflite"
    text.write_text("not a model at all")
    with pytest.raises(Task1aError, match="not a TFLite model"):
        TFLiteClassifier(text)
    content = trained["paths"]["int8"].read_bytes()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(Task1aError, match="truncated or corrupt"):
        TFLiteClassifier(truncated)
    with pytest.raises(Task1aError, match=r"takes features of shape \(n, 40, 51\)"):
        TFLiteClassifier(content).predict_proba(np.zeros((2, 40, 50), dtype=np.float32))


# ------------------------------------------------------------------------------ the official graph form
def operators(content: bytes) -> list:
    """(operator type, input shapes, output shapes) of each operator in graph order."""
    graph = read_tflite_graph(content)
    return [(op.opcode_name, [graph.tensors[i].shape for i in op.inputs if i >= 0], [graph.tensors[i].shape for i in op.outputs]) for op in graph.operators]


def test_the_export_has_the_official_graph_form(trained):
    """A batch of one, no run-time shape arithmetic, and the dense layer fed the pooled tensor as in the official file."""
    for io, path in trained["paths"].items():
        content = path.read_bytes()
        kinds = [kind for kind, _, _ in operators(content)]
        assert kinds == ["QUANTIZE"] * (io == "float") + ["CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"] + ["DEQUANTIZE"] * (io == "float")
        _, (pooled, weights, _), _ = operators(content)[kinds.index("FULLY_CONNECTED")]
        assert pooled == (1, 10, 10, 4) and weights == (CLASS_COUNT, 400)  # (40 / 4, 51 // 5) positions x 4 filters, flattened by the layer
        assert runtime_shape_operators(content) == []
        assert TFLiteClassifier(content).input_details["shape_signature"].tolist() == [1, 40, 51, 1]  # a fixed batch of one
        # the converter's own form of the same model has a dynamic batch and computes Flatten's shape at run time
        own = convert_to_tflite(trained["model"], trained["representative"], io=io, official_form=False)
        assert [name.split()[1] for name in runtime_shape_operators(own)] == ["SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"]
        assert TFLiteClassifier(own).input_details["shape_signature"].tolist() == [-1, 40, 51, 1]


def test_the_official_form_predicts_bit_for_bit_as_the_converters_form(trained):
    """The rewrite changes the graph, not the arithmetic; the batch-one file still runs batches (the interpreter resizes it)."""
    X = trained["X_val"]
    for io, path in trained["paths"].items():
        own = convert_to_tflite(trained["model"], trained["representative"], io=io, official_form=False)
        official = TFLiteClassifier(path, batch_size=64)
        probabilities = official.predict_proba(X)
        assert official.input_details["shape"][0] == len(X) - 64  # the last batch ran as one call, not clip by clip
        np.testing.assert_array_equal(probabilities, TFLiteClassifier(own, batch_size=64).predict_proba(X))
        np.testing.assert_array_equal(probabilities, TFLiteClassifier(path, batch_size=1).predict_proba(X))


def test_the_rewrite_leaves_no_orphans_and_aligns_the_weights(trained):
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    for path in trained["paths"].values():
        content = path.read_bytes()
        model = schema.Model.GetRootAs(content, 0)
        graph = model.Subgraphs(0)
        used = {t for i in range(graph.OperatorsLength()) for t in [*graph.Operators(i).InputsAsNumpy(), *graph.Operators(i).OutputsAsNumpy()]}
        used.update([*graph.InputsAsNumpy(), *graph.OutputsAsNumpy()])
        assert used - {-1} == set(range(graph.TensorsLength()))  # every tensor is used
        referenced = {graph.Tensors(i).Buffer() for i in range(graph.TensorsLength())} | {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
        assert referenced | {0} == set(range(model.BuffersLength()))
        assert {graph.Operators(i).OpcodeIndex() for i in range(graph.OperatorsLength())} == set(range(model.OperatorCodesLength()))
        starts = [buffer._tab.Vector(buffer._tab.Offset(4)) for buffer in map(model.Buffers, range(model.BuffersLength())) if buffer.DataLength()]
        assert starts and all(start % BUFFER_ALIGNMENT == 0 for start in starts)


def test_only_reshapes_that_flatten_a_dense_layers_input_are_folded(caplog):
    """A network with Flatten -> Dense (folded), a Dense on a (8, 12) reshape (its batch changes: kept) and a flattened
    (8, 2) result concatenated (not a dense layer's input: kept); the outputs equal the converter's form bit for bit."""
    set_seeds(0)
    layers = keras.layers
    inputs = keras.Input((40, 51, 1))
    pooled = layers.MaxPooling2D((5, 17))(layers.Conv2D(4, 3, padding="same", activation="relu")(inputs))  # (8, 3, 4)
    flat = layers.Dense(3)(layers.Flatten()(pooled))
    rows = layers.Flatten()(layers.Dense(2)(layers.Reshape((8, 12))(pooled)))
    model = keras.Model(inputs, layers.Dense(CLASS_COUNT, activation="softmax")(layers.Concatenate()([flat, rows])))
    X, _, _ = toy_problem(40, seed=2)
    official, own = convert_to_tflite(model, X[:8]), convert_to_tflite(model, X[:8], official_form=False)
    graph = operators(official)
    assert [kind for kind, _, _ in graph].count("RESHAPE") == 2 and runtime_shape_operators(official) == []
    assert graph[3] == ("FULLY_CONNECTED", [(1, 8, 3, 4), (3, 96)], [(1, 3)])  # Flatten folded
    assert ("RESHAPE", [(1, 8, 3, 4), (2,)], [(8, 12)]) in graph and ("RESHAPE", [(8, 2), (2,)], [(1, 16)]) in graph
    with caplog.at_level(logging.WARNING, logger="utils.tflite"):
        np.testing.assert_array_equal(TFLiteClassifier(official).predict_proba(X), TFLiteClassifier(own).predict_proba(X))
    # its constant (8, 12) reshape cannot take a batch: the batch-one file runs clip by clip, and says so once
    assert [record.getMessage().split(" cannot be resized")[0] for record in caplog.records] == ["TFLite model (bytes)"]
    # the converter's form names every operator of its shape arithmetic, not the layers around it
    own_graph, named = read_tflite_graph(own), runtime_shape_operators(own)
    produced = {t for op in own_graph.operators for t in op.outputs}
    for op in own_graph.operators:
        computed_shape = op.opcode_name == "RESHAPE" and op.inputs[1] in produced
        assert (f"{op.index} {op.opcode_name}" in named) == (op.opcode_name in ("SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "REDUCE_PROD")
                                                            or computed_shape
                                                            or (op.opcode_name == "CONCATENATION" and own_graph.tensors[op.outputs[0]].type_name == "INT32"))
    assert fold_reshapes_into_fully_connected(own) == own  # a reshape whose shape is computed at run time is not folded (the gate names it)


def test_the_rewrite_keeps_a_graph_without_a_flattening_reshape_and_refuses_other_bytes(reference_dir):
    official = (reference_dir / "model_task1.tflite").read_bytes()
    assert fold_reshapes_into_fully_connected(official) == official  # its dense layer already reads the pooled tensor
    with pytest.raises(Task1aError, match="not a TFLite flatbuffer"):
        fold_reshapes_into_fully_connected(b"not a model at all")
