"""``earshotd classify``: score WAV files offline with a bundle, one line per file.

With ``--json`` each line is ``{"file", "label", "score", "scores": {label: p}}``; without it,
``FILE<TAB>LABEL<TAB>SCORE`` (score to 3 decimals). Files are streamed (``earshot.wavio.
iter_wav``), so an hour-long recording needs no more memory than a clip.

* The top-level result is the 1 s window the bundle's front end sees (``--fit``) for files up
  to ``WHOLE_FILE_S``; for longer files it is the window that scored highest for a label that
  can fire (the loudest window would need the whole file in memory).
* Files longer than one clip are also scored window by window, every ``--hop-ms``: windows
  whose top label can fire (not ``_``-prefixed) and reaches its bundle threshold are detections,
  consecutive windows of one label merged into one, with start and end times in seconds. They
  are the ``detections`` list of the JSON line, and ``FILE<TAB>START<TAB>END<TAB>LABEL<TAB>SCORE``
  lines after the file's line without ``--json`` (as BirdNET-Analyzer's table).

A file that cannot be read is reported on stderr and the others are still scored (exit 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earshot.audio import SAMPLE_RATE, StreamingResampler, fit_length
from earshot.bundle import BundleError, load_bundle
from earshot.wavio import BLOCK_FRAMES, WavError, iter_wav, wav_info

from .cli import HelpFormatter

_LOGGER = logging.getLogger(__name__)

WHOLE_FILE_S = 60.0
"""Files up to this long are held in memory for ``--fit`` (60 s: 3.8 MB)."""

EPILOG = """examples:
  earshotd classify --model /usr/share/earshot/models/pi clip1.wav clip2.wav
  earshotd classify --model bundles/pi --json --hop-ms 250 night-recording.wav
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify WAV files offline with a model bundle",
        description="Classify WAV files with a bundle and print the top label for each; files "
        "longer than a clip also list their detections with times.",
        epilog=EPILOG, formatter_class=HelpFormatter,
    )
    p.add_argument("--model", "--model-bundle", dest="model", required=True, metavar="BUNDLE",
                   help="bundle folder (manifest.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument(
        "--fit", choices=("center", "start", "loudest"), default="loudest",
        help="which 1 s of a longer file (up to 60 s) is the top-level result (choices: center, "
        "start, loudest; default: loudest, the 1 s centred on the largest deviation from the "
        "mean, as the daemon's loudest window)",
    )  # fmt: skip
    p.add_argument("--hop-ms", type=int, default=500, metavar="MS",
                   help="step between scored windows of a long file (ms, default: 500)")
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV files (any rate, mono or stereo)")
    p.set_defaults(func=run)


@dataclass
class Window:
    """One scored window of a file."""

    start: int
    scores: np.ndarray


