"""``earshot-train compile``: a full-int8 ``.tflite`` becomes C for the RP2040 firmware.

Output (``<prefix>_model_data.c`` and ``.h``): the weights and biases as const arrays, the
per-channel multipliers and shifts, one const parameter struct per op, a STATIC SCHEDULE of
``es_kernels`` calls (no interpreter), and one static arena whose offsets are planned here from
the tensors' lifetimes. The files implement ``firmware/core/es_model.h``.

How the model is read: the flatbuffer itself, through the schema module ``ai-edge-litert``
ships (``ai_edge_litert.schema_py_generated``, the object API). It gives every op's builtin
options (padding, strides, fused activation, align_corners, keep_dims, beta) and the constant
buffers exactly as stored, without TensorFlow.

Every multiplier is computed as the kernels compute it in Prepare (QuantizeMultiplier with
round-half-away-from-zero, the same double/float arithmetic), so the C output equals TFLite
Micro's bit for bit, and the reference interpreter's wherever that agrees with TFLM (all ops but
FULLY_CONNECTED, which the reference rescales in float). Where the kernels compute in float at
run time (RESIZE_NEAREST_NEIGHBOR's index), the function is evaluated here and emitted as an
integer table. See docs/compiler.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from earshot import bundle as bundle_mod
from earshot.quant import quantize_multiplier

from .models import STREAM_FRAMES

_LOGGER = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
ALIGN = 4
"""Arena offsets are multiples of this many bytes."""
STREAM_ROWS = STREAM_FRAMES
"""The default shift es_model_invoke_stream is compiled for: the input rows one firmware block
adds (``trainer.models.STREAM_FRAMES``, es_frontend.h ES_FRAMES_PER_BLOCK)."""


class CompileError(ValueError):
    """The model cannot be compiled; the message names the op, tensor or label."""


def ident(name: str) -> str:
    """Return ``name`` if it is a valid C identifier, else raise CompileError."""
    if not _IDENT.match(name):
        raise CompileError(f"{name!r} is not a valid C identifier")
    return name


@dataclass(frozen=True)
class Buffer:
    """One planned region of the arena (several aliasing tensors may share it)."""

    root: int
    """Index of the tensor that owns the region."""
    size: int
    """Bytes."""
    first: int
    """Index of the op that writes it."""
    last: int
    """Index of the last op that reads it (n_ops for the graph output)."""
    offset: int
    """Byte offset in the arena."""


@dataclass
class CompiledModel:
    """What ``compile_tflite`` produced."""

    c_path: Path
    """The generated ``<prefix>_model_data.c``."""
    h_path: Path
    """The generated header."""
    arena_bytes: int
    """Size of the static arena (end of the highest planned buffer)."""
    peak_live_bytes: int
    """Largest sum of simultaneously live buffers (a lower bound on any arena)."""
    buffers: list[Buffer]
    """The plan."""
    ops: list[str]
    """Op names in schedule order."""
    weight_bytes: int
    """Bytes of const data emitted (weights, biases, multipliers, tables)."""
    n_outputs: int = 0
    """int8 values the model writes."""
    extra: dict[str, Any] = field(default_factory=dict)
    streamed: dict[int, StreamStep] = field(default_factory=dict)
    """Op index -> how es_model_invoke_stream reuses that op's rows (empty: nothing streams)."""
    stream_rows: int = 0
    """Input rows per es_model_invoke_stream step (0 when no op streams)."""


# ---- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamStep:
    """How one op's output is updated by es_model_invoke_stream."""

    shift: int
    """Output rows the op's output moves up per step (its input's shift / its time stride)."""
    rows: int
    """Output rows (H)."""
    row_bytes: int
    """Bytes per output row (W * C)."""

    @property
    def row0(self) -> int:
        """First output row recomputed; rows above it are the previous call's rows moved up."""
        return self.rows - self.shift


_STREAM_FNS = {
    "es_conv2d_s8": "es_conv2d_rows_s8",
    "es_conv2d_x4_s8": "es_conv2d_x4_rows_s8",
    "es_depthwise_conv2d_s8": "es_depthwise_conv2d_rows_s8",
    "es_max_pool2d_s8": "es_max_pool2d_rows_s8",
    "es_avg_pool2d_s8": "es_avg_pool2d_rows_s8",
}
"""Kernels with a row-range (streaming) variant."""


def plan_stream(graph: Graph, calls: list[Call], rows: int) -> dict[int, StreamStep]:
    """Which ops' outputs can be updated row-wise when the input moves up by ``rows`` rows.

    Output row r of a window op (conv, depthwise, pool) without padding in height, filter
    height kh and stride sh reads input rows [r*sh, r*sh + kh). If its input moved up by s rows
    (s a multiple of sh) and s new rows were appended, row r now reads exactly what row r + s/sh
    read before whenever r*sh + kh <= H_in - s; with H_out = floor((H_in - kh) / sh) + 1 that
    holds exactly for r < H_out - s/sh. So those rows are the previous output moved up by s/sh
    rows, only the last s/sh rows are computed, and the output moves by s/sh rows per step:
    the next op may stream from it in turn. Any padding in height ends the chain for that
    tensor: top padding makes the first rows read zeros where they read data before, and bottom
    padding (SAME with an odd total puts it all there) makes the old last rows differ from the
    rows that replace them. So does a stride that does not divide the shift.
    """
    if rows <= 0:
        return {}
    shifts = {graph.input: rows}
    steps: dict[int, StreamStep] = {}
    for i, (op, call) in enumerate(zip(graph.ops, calls, strict=True)):
        s_in = shifts.get(op.inputs[0]) if op.inputs else None
        if not s_in or call.fn not in _STREAM_FNS:
            continue
        o = op.options
        ih = int(graph.tensors[op.inputs[0]].shape[1])
        out_shape = graph.tensors[op.outputs[0]].shape
        oh = int(out_shape[1])
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kh = int(graph.tensors[op.inputs[1]].shape[1])
        else:
            kh = int(o.filterHeight)
        sh = int(o.strideH)
        # the VALID output height means no padding at either end (SAME pads when it is larger)
        if ih < kh or oh != (ih - kh) // sh + 1 or s_in % sh:
            continue
        s_out = s_in // sh
        if s_out >= oh:
            continue
        steps[i] = StreamStep(s_out, oh, int(np.prod(out_shape[2:])))
        shifts[op.outputs[0]] = s_out
    return steps


