"""The DCASE2023 complexity gate: a parameter set's network measured as the challenge counts it.

Owns the question "is this network within ``model_size.max_macs`` and ``model_size.max_memory_bytes``?"
before any training: :func:`network_complexity` builds the untrained network of
``learner_method_parameters.cnn.model`` for the input the features give (``n_mels`` x frames of one
segment), converts it to int8 TFLite exactly as the learning stage exports it (float io, a few random
calibration examples), and measures it with NeSsi (``model_size_calculation.nessi``). Every weight
that initialises to zero (biases, batch-norm shifts) is first set to a small non-zero value, as it is
after training: the converter drops an all-zero bias, which would understate the parameter memory.

:func:`limit_problems` states each figure over its limit in one line; :func:`check_complexity` is what
``python task1a.py --check_complexity`` prints. :func:`measure_tflite` is NeSsi on a model file with its
errors raised as :class:`~utils.errors.Task1aError` (the NeSsi package stands alone and has its own),
plus the operators that compute shapes at run time (``runtime_shape_operators``,
:func:`utils.tflite_graph.runtime_shape_operators`): a graph that needs them gets a warning naming them
(:func:`shape_arithmetic_warning`) from ``--check_complexity`` and from the gate (:func:`enforce_limits`),
as they are work a fixed-shape model never needs and rows NeSsi counts.

Parameter memory is counted as the edition counts it (``model_size.parameter_bits``): ``null`` (DCASE2023)
is the bytes as stored, NeSsi's total weight size; 8, 16 or 32 (DCASE2024/2025: 16) is the model's
parameter count times that many bits, the count being the elements of the TFLite model's constant
operator inputs as NeSsi sums their bytes (:func:`parameter_count`; with BN folded into the
convolutions it is a little below the Keras network's trainable count, which ``--check_complexity``
prints beside it). The figure checked against ``max_memory_bytes`` is ``parameter_memory_bytes``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

from model_size_calculation.nessi import ModelSizeError, format_nessi_table, get_model_size
from utils.errors import Task1aError
from utils.settings import FeatureSettings, ModelSizeSettings, Settings

LOGGER = logging.getLogger(__name__)

# (figure in the NeSsi figures, limit key of model_size, what it is called in a message, unit)
LIMITED_FIGURES = (
    ("total_macs", "max_macs", "MACs", ""),
    ("parameter_memory_bytes", "max_memory_bytes", "parameter memory", " B"),
)
CALIBRATION_EXAMPLES = 4  # random examples: only the activation ranges depend on them, not the figures
FILL_SEED = 0


def parameter_count(source) -> int:
    """Elements of the constant inputs of every operator of a TFLite model (path or bytes), summed per
    operator as NeSsi sums their bytes: the model's parameters (weights, folded biases, and the few
    constant operands such as paddings)."""
    from pathlib import Path

    from model_size_calculation.tflite_reader import ModelFormatError, read_tflite_graph

    content = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    try:
        graph = read_tflite_graph(content)
    except ModelFormatError as exc:
        raise Task1aError(str(exc)) from None
    produced = {tensor_id for operator in graph.operators for tensor_id in operator.outputs}
    constant = {t.id for t in graph.tensors if t.id not in produced and t.id not in set(graph.inputs)}
    return int(sum(int(np.prod(graph.tensors[i].shape, dtype=np.int64)) for operator in graph.operators for i in operator.inputs if i >= 0 and i in constant))


def measure_tflite(source, limits: ModelSizeSettings) -> dict:
    """NeSsi figures of a TFLite model (path or bytes) against the ``model_size`` limits; Task1aError on a bad model.

    Adds ``parameter_bits``, ``parameter_count`` and ``parameter_memory_bytes`` (the figure the memory
    limit is checked on: ``total_weight_bytes`` when ``parameter_bits`` is null, else count x bits / 8),
    and sets ``memory_ok`` by it.
    """
    from utils.tflite_graph import runtime_shape_operators

    try:
        figures = get_model_size(source, "tflite", max_macs=limits.max_macs, max_memory_bytes=limits.max_memory_bytes)
    except ModelSizeError as exc:
        raise Task1aError(str(exc)) from None
    content = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    figures["runtime_shape_operators"] = runtime_shape_operators(content)
    bits = limits.parameter_bits
    figures["parameter_bits"] = bits
    figures["parameter_count"] = parameter_count(content)
    figures["parameter_memory_bytes"] = figures["total_weight_bytes"] if bits is None else figures["parameter_count"] * bits // 8
    figures["memory_ok"] = figures["parameter_memory_bytes"] <= limits.max_memory_bytes
    return figures


def _figure(complexity: dict, figure: str):
    """A limited figure; figures measured before ``parameter_memory_bytes`` existed count bytes as stored."""
    if figure == "parameter_memory_bytes" and figure not in complexity:
        return complexity.get("total_weight_bytes")
    return complexity.get(figure)


def shape_arithmetic_warning(complexity: dict) -> str | None:
    """One line naming the operators of ``complexity["runtime_shape_operators"]``, or None when there are none."""
    operators = complexity.get("runtime_shape_operators") or []
    if not operators:
        return None
    return (f"the converted graph computes tensor shapes at run time ({', '.join(operators)}): work a fixed-shape model never needs, "
            "operators a small runtime must support, and rows NeSsi counts; use layers whose shapes are known when converted "
            "(a fixed batch of one is exported)")


def network_input_shape(features: FeatureSettings) -> tuple[int, int, int]:
    """``(n_mels, n_frames, 1)`` of one segment's log-mel features (40 x 51 for the defaults)."""
    from utils.features import build_extractor

    extractor = build_extractor(features)
    seconds = features.segment_length_seconds
    segment_samples = int(round(seconds * extractor.fs))  # as utils.feature_store.extract_to_store cuts segments
    if segment_samples < 1:
        raise Task1aError(f"feature_extractor.segment_length_seconds {seconds!r} is shorter than one sample; fix task1a.yaml")
    return extractor.n_mels, extractor.n_frames(segment_samples), 1


