r"""Labelled audio on disk -> 1 s clips with labels and train/val/test splits.

Three layouts (``layout="auto"`` picks one, in this order):

* ``esc50``: ``audio/*.wav`` + ``meta/esc50.csv`` (columns ``filename,fold,target,category,...``).
  Folds map to splits: folds 1-3 -> train, fold 4 -> val, fold 5 -> test (ESC-50 keeps clips cut
  from one source recording in one fold, so no source leaks across splits; ``val_percent`` and
  ``test_percent`` are ignored). Each 5 s clip is cut into non-overlapping 1 s windows, as in
  the Arm RP2040 tutorial; a window is *silent*, and dropped, when its RMS level is below
  ``SILENT_RMS_DBFS`` (-60 dBFS): ESC-50 pads short recordings with digital silence (RMS, not
  peak, so the resampler's few ringing samples at the edge of a padded tail do not count).
* ``speech_commands``: one folder per label, file names ``<speaker>_nohash_<n>.wav``, optional
  ``_background_noise_/`` and ``validation_list.txt`` / ``testing_list.txt`` (paths relative to
  the root). Chosen when a list file exists or a file name holds ``_nohash_``. With lists, a file
  in ``testing_list.txt`` is test, one in ``validation_list.txt`` is val, the rest train. Without
  them, Speech Commands' own rule: SHA-1 of the speaker id (the file name before ``_nohash_``)
  -> a percentage, so one speaker never lands in two splits and adding files moves nobody.
* ``folders``: one folder per label (optional ``_background_noise_/``). Files are split by
  *group* (a speaker or a recording session), never file by file, so no speaker lands in two
  splits. The group is the file name before ``_nohash_`` if present, else the file name before
  its last ``_`` (``alice_03.wav`` and ``alice_17.wav`` are both ``alice``), else the whole name;
  ``group_pattern`` (``--group-pattern``) overrides it with a regular expression searched in the
  file name (without extension) whose first capture group, or whole match, is the group (for
  ``3_bob_12.wav``, ``^\d+_([a-z]+)_``). Groups are ordered by the same SHA-1 percentage and
  cut so val and test get ``val_percent`` / ``test_percent`` of the files (at least one group
  each when there are three or more groups). Groups shared by a label's files and another
  label's files stay in one split, since the group ignores the folder.

Folders whose names start with ``_`` or ``.`` are never labels.

Every file that may be used is opened here (scipy reads header and data), so a corrupt, empty or
truncated file is reported by name, skipped and counted before training starts.

Clip length: a shorter file is padded with zeros on both sides (the sound stays centred); from a
longer file the 1 s centred on its loudest sample is kept (``earshot.audio.fit_length(...,
"loudest")``, the same default as ``earshotd classify``).

``unknown=True`` maps every class not in ``labels`` to ``_unknown_``; per split at most
``unknown_share`` (default 1) times as many unknown clips as the mean known class has are kept
(picked by ``seed``), so it does not swamp the rest. ``silence=True`` adds ``_silence_`` clips, as many per split as the mean known class:
1 s slices of the background-noise files scaled by a gain drawn from 0-0.1 (Speech Commands
practice), or digital silence when there is no background noise. Each background file is cut in
time into train/val/test regions (by the split percentages), so the splits share no noise.
Label order: ``_silence_``, ``_unknown_`` (when asked for), then the labels as given (or sorted).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from earshot.audio import SAMPLE_RATE, fit_length
from earshot.wavio import WavError, read_wav

_LOGGER = logging.getLogger(__name__)

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
BACKGROUND_DIR = "_background_noise_"
SPLITS = ("train", "val", "test")
SEEN = "seen"
"""The split of held-back clips of *training* speakers (``seen_percent``): the same-speaker
figure beside the test split's unseen-speaker one."""
SEEN_PERCENT = 10.0
"""``seen_percent`` by default where speakers are split by hash (``default_seen_percent``): a
maker's few speakers; a set whose lists decide the split (the synthetic set, Speech Commands)
is scored on them alone."""
LAYOUTS = ("auto", "folders", "speech_commands", "esc50")
ESC50_FOLD_SPLIT = {1: "train", 2: "train", 3: "train", 4: "val", 5: "test"}
SILENT_RMS_DBFS = -60.0
SILENCE_MAX_GAIN = 0.1
# Speech Commands' which_set constant: the hash is taken modulo this many "files per class".
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
_NOHASH = re.compile(r"_nohash_.*$")