def plan_arena(
    sizes: dict[int, int], first: dict[int, int], last: dict[int, int]
) -> tuple[list[Buffer], int, int]:
    """Greedy offset assignment: largest buffers first, each at the lowest aligned offset that
    does not overlap a placed buffer alive at the same time. Returns (plan, arena, peak)."""
    order = sorted(sizes, key=lambda r: (-sizes[r], first[r], r))
    placed: list[Buffer] = []
    for r in order:
        clashes = sorted(
            (b for b in placed if b.first <= last[r] and first[r] <= b.last),
            key=lambda b: b.offset,
        )
        off = 0
        for b in clashes:
            if off + sizes[r] <= b.offset:
                break
            off = max(off, _align(b.offset + b.size))
        placed.append(Buffer(r, sizes[r], first[r], last[r], off))
    arena = max((b.offset + b.size for b in placed), default=0)
    steps = range(min(first.values(), default=0), max(last.values(), default=0) + 1)
    peak = max((sum(b.size for b in placed if b.first <= t <= b.last) for t in steps), default=0)
    return sorted(placed, key=lambda b: b.offset), arena, peak


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ---- C text helpers ------------------------------------------------------------------------


def c_string(s: str) -> str:
    """A C string literal for ``s``: printable ASCII as is, everything else as octal escapes."""
    out = []
    for byte in s.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def validate_labels(labels: list[Any]) -> list[str]:
    """Labels must be non-empty, distinct strings without control characters."""
    if not labels:
        raise CompileError("the model has no labels")
    for lab in labels:
        if not isinstance(lab, str) or not lab:
            raise CompileError(f"label {lab!r} must be a non-empty string")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in lab):
            raise CompileError(f"label {lab!r} contains a control character")
    if len(set(labels)) != len(labels):
        raise CompileError(f"labels are not distinct: {labels}")
    return list(labels)


# ---- the compiler --------------------------------------------------------------------------


def compile_tflite(
    model_path: str | Path,
    out_dir: str | Path,
    labels: list[str],
    prefix: str = "es",
    sha256: str | None = None,
    name: str | None = None,
    any_input: bool = False,
    stream_rows: int = STREAM_ROWS,
) -> CompiledModel:
    """Compile ``model_path`` into ``out_dir/<prefix>_model_data.{c,h}``.

    ``stream_rows`` is the input shift es_model_invoke_stream is compiled for (0: none; see
    ``plan_stream``). Ops that stream keep their output between calls, so the planner gives
    their buffers the whole invocation: nothing else shares their bytes.

    ``any_input`` accepts any int8 input shape (tests compile one-op models with it): the
    input is then ``frames`` = dimension 1 (1 for a 2-D input) by ``bins`` = the rest.
    """
    model_path = Path(model_path)
    prefix = ident(prefix)
    labels = validate_labels(labels)
    sha = sha256 or bundle_mod.sha256_file(model_path)
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise CompileError(f"model sha256 {sha!r} is not 64 hex digits")
    graph = read_graph(model_path)
    emitted = lower(graph, prefix)
    n_in = graph.tensors[graph.input]
    n_out = graph.tensors[graph.output]
    frames, bins = _input_frames_bins(model_path, n_in.shape, any_input)
    outputs = int(np.prod(n_out.shape))
    if outputs != len(labels) and not (outputs == 1 and len(labels) == 2):
        raise CompileError(
            f"{model_path}: model has {outputs} outputs but {len(labels)} labels {labels}"
        )
    if stream_rows < 0:
        raise CompileError(f"stream_rows must be >= 0, got {stream_rows}")
    streamed = plan_stream(graph, emitted.calls, stream_rows)
    stream_rows = stream_rows if streamed else 0
    for i in streamed:
        out_root = emitted.root.get(graph.ops[i].outputs[0], graph.ops[i].outputs[0])
        emitted.first[out_root] = 0
        emitted.last[out_root] = len(graph.ops)
    plan, arena, peak = plan_arena(emitted.sizes, emitted.first, emitted.last)
    offsets = {b.root: b.offset for b in plan}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{prefix}_model_data"
    banner = f"generated by earshot-train compile from {model_path.name} sha256 {sha}; do not edit"
    in_scale = float(n_in.scale[0])
    in_mult, in_shift = quantize_multiplier(1.0 / in_scale)
    info = {
        "labels": labels,
        "n_outputs": outputs,
        "frames": frames,
        "bins": bins,
        "input_scale": in_scale,
        "input_zero_point": int(n_in.zero_point[0]),
        "input_multiplier": in_mult,
        "input_shift": in_shift,
        "output_scale": float(n_out.scale[0]),
        "output_zero_point": int(n_out.zero_point[0]),
        "sha256": sha,
        "arena": arena,
        "name": name or model_path.stem,
        "stream_rows": stream_rows,
        "streamed": streamed,
    }
    h_text = _header(prefix, stem, banner, info, emitted)
    c_text = _source(prefix, stem, banner, info, emitted, offsets, graph)
    h_path = out_dir / f"{stem}.h"
    c_path = out_dir / f"{stem}.c"
    h_path.write_text(h_text)
    c_path.write_text(c_text)
    _LOGGER.info(
        "compiled %s: %d ops (%d streamed), arena %d bytes (live peak %d), const data %d bytes "
        "-> %s",
        model_path.name,
        len(emitted.calls),
        len(streamed),
        arena,
        peak,
        emitted.const_bytes,
        c_path,
    )
    return CompiledModel(
        c_path,
        h_path,
        arena,
        peak,
        plan,
        [c.op for c in emitted.calls],
        emitted.const_bytes,
        outputs,
        streamed=streamed,
        stream_rows=stream_rows,
    )


