"""``earshotd record``: collect labelled 1 s clips from the microphone into a dataset folder.

Clips go to ``OUT/<label>/<speaker>_NNNN.wav`` with ``--speaker NAME`` (else
``OUT/<label>/<label>_NNNN.wav``), 16 kHz mono int16, the folder-per-label layout the trainer
reads; numbering continues after clips already there, so nothing is overwritten. The trainer
splits by the name before the last ``_``: with a speaker in it, a test split holds people training
never heard; without one it can only split a label's clips one by one (a same-speaker figure).
Audio is taken in ``--capture-ms`` slices; from each, the 1 s centred on the loudest point is
kept, unless the silence gate (``[stream] gate_*``) says it is silence — then it is skipped,
except with ``--keep-silence`` (for background/negative classes).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from earshot.audio import SAMPLE_RATE as RATE
from earshot.audio import fit_length
from earshot.wavio import WavError, write_wav

from . import config
from .cli import HelpFormatter
from .config import ConfigError
from .sources import SourceError, open_source
from .sources.serial_audio import open_serial_source
from .streaming import SilenceGate, levels

_LOGGER = logging.getLogger(__name__)
_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SPEAKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


EPILOG = """examples:
  earshotd record --label yes --speaker alice --out dataset --clips 20
  earshotd record --label no --speaker alice --out dataset --clips 20
  earshotd record --label _background_ --out dataset --clips 50 --keep-silence
  earshotd record --label knock --out dataset --serial-ports /dev/ttyACM0   (a Pico's microphone)
"""

RECORD_KEYS: dict[str, tuple[str, ...]] = {"stream": ("gate_p2p_dbfs", "gate_rms_dbfs")}
"""Of [stream], only the silence gate means something to ``record``."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", usage="earshotd record --label LABEL --out DIR [--clips N] [--FLAG VALUE ...]",
        help="record labelled 1 s clips into a dataset folder",
        description="Record labelled 1 s clips from the microphone (or a WAV / stdin / a Pico) "
        "into OUT/<label>/, the folder-per-label layout the trainer reads.",
        epilog=EPILOG, formatter_class=HelpFormatter,
    )
    p.add_argument("--label", required=True, help="label (folder name) of the clips")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder")
    p.add_argument("--speaker", metavar="NAME", default=None,
                   help="who is speaking (or which room/session): clips are named NAME_NNNN.wav, "
                   "so the trainer keeps each speaker in one split and its test figure is on "
                   "people training never heard (default: none, clips are named LABEL_NNNN.wav)")
    p.add_argument("--clips", type=int, default=10, help="clips to record (default: 10)")
    p.add_argument("--capture-ms", type=int, default=1500,
                   help="audio listened to per clip (ms, default: 1500; at least 1000)")
    p.add_argument("--keep-silence", action="store_true",
                   help="keep clips the silence gate rejects (background recordings)")
    config.add_arguments(p, sections=("source", "mic", "stream"), only=RECORD_KEYS)
    add_from_option(p)
    p.set_defaults(func=run)


def add_from_option(parser: argparse.ArgumentParser) -> None:
    """``--serial-ports PORT`` (old spelling ``--from``): record from a Pico's raw-audio mode."""
    parser.add_argument(
        "--serial-ports", dest="from_port", metavar="PORT", default=None,
        help="record from a Pico's raw-audio mode on this one serial port (e.g. /dev/ttyACM0) "
        "instead of the microphone (default: the microphone)",
    )  # fmt: skip
    parser.add_argument("--from", dest="from_port", default=None, help=argparse.SUPPRESS)


def writable_folder(out: Path, label: str) -> Path:
    """``OUT/label``, created, after checking a file can be made in it (raises OSError naming it)."""
    folder = out / label
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OSError(f"--out {out}: cannot write clips into {folder} ({e.strerror})") from None
    return folder


def next_index(folder: Path, prefix: str) -> int:
    """The number after the highest ``PREFIX_NNNN.wav`` already in ``folder``."""
    used = [int(m.group(1)) for f in folder.glob(f"{prefix}_*.wav")
            if (m := re.fullmatch(rf"{re.escape(prefix)}_(\d+)\.wav", f.name))]
    return max(used, default=-1) + 1


def run(args: argparse.Namespace) -> int:
    if not _LABEL.match(args.label):
        print(f"earshotd: error: --label {args.label!r}: use letters, digits, _ . -", file=sys.stderr)
        return 2
    if args.speaker is not None and not _SPEAKER.match(args.speaker):
        print(f"earshotd: error: --speaker {args.speaker!r}: use letters, digits, _ . - "
              "(not first: _ . -)", file=sys.stderr)  # fmt: skip
        return 2
    if args.clips < 1 or args.capture_ms < 1000:
        print("earshotd: error: --clips must be >= 1 and --capture-ms >= 1000", file=sys.stderr)
        return 2
    try:
        s = config.from_args(args)
        folder = writable_folder(Path(args.out), args.label)
        source = (open_serial_source(args.from_port) if args.from_port
                  else open_source(s.source, s.mic))
    except (ConfigError, SourceError, WavError, OSError) as e:
        print(f"earshotd: error: {e}", file=sys.stderr)
        return 2
    gate = SilenceGate(s.stream.gate_p2p_dbfs, s.stream.gate_rms_dbfs)
    want = RATE * args.capture_ms // 1000
    prefix = args.speaker or args.label
    index, saved = next_index(folder, prefix), 0
    buf: list[np.ndarray] = []
    have = 0
    print(f"recording {args.clips} clip(s) of {args.label!r} from {source.name} into {folder}",
          file=sys.stderr)
    if args.speaker is None:
        print("note: no --speaker: the trainer cannot tell who spoke, so its test figure will be "
              "a same-speaker one; name the speaker (--speaker alice) to measure on people "
              "training never heard", file=sys.stderr)  # fmt: skip
    try:
        while saved < args.clips:
            chunk = source.read(0.5)
            if chunk is None:
                _LOGGER.warning("audio ended after %d clip(s)", saved)
                break
            buf.append(chunk)
            have += chunk.size
            if have < want:
                continue
            audio = np.concatenate(buf)
            buf, have = [audio[want:]], audio.size - want
            clip = fit_length(audio[:want], RATE, "loudest")
            p2p, rms = levels(clip)
            if not gate.is_open(p2p, rms) and not args.keep_silence:
                _LOGGER.info("silence (%.1f dBFS peak-to-peak): not kept", p2p)
                continue
            path = folder / f"{prefix}_{index:04d}.wav"
            try:
                write_wav(path, clip)  # a temporary name, renamed: no partial clip on failure
            except OSError as e:
                print(f"earshotd: error: {path}: cannot write ({e.strerror}); "
                      f"{saved} clip(s) saved before", file=sys.stderr)
                return 2
            print(f"{path}\t{p2p:.1f} dBFS", flush=True)
            index, saved = index + 1, saved + 1
    except KeyboardInterrupt:
        pass
    finally:
        source.close()
    if source.overflows:
        _LOGGER.warning("%d audio overflow(s) while recording", source.overflows)
    return 0 if saved else 1