@dataclass(frozen=True)
class Clip:
    """One labelled 1 s example."""

    path: Path | None
    """Source WAV (None only for generated digital-silence clips)."""
    label: str
    """Class name as the model knows it (after unknown/silence mapping)."""
    split: str
    """"train", "val" or "test"."""
    group: str
    """Speaker / source-file id the split was made on."""
    offset: int = 0
    """First 16 kHz sample of this 1 s window in the file (ESC-50 windows, background slices)."""
    source_label: str = ""
    """Original folder/category (e.g. "marvin" mapped to "_unknown_")."""
    gain: float = 1.0
    """Linear gain applied when loading (silence clips are quiet background slices)."""
    fit: str = "loudest"
    """"loudest": whole file fitted to 1 s; "window": the samples from ``offset`` on."""


@dataclass
class LoadReport:
    """What load_dataset saw, used and skipped (and why)."""

    files_seen: int = 0
    files_used: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    root: str = ""
    layout: str = ""
    silent_windows_dropped: int = 0
    background_files: int = 0
    not_used: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    shared_groups: list[str] = field(default_factory=list)
    file_split_labels: list[str] = field(default_factory=list)
    """Labels whose files are all one group, split file by file (same-speaker test figures)."""

    def summary(self) -> dict[str, Any]:
        """JSON-able summary for the bundle manifest's "training" key."""
        return {
            "root": self.root,
            "layout": self.layout,
            "files_seen": self.files_seen,
            "files_used": self.files_used,
            "files_skipped": len(self.skipped),
            "skipped": [{"file": str(p), "reason": r} for p, r in self.skipped],
            "silent_windows_dropped": self.silent_windows_dropped,
            "background_files": self.background_files,
            "not_used": dict(self.not_used),
            "groups": dict(self.groups),
            "shared_groups": list(self.shared_groups),
            "file_split_labels": list(self.file_split_labels),
            "counts": {s: dict(c) for s, c in self.counts.items()},
        }

    def table(self) -> str:
        """Printable label x split table, then the skipped files with reasons."""
        labels = sorted({lab for c in self.counts.values() for lab in c})
        width = max([len("label"), len("total")] + [len(lab) for lab in labels])
        cols = (*SPLITS, SEEN) if SEEN in self.counts else SPLITS
        head = f"{'label':<{width}}" + "".join(f"{s:>8}" for s in (*cols, "total"))
        lines = [f"dataset {self.root} (layout {self.layout})", head, "-" * len(head)]
        for lab in [*labels, "total"]:
            row = [
                sum(self.counts.get(s, {}).values())
                if lab == "total"
                else self.counts.get(s, {}).get(lab, 0)
                for s in cols
            ]
            lines.append(f"{lab:<{width}}" + "".join(f"{n:>8}" for n in (*row, sum(row))))
        if self.groups:
            row = [self.groups.get(s, 0) for s in cols]
            lines.append(f"{'speakers':<{width}}" + "".join(f"{n:>8}" for n in row)
                         + f"   (shared by two splits: {len(self.shared_groups)})")  # fmt: skip
        if self.file_split_labels:
            lines.append("split file by file (all of a label's files are one speaker; its test "
                         f"figure is same-speaker): {', '.join(self.file_split_labels)}")  # fmt: skip
        lines.append(
            f"files: {self.files_seen} found, {self.files_used} used, {len(self.skipped)} skipped; "
            f"{self.background_files} background-noise files"
        )
        if self.silent_windows_dropped:
            lines.append(f"silent 1 s windows dropped: {self.silent_windows_dropped}")
        for reason, n in sorted(self.not_used.items()):
            if n:
                lines.append(f"not used ({reason}): {n}")
        if self.skipped:
            lines.append("skipped files:")
            lines.extend(f"  {p}: {r}" for p, r in self.skipped)
        return "\n".join(lines)


