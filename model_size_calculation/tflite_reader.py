"""Bounds-checked reader for TFLite flatbuffers: the graph facts NeSsi counts, nothing more.

Reads subgraph 0 (the one the official tool and the interpreter run): tensors (shape, element
type, buffer, quantisation), operators (builtin code, inputs with -1 for an omitted optional input,
outputs, Pool2D filter size) and the graph inputs and outputs.

Hand-written on the flatbuffer wire format rather than on generated schema classes because those
read past the end of a truncated file without noticing (numpy views come back short, offsets
wrap). Every read here is checked against the file size, so a truncated or corrupt model is
reported as :class:`ModelFormatError`, never as an IndexError deep inside a library. Field slots
follow tensorflow/lite/schema/schema.fbs (a union takes two slots: its type, then its value).
"""

import math
import struct
from dataclasses import dataclass, field

from model_size_calculation.tflite_schema import BUILTIN_OPERATOR_NAMES, TENSOR_TYPES

TFLITE_FILE_IDENTIFIER = b"TFL3"

# Field slots (index in the table's vtable) from schema.fbs.
MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_BUFFERS = 1, 2, 4
OPCODE_DEPRECATED_BUILTIN_CODE, OPCODE_CUSTOM_CODE, OPCODE_BUILTIN_CODE = 0, 1, 3
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS = 0, 1, 2, 3
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION = 0, 1, 2, 3, 4
TENSOR_IS_VARIABLE = 5
QUANT_SCALE, QUANT_ZERO_POINT = 2, 3
OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS, OPERATOR_OUTPUTS = 0, 1, 2
OPERATOR_BUILTIN_OPTIONS_TYPE, OPERATOR_BUILTIN_OPTIONS = 3, 4
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
MODEL_DESCRIPTION, MODEL_METADATA_BUFFER, MODEL_METADATA, MODEL_SIGNATURE_DEFS = 3, 5, 6, 7
SUBGRAPH_NAME = 4
TENSOR_SPARSITY, TENSOR_SHAPE_SIGNATURE = 6, 7
QUANT_MIN, QUANT_MAX = 0, 1
OPERATOR_CUSTOM_OPTIONS, OPERATOR_MUTATING_VARIABLE_INPUTS, OPERATOR_INTERMEDIATES = 5, 7, 8
OPERATOR_BUILTIN_OPTIONS_2 = 12
METADATA_NAME = 0
SIGNATURE_INPUTS, SIGNATURE_OUTPUTS, SIGNATURE_KEY, TENSOR_MAP_NAME = 0, 1, 2, 0
BUILTIN_OPTIONS_POOL2D = 5  # BuiltinOptions.Pool2DOptions
POOL2D_FILTER_WIDTH, POOL2D_FILTER_HEIGHT = 3, 4
CUSTOM_OPCODE = BUILTIN_OPERATOR_NAMES.index("CUSTOM")


class ModelFormatError(ValueError):
    """The bytes are not a readable TFLite model (not a flatbuffer, truncated or corrupt)."""


