"""Any Keras model from YAML (utils/model.py): a functional graph config and a builder, and everything downstream
(parameter resolution, complexity gate and NeSsi, TFLite export, fine-tuning with trainable_layers, distillation)
working on them unchanged."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))  # run as a script (a multi-worker cluster member): the repository's packages

from utils.errors import Task1aError  # noqa: E402
from utils.model import build_model  # noqa: E402

CLASS_COUNT = 10


def tiny_graph(filters="FILTERS") -> dict:
    """A residual functional graph in Keras' own config format: conv -> BN -> ReLU, added to the conv, pooled, dense."""
    def node(*names):
        return [[[name, 0, 0, {}] for name in names]]

    return {
        "name": "tiny_graph",
        "layers": [
            {"class_name": "InputLayer", "name": "features", "config": {}, "inbound_nodes": []},
            {"class_name": "Conv2D", "name": "conv", "config": {"filters": filters, "kernel_size": 3, "padding": "same"}, "inbound_nodes": node("features")},
            {"class_name": "BatchNormalization", "name": "bn", "config": {}, "inbound_nodes": node("conv")},
            {"class_name": "ReLU", "name": "relu", "config": {}, "inbound_nodes": node("bn")},
            {"class_name": "Add", "name": "add", "config": {}, "inbound_nodes": node("relu", "conv")},
            {"class_name": "MaxPooling2D", "name": "pool", "config": {"pool_size": [4, 5]}, "inbound_nodes": node("add")},
            {"class_name": "Flatten", "name": "flatten", "config": {}, "inbound_nodes": node("pool")},
            {"class_name": "Dense", "name": "dense", "config": {"units": "CLASS_COUNT", "activation": "softmax"}, "inbound_nodes": node("flatten")},
        ],
        "input_layers": [["features", 0, 0]],
        "output_layers": [["dense", 0, 0]],
    }


