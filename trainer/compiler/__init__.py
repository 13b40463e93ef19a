"""``earshot-train compile``: a full-int8 ``.tflite`` becomes C for the RP2040 firmware.

Output (``<prefix>_model_data.c`` and ``.h``): the weights and biases as const arrays, the
per-channel multipliers and shifts, one const parameter struct per op, a STATIC SCHEDULE of
``es_kernels`` calls (no interpreter), and one static arena whose offsets are planned here from
the tensors' lifetimes. The files implement ``firmware/core/es_model.h``.

Every multiplier is computed as the kernels compute it in Prepare (QuantizeMultiplier with
round-half-away-from-zero, the same double/float arithmetic), so the C output equals TFLite
Micro's bit for bit, and the reference interpreter's wherever that agrees with TFLM (all ops but
FULLY_CONNECTED, which the reference rescales in float). Where the kernels compute in float at
run time (RESIZE_NEAREST_NEIGHBOR's index), the function is evaluated here and emitted as an
integer table. See docs/compiler.md.

The passes, one module each:

* ``tflite_graph`` — the flatbuffer read into tensors and ops;
* ``lower`` — one lowering per op family (``lower/conv.py``, ``pool``, ``resize``,
  ``activation``, ``elementwise``; dispatch table ``lower.HANDLERS``) into kernel calls and
  const declarations; ``quant`` holds the arithmetic only lowering needs (on top of
  ``earshot.quant``);
* ``plan`` — the streaming planner and the arena planner;
* ``emit_c`` — the generated header and source (``c_text``: C literals and identifiers);
* ``model`` — ``compile_tflite`` / ``compile_bundle`` and their result, ``CompiledModel``;
* ``host`` — a ``CompiledModel`` built for this machine and called through ctypes;
* ``cli`` — the ``earshot-train compile`` subcommand.
"""

from __future__ import annotations

from .errors import CompileError
from .model import CompiledModel, build_host, compile_bundle, compile_tflite
from .plan import STREAM_ROWS
from .tflite_graph import read_graph

__all__ = [
    "STREAM_ROWS",
    "CompileError",
    "CompiledModel",
    "build_host",
    "compile_bundle",
    "compile_tflite",
    "read_graph",
]