def windows(blocks: Iterator[np.ndarray], clip: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start sample, clip) every ``hop`` samples over a stream; a stream shorter than a clip
    gives nothing. Memory: about one clip plus one block."""
    buf = np.zeros(0, np.float32)
    start = 0  # stream index of buf[0]
    nxt = 0
    for block in blocks:
        buf = np.concatenate([buf, block])
        while nxt + clip <= start + buf.size:
            a = nxt - start
            yield nxt, buf[a : a + clip]
            nxt += hop
        drop = min(nxt - start, buf.size)
        buf, start = buf[drop:], start + drop


class FileScorer:
    """Scores one file: top-level result and detections (see the module docstring)."""

    def __init__(self, clf: Any, fit: str, hop_ms: int) -> None:
        self.clf, self.fit = clf, fit
        self.clip = int(clf.bundle.manifest["clip_samples"])
        self.hop = max(1, SAMPLE_RATE * hop_ms // 1000)
        thr = clf.bundle.thresholds
        self.fires = np.array([not x.startswith("_") for x in clf.labels])
        self.thresholds = np.array([thr.get(x, 0.5) for x in clf.labels])

    def score(self, path: str) -> dict[str, Any]:
        n, blocks = open_audio(path)
        if n <= WHOLE_FILE_S * SAMPLE_RATE:
            audio = np.concatenate(list(blocks()))
            top = self.clf.scores(fit_length(audio, self.clip, self.fit))
            wins = list(self._scored(iter([audio]))) if n > self.clip else []
        else:
            wins = list(self._scored(blocks()))
            top = max(wins, key=lambda w: float((w.scores * self.fires).max())).scores
        out = self._line(path, top)
        if n > self.clip:
            out["detections"] = self._detections(wins)
        return out

    def _scored(self, blocks: Iterator[np.ndarray]) -> Iterator[Window]:
        for start, clip in windows(blocks, self.clip, self.hop):
            yield Window(start, self.clf.scores(clip))

    def _line(self, path: str, scores: np.ndarray) -> dict[str, Any]:
        best = int(scores.argmax())
        labels = self.clf.labels
        return {
            "file": str(path), "label": labels[best], "score": round(float(scores[best]), 6),
            "scores": {k: round(float(v), 6) for k, v in zip(labels, scores, strict=True)},
        }  # fmt: skip

    def _detections(self, wins: list[Window]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for w in wins:
            best = int(w.scores.argmax())
            if not (self.fires[best] and w.scores[best] >= self.thresholds[best]):
                continue
            label, score = self.clf.labels[best], round(float(w.scores[best]), 6)
            start_s, end_s = w.start / SAMPLE_RATE, (w.start + self.clip) / SAMPLE_RATE
            last = out[-1] if out else None
            if last and last["label"] == label and start_s <= last["end_s"]:
                last["end_s"], last["score"] = end_s, max(last["score"], score)
            else:
                out.append({"start_s": start_s, "end_s": end_s, "label": label, "score": score})
        return out


COMPRESSED = (".flac", ".ogg", ".oga", ".mp3")
"""Read through soundfile (libsndfile) when it is installed; WAV never needs it."""


def open_audio(path: str) -> tuple[int, Callable[[], Iterator[np.ndarray]]]:
    """(length at 16 kHz, a function streaming the file's 16 kHz mono blocks): WAV through
    ``earshot.wavio``, FLAC/Ogg/MP3 through soundfile. Raises WavError naming the file."""
    if Path(path).suffix.lower() not in COMPRESSED:
        info = wav_info(path)
        return -(-info.frames * SAMPLE_RATE // info.rate), lambda: iter_wav(path)
    try:
        import soundfile
    except ImportError:
        raise WavError(f"{path}: reading {Path(path).suffix} needs soundfile "
                       "(pip install soundfile); WAV files need nothing") from None
    try:
        info = soundfile.info(path)
    except Exception as e:  # libsndfile's own error type
        raise WavError(f"{path}: not a readable audio file ({e})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise WavError(f"{path}: audio file holds no samples")
    return -(-info.frames * SAMPLE_RATE // info.samplerate), lambda: _soundfile_blocks(path)


def _soundfile_blocks(path: str) -> Iterator[np.ndarray]:
    import soundfile

    rs: StreamingResampler | None = None
    for block in soundfile.blocks(path, blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
        if rs is None:
            rs = StreamingResampler(soundfile.info(path).samplerate, SAMPLE_RATE, zero_phase=True)
        yield rs.process(block.mean(axis=1).astype(np.float64))
    if rs is not None:
        yield rs.flush()


def run(args: argparse.Namespace) -> int:
    from .inference import Classifier

    try:
        scorer = FileScorer(Classifier(load_bundle(args.model)), args.fit, args.hop_ms)
    except (BundleError, RuntimeError) as e:
        print(f"earshotd: error: {e}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        try:
            line = scorer.score(path)
        except WavError as e:
            print(f"earshotd: error: {e}", file=sys.stderr)
            status = 1
            continue
        _print(line, args.json)
    return status


def _print(line: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(line), flush=True)
        return
    print(f"{line['file']}\t{line['label']}\t{line['score']:.3f}")
    for d in line.get("detections", []):
        print(f"{line['file']}\t{d['start_s']:.2f}\t{d['end_s']:.2f}\t{d['label']}\t{d['score']:.3f}")
    sys.stdout.flush()
