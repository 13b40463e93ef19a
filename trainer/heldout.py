"""Held-out evaluation material: streams and noisy clips made only of what training never used.

A figure is only worth what its test material is. Everything here comes from one split of a
synthetic set (``val`` to choose settings on, ``test`` to report) and from the recordings of
the same split (``trainer.recordings``), so the voices (whole accents and variants), the music,
the speech and the noises were all held out from training:

* **event clips**: the split's clips of the labels that fire (keywords spoken by held-out
  speakers), or for an alarm set whole alarm patterns rendered afresh: two T3 cycles of a piezo
  or of a 520 Hz low-frequency alarm, two T4 cycles of a CO alarm (``ALARM_CYCLES``);
* **negatives**: the split's clips of every other label (filler words said by held-out
  speakers, speech in other languages from held-out recordings), and ``synth.NEGATIVE_WORDS``,
  words no set ever trains on, spoken by the split's speakers;
* **beds**: the split's music, speech and effects recordings.

:func:`make_streams` writes ``events-<k>.wav`` streams (events over a bed, with negative-only
stretches) and one long ``negatives`` stream (a bed of music and speech with negative words
and no event, for false alarms per hour). :func:`noisy` mixes clips with the split's
recordings at a given SNR for clip accuracy in noise.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from earshot.audio import SAMPLE_RATE
from earshot.wavio import write_wav

from . import recordings, synth
from .streams import StreamEvents, StreamSpec, build_stream

_LOGGER = logging.getLogger(__name__)

SPLITS = ("val", "test")
LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
ALARM_EVENTS = 24
"""Alarm cycles rendered for an alarm set's event clips (a third of them low-frequency)."""
EVENTS_PER_MINUTE = 6.0
"""Keyword events per minute of an events stream."""
ALARM_EVENTS_PER_MINUTE = 3.0
"""Alarm events (two cycles each, about 6.5 s) per minute of an events stream."""
NEGATIVE_WORD_TAKES = 2
"""Takes of each ``synth.NEGATIVE_WORDS`` word by the split's speakers."""
EVENTS_MINUTES = 10.0
"""Length of each events stream (min)."""
NEGATIVES_MINUTES = 60.0
"""Length of the negatives-only stream (min): false alarms per hour need an hour."""


def _split_files(root: Path, split: str) -> list[Path]:
    """The split's files: from the set's list file, or (a folder-per-label set, such as the
    synthetic alarm set) by the trainer's own split rule (``trainer.datasets``)."""
    lst = root / LISTS[split]
    if lst.is_file():
        return [root / line.strip() for line in lst.read_text().splitlines() if line.strip()]
    from .datasets import load_dataset
    from .train import TEST_PERCENT, VAL_PERCENT

    ds = load_dataset(root, val_percent=VAL_PERCENT, test_percent=TEST_PERCENT, progress=False)
    return sorted({c.path for c in ds.clips if c.split == split and c.path is not None})


def event_clips(root: Path, labels: Sequence[str], split: str) -> list[tuple[str, Path]]:
    """(label, path) of the split's clips of ``labels``."""
    return [(p.parent.name, p) for p in _split_files(root, split) if p.parent.name in labels]


def negative_clips(root: Path, labels: Sequence[str], split: str) -> list[Path]:
    """The split's clips of every label not in ``labels``."""
    return [p for p in _split_files(root, split) if p.parent.name not in labels]


def _speakers(root: Path, split: str) -> list[synth.Voice]:
    who = json.loads((root / synth.SPEAKERS_FILE).read_text())
    return [synth.Voice(v["accent"], v["variant"], int(v["pitch"]), float(v["warp"]))
            for v in who.values() if v["split"] == split]  # fmt: skip


