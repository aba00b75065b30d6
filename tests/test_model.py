"""The network built from the YAML: the baseline's exact parameter counts, constants, errors, seeds."""

import copy

import numpy as np
import pytest

from utils.errors import Task1aError
from utils.model import build_model, layer_parameter_counts, set_seeds
from utils.parameters import DEFAULT_PARAMETER_FILE, load_yaml

# Published per-layer parameter counts of the official baseline (spec/baseline.md).
BASELINE_COUNTS = [
    ("Conv2D", 800),
    ("BatchNormalization", 64),
    ("Conv2D", 12560),
    ("BatchNormalization", 64),
    ("Conv2D", 25120),
    ("BatchNormalization", 128),
    ("Dense", 6500),
    ("Dense", 1010),
]


@pytest.fixture(scope="module")
def default_model_parameters():
    return load_yaml(DEFAULT_PARAMETER_FILE)["defaults"]["learner_method_parameters"]["cnn"]["model"]


def small_model(filters="FILTERS"):
    return {
        "constants": {"FILTERS": 3},
        "config": [
            {"class_name": "Conv2D", "config": {"filters": filters, "kernel_size": 3, "padding": "same"}},
            {"class_name": "MaxPooling2D", "config": {"pool_size": [4, 4]}},
            {"class_name": "Flatten", "config": {}},
            {"class_name": "Dense", "config": {"units": "CLASS_COUNT", "activation": "softmax"}},
        ],
    }


def test_default_model_is_the_baseline(default_model_parameters):
    model = build_model(default_model_parameters)
    assert layer_parameter_counts(model) == BASELINE_COUNTS
    assert model.count_params() == 46246
    assert tuple(model.input_shape) == (None, 40, 51, 1)
    assert tuple(model.output_shape) == (None, 10)
    # The softmax output is a distribution.
    probabilities = model.predict_on_batch(np.random.default_rng(0).uniform(-1, 1, (3, 40, 51, 1)).astype(np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_constants_are_substituted_and_provided_by_the_code():
    model = build_model(small_model(), input_shape=(20, 24, 1), class_count=7)
    counts = dict(enumerate(count for _, count in layer_parameter_counts(model)))
    assert counts[0] == (3 * 3 * 1 + 1) * 3  # FILTERS = 3
    assert tuple(model.output_shape) == (None, 7)  # CLASS_COUNT from the code
    assert counts[1] == (5 * 6 * 3 + 1) * 7  # pooled 20x24 -> 5x6, 3 channels
    # FEATURE_VECTOR_LENGTH / INPUT_SEQUENCE_LENGTH are the input's mel bands and frames.
    parameters = small_model()
    parameters["config"].insert(0, {"class_name": "Reshape", "config": {"target_shape": ["FEATURE_VECTOR_LENGTH", "INPUT_SEQUENCE_LENGTH", 1]}})
    assert tuple(build_model(parameters, input_shape=(20, 24, 1)).layers[0].output.shape) == (None, 20, 24, 1)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["config"][0].update(class_name="Conv2d"), "config[0].class_name: unknown Keras layer 'Conv2d' (did you mean Conv2D?)"),
        (lambda c: c["config"][0]["config"].update(fliters=4), "config[0].config.fliters: Conv2D has no argument 'fliters' (did you mean filters?)"),
        (lambda c: c["config"][0]["config"].update(filters="FILTRES"), "config[0].config.filters: undefined constant 'FILTRES'"),
        (lambda c: c["config"][0]["config"].update(padding="smae"), "config[0].config.padding = 'smae'"),
        (lambda c: c["config"][3]["config"].update(activation="softmaxx"), "config[3].config.activation = 'softmaxx'"),
        (lambda c: c["config"][0]["config"].pop("filters"), "config[0].config: Conv2D needs filters"),
        (lambda c: c["config"][1]["config"].update(pool_size=[50, 50]), "config[1] (MaxPooling2D) does not fit its input of shape (None, 40, 51, 3)"),
        (lambda c: c["constants"].update(CLASS_COUNT=3), "constants.CLASS_COUNT is provided by the code"),
        (lambda c: c["config"].pop(), "the last layer outputs shape"),
    ],
)
def test_bad_layer_descriptions_name_the_layer_and_key(mutate, expected):
    parameters = copy.deepcopy(small_model())
    mutate(parameters)
    with pytest.raises(Task1aError) as error:
        build_model(parameters)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_seeds_make_initial_weights_reproducible():
    def initial_weights(seed):
        set_seeds(seed)
        return build_model(small_model()).get_weights()

    zero, zero_again, one = initial_weights(0), initial_weights(0), initial_weights(1)
    assert all(np.array_equal(a, b) for a, b in zip(zero, zero_again))  # 0 is a seed
    assert not all(np.array_equal(a, b) for a, b in zip(zero, one))
    # NumPy's global generator is seeded too.
    set_seeds(5)
    first = np.random.rand(3)
    set_seeds(5)
    np.testing.assert_array_equal(first, np.random.rand(3))


def test_deterministic_option_switches_tensorflow_op_determinism():
    from tensorflow.python.framework import config as tf_config  # the flag has no public getter

    set_seeds(0, deterministic=True)
    assert tf_config.is_op_determinism_enabled()
    set_seeds(0, deterministic=False)
    assert not tf_config.is_op_determinism_enabled()


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(Task1aError, match="general.seed"):
        set_seeds(seed)


def test_every_build_names_the_layers_alike():
    """Layer names do not depend on how many models the process built before (trainable_layers patterns
    such as ``dense_1`` must mean the same layer for the general model and every device model)."""
    from utils.model import build_model
    from utils.parameters import ParameterContainer

    model_parameters = ParameterContainer().resolve("demo")["learner"]["parameters"]["model"]
    first, second = ([layer.name for layer in build_model(model_parameters).layers] for _ in range(2))
    assert first == second
    assert first[:3] == ["input_layer", "conv2d", "batch_normalization"] and first[-2:] == ["dropout_2", "dense_1"]