def tiny_builder(input_shape, class_count, FILTERS=4):
    """A builder as a user writes one (``tests.test_model_graphs.tiny_builder``): conv, BN, a shortcut add, pool, dense."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="features")
    conv = layers.Conv2D(FILTERS, 3, padding="same", name="conv")(inputs)
    x = layers.ReLU(name="relu")(layers.BatchNormalization(name="bn")(conv))
    x = layers.Add(name="add")([x, conv])
    x = layers.Flatten(name="flatten")(layers.MaxPooling2D((4, 5), name="pool")(x))
    return keras.Model(inputs, layers.Dense(class_count, activation="softmax", name="dense")(x), name="tiny_builder")


MODELS = {
    "graph": {"constants": {"FILTERS": 4}, "config": tiny_graph()},
    "builder": {"constants": {"FILTERS": 4}, "config": "tests.test_model_graphs.tiny_builder"},
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_both_forms_build_the_same_named_network(kind):
    model = build_model(MODELS[kind], input_shape=(40, 51, 1), class_count=CLASS_COUNT)
    names = [layer.name for layer in model.layers]
    assert names == ["features", "conv", "bn", "relu", "add", "pool", "flatten", "dense"]
    assert model.input_shape == (None, 40, 51, 1) and model.output_shape == (None, CLASS_COUNT)
    assert model.get_layer("conv").filters == 4  # the constant reached the layer
    again = build_model(MODELS[kind], input_shape=(40, 51, 1), class_count=CLASS_COUNT)
    assert [layer.name for layer in again.layers] == names
    probabilities = model(np.zeros((2, 40, 51, 1), np.float32)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m["config"].pop("input_layers"), "needs layers .* input_layers and output_layers"),
        (lambda m: m["config"]["layers"][1]["config"].update(filters="WIDTH"), r"layers\[1\].config.filters: undefined constant 'WIDTH'"),
        (lambda m: m["config"]["layers"][1].update(class_name="Conv9D"), "Keras cannot build the functional graph"),
        (lambda m: m["config"]["layers"][7]["config"].update(units=3), r"outputs shape \(3,\), expected one \(10,\)"),
        (lambda m: m["config"]["layers"][0]["config"].update(batch_shape=[None, 8, 8, 1]),
         r"takes input\(s\) \[\(8, 8, 1\)\], expected one of shape \(40, 51, 1\)"),
        (lambda m: m.update(config="tests.test_model_graphs.no_such_builder"), "has no function 'no_such_builder'"),
        (lambda m: m.update(config="no_such_package.builder"), "cannot import module 'no_such_package'"),
        (lambda m: m.update(config="tests.test_model_graphs.tiny_builder", constants={"FILTERZ": 4}),
         r"constants.FILTERZ: builder .* takes \(input_shape, class_count, FILTERS\)"),
        (lambda m: m.update(config=7), "must be a non-empty list .* a Keras functional graph config .* or a builder"),
    ],
)
def test_bad_graphs_and_builders_are_one_line_errors(change, message):
    model = copy.deepcopy(MODELS["graph"])
    change(model)
    with pytest.raises(Task1aError, match=message) as error:
        build_model(model, input_shape=(40, 51, 1), class_count=CLASS_COUNT)
    assert "\n" not in str(error.value)


def test_a_set_naming_a_graph_or_builder_gets_the_whole_model_and_no_layer_list_constants(tmp_path):
    """The merge rule: the 2023 layer list's constants (CONVOLUTION_*) do not reach a builder; a later layer's
    constants still merge into the builder's."""
    from utils.parameters import ParameterContainer

    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"sets": [
        {"set_id": "mine", "description": "builder", "learner_method_parameters": {"cnn": {"model": MODELS["builder"]}}},
        {"set_id": "graph", "description": "graph", "learner_method_parameters": {"cnn": {"model": MODELS["graph"]}}},
    ]}))
    container = ParameterContainer(override_path=user)
    model = container.resolve("mine")["learner"]["parameters"]["model"]
    assert model == MODELS["builder"]
    build_model(model, input_shape=(40, 51, 1), class_count=CLASS_COUNT)  # CONVOLUTION_* would be an unknown builder argument
    assert container.resolve("graph")["learner"]["parameters"]["model"] == MODELS["graph"]
    changed = container.resolve("mine", command_line={"learner_method_parameters": {"cnn": {"model": {"constants": {"FILTERS": 6}}}}})
    assert changed["learner"]["parameters"]["model"] == {"constants": {"FILTERS": 6}, "config": MODELS["builder"]["config"]}
    # the shipped layer list still merges constants as before
    assert "CONVOLUTION_INIT" in container.resolve()["learner"]["parameters"]["model"]["constants"]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_complexity_gate_and_nessi_measure_them(kind):
    from utils.complexity import check_complexity, network_complexity
    from utils.parameters import ParameterContainer
    from utils.settings import build_settings

    params = copy.deepcopy(ParameterContainer().resolve("demo"))
    params["learner"]["parameters"]["model"] = copy.deepcopy(MODELS[kind])
    settings = build_settings(params)
    figures = network_complexity(settings, kind)
    # NeSsi's conventions: conv 40*51*4*9; two ADDs of 40*51*4 (the shortcut, and BN's shift: the conv output
    # feeds the shortcut too, so BN is not folded into it); the pool 10*10*4*20; the dense layer fed the pooled
    # (1, 10, 10, 4) tensor (the flatten folded into it, as in the official graph) counted as the official tool
    # does, with the input's last dimension: 4*10
    assert figures["total_macs"] == 40 * 51 * 4 * 9 + 2 * 40 * 51 * 4 + 10 * 10 * 4 * 20 + 4 * 10
    assert figures["keras_trainable_parameters"] == (9 * 4 + 4) + 2 * 4 + (400 * 10 + 10)
    text, problems = check_complexity(settings, kind)
    assert problems == [] and "verdict: within the DCASE2023 limits" in text


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_training_fine_tuning_distillation_and_export_work_on_them(kind, tmp_path):
    from tests.test_learning import small_cnn_parameters, toy_problem
    from utils.learning import train_model
    from utils.settings import learner_from_block
    from utils.tflite import TFLiteClassifier, export_tflite_models

    X, y = toy_problem(60, seed=2)
    parameters = small_cnn_parameters(epochs=2, initial_delay=0)
    parameters["model"] = copy.deepcopy(MODELS[kind])
    trained = train_model(learner_from_block(parameters), X[:40], y[:40], X[40:], y[40:], tmp_path / "general", progress=False)
    assert all(np.isfinite(row["loss"]) for row in trained.history)
    general = tmp_path / "general.weights.h5"
    trained.model.save_weights(general)

    # fine-tuning only the dense layer from the general weights, with a teacher's outputs distilled in
    teacher = np.full((40, CLASS_COUNT), 0.05)
    teacher[np.arange(40), y[:40]] = 0.55
    np.save(tmp_path / "teacher.npy", teacher)
    tuned = copy.deepcopy(parameters)
    tuned.update(initial_weights=str(general), trainable_layers=["dense"])
    tuned["distillation"] = {"teacher_outputs": str(tmp_path / "teacher.npy"), "temperature": 2.0, "weight": 0.5}
    result = train_model(learner_from_block(tuned), X[:40], y[:40], X[40:], y[40:], tmp_path / "tuned", progress=False)
    before = dict(zip([w.path for w in trained.model.weights], trained.model.get_weights()))
    after = dict(zip([w.path for w in result.model.weights], result.model.get_weights()))
    assert all(np.array_equal(before[path], after[path]) for path in before if not path.startswith("dense/"))
    assert any(not np.array_equal(before[path], after[path]) for path in before if path.startswith("dense/"))

    paths = export_tflite_models(result.model, X[:40], y[:40], np.array(["a"] * 40), tmp_path / "export", ios=("float", "int8", "float16"), n_examples=10)
    keras_top = result.model.predict(X[40:, ..., None], verbose=0).argmax(axis=1)
    for io, path in paths.items():
        probabilities = TFLiteClassifier(path).predict_proba(X[40:])
        assert probabilities.shape == (20, CLASS_COUNT)
        if io == "float16":
            assert np.mean(probabilities.argmax(axis=1) == keras_top) >= 0.9


