"""``compile_tflite``: the passes in order (read, lower, plan, emit) and what they give, a
``CompiledModel``."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from earshot import bundle as bundle_mod
from earshot.detector import (
    TIMING_LIMITS,
    DetectorConfig,
    bundle_ignore,
    bundle_policy,
    device_policy,
    timing_rules,
)
from earshot.frontends import MCU_FRONTENDS
from earshot.quant import log_mag_breakpoints, log_mag_int8_table, quantize_multiplier

from . import emit_c, host
from .c_text import ident
from .errors import CompileError
from .lower import lower
from .plan import STREAM_ROWS, Buffer, StreamStep, plan_arena, plan_stream
from .tflite_graph import read_graph

_LOGGER = logging.getLogger(__name__)


@dataclass
class CompiledModel:
    """What ``compile_tflite`` produced."""

    prefix: str
    """C identifier prefix of the generated symbols (``<prefix>_model_invoke``, ...)."""
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
    n_outputs: int
    """int8 values the model writes."""
    streamed: dict[int, StreamStep] = field(default_factory=dict)
    """Op index -> how es_model_invoke_stream reuses that op's rows (empty: nothing streams)."""
    stream_rows: int = 0
    """Input rows per es_model_invoke_stream step (0 when no op streams)."""
    policy: DetectorConfig | None = None
    """The detector policy emitted as ``<prefix>_model_policy`` (thresholds in levels)."""

    @property
    def policy_text(self) -> str:
        """The emitted policy in one line (``earshot-train compile`` prints it)."""
        p = self.policy
        if p is None:
            return "none"
        thr = ", ".join(f"{x} {t:.4f}" for x, t in zip(p.labels, p.thresholds, strict=True))
        return (f"thresholds {thr}; never fire: {', '.join(sorted(p.ignore)) or 'none'}; "
                f"window {p.average_window_ms} ms, min count {p.min_count}, "
                f"suppression {p.suppression_ms} ms")

    def build_host(self, folder: Path | None = None, sanitize: bool = True) -> host.HostModel:
        """gcc the model with the portable core into a shared library and load it: ``invoke``,
        ``invoke_stream`` and ``info`` by ctypes. ``folder`` defaults to ``host/`` next to the C
        (not the C's own folder: the firmware's CMake build compiles every .c there)."""
        return build_host([self], folder or self.c_path.parent / "host", sanitize)[0]


def build_host(
    models: Sequence[CompiledModel], folder: Path, sanitize: bool = True
) -> list[host.HostModel]:
    """Several compiled models (distinct prefixes) in one host library, in the given order."""
    prefixes = [m.prefix for m in models]
    if len(set(prefixes)) != len(prefixes):
        raise CompileError(f"one library needs distinct prefixes, got {prefixes}")
    lib = host.build_library([m.c_path for m in models], Path(folder), sanitize)
    return [lib.model(p) for p in prefixes]