def negative_words(
    root: Path, out: Path, split: str, seed: int, labels: Sequence[str] = ()
) -> list[Path]:
    """``synth.NEGATIVE_WORDS`` spoken by the split's speakers, written under ``out``; a word
    that would be heard as one of ``labels`` (``synth.collides``, a custom ``--words``
    vocabulary's) is left out, so a right detection is never counted as a false alarm."""
    voices = _speakers(root, split)
    paths = []
    for w, word in enumerate(synth.NEGATIVE_WORDS):
        if any(synth.collides(synth.word_of(x), word) for x in labels):
            continue
        for k in range(NEGATIVE_WORD_TAKES):
            rng = np.random.default_rng((seed, 21, w, k))
            voice = voices[int(rng.integers(len(voices)))]
            p = out / "negative_words" / f"{synth.label_of(word)}_{k}.wav"
            write_wav(p, np.clip(synth._keyword_clip(word, voice, rng), -1, 1))
            paths.append(p)
    return paths


ALARM_CYCLES = 2
"""Cycles of its pattern in one alarm event. A sounding smoke or CO alarm repeats its pattern
until it is silenced (NFPA 72 / NFPA 720), so an event is two cycles (T3: 6.5 s, T4: 6.3 s),
and a hit means the alarm was reported before the end of its second cycle."""


def alarm_cycles(
    out: Path, seed: int, labels: Sequence[str] = ("smoke_alarm",), count: int = ALARM_EVENTS,
    cycles: int = ALARM_CYCLES,
) -> list[tuple[str, Path]]:
    """``count`` alarm events per label, each ``cycles`` cycles of its pattern: a smoke alarm's
    T3 (a third of them low-frequency), a CO alarm's T4; the clip ends with the last beep."""
    pairs = []
    for label in labels:
        for i in range(count):
            rng = np.random.default_rng((seed, 22, i, label == "co_alarm"))
            t4 = label == "co_alarm"
            sched = synth.alarm_schedule("t4" if t4 else "t3", cycles, rng)
            low = not t4 and i % 3 == 0
            env = synth._envelope(sched)
            tone = synth.alarm_tone(env.size, rng, low_frequency=low)
            audio = (tone * env / (np.max(np.abs(tone)) + 1e-12)).astype(np.float32)
            keep = sum(on + off for on, off in sched) - sched[-1][1] + 0.05
            p = out / "alarm_events" / f"{label}_{i:03d}.wav"
            write_wav(p, audio[: int(keep * SAMPLE_RATE)] * np.float32(0.5))
            pairs.append((label, p))
    return pairs


def recording_split(split: str) -> str:
    """The recordings a split's beds use: the held-out files for ``test``; for ``val`` the
    training files (validation chooses settings: it may share training's backgrounds, never
    the test ones)."""
    return "test" if split == "test" else "train"


def bed_files(
    split: str, kinds: Sequence[str] = ("music", "speech", "effects"), words: Sequence[str] = ()
) -> list[Path]:
    """The split's recordings for beds (:func:`recording_split`), none that may say one of
    ``words`` (``recordings.may_say``)."""
    return [r.path for r in recordings.require(kinds, recording_split(split), words)]


def make_streams(
    root: str | Path,
    out: str | Path,
    labels: Sequence[str],
    split: str = "test",
    seed: int = 0,
    events_streams: int = 2,
    events_minutes: float = EVENTS_MINUTES,
    negatives_minutes: float = NEGATIVES_MINUTES,
    progress: bool = True,
) -> list[StreamEvents]:
    """Held-out streams for a bundle whose firing labels are ``labels`` (module docstring)."""
    root, out = Path(root), Path(out)
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    alarm = all("alarm" in x for x in labels)
    pairs = alarm_cycles(out, seed, labels) if alarm else event_clips(root, labels, split)
    if not pairs:
        raise ValueError(f"{root}: the {split} split holds no clip of {', '.join(labels)}")
    negs = [str(p) for p in negative_clips(root, labels, split)]
    if (root / synth.SPEAKERS_FILE).is_file():
        negs += [str(p) for p in negative_words(root, out, split, seed, labels)]
    words = [] if alarm else [synth.word_of(x) for x in labels]
    beds = bed_files(split, words=words)
    streams = []
    for k in range(events_streams):
        per_min = ALARM_EVENTS_PER_MINUTE if alarm else EVENTS_PER_MINUTE
        spec = StreamSpec(duration_s=events_minutes * 60, events=max(1, int(events_minutes * per_min)),
                          snr_db=(5.0, 20.0), background_dbfs=-42.0, negative_share=0.3,
                          negatives_per_minute=8.0, negative_snr_db=(5.0, 20.0),
                          seed=seed * 100 + k)  # fmt: skip
        streams.append(build_stream(out, f"events-{k}", pairs, beds, negs, spec,
                                    progress=progress))  # fmt: skip
    spec = StreamSpec(duration_s=negatives_minutes * 60, events=0, background_dbfs=-32.0,
                      negative_share=0.9, negative_stretches=1, negatives_per_minute=6.0,
                      negative_snr_db=(0.0, 15.0), seed=seed * 100 + 99)  # fmt: skip
    streams.append(build_stream(out, "negatives", [], beds, negs, spec,
                                progress=progress))  # fmt: skip
    return streams


