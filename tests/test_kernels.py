"""Per-kernel tests: each op of firmware/core/es_kernels.c in isolation, as a one-op int8 TFLite
model written here (flatbuffer object API), compiled by ``earshot-train compile``'s compiler,
built by gcc (UBSan) into a host library and called through ctypes, against TFLite's reference
kernels (BUILTIN_REF) and the TFLite Micro interpreter.

Rule (docs/compiler.md): the C equals TFLM on every input; it equals the reference wherever the
reference and TFLM agree. Where they differ the test names the op and bounds how often.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

from trainer import compiler  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "firmware" / "core"
CACHE = REPO / "build" / "test-kernels"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion"]
SANITIZE = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
TIMEOUT_S = 300

# ---- one-op TFLite models -------------------------------------------------------------------

_VERSIONS = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "MAX_POOL_2D": 2,
    "AVERAGE_POOL_2D": 2,
    "SOFTMAX": 2,
    "LOGISTIC": 2,
    "RESIZE_BILINEAR": 3,
    "RESIZE_NEAREST_NEIGHBOR": 3,
    "RESHAPE": 1,
    "MEAN": 2,
    "ADD": 2,
    "SUB": 2,
    "MUL": 2,
    "QUANTIZE": 2,
}
"""Operator versions that declare int8 (and the options used here) to both interpreters."""


@dataclass(frozen=True)
class T:
    """One tensor of a one-op model."""

    shape: tuple[int, ...]
    """Dimensions."""
    scale: float | tuple[float, ...] = 1.0
    """Quantisation scale (a tuple: per channel along ``qdim``)."""
    zero_point: int | tuple[int, ...] = 0
    """Quantisation zero point(s)."""
    data: np.ndarray | None = field(default=None, compare=False)
    """Constant contents (int8 or int32), or None for a variable tensor."""
    dtype: str = "int8"
    """``int8`` or ``int32``."""
    qdim: int = 0
    """Quantised dimension of per-channel scales."""


def _fb() -> Any:
    from ai_edge_litert import schema_py_generated as fb

    return fb


def options(op: str, **kw: Any) -> tuple[int, Any]:
    """(BuiltinOptions type, options object) for ``op`` with fields ``kw`` (schema names)."""
    fb = _fb()
    kinds = {
        "CONV_2D": "Conv2DOptions",
        "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
        "FULLY_CONNECTED": "FullyConnectedOptions",
        "MAX_POOL_2D": "Pool2DOptions",
        "AVERAGE_POOL_2D": "Pool2DOptions",
        "SOFTMAX": "SoftmaxOptions",
        "RESIZE_BILINEAR": "ResizeBilinearOptions",
        "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
        "RESHAPE": "ReshapeOptions",
        "MEAN": "ReducerOptions",
        "ADD": "AddOptions",
        "SUB": "SubOptions",
        "MUL": "MulOptions",
        "QUANTIZE": "QuantizeOptions",
    }
    if op not in kinds:
        return 0, None
    obj = getattr(fb, kinds[op] + "T")()
    for k, v in kw.items():
        if not hasattr(obj, k):
            raise AttributeError(f"{kinds[op]} has no field {k}")
        setattr(obj, k, v)
    return getattr(fb.BuiltinOptions, kinds[op]), obj


def _pack(model: Any) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def one_op_model(op: str, inputs: list[T | None], output: T, **opts: Any) -> bytes:
    """A .tflite holding one ``op``; variable inputs become the graph inputs, in order."""
    fb = _fb()
    tensors, buffers, ins, graph_in = [], [fb.BufferT()], [], []
    for k, t in enumerate([*inputs, output]):
        if t is None:
            ins.append(-1)
            continue
        tt = fb.TensorT()
        tt.shape = list(t.shape)
        tt.type = fb.TensorType.INT8 if t.dtype == "int8" else fb.TensorType.INT32
        tt.name = f"t{k}"
        q = fb.QuantizationParametersT()
        scales = t.scale if isinstance(t.scale, tuple) else (t.scale,)
        zps = t.zero_point if isinstance(t.zero_point, tuple) else (t.zero_point,) * len(scales)
        q.scale, q.zeroPoint, q.quantizedDimension = list(scales), list(zps), t.qdim
        tt.quantization = q
        tt.buffer = 0
        if t.data is not None:
            buf = fb.BufferT()
            arr = np.asarray(t.data, np.int8 if t.dtype == "int8" else "<i4").reshape(t.shape)
            buf.data = list(arr.tobytes())
            buffers.append(buf)
            tt.buffer = len(buffers) - 1
        tensors.append(tt)
        if k < len(inputs):
            ins.append(len(tensors) - 1)
            if t.data is None:
                graph_in.append(len(tensors) - 1)
    code = fb.OperatorCodeT()
    code.builtinCode = getattr(fb.BuiltinOperator, op)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = _VERSIONS.get(op, 1)
    o = fb.OperatorT()
    o.opcodeIndex = 0
    o.inputs, o.outputs = ins, [len(tensors) - 1]
    o.builtinOptionsType, o.builtinOptions = options(op, **opts)
    sg = fb.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, graph_in, [len(tensors) - 1], [o]
    m = fb.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, [code], [sg], buffers
    m.description = f"one {op}"
    return _pack(m)


def extract_op(model: bytes, index: int) -> bytes:
    """Op ``index`` of a converted model alone (its constants kept), as a one-op model."""
    fb = _fb()
    src = fb.ModelT.InitFromPackedBuf(model, 0)
    g = src.subgraphs[0]
    op = g.operators[index]
    keep = [t for t in op.inputs if t >= 0] + list(op.outputs)
    remap = {t: k for k, t in enumerate(dict.fromkeys(keep))}
    buffers, tensors, graph_in = [fb.BufferT()], [], []
    for t in remap:
        tt = g.tensors[t]
        b = src.buffers[tt.buffer]
        if b.data is not None and len(b.data):
            buffers.append(b)
            tt.buffer = len(buffers) - 1
        else:
            tt.buffer = 0
            if t in op.inputs:
                graph_in.append(remap[t])
        tt.shapeSignature = None
        tensors.append(tt)
    code = src.operatorCodes[op.opcodeIndex]
    op.opcodeIndex = 0
    op.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
    op.outputs = [remap[t] for t in op.outputs]
    sg = fb.SubGraphT()
    sg.tensors, sg.inputs, sg.operators = tensors, graph_in, [op]
    sg.outputs = list(op.outputs)
    m = fb.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, [code], [sg], buffers
    return _pack(m)


# ---- oracles ----------------------------------------------------------------------------------


def reference(model: bytes, xs: np.ndarray) -> np.ndarray:
    """Outputs of TFLite's reference kernels (BUILTIN_REF), one row per input."""
    it = tf.lite.Interpreter(
        model_content=model,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
    )
    it.allocate_tensors()
    ind, outd = it.get_input_details()[0], it.get_output_details()[0]
    rows = []
    for x in xs:
        it.set_tensor(ind["index"], np.asarray(x, np.int8).reshape(ind["shape"]))
        it.invoke()
        rows.append(it.get_tensor(outd["index"]).reshape(-1).copy())
    return np.array(rows, np.int8)