@dataclass
class Dataset:
    """A loaded dataset: clip list (audio read lazily), labels in model output order."""

    root: Path
    layout: str
    labels: list[str]
    clips: list[Clip]
    background: list[Path]
    report: LoadReport
    clip_samples: int = SAMPLE_RATE
    fractions: tuple[float, float, float] = (80.0, 10.0, 10.0)
    """train/val/test shares (%) used to cut background-noise files in time."""
    seen_percent: float = 0.0
    """Share (%) of each training speaker's files held back in the ``SEEN`` split."""

    def split(self, name: str) -> list[Clip]:
        """The clips of split ``name`` ("train", "val", "test" or "seen")."""
        if name not in (*SPLITS, SEEN):
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}, {SEEN}")
        return [c for c in self.clips if c.split == name]


# --- scanning -------------------------------------------------------------------------------


def detect_layout(root: Path) -> str:
    """Which layout ``root`` holds (see the module docstring for the rules)."""
    if (root / "meta" / "esc50.csv").is_file():
        return "esc50"
    if (root / "validation_list.txt").is_file() or (root / "testing_list.txt").is_file():
        return "speech_commands"
    for d in _label_dirs(root):
        if any("_nohash_" in p.name for p in _wav_files(d)):
            return "speech_commands"
    return "folders"


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3")
"""Files a data set may hold: WAV (``earshot.wavio``), and FLAC, Ogg Vorbis and MP3 through
soundfile (libsndfile), as Freesound clips, Common Voice and phone recordings come."""


def read_audio(path: Path) -> np.ndarray:
    """Any supported file as 16 kHz mono float32; raises WavError naming the file."""
    if path.suffix.lower() == ".wav":
        return read_wav(path)
    from .recordings import RecordingError, read

    try:
        audio = read(path)
    except RecordingError as e:
        raise WavError(str(e)) from None
    if audio.size == 0:
        raise WavError(f"{path}: audio file holds no samples")
    return audio


def _wav_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _label_dirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))


def hash_percent(group: str) -> float:
    """Speech Commands' which_set hash: a stable percentage in [0, 100] for a speaker id."""
    h = int(hashlib.sha1(group.encode("utf-8")).hexdigest(), 16)
    return (h % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)


class DatasetError(ValueError):
    """A dataset option or file cannot be used; the message names it."""


def group_of(path: Path, pattern: re.Pattern[str] | None = None) -> str:
    """The speaker/session a file belongs to (module docstring, ``folders``)."""
    stem = path.stem
    if pattern is not None:
        m = pattern.search(stem)
        if m is None:
            raise DatasetError(
                f"{path}: --group-pattern {pattern.pattern!r} does not match the file name"
            )
        return m.group(1) if pattern.groups else m.group(0)
    if "_nohash_" in stem:
        return _NOHASH.sub("", stem)
    return stem.rsplit("_", 1)[0] if "_" in stem.strip("_") else stem


def compile_group_pattern(spec: str | None) -> re.Pattern[str] | None:
    """``--group-pattern`` as a regex (None stays None); a bad one raises DatasetError."""
    if not spec:
        return None
    try:
        return re.compile(spec)
    except re.error as e:
        raise DatasetError(f"--group-pattern {spec!r} is not a regular expression: {e}") from None


def _group_of(path: Path) -> str:
    return _NOHASH.sub("", path.stem)


def _which_set(group: str, val_percent: float, test_percent: float) -> str:
    pct = hash_percent(group)
    if pct < val_percent:
        return "val"
    if pct < val_percent + test_percent:
        return "test"
    return "train"


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _lists(root: Path) -> tuple[set[str], set[str]]:
    """A Speech Commands set's validation and testing lists (empty when absent)."""
    return _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")


