"""The structure of an exported TFLite graph: the official form of a dense layer after ``Flatten``, and
run-time shape arithmetic.

Owns two questions about a converted model's operator graph, both on the flatbuffer alone:

- :func:`fold_reshapes_into_fully_connected`: the rewrite that gives the exported baseline the official
  graph. TensorFlow 2.21 converts ``Flatten`` -> ``Dense`` of a batch-one graph into a ``RESHAPE``
  (constant shape ``(1, 64)``) feeding ``FULLY_CONNECTED``; the official file (TF 2.1's converter) has
  the dense layer consume the pooled ``(1, 2, 1, 32)`` tensor directly. Both compute the same thing:
  a ``FULLY_CONNECTED`` whose ``keep_num_dims`` is false flattens its input itself, to
  ``(elements / in_dim, in_dim)`` rows in the same row-major order a ``RESHAPE`` keeps (TFLite's
  kernel semantics), and an int8 ``RESHAPE`` keeps its input's scale and zero point. So a reshape is
  dropped (its consumers read its input) when every consumer is such a layer and the reshape changes
  neither the element type, the quantization, the batch (first) dimension nor the rows the layer
  sees; its orphaned output tensor, shape constant, buffer and operator code go with it. Nothing else
  changes: the outputs are bit for bit those of the un-rewritten graph, for any batch size the input
  is resized to. Constant buffers are written 16-byte aligned, as the converter writes them (word
  loads of int32 biases on microcontrollers).
- :func:`runtime_shape_operators`: the operators that compute tensor shapes while the model runs
  (``SHAPE``, then ``STRIDED_SLICE``, ``PACK``... down to the ``RESHAPE`` that uses the result): work
  a fixed-shape model never needs, operators a small runtime must support, and rows NeSsi counts. The
  complexity gate (:mod:`utils.complexity`) warns when a network's converted graph has any.

The rewrite reads and writes the flatbuffer with the TFLite schema's generated object API
(``ai_edge_litert.schema_py_generated``, TensorFlow's copy where LiteRT is not installed); the check
reads it with :mod:`model_size_calculation.tflite_reader` (no TensorFlow).
"""

from __future__ import annotations

import math

import numpy as np

from utils.errors import Task1aError

TFLITE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16  # bytes: the converter's alignment of constant data
# Operators whose output is a run-time tensor shape (or rank) read from another tensor.
SHAPE_SOURCES = ("SHAPE", "RANK")


