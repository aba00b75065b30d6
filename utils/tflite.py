"""TFLite: int8 post-training quantization of the trained Keras model, and the interpreter that runs it.

Conversion follows the official baseline (optimizations DEFAULT, a representative dataset given one
example per call, TFLITE_BUILTINS_INT8 ops) with its two faults fixed: the representative examples
are drawn with the seed across classes and devices instead of the first 100 rows of the feature file
(one class, one city), and int8 input/output types are set as types, not in a list (which TF 2.1
silently ignored, leaving float32 io; today's TF raises). Both variants are exported: ``float`` io
(float32 in and out, quantized inside the graph, like the official model file) and ``int8`` io, both
in the official file's graph form: a fixed batch of one and no run-time shape arithmetic, the dense
layer after ``Flatten`` fed the pooled tensor (:func:`convert_to_tflite`, :mod:`utils.tflite_graph`,
docs/tflite.md).

:class:`TFLiteClassifier` runs either: it quantizes inputs and dequantizes outputs with the tensors'
own scale and zero point (the official test loop only cast the dtype) and renormalises the
dequantized softmax rows so that they are probability distributions. It resizes a batch-one input to
each batch of ``recognizer.batch_size`` clips.
"""

from __future__ import annotations

import contextlib
import io as _io
import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from utils.errors import Task1aError
from utils.files import write_bytes_atomic
from utils.parameters import allowed
from utils.settings import worker_count

LOGGER = logging.getLogger(__name__)
IO_TYPES = allowed("recognizer.model_io")  # the parameter registry's
TFLITE_FILENAMES = {"float": "model_float.tflite", "int8": "model_int8.tflite", "float16": "model_float16.tflite"}
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every TFLite model


# ----------------------------------------------------------------------------------------------
# Conversion


def select_representative_examples(y: Any, devices: Any, n: int = 100, seed: int = 0) -> np.ndarray:
    """Indices ``(n,)`` (sorted) of calibration examples, stratified over (class, device) cells.

    Every cell present gets one example when ``n`` allows; the rest are shared in proportion to the
    cells' sizes (largest remainder), and drawn within each cell with ``seed``. With fewer examples
    than cells, ``n`` cells are drawn with probability proportional to their size.
    """
    y = np.asarray(y)
    devices = np.asarray(devices).astype(str)
    if y.ndim != 1 or devices.shape != y.shape:
        raise Task1aError(f"representative examples: labels {y.shape} and devices {devices.shape} must be two (n,) arrays of one length")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(y):
        raise Task1aError(
            f"learner_method_parameters.cnn.conversion.representative_examples must be an integer in [1, {len(y)}] "
            f"(the training examples), got {n!r}; fix the value"
        )
    rng = np.random.default_rng(seed)
    _, cells = np.unique(np.char.add(np.char.add(y.astype(str), "\x1f"), devices), return_inverse=True)
    sizes = np.bincount(cells)
    if n >= len(sizes):
        quota = np.ones(len(sizes), dtype=np.int64)
        extra, weights = n - len(sizes), sizes - 1
        if extra:
            share = extra * weights / weights.sum()
            quota += np.floor(share).astype(np.int64)
            missing = n - quota.sum()
            quota[np.argsort(-(share - np.floor(share)), kind="stable")[:missing]] += 1
    else:
        quota = np.zeros(len(sizes), dtype=np.int64)
        quota[rng.choice(len(sizes), size=n, replace=False, p=sizes / sizes.sum())] = 1
    picks = [rng.choice(np.flatnonzero(cells == cell), size=count, replace=False) for cell, count in enumerate(quota) if count]
    return np.sort(np.concatenate(picks))


