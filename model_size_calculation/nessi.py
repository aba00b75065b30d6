"""The challenge's complexity figures (NeSsi format): MACs, parameter memory and activation memory.

Counts exactly as the organisers' NeSsi tool (its TFLite path, tflite-tools underneath) so the
figures are the ones the DCASE2022/2023 Task 1 ranking uses, conventions in
../shared/reference/README.md:

- weight size of an operator = bytes of its constant inputs (shape x element size);
- MACs only for CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, AVERAGE_POOL_2D, MEAN,
  ADD; FULLY_CONNECTED counted with the last dimension of its INPUT tensor (the official quirk; a
  footnote gives the count with the weight's input width);
- memory use of an operator = bytes of the non-constant tensors alive at it; peak = maximum.

Unlike the official tool it reads today's converter output (omitted optional inputs, operators
with codes above 127, several outputs, any element type) and names unknown operators by number.
The challenge limits are the official tool's: 30e6 MACs and 128e3 B ("128 K") of parameter
memory, the latter checked on the total weight size (what the official tool prints as "Memory").

Stands alone (imports nothing from ``utils``): every bad input raises :class:`ModelSizeError` with
one line naming it and the fix; a Keras model file is answered with what to measure instead.

Usage: ``python model_size_calculation/nessi.py MODEL.tflite [--json]``.
"""

import argparse
import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_size_calculation.tflite_reader import ModelFormatError, read_tflite_graph  # noqa: E402

# The official tool's limits (nessi.py: MAX_MACC = 30e6, MAX_PARAMS = 128e3): 128 K is 128,000 B.
OFFICIAL_MAX_MACS = 30_000_000
OFFICIAL_MAX_MEMORY_BYTES = 128_000

# The official tool shortens names longer than this in its tables (middle replaced by "...").
MAX_NAME_CHARACTERS = 80