def _scan_speech_commands(
    root: Path, val_pct: float, test_pct: float, pattern: re.Pattern[str] | None = None
) -> list[Clip]:
    val_list, test_list = _lists(root)
    use_lists = bool(val_list or test_list)
    _LOGGER.info(
        "%s: split from %s", root, "the validation/testing lists" if use_lists else "speaker hash"
    )
    clips = []
    for d in _label_dirs(root):
        for p in _wav_files(d):
            group = group_of(p, pattern) if pattern else _group_of(p)
            if use_lists:
                rel = p.relative_to(root).as_posix()
                split = "test" if rel in test_list else "val" if rel in val_list else "train"
            else:
                split = _which_set(group, val_pct, test_pct)
            clips.append(Clip(p, d.name, split, group, source_label=d.name))
    return clips


def _scan_folders(
    root: Path,
    val_pct: float,
    test_pct: float,
    pattern: re.Pattern[str] | None = None,
    report: LoadReport | None = None,
) -> list[Clip]:
    files = [(d.name, p) for d in _label_dirs(root) for p in _wav_files(d)]
    group = {p: group_of(p, pattern) for _, p in files}
    by_file = _single_group_labels(files, group)
    if report is not None:
        report.file_split_labels = by_file
    if by_file:
        one = next(p for x, p in files if x == by_file[0])
        _LOGGER.warning(
            "%s: label(s) %s have all their files in one speaker/group (%s is %r), so a split by "
            "speaker would put all of such a label in one split: their files are split one by "
            "one instead, and their test figure is a same-speaker one. For an unseen-speaker "
            "figure name files <speaker>_<n>.wav (earshotd record --speaker NAME does) or pass "
            "--group-pattern", root, ", ".join(by_file), one.relative_to(root), group[one],
        )
    # the unit of the split: the group, or for such a label each file (a quota of its own)
    key = {p: f"{lab}/{p.name}" if lab in by_file else group[p] for lab, p in files}
    split_of = _quota_split(list(Counter(key[p] for x, p in files if x not in by_file).items()),
                            val_pct, test_pct)  # fmt: skip
    for lab in by_file:
        split_of.update(_quota_split([(key[p], 1) for x, p in files if x == lab], val_pct, test_pct))
    return [Clip(p, lab, split_of[key[p]], group[p], source_label=lab) for lab, p in files]


def _single_group_labels(files: list[tuple[str, Path]], group: dict[Path, str]) -> list[str]:
    """Labels of three or more files that all share one group (``yes/yes_0001.wav``, ... is group
    "yes"; one person who recorded every label is one group): split by group, all of such a
    label would land in one split."""
    groups: dict[str, set[str]] = defaultdict(set)
    for lab, p in files:
        groups[lab].add(group[p])
    count = Counter(lab for lab, _ in files)
    return sorted(lab for lab, g in groups.items() if len(g) == 1 and count[lab] >= 3)


def _quota_split(
    units: list[tuple[str, int]], val_pct: float, test_pct: float
) -> dict[str, str]:
    """``{unit: split}`` for ``(unit, files)`` pairs (groups, or single files), in SHA-1
    percentage order: test, then val, take units until they hold their share of the files (at
    least one unit each when there are three or more), the rest train."""
    order = sorted(units, key=lambda u: (hash_percent(u[0]), u[0]))
    n = sum(k for _, k in units)
    want = {"test": round(n * test_pct / 100.0), "val": round(n * val_pct / 100.0)}
    if len(units) >= 3:
        want = {
            s: max(k, 1 if pct > 0 else 0)
            for (s, k), pct in zip(want.items(), (test_pct, val_pct), strict=True)
        }
    split_of: dict[str, str] = {}
    have = {"test": 0, "val": 0}
    for u, k in order:
        s = next((s for s in ("test", "val") if have[s] < want[s]), "train")
        if s != "train":
            have[s] += k
        split_of[u] = s
    return split_of