def _fill_zero_weights(model, seed: int = FILL_SEED) -> None:
    """Give every all-zero weight (biases, batch-norm shift and mean) small positive values, as training does."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = np.asarray(weight.numpy())
        if values.size and not np.any(values):
            weight.assign(rng.uniform(0.01, 0.1, size=values.shape).astype(values.dtype))


def untrained_network(features: FeatureSettings, model: Mapping):
    """``(network, calibration)``: the untrained Keras network of ``model`` (``learner_method_parameters.cnn.model``)
    for the input ``features`` give, its all-zero weights filled (:func:`_fill_zero_weights`), and random
    calibration examples ``(CALIBRATION_EXAMPLES, n_mels, n_frames)``."""
    from utils import dataset as tau
    from utils.model import build_model

    input_shape = network_input_shape(features)
    network = build_model(model, input_shape=input_shape, class_count=len(tau.SCENE_LABELS))
    _fill_zero_weights(network)
    calibration = np.random.default_rng(FILL_SEED).normal(size=(CALIBRATION_EXAMPLES, *input_shape[:2])).astype(np.float32)
    return network, calibration


def untrained_tflite(features: FeatureSettings, model: Mapping, io: str = "float") -> bytes:
    """The int8 TFLite (``io`` float, as measured, or int8) of the untrained network (:func:`untrained_network`), converted as the learning stage does."""
    from utils.tflite import convert_to_tflite

    return convert_to_tflite(*untrained_network(features, model), io=io)


def network_complexity(settings: Settings, set_id: str) -> dict:
    """NeSsi figures (``model_size_calculation.nessi.get_model_size``) of set ``set_id``'s untrained network.

    ``settings``: the set's typed settings (its features, its learner's ``model``, its ``model_size``). The figures
    are those the trained model will have (they depend on shapes only), with ``input_shape`` and
    ``keras_trainable_parameters`` (the torchinfo-style count, BN scales and shifts included) added. Takes a few
    seconds (one conversion).
    """
    network, calibration = untrained_network(settings.features, settings.learner.model)
    from utils.tflite import convert_to_tflite

    figures = measure_tflite(convert_to_tflite(network, calibration, io="float"), settings.model_size)
    figures["source"] = f"untrained network of set {set_id}"
    figures["input_shape"] = list(network_input_shape(settings.features))
    figures["keras_trainable_parameters"] = int(sum(int(np.prod(weight.shape)) for weight in network.trainable_weights))
    return figures


def limit_problems(complexity: dict, limits: ModelSizeSettings) -> list[str]:
    """One line per NeSsi figure over its ``model_size`` limit, e.g.
    ``MACs 41,943,040 > 30,000,000 (model_size.max_macs)``; empty when the model is within the limits."""
    problems = []
    for figure, key, name, unit in LIMITED_FIGURES:
        value, limit = _figure(complexity, figure), getattr(limits, key)
        if isinstance(value, bool) or not isinstance(value, int):
            named = figure if figure in complexity else "total_weight_bytes" if figure == "parameter_memory_bytes" else figure
            raise Task1aError(f"complexity figures lack an integer '{named}' (got {value!r}); give NeSsi's get_model_size output")
        if value > limit:
            problems.append(f"{name} {value:,}{unit} > {limit:,}{unit} (model_size.{key})")
    return problems


def verdict_line(complexity: dict, limits: ModelSizeSettings) -> str:
    """One line: within the DCASE2023 limits, or over them and why."""
    problems = limit_problems(complexity, limits)
    if problems:
        return "verdict: OVER THE DCASE2023 LIMITS: " + "; ".join(problems)
    figures = "; ".join(f"{name} {_figure(complexity, figure):,}{unit} <= {getattr(limits, key):,}{unit}" for figure, key, name, unit in LIMITED_FIGURES)
    bits = complexity.get("parameter_bits")
    counted = f"; parameters counted at {bits} bit: {complexity['parameter_count']:,} x {bits // 8} B" if bits else ""
    return f"verdict: within the DCASE2023 limits ({figures}{counted})"


def check_complexity(settings: Settings, set_id: str) -> tuple[str, list[str]]:
    """``(text, problems)`` of ``--check_complexity``: the NeSsi table of set ``set_id``'s untrained network and the verdict.

    ``problems`` is :func:`limit_problems` (empty when within the limits); the caller prints ``text``
    and exits non-zero when ``problems`` is not empty.
    """
    figures = network_complexity(settings, set_id)
    limits = settings.model_size
    n_mels, n_frames, _ = figures["input_shape"]
    header = (f"Complexity of set {set_id}: its untrained network ({n_mels} mels x {n_frames} frames in), "
              "converted to int8 TFLite as the learning stage exports it, counted by NeSsi:")
    lines = [header, "", format_nessi_table(figures).rstrip("\n"), ""]
    bits = limits.parameter_bits
    if bits:
        lines.append(f"Parameter memory as the edition counts it (model_size.parameter_bits {bits}): {figures['parameter_count']:,} TFLite "
                     f"parameters x {bits} bit = {figures['parameter_memory_bytes']:,} B (the Keras network's trainable parameters, "
                     f"BN unfolded: {figures['keras_trainable_parameters']:,} x {bits} bit = {figures['keras_trainable_parameters'] * bits // 8:,} B)")
    warning = shape_arithmetic_warning(figures)
    if warning:
        lines.append(f"warning: {warning}")
    text = "\n".join([*lines, verdict_line(figures, limits)]) + "\n"
    return text, limit_problems(figures, limits)


def enforce_limits(complexity: dict, limits: ModelSizeSettings, what: str, enforced: bool = True) -> list[str]:
    """Stop (Task1aError) when ``what`` is over the limits and ``enforced`` (:meth:`ModelSizeSettings.enforced`); else
    warn once per figure.

    Also warns when ``what``'s graph computes shapes at run time (:func:`shape_arithmetic_warning`).
    Returns the problems (empty when within the limits).
    """
    problems = limit_problems(complexity, limits)
    warning = shape_arithmetic_warning(complexity)
    if warning:
        LOGGER.warning("%s: %s", what, warning)
    if problems and enforced:
        raise Task1aError(f"{what} is over the DCASE2023 complexity limits: {'; '.join(problems)}; make the network "
                          "smaller in learner_method_parameters.cnn.model, or set model_size.enforce: never to run it anyway")
    for problem in problems:
        LOGGER.warning("%s is over the DCASE2023 complexity limits: %s (model_size.enforce: going on)", what, problem)
    return problems
