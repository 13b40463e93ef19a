"""``earshotd listen`` (also ``earshotd run --listen``): a live view for tuning.

Every hop prints one line: the stream time, the window's level (peak-to-peak dBFS) and every
label's score as a compact bar with the label's threshold marked ``|``; a label at or above its
threshold is in capitals, and a detection ends the line with ``<< LABEL``. While the silence
gate is closed the line says so instead of scores. Everything else (journald, MQTT, clips,
JSON) works as in ``earshotd run``; logs go to stderr, the view to stdout.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from . import config

BAR = 10
"""Characters per score bar."""
_EIGHTHS = " ▏▎▍▌▋▊▉█"

EPILOG = """examples:
  earshotd listen                                   # the microphone, as configured
  earshotd listen --source-kind wav --source-wav kitchen.wav --detector-threshold-offset -0.1
"""


def bar(score: float, threshold: float, width: int = BAR) -> str:
    """``score`` (0..1) as a bar of eighth blocks with ``|`` at the threshold."""
    cells = max(0.0, min(1.0, score)) * width
    out = []
    for i in range(width):
        fill = min(1.0, max(0.0, cells - i))
        out.append(_EIGHTHS[int(round(fill * 8))])
    mark = min(width - 1, int(threshold * width))
    if threshold <= 1.0 and out[mark] == " ":
        out[mark] = "|"
    return "".join(out)


class ListenSink:
    """An outputs sink that prints every hop (see the module docstring)."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.labels: list[str] = []
        self.thresholds: list[float] = []

    def set_model(self, detector: Any) -> None:
        """The labels and thresholds to show (an ``earshot.detector.DetectorConfig``)."""
        self.labels = list(detector.labels)
        # Labels that never fire get no threshold mark.
        self.thresholds = [2.0 if x in detector.ignore else t
                           for x, t in zip(detector.labels, detector.thresholds, strict=True)]

    def hop(self, source: str, hop: Any) -> None:
        head = f"{hop.t_ms / 1000:8.2f} s {hop.p2p_dbfs:6.1f} dBFS "
        if hop.scores is None:
            self.out.write(head + " (below the silence gate: not classified)\n")
        else:
            cells = [self._cell(x, float(s), t) for x, s, t in zip(self.labels, hop.scores, self.thresholds, strict=False)]
            fired = f"  << {hop.detection.label}" if hop.detection is not None else ""
            self.out.write(head + "  ".join(cells) + fired + "\n")
        self.out.flush()

    def _cell(self, label: str, score: float, threshold: float) -> str:
        name = label.upper() if score >= threshold and not label.startswith("_") else label
        return f"{name} {bar(score, threshold)} {score:.2f}"

    def alert(self, a: Any) -> None:
        pass

    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None:
        pass

    def close(self) -> None:
        pass


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "listen", help="live view: level and every label's score per hop (for tuning)",
        description="Run the recogniser as `earshotd run` does and print, for every hop, the "
        "level and each label's score as a bar with its threshold marked, so you see how close "
        "a sound comes to firing. Every config key has a flag below.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_arguments(p)
    p.set_defaults(func=run_listen)


def run_listen(args: argparse.Namespace) -> int:
    from .runner import run

    args.listen = True
    return run(args)
