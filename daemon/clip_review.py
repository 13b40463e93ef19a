"""``earshotd clips list|show|label``: review kept detection clips and file them under their
true label in a dataset folder, for the next training run.

``label CLIP --as LABEL --into DATASET`` copies the clip's WAV to
``DATASET/<LABEL>/<device>_nohash_<n>.wav`` (``n`` the next free number). The trainer reads no
folder whose name starts with ``_``, so a false alarm filed ``--as _unknown_`` goes to
``DATASET/unknown/``: with ``earshot-train train --unknown --labels ...`` every folder not named
in ``--labels`` is ``_unknown_``, and with ``--positive LABEL`` (an alarm detector) every other
folder is background. The part before
``_nohash_`` is the trainer's speaker id (``trainer.datasets``): every clip from one device lands
in the same split, so a device's room never leaks from training into test. The clip's JSON
records where it was filed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from . import config
from .clips import kept_clips
from .config import ConfigError

_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
UNKNOWN = "_unknown_"
_NUMBERED = re.compile(r"_nohash_(\d+)\.wav$")

EPILOG = """examples:
  earshotd clips list
  earshotd clips show 20261201-211834-037_mic_smoke_alarm
  earshotd clips label 20261201-211834-037_mic_smoke_alarm --as _unknown_ --into ~/data/alarm
  earshot-train train ~/data/alarm --transfer-from /usr/share/earshot/models/pi --positive smoke_alarm --out out/bundles
"""


class ClipError(ValueError):
    """A clip or target that cannot be used; the message names it."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clips", help="review kept detection clips and relabel them into a dataset",
        description="List, show and relabel the clips the daemon keeps around each detection "
        "([clips] dir). Relabelled clips go into a dataset folder the trainer reads.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="TOML", default=None,
                   help=f"config file whose [clips] dir to use (default: {config.DEFAULT_PATH})")
    p.add_argument("--dir", metavar="DIR", default=None, help="clip folder (default: [clips] dir)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser("list", help="kept clips, oldest first: time, label, score, path")
    ls.add_argument("--json", action="store_true", help="one JSON object per clip")
    show = verbs.add_parser("show", help="a clip's files, label and every label's score")
    show.add_argument("clip", metavar="CLIP", help="clip name (or a unique start of it) or path")
    lab = verbs.add_parser("label", help="copy a clip's WAV into DATASET/<LABEL>/")
    lab.add_argument("clip", metavar="CLIP", help="clip name (or a unique start of it) or path")
    lab.add_argument("--as", dest="label", required=True, metavar="LABEL",
                     help="the true label (a folder name, e.g. _unknown_ for a false alarm)")
    lab.add_argument("--into", required=True, metavar="DATASET", help="dataset folder")
    lab.add_argument("--device", default=None,
                     help="speaker id in the file name (default: the device that kept the clip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        folder = Path(args.dir) if args.dir else Path(config.load(args.config).clips.dir)
        if args.verb == "list":
            return list_clips(folder, args.json)
        wav = find_clip(folder, args.clip)
        if args.verb == "show":
            return show_clip(wav)
        dest = label_clip(wav, args.label, Path(args.into), args.device)
        print(f"{wav.name} -> {dest}")
        return 0
    except (ClipError, ConfigError) as e:
        print(f"earshotd clips: error: {e}", file=sys.stderr)
        return 2


def meta_of(wav: Path) -> dict[str, Any]:
    """A clip's JSON (label, score, scores, source, device, time...), {} if unreadable."""
    try:
        return dict(json.loads(wav.with_suffix(".json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def list_clips(folder: Path, as_json: bool) -> int:
    clips = kept_clips(folder)
    if not folder.is_dir():
        raise ClipError(f"clip folder {folder}: no such folder")
    for wav in clips:
        m = meta_of(wav)
        if as_json:
            print(json.dumps({"path": str(wav), **m}))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.get("time", 0)))
        print(f"{when}  {m.get('label', '?'):<16} {m.get('score', 0):.2f}  {wav}")
    if not as_json:
        print(f"{len(clips)} clip(s) in {folder}")
    return 0


def find_clip(folder: Path, name: str) -> Path:
    """The WAV of a clip given by path, name or a unique start of its name."""
    p = Path(name)
    if p.suffix in (".wav", ".png", ".json") and p.with_suffix(".wav").is_file():
        return p.with_suffix(".wav")
    hits = [w for w in kept_clips(folder) if w.stem.startswith(p.stem)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ClipError(f"clip {name}: not in {folder} (earshotd clips list shows them)")
    raise ClipError(f"clip {name}: {len(hits)} clips in {folder} start so: "
                    + ", ".join(w.stem for w in hits[:5]))


def show_clip(wav: Path) -> int:
    m = meta_of(wav)
    png = wav.with_suffix(".png")
    print(f"clip:        {wav}")
    print(f"spectrogram: {png if png.is_file() else '(none)'}")
    for key in ("kind", "label", "score", "source", "device", "model_sha256", "stream_t_ms"):
        print(f"{key + ':':<13}{m.get(key, '')}")
    if m.get("time"):
        print(f"{'time:':<13}{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(m['time']))}")
    for label, score in (m.get("scores") or {}).items():
        print(f"  {label:<20} {score:.3f}")
    for filed in m.get("filed", []):
        print(f"filed as {filed['label']}: {filed['path']}")
    return 0


def next_name(folder: Path, device: str) -> Path:
    """``<device>_nohash_<n>.wav`` with ``n`` one past the highest already there."""
    taken = [int(m.group(1)) for p in folder.glob(f"{device}_nohash_*.wav")
             if (m := _NUMBERED.search(p.name))]
    return folder / f"{device}_nohash_{max(taken, default=-1) + 1}.wav"


def folder_for(label: str) -> str:
    """The dataset folder for a label: ``_unknown_`` -> ``unknown`` (the trainer skips ``_*``
    folders); any other ``_*`` label is refused."""
    if label == UNKNOWN:
        return "unknown"
    if label.startswith("_"):
        raise ClipError(f"--as {label!r}: the trainer reads no folder starting with '_'; use "
                        "_unknown_ (filed as unknown/) or a label name")
    return label


def label_clip(wav: Path, label: str, dataset: Path, device: str | None = None) -> Path:
    """Copy the clip into ``dataset/label/`` (temp + rename); returns the new file."""
    if not _LABEL.match(label):
        raise ClipError(f"--as {label!r}: not a label folder name (letters, digits, _ . -)")
    folder_name = folder_for(label)
    if not dataset.is_dir():
        raise ClipError(f"--into {dataset}: no such folder (create the dataset folder first)")
    m = meta_of(wav)
    dev = re.sub(r"[^A-Za-z0-9-]", "-", device or m.get("device") or "earshot")
    target_dir = dataset / folder_name
    try:
        target_dir.mkdir(exist_ok=True)
        dest = next_name(target_dir, dev)
        tmp = target_dir / f".{dest.name}.tmp"
        shutil.copyfile(wav, tmp)
        os.replace(tmp, dest)
    except OSError as e:
        raise ClipError(f"cannot copy {wav} into {target_dir} ({e.strerror or e})") from None
    m.setdefault("filed", []).append({"label": label, "path": str(dest)})
    try:
        wav.with_suffix(".json").write_text(json.dumps(m, indent=1) + "\n", encoding="utf-8")
    except OSError:
        pass  # the copy is what matters; the note is a convenience
    return dest