def _schema():
    """The TFLite flatbuffer schema's generated Python module (object API)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # no LiteRT wheel: the converter's own copy (the rewrite runs after a conversion)
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


# ----------------------------------------------------------------------------------------------
# The official form: a reshape before a fully connected layer folded into it


def _index_lists(model) -> None:
    """Every tensor-index vector of ``model`` (the object API reads them as numpy arrays, or None) as a list of ints."""
    for subgraph in model.subgraphs:
        subgraph.inputs, subgraph.outputs = _ints(subgraph.inputs), _ints(subgraph.outputs)
        subgraph.operators = list(subgraph.operators or [])
        for operator in subgraph.operators:
            operator.inputs, operator.outputs, operator.intermediates = _ints(operator.inputs), _ints(operator.outputs), _ints(operator.intermediates)


def _ints(values) -> list:
    return [] if values is None else [int(v) for v in values]


def _builtin_code(model, operator) -> int:
    code = model.operatorCodes[operator.opcodeIndex]
    return max(code.deprecatedBuiltinCode, code.builtinCode)  # as the runtime reads both fields


def _same_quantization(a, b) -> bool:
    """Whether tensors ``a`` and ``b`` (TensorT) have the same quantization (or none)."""
    def parameters(tensor):
        q = tensor.quantization
        if q is None:
            return None
        return tuple(tuple(np.asarray(v).ravel().tolist()) if v is not None else () for v in (q.scale, q.zeroPoint)) + (q.quantizedDimension,)

    return parameters(a) == parameters(b)


def _foldable(model, subgraph, index: int, consumers: dict, schema) -> bool:
    """Whether operator ``index`` of ``subgraph`` is a reshape the fully connected layers after it make redundant."""
    operator = subgraph.operators[index]
    if _builtin_code(model, operator) != schema.BuiltinOperator.RESHAPE or not operator.inputs or len(operator.outputs) != 1:
        return False
    source, target = subgraph.tensors[operator.inputs[0]], subgraph.tensors[operator.outputs[0]]
    if operator.outputs[0] in subgraph.outputs or not consumers.get(operator.outputs[0]):
        return False
    shape = int(operator.inputs[1]) if len(operator.inputs) > 1 else -1
    if shape >= 0 and (shape in subgraph.inputs or any(shape in op.outputs for op in subgraph.operators)):
        return False  # a shape computed at run time: not a plain flatten (runtime_shape_operators names it)
    source_shape, target_shape = list(source.shape if source.shape is not None else []), list(target.shape if target.shape is not None else [])
    if (source.type != target.type or not _same_quantization(source, target) or not source_shape or len(target_shape) < 2
            or source_shape[0] != target_shape[0] or math.prod(source_shape) != math.prod(target_shape)):
        return False
    for consumer in consumers[operator.outputs[0]]:
        fc = subgraph.operators[consumer]
        options = fc.builtinOptions
        if (_builtin_code(model, fc) != schema.BuiltinOperator.FULLY_CONNECTED or fc.inputs.count(operator.outputs[0]) != 1
                or fc.inputs[0] != operator.outputs[0] or (options is not None and options.keepNumDims)):
            return False
        weights = subgraph.tensors[fc.inputs[1]] if len(fc.inputs) > 1 and fc.inputs[1] >= 0 else None
        if weights is None or weights.shape is None or len(weights.shape) != 2 or target_shape[-1] != weights.shape[1]:
            return False
    return True


def _fold_subgraph(model, subgraph, schema) -> set:
    """Drop the foldable reshapes of ``subgraph`` (their consumers read their inputs); the tensor ids they leave unused."""
    consumers = {}
    for index, operator in enumerate(subgraph.operators):
        for tensor in set(operator.inputs):
            consumers.setdefault(tensor, []).append(index)
    dropped, orphans = [], set()
    for index in range(len(subgraph.operators)):
        if not _foldable(model, subgraph, index, consumers, schema):
            continue
        reshape = subgraph.operators[index]
        source, target = reshape.inputs[0], reshape.outputs[0]
        for consumer in consumers[target]:
            subgraph.operators[consumer].inputs[0] = source
        dropped.append(index)
        orphans.update(t for t in reshape.inputs[1:] if t >= 0)
        orphans.add(target)
    subgraph.operators = [op for i, op in enumerate(subgraph.operators) if i not in dropped]
    used = {t for op in subgraph.operators for t in op.inputs + op.outputs + op.intermediates}
    used.update(subgraph.inputs + subgraph.outputs)
    return {t for t in orphans if t not in used}


def _renumber(values, mapping: dict) -> list:
    """``values`` with each index replaced by ``mapping[index]`` (-1, an omitted optional input, stays)."""
    return [mapping[v] if v >= 0 else v for v in values]


def _drop_tensors(model, subgraph_index: int, subgraph, unused: set) -> None:
    """Remove the ``unused`` tensors of a subgraph, renumbering every reference to the others."""
    kept = [i for i in range(len(subgraph.tensors)) if i not in unused]
    mapping = {old: new for new, old in enumerate(kept)}
    subgraph.tensors = [subgraph.tensors[i] for i in kept]
    for operator in subgraph.operators:
        operator.inputs, operator.outputs = _renumber(operator.inputs, mapping), _renumber(operator.outputs, mapping)
        operator.intermediates = _renumber(operator.intermediates, mapping) or None
    subgraph.inputs, subgraph.outputs = _renumber(subgraph.inputs, mapping), _renumber(subgraph.outputs, mapping)
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == subgraph_index:
            for tensor_map in (signature.inputs or []) + (signature.outputs or []):
                tensor_map.tensorIndex = mapping[tensor_map.tensorIndex]


def _drop_unreferenced(model) -> None:
    """Remove buffers (never buffer 0, the empty one) and operator codes nothing refers to any more."""
    tensors = [t for subgraph in model.subgraphs for t in subgraph.tensors]
    referenced = {0, *(t.buffer for t in tensors), *(m.buffer for m in model.metadata or []),
                  *(int(b) for b in (model.metadataBuffer if model.metadataBuffer is not None else []))}
    buffers = {old: new for new, old in enumerate(i for i in range(len(model.buffers)) if i in referenced)}
    model.buffers = [model.buffers[i] for i in sorted(buffers)]
    for tensor in tensors:
        tensor.buffer = buffers[tensor.buffer]
    for metadata in model.metadata or []:
        metadata.buffer = buffers[metadata.buffer]
    if model.metadataBuffer is not None:
        model.metadataBuffer = [buffers[int(b)] for b in model.metadataBuffer]
    used = {op.opcodeIndex for subgraph in model.subgraphs for op in subgraph.operators}
    codes = {old: new for new, old in enumerate(i for i in range(len(model.operatorCodes)) if i in used)}
    model.operatorCodes = [model.operatorCodes[i] for i in sorted(codes)]
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            operator.opcodeIndex = codes[operator.opcodeIndex]


def _aligned_builder():
    """A flatbuffers Builder writing byte vectors (buffer data) at :data:`BUFFER_ALIGNMENT` as the converter does."""
    import flatbuffers

    class AlignedBuilder(flatbuffers.Builder):
        align_next = False

        def StartVector(self, elemSize, numElems, alignment):  # noqa: N802, N803 - flatbuffers' names
            return super().StartVector(elemSize, numElems, max(alignment, BUFFER_ALIGNMENT) if self.align_next else alignment)

        def CreateNumpyVector(self, x):  # noqa: N802 - flatbuffers' name
            self.align_next = x.dtype == np.uint8
            try:
                return super().CreateNumpyVector(x)
            finally:
                self.align_next = False

    return AlignedBuilder(1024)


def fold_reshapes_into_fully_connected(content: bytes) -> bytes:
    """The TFLite flatbuffer ``content`` with every reshape that only flattens a fully connected layer's input removed.

    Returns ``content`` itself when there is none (see the module docstring for the rule and why the
    outputs do not change). Raises :class:`Task1aError` for bytes that are not a TFLite model, and for
    a model whose buffers lie outside the flatbuffer (over 2 GB), which this rewrite does not handle.
    """
    content = bytes(content)
    if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
        raise Task1aError(f"the converted model is not a TFLite flatbuffer (no {TFLITE_IDENTIFIER.decode()} identifier); convert it again")
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    if any(buffer.offset > 1 for buffer in model.buffers or []) or getattr(model, "externalBuffers", None):
        raise Task1aError("the converted model keeps its weights outside the flatbuffer (over 2 GB); it cannot be put in the official form")
    _index_lists(model)
    folded = False
    for index, subgraph in enumerate(model.subgraphs):
        unused = _fold_subgraph(model, subgraph, schema)
        folded = folded or bool(unused)
        _drop_tensors(model, index, subgraph, unused)
    if not folded:
        return content
    _drop_unreferenced(model)
    builder = _aligned_builder()
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


# ----------------------------------------------------------------------------------------------
# Run-time shape arithmetic


def runtime_shape_operators(content: bytes) -> list[str]:
    """``"<index> <OPERATOR>"`` of each operator of subgraph 0 that computes a shape at run time, in graph order.

    A shape is computed at run time from a ``SHAPE`` or ``RANK`` operator on; every operator whose
    non-constant inputs all carry such values continues it (``STRIDED_SLICE``, ``PACK``, ``CONCATENATION``,
    ``MUL``...), and the operators that take one of those values (the ``RESHAPE``, ``FILL``, ``BROADCAST_TO``
    that uses the shape) end it; all are named. Empty for a graph of fixed shapes, such as the official
    model's. Raises :class:`model_size_calculation.tflite_reader.ModelFormatError` for bytes that are
    not a readable model.
    """
    from model_size_calculation.tflite_reader import read_tflite_graph

    graph = read_tflite_graph(content)
    produced = {t for op in graph.operators for t in op.outputs}
    shape_values, named = set(), []
    for operator in graph.operators:
        runtime_inputs = [t for t in operator.inputs if t >= 0 and (t in produced or t in graph.inputs)]
        carries = [t in shape_values for t in runtime_inputs]
        if operator.opcode_name in SHAPE_SOURCES or (carries and all(carries)):
            shape_values.update(operator.outputs)
            named.append(operator)
        elif any(carries):
            named.append(operator)
    return [f"{op.index} {op.opcode_name}" for op in named]