def _input_frames_bins(path: Path, shape: tuple[int, ...], any_input: bool) -> tuple[int, int]:
    if not any_input:
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 1:
            raise CompileError(f"{path}: input shape {list(shape)} is not [1, frames, bins, 1]")
        return int(shape[1]), int(shape[2])
    total = int(np.prod(shape))
    frames = int(shape[1]) if len(shape) > 2 else 1
    if total // frames > 32767 or frames > 32767:
        raise CompileError(f"{path}: input shape {list(shape)} is too large")
    return frames, total // frames


def _header(prefix: str, stem: str, banner: str, info: dict[str, Any], em: Any) -> str:
    up = ident(prefix.upper())
    guard = ident(f"{stem.upper()}_H")
    lines = [
        f"/* {banner} */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        '#include "es_model.h"',
        "",
        f"#define {up}_MODEL_ARENA_BYTES {info['arena']}u /* static arena, planned peak */",
        f"#define {up}_MODEL_INPUT_FRAMES {info['frames']}",
        f"#define {up}_MODEL_INPUT_BINS {info['bins']}",
        f"#define {up}_MODEL_N_OUTPUTS {info['n_outputs']}",
        f"#define {up}_MODEL_N_LABELS {len(info['labels'])}",
        f'#define {up}_MODEL_SHA256 "{info["sha256"]}"',
        "",
    ]
    if prefix != "es":
        lines += [
            f"extern const EsModelInfo {ident(prefix + '_model_info')};",
            f"EsStatus {ident(prefix + '_model_invoke')}(const int8_t *input, int8_t *output);",
            f"EsStatus {ident(prefix + '_model_invoke_stream')}"
            "(const int8_t *input, int8_t *output);",
            "",
        ]
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _loc(t: int, graph: Any, em: Any, offsets: dict[int, int]) -> str:
    root = em.root.get(t, t)
    if root == graph.input:
        return "input"
    return f"(arena + {offsets[root]})"


def _source(
    prefix: str,
    stem: str,
    banner: str,
    info: dict[str, Any],
    em: Any,
    offsets: dict[int, int],
    graph: Any,
) -> str:
    labels_id = ident(f"k_{prefix}_labels")
    arena_id = ident(f"s_{prefix}_arena")
    n_lab = len(info["labels"])
    lines = [
        f"/* {banner} */",
        "#include <stddef.h>",
        "#include <string.h>",
        "",
        '#include "es_kernels.h"',
        f'#include "{stem}.h"',
        "",
        f"/* model: {info['name']} */",
        f"static const char *const {labels_id}[{n_lab}] = {{",
        *[f"    {c_string(lab)}," for lab in info["labels"]],
        "};",
        f"typedef char {ident(prefix + '_labels_count_check')}"
        f"[(sizeof {labels_id} / sizeof {labels_id}[0]) == {n_lab} ? 1 : -1];",
        "",
        *em.decls,
        "",
        f"static union {{ int32_t align; int8_t bytes[{max(info['arena'], 1)}]; }} {arena_id};",
        "",
        f"const EsModelInfo {ident(prefix + '_model_info')} = {{",
        f"    .labels = {labels_id},",
        f"    .n_labels = {n_lab},",
        f"    .n_outputs = {info['n_outputs']},",
        f"    .input_frames = {info['frames']},",
        f"    .input_bins = {info['bins']},",
        f"    .input_scale = {info['input_scale']!r}f,",
        f"    .input_zero_point = {info['input_zero_point']},",
        f"    .input_multiplier = {info['input_multiplier']},",
        f"    .input_shift = {info['input_shift']},",
        f"    .output_scale = {info['output_scale']!r}f,",
        f"    .output_zero_point = {info['output_zero_point']},",
        f'    .sha256 = "{info["sha256"]}",',
        f"    .arena_bytes = {info['arena']}u,",
        f"    .stream_rows = {info['stream_rows']},",
        f"    .streamed_ops = {len(info['streamed'])}u,",
        "};",
        "",
        "/* stream: the input is the previous call's, moved up by .stream_rows rows (es_model.h) */",
        "static EsStatus run_schedule(const int8_t *input, int8_t *output, int stream)",
        "{",
        *(
            [f"    int8_t *const arena = {arena_id}.bytes;", "    EsStatus st;"]
            if any(c.fn is not None for c in em.calls)
            else [f"    (void){arena_id};  /* no kernel calls: the output aliases the input */"]
        ),
        *([] if info["streamed"] else ["    (void)stream;  /* no op streams */"]),
        "    if (input == NULL || output == NULL) {",
        "        return ES_ERR_ARG;",
        "    }",
    ]
    for i, call in enumerate(em.calls):
        step = info["streamed"].get(i)
        lines.append(f"    /* {call.comment} */")
        if call.fn is None:
            continue
        args = [_loc(a, graph, em, offsets) if isinstance(a, int) else a for a in call.args]
        out = _loc(call.output, graph, em, offsets)
        if step is None:
            lines.append(f"    st = {call.fn}({', '.join([call.params, *args, out])});")
        else:
            keep = (step.rows - step.shift) * step.row_bytes
            lines += [
                f"    /* streamed: rows {step.row0}..{step.rows - 1} computed, the rest moved up "
                f"{step.shift} row(s) */",
                "    if (stream) {",
                f"        memmove({out}, {out} + {step.shift * step.row_bytes}, {keep}u);",
                "    }",
                f"    st = {_STREAM_FNS[call.fn]}("
                f"{', '.join([call.params, f'stream ? {step.row0} : 0', *args, out])});",
            ]
        lines += [
            "    if (st != ES_OK) {",
            "        return st;",
            "    }",
        ]
    out_loc = _loc(graph.output, graph, em, offsets)
    lines += [
        f"    memcpy(output, {out_loc}, {info['n_outputs']}u);",
        "    return ES_OK;",
        "}",
        "",
        f"EsStatus {ident(prefix + '_model_invoke')}(const int8_t *input, int8_t *output)",
        "{",
        "    return run_schedule(input, output, 0);",
        "}",
        "",
        f"EsStatus {ident(prefix + '_model_invoke_stream')}(const int8_t *input, int8_t *output)",
        "{",
        "    return run_schedule(input, output, 1);",
        "}",
        "",
    ]
    return "\n".join(lines)


