"""Long labelled test streams, built reproducibly from a seed, and their events files.

A stream is ``<name>.wav`` (16 kHz mono int16) plus ``<name>.events.json``::

    {"version": 1, "duration_s": 300.0, "sample_rate": 16000, "seed": 0,
     "events":   [{"label": "smoke_alarm", "start_s": 12.31, "end_s": 13.05,
                   "source": "data/alarm/smoke_alarm/alarm0007.wav", "snr_db": 8.2}, ...],
     "negative_spans": [{"start_s": 40.0, "end_s": 115.0}, ...],
     "negatives": [{"start_s": 52.9, "end_s": 53.8, "source": "data/alarm/background/n3.wav"}]}

``version``, ``duration_s`` and ``events`` (each with ``label``, ``start_s``, ``end_s``) are
required; ``source``, ``snr_db``, ``negative_spans`` and ``negatives`` are optional, so a real
recording labelled by hand is a stream too. :func:`read_events` validates a file and names the
file and the key on any error.

How :func:`build_stream` lays a stream out (all choices from one ``numpy`` generator seeded
with ``StreamSpec.seed``, so the same inputs and seed give the same bytes):

1. The bed: background files (random file, random offset, looped) to the full duration, scaled
   to ``background_dbfs`` RMS (digital silence if no background file is given).
2. Event clips are drawn label by label in turn (a random clip of that label each time) and
   trimmed to their sound: leading and trailing 10 ms frames more than ``trim_db`` below the
   clip's loudest frame are cut, so ``start_s``/``end_s`` are where the sound is, not where a
   1 s clip's padding is.
3. ``negative_share`` of the duration is set aside as negative-only stretches (``negative_spans``,
   ``negative_stretches`` of them): no event is placed there, only negative clips (other sounds,
   other words) at ``negatives_per_minute``.
4. Events and stretches are shuffled and the free time is split at random between the gaps
   (each gap at least ``min_gap_s``), so nothing overlaps and nothing is rejected and redrawn.
5. Each event is mixed at an SNR drawn uniformly from ``snr_db`` against the bed's nominal
   level (event RMS over its trimmed sound = ``background_dbfs + snr``); the gain is lowered if
   the peak would pass -1 dBFS, and the SNR actually used is recorded. Negatives use
   ``negative_snr_db``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earshot.audio import SAMPLE_RATE
from earshot.wavio import WavError, read_wav, write_wav

_LOGGER = logging.getLogger(__name__)

EVENTS_VERSION = 1
EVENTS_SUFFIX = ".events.json"
OTHER_FORMATS = (".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")
"""Read through ``soundfile`` (libsndfile: FLAC, Ogg Vorbis, MP3, AIFF), a trainer dependency."""
PEAK_LIMIT = 10 ** (-1 / 20)
"""Events and negatives are never mixed in louder than -1 dBFS peak."""


class StreamError(ValueError):
    """A stream or events file is unusable; the message names the file and the key."""


@dataclass(frozen=True)
class Event:
    """One labelled sound in a stream (seconds from the start)."""

    label: str
    start_s: float
    end_s: float
    source: str = ""


@dataclass(frozen=True)
class StreamEvents:
    """A validated events file."""

    path: Path
    duration_s: float
    events: tuple[Event, ...]
    negative_spans: tuple[tuple[float, float], ...] = ()

    @property
    def wav_path(self) -> Path:
        """The stream's audio: ``<name>.wav`` beside ``<name>.events.json``."""
        return wav_for(self.path)

    @property
    def negative_s(self) -> float:
        return float(sum(e - s for s, e in self.negative_spans))


