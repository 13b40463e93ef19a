"""``earshot-train compile``: the subcommand (registered by trainer/__main__.py)."""

from __future__ import annotations

import argparse
from typing import Any

from earshot import detector

from .model import compile_bundle
from .plan import STREAM_ROWS

EPILOG = """example:
  earshot-train compile out/alarm/rp2040 --out out/alarm/rp2040/c --window-ms 300

The generated C holds the model and its detector policy (es_model_policy): the bundle's
thresholds rounded up to levels of 1/256, the labels that never fire (_... labels, the
negative class of a sigmoid 2-label model, the bundle's detector.ignore, --ignore) and the
timing options above. Their defaults are the bundle's own (manifest detector.average_window_ms,
min_count, suppression_ms, which evaluate-stream --record thresholds chooses on validation
streams), else the daemon's defaults, so the board and earshotd run the same policy.
"""


def run(args: argparse.Namespace) -> int:
    m = compile_bundle(
        args.bundle, args.out, args.prefix, args.stream_rows, ignore=args.ignore,
        threshold_offset=args.threshold_offset, average_window_ms=args.window_ms,
        min_count=args.min_count, suppression_ms=args.suppression_ms,
    )  # fmt: skip
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
    print(f"detector policy: {m.policy_text}")
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
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--ignore", action="append", default=[], metavar="LABEL",
                   help="a label that never fires on the board (repeatable)")
    p.add_argument("--threshold-offset", type=float, default=0.0, metavar="X",
                   help="added to every bundle threshold, clipped to 0..1 (default: 0)")
    p.add_argument("--window-ms", type=int, default=None,
                   metavar="MS", help="detector averaging window (ms, default: the bundle's, "
                   f"else {detector.DEFAULT_AVERAGE_WINDOW_MS})")
    p.add_argument("--min-count", type=int, default=None, metavar="N",
                   help="results needed in the window (default: the bundle's, else "
                   f"{detector.DEFAULT_MIN_COUNT})")
    p.add_argument("--suppression-ms", type=int, default=None,
                   metavar="MS", help="nothing fires this long after a detection "
                   f"(ms, default: the bundle's, else {detector.DEFAULT_SUPPRESSION_MS})")
    p.set_defaults(func=run)