class ModelSizeError(ValueError):
    """A bad model or argument, said in one line naming it and the fix. This package stands alone
    (it imports nothing from ``utils``); ``utils.complexity.measure_tflite`` turns it into the
    project's Task1aError."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


TENSOR_TABLE_TITLE = "Tensor information (weights excluded, grouped by layer type):"
SCHEDULE_TABLE_TITLE = "Operator execution schedule:"


# --------------------------------------------------------------------------------------------
# TFLite: counting
# --------------------------------------------------------------------------------------------

def _is_constant(tensor, producers: dict, graph_inputs: set) -> bool:
    """The official definition: produced by no operator and not a graph input."""
    return tensor.id not in producers and tensor.id not in graph_inputs


def _operator_macs(operator, tensors: list) -> tuple:
    """(MACs as the official tool counts them, MACs with the fully-connected quirk corrected).

    The two differ only for FULLY_CONNECTED, whose official count takes the input features
    from the input tensor's last dimension instead of the weight matrix's (out_dim, in_dim).
    Shapes of other ranks than the official tool expects are counted by the same formula on the
    flattened shapes instead of crashing as it does.
    """
    name = operator.opcode_name
    inputs = [tensors[i] if i >= 0 else None for i in operator.inputs]
    output = tensors[operator.outputs[0]] if operator.outputs else None
    if output is None or not inputs or inputs[0] is None:
        return 0, 0
    output_elements = math.prod(output.shape)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(inputs) > 1 and inputs[1] is not None:
        kernel = inputs[1].shape  # conv: (out_c, k_h, k_w, in_c); depthwise: (1, k_h, k_w, c)
        # conv: n*o_h*o_w * o_c*k_h*k_w*i_c; depthwise: n*o_h*o_w * k_h*k_w*c
        macs = math.prod(output.shape[:-1]) * math.prod(kernel)
        return macs, macs
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and operator.pool_filter is not None:
        macs = output_elements * math.prod(operator.pool_filter)
        return macs, macs
    if name == "MEAN":
        macs = math.prod(inputs[0].shape)
        return macs, macs
    if name == "FULLY_CONNECTED":
        input_features = inputs[0].shape[-1] if inputs[0].shape else 1
        macs = output_elements * input_features
        weights = inputs[1] if len(inputs) > 1 else None
        corrected = output_elements * weights.shape[-1] if weights is not None and weights.shape \
            else macs
        return macs, corrected
    if name == "ADD":
        macs = (len(inputs) - 1) * output_elements
        return macs, macs
    return 0, 0


def _official_working_set_order(alive_ids: list) -> list:
    """Tensor ids in the order the official tool prints them.

    It builds a Python set of tensor objects hashed by id, inserted in id order, and prints the
    set's iteration order; a set of the ids built the same way iterates identically (same
    hashes, same insertions), which is usually but not always ascending.
    """
    return list(set(alive_ids))


def _shorten_name(name: str, max_characters: int = MAX_NAME_CHARACTERS) -> str:
    """The official tool's middle ellipsis for long names."""
    if len(name) <= max_characters:
        return name
    kept = max_characters - 3
    return name[:kept // 2] + "..." + name[-(kept - kept // 2):]


def tflite_figures(model_bytes: bytes, max_macs: int = OFFICIAL_MAX_MACS,
                   max_memory_bytes: int = OFFICIAL_MAX_MEMORY_BYTES) -> dict:
    """NeSsi figures of a TFLite model given as its bytes (raises ModelFormatError)."""
    graph = read_tflite_graph(model_bytes)
    tensors = graph.tensors
    n_operators = len(graph.operators)
    graph_inputs = set(graph.inputs)

    producers, last_consumer = {}, {}
    for operator in graph.operators:
        for tensor_id in operator.outputs:
            producers.setdefault(tensor_id, operator.index)
        for tensor_id in operator.inputs:
            if tensor_id >= 0:
                last_consumer[tensor_id] = operator.index
    constant = {t.id for t in tensors if _is_constant(t, producers, graph_inputs)}
    ram_bytes = {t.id: 0 if t.id in constant else t.byte_size for t in tensors}

    # Lifetimes as the official tool: from the producer (or operator 0), to the last consumer,
    # or to the end (one past the last operator) for a tensor nobody consumes.
    first_alive = {t.id: producers.get(t.id, 0) for t in tensors}
    last_alive = {t.id: last_consumer.get(t.id, n_operators) for t in tensors}

    operators, fc_quirks = [], []
    for operator in graph.operators:
        alive = [t.id for t in tensors
                 if first_alive[t.id] <= operator.index <= last_alive[t.id]]
        in_memory = [i for i in _official_working_set_order(alive) if ram_bytes[i] != 0]
        macs, corrected_macs = _operator_macs(operator, tensors)
        weight_bytes = sum(tensors[i].byte_size for i in operator.inputs
                           if i >= 0 and i in constant)
        name = tensors[operator.outputs[0]].name if operator.outputs else operator.opcode_name
        row = {
            "index": operator.index,
            "name": name,
            "opcode": operator.opcode_name,
            "opcode_number": operator.opcode,
            "tensors_in_memory": in_memory,
            "memory_bytes": sum(ram_bytes[i] for i in alive),
            "macs": macs,
            "weight_bytes": weight_bytes,
        }
        if corrected_macs != macs:
            row["corrected_macs"] = corrected_macs
            fc_quirks.append({"index": operator.index, "name": name, "macs": macs,
                              "corrected_macs": corrected_macs})
        operators.append(row)

    total_macs = sum(op["macs"] for op in operators)
    total_weight_bytes = sum(op["weight_bytes"] for op in operators)
    figures = {
        "model_type": "tflite",
        "tensors": [{"id": t.id, "name": t.name, "shape": list(t.shape), "dtype": t.type_name,
                     "bytes": ram_bytes[t.id]} for t in tensors if ram_bytes[t.id] != 0],
        "operators": operators,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
        "peak_memory_bytes": max((op["memory_bytes"] for op in operators), default=0),
        "total_macs": total_macs,
        "total_weight_bytes": total_weight_bytes,
        "limits": {"macs": max_macs, "memory_bytes": max_memory_bytes,
                   "memory_counts": "total_weight_bytes"},
        "macs_ok": total_macs <= max_macs,
        "memory_ok": total_weight_bytes <= max_memory_bytes,
        "notes": list(graph.notes),
    }
    if fc_quirks:
        figures["corrected_total_macs"] = sum(op.get("corrected_macs", op["macs"])
                                              for op in operators)
        figures["fully_connected_quirk"] = fc_quirks
    return figures


# --------------------------------------------------------------------------------------------
# Keras 3: parameters and MACs without converting
# --------------------------------------------------------------------------------------------

def _layer_elements(shape, layer_name: str, what: str) -> int:
    """Elements of a (batch, ...) shape for batch 1; every other dimension must be known."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ModelSizeError(f"keras layer '{layer_name}': {what} shape {tuple(shape)} has an "
                          "unknown dimension besides the batch; build the model with a fixed "
                          "input shape")
    return math.prod(dims)


def _keras_layer_macs(layer) -> int:
    """MACs of one layer for batch 1, with the TFLite conventions above (pooling counts output
    elements x window, global pooling input elements, ADD (n-1) x output elements)."""
    import keras

    layers = keras.layers
    counted = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Conv1DTranspose,
               layers.Conv2DTranspose, layers.Conv3DTranspose, layers.DepthwiseConv1D,
               layers.DepthwiseConv2D, layers.SeparableConv1D, layers.SeparableConv2D,
               layers.Dense, layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D,
               layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D,
               layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D,
               layers.GlobalAveragePooling3D, layers.GlobalMaxPooling1D,
               layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D, layers.Add)
    if not isinstance(layer, counted):
        return 0
    name = layer.name
    try:
        input_shapes = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        input_shapes = [tuple(x.shape) for x in input_shapes]
        output_shape = tuple(layer.output.shape)
    except (AttributeError, ValueError) as error:
        raise ModelSizeError(f"keras layer '{name}': input/output shapes unknown ({error}); build "
                          "the model on an Input of fixed shape, each layer called once") from None
    out_elements = _layer_elements(output_shape, name, "output")
    in_elements = _layer_elements(input_shapes[0], name, "input")
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    in_channels = input_shapes[0][-1] if channels_last else input_shapes[0][1]
    out_channels = output_shape[-1] if channels_last else output_shape[1]
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        window = math.prod(layer.kernel_size)
        depthwise_channels = in_channels * layer.depth_multiplier
        positions = out_elements // out_channels
        return positions * depthwise_channels * (window + out_channels)
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        return out_elements * math.prod(layer.kernel_size)
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose,
                          layers.Conv3DTranspose)):
        return in_elements * math.prod(layer.kernel_size) * out_channels
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        return out_elements * math.prod(layer.kernel_size) * in_channels // layer.groups
    if isinstance(layer, layers.Dense):
        return out_elements * input_shapes[0][-1]
    if isinstance(layer, (layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D,
                          layers.GlobalAveragePooling3D, layers.GlobalMaxPooling1D,
                          layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D)):
        return in_elements
    if isinstance(layer, layers.Add):
        return (len(input_shapes) - 1) * out_elements
    return out_elements * math.prod(layer.pool_size)  # local pooling


def _keras_leaf_layers(model) -> list:
    """Layers of a model, nested models (Sequential inside Functional...) expanded."""
    leaves = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            leaves.extend(_keras_leaf_layers(layer))
        else:
            leaves.append(layer)
    return leaves


def keras_figures(model, max_macs: int = OFFICIAL_MAX_MACS,
                  max_memory_bytes: int = OFFICIAL_MAX_MEMORY_BYTES) -> dict:
    """Parameters (count, bytes by dtype) and batch-1 MACs of a built Keras 3 model.

    ``memory_ok`` compares the parameter COUNT with the limit, as the official tool's Keras path
    does: one byte per parameter once the model is quantised to int8 for submission.
    """
    import keras
    import numpy as np

    if not isinstance(model, keras.Model):
        raise ModelSizeError(f"get_model_size(model_type='keras') needs a keras.Model, got "
                          f"{type(model).__name__}")
    if not model.built:
        raise ModelSizeError(f"keras model '{model.name}' is not built; give it an Input shape")
    trainable_ids = {id(w) for w in model.trainable_weights}
    seen, bytes_by_dtype = set(), {}
    trainable = non_trainable = 0
    for weight in model.weights:
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        count = math.prod(weight.shape)
        dtype = np.dtype(weight.dtype).name
        bytes_by_dtype[dtype] = bytes_by_dtype.get(dtype, 0) + count * np.dtype(dtype).itemsize
        if id(weight) in trainable_ids:
            trainable += count
        else:
            non_trainable += count
    layers = [{"name": layer.name, "class": type(layer).__name__,
               "parameters": sum(math.prod(w.shape) for w in layer.weights),
               "macs": _keras_layer_macs(layer)} for layer in _keras_leaf_layers(model)]
    total_macs = sum(layer["macs"] for layer in layers)
    parameters = trainable + non_trainable
    return {
        "model_type": "keras",
        "name": model.name,
        "layers": layers,
        "parameters": parameters,
        "trainable_parameters": trainable,
        "non_trainable_parameters": non_trainable,
        "parameter_bytes_by_dtype": bytes_by_dtype,
        "parameter_bytes": sum(bytes_by_dtype.values()),
        "total_macs": total_macs,
        "limits": {"macs": max_macs, "memory_bytes": max_memory_bytes,
                   "memory_counts": "parameters"},
        "macs_ok": total_macs <= max_macs,
        "memory_ok": parameters <= max_memory_bytes,
    }


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------

def _read_model_bytes(source) -> tuple:
    """(bytes, label for messages) from a path or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the TFLite model bytes"
    if not isinstance(source, (str, Path)):
        raise ModelSizeError(f"get_model_size(model_type='tflite') needs a path or bytes, got "
                          f"{type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ModelSizeError(f"{path} {what}; give the path of a .tflite model file")
    try:
        return path.read_bytes(), str(path)
    except OSError as error:
        raise ModelSizeError(f"{path}: cannot be read ({error.strerror}); check its permissions") \
            from None


# A Keras model file begins with these bytes: .keras is a zip archive, .h5 an HDF5 file.
KERAS_FILE_SIGNATURES = {b"PK\x03\x04": "Keras (.keras zip)", b"\x89HDF\r\n\x1a\n": "Keras/HDF5 (.h5)"}
# The int8 TFLite models the learning stage exports beside its model.keras.
EXPORTED_TFLITE_NAMES = ("model_float.tflite", "model_int8.tflite")


def _keras_file_kind(model_bytes: bytes):
    """'Keras (.keras zip)' / 'Keras/HDF5 (.h5)' when the bytes are a Keras model file, else None."""
    return next((kind for signature, kind in KERAS_FILE_SIGNATURES.items()
                 if model_bytes.startswith(signature)), None)


def _keras_file_message(source, label: str, kind: str) -> str:
    """What to do instead of measuring a Keras file: NeSsi counts the converted TFLite model."""
    folder = Path(source).parent if isinstance(source, (str, Path)) else None
    exported = [str(folder / name) for name in EXPORTED_TFLITE_NAMES
                if folder is not None and (folder / name).is_file()]
    instead = (f"measure {' or '.join(exported)} exported beside it" if exported
               else "convert it to int8 TFLite first")
    return (f"{label} is a {kind} model, not TFLite: NeSsi counts the int8 TFLite model the "
            f"challenge ranks; {instead}, or measure a parameter set's network before training "
            "with python task1a.py --check_complexity")


def get_model_size(source, model_type: str = "tflite", max_macs: int = OFFICIAL_MAX_MACS,
                   max_memory_bytes: int = OFFICIAL_MAX_MEMORY_BYTES) -> dict:
    """Complexity figures of a model, as a JSON-able dict.

    ``source``: a .tflite path or the model's bytes (``model_type='tflite'``), or a built
    Keras 3 model (``model_type='keras'``). Limits default to the challenge's (official tool).
    Raises ModelSizeError (one line) for a missing, non-TFLite, truncated or corrupt model.
    """
    if model_type == "tflite":
        model_bytes, label = _read_model_bytes(source)
        try:
            figures = tflite_figures(model_bytes, max_macs, max_memory_bytes)
        except ModelFormatError as error:
            keras_file = _keras_file_kind(model_bytes)
            if keras_file:
                raise ModelSizeError(_keras_file_message(source, label, keras_file)) from None
            raise ModelSizeError(f"{label}: {error}; re-export it with the TFLite converter") \
                from None
        figures["source"] = label
        return figures
    if model_type == "keras":
        return keras_figures(source, max_macs, max_memory_bytes)
    raise ModelSizeError(f"model_type '{model_type}' is not supported; use 'tflite' or 'keras'")


# --------------------------------------------------------------------------------------------
# Text output
# --------------------------------------------------------------------------------------------

def _justify(text: str, width: int, align: str) -> str:
    """PrettyTable's justification (the official tool prints with PrettyTable), including its
    rule for odd padding when centring: the extra space goes right of odd-length text and left
    of even-length text."""
    excess = width - len(text)
    if align == "r":
        return " " * excess + text
    if align == "l":
        return text + " " * excess
    left = excess // 2
    if excess % 2 and len(text) % 2 == 0:
        left += 1
    return " " * left + text + " " * (excess - left)


def _markdown_table(headers: list, aligns: list, rows: list) -> str:
    """The published table layout: PrettyTable's cells and padding, markdown rules
    (``|----|``) and no top/bottom border. Written here because PrettyTable's own MARKDOWN
    style adds ``:---:`` alignment marks that the published tables do not have."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["|" + "|".join(f" {_justify(h, w, a)} " for h, w, a in zip(headers, widths, aligns))
             + "|",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        lines.append("|" + "|".join(f" {_justify(str(c), w, a)} "
                                    for c, w, a in zip(row, widths, aligns)) + "|")
    return "\n".join(lines)


def nessi_macs(macs) -> str:
    """MACs in the official tool's unit: ``29.235 M`` (millions, three decimals)."""
    return "%.3f M" % (macs / 1e6)


def nessi_memory(memory_bytes) -> str:
    """Parameter memory in the official tool's unit: ``46.512 K`` (thousands of bytes, as its 128e3
    limit; not KiB)."""
    return "%.3f K" % (memory_bytes / 1e3)


def _model_statistics(macs: int, memory: int, limits: dict, memory_label: str) -> list:
    """The official tool's closing lines (nessi.validate) and its warnings."""
    lines = ["Model statistics:",
             "MACC:\t \t " + nessi_macs(macs),
             "Memory:\t \t " + nessi_memory(memory),
             ""]
    if macs > limits["macs"]:
        lines.append(f"[Warning] Multiply accumulate count {macs} is more than the allowed "
                     f"maximum of {limits['macs']}")
    if memory > limits["memory_bytes"]:
        lines.append(f"[Warning] {memory_label} {memory} is more than the allowed maximum of "
                     f"{limits['memory_bytes']}")
    return lines


def _format_tflite(figures: dict) -> str:
    tensor_rows = [[t["id"], _shorten_name(t["name"]), str(tuple(t["shape"])), f"{t['bytes']:,}"]
                   for t in figures["tensors"]]
    schedule_rows = [[_shorten_name(op["name"]),
                      "[" + ", ".join(str(i) for i in op["tensors_in_memory"]) + "]",
                      f"{op['memory_bytes']:,}", f"{op['macs']:,}", f"{op['weight_bytes']:,}"]
                     for op in figures["operators"]]
    lines = [TENSOR_TABLE_TITLE, "",
             _markdown_table(["Id", "Tensor", "Shape", "Size in RAM (B)"],
                             ["r", "c", "c", "r"], tensor_rows),
             "", SCHEDULE_TABLE_TITLE, "",
             _markdown_table(["Operator (output name)", "Tensors in memory (IDs)",
                              "Memory use (B)", "MACs", "Size"],
                             ["c", "c", "r", "r", "r"], schedule_rows),
             "",
             f"Current peak memory usage: {figures['peak_memory_bytes']:,} B",
             f"Total MACs: {figures['total_macs']:,}",
             f"Total weight size: {figures['total_weight_bytes']:,}",
             ""]
    lines += _model_statistics(figures["total_macs"], figures["total_weight_bytes"],
                               figures["limits"], "parameter count")
    for quirk in figures.get("fully_connected_quirk", []):
        lines.append(f"* {quirk['name']}: FULLY_CONNECTED counted as the official tool does, "
                     f"with the input tensor's last dimension ({quirk['macs']:,} MACs); with the "
                     f"weight matrix's input width it is {quirk['corrected_macs']:,} MACs.")
    if "corrected_total_macs" in figures:
        lines.append(f"* Total MACs with fully-connected layers counted from their weights: "
                     f"{figures['corrected_total_macs']:,}")
    lines += [f"Note: {note}" for note in figures.get("notes", [])]
    return "\n".join(lines).rstrip("\n") + "\n"


def _format_keras(figures: dict) -> str:
    rows = [[layer["name"], layer["class"], f"{layer['parameters']:,}", f"{layer['macs']:,}"]
            for layer in figures["layers"]]
    by_dtype = ", ".join(f"{dtype} {n:,} B"
                         for dtype, n in figures["parameter_bytes_by_dtype"].items())
    lines = [f"Keras model '{figures['name']}' (batch size 1):", "",
             _markdown_table(["Layer", "Class", "Parameters", "MACs"], ["c", "c", "r", "r"],
                             rows),
             "",
             f"Parameters: {figures['parameters']:,} (trainable {figures['trainable_parameters']:,}"
             f", non-trainable {figures['non_trainable_parameters']:,})",
             f"Parameter bytes: {figures['parameter_bytes']:,} ({by_dtype})",
             f"Total MACs: {figures['total_macs']:,}",
             ""]
    lines += _model_statistics(figures["total_macs"], figures["parameters"], figures["limits"],
                               "parameter count")
    return "\n".join(lines).rstrip("\n") + "\n"


def format_nessi_table(figures: dict) -> str:
    """The NeSsi text report of ``get_model_size`` figures: for TFLite the tensor table, the
    operator schedule and totals exactly as published, then the model statistics, warnings
    and the fully-connected footnote."""
    if figures.get("model_type") == "keras":
        return _format_keras(figures)
    return _format_tflite(figures)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Complexity figures (NeSsi format) of a TFLite "
                                                 "model: memory, MACs, weight size.")
    parser.add_argument("model", help="the .tflite model file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    args = parser.parse_args(argv)
    try:
        figures = get_model_size(args.model, "tflite")
    except ModelSizeError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(format_nessi_table(figures), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
