"""Reading a .tflite flatbuffer: its tensors (shape, dtype, quantisation, constant data) and ops.

The flatbuffer is read through the schema module ``ai-edge-litert`` ships
(``ai_edge_litert.schema_py_generated``, the object API): every op's builtin options (padding,
strides, fused activation, align_corners, keep_dims, beta) and the constant buffers exactly as
stored, without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CompileError

_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
}
PADDING_VALID = 1
"""tflite Padding.VALID (the other value, SAME, pads)."""
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
"""tflite ActivationFunctionType enum (the values the int8 kernels support)."""


@dataclass
class TensorInfo:
    """One tensor of the graph, with its quantisation and (for constants) its data."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: list[float]
    zero_point: list[int]
    data: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * (4 if self.dtype == "int32" else 1)


@dataclass
class OpInfo:
    """One operator: builtin name, tensor indices (-1 = absent), options object."""

    name: str
    inputs: list[int]
    outputs: list[int]
    options: Any


@dataclass
class Graph:
    """The model's single subgraph."""

    path: Path
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    input: int
    output: int


def read_graph(path: Path) -> Graph:
    """Parse a .tflite flatbuffer into tensors and ops (constant data decoded)."""
    from ai_edge_litert import schema_py_generated as fb

    raw = path.read_bytes()
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise CompileError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = fb.ModelT.InitFromPackedBuf(raw, 0)
    except Exception as e:  # noqa: BLE001 - any decoding failure means a corrupt file
        raise CompileError(f"{path}: cannot decode the flatbuffer ({e})") from None
    if len(model.subgraphs or []) != 1:
        raise CompileError(f"{path}: expected one subgraph, found {len(model.subgraphs or [])}")
    g = model.subgraphs[0]
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    tensors = [_tensor(i, t, model, raw) for i, t in enumerate(g.tensors)]
    ops = []
    for op in g.operators:
        oc = model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        name = names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            cc = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
            name = f"CUSTOM:{cc}"
        ops.append(
            OpInfo(
                name, [int(x) for x in op.inputs], [int(x) for x in op.outputs], op.builtinOptions
            )
        )
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CompileError(f"{path}: expected one input and one output tensor")
    return Graph(path, tensors, ops, int(g.inputs[0]), int(g.outputs[0]))


def _tensor(i: int, t: Any, model: Any, raw: bytes) -> TensorInfo:
    dtype = _TYPES.get(int(t.type), f"type{t.type}")
    q = t.quantization
    scale = [float(x) for x in q.scale] if q is not None and q.scale is not None else []
    zp = [int(x) for x in q.zeroPoint] if q is not None and q.zeroPoint is not None else []
    data = None
    b = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
    blob = None
    if b is not None and b.data is not None and len(b.data):
        blob = np.asarray(b.data, np.uint8).tobytes()
    elif b is not None and getattr(b, "offset", 0) > 1:
        blob = raw[b.offset : b.offset + b.size]
    shape = tuple(int(x) for x in (t.shape if t.shape is not None else []))
    if blob is not None and dtype in ("int8", "int32"):
        data = np.frombuffer(blob, np.int8 if dtype == "int8" else "<i4").reshape(shape)
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    return TensorInfo(i, name, shape, dtype, scale, zp, data)