@dataclass(frozen=True)
class StreamSpec:
    """How to lay out one stream (see the module docstring)."""

    duration_s: float = 300.0
    """Stream length (s)."""
    events: int = 30
    """Number of labelled events."""
    snr_db: tuple[float, float] = (0.0, 15.0)
    """Per-event SNR range (dB) against the bed's nominal level."""
    background_dbfs: float = -45.0
    """RMS level of the background bed (dBFS, 0 = full-scale sine)."""
    negative_share: float = 0.25
    """Share of the duration set aside as negative-only stretches (0..0.9)."""
    negative_stretches: int = 2
    """How many stretches that share is split into."""
    negatives_per_minute: float = 6.0
    """Negative clips per minute of negative-only stretch."""
    negative_snr_db: tuple[float, float] = (0.0, 15.0)
    """SNR range of the negative clips."""
    min_gap_s: float = 1.5
    """Minimum silence (bed only) between any two placed items."""
    trim_db: float = 30.0
    """Cut leading/trailing 10 ms frames this far below the loudest frame."""
    seed: int = 0

    def check(self) -> None:
        def bad(key: str, want: str, got: Any) -> StreamError:
            return StreamError(f"stream spec: {key} must be {want}, got {got!r}")

        if not self.duration_s > 0:
            raise bad("duration_s", "> 0", self.duration_s)
        if self.events < 0:
            raise bad("events", ">= 0", self.events)
        for key in ("snr_db", "negative_snr_db"):
            lo, hi = getattr(self, key)
            if not lo <= hi:
                raise bad(key, "(low, high) with low <= high", getattr(self, key))
        if not 0.0 <= self.negative_share <= 0.9:
            raise bad("negative_share", "in 0..0.9", self.negative_share)
        if self.negative_stretches < 1:
            raise bad("negative_stretches", ">= 1", self.negative_stretches)
        if self.negatives_per_minute < 0:
            raise bad("negatives_per_minute", ">= 0", self.negatives_per_minute)
        if self.min_gap_s < 0:
            raise bad("min_gap_s", ">= 0", self.min_gap_s)
        if self.trim_db <= 0:
            raise bad("trim_db", "> 0", self.trim_db)


# -- reading audio and finding files -------------------------------------------------------------


def _soundfile() -> Any:
    try:
        import soundfile  # type: ignore[import-not-found]
    except ImportError:
        return None
    return soundfile


def audio_suffixes() -> tuple[str, ...]:
    """File types this machine can read: WAV, plus FLAC/OGG/AIFF if soundfile is importable."""
    return (".wav",) + (OTHER_FORMATS if _soundfile() is not None else ())


def read_audio(path: str | Path) -> np.ndarray:
    """Any WAV (:func:`earshot.wavio.read_wav`), or another format through soundfile."""
    p = Path(path)
    if p.suffix.lower() == ".wav":
        return read_wav(p)
    sf = _soundfile()
    if sf is None or p.suffix.lower() not in OTHER_FORMATS:
        raise WavError(
            f"{p}: cannot read {p.suffix or 'files without a suffix'} "
            f"(WAV always; {', '.join(OTHER_FORMATS)} need the soundfile package)"
        )
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:
        raise WavError(f"{p}: not a readable audio file ({e})") from None
    if data.size == 0:
        raise WavError(f"{p}: audio file holds no samples")
    from earshot.audio import resample

    return resample(data.mean(axis=1).astype(np.float32), int(rate), SAMPLE_RATE)