def _scan_esc50(root: Path) -> list[Clip]:
    meta = root / "meta" / "esc50.csv"
    clips = []
    with meta.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"filename", "fold", "category"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{meta}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                fold = int(row["fold"])
                split = ESC50_FOLD_SPLIT[fold]
            except (ValueError, KeyError):
                raise ValueError(f"{meta}:{line}: fold {row['fold']!r} is not 1-5") from None
            name = row["filename"]
            # ESC-50 names are {fold}-{source clip id}-{take}-{target}.wav: group on the source.
            parts = Path(name).stem.split("-")
            group = parts[1] if len(parts) >= 4 else Path(name).stem
            cat = row["category"]
            clips.append(Clip(root / "audio" / name, cat, split, group, source_label=cat))
    return clips


def _background_files(root: Path) -> list[Path]:
    d = root / BACKGROUND_DIR
    return _wav_files(d) if d.is_dir() else []


# --- reading --------------------------------------------------------------------------------


def probe_wav(path: Path) -> tuple[np.ndarray | None, str]:
    """Read ``path`` fully as 16 kHz float; on failure (None, reason). Truncation is a failure."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            audio = read_audio(path)
        except WavError as e:
            return None, str(e).removeprefix(f"{path}: ")
    for w in caught:
        if "EOF" in str(w.message):
            return None, f"truncated ({w.message})"
    return audio, ""


def _windows(clip: Clip, audio: np.ndarray, n: int) -> tuple[list[Clip], int]:
    """Non-overlapping ``n``-sample windows of ``audio``, silent ones dropped."""
    floor = 10.0 ** (SILENT_RMS_DBFS / 20.0)
    out, dropped = [], 0
    for start in range(0, max(1, audio.size - n + 1), n):
        win = audio[start : start + n].astype(np.float64)
        if np.sqrt(np.mean(win**2)) < floor:
            dropped += 1
        else:
            out.append(replace(clip, offset=start, fit="window"))
    return out, dropped


def _validate(
    clips: list[Clip], layout: str, n: int, report: LoadReport, progress: bool
) -> list[Clip]:
    by_path: dict[Path, list[Clip]] = defaultdict(list)
    for c in clips:
        assert c.path is not None
        by_path[c.path].append(c)
    good: list[Clip] = []
    for path in tqdm(by_path, desc="reading WAVs", unit="file", disable=not progress):
        if not path.is_file():
            report.skipped.append((path, "no such file"))
            continue
        audio, reason = probe_wav(path)
        if audio is None:
            _LOGGER.warning("skipping %s: %s", path, reason)
            report.skipped.append((path, reason))
            continue
        for c in by_path[path]:
            if layout == "esc50":
                wins, dropped = _windows(c, audio, n)
                good.extend(wins)
                report.silent_windows_dropped += dropped
            else:
                good.append(c)
    return good


def _clip_audio(clip: Clip, audio: np.ndarray, n: int) -> np.ndarray:
    if clip.fit == "window":
        x = fit_length(audio[clip.offset : clip.offset + n], n, "start")
    else:
        x = fit_length(audio, n, "loudest")
    return (x * np.float32(clip.gain)).astype(np.float32)


def load_clip(clip: Clip, clip_samples: int = SAMPLE_RATE) -> np.ndarray:
    """The clip's audio: float32 [clip_samples] at 16 kHz. Raises WavError naming the file."""
    if clip.path is None:
        return np.zeros(clip_samples, np.float32)
    return _clip_audio(clip, read_audio(clip.path), clip_samples)


