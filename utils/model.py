"""The network: any Keras model described in YAML, and the seeds that make it reproducible.

``learner_method_parameters.cnn.model`` has ``constants`` (name -> value) and ``config``, one of:

- a list of ``{class_name, config}`` Keras layers, stacked in order (the official baseline's dcase_util
  style; a ``keras.Sequential``-like model);
- a mapping: a Keras functional graph in Keras' own config format (``name``, ``layers`` each with
  ``class_name``, ``name``, ``config`` and ``inbound_nodes`` naming the layers it takes, ``input_layers``,
  ``output_layers``), built by ``keras.Model.from_config`` and so validated by Keras; an
  ``InputLayer`` without a shape gets the features' ``(None, n_mels, n_frames, 1)``;
- a string ``package.module.function``: a builder called as ``function(input_shape, class_count,
  **constants)`` that returns a ``keras.Model`` (e.g. ``utils.cpmobile.cp_mobile``, the DCASE2024/2025
  network).

For the layer list and the graph, a string value in a layer config that names a constant is replaced by
the constant's value; the code provides three constants from the data: ``CLASS_COUNT``,
``FEATURE_VECTOR_LENGTH`` (mel bands) and ``INPUT_SEQUENCE_LENGTH`` (frames). A builder gets the
``constants`` as keyword arguments (not the three provided ones: it has the shapes). Because the
constants merge across parameter layers as every mapping does, a layer (set, ``-p`` file) whose
``model.config`` is a graph or a builder gives the whole model: the constants of the layer list it
replaces are dropped (utils.parameters.merge). The layer list and the graph name their layers alike in
every build (a builder should name its layers, as ``cp_mobile`` does, for ``trainable_layers`` patterns);
the output must be ``(class_count,)`` class probabilities; every mistake is one line naming the key.
"""

from __future__ import annotations

import difflib
import inspect
import random
import re
from typing import Any

from utils.errors import Task1aError

PARAMETER_KEY = "learner_method_parameters.cnn.model"
# Constants the code derives from the data; the YAML must not redefine them.
PROVIDED_CONSTANTS = ("CLASS_COUNT", "FEATURE_VECTOR_LENGTH", "INPUT_SEQUENCE_LENGTH")


def set_seeds(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow/Keras with ``seed`` (0 is a seed, unlike the official ``if seed:``).

    ``deterministic`` turns TensorFlow's deterministic ops on (slower; needed for bit-exact resume)
    or off again.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise Task1aError(f"general.seed must be a non-negative integer, got {seed!r}; fix the seed")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)  # random, numpy.random, tensorflow and the Keras backend
    random.seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework import config as tf_config  # no public switch-off

        tf_config.disable_op_determinism()


_CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # Keras identifiers are lower case: upper case means a constant
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _first_cause(exc: BaseException) -> str:
    """The informative line of a Keras error (Keras wraps the cause in 'Exception encountered...')."""
    lines = [_ANSI_ESCAPE.sub("", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Exception encountered", "Arguments received", "\u2022"))]
    return lines[0] if lines else type(exc).__name__


def _undefined_constant(value: Any, constants: dict) -> str | None:
    """The first string in ``value`` that looks like a constant name but is not defined."""
    if isinstance(value, str) and _CONSTANT_NAME.match(value) and value not in constants:
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            name = _undefined_constant(item, constants)
            if name:
                return name
    return None


def _substitute(value: Any, constants: dict) -> Any:
    """Replace strings naming a constant by its value, inside lists too."""
    if isinstance(value, str) and value in constants:
        return constants[value]
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(item, constants) for item in value)
    return value


def _accepted_keywords(layer_class: type) -> tuple[set, set]:
    """(all keyword names, required names) of a Keras layer's ``__init__`` along its class hierarchy.

    Keras layers pass unknown keywords up to ``Layer.__init__`` which then fails with a message that
    does not say which config entry is wrong; checking the signatures first lets us name the key.
    """
    import keras

    accepted, required = set(), set()
    for index, klass in enumerate(layer_class.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, keras.layers.Layer)) or "__init__" not in vars(klass):
            continue
        for name, parameter in inspect.signature(klass.__init__).parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            accepted.add(name)
            if index == 0 and parameter.default is parameter.empty:
                required.add(name)
    return accepted, required