def audio_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files and folders (searched recursively) to a sorted list of readable audio files."""
    out: list[Path] = []
    suffixes = audio_suffixes()
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise StreamError(f"{p}: no audio files ({', '.join(suffixes)}) in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise StreamError(f"{p}: no such file or folder")
    return out


def event_clips_from_folder(
    root: str | Path, labels: Sequence[str] | None = None
) -> list[tuple[str, Path]]:
    """A folder-per-label data set to ``(label, path)`` pairs.

    Without ``labels``: every sub-folder whose name does not start with ``_`` is a label.
    """
    r = Path(root)
    if not r.is_dir():
        raise StreamError(f"{r}: no such folder")
    if labels is None:
        labels = sorted(d.name for d in r.iterdir() if d.is_dir() and not d.name.startswith("_"))
        if not labels:
            raise StreamError(f"{r}: no label folders (sub-folders not starting with _)")
    pairs: list[tuple[str, Path]] = []
    for lab in labels:
        d = r / lab
        if not d.is_dir():
            raise StreamError(f"{r}: label {lab!r} has no folder {d}")
        pairs += [(lab, f) for f in audio_files([d])]
    return pairs


# -- events files --------------------------------------------------------------------------------


def events_path(stream: str | Path) -> Path:
    """``x.wav`` or ``x`` -> ``x.events.json`` (an events path is returned as it is)."""
    p = Path(stream)
    if p.name.endswith(EVENTS_SUFFIX):
        return p
    return p.with_name((p.name[:-4] if p.suffix.lower() == ".wav" else p.name) + EVENTS_SUFFIX)


def wav_for(events_file: str | Path) -> Path:
    p = Path(events_file)
    return p.with_name(p.name[: -len(EVENTS_SUFFIX)] + ".wav")


def _number(v: Any, where: str, path: Path) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise StreamError(f"{path}: {where} must be a finite number, got {v!r}")
    return float(v)


def _span(d: Any, where: str, path: Path, duration: float) -> tuple[float, float]:
    if not isinstance(d, dict):
        raise StreamError(f"{path}: {where} must be an object with start_s and end_s, got {d!r}")
    for key in ("start_s", "end_s"):
        if key not in d:
            raise StreamError(f"{path}: {where} has no key {key!r}")
    s = _number(d["start_s"], f"{where}.start_s", path)
    e = _number(d["end_s"], f"{where}.end_s", path)
    if s < 0:
        raise StreamError(f"{path}: {where}.start_s must be >= 0, got {s}")
    if e <= s:
        raise StreamError(f"{path}: {where}.end_s ({e}) must be after start_s ({s})")
    if e > duration + 1e-6:
        raise StreamError(f"{path}: {where}.end_s ({e}) is after the stream's duration_s ({duration})")
    return s, e


def parse_events(doc: Any, path: Path) -> StreamEvents:
    """Validate a parsed events document (see the module docstring for the format)."""
    if not isinstance(doc, dict):
        raise StreamError(f"{path}: must hold a JSON object, got {type(doc).__name__}")
    for key in ("version", "duration_s", "events"):
        if key not in doc:
            raise StreamError(f"{path}: missing key {key!r}")
    if doc["version"] != EVENTS_VERSION:
        raise StreamError(f"{path}: version must be {EVENTS_VERSION}, got {doc['version']!r}")
    duration = _number(doc["duration_s"], "duration_s", path)
    if duration <= 0:
        raise StreamError(f"{path}: duration_s must be > 0, got {duration}")
    if not isinstance(doc["events"], list):
        raise StreamError(f"{path}: events must be a list, got {type(doc['events']).__name__}")
    events = []
    for i, d in enumerate(doc["events"]):
        where = f"events[{i}]"
        s, e = _span(d, where, path, duration)
        lab = d.get("label")
        if not isinstance(lab, str) or not lab:
            raise StreamError(f"{path}: {where}.label must be a non-empty string, got {lab!r}")
        src = d.get("source", "")
        if not isinstance(src, str):
            raise StreamError(f"{path}: {where}.source must be a string, got {src!r}")
        events.append(Event(lab, s, e, src))
    spans = doc.get("negative_spans", [])
    if not isinstance(spans, list):
        raise StreamError(f"{path}: negative_spans must be a list, got {type(spans).__name__}")
    neg = sorted(_span(d, f"negative_spans[{i}]", path, duration) for i, d in enumerate(spans))
    for (_, e0), (s1, _) in zip(neg, neg[1:], strict=False):
        if s1 < e0:
            raise StreamError(f"{path}: negative_spans overlap ({s1} < {e0})")
    for ev in events:
        for s, e in neg:
            if ev.start_s < e and ev.end_s > s:
                raise StreamError(
                    f"{path}: event {ev.label} at {ev.start_s} s lies in the negative span "
                    f"{s}..{e} s (negative spans hold no events)"
                )
    events.sort(key=lambda ev: (ev.start_s, ev.end_s, ev.label))
    return StreamEvents(path, duration, tuple(events), tuple(neg))


def read_events(path: str | Path) -> StreamEvents:
    """Read and validate ``<name>.events.json``; StreamError names the file and the key."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise StreamError(f"{p}: no such events file") from None
    except OSError as e:
        raise StreamError(f"{p}: cannot read ({e.strerror})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise StreamError(f"{p}: not valid JSON ({e})") from None
    return parse_events(doc, p)


def find_streams(items: Iterable[str | Path]) -> list[StreamEvents]:
    """Folders (every ``*.events.json`` in them), WAVs or events files to validated streams.

    Each stream's WAV must exist beside its events file.
    """
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*" + EVENTS_SUFFIX))
            if not found:
                raise StreamError(f"{p}: no *{EVENTS_SUFFIX} files in this folder")
            files += found
        else:
            files.append(events_path(p))
    out = []
    for f in files:
        ev = read_events(f)
        if not ev.wav_path.is_file():
            raise StreamError(f"{f}: its audio {ev.wav_path} does not exist")
        out.append(ev)
    return out


# -- building ------------------------------------------------------------------------------------


def rms_dbfs(x: np.ndarray) -> float:
    """AES17 RMS level (a full-scale sine is 0 dBFS); -200 for digital silence."""
    r = math.sqrt(2.0) * float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * math.log10(r) if r > 0 else -200.0


def trim(x: np.ndarray, below_db: float, frame: int = SAMPLE_RATE // 100) -> tuple[int, int]:
    """(first, end) sample of the sound: 10 ms frames within ``below_db`` of the loudest."""
    n = x.size // frame
    if n == 0:
        return 0, x.size
    e = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    if e.max() <= 0:
        return 0, x.size
    keep = np.flatnonzero(e >= e.max() * 10 ** (-below_db / 20))
    return int(keep[0] * frame), int(min(x.size, (keep[-1] + 1) * frame))


def _bed(files: Sequence[Path], n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    bed = np.zeros(n, np.float64)
    if not files:
        return bed
    cache: dict[Path, np.ndarray] = {}
    pos = 0
    while pos < n:
        f = files[int(rng.integers(len(files)))]
        if f not in cache:
            cache[f] = read_audio(f).astype(np.float64)
        x = cache[f]
        off = int(rng.integers(x.size))
        piece = np.concatenate([x[off:], x[:off]])[: n - pos]
        bed[pos : pos + piece.size] = piece - piece.mean()
        pos += piece.size
    level = rms_dbfs(bed)
    if level <= -200:
        raise StreamError(f"background files are digital silence: {', '.join(map(str, files))}")
    return bed * 10 ** ((dbfs - level) / 20)


def _split_free(rng: np.random.Generator, free: float, parts: int) -> np.ndarray:
    """``free`` seconds split at random into ``parts`` non-negative gaps."""
    if parts <= 0:
        return np.zeros(0)
    return free * rng.dirichlet(np.ones(parts))


def _place(
    lengths: Sequence[float], span: float, min_gap: float, rng: np.random.Generator, what: str
) -> list[float]:
    """Random non-overlapping start times for items of ``lengths`` in order, inside ``span``."""
    if not lengths:
        return []
    free = span - sum(lengths) - min_gap * (len(lengths) + 1)
    if free < 0:
        raise StreamError(
            f"stream spec: {len(lengths)} {what} of {sum(lengths):.1f} s in all, with "
            f"{min_gap} s gaps, do not fit in {span:.1f} s (make the stream longer or use fewer)"
        )
    gaps = _split_free(rng, free, len(lengths) + 1) + min_gap
    starts, t = [], 0.0
    for g, n in zip(gaps, lengths, strict=False):
        t += g
        starts.append(t)
        t += n
    return starts


def _mix(
    out: np.ndarray, clip: np.ndarray, start: int, snr: float, bed_dbfs: float
) -> float:
    """Add ``clip`` at ``snr`` dB above the bed's nominal level; returns the SNR used."""
    level = rms_dbfs(clip)
    if level <= -200:
        raise StreamError("an event clip is digital silence")
    gain = 10 ** ((bed_dbfs + snr - level) / 20)
    peak = float(np.abs(clip).max()) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    out[start : start + clip.size] += clip * gain
    return round(level + 20 * math.log10(gain) - bed_dbfs, 2)


def build_stream(
    out_dir: str | Path,
    name: str,
    event_clips: Sequence[tuple[str, str | Path]] | str | Path,
    background: Sequence[str | Path] = (),
    negatives: Sequence[str | Path] = (),
    spec: StreamSpec = StreamSpec(),
    labels: Sequence[str] | None = None,
    progress: bool = True,
) -> StreamEvents:
    """Write ``<out_dir>/<name>.wav`` and ``<name>.events.json``; returns the events as read back.

    ``event_clips``: ``(label, path)`` pairs, or a folder-per-label data set root (``labels``
    picks its label folders). ``background`` / ``negatives``: audio files or folders.
    """
    from tqdm import tqdm

    spec.check()
    if isinstance(event_clips, (str, Path)):
        pairs = event_clips_from_folder(event_clips, labels)
    else:
        pairs = [(str(lab), Path(p)) for lab, p in event_clips]
    if spec.events and not pairs:
        raise StreamError("build_stream: no event clips given")
    bg_files = audio_files(background)
    neg_files = audio_files(negatives)
    rng = np.random.default_rng(spec.seed)
    n = int(round(spec.duration_s * SAMPLE_RATE))
    mix = _bed(bg_files, n, spec.background_dbfs, rng)

    by_label: dict[str, list[Path]] = {}
    for lab, p in pairs:
        by_label.setdefault(lab, []).append(p)
    order = sorted(by_label)
    cache: dict[Path, np.ndarray] = {}

    def clip(p: Path) -> np.ndarray:
        if p not in cache:
            x = read_audio(p).astype(np.float64)
            a, b = trim(x, spec.trim_db)
            cache[p] = x[a:b] - x[a:b].mean()
        return cache[p]

    chosen = []
    for i in range(spec.events):
        lab = order[i % len(order)]
        files = by_label[lab]
        chosen.append((lab, files[int(rng.integers(len(files)))]))
    clips = [clip(p) for _, p in tqdm(chosen, desc="event clips", disable=not progress, leave=False)]

    # Items: events (kind "e", index) and negative-only stretches (kind "n"), shuffled.
    neg_total = spec.negative_share * spec.duration_s
    n_str = spec.negative_stretches if neg_total > 0 else 0
    items: list[tuple[str, int, float]] = [("e", i, c.size / SAMPLE_RATE) for i, c in enumerate(clips)]
    items += [("n", j, neg_total / n_str) for j in range(n_str)]
    perm = rng.permutation(len(items))
    items = [items[k] for k in perm]
    starts = _place([it[2] for it in items], spec.duration_s, spec.min_gap_s, rng, "events/stretches")

    events: list[dict[str, Any]] = []
    spans: list[dict[str, float]] = []
    negs: list[dict[str, Any]] = []
    for (kind, idx, length), t0 in zip(items, starts, strict=True):
        a = int(round(t0 * SAMPLE_RATE))
        if kind == "e":
            c = clips[idx]
            snr = _mix(mix, c, a, float(rng.uniform(*spec.snr_db)), spec.background_dbfs)
            events.append({
                "label": chosen[idx][0], "start_s": round(a / SAMPLE_RATE, 4),
                "end_s": round((a + c.size) / SAMPLE_RATE, 4), "source": str(chosen[idx][1]),
                "snr_db": snr,
            })  # fmt: skip
            continue
        b = min(n, a + int(round(length * SAMPLE_RATE)))
        spans.append({"start_s": round(a / SAMPLE_RATE, 4), "end_s": round(b / SAMPLE_RATE, 4)})
        count = int(round(spec.negatives_per_minute * length / 60.0)) if neg_files else 0
        picks = [neg_files[int(rng.integers(len(neg_files)))] for _ in range(count)]
        nclips = [clip(p) for p in picks]
        while nclips and sum(c.size for c in nclips) / SAMPLE_RATE + 0.2 * (len(nclips) + 1) > length:
            nclips.pop()  # the stretch is too short for them all: keep what fits
        nstarts = _place([c.size / SAMPLE_RATE for c in nclips], length, 0.2, rng, "negatives")
        for p, c, s in zip(picks, nclips, nstarts, strict=False):
            na = a + int(round(s * SAMPLE_RATE))
            snr = _mix(mix, c, na, float(rng.uniform(*spec.negative_snr_db)), spec.background_dbfs)
            negs.append({
                "start_s": round(na / SAMPLE_RATE, 4),
                "end_s": round((na + c.size) / SAMPLE_RATE, 4), "source": str(p), "snr_db": snr,
            })  # fmt: skip

    events.sort(key=lambda e: e["start_s"])
    doc = {
        "version": EVENTS_VERSION,
        "duration_s": round(n / SAMPLE_RATE, 4),
        "sample_rate": SAMPLE_RATE,
        "seed": spec.seed,
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()},
        "events": events,
        "negative_spans": spans,
        "negatives": negs,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_wav(out / f"{name}.wav", np.clip(mix, -1.0, 1.0).astype(np.float32))
    ev_path = out / f"{name}{EVENTS_SUFFIX}"
    ev_path.write_text(json.dumps(doc, indent=1) + "\n")
    _LOGGER.info("stream %s: %.0f s, %d events, %d negatives", ev_path, n / SAMPLE_RATE, len(events), len(negs))
    return read_events(ev_path)


# -- command line --------------------------------------------------------------------------------

EPILOG = """\
example:
  earshot-train make-streams out/data/alarm --labels smoke_alarm \\
      --background out/data/alarm/_background_noise_ --negatives out/data/alarm/background \\
      --out out/streams --count 3 --duration-s 600 --events 40
  earshot-train evaluate-stream out/bundles/pi --streams out/streams --out out/stream-eval
"""


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (dB), got {text!r}") from None
    return lo, hi


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-streams",
        help="build long labelled test streams (WAV + events.json) from clips and background",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = StreamSpec()
    p.add_argument("dataset", type=Path, metavar="DATASET", help="folder-per-label event clips")
    p.add_argument("--labels", help="comma-separated label folders (default: all not starting with _)")
    p.add_argument("--background", nargs="*", type=Path, default=[], help="background bed audio files/folders")
    p.add_argument("--negatives", nargs="*", type=Path, default=[], help="negative (non-event) audio files/folders")
    p.add_argument("--out", type=Path, required=True, help="folder for <name>.wav and <name>.events.json")
    p.add_argument("--name", default="stream", help="stream name (default: stream; with --count: stream-000, ...)")
    p.add_argument("--count", type=int, default=1, help="streams to build, seeds seed..seed+count-1 (default: 1)")
    p.add_argument("--duration-s", type=float, default=d.duration_s, help=f"stream length (default: {d.duration_s})")
    p.add_argument("--events", type=int, default=d.events, help=f"events per stream (default: {d.events})")
    p.add_argument("--snr-db", type=_pair, default=d.snr_db, metavar="LOW,HIGH", help="event SNR range (default: 0,15)")
    p.add_argument("--background-dbfs", type=float, default=d.background_dbfs, help=f"bed RMS level (default: {d.background_dbfs})")
    p.add_argument("--negative-share", type=float, default=d.negative_share, help=f"share of negative-only time (default: {d.negative_share})")
    p.add_argument("--seed", type=int, default=0, help="seed of the first stream (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    labels = [t.strip() for t in args.labels.split(",") if t.strip()] if args.labels else None
    base = StreamSpec(
        duration_s=args.duration_s, events=args.events, snr_db=args.snr_db,
        background_dbfs=args.background_dbfs, negative_share=args.negative_share,
    )  # fmt: skip
    for i in range(args.count):
        name = args.name if args.count == 1 else f"{args.name}-{i:03d}"
        ev = build_stream(
            args.out, name, args.dataset, args.background, args.negatives,
            replace(base, seed=args.seed + i), labels=labels, progress=not args.no_progress,
        )  # fmt: skip
        print(f"{ev.wav_path}: {ev.duration_s:.0f} s, {len(ev.events)} events, "
              f"{ev.negative_s:.0f} s negative-only")  # fmt: skip
    return 0