def load_split(
    dataset: Dataset, split: str, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """X float32 [n, clip_samples] and y int64 (index into ``dataset.labels``) for ``split``."""
    clips = dataset.split(split)
    n = dataset.clip_samples
    x = np.zeros((len(clips), n), np.float32)
    y = np.array([dataset.labels.index(c.label) for c in clips], np.int64)
    last: tuple[Path | None, np.ndarray | None] = (None, None)
    for i, c in enumerate(tqdm(clips, desc=f"loading {split}", unit="clip", disable=not progress)):
        if c.path is None:
            continue
        if last[0] != c.path:  # windows of one file are adjacent: read each file once
            last = (c.path, read_audio(c.path))
        assert last[1] is not None
        x[i] = _clip_audio(c, last[1], n)
    return x, y


def load_background(
    dataset: Dataset, split: str | None = "train", progress: bool = True
) -> list[np.ndarray]:
    """Background-noise audio for mixing: each file's ``split`` region (whole file if None)."""
    out = []
    for p in tqdm(dataset.background, desc="background", unit="file", disable=not progress):
        audio = read_audio(p)
        if split is not None:
            lo, hi = _region_of(audio.size, split, dataset.fractions)
            audio = audio[lo:hi]
        out.append(audio)
    return out


# --- label mapping ---------------------------------------------------------------------------


def _region_of(n: int, split: str, fractions: Sequence[float]) -> tuple[int, int]:
    edges = np.cumsum([0.0, *fractions]) / sum(fractions) * n
    i = SPLITS.index(split)
    return int(edges[i]), int(edges[i + 1])


def _quota(clips: Iterable[Clip], split: str) -> int:
    per_label = Counter(c.label for c in clips if c.split == split)
    return math.ceil(sum(per_label.values()) / len(per_label)) if per_label else 0


def _cap_unknown(
    known: list[Clip], unknown: list[Clip], rng: np.random.Generator, share: float = 1.0
) -> list[Clip]:
    kept: list[Clip] = []
    for split in SPLITS:
        pool = [c for c in unknown if c.split == split]
        order = rng.permutation(len(pool))
        kept.extend(pool[i] for i in sorted(order[: math.ceil(share * _quota(known, split))]))
    return kept


def _silence_clips(
    known: list[Clip],
    background: list[tuple[Path, int]],
    fractions: Sequence[float],
    n: int,
    rng: np.random.Generator,
) -> list[Clip]:
    out = []
    for split in SPLITS:
        for k in range(_quota(known, split)):
            gain = float(rng.uniform(0.0, SILENCE_MAX_GAIN))
            if not background:
                out.append(Clip(None, SILENCE, split, f"silence{k}", 0, SILENCE, 0.0, "window"))
                continue
            path, length = background[int(rng.integers(len(background)))]
            lo, hi = _region_of(length, split, fractions)
            offset = int(rng.integers(lo, max(lo, hi - n) + 1))
            out.append(
                Clip(path, SILENCE, split, path.stem, offset, BACKGROUND_DIR, gain, "window")
            )
    return out


def _check_labels(root: Path, wanted: list[str], available: list[str]) -> None:
    avail = ", ".join(available) or "none"
    for lab in wanted:
        if lab not in available:
            raise ValueError(f"{root}: label {lab!r} not found; available labels: {avail}")


def _parse_labels(labels: Sequence[str] | str | None) -> list[str] | None:
    if labels is None:
        return None
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    return [s.strip() for s in items if s.strip()]


def _scan(
    root: Path,
    layout: str,
    val_pct: float,
    test_pct: float,
    pattern: re.Pattern[str] | None,
    report: LoadReport | None = None,
) -> list[Clip]:
    if layout == "esc50":
        return _scan_esc50(root)
    if layout == "speech_commands":
        return _scan_speech_commands(root, val_pct, test_pct, pattern)
    return _scan_folders(root, val_pct, test_pct, pattern, report)


def load_dataset(
    root: str | Path,
    layout: str = "auto",
    labels: Sequence[str] | str | None = None,
    unknown: bool = False,
    silence: bool = False,
    seed: int = 0,
    val_percent: float = 10.0,
    test_percent: float = 10.0,
    clip_samples: int = SAMPLE_RATE,
    progress: bool = True,
    unknown_share: float = 1.0,
    group_pattern: str | None = None,
    seen_percent: float = 0.0,
) -> Dataset:
    """Scan ``root``, open every file that may be used, split and map labels (module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: dataset folder does not exist")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if not (0 <= val_percent and 0 <= test_percent and val_percent + test_percent < 100):
        raise ValueError("val_percent and test_percent must be >= 0 and sum to less than 100")
    if not unknown_share > 0:
        raise ValueError(f"unknown_share must be > 0, got {unknown_share}")
    if not 0 <= seen_percent < 100:
        raise ValueError(f"seen_percent must be >= 0 and < 100, got {seen_percent}")
    if layout == "auto":
        layout = detect_layout(root)
    report = LoadReport(root=str(root), layout=layout)
    candidates = _scan(root, layout, val_percent, test_percent,
                       compile_group_pattern(group_pattern), report)  # fmt: skip
    report.files_seen = len({c.path for c in candidates})
    available = sorted({c.source_label for c in candidates})
    wanted = _parse_labels(labels) or available
    _check_labels(root, wanted, available)
    if unknown and not set(available) - set(wanted):
        raise ValueError(
            f"{root}: unknown=True needs labels= to name a subset; every class "
            f"({', '.join(available)}) is already a label"
        )
    use = [c for c in candidates if c.source_label in wanted or unknown]
    report.not_used["label not selected"] = len({c.path for c in candidates}) - len(
        {c.path for c in use}
    )
    good = _validate(use, layout, clip_samples, report, progress)
    bg = _validate_background(root, layout, report, progress)
    rng = np.random.default_rng(seed)
    known = [c for c in good if c.source_label in wanted]
    others = [replace(c, label=UNKNOWN) for c in good if c.source_label not in wanted]
    kept_unknown = _cap_unknown(known, others, rng, unknown_share) if unknown else []
    report.not_used["over the _unknown_ cap"] = len(others) - len(kept_unknown)
    if seen_percent > 0:
        known, kept_unknown = _hold_seen(known, kept_unknown, seen_percent)
    fractions = (100.0 - val_percent - test_percent, val_percent, test_percent)
    sil = _silence_clips(known, bg, fractions, clip_samples, rng) if silence else []
    clips = sil + kept_unknown + known
    final_labels = [SILENCE] * bool(silence) + [UNKNOWN] * bool(unknown) + wanted
    _check_classes(root, layout, clips, final_labels, report)
    report.files_used = len({c.path for c in kept_unknown + known})
    report.counts = {s: dict(Counter(c.label for c in clips if c.split == s)) for s in SPLITS}
    if seen_percent > 0:
        report.counts[SEEN] = dict(Counter(c.label for c in clips if c.split == SEEN))
    _count_groups(report, kept_unknown + known)
    for s in ("val", "test"):
        if not report.counts[s]:
            _LOGGER.warning("%s: the %s split is empty", root, s)
    background = [p for p, _ in bg]
    return Dataset(root, layout, final_labels, clips, background, report, clip_samples, fractions,
                   seen_percent)


def default_seen_percent(root: Path) -> float:
    """``SEEN_PERCENT`` for a folder-per-label set or a Speech Commands one without lists,
    else 0 (lists decide the split; ESC-50's folds do)."""
    root = Path(root)
    if not root.is_dir() or detect_layout(root) not in ("folders", "speech_commands"):
        return 0.0
    return 0.0 if any(_lists(root)) else SEEN_PERCENT


def _hold_seen(
    known: list[Clip], unknown: list[Clip], percent: float
) -> tuple[list[Clip], list[Clip]]:
    """Move ``percent`` % of each training speaker's files (rounded down, by a hash of the file
    name, every window of a file together) to the ``SEEN`` split; a speaker with fewer than
    ``100 / percent`` files gives none, so every seen speaker still trains."""
    files: dict[str, set[Path]] = defaultdict(set)
    for c in known + unknown:
        if c.split == "train" and c.path is not None:
            files[c.group].add(c.path)
    held: set[Path] = set()
    for paths in files.values():
        order = sorted(paths, key=lambda p: (hash_percent(f"seen:{p.name}"), p.name))
        held.update(order[: int(len(order) * percent / 100.0)])

    def move(clips: list[Clip]) -> list[Clip]:
        return [replace(c, split=SEEN) if c.split == "train" and c.path in held else c
                for c in clips]  # fmt: skip

    return move(known), move(unknown)


def _count_groups(report: LoadReport, clips: Sequence[Clip]) -> None:
    """Speakers (groups) per split, and any group that more than one split holds."""
    per = {s: {c.group for c in clips if c.split == s} for s in SPLITS}
    report.groups = {s: len(g) for s, g in per.items()}
    seen = {c.group for c in clips if c.split == SEEN}  # training speakers by construction
    if seen:
        report.groups[SEEN] = len(seen)
    shared = sorted(set.union(*(per[a] & per[b] for a, b in (("train", "val"), ("train", "test"),
                                                          ("val", "test")))))  # fmt: skip
    report.shared_groups = shared
    if shared:
        _LOGGER.warning(
            "%s: %d speaker(s)/group(s) in more than one split (e.g. %s): the test figure will "
            "overstate what unseen speakers get; fix the lists or pass --group-pattern",
            report.root, len(shared), ", ".join(shared[:3]),
        )
    if clips and len({c.group for c in clips}) == len({c.path for c in clips}):
        _LOGGER.warning(
            "%s: every file is a group of its own, so files of one speaker may sit in different "
            "splits; name files <speaker>_<n>.wav or pass --group-pattern", report.root,
        )


def _validate_background(
    root: Path, layout: str, report: LoadReport, progress: bool
) -> list[tuple[Path, int]]:
    if layout == "esc50":
        return []
    out = []
    files = _background_files(root)
    report.files_seen += len(files)
    for p in tqdm(files, desc="background noise", unit="file", disable=not progress):
        audio, reason = probe_wav(p)
        if audio is None:
            report.skipped.append((p, reason))
        else:
            out.append((p, int(audio.size)))
    report.background_files = len(out)
    return out


def _check_classes(
    root: Path, layout: str, clips: list[Clip], labels: list[str], report: LoadReport
) -> None:
    present = sorted({c.label for c in clips})
    if not clips:
        raise ValueError(
            f"{root}: no usable audio found (layout {layout}, {report.files_seen} files seen, "
            f"{len(report.skipped)} skipped)"
        )
    if len(present) < 2:
        raise ValueError(
            f"{root}: only one class ({present[0]}) has clips; a classifier needs at least two "
            f"(labels asked for: {', '.join(labels)})"
        )
    empty = [lab for lab in labels if lab not in present]
    if empty:
        raise ValueError(f"{root}: no usable clips for label(s) {', '.join(empty)}")


# --- CLI ------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="scan a dataset and print clips per label and split, and skipped files",
        description="Scan a dataset folder, open every file, and print what training would use.",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, default="auto", help="layout (default: auto)")
    p.add_argument("--labels", help="comma-separated label subset (default: every class)")
    p.add_argument("--unknown", action="store_true", help="map other classes to _unknown_")
    p.add_argument("--silence", action="store_true", help="add _silence_ clips from noise files")
    p.add_argument(
        "--seed", type=int, default=0, help="seed for unknown/silence picks (default: 0)"
    )
    p.add_argument("--val-percent", type=float, default=10.0, help="val share (%%, default: 10)")
    p.add_argument("--test-percent", type=float, default=10.0, help="test share (%%, default: 10)")
    p.add_argument("--group-pattern", metavar="REGEX",
                   help="regular expression whose first group (or match) in a file name is its "
                        "speaker/session; default: the name before _nohash_ or its last _")  # fmt: skip
    p.add_argument("--seen-test", type=float, metavar="PCT",
                   help="percent of each training speaker's files held back for the same-speaker "
                        f"figure, as train's --seen-test (default: {SEEN_PERCENT:g} where speakers "
                        "are split by hash, else 0)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the JSON summary instead")
    p.set_defaults(func=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    ds = load_dataset(
        args.data,
        layout=args.layout,
        labels=args.labels,
        unknown=args.unknown,
        silence=args.silence,
        seed=args.seed,
        val_percent=args.val_percent,
        test_percent=args.test_percent,
        group_pattern=args.group_pattern,
        seen_percent=default_seen_percent(args.data) if args.seen_test is None else args.seen_test,
    )
    if args.json:
        print(json.dumps({"labels": ds.labels, **ds.report.summary()}, indent=2))
    else:
        print(f"labels: {', '.join(ds.labels)}")
        print(ds.report.table())
    return 0