def _batch_one_converter(model):
    """A TFLite converter of ``model``'s inference function for a fixed batch of one (the official file's input).

    The function is exported through Keras' ``ExportArchive`` (which tracks the model's variables for
    the converter to freeze) with a ``(1, *input_shape)`` signature, so every shape in the graph is
    known when it is converted: no run-time shape arithmetic (``from_keras_model`` exports a dynamic
    batch, for which ``Flatten`` becomes ``SHAPE``, ``STRIDED_SLICE``, ``PACK`` and ``RESHAPE``).
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name=model.inputs[0].name)
    function = archive.add_endpoint("serve", lambda inputs: model(inputs, training=False), input_signature=[signature])
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], archive)


def convert_to_tflite(model, representative_X: Any, io: str = "float", official_form: bool = True) -> bytes:
    """Int8-quantized TFLite flatbuffer of a Keras ``model``.

    ``representative_X`` ``(n, n_mels, n_frames)`` calibrates the activation ranges, one example per
    call as the official code. ``io``: ``float`` keeps float32 input/output (quantized inside the
    graph), ``int8`` makes them int8; ``float16`` is no int8 model but :func:`convert_to_float16_tflite`
    (float16 weights, float32 io and arithmetic; ``representative_X`` only checked). ``official_form``
    (the export's): the official file's graph, a fixed batch of one (:func:`_batch_one_converter`) with a
    flattening reshape folded into the dense layer after it
    (:func:`utils.tflite_graph.fold_reshapes_into_fully_connected`); False: the converter's own form of a
    Keras model (dynamic batch), the same outputs, kept for comparison.
    """
    import tensorflow as tf

    from utils.tflite_graph import fold_reshapes_into_fully_connected

    if io == "float16":
        if tuple(np.shape(representative_X)[1:3]) != tuple(model.input_shape[1:3]):
            raise Task1aError(f"representative examples must have shape (n, {model.input_shape[1]}, {model.input_shape[2]}), got {np.shape(representative_X)}")
        return convert_to_float16_tflite(model, official_form)
    if io not in IO_TYPES:
        raise Task1aError(f"learner_method_parameters.cnn.conversion.io: unknown io type {io!r} (known: {', '.join(IO_TYPES)}); fix the value")
    representative_X = np.asarray(representative_X, dtype=np.float32)
    expected = tuple(model.input_shape[1:3])
    if representative_X.ndim != 3 or representative_X.shape[0] == 0 or representative_X.shape[1:] != expected:
        raise Task1aError(f"representative examples must have shape (n, {expected[0]}, {expected[1]}) with n > 0, got {representative_X.shape}")

    def representative_dataset():
        for example in representative_X:
            yield [example[np.newaxis, ..., np.newaxis]]

    converter = _batch_one_converter(model) if official_form else tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io == "int8":
        converter.inference_input_type = tf.int8  # a type, not [tf.int8] as the official code
        converter.inference_output_type = tf.int8
    try:
        with contextlib.redirect_stdout(_io.StringIO()), warnings.catch_warnings():
            # The Keras export prints its temporary SavedModel; float io makes the converter warn that
            # input statistics are missing, which the representative dataset provides.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            content = bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError, ValueError, RuntimeError...
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Task1aError(f"int8 TFLite conversion ({io} io) failed: {first_line}; use layers that have int8 TFLite kernels") from exc
    return fold_reshapes_into_fully_connected(content) if official_form else content


def convert_to_float16_tflite(model, official_form: bool = True) -> bytes:
    """TFLite flatbuffer of a Keras ``model`` with its weights stored as float16 (half the float32 size),
    float32 input, output and arithmetic (the interpreter dequantizes the weights once): the
    DCASE2024/2025 baseline's 16-bit parameters. ``official_form``: a fixed batch of one, as
    :func:`convert_to_tflite`."""
    import tensorflow as tf

    converter = _batch_one_converter(model) if official_form else tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    try:
        with contextlib.redirect_stdout(_io.StringIO()):
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError, ValueError, RuntimeError...
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Task1aError(f"float16 TFLite conversion failed: {first_line}; use layers that have TFLite kernels") from exc


def export_tflite_models(
    model,
    X_train_like: Any,
    y: Any,
    devices: Any,
    output_dir: str | Path,
    ios: Sequence[str] = ("float", "int8"),
    n_examples: int = 100,
    seed: int = 0,
) -> dict:
    """Convert ``model`` for each io type in ``ios`` and write ``model_<io>.tflite`` atomically.

    The representative examples are :func:`select_representative_examples` of the training split
    ``X_train_like`` ``(n, n_mels, n_frames)`` (a memmap is fine: only they are read). Returns
    ``{io: path}``.
    """
    unknown = [io for io in ios if io not in IO_TYPES]
    if unknown or not ios:
        raise Task1aError(f"learner_method_parameters.cnn.conversion.io must list some of {', '.join(IO_TYPES)}, got {list(ios)!r}; fix the value")
    if getattr(X_train_like, "shape", (0,))[0] != len(np.asarray(y)):
        raise Task1aError(f"representative examples: {getattr(X_train_like, 'shape', None)} features for {len(np.asarray(y))} labels; give the training split")
    indices = select_representative_examples(y, devices, n=n_examples, seed=seed)
    representative_X = np.asarray(X_train_like[indices], dtype=np.float32)
    output_dir = Path(output_dir)
    return {io: write_bytes_atomic(output_dir / TFLITE_FILENAMES[io], convert_to_tflite(model, representative_X, io=io)) for io in dict.fromkeys(ios)}


# ----------------------------------------------------------------------------------------------
# Inference


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """TFLite affine quantization: round(x / scale) + zero_point, clipped to ``dtype``'s range.

    Rounds half away from zero as TFLite's QUANTIZE kernel (std::round), not half to even as numpy:
    ``trunc(s + copysign(0.5, s))`` in float32, which is ``sign(s) * floor(|s| + 0.5)`` exactly (the
    sum is the same float operation on ``|s|`` mirrored), in place in one buffer.
    """
    info = np.iinfo(dtype)
    scaled = np.divide(np.asarray(x, dtype=np.float32), np.float32(scale))
    np.add(scaled, np.copysign(np.float32(0.5), scaled), out=scaled)
    np.trunc(scaled, out=scaled)
    np.add(scaled, np.float32(zero_point), out=scaled)
    np.clip(scaled, info.min, info.max, out=scaled)
    return scaled.astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """(q - zero_point) * scale in float64."""
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale


def _interpreter_class():
    """LiteRT's interpreter, or where ai-edge-litert has no wheel (pyproject.toml's marker) TensorFlow's own (one log line)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # LiteRT is the maintained runtime; tf.lite.Interpreter is deprecated
        import logging

        import tensorflow as tf

        if not getattr(_interpreter_class, "told", False):
            logging.getLogger(__name__).info("ai-edge-litert is not installed (no wheel for this platform): TFLite models run in TensorFlow's "
                                             "tf.lite.Interpreter")
            _interpreter_class.told = True
        Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteClassifier:
    """Class probabilities from a TFLite scene classifier (float or int8 io).

    ``model`` is a ``.tflite`` path or the flatbuffer bytes; ``batch_size`` clips go through the
    interpreter per call (``recognizer.batch_size``) when its input can be resized, else one by one.
    ``num_threads`` (``recognizer.num_threads``; -1 = all cores) is the interpreter's thread count:
    the interpreter is 95 % of the testing stage's time, and it scales with threads. Both values come
    checked (the registry's rules); nothing here checks them again.
    """

    def __init__(self, model: str | Path | bytes, batch_size: int = 256, num_threads: int = 1):
        # -1 is resolved by the project's one rule (utils.settings.worker_count: the usable cores), not handed to
        # LiteRT, whose own -1 means "the runtime's default" and need not be every core this process may use
        num_threads = worker_count(num_threads)
        if isinstance(model, (bytes, bytearray, memoryview)):
            content, self.source = bytes(model), "TFLite model (bytes)"
        else:
            path = Path(model)
            if not path.is_file():
                raise Task1aError(f"TFLite model {path} not found; run the learning stage (it exports the model) or give the right path")
            content, self.source = path.read_bytes(), str(path)
        if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
            raise Task1aError(f"{self.source} is not a TFLite model (no {TFLITE_IDENTIFIER.decode()} identifier); give a .tflite file")
        try:
            self._interpreter = _interpreter_class()(model_content=content, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise Task1aError(f"{self.source} is truncated or corrupt ({str(exc).splitlines()[0]}); export the model again") from exc
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4 or len(outputs[0]["shape"]) != 2:
            raise Task1aError(f"{self.source} is not a scene classifier (one (batch, n_mels, n_frames, 1) input, one (batch, classes) output)")
        self._input, self._output = inputs[0], outputs[0]
        self.batch_size = batch_size
        self.num_threads = num_threads  # resolved: -1 became the number of usable cores
        self.model_content = content  # for worker processes, which each build their own interpreter
        self._batched = True
        self._allocated_batch = int(self._input["shape"][0])

    @property
    def input_details(self) -> dict:
        """The interpreter's input tensor details (shape, dtype, quantization)."""
        return self._interpreter.get_input_details()[0]

    @property
    def output_details(self) -> dict:
        """The interpreter's output tensor details."""
        return self._interpreter.get_output_details()[0]

    @property
    def io_type(self) -> str:
        """``float`` or ``int8``: the dtype the model takes its input in."""
        return "float" if np.dtype(self._input["dtype"]) == np.float32 else np.dtype(self._input["dtype"]).name

    @property
    def class_count(self) -> int:
        return int(self._output["shape"][-1])

    def prepare_input(self, X: Any) -> np.ndarray:
        """Features ``(n, n_mels, n_frames)`` as the model's input ``(n, n_mels, n_frames, 1)``: float32, or quantized for int8 io.

        :meth:`predict_proba` is ``predict_prepared(prepare_input(X))``; the testing stage prepares the
        next batch on another thread while the interpreter runs this one.
        """
        shape = getattr(X, "shape", None)
        expected = tuple(int(size) for size in self._input["shape"][1:3])
        if shape is None or len(shape) != 3 or tuple(shape[1:]) != expected:
            raise Task1aError(f"{self.source} takes features of shape (n, {expected[0]}, {expected[1]}), got {shape}; use the model's feature settings")
        x = np.asarray(X, dtype=np.float32)[..., np.newaxis]  # no copy for float32 features
        dtype = np.dtype(self._input["dtype"])
        if np.issubdtype(dtype, np.integer):
            scale, zero_point = self._input["quantization"]
            return quantize(x, scale, zero_point, dtype)
        return x.astype(dtype, copy=False)

    def _read_output(self) -> np.ndarray:
        q = self._interpreter.get_tensor(self._output["index"])
        if np.issubdtype(q.dtype, np.integer):
            scale, zero_point = self._output["quantization"]
            return dequantize(q, scale, zero_point)
        return q.astype(np.float64)

    def _resize(self, batch: int) -> bool:
        """Resize the input to ``batch`` rows; False when the interpreter refuses."""
        if batch == self._allocated_batch:
            return True
        try:
            self._interpreter.resize_tensor_input(self._input["index"], [batch, *self._input["shape"][1:]])
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError):
            self._interpreter.resize_tensor_input(self._input["index"], [1, *self._input["shape"][1:]])
            self._interpreter.allocate_tensors()
            self._allocated_batch = 1
            return False
        self._allocated_batch = batch
        return True

    def _run(self, x: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        return self._read_output()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``(n, n_classes)`` float64 (rows sum to 1) for features ``X`` ``(n, n_mels, n_frames)``."""
        return self.predict_prepared(self.prepare_input(X))

    def predict_prepared(self, x: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` of an input made by :meth:`prepare_input`."""
        expected = (*(int(size) for size in self._input["shape"][1:]),)
        if getattr(x, "ndim", 0) != 4 or tuple(x.shape[1:]) != expected or x.dtype != np.dtype(self._input["dtype"]):
            raise Task1aError(f"{self.source}: predict_prepared takes what prepare_input returns, got {getattr(x, 'shape', None)} {getattr(x, 'dtype', None)}")
        probabilities = np.empty((x.shape[0], self.class_count), dtype=np.float64)
        for start in range(0, x.shape[0], self.batch_size):
            batch = x[start : start + self.batch_size]
            if self._batched and self._resize(len(batch)):
                probabilities[start : start + len(batch)] = self._run(batch)
                continue
            if self._batched and len(batch) > 1:
                LOGGER.warning("%s cannot be resized to batches (a fixed-shape operator in its graph, e.g. a RESHAPE that is not a "
                               "flatten before a dense layer): it runs one clip per call, with the same results, more slowly", self.source)
            self._batched = False
            self._resize(1)
            for offset in range(len(batch)):
                probabilities[start + offset] = self._run(batch[offset : offset + 1])[0]
        sums = probabilities.sum(axis=1, keepdims=True)
        # utils.evaluation.normalise_probabilities, plus a rule for a row that sums to 0, kept here so that
        # inference never imports evaluation's scipy/matplotlib/sklearn (a second per worker process).
        # A dequantized softmax row can (in theory) be all zeros; call it uniform rather than divide by 0.
        uniform = np.full_like(probabilities, 1.0 / self.class_count)
        return np.where(sums > 0, probabilities / np.where(sums > 0, sums, 1.0), uniform)


def evaluate_quantization(model, tflite_paths: dict, X_val: Any, y_val: Any, batch_size: int = 256) -> dict:
    """Validation accuracy, macro accuracy and log loss of the Keras model and of each TFLite variant.

    Returns ``{"keras": scores, io: {**scores, "agreement_with_keras": fraction of equal predictions}}``:
    the quantization loss is the difference.
    """
    from utils.evaluation import classification_scores
    from utils.learning import predict_proba

    y_val = np.asarray(y_val)
    if getattr(X_val, "shape", (None,))[0] != len(y_val):
        raise Task1aError(f"quantization check: {getattr(X_val, 'shape', None)} validation features for {len(y_val)} labels; give the validation split")
    keras_probabilities = predict_proba(model, X_val, batch_size=batch_size)
    report = {"keras": classification_scores(y_val, keras_probabilities)}
    for io, path in tflite_paths.items():
        probabilities = TFLiteClassifier(path, batch_size=batch_size).predict_proba(X_val)
        report[io] = {
            **classification_scores(y_val, probabilities),
            "agreement_with_keras": float(np.mean(probabilities.argmax(axis=1) == keras_probabilities.argmax(axis=1))),
        }
    return report