@dataclass
class TfliteTensor:
    """One tensor of subgraph 0; ``shape`` is a tuple of ints (``()`` for a scalar)."""

    id: int
    name: str
    shape: tuple
    type_code: int
    buffer_index: int
    buffer_bytes: int  # bytes of data stored in the model for it (0 for activations)
    is_variable: bool = False
    scale: tuple = ()
    zero_point: tuple = ()

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES.get(self.type_code, (f"TENSOR_TYPE_{self.type_code}", None))[0]

    @property
    def element_count(self) -> int:
        return math.prod(self.shape)

    @property
    def byte_size(self) -> int:
        """Bytes the tensor occupies (elements x element size; buffer length where the type has
        no fixed size, e.g. STRING)."""
        bits = TENSOR_TYPES.get(self.type_code, (None, None))[1]
        if bits is None:
            return self.buffer_bytes
        return -(-self.element_count * bits // 8)  # sub-byte types are packed, rounded up


@dataclass
class TfliteOperator:
    """One operator of subgraph 0 in execution order; ``inputs`` keeps -1 for omitted ones."""

    index: int
    opcode: int  # BuiltinOperator code (CUSTOM for custom operators, named by custom_code)
    custom_code: str
    inputs: tuple
    outputs: tuple
    pool_filter: tuple = None  # (filter_height, filter_width) for Pool2DOptions operators

    @property
    def opcode_name(self) -> str:
        if self.custom_code:
            return f"CUSTOM({self.custom_code})"
        if 0 <= self.opcode < len(BUILTIN_OPERATOR_NAMES):
            return BUILTIN_OPERATOR_NAMES[self.opcode]
        return f"BUILTIN_OPERATOR_{self.opcode}"


@dataclass
class TfliteGraph:
    """Subgraph 0 of a model: tensors by id, operators in execution order, graph inputs/outputs."""

    tensors: list
    operators: list
    inputs: tuple
    outputs: tuple
    subgraph_count: int = 1
    notes: list = field(default_factory=list)


class _FlatbufferView:
    """Checked little-endian reads of flatbuffer tables, vectors and strings in ``data``."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.size = len(data)

    def _need(self, pos: int, length: int, what: str):
        if pos < 0 or length < 0 or pos + length > self.size:
            raise ModelFormatError(
                f"{what} at byte {pos} (+{length}) lies beyond the end of the "
                f"{self.size}-byte file: the model is truncated or corrupt")

    def scalar(self, fmt: str, pos: int, what: str = "value"):
        length = struct.calcsize(fmt)
        self._need(pos, length, what)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def root_table(self) -> int:
        return self.scalar("I", 0, "root table offset")

    def field_pos(self, table: int, slot: int):
        """Absolute position of field ``slot`` of the table at ``table``, or None if absent.
        Checks the whole table (its inline size is in the vtable) lies inside the file."""
        vtable = table - self.scalar("i", table, "table")
        vtable_size = self.scalar("H", vtable, "vtable")
        self._need(table, self.scalar("H", vtable + 2, "vtable"), "table")
        voffset = 4 + 2 * slot
        if voffset >= vtable_size:
            return None
        offset = self.scalar("H", vtable + voffset, "vtable entry")
        return table + offset if offset else None

    def field_scalar(self, table: int, slot: int, fmt: str, default=0):
        pos = self.field_pos(table, slot)
        return default if pos is None else self.scalar(fmt, pos, "field")

    def indirect(self, pos: int) -> int:
        return pos + self.scalar("I", pos, "offset")

    def field_table(self, table: int, slot: int):
        pos = self.field_pos(table, slot)
        return None if pos is None else self.indirect(pos)

    def vector(self, table: int, slot: int, element_size: int):
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self.field_pos(table, slot)
        if pos is None:
            return 0, 0
        start = self.indirect(pos)
        length = self.scalar("I", start, "vector length")
        self._need(start + 4, length * element_size, "vector")
        return start + 4, length

    def scalar_vector(self, table: int, slot: int, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        start, length = self.vector(table, slot, size)
        if not length:
            return ()
        return struct.unpack_from(f"<{length}{fmt}", self.data, start)

    def table_vector(self, table: int, slot: int) -> list:
        start, length = self.vector(table, slot, 4)
        return [self.indirect(start + 4 * i) for i in range(length)]

    def string(self, table: int, slot: int) -> str:
        start, length = self.vector(table, slot, 1)
        if start:
            self._need(start, length + 1, "string")  # strings end with a NUL byte
        return bytes(self.data[start:start + length]).decode("utf-8", errors="replace")


def _read_buffer_sizes(view: _FlatbufferView, model: int) -> list:
    """Bytes of data per buffer; checks inline data and external (offset/size) data lie inside
    the file, which is how truncation of the weights at the end of a file is caught."""
    sizes = []
    for buffer in view.table_vector(model, MODEL_BUFFERS):
        _, length = view.vector(buffer, BUFFER_DATA, 1)
        offset = view.field_scalar(buffer, BUFFER_OFFSET, "Q")
        external_size = view.field_scalar(buffer, BUFFER_SIZE, "Q")
        if offset > 1:  # 0 and 1 are the schema's "no external data" sentinels
            view._need(offset, external_size, "buffer data")
            length = external_size
        sizes.append(length)
    return sizes


def _read_opcodes(view: _FlatbufferView, model: int) -> list:
    """(builtin code, custom code) per operator code; the real code is the larger of the
    deprecated int8 field and the int32 field (how the runtime reads both old and new files)."""
    opcodes = []
    for code_table in view.table_vector(model, MODEL_OPERATOR_CODES):
        deprecated = view.field_scalar(code_table, OPCODE_DEPRECATED_BUILTIN_CODE, "b")
        builtin = view.field_scalar(code_table, OPCODE_BUILTIN_CODE, "i")
        code = max(deprecated, builtin)  # as tflite::GetBuiltinCode: 127 is only a placeholder
        custom = view.string(code_table, OPCODE_CUSTOM_CODE) if code == CUSTOM_OPCODE else ""
        opcodes.append((code, custom))
    return opcodes


def _read_tensor(view: _FlatbufferView, table: int, tensor_id: int, buffer_sizes: list):
    buffer_index = view.field_scalar(table, TENSOR_BUFFER, "I")
    scale, zero_point = (), ()
    quantization = view.field_table(table, TENSOR_QUANTIZATION)
    if quantization is not None:
        scale = view.scalar_vector(quantization, QUANT_SCALE, "f")
        zero_point = view.scalar_vector(quantization, QUANT_ZERO_POINT, "q")
    return TfliteTensor(
        id=tensor_id,
        name=view.string(table, TENSOR_NAME),
        shape=tuple(view.scalar_vector(table, TENSOR_SHAPE, "i")),
        type_code=view.field_scalar(table, TENSOR_TYPE, "b"),
        buffer_index=buffer_index,
        buffer_bytes=buffer_sizes[buffer_index] if buffer_index < len(buffer_sizes) else 0,
        is_variable=bool(view.field_scalar(table, TENSOR_IS_VARIABLE, "B")),
        scale=scale,
        zero_point=zero_point,
    )


def _read_operator(view: _FlatbufferView, table: int, index: int, opcodes: list, n_tensors: int):
    opcode_index = view.field_scalar(table, OPERATOR_OPCODE_INDEX, "I")
    if opcode_index >= len(opcodes):
        raise ModelFormatError(f"operator {index} names operator code {opcode_index} but the "
                               f"model has {len(opcodes)}: the model is corrupt")
    inputs = view.scalar_vector(table, OPERATOR_INPUTS, "i")
    outputs = view.scalar_vector(table, OPERATOR_OUTPUTS, "i")
    for tensor_id in inputs + outputs:
        if not -1 <= tensor_id < n_tensors:
            raise ModelFormatError(f"operator {index} refers to tensor {tensor_id} but the "
                                   f"subgraph has {n_tensors}: the model is corrupt")
    pool_filter = None
    if view.field_scalar(table, OPERATOR_BUILTIN_OPTIONS_TYPE, "B") == BUILTIN_OPTIONS_POOL2D:
        options = view.field_table(table, OPERATOR_BUILTIN_OPTIONS)
        if options is not None:
            pool_filter = (view.field_scalar(options, POOL2D_FILTER_HEIGHT, "i"),
                           view.field_scalar(options, POOL2D_FILTER_WIDTH, "i"))
    code, custom = opcodes[opcode_index]
    return TfliteOperator(index=index, opcode=code, custom_code=custom, inputs=tuple(inputs),
                          outputs=tuple(t for t in outputs if t >= 0), pool_filter=pool_filter)



def _visit_tables(view, owner, slots) -> None:
    """Bounds-check the sub-tables of ``owner`` in ``slots`` (each one's first field position)."""
    for slot in slots:
        table = view.field_table(owner, slot)
        if table is not None:
            view.field_pos(table, 0)


def _check_extents(view: _FlatbufferView, model: int, subgraphs: list):
    """Touch the parts NeSsi does not count (descriptions, metadata, signatures, options, other
    subgraphs) so that a file cut anywhere is reported instead of silently half-read."""
    view.string(model, MODEL_DESCRIPTION)
    view.vector(model, MODEL_METADATA_BUFFER, 4)
    for metadata in view.table_vector(model, MODEL_METADATA):
        view.string(metadata, METADATA_NAME)
    for signature in view.table_vector(model, MODEL_SIGNATURE_DEFS):
        view.string(signature, SIGNATURE_KEY)
        for slot in (SIGNATURE_INPUTS, SIGNATURE_OUTPUTS):
            for tensor_map in view.table_vector(signature, slot):
                view.string(tensor_map, TENSOR_MAP_NAME)
    for subgraph in subgraphs:
        view.string(subgraph, SUBGRAPH_NAME)
        view.vector(subgraph, SUBGRAPH_INPUTS, 4)
        view.vector(subgraph, SUBGRAPH_OUTPUTS, 4)
        for tensor in view.table_vector(subgraph, SUBGRAPH_TENSORS):
            view.string(tensor, TENSOR_NAME)
            view.vector(tensor, TENSOR_SHAPE, 4)
            view.vector(tensor, TENSOR_SHAPE_SIGNATURE, 4)
            _visit_tables(view, tensor, (TENSOR_QUANTIZATION, TENSOR_SPARSITY))
            quantization = view.field_table(tensor, TENSOR_QUANTIZATION)
            if quantization is not None:
                for slot in (QUANT_MIN, QUANT_MAX, QUANT_SCALE):
                    view.vector(quantization, slot, 4)
                view.vector(quantization, QUANT_ZERO_POINT, 8)
        for operator in view.table_vector(subgraph, SUBGRAPH_OPERATORS):
            view.vector(operator, OPERATOR_INPUTS, 4)
            view.vector(operator, OPERATOR_OUTPUTS, 4)
            view.vector(operator, OPERATOR_CUSTOM_OPTIONS, 1)
            view.vector(operator, OPERATOR_MUTATING_VARIABLE_INPUTS, 1)
            view.vector(operator, OPERATOR_INTERMEDIATES, 4)
            _visit_tables(view, operator, (OPERATOR_BUILTIN_OPTIONS, OPERATOR_BUILTIN_OPTIONS_2))


def read_tflite_graph(data: bytes) -> TfliteGraph:
    """Parse a TFLite flatbuffer (``data``: the file's bytes) into subgraph 0's graph."""
    if len(data) < 8 or bytes(data[4:8]) != TFLITE_FILE_IDENTIFIER:
        raise ModelFormatError("not a TFLite model (no 'TFL3' flatbuffer identifier at byte 4)")
    view = _FlatbufferView(data)
    try:
        model = view.root_table()
        buffer_sizes = _read_buffer_sizes(view, model)
        opcodes = _read_opcodes(view, model)
        subgraphs = view.table_vector(model, MODEL_SUBGRAPHS)
        if not subgraphs:
            raise ModelFormatError("the model has no subgraph")
        subgraph = subgraphs[0]
        tensor_tables = view.table_vector(subgraph, SUBGRAPH_TENSORS)
        tensors = [_read_tensor(view, table, i, buffer_sizes)
                   for i, table in enumerate(tensor_tables)]
        operators = [_read_operator(view, table, i, opcodes, len(tensors))
                     for i, table in enumerate(view.table_vector(subgraph, SUBGRAPH_OPERATORS))]
        inputs = view.scalar_vector(subgraph, SUBGRAPH_INPUTS, "i")
        outputs = view.scalar_vector(subgraph, SUBGRAPH_OUTPUTS, "i")
        _check_extents(view, model, subgraphs)
    except struct.error as error:  # defensive: every read is bounds-checked before unpacking
        raise ModelFormatError(f"unreadable flatbuffer ({error}): the model is corrupt") from None
    for tensor_id in inputs + outputs:
        if not 0 <= tensor_id < len(tensors):
            raise ModelFormatError(f"graph input/output {tensor_id} is not one of the "
                                   f"{len(tensors)} tensors: the model is corrupt")
    notes = []
    if len(subgraphs) > 1:
        notes.append(f"the model has {len(subgraphs)} subgraphs; figures are for subgraph 0 "
                     "(the main graph), as the official tool counts")
    return TfliteGraph(tensors=tensors, operators=operators, inputs=tuple(inputs),
                       outputs=tuple(outputs), subgraph_count=len(subgraphs), notes=notes)
