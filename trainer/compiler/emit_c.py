"""The C emitter: ``<prefix>_model_data.h`` and ``.c`` from the lowered schedule and the plans.

The source holds the lowering's const declarations, the labels, one static arena, the
``EsModelInfo`` record and ``run_schedule`` (one checked kernel call per op; streamed ops move
their kept rows up and recompute only the newest), behind ``<prefix>_model_invoke`` and
``<prefix>_model_invoke_stream`` (firmware/core/es_model.h).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from earshot.detector import DetectorConfig, threshold_level

from .c_text import c_string, ident
from .errors import CompileError
from .lower import Lowered
from .plan import STREAM_FNS, StreamStep
from .tflite_graph import Graph


@dataclass(frozen=True)
class ModelInfo:
    """The values of the emitted ``EsModelInfo`` (es_model.h), and the model's name."""

    labels: list[str]
    n_outputs: int
    frames: int
    bins: int
    input_scale: float
    input_zero_point: int
    input_multiplier: int
    input_shift: int
    output_scale: float
    output_zero_point: int
    sha256: str
    arena: int
    name: str
    stream_rows: int
    streamed: dict[int, StreamStep]
    policy: DetectorConfig
    """The detector policy, as the device runs it (``earshot.detector.device_policy``)."""
    log_input: tuple[str, str, int] | None = None
    """q15log models: the identifiers of the emitted breakpoint arrays (starts, values) and
    their length (``earshot.quant.log_mag_breakpoints``); None for q15 models."""


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


def header(prefix: str, stem: str, banner: str, info: ModelInfo) -> str:
    """The generated header: sizes as macros; for a prefix other than ``es``, the prefixed
    declarations of what es_model.h declares."""
    up = ident(prefix.upper())
    guard = ident(f"{stem.upper()}_H")
    lines = [
        f"/* {banner} */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        '#include "es_model.h"',
        "",
        f"#define {up}_MODEL_ARENA_BYTES {info.arena}u /* static arena, planned peak */",
        f"#define {up}_MODEL_INPUT_FRAMES {info.frames}",
        f"#define {up}_MODEL_INPUT_BINS {info.bins}",
        f"#define {up}_MODEL_N_OUTPUTS {info.n_outputs}",
        f"#define {up}_MODEL_N_LABELS {len(info.labels)}",
        f'#define {up}_MODEL_SHA256 "{info.sha256}"',
        "",
    ]
    if prefix != "es":
        lines += [
            f"extern const EsModelInfo {ident(prefix + '_model_info')};",
            f"extern const EsModelPolicy {ident(prefix + '_model_policy')};",
            f"EsStatus {ident(prefix + '_model_invoke')}(const int8_t *input, int8_t *output);",
            f"EsStatus {ident(prefix + '_model_invoke_stream')}"
            "(const int8_t *input, int8_t *output);",
            "",
        ]
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def policy_lines(prefix: str, info: ModelInfo) -> list[str]:
    """``<prefix>_model_policy``: the detector policy as C constants (es_model.h)."""
    pol = info.policy
    # A bundle with more labels than the detector's 32 is refused by compile_bundle; a one-op
    # test model may have more outputs: its policy is emitted for the first 32 bits, and
    # es_detector_init refuses it (the kernels never need a detector).
    mask = sum(1 << i for i, lab in enumerate(pol.labels) if lab in pol.ignore and i < 32)
    thr_id = ident(f"k_{prefix}_thresholds")
    levels = [threshold_level(t) for t in pol.thresholds]
    never = ", ".join(sorted(pol.ignore)) or "none"
    return [
        "/* detector policy (earshot.detector.bundle_policy -> device_policy); never fire: "
        f"{never} */",
        f"static const uint16_t {thr_id}[{len(levels)}] = {{{', '.join(f'{v}u' for v in levels)}}};",
        f"const EsModelPolicy {ident(prefix + '_model_policy')} = {{",
        f"    .thresholds = {thr_id},",
        f"    .ignore_mask = 0x{mask:08x}u,",
        f"    .average_window_ms = {pol.average_window_ms}u,",
        f"    .min_count = {pol.min_count}u,",
        f"    .suppression_ms = {pol.suppression_ms}u,",
        f"    .max_history = {pol.max_history}u,",
        "};",
        "",
    ]