def _culprit_key(layer_class: type, config: dict, message: str) -> str | None:
    """Best guess of the config key a layer constructor rejected (its name or value in the message,
    else the one optional key whose removal makes the constructor succeed)."""
    for key, value in config.items():
        if f"`{key}`" in message or f"'{key}'" in message or f" {key} " in f" {message} ":
            return key
    for key, value in config.items():
        if isinstance(value, str) and value in message:
            return key
    _, required = _accepted_keywords(layer_class)
    for key in config:
        if key in required:
            continue
        try:
            layer_class(**{k: v for k, v in config.items() if k != key})
        except Exception:  # noqa: BLE001 - any failure means this key is not the (only) culprit
            continue
        return key
    return None


def layer_name(class_name: str, used: dict[str, int]) -> str:
    """The name Keras gives a layer in a fresh process (``conv2d``, ``conv2d_1``, ``max_pooling2d``...),
    counted within one model (``used``: names given so far), so that every build of a network names its
    layers alike however many models the process built before (``trainable_layers`` patterns rely on it)."""
    base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)).lower()
    count = used.get(base, 0)
    used[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def _layer_from_description(index: int, description: Any, constants: dict, used: dict[str, int] | None = None):
    """One Keras layer from ``{class_name, config}``; one-line error naming the index and key. Unnamed
    layers get :func:`layer_name` (``used``: the names of the model so far)."""
    import keras

    where = f"{PARAMETER_KEY}.config[{index}]"
    if not isinstance(description, dict) or "class_name" not in description:
        raise Task1aError(f"{where} must be a mapping with class_name and config, got {description!r}; fix the layer list")
    unknown_fields = set(description) - {"class_name", "config"}
    if unknown_fields:
        raise Task1aError(f"{where}: unknown field(s) {sorted(unknown_fields)} (a layer has class_name and config); fix the layer")
    class_name = description["class_name"]
    layer_class = getattr(keras.layers, class_name, None) if isinstance(class_name, str) else None
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)) or class_name in ("Layer", "Input", "InputLayer"):
        names = [name for name in dir(keras.layers) if isinstance(getattr(keras.layers, name), type)]
        close = difflib.get_close_matches(str(class_name), names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise Task1aError(f"{where}.class_name: unknown Keras layer {class_name!r}{hint}; use a class of keras.layers")
    config = description.get("config") or {}
    if not isinstance(config, dict):
        raise Task1aError(f"{where}.config must be a mapping of {class_name} arguments, got {config!r}; fix the layer")
    for key, value in config.items():
        name = _undefined_constant(value, constants)
        if name:
            close = difflib.get_close_matches(name, sorted(constants), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise Task1aError(f"{where}.config.{key}: undefined constant {name!r}{hint}; define it in {PARAMETER_KEY}.constants")
    config = {key: _substitute(value, constants) for key, value in config.items()}
    accepted, required = _accepted_keywords(layer_class)
    for key in config:
        if key not in accepted:
            close = difflib.get_close_matches(str(key), sorted(accepted), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise Task1aError(f"{where}.config.{key}: {class_name} has no argument {key!r}{hint}; fix the key")
    missing = sorted(required - set(config))
    if missing:
        raise Task1aError(f"{where}.config: {class_name} needs {', '.join(missing)}; add it to the layer's config")
    if "name" not in config and used is not None:
        config["name"] = layer_name(class_name, used)
    try:
        return layer_class(**config)
    except Exception as exc:  # noqa: BLE001 - Keras raises TypeError, ValueError, KeyError... for bad values
        key = _culprit_key(layer_class, config, str(exc))
        at = f"{where}.config.{key}" if key else f"{where}.config"
        value = f" = {config[key]!r}" if key else ""
        raise Task1aError(f"{at}{value}: invalid {class_name} argument ({_first_cause(exc)}); fix the value") from exc


def build_model(model_parameters: dict, input_shape: tuple = (40, 51, 1), class_count: int = 10):
    """Build the Keras model described by ``learner_method_parameters.cnn.model``.

    ``input_shape`` is ``(n_mels, n_frames, 1)`` (channels last, as the official model); the batch
    dimension is left free. Returns an uncompiled ``keras.Model`` (input ``(batch, *input_shape)``,
    output ``(batch, class_count)`` probabilities).
    """

    if not isinstance(model_parameters, dict) or "config" not in model_parameters:
        raise Task1aError(f"{PARAMETER_KEY} must be a mapping with constants and config (a layer list); fix the parameters")
    unknown = set(model_parameters) - {"constants", "config"}
    if unknown:
        raise Task1aError(f"{PARAMETER_KEY}: unknown key(s) {sorted(unknown)} (known: constants, config); fix the key")
    if len(input_shape) != 3 or any(not isinstance(size, int) or size < 1 for size in input_shape):
        raise Task1aError(f"model input shape must be (n_mels, n_frames, channels) positive integers, got {input_shape!r}")
    if isinstance(class_count, bool) or not isinstance(class_count, int) or class_count < 2:
        raise Task1aError(f"class count must be an integer >= 2, got {class_count!r}")
    constants = model_parameters.get("constants") or {}
    if not isinstance(constants, dict):
        raise Task1aError(f"{PARAMETER_KEY}.constants must be a mapping of NAME: value; fix the parameters")
    redefined = sorted(set(constants) & set(PROVIDED_CONSTANTS))
    if redefined:
        raise Task1aError(f"{PARAMETER_KEY}.constants.{redefined[0]} is provided by the code from the data; remove it")
    constants = {
        **constants,
        "CLASS_COUNT": class_count,
        "FEATURE_VECTOR_LENGTH": input_shape[0],
        "INPUT_SEQUENCE_LENGTH": input_shape[1],
    }
    config = model_parameters["config"]
    if isinstance(config, str):
        model = _model_from_builder(config, tuple(input_shape), class_count, model_parameters.get("constants") or {})
    elif isinstance(config, dict):
        model = _model_from_graph(config, tuple(input_shape), constants)
    elif isinstance(config, list) and config:
        model = _model_from_layer_list(config, tuple(input_shape), constants)
    else:
        raise Task1aError(f"{PARAMETER_KEY}.config must be a non-empty list of {{class_name, config}} layers, a Keras functional "
                          f"graph config (a mapping) or a builder 'package.module.function', got {config!r}; fix the parameters")
    _check_ends(model, tuple(input_shape), class_count)
    return model


def _check_ends(model, input_shape: tuple, class_count: int) -> None:
    """One (batch, *input_shape) input and one (batch, class_count) output, else Task1aError."""
    import keras

    if not isinstance(model, keras.Model):
        raise Task1aError(f"{PARAMETER_KEY}.config: the builder returned {type(model).__name__}, not a keras.Model; fix the builder")
    if len(model.inputs) != 1 or tuple(model.inputs[0].shape[1:]) != input_shape:
        shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
        raise Task1aError(f"{PARAMETER_KEY}.config: the network takes input(s) {shapes}, expected one of shape {input_shape} "
                          "(n_mels, n_frames, 1) from the features; fix the input layer")
    if len(model.outputs) != 1 or tuple(model.outputs[0].shape[1:]) != (class_count,):
        shapes = ", ".join(str(tuple(tensor.shape[1:])) for tensor in model.outputs)
        raise Task1aError(
            f"{PARAMETER_KEY}.config: the last layer outputs shape {shapes}, expected one ({class_count},) output of class "
            "probabilities; end with Dense(units: CLASS_COUNT, activation: softmax) or a Softmax layer"
        )


def _model_from_builder(path: str, input_shape: tuple, class_count: int, constants: dict):
    """``function(input_shape, class_count, **constants)`` of the builder named ``package.module.function``."""
    import importlib

    where = f"{PARAMETER_KEY}.config"
    module_name, _, function_name = path.rpartition(".")
    if not module_name or not function_name.isidentifier():
        raise Task1aError(f"{where}: {path!r} is not a builder name 'package.module.function'; fix the value")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise Task1aError(f"{where}: cannot import module {module_name!r} of builder {path!r} ({exc}); fix the name or install the module") from exc
    builder = getattr(module, function_name, None)
    if not callable(builder):
        raise Task1aError(f"{where}: module {module_name!r} has no function {function_name!r}; fix the builder name")
    try:
        inspect.signature(builder).bind(input_shape, class_count, **constants)
    except TypeError as exc:
        parameters = [name for name in inspect.signature(builder).parameters][2:]
        unknown = [name for name in constants if name not in parameters]
        key = f"{PARAMETER_KEY}.constants.{unknown[0]}" if unknown else f"{PARAMETER_KEY}.constants"
        raise Task1aError(f"{key}: builder {path} takes (input_shape, class_count{''.join(', ' + p for p in parameters)}) ({exc}); fix the constants") from None
    try:
        return builder(input_shape, class_count, **constants)
    except Task1aError:
        raise
    except Exception as exc:  # noqa: BLE001 - a builder's Keras errors are of many kinds
        raise Task1aError(f"{where}: builder {path} failed: {_first_cause(exc)}; fix the constants or the builder") from exc


def _model_from_graph(graph: dict, input_shape: tuple, constants: dict):
    """A Keras functional model from Keras' functional config, constants substituted in every layer config."""
    import copy

    import keras

    where = f"{PARAMETER_KEY}.config"
    missing = [key for key in ("layers", "input_layers", "output_layers") if key not in graph]
    if missing or not isinstance(graph.get("layers"), list) or not graph["layers"]:
        raise Task1aError(f"{where}: a functional graph needs layers (a non-empty list), input_layers and output_layers "
                          f"(Keras' functional config; missing: {', '.join(missing) or 'layers'}); fix the graph")
    graph = copy.deepcopy(graph)
    graph.setdefault("name", "task1a_graph")
    for index, layer in enumerate(graph["layers"]):
        at = f"{where}.layers[{index}]"
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str) or not isinstance(layer.get("name"), str):
            raise Task1aError(f"{at} must be a mapping with class_name, name, config and inbound_nodes; fix the layer")
        config = layer.setdefault("config", {}) or {}
        if not isinstance(config, dict):
            raise Task1aError(f"{at}.config must be a mapping of {layer['class_name']} arguments; fix the layer")
        for key, value in config.items():
            name = _undefined_constant(value, constants)
            if name:
                raise Task1aError(f"{at}.config.{key}: undefined constant {name!r}; define it in {PARAMETER_KEY}.constants")
        config = {key: _substitute(value, constants) for key, value in config.items()}
        config.setdefault("name", layer["name"])  # the graph's layer names are the model's
        if layer["class_name"] == "InputLayer" and "batch_shape" not in config and "shape" not in config:
            config["batch_shape"] = [None, *input_shape]
        layer["config"] = config
        layer.setdefault("inbound_nodes", [])
    try:
        return keras.Model.from_config(graph)
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, TypeError, KeyError... for a bad graph
        raise Task1aError(f"{where}: Keras cannot build the functional graph: {_first_cause(exc)}; fix the graph") from exc


def _model_from_layer_list(layer_list: list, input_shape: tuple, constants: dict):
    """The layer list stacked on one input, layers named as Keras names them in a fresh process."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="input_layer")
    outputs = inputs
    used: dict[str, int] = {}
    for index, description in enumerate(layer_list):
        layer = _layer_from_description(index, description, constants, used)
        try:
            outputs = layer(outputs)
        except Exception as exc:  # noqa: BLE001 - shape mismatches surface as various Keras/TF errors
            raise Task1aError(
                f"{PARAMETER_KEY}.config[{index}] ({description['class_name']}) does not fit its input of shape "
                f"{tuple(outputs.shape)}: {_first_cause(exc)}; fix the layer's config"
            ) from exc
    return keras.Model(inputs=inputs, outputs=outputs, name="task1a_cnn")


def layer_parameter_counts(model) -> list[tuple[str, int]]:
    """(layer class name, parameter count) of every layer that has parameters, in order."""
    return [(type(layer).__name__, int(layer.count_params())) for layer in model.layers if layer.count_params()]
