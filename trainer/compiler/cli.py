"""``earshot-train compile``: the subcommand (registered by trainer/__main__.py)."""

from __future__ import annotations

import argparse
from typing import Any

from .model import compile_bundle
from .plan import STREAM_ROWS


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