def compile_bundle(
    path: str | Path, out_dir: str | Path | None, prefix: str, stream_rows: int = STREAM_ROWS
) -> CompiledModel:
    """Compile a bundle's int8 model; ``out_dir`` defaults to ``<bundle>/c``."""
    b = bundle_mod.load_bundle(path)
    out = Path(out_dir) if out_dir is not None else b.path / "c"
    return compile_tflite(
        b.model_path, out, b.labels, prefix, b.sha256, b.name, stream_rows=stream_rows
    )


def run(args: argparse.Namespace) -> int:
    m = compile_bundle(args.bundle, args.out, args.prefix, args.stream_rows)
    print(f"ops: {' '.join(m.ops)}")
    if m.streamed:
        print(
            f"streamed ({m.stream_rows} input rows per block): "
            + ", ".join(f"op {i} {m.ops[i]} rows {st.row0}..{st.rows - 1} of {st.rows}"
                        for i, st in m.streamed.items())
        )
    else:
        print("streamed: none (every block runs the whole model)")
    print(
        f"arena: {m.arena_bytes} bytes (live peak {m.peak_live_bytes}); "
        f"const data: {m.weight_bytes} bytes"
    )
    print(f"wrote {m.c_path} and {m.h_path}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compile",
        help="compile an RP2040 bundle's int8 .tflite into C (weights, static schedule, arena)",
        description=(
            "Emit <prefix>_model_data.c/.h implementing firmware/core/es_model.h. Ops outside "
            "the firmware's kernel set, or float tensors, are refused with the op's name."
        ),
    )
    p.add_argument("bundle", help="RP2040 bundle folder (with manifest.json and the int8 model)")
    p.add_argument("--out", default=None, help="output folder (default: <bundle>/c)")
    p.add_argument(
        "--prefix",
        default="es",
        help="C identifier prefix of the generated symbols and files (default: es)",
    )
    p.add_argument(
        "--stream-rows",
        type=int,
        default=STREAM_ROWS,
        metavar="N",
        help="input rows (spectrogram frames) one firmware block adds; ops whose output rows "
        "can be reused across blocks are compiled to compute only the new rows in "
        f"es_model_invoke_stream; 0 turns streaming off (default: {STREAM_ROWS})",
    )
    p.set_defaults(func=run)


# ---- reading the flatbuffer ----------------------------------------------------------------

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
_SAME, _VALID = 0, 1
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3


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

    def op_names(self) -> list[str]:
        return [op.name for op in self.ops]


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


# ---- lowering: one handler per op ----------------------------------------------------------


@dataclass
class Call:
    """One kernel call of the schedule."""

    op: str
    comment: str
    fn: str | None
    """Kernel function, or None for a RESHAPE (aliasing, no code)."""
    params: str
    args: list[int | str]
    """Input tensor indices, or C expressions for constant operands."""
    output: int


@dataclass
class Emitted:
    """Declarations, schedule and lifetimes produced by ``lower``."""

    prefix: str
    decls: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    sizes: dict[int, int] = field(default_factory=dict)
    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    root: dict[int, int] = field(default_factory=dict)
    const_bytes: int = 0

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        """Emit a const array; returns its identifier."""
        name = ident(name)
        flat = [int(v) for v in np.asarray(values).reshape(-1)]
        rows = [", ".join(str(v) for v in flat[i : i + 16]) for i in range(0, len(flat), 16)]
        self.decls.append(f"static const {ctype} {name}[{len(flat)}] = {{")
        self.decls += [f"    {r}," for r in rows]
        self.decls.append("};")
        self.const_bytes += len(flat) * (1 if ctype == "int8_t" else 2 if ctype == "int16_t" else 4)
        return name

    def struct(self, name: str, ctype: str, fields: dict[str, Any]) -> str:
        """Emit a const parameter struct with designated initialisers; returns ``&name``."""
        name = ident(name)
        self.decls.append(f"static const {ctype} {name} = {{")
        for k, v in fields.items():
            self.decls.append(f"    .{ident(k)} = {_c_value(v)},")
        self.decls.append("};")
        return f"&{name}"


