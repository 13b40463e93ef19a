"""``earshotd classify``: score WAV files offline with a bundle, one line per file.

With ``--json`` each line is ``{"file", "label", "score", "scores": {label: p}}``; without it,
``FILE<TAB>LABEL<TAB>SCORE`` (score to 3 decimals).
Files longer than a clip are scored on the 1 s window the bundle's front end sees (``--fit``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from earshot.audio import fit_length
from earshot.bundle import BundleError, load_bundle
from earshot.wavio import WavError, read_wav

from .inference import Classifier

_LOGGER = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify WAV files offline with a model bundle",
        description="Classify WAV files with a bundle and print the top label for each.",
    )
    p.add_argument("--model", required=True, metavar="BUNDLE", help="bundle folder (manifest.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument(
        "--fit",
        choices=("center", "start", "loudest"),
        default="loudest",
        help="which 1 s of a longer file to score (default: loudest, the 1 s centred on the "
        "largest deviation from the mean, as the daemon's loudest window)",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV files (any rate, mono or stereo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        clf = Classifier(load_bundle(args.model))
    except (BundleError, RuntimeError) as e:
        print(f"earshotd: error: {e}", file=sys.stderr)
        return 2
    n_clip = int(clf.bundle.manifest["clip_samples"])
    status = 0
    for path in args.files:
        try:
            audio = fit_length(read_wav(path), n_clip, args.fit)
        except WavError as e:
            print(f"earshotd: error: {e}", file=sys.stderr)
            status = 1
            continue
        scores = clf.scores(audio)
        best = int(scores.argmax())
        if args.json:
            line = {
                "file": str(path),
                "label": clf.labels[best],
                "score": round(float(scores[best]), 6),
                "scores": {k: round(float(v), 6) for k, v in zip(clf.labels, scores, strict=True)},
            }
            print(json.dumps(line), flush=True)
        else:
            print(f"{path}\t{clf.labels[best]}\t{scores[best]:.3f}", flush=True)
    return status