def compile_tflite(
    model_path: str | Path,
    out_dir: str | Path,
    labels: list[str],
    prefix: str = "es",
    sha256: str | None = None,
    name: str | None = None,
    any_input: bool = False,
    stream_rows: int = STREAM_ROWS,
    policy: DetectorConfig | None = None,
    frontend: str = "q15",
) -> CompiledModel:
    """Compile ``model_path`` into ``out_dir/<prefix>_model_data.{c,h}``.

    ``frontend`` is the features the model was trained on, ``q15`` or ``q15log`` (the firmware
    computes both; a q15log model carries its int8 input table as breakpoints).

    ``policy`` is the detector the firmware runs (``<prefix>_model_policy``; default: the
    default ``earshot.detector.bundle_policy`` of a softmax model with ``labels``), emitted as
    ``earshot.detector.device_policy`` gives it (thresholds in levels of 1/256).

    ``stream_rows`` is the input shift es_model_invoke_stream is compiled for (0: none; see
    ``plan.plan_stream``). Ops that stream keep their output between calls, so the planner
    gives their buffers the whole invocation: nothing else shares their bytes.

    ``any_input`` accepts any int8 input shape (tests compile one-op models with it): the
    input is then ``frames`` = dimension 1 (1 for a 2-D input) by ``bins`` = the rest.
    """
    model_path = Path(model_path)
    prefix = ident(prefix)
    labels = emit_c.validate_labels(labels)
    sha = sha256 or bundle_mod.sha256_file(model_path)
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise CompileError(f"model sha256 {sha!r} is not 64 hex digits")
    graph = read_graph(model_path)
    lowered = lower(graph, prefix)
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
    streamed = plan_stream(graph, lowered.calls, stream_rows)
    stream_rows = stream_rows if streamed else 0
    for i in streamed:
        out_root = lowered.root.get(graph.ops[i].outputs[0], graph.ops[i].outputs[0])
        lowered.first[out_root] = 0
        lowered.last[out_root] = len(graph.ops)
    plan, arena, peak = plan_arena(lowered.sizes, lowered.first, lowered.last)
    offsets = {b.root: b.offset for b in plan}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{prefix}_model_data"
    banner = f"generated by earshot-train compile from {model_path.name} sha256 {sha}; do not edit"
    in_scale = float(n_in.scale[0])
    in_mult, in_shift = quantize_multiplier(1.0 / in_scale)
    if frontend not in MCU_FRONTENDS:
        raise CompileError(f"{model_path}: front end {frontend!r}: the firmware computes "
                           f"{' and '.join(MCU_FRONTENDS)} features only")  # fmt: skip
    log_input = None
    if frontend == "q15log":
        starts, values = log_mag_breakpoints(log_mag_int8_table(in_scale, int(n_in.zero_point[0])))
        log_input = (lowered.array(f"k_{prefix}_log_starts", "uint16_t", starts),
                     lowered.array(f"k_{prefix}_log_values", "int8_t", values), len(starts))  # fmt: skip
    info = emit_c.ModelInfo(
        labels=labels,
        n_outputs=outputs,
        frames=frames,
        bins=bins,
        input_scale=in_scale,
        input_zero_point=int(n_in.zero_point[0]),
        input_multiplier=in_mult,
        input_shift=in_shift,
        output_scale=float(n_out.scale[0]),
        output_zero_point=int(n_out.zero_point[0]),
        sha256=sha,
        arena=arena,
        name=name or model_path.stem,
        stream_rows=stream_rows,
        streamed=streamed,
        policy=device_policy(policy or bundle_policy(labels, "softmax", {})),
        log_input=log_input,
    )
    if tuple(info.policy.labels) != tuple(labels):
        raise CompileError(f"policy labels {info.policy.labels} differ from the model's {labels}")
    h_path = out_dir / f"{stem}.h"
    c_path = out_dir / f"{stem}.c"
    h_path.write_text(emit_c.header(prefix, stem, banner, info))
    c_path.write_text(emit_c.source(prefix, stem, banner, info, lowered, offsets, graph))
    _LOGGER.info(
        "compiled %s: %d ops (%d streamed), arena %d bytes (live peak %d), const data %d bytes "
        "-> %s",
        model_path.name,
        len(lowered.calls),
        len(streamed),
        arena,
        peak,
        lowered.const_bytes,
        c_path,
    )
    return CompiledModel(
        prefix=prefix,
        c_path=c_path,
        h_path=h_path,
        arena_bytes=arena,
        peak_live_bytes=peak,
        buffers=plan,
        ops=[c.op for c in lowered.calls],
        weight_bytes=lowered.const_bytes,
        n_outputs=outputs,
        streamed=streamed,
        stream_rows=stream_rows,
        policy=info.policy,
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


def policy_of(b: bundle_mod.Bundle, **rules: Any) -> DetectorConfig:
    """A bundle's detector policy (``earshot.detector.bundle_policy``): its thresholds, its
    activation, its own ``detector.ignore`` plus ``rules['ignore']``, and the timing ``rules``
    (``threshold_offset``, ``average_window_ms``, ``min_count``, ``suppression_ms``; a timing
    rule that is None or absent is the bundle's own, else the default)."""
    extra = list(rules.pop("ignore", ()))
    try:
        timing = timing_rules(b.manifest, **{k: rules.pop(k, None) for k in TIMING_LIMITS})
        return bundle_policy(
            b.labels, b.manifest["output"].get("activation", "softmax"), b.thresholds,
            ignore=[*bundle_ignore(b.manifest), *extra], **rules,
            average_window_ms=timing["average_window_ms"], min_count=timing["min_count"],
            suppression_ms=timing["suppression_ms"],
        )  # fmt: skip
    except ValueError as e:
        raise CompileError(f"bundle {b.path}: detector policy: {e}") from e


MAX_DETECTOR_LABELS = 32
"""es_detector.h's ES_DETECTOR_MAX_LABELS: the bits of its ignore mask."""


def compile_bundle(
    path: str | Path,
    out_dir: str | Path | None,
    prefix: str,
    stream_rows: int = STREAM_ROWS,
    **rules: Any,
) -> CompiledModel:
    """Compile a bundle's int8 model and its detector policy (:func:`policy_of` with
    ``rules``); ``out_dir`` defaults to ``<bundle>/c``."""
    b = bundle_mod.load_bundle(path)
    if len(b.labels) > MAX_DETECTOR_LABELS:
        raise CompileError(f"bundle {b.path}: the firmware detector takes at most "
                           f"{MAX_DETECTOR_LABELS} labels, the model has {len(b.labels)}")
    out = Path(out_dir) if out_dir is not None else b.path / "c"
    return compile_tflite(
        b.model_path, out, b.labels, prefix, b.sha256, b.name, stream_rows=stream_rows,
        policy=policy_of(b, **rules), frontend=b.frontend().name,
    )  # fmt: skip