@functools.lru_cache(maxsize=4)
def _noise_bank(split: str, seconds: float = 600.0, words: tuple[str, ...] = ()) -> np.ndarray:
    recs = recordings.require(["music", "speech"], recording_split(split), words)
    rng = np.random.default_rng(23)
    return np.concatenate([a for _, a in recordings.excerpts(recs, 20.0, seconds, rng)])


def noisy(
    clips: np.ndarray, snr_db: float, split: str = "test", seed: int = 0,
    words: tuple[str, ...] = (),
) -> np.ndarray:
    """``clips`` (n, samples) each mixed with a random slice of the split's music and speech at
    ``snr_db`` (clip RMS over noise RMS); no recording that may say one of ``words`` is used."""
    bank = _noise_bank(split, words=words)
    rng = np.random.default_rng((seed, 24))
    out = np.empty_like(clips, dtype=np.float32)
    for i, x in enumerate(np.asarray(clips, np.float32)):
        a = int(rng.integers(0, bank.size - x.size))
        n = bank[a : a + x.size].astype(np.float64)
        gain = np.sqrt(np.mean(x.astype(np.float64) ** 2) / max(np.mean(n**2), 1e-12))
        out[i] = np.clip(x + n * gain / 10 ** (snr_db / 20), -1, 1)
    return out


# --- CLI -------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "heldout-streams",
        help="held-out streams from a synthetic set: voices, music and noise training never used",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  earshot-train heldout-streams out/data/keywords --labels yes,no,up,down,left,right,"
        "go,stop --split test --out out/streams/keywords-test\n"
        "  earshot-train heldout-streams out/data/alarm --labels smoke_alarm --split val "
        "--out out/streams/alarm-val",
    )
    p.add_argument("data", type=Path, metavar="DATA", help="a set written by earshot-train synth")
    p.add_argument("--labels", required=True, help="comma-separated labels that fire")
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="val: to choose settings on; test: to report (default: test)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="folder for the streams")
    p.add_argument("--seed", type=int, default=0, help="layout seed (default: 0)")
    p.add_argument("--events-streams", type=int, default=2, metavar="N",
                   help="how many events streams (default: 2)")
    p.add_argument("--events-minutes", type=float, default=EVENTS_MINUTES,
                   help=f"length of each of the two events streams (default: {EVENTS_MINUTES:g})")
    p.add_argument("--negatives-minutes", type=float, default=NEGATIVES_MINUTES,
                   help=f"length of the negatives stream (default: {NEGATIVES_MINUTES:g})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    streams = make_streams(args.data, args.out, labels, args.split, args.seed,
                           events_streams=args.events_streams,
                           events_minutes=args.events_minutes,
                           negatives_minutes=args.negatives_minutes,
                           progress=not args.no_progress)  # fmt: skip
    for s in streams:
        print(f"{s.wav_path}: {s.duration_s / 60:.1f} min, {len(s.events)} events")
    return 0