def run_worker(kind: str, model_dir: Path, report_dir: Path, index: int) -> None:
    """One multi-worker cluster member training the tiny graph or builder two epochs (run as a script)."""
    from tests.test_learning import small_cnn_parameters, toy_problem
    from utils.learning import train_model
    from utils.settings import learner_from_block

    X, y = toy_problem(48, seed=4)
    parameters = small_cnn_parameters(epochs=2, initial_delay=0, batch_size=8)
    parameters["model"] = copy.deepcopy(MODELS[kind])
    result = train_model(learner_from_block(parameters), X[:32], y[:32], X[32:], y[32:], model_dir, seed=4, progress=False, distribute="multi_worker")
    np.savez(report_dir / f"weights_{index}.npz", *result.model.get_weights())
    (report_dir / f"worker_{index}.json").write_text(json.dumps({"replicas": result.replicas, "history": result.history,
                                                                 "layers": [layer.name for layer in result.model.layers]}))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_multi_worker_training_of_them_ends_with_identical_weights(kind, tmp_path):
    from tests.test_distribute import WORKERS, cluster_environments, wait_all

    processes, logs = [], []
    for index, env in enumerate(cluster_environments()):
        logs.append(open(tmp_path / f"worker_{index}.log", "w"))
        processes.append(subprocess.Popen([sys.executable, __file__, kind, str(tmp_path / "model"), str(tmp_path), str(index)], env=env,
                                          cwd=REPO_DIR, stdout=logs[-1], stderr=subprocess.STDOUT))
    codes = wait_all(processes)
    for log in logs:
        log.close()
    assert codes == [0] * WORKERS, (tmp_path / "worker_0.log").read_text()[-3000:]
    reports = [json.loads((tmp_path / f"worker_{i}.json").read_text()) for i in range(WORKERS)]
    assert [r["replicas"] for r in reports] == [WORKERS] * WORKERS
    assert reports[0]["layers"] == ["features", "conv", "bn", "relu", "add", "pool", "flatten", "dense"]
    assert all(np.isfinite(row["loss"]) for row in reports[0]["history"])
    weights = [list(np.load(tmp_path / f"weights_{i}.npz").values()) for i in range(WORKERS)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


if __name__ == "__main__":
    run_worker(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