def _c_value(v: Any) -> str:
    if isinstance(v, tuple):
        return "{" + ", ".join(_c_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f".{ident(k)} = {_c_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        iv = int(v)
        return "INT32_MIN" if iv == -(1 << 31) else str(iv)
    return str(v)


def lower(graph: Graph, prefix: str) -> Emitted:
    """Check every op and tensor, emit params and calls, record buffer lifetimes."""
    em = Emitted(prefix)
    for i, op in enumerate(graph.ops):
        handler = _HANDLERS.get(op.name)
        if handler is None:
            raise CompileError(
                f"{graph.path.name}: op {op.name} (#{i}) is not supported by the firmware's "
                f"kernels (supported: {', '.join(sorted(_HANDLERS))})"
            )
        _check_types(graph, i, op)
        call = handler(graph, i, op, em)
        em.calls.append(call)
        _track(graph, em, i, op, call)
    out_root = em.root.get(graph.output, graph.output)
    if out_root in em.last:
        em.last[out_root] = len(graph.ops)
    return em


def _check_types(graph: Graph, i: int, op: OpInfo) -> None:
    for t in op.inputs + op.outputs:
        if t < 0:
            continue
        ti = graph.tensors[t]
        const = ti.data is not None
        if ti.dtype == "int8" or (ti.dtype == "int32" and const):
            continue
        raise CompileError(
            f"{graph.path.name}: op {op.name} (#{i}) uses {ti.dtype} tensor {ti.name!r}; "
            "the firmware runs full-int8 models only"
        )


def _track(graph: Graph, em: Emitted, i: int, op: OpInfo, call: Call) -> None:
    for t in call.args:
        if isinstance(t, int):
            r = em.root.get(t, t)
            if r in em.first:
                em.last[r] = max(em.last[r], i)
    out = call.output
    if call.fn is None:  # alias: the output shares its input's buffer
        src = op.inputs[0]
        em.root[out] = em.root.get(src, src)
        return
    em.root[out] = out
    em.sizes[out] = graph.tensors[out].nbytes
    em.first[out] = i
    em.last[out] = i


def _t(graph: Graph, idx: int) -> TensorInfo:
    return graph.tensors[idx]


def _hwc(graph: Graph, idx: int, what: str) -> tuple[int, int, int]:
    t = graph.tensors[idx]
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise CompileError(
            f"{graph.path.name}: {what} tensor {t.name!r} has shape "
            f"{list(t.shape)}, expected [1, H, W, C]"
        )
    return int(t.shape[1]), int(t.shape[2]), int(t.shape[3])


def _qparams(t: TensorInfo) -> tuple[float, int]:
    if not t.scale:
        raise CompileError(f"tensor {t.name!r} is not quantised")
    return float(np.float32(t.scale[0])), int(t.zero_point[0]) if t.zero_point else 0


def _round_away(x: np.ndarray | float) -> np.ndarray:
    """round() of C (half away from zero), exactly, for float32 or float64 values."""
    v = np.asarray(x, np.float64)
    t = np.trunc(v)
    return t + np.sign(v) * (np.abs(v - t) >= 0.5)


def _act_range(fused: int, out: TensorInfo, where: str) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output."""
    scale, zp = _qparams(out)

    def q(f: float) -> int:
        return zp + int(_round_away(np.float32(f) / np.float32(scale)))

    if fused == _ACT_NONE:
        return -128, 127
    if fused == _ACT_RELU:
        return max(-128, q(0.0)), 127
    if fused == _ACT_RELU6:
        return max(-128, q(0.0)), min(127, q(6.0))
    if fused == _ACT_RELU_N1_TO_1:
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise CompileError(f"{where}: fused activation {fused} is not supported")


def _pad(padding: int, stride: int, size_in: int, filt: int, size_out: int) -> int:
    if padding == _VALID:
        return 0
    return max(0, ((size_out - 1) * stride + filt - size_in) // 2)


def _where(graph: Graph, i: int, op: OpInfo) -> str:
    return f"{graph.path.name}: op {op.name} (#{i})"


def _conv_like(graph: Graph, i: int, op: OpInfo, em: Emitted, depthwise: bool) -> Call:
    where = _where(graph, i, op)
    o = op.options
    if (o.dilationHFactor, o.dilationWFactor) != (1, 1):
        raise CompileError(
            f"{where}: dilation {o.dilationHFactor}x{o.dilationWFactor} is not supported (only 1)"
        )
    x, w, out = op.inputs[0], op.inputs[1], op.outputs[0]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    ih, iw, ic = _hwc(graph, x, "input")
    oh, ow, oc = _hwc(graph, out, "output")
    wt = _t(graph, w)
    if wt.data is None:
        raise CompileError(f"{where}: filter {wt.name!r} is not constant")
    if any(z != 0 for z in wt.zero_point):
        raise CompileError(f"{where}: filter {wt.name!r} is not symmetrically quantised")
    kh, kw = int(wt.shape[1]), int(wt.shape[2])
    if depthwise:
        if wt.shape[3] != oc or oc % ic:
            raise CompileError(f"{where}: depthwise filter shape {list(wt.shape)} does not fit")
        dm = oc // ic
    else:
        if wt.shape[0] != oc or wt.shape[3] != ic:
            raise CompileError(
                f"{where}: filter shape {list(wt.shape)} does not fit "
                f"input channels {ic} / output channels {oc}"
            )
        dm = 1
    s_in, zp_in = _qparams(_t(graph, x))
    s_out, zp_out = _qparams(_t(graph, out))
    fscales = wt.scale if len(wt.scale) > 1 else wt.scale * oc
    mults, shifts = zip(
        *(
            quantize_multiplier(
                float(np.float32(s_in)) * float(np.float32(fs)) / float(np.float32(s_out))
            )
            for fs in fscales
        ),
        strict=True,
    )
    lo, hi = _act_range(o.fusedActivationFunction, _t(graph, out), where)
    base = f"k_{em.prefix}_op{i}"
    fields: dict[str, Any] = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "kh": kh,
        "kw": kw,
        "stride_h": o.strideH,
        "stride_w": o.strideW,
        "pad_h": _pad(o.padding, o.strideH, ih, kh, oh),
        "pad_w": _pad(o.padding, o.strideW, iw, kw, ow),
        "depth_multiplier": dm,
        "input_offset": -zp_in,
        "output_offset": zp_out,
        "act_min": lo,
        "act_max": hi,
        "filter": em.array(base + "_filter", "int8_t", wt.data),
        "bias": em.array(base + "_bias", "int32_t", _t(graph, bias).data) if bias >= 0 else "NULL",
        "mult": em.array(base + "_mult", "int32_t", np.array(mults)),
        "shift": em.array(base + "_shift", "int32_t", np.array(shifts)),
    }
    if not depthwise and kh * kw * ic <= CONV_PATCH_MAX:
        x4 = em.array(base + "_filter_x4", "int32_t", filter_x4(wt.data))
        params = em.struct(base, "EsConvX4Params", {"conv": fields, "filter_x4": x4})
        fn = "es_conv2d_x4_s8"
    else:
        params = em.struct(base, "EsConvParams", fields)
        fn = "es_depthwise_conv2d_s8" if depthwise else "es_conv2d_s8"
    return Call(
        op.name, f"op {i}: {op.name} {kh}x{kw}/{o.strideH} -> {oh}x{ow}x{oc}", fn, params, [x], out
    )


CONV_PATCH_MAX = 256
"""es_kernels.h ES_CONV_PATCH_MAX: largest kh*kw*in_c of the CONV_2D fast path."""


def filter_x4(weights: np.ndarray) -> np.ndarray:
    """CONV_2D weights [oc][kh][kw][ic] as int32 [ceil(oc/4)][kh*kw*ic][4], zero past oc.

    The layout of EsConvParams.filter_x4: the fast kernel walks one output pixel's patch once
    per group of 4 output channels and loads the group's 4 weights of each tap in a row.
    """
    oc = int(weights.shape[0])
    k = int(np.prod(weights.shape[1:]))
    groups = -(-oc // 4)
    w = np.zeros((groups * 4, k), np.int32)
    w[:oc] = np.asarray(weights, np.int32).reshape(oc, k)
    return w.reshape(groups, 4, k).transpose(0, 2, 1)


def _conv(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    return _conv_like(graph, i, op, em, depthwise=False)


def _dwconv(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    return _conv_like(graph, i, op, em, depthwise=True)


def _fully_connected(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    where = _where(graph, i, op)
    x, w, out = op.inputs[0], op.inputs[1], op.outputs[0]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    wt = _t(graph, w)
    if wt.data is None or len(wt.shape) != 2:
        raise CompileError(f"{where}: weights {wt.name!r} must be a constant 2-D tensor")
    n_out, depth = int(wt.shape[0]), int(wt.shape[1])
    n_in = int(np.prod(_t(graph, x).shape))
    if n_in % depth:
        raise CompileError(f"{where}: input of {n_in} values is not a multiple of {depth}")
    s_in, zp_in = _qparams(_t(graph, x))
    s_out, zp_out = _qparams(_t(graph, out))
    per_channel = len(wt.scale) > 1
    if per_channel:
        # PopulateConvolutionQuantizationParams: double products.
        reals = [float(np.float32(s_in)) * float(np.float32(fs)) / s_out for fs in wt.scale]
    else:
        # GetQuantizedConvolutionMultipler: the input*filter product is taken in float32.
        reals = [float(np.float32(s_in) * np.float32(wt.scale[0])) / s_out]
    mults, shifts = zip(*(quantize_multiplier(r) for r in reals), strict=True)
    lo, hi = _act_range(op.options.fusedActivationFunction, _t(graph, out), where)
    base = f"k_{em.prefix}_op{i}"
    fields = {
        "batches": n_in // depth,
        "in_depth": depth,
        "out_depth": n_out,
        "input_offset": -zp_in,
        "filter_offset": -(wt.zero_point[0] if wt.zero_point else 0),
        "output_offset": zp_out,
        "act_min": lo,
        "act_max": hi,
        "per_channel": 1 if per_channel else 0,
        "filter": em.array(base + "_filter", "int8_t", wt.data),
        "bias": em.array(base + "_bias", "int32_t", _t(graph, bias).data) if bias >= 0 else "NULL",
        "mult": em.array(base + "_mult", "int32_t", np.array(mults)),
        "shift": em.array(base + "_shift", "int32_t", np.array(shifts)),
    }
    params = em.struct(base, "EsFullyConnectedParams", fields)
    return Call(
        op.name,
        f"op {i}: FULLY_CONNECTED {depth} -> {n_out}",
        "es_fully_connected_s8",
        params,
        [x],
        out,
    )


def _pool(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    where = _where(graph, i, op)
    o = op.options
    x, out = op.inputs[0], op.outputs[0]
    ih, iw, ic = _hwc(graph, x, "input")
    oh, ow, oc = _hwc(graph, out, "output")
    if _qparams(_t(graph, x)) != _qparams(_t(graph, out)):
        raise CompileError(f"{where}: input and output quantisation differ")
    lo, hi = _act_range(o.fusedActivationFunction, _t(graph, out), where)
    fields = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "fh": o.filterHeight,
        "fw": o.filterWidth,
        "stride_h": o.strideH,
        "stride_w": o.strideW,
        "pad_h": _pad(o.padding, o.strideH, ih, o.filterHeight, oh),
        "pad_w": _pad(o.padding, o.strideW, iw, o.filterWidth, ow),
        "act_min": lo,
        "act_max": hi,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsPoolParams", fields)
    fn = "es_max_pool2d_s8" if op.name == "MAX_POOL_2D" else "es_avg_pool2d_s8"
    return Call(
        op.name,
        f"op {i}: {op.name} {o.filterHeight}x{o.filterWidth} -> {oh}x{ow}x{oc}",
        fn,
        params,
        [x],
        out,
    )


def _resize_bilinear(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    ih, iw, ic = _hwc(graph, x, "input")
    oh, ow, oc = _hwc(graph, out, "output")
    o = op.options
    fields = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "align_corners": int(bool(o.alignCorners)),
        "half_pixel_centers": int(bool(o.halfPixelCenters)),
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsResizeBilinearParams", fields)
    return Call(
        op.name,
        f"op {i}: RESIZE_BILINEAR {ih}x{iw} -> {oh}x{ow}",
        "es_resize_bilinear_s8",
        params,
        [x],
        out,
    )


def nearest_index(n_in: int, n_out: int, align: bool, half: bool) -> np.ndarray:
    """Source index per output index, as the reference's float GetNearestNeighbor computes it."""
    f32 = np.float32
    if align and n_out > 1:
        scale = f32(n_in - 1) / f32(n_out - 1)
    else:
        scale = f32(n_in) / f32(n_out)
    offset = f32(0.5) if half else f32(0.0)
    v = (np.arange(n_out).astype(f32) + offset) * scale
    idx = _round_away(v) if align else np.floor(v.astype(np.float64))
    idx = np.minimum(idx.astype(np.int64), n_in - 1)
    if half:
        idx = np.maximum(idx, 0)
    return idx


def _resize_nearest(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    ih, iw, ic = _hwc(graph, x, "input")
    oh, ow, oc = _hwc(graph, out, "output")
    o = op.options
    base = f"k_{em.prefix}_op{i}"
    a, h = bool(o.alignCorners), bool(o.halfPixelCenters)
    fields = {
        "in": (ih, iw, ic),
        "out": (oh, ow, oc),
        "src_y": em.array(base + "_src_y", "int16_t", nearest_index(ih, oh, a, h)),
        "src_x": em.array(base + "_src_x", "int16_t", nearest_index(iw, ow, a, h)),
    }
    params = em.struct(base, "EsResizeNearestParams", fields)
    return Call(
        op.name,
        f"op {i}: RESIZE_NEAREST_NEIGHBOR {ih}x{iw} -> {oh}x{ow}",
        "es_resize_nearest_s8",
        params,
        [x],
        out,
    )


def _reshape(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    if _t(graph, x).nbytes != _t(graph, out).nbytes:
        raise CompileError(f"{_where(graph, i, op)}: element counts differ")
    if _qparams(_t(graph, x)) != _qparams(_t(graph, out)):
        raise CompileError(f"{_where(graph, i, op)}: input and output quantisation differ")
    return Call(
        op.name,
        f"op {i}: RESHAPE {list(_t(graph, x).shape)} -> "
        f"{list(_t(graph, out).shape)} (aliases its input)",
        None,
        "",
        [x],
        out,
    )


def calculate_input_radius(int_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """TFLite CalculateInputRadius."""
    v = 1.0 * ((1 << int_bits) - 1) * (1 << (total_bits - int_bits)) / (1 << left_shift)
    return int(math.floor(v))


def _check_prob_output(graph: Graph, i: int, op: OpInfo) -> None:
    s, zp = _qparams(_t(graph, op.outputs[0]))
    if s != 1.0 / 256 or zp != -128:
        raise CompileError(
            f"{_where(graph, i, op)}: int8 output must have scale 1/256 and "
            f"zero point -128, has {s} and {zp}"
        )


def _softmax(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    _check_prob_output(graph, i, op)
    s_in, _ = _qparams(_t(graph, x))
    beta = float(np.float32(op.options.beta))
    real = min(beta * s_in * (1 << (31 - 5)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    shape = _t(graph, x).shape
    depth = int(shape[-1])
    fields = {
        "rows": int(np.prod(shape)) // depth,
        "depth": depth,
        "input_multiplier": mult,
        "input_left_shift": shift,
        "diff_min": -calculate_input_radius(5, shift),
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsSoftmaxParams", fields)
    return Call(op.name, f"op {i}: SOFTMAX over {depth}", "es_softmax_s8", params, [x], out)


def _logistic(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    _check_prob_output(graph, i, op)
    s_in, zp_in = _qparams(_t(graph, x))
    mult, shift = quantize_multiplier(s_in * float(1 << (31 - 4)))
    fields = {
        "size": int(np.prod(_t(graph, x).shape)),
        "input_zero_point": zp_in,
        "input_range_radius": calculate_input_radius(4, shift),
        "input_multiplier": mult,
        "input_left_shift": shift,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsLogisticParams", fields)
    return Call(op.name, f"op {i}: LOGISTIC", "es_logistic_s8", params, [x], out)


def mean_multiplier(n: int, s_in: float, s_out: float) -> tuple[int, int]:
    """(multiplier, shift) of the integer MEAN: ``MBQM(sum - n*zp_in, m, s) + zp_out``.

    TFLite's reference kernels (2.21) and TFLM both fold 1/n into the rescale
    (``QuantizedMeanOrSum``): ``QuantizeMultiplier(s_in/s_out)`` in double, then
    ``k = min(floor(log2 n), 32, 31 + shift)``, ``m = (m << k) / n`` (integer, truncating) and
    ``shift -= k``. Measured: the same for keep_dims true and false and for equal or different
    input/output quantisation (tests/test_kernels.py).
    """
    if n <= 0:
        raise CompileError(f"mean over {n} elements")
    mult, shift = quantize_multiplier(float(s_in) / float(s_out))
    k = min(n.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // n), shift - k


def _mean(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    where = _where(graph, i, op)
    x, axis, out = op.inputs[0], op.inputs[1], op.outputs[0]
    ih, iw, ic = _hwc(graph, x, "input")
    ax = _t(graph, axis).data
    if ax is None or sorted(int(a) % 4 for a in ax.reshape(-1)) != [1, 2]:
        raise CompileError(f"{where}: only a mean over H and W (axes 1, 2) is supported")
    if ih * iw > (1 << 23):
        raise CompileError(f"{where}: mean over {ih * iw} elements is too large")
    keep = bool(op.options.keepDims)
    s_in, zp_in = _qparams(_t(graph, x))
    s_out, zp_out = _qparams(_t(graph, out))
    mult, shift = mean_multiplier(ih * iw, s_in, s_out)
    fields = {
        "in": (ih, iw, ic),
        "input_zero_point": zp_in,
        "output_zero_point": zp_out,
        "mult": mult,
        "shift": shift,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsMeanParams", fields)
    return Call(
        op.name,
        f"op {i}: MEAN over {ih}x{iw} ({'keep' if keep else 'drop'} dims)",
        "es_mean_hw_s8",
        params,
        [x],
        out,
    )


def _strides4(shape: tuple[int, ...], out4: list[int]) -> tuple[int, ...]:
    s = [1] * (4 - len(shape)) + [int(d) for d in shape]
    strides = [0, 0, 0, 0]
    acc = 1
    for k in range(3, -1, -1):
        strides[k] = 0 if s[k] == 1 and out4[k] != 1 else acc
        acc *= s[k]
    return tuple(strides)


def _binary(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    where = _where(graph, i, op)
    a, b, out = op.inputs[0], op.inputs[1], op.outputs[0]
    ta, tb, to = _t(graph, a), _t(graph, b), _t(graph, out)
    if len(to.shape) > 4:
        raise CompileError(f"{where}: more than 4 dimensions")
    out4 = [1] * (4 - len(to.shape)) + [int(d) for d in to.shape]
    s1, z1 = _qparams(ta)
    s2, z2 = _qparams(tb)
    so, zo = _qparams(to)
    lo, hi = _act_range(op.options.fusedActivationFunction, to, where)
    base = f"k_{em.prefix}_op{i}"
    f: dict[str, Any] = {
        "op": {"ADD": "ES_BIN_ADD", "SUB": "ES_BIN_SUB", "MUL": "ES_BIN_MUL"}[op.name],
        "out_dims": tuple(out4),
        "in1_strides": _strides4(ta.shape, out4),
        "in2_strides": _strides4(tb.shape, out4),
        "input1_offset": -z1,
        "input2_offset": -z2,
        "output_offset": zo,
    }
    if op.name == "MUL":
        om, osh = quantize_multiplier(s1 * s2 / so)
        f.update(
            left_shift=0,
            input1_multiplier=0,
            input1_shift=0,
            input2_multiplier=0,
            input2_shift=0,
            output_multiplier=om,
            output_shift=osh,
        )
    else:
        twice = 2.0 * max(s1, s2)
        m1, sh1 = quantize_multiplier(s1 / twice)
        m2, sh2 = quantize_multiplier(s2 / twice)
        om, osh = quantize_multiplier(twice / ((1 << 20) * so))
        f.update(
            left_shift=20,
            input1_multiplier=m1,
            input1_shift=sh1,
            input2_multiplier=m2,
            input2_shift=sh2,
            output_multiplier=om,
            output_shift=osh,
        )
    f.update(act_min=lo, act_max=hi)
    args: list[int | str] = []
    for k, t in ((1, ta), (2, tb)):
        if t.data is not None:
            args.append(em.array(f"{base}_in{k}", "int8_t", t.data))
        else:
            args.append(t.index)
    params = em.struct(base, "EsBinaryParams", f)
    return Call(
        op.name, f"op {i}: {op.name} -> {list(to.shape)}", "es_binary_s8", params, args, out
    )


def _quantize(graph: Graph, i: int, op: OpInfo, em: Emitted) -> Call:
    x, out = op.inputs[0], op.outputs[0]
    s_in, zp_in = _qparams(_t(graph, x))
    s_out, zp_out = _qparams(_t(graph, out))
    mult, shift = quantize_multiplier(s_in / s_out)
    fields = {
        "size": int(np.prod(_t(graph, x).shape)),
        "input_zero_point": zp_in,
        "output_zero_point": zp_out,
        "mult": mult,
        "shift": shift,
    }
    params = em.struct(f"k_{em.prefix}_op{i}", "EsRequantizeParams", fields)
    return Call(op.name, f"op {i}: QUANTIZE int8 -> int8", "es_requantize_s8", params, [x], out)


_HANDLERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _dwconv,
    "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": _pool,
    "AVERAGE_POOL_2D": _pool,
    "RESIZE_BILINEAR": _resize_bilinear,
    "RESIZE_NEAREST_NEIGHBOR": _resize_nearest,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "MEAN": _mean,
    "ADD": _binary,
    "SUB": _binary,
    "MUL": _binary,
    "QUANTIZE": _quantize,
}