def _loc(t: int, graph: Graph, em: Lowered, offsets: dict[int, int]) -> str:
    root = em.root.get(t, t)
    if root == graph.input:
        return "input"
    return f"(arena + {offsets[root]})"


def source(
    prefix: str,
    stem: str,
    banner: str,
    info: ModelInfo,
    em: Lowered,
    offsets: dict[int, int],
    graph: Graph,
) -> str:
    """The generated source (``offsets``: arena offset of each planned buffer's root)."""
    labels_id = ident(f"k_{prefix}_labels")
    arena_id = ident(f"s_{prefix}_arena")
    n_lab = len(info.labels)
    lines = [
        f"/* {banner} */",
        "#include <stddef.h>",
        "#include <string.h>",
        "",
        '#include "es_kernels.h"',
        f'#include "{stem}.h"',
        "",
        f"/* model: {info.name} */",
        f"static const char *const {labels_id}[{n_lab}] = {{",
        *[f"    {c_string(lab)}," for lab in info.labels],
        "};",
        f"typedef char {ident(prefix + '_labels_count_check')}"
        f"[(sizeof {labels_id} / sizeof {labels_id}[0]) == {n_lab} ? 1 : -1];",
        "",
        *em.decls,
        "",
        f"static union {{ int32_t align; int8_t bytes[{max(info.arena, 1)}]; }} {arena_id};",
        "",
        f"const EsModelInfo {ident(prefix + '_model_info')} = {{",
        f"    .labels = {labels_id},",
        f"    .n_labels = {n_lab},",
        f"    .n_outputs = {info.n_outputs},",
        f"    .input_frames = {info.frames},",
        f"    .input_bins = {info.bins},",
        f"    .input_scale = {info.input_scale!r}f,",
        f"    .input_zero_point = {info.input_zero_point},",
        f"    .input_multiplier = {info.input_multiplier},",
        f"    .input_shift = {info.input_shift},",
        f"    .output_scale = {info.output_scale!r}f,",
        f"    .output_zero_point = {info.output_zero_point},",
        f'    .sha256 = "{info.sha256}",',
        f"    .arena_bytes = {info.arena}u,",
        f"    .stream_rows = {info.stream_rows},",
        f"    .streamed_ops = {len(info.streamed)}u,",
        *(
            [f"    .input_log_starts = {info.log_input[0]},",
             f"    .input_log_values = {info.log_input[1]},",
             f"    .input_log_count = {info.log_input[2]}u,"]
            if info.log_input
            else ["    .input_log_starts = NULL,", "    .input_log_values = NULL,",
                  "    .input_log_count = 0u,"]
        ),  # fmt: skip
        "};",
        "",
        *policy_lines(prefix, info),
        "/* stream: the input is the previous call's, moved up by .stream_rows rows (es_model.h) */",
        "static EsStatus run_schedule(const int8_t *input, int8_t *output, int stream)",
        "{",
        *(
            [f"    int8_t *const arena = {arena_id}.bytes;", "    EsStatus st;"]
            if any(c.fn is not None for c in em.calls)
            else [f"    (void){arena_id};  /* no kernel calls: the output aliases the input */"]
        ),
        *([] if info.streamed else ["    (void)stream;  /* no op streams */"]),
        "    if (input == NULL || output == NULL) {",
        "        return ES_ERR_ARG;",
        "    }",
    ]
    for i, call in enumerate(em.calls):
        step = info.streamed.get(i)
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
                f"    st = {STREAM_FNS[call.fn]}("
                f"{', '.join([call.params, f'stream ? {step.row0} : 0', *args, out])});",
            ]
        lines += [
            "    if (st != ES_OK) {",
            "        return st;",
            "    }",
        ]
    out_loc = _loc(graph.output, graph, em, offsets)
    lines += [
        f"    memcpy(output, {out_loc}, {info.n_outputs}u);",
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