def micro(model: bytes, xs: np.ndarray) -> np.ndarray:
    """Outputs of the TFLite Micro interpreter, one row per input."""
    it = runtime.Interpreter.from_bytes(model, arena_size=_micro_arena(model))
    shape = it.get_input_details(0)["shape"]
    rows = []
    for x in xs:
        it.set_input(np.asarray(x, np.int8).reshape(shape), 0)
        it.invoke()
        rows.append(np.asarray(it.get_output(0)).reshape(-1).copy())
    return np.array(rows, np.int8)


def _micro_arena(model: bytes) -> int:
    """A TFLM arena comfortably above what the model's tensors need."""
    g = _fb().ModelT.InitFromPackedBuf(model, 0).subgraphs[0]
    return 4 * sum(int(np.prod(t.shape)) * 4 for t in g.tensors) + 64 * 1024


# ---- the C side -------------------------------------------------------------------------------


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
        f"{proc.stderr.decode(errors='replace')}"
    )
    return proc


class CModels:
    """Several .tflite models compiled to C (one prefix each) and built into one host library
    (``trainer.compiler.build_host``: gcc, warnings as errors, UBSan), called through ctypes.

    The library lives under ``build/test-kernels/``, named by a hash of the generated C, the
    kernel sources and the flags, so an unchanged set is not rebuilt."""

    def __init__(self, models: list[bytes], work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        compiled = []
        for k, model in enumerate(models):
            path = work / f"m{k}.tflite"
            path.write_bytes(model)
            compiled.append(
                compiler.compile_tflite(path, work, _labels(model), prefix=f"m{k}", any_input=True)
            )
        self.models = compiler.build_host(compiled, CACHE)
        for k in range(len(models)):
            graph = compiler.read_graph(work / f"m{k}.tflite")
            assert self.models[k].n_inputs == int(np.prod(graph.tensors[graph.input].shape))

    def run(self, k: int, xs: np.ndarray) -> np.ndarray:
        """Outputs of model ``k`` for each input row of ``xs``."""
        xs = np.ascontiguousarray(xs, np.int8).reshape(len(xs), -1)
        assert xs.shape[1] == self.models[k].n_inputs
        return self.models[k].invoke_many(xs)


def _labels(model: bytes) -> list[str]:
    fb = _fb()
    g = fb.ModelT.InitFromPackedBuf(model, 0).subgraphs[0]
    n = int(np.prod(g.tensors[g.outputs[0]].shape))
    return ["neg", "pos"] if n == 1 else [f"o{i}" for i in range(n)]


# ---- the cases ----------------------------------------------------------------------------------

N_RANDOM = 150
"""Random inputs per case, on top of the edge rows (all -128, all 127, alternating, ramp)."""

FC_REF_DIFFERS = 0.10
"""FULLY_CONNECTED is the one op where TFLite's reference kernel and TFLM differ: the reference
(TF 2.21, BUILTIN_REF) rescales the int32 accumulator in floating point from the float scales
(measured: it equals round(acc * s_in * s_w / s_out) on every input), TFLM uses the integer
MultiplyByQuantizedMultiplier (QuantizeMultiplier, then two roundings). They disagree by one
step on 1-5 % of random inputs (more output units, more often). The firmware follows TFLM. A
1x1 CONV_2D computes the same product and is identical in both (case conv_1x1_as_dense)."""
REF_DIFFERS = {
    name: FC_REF_DIFFERS
    for name in ("fc_per_tensor", "fc_per_tensor_saturating", "fc_per_channel",
                 "fc_per_channel_relu")
}
"""Cases where the two oracles may disagree, with the largest allowed fraction of inputs."""


def _i8(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


def _bias(rng: np.random.Generator, n: int, scale: int = 2000) -> np.ndarray:
    return rng.integers(-scale, scale, n).astype(np.int32)


def _cases() -> dict[str, bytes]:
    """Every case: name -> one-op model. Deterministic (fixed seed)."""
    rng = np.random.default_rng(1234)
    c: dict[str, bytes] = {}
    i32 = "int32"

    def conv(name: str, shape: tuple[int, int, int], oc: int, k: int, stride: int,
             padding: int, fscales: tuple[float, ...], act: int = 0,
             zp_in: int = -5, zp_out: int = 3, s_in: float = 0.5, s_out: float = 0.1) -> None:
        h, w, ic = shape
        oh = -(-h // stride) if padding == 0 else (h - k) // stride + 1
        ow = -(-w // stride) if padding == 0 else (w - k) // stride + 1
        bias_scales = tuple(s_in * f for f in fscales)
        c[name] = one_op_model(
            "CONV_2D",
            [T((1, h, w, ic), s_in, zp_in),
             T((oc, k, k, ic), fscales, (0,) * oc, _i8(rng, oc, k, k, ic)),
             T((oc,), bias_scales, (0,) * oc, _bias(rng, oc), i32)],
            T((1, oh, ow, oc), s_out, zp_out),
            padding=padding, strideW=stride, strideH=stride, fusedActivationFunction=act,
            dilationWFactor=1, dilationHFactor=1,
        )

    # Per-channel multipliers with shifts of both signs: s_in*s_f/s_out = 0.1 ... 40.
    conv("conv_same_s2_odd", (7, 9, 3), 4, 3, 2, 0, (0.02, 8.0, 0.3, 0.001))
    conv("conv_same_s2_even_kernel", (9, 11, 2), 3, 4, 2, 0, (0.05, 0.5, 2.0), act=3)
    conv("conv_valid_relu", (10, 8, 1), 8, 3, 1, 1, tuple(np.geomspace(0.001, 1.0, 8)),
         act=1, zp_in=-128, zp_out=-128, s_in=0.02, s_out=0.05)
    conv("conv_1x1_as_dense", (1, 1, 288), 50, 1, 1, 1,
         tuple(float(x) for x in np.geomspace(0.002, 0.05, 50)), zp_in=-20, s_in=0.1, s_out=0.2)
    conv("conv_seed_8x8_s2", (32, 32, 1), 8, 8, 2, 1, tuple(np.geomspace(0.004, 0.02, 8)),
         act=1, zp_in=12, zp_out=-128, s_in=0.03, s_out=0.02)

    def dw(name: str, shape: tuple[int, int, int], dm: int, stride: int, padding: int,
           act: int = 0, zp_in: int = 7, s_in: float = 0.25, s_out: float = 0.05) -> None:
        h, w, ic = shape
        oc = ic * dm
        oh = -(-h // stride) if padding == 0 else (h - 3) // stride + 1
        ow = -(-w // stride) if padding == 0 else (w - 3) // stride + 1
        fs = tuple(float(x) for x in np.geomspace(0.002, 3.0, oc))
        c[name] = one_op_model(
            "DEPTHWISE_CONV_2D",
            [T((1, h, w, ic), s_in, zp_in),
             T((1, 3, 3, oc), fs, (0,) * oc, _i8(rng, 1, 3, 3, oc), qdim=3),
             T((oc,), tuple(s_in * f for f in fs), (0,) * oc, _bias(rng, oc), i32)],
            T((1, oh, ow, oc), s_out, -10),
            padding=padding, strideW=stride, strideH=stride, depthMultiplier=dm,
            fusedActivationFunction=act, dilationWFactor=1, dilationHFactor=1,
        )

    dw("dw_same_s2_odd_dm2", (9, 7, 3), 2, 2, 0)
    dw("dw_valid_s1_relu", (6, 6, 4), 1, 1, 1, act=1)

    def fc(name: str, n_in: int, n_out: int, fscales: tuple[float, ...], act: int = 0,
           zp_in: int = -20, s_in: float = 0.1, s_out: float = 0.2, bias: bool = True) -> None:
        ins = [T((1, n_in), s_in, zp_in),
               T((n_out, n_in), fscales, (0,) * len(fscales), _i8(rng, n_out, n_in))]
        ins.append(T((n_out,), tuple(s_in * f for f in fscales) if len(fscales) > 1
                     else s_in * fscales[0], 0, _bias(rng, n_out, 20000), i32) if bias else None)
        c[name] = one_op_model("FULLY_CONNECTED", ins, T((1, n_out), s_out, 5),
                               fusedActivationFunction=act)

    fc("fc_per_tensor", 288, 50, (0.01,))
    fc("fc_per_tensor_saturating", 64, 10, (0.2,), zp_in=-128, s_out=0.05)
    fc("fc_per_channel", 288, 50, tuple(float(x) for x in np.geomspace(0.002, 0.05, 50)))
    fc("fc_per_channel_relu", 24, 4, (0.01, 0.02, 0.04, 0.08), act=1, bias=False)

    def pool(name: str, op: str, shape: tuple[int, int, int], k: int, stride: int,
             padding: int, act: int = 0) -> None:
        h, w, ch = shape
        oh = -(-h // stride) if padding == 0 else (h - k) // stride + 1
        ow = -(-w // stride) if padding == 0 else (w - k) // stride + 1
        c[name] = one_op_model(op, [T((1, h, w, ch), 0.1, -3)], T((1, oh, ow, ch), 0.1, -3),
                               padding=padding, strideW=stride, strideH=stride,
                               filterWidth=k, filterHeight=k, fusedActivationFunction=act)

    pool("maxpool_valid_2", "MAX_POOL_2D", (13, 13, 8), 2, 2, 1)
    pool("maxpool_same_s2_odd_relu", "MAX_POOL_2D", (7, 9, 3), 3, 2, 0, act=1)
    # 4-channel groups and a remainder, SAME edges, relu6 clamping
    pool("maxpool_same_s3_7ch_relu6", "MAX_POOL_2D", (11, 10, 7), 4, 3, 0, act=3)
    pool("avgpool_valid_4", "AVERAGE_POOL_2D", (124, 129, 1), 4, 4, 1)
    pool("avgpool_same_s2_odd", "AVERAGE_POOL_2D", (7, 9, 3), 3, 2, 0)

    def softmax(name: str, n: int, s_in: float, beta: float = 1.0) -> None:
        c[name] = one_op_model("SOFTMAX", [T((1, n), s_in, 10)], T((1, n), 1 / 256, -128),
                               beta=beta)

    softmax("softmax_4", 4, 0.1)
    softmax("softmax_10_wide", 10, 0.8)
    softmax("softmax_3_narrow_beta", 3, 0.01, beta=2.0)

    def logistic(name: str, n: int, s_in: float, zp: int) -> None:
        c[name] = one_op_model("LOGISTIC", [T((1, n), s_in, zp)], T((1, n), 1 / 256, -128))

    logistic("logistic_narrow", 16, 0.02, -7)
    logistic("logistic_wide", 16, 0.3, 40)

    def resize(name: str, op: str, hw: tuple[int, int], out: tuple[int, int], ch: int,
               align: bool = False, half: bool = False) -> None:
        c[name] = one_op_model(
            op, [T((1, *hw, ch), 0.1, -128), T((2,), 1.0, 0, np.array(out, np.int32), i32)],
            T((1, *out, ch), 0.1, -128), alignCorners=align, halfPixelCenters=half,
        )

    resize("bilinear_seed", "RESIZE_BILINEAR", (124, 129), (32, 32), 1)
    resize("bilinear_up_half_pixel", "RESIZE_BILINEAR", (5, 7), (11, 13), 2, half=True)
    resize("bilinear_align", "RESIZE_BILINEAR", (6, 9), (4, 17), 1, align=True)
    resize("nearest_down", "RESIZE_NEAREST_NEIGHBOR", (20, 24), (13, 17), 1)
    resize("nearest_up_half_pixel", "RESIZE_NEAREST_NEIGHBOR", (5, 7), (11, 13), 2, half=True)
    resize("nearest_align", "RESIZE_NEAREST_NEIGHBOR", (6, 9), (4, 17), 1, align=True)

    def mean(name: str, shape: tuple[int, int, int], keep: bool, q_in: tuple[float, int],
             q_out: tuple[float, int]) -> None:
        h, w, ch = shape
        c[name] = one_op_model(
            "MEAN", [T((1, h, w, ch), *q_in), T((2,), 1.0, 0, np.array([1, 2], np.int32), i32)],
            T((1, 1, 1, ch) if keep else (1, ch), *q_out), keepDims=keep,
        )

    mean("mean_drop_dims_rescale", (8, 8, 24), False, (0.05, -128), (0.02, -128))
    mean("mean_keep_dims_rescale", (5, 7, 3), True, (0.013, 17), (0.11, -20))
    mean("mean_same_qparams", (3, 3, 4), False, (0.05, -3), (0.05, -3))
    mean("mean_tiny_scale", (8, 8, 6), True, (0.001, -128), (0.0004, -128))

    def binary(name: str, op: str, shape: tuple[int, ...], other: tuple[int, ...],
               q1: tuple[float, int], q2: tuple[float, int], qo: tuple[float, int],
               act: int = 0) -> None:
        opts = {"fusedActivationFunction": act}
        c[name] = one_op_model(
            op, [T(shape, *q1), T(other, *q2, _i8(rng, *other))], T(shape, *qo), **opts
        )

    binary("sub_broadcast_scalar", "SUB", (1, 31, 32, 1), (1, 1, 1, 1),
           (0.5, -128), (0.4, 0), (1.0, -60))
    binary("add_channels_relu6", "ADD", (1, 5, 6, 8), (1, 1, 1, 8),
           (0.05, -7), (0.1, 20), (0.04, -100), act=3)
    binary("add_saturating", "ADD", (1, 4, 4, 2), (1, 4, 4, 2), (1.0, 0), (1.0, 0), (0.5, 0))
    binary("mul_broadcast_row", "MUL", (1, 3, 4, 5), (1, 1, 4, 5),
           (0.1, -9), (0.05, 6), (0.07, 2))

    c["reshape"] = one_op_model(
        "RESHAPE", [T((1, 6, 6, 8), 0.1, 3), T((2,), 1.0, 0, np.array([1, 288], np.int32), i32)],
        T((1, 288), 0.1, 3), newShape=[1, 288],
    )
    c["quantize_requant"] = one_op_model(
        "QUANTIZE", [T((1, 40), 0.07, -20)], T((1, 40), 0.03, 9)
    )
    return c


def _inputs(model: bytes, n: int, seed: int) -> np.ndarray:
    g = _fb().ModelT.InitFromPackedBuf(model, 0).subgraphs[0]
    size = int(np.prod(g.tensors[g.inputs[0]].shape))
    rng = np.random.default_rng(seed)
    xs = rng.integers(-128, 128, (n, size))
    low = np.clip(rng.normal(-100, 30, (n // 3, size)), -128, 127)
    xs[: n // 3] = low.astype(np.int64)
    edges = np.array([
        np.full(size, -128), np.full(size, 127), np.resize([-128, 127], size),
        np.resize(np.arange(-128, 128), size), np.zeros(size),
    ])
    return np.concatenate([edges, xs]).astype(np.int8)


CASES = _cases()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> CModels:
    """All cases compiled into one sanitised harness (cached under build/test-kernels)."""
    return CModels(list(CASES.values()), tmp_path_factory.mktemp("kernels"))


@pytest.mark.parametrize("name", list(CASES))
def test_kernel_matches_tflm_and_reference(name: str, harness: CModels) -> None:
    model = CASES[name]
    k = list(CASES).index(name)
    xs = _inputs(model, N_RANDOM, seed=k)
    got = harness.run(k, xs)
    ref, mic = reference(model, xs), micro(model, xs)
    assert got.shape == mic.shape
    bad = np.nonzero(np.any(got != mic, axis=1))[0]
    assert bad.size == 0, (
        f"{name}: C differs from TFLM on {bad.size}/{len(xs)} inputs; first #{bad[0]}:\n"
        f"in  {xs[bad[0]][:16]}\nC   {got[bad[0]][:16]}\nTFLM {mic[bad[0]][:16]}"
    )
    differ = np.any(ref != mic, axis=1)
    allowed = REF_DIFFERS.get(name, 0.0)
    assert differ.mean() <= allowed, (
        f"{name}: TFLite reference and TFLM disagree on {differ.sum()}/{len(xs)} inputs "
        f"(allowed {allowed:.0%})"
    )
    assert np.abs(ref.astype(int) - mic).max() <= 1, f"{name}: oracles differ by more than 1"
    # The inputs must exercise the op: outputs vary and are not all saturated.
    assert len({r.tobytes() for r in got}) > 1, f"{name}: outputs do not vary"


def test_softmax_of_equal_inputs_is_uniform_and_logistic_saturates(harness: CModels) -> None:
    """What a user reads off the scores: equal logits give equal probabilities (1/4 is
    -128 + 64), and the sigmoid's extremes reach the int8 ends, in C as in both oracles."""
    names = list(CASES)
    sm = names.index("softmax_4")
    xs = np.array([[v] * 4 for v in (-128, -1, 0, 127)], np.int8)
    got = harness.run(sm, xs)
    assert (got == -64).all(), got
    assert np.array_equal(got, micro(CASES["softmax_4"], xs))
    assert np.array_equal(got, reference(CASES["softmax_4"], xs))
    lg = names.index("logistic_wide")
    xs = np.array([[-128] * 16, [127] * 16, [40] * 16], np.int8)
    got = harness.run(lg, xs)
    assert (got[0] == -128).all() and (got[1] == 127).all(), got
    assert (got[2] == 0).all(), "logistic(0) is 1/2 = -128 + 128"
    assert np.array_equal(got, micro(CASES["logistic_wide"], xs))
    assert np.array_equal(got, reference(CASES["logistic_wide"], xs))


PRECONDITIONS = r"""
#include <stdio.h>
#include "es_kernels.h"
#define CHECK(expr, want) do { EsStatus s_ = (expr); if (s_ != (want)) { \
    printf("%s: got %s want %s\n", #expr, es_status_str(s_), es_status_str(want)); bad++; } \
    } while (0)
int main(void) {
    int bad = 0;
    int8_t buf[64] = {0}, out[64];
    const int8_t w[9] = {1};
    const int32_t m[1] = {1 << 30}, s[1] = {0};
    const EsDims d = {2, 2, 1}, zero = {0, 2, 1};
    EsConvParams cv = {d, {1, 1, 1}, 2, 2, 1, 1, 0, 0, 1, 0, 0, -128, 127, w, NULL, m, s};
    CHECK(es_conv2d_s8(NULL, buf, out), ES_ERR_ARG);
    CHECK(es_conv2d_s8(&cv, NULL, out), ES_ERR_ARG);
    CHECK(es_conv2d_s8(&cv, buf, out), ES_OK);
    cv.in = zero;
    CHECK(es_conv2d_s8(&cv, buf, out), ES_ERR_SHAPE);
    CHECK(es_depthwise_conv2d_s8(&cv, buf, NULL), ES_ERR_ARG);
    CHECK(es_depthwise_conv2d_s8(&cv, buf, out), ES_ERR_SHAPE);
    EsFullyConnectedParams fc = {1, 4, 1, 0, 0, 0, -128, 127, 0, w, NULL, m, s};
    CHECK(es_fully_connected_s8(&fc, buf, out), ES_OK);
    fc.act_min = 10; fc.act_max = 0;
    CHECK(es_fully_connected_s8(&fc, buf, out), ES_ERR_SHAPE);
    fc.filter = NULL;
    CHECK(es_fully_connected_s8(&fc, buf, out), ES_ERR_ARG);
    EsPoolParams pl = {d, {1, 1, 1}, 2, 2, 2, 2, 0, 0, -128, 127};
    CHECK(es_max_pool2d_s8(&pl, buf, out), ES_OK);
    pl.stride_h = 0;
    CHECK(es_avg_pool2d_s8(&pl, buf, out), ES_ERR_SHAPE);
    EsSoftmaxParams sm = {1, 4, 1 << 30, 1, -100};
    CHECK(es_softmax_s8(&sm, buf, out), ES_OK);
    sm.depth = 0;
    CHECK(es_softmax_s8(&sm, buf, out), ES_ERR_SHAPE);
    sm.depth = 4; sm.input_left_shift = -1;
    CHECK(es_softmax_s8(&sm, buf, out), ES_ERR_RANGE);
    EsLogisticParams lg = {0, 0, 100, 1 << 30, 1};
    CHECK(es_logistic_s8(&lg, buf, out), ES_ERR_SHAPE);
    CHECK(es_logistic_s8(NULL, buf, out), ES_ERR_ARG);
    EsMeanParams mn = {d, 0, 0, 1 << 30, -2};
    CHECK(es_mean_hw_s8(&mn, buf, out), ES_OK);
    mn.shift = -40;
    CHECK(es_mean_hw_s8(&mn, buf, out), ES_ERR_RANGE);
    mn.in = zero;
    CHECK(es_mean_hw_s8(&mn, buf, out), ES_ERR_SHAPE);
    EsResizeBilinearParams rb = {d, {3, 3, 2}, 0, 0};
    CHECK(es_resize_bilinear_s8(&rb, buf, out), ES_ERR_SHAPE);
    const int16_t idx[2] = {0, 5};
    EsResizeNearestParams rn = {d, {2, 2, 1}, idx, idx};
    CHECK(es_resize_nearest_s8(&rn, buf, out), ES_ERR_RANGE);
    EsBinaryParams bp = {ES_BIN_ADD, {1, 1, 1, 0}, {0}, {0}, 0, 0, 0, 20, 1, 0, 1, 0, 1, 0,
                         -128, 127};
    CHECK(es_binary_s8(&bp, buf, buf, out), ES_ERR_SHAPE);
    CHECK(es_binary_s8(&bp, buf, NULL, out), ES_ERR_ARG);
    EsRequantizeParams rq = {0, 0, 0, 1 << 30, 0};
    CHECK(es_requantize_s8(&rq, buf, out), ES_ERR_SHAPE);
    return bad ? 1 : 0;
}
"""


def test_kernels_check_their_preconditions(tmp_path: Path) -> None:
    """NULL pointers, empty shapes and out-of-range parameters give the documented EsStatus;
    no kernel touches memory on a rejected call (ASan would report it)."""
    src = tmp_path / "pre.c"
    src.write_text(PRECONDITIONS)
    exe = tmp_path / "pre"
    _run(["gcc", *CFLAGS, *SANITIZE, "-I", str(CORE), str(CORE / "es_kernels.c"),
          str(CORE / "es_common.c"), str(src), "-o", str(exe)])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
