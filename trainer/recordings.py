"""Real recordings that Debian packages ship: music, speech in many languages, sound effects.

The synthetic keyword set is espeak-ng speaking over generated noise; a room holds music, people
talking and the clatter of a household. These recordings (installed by
``scripts/install-system-deps``) give training real backgrounds and ``_unknown_`` speech, and
give evaluation negatives the training never heard.

| kind    | package                  | what                                                       |
|---------|--------------------------|------------------------------------------------------------|
| music   | hedgewars-data           | 26 game soundtracks (~94 min)                              |
| speech  | fillets-ng-data-cs       | Czech dialogue by voice actors (~106 min)                  |
| speech  | ktuberling-data          | single spoken words in 26 languages (~32 min)              |
| speech  | hedgewars-data           | voice acting in 15 voice packs, several accents (~15 min); |
|         |                          | held out: evaluation only (``EVALUATION_ONLY``)            |
| effects | hedgewars-data           | game sound effects (~2 min)                                |
| effects | sound-theme-freedesktop  | desktop alert and bell sounds                              |

Each file belongs to one split for good, by the SHA-1 of its path (``TEST_PERCENT`` of them are
``test``): training mixes only ``train`` files, evaluation streams only ``test`` files, so a
held-out figure is measured on music and voices the model never heard. Hedgewars' voice packs
are ``test`` whole: they are the real people ``bench/real_voices.py`` scores a vocabulary on,
so no phrase of those voices may be trained on as ``_unknown_`` or mixed in as a background.

Left out, whatever the package: anything that says a keyword or a digit (ktuberling's English
words are object names, none a keyword; hedgewars' countdown and its "Yessir", "Nooo" and
"Enemy down" clips,
the ALSA and freedesktop channel tests that say "left" and "right"), and every recording that
is reserved for independent evaluation (no Asterisk, flite, festival or CMU Arctic audio is
read from anywhere).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from earshot.audio import SAMPLE_RATE, resample

_LOGGER = logging.getLogger(__name__)

TEST_PERCENT = 30.0
"""Share of the files (by path hash) kept for evaluation only."""

VOICE_PACKS = "/usr/share/games/hedgewars/Data/Sounds/voices"
"""Hedgewars' voice packs, one folder per voice actor or character."""

SOURCES: tuple[tuple[str, str, str], ...] = (
    ("music", "/usr/share/games/hedgewars/Data/Music", "*.ogg"),
    ("speech", "/usr/share/games/fillets-ng/sound", "**/cs/*.ogg"),
    ("speech", "/usr/share/ktuberling/sounds", "*/*.ogg"),
    ("speech", VOICE_PACKS, "*/*.ogg"),
    ("effects", "/usr/share/games/hedgewars/Data/Sounds", "*.ogg"),
    ("effects", "/usr/share/sounds/freedesktop/stereo", "*.oga"),
)
"""(kind, folder, glob) of every source read."""

EVALUATION_ONLY = (VOICE_PACKS,)
"""Folders whose every file is ``test``: the voice actors there are the real-voice evaluation
(``bench/real_voices.py``, and the real recordings of the default commands). While 70 % of
their other phrases were training ``_unknown_`` clips and backgrounds, the score on their
recordings of the vocabulary measured voices the model had been taught to call "not a word"."""

_EXCLUDE = re.compile(
    r"(countdown|yessir|nooo|enemydown|audio-channel|front_left|front_right|rear_left|rear_right"
    r"|/math/|number|digit|asterisk|flite|festival|arctic)",
    re.IGNORECASE,
)
"""Paths never read: keywords, digits, and anything reserved for independent evaluation."""

KINDS = ("music", "speech", "effects")


class RecordingError(RuntimeError):
    """No usable recordings were found (the message says which packages to install)."""


@dataclass(frozen=True)
class Recording:
    """One file of real audio."""

    path: Path
    kind: str
    """"music", "speech" or "effects"."""
    split: str
    """"train" or "test", fixed by the path's hash."""


def split_of(path: Path) -> str:
    """``test`` for ``TEST_PERCENT`` % of paths (SHA-1 of the path), ``train`` for the rest;
    ``test`` for every file under an ``EVALUATION_ONLY`` folder."""
    if any(str(path).startswith(folder + "/") for folder in EVALUATION_ONLY):
        return "test"
    h = int(hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:8], 16)
    return "test" if (h % 10000) / 100.0 < TEST_PERCENT else "train"


def may_say(path: Path, words: Sequence[str]) -> bool:
    """Whether ``path``'s name suggests it says one of ``words`` (a vocabulary's words or
    phrases): the file name's letters, lower case, start or end with a word's letters, or
    contain them (words of 4 letters or more). The packages name spoken clips by what they say
    (hedgewars' ``Takecover.ogg``, ktuberling's ``hat.ogg``); a false match only drops a file."""
    stem = re.sub(r"[^a-z]", "", path.stem.lower())
    for word in words:
        w = re.sub(r"[^a-z]", "", word.lower())
        if w and (stem.startswith(w) or stem.endswith(w) or (len(w) >= 4 and w in stem)):
            return True
    return False


def find(
    kinds: Sequence[str] = KINDS, split: str | None = None, words: Sequence[str] = ()
) -> list[Recording]:
    """Every installed recording of ``kinds`` (and of ``split``, if given), sorted by path;
    files that may say one of ``words`` (:func:`may_say`) are left out."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown recording kind(s) {bad}: choose from {KINDS}")
    found = []
    for kind, folder, pattern in SOURCES:
        if kind not in kinds:
            continue
        for p in sorted(Path(folder).glob(pattern)):
            if p.is_file() and not _EXCLUDE.search(str(p)) and not may_say(p, words):
                found.append(Recording(p, kind, split_of(p)))
    return [r for r in found if split is None or r.split == split]


def require(
    kinds: Sequence[str] = KINDS, split: str | None = None, words: Sequence[str] = ()
) -> list[Recording]:
    """:func:`find`, raising RecordingError naming the packages when a kind has no file."""
    recs = find(kinds, split, words)
    missing = [k for k in kinds if not any(r.kind == k for r in recs)]
    if missing:
        pkgs = sorted({_package_of(f) for k, f, _ in SOURCES if k in missing})
        raise RecordingError(
            f"no {'/'.join(missing)} recordings found ({split or 'any'} split): install "
            f"{' '.join(pkgs)} (scripts/install-system-deps does)"
        )
    return recs


def _package_of(folder: str) -> str:
    if "fillets" in folder:
        return "fillets-ng-data-cs"
    if "ktuberling" in folder:
        return "ktuberling-data"
    if "freedesktop" in folder:
        return "sound-theme-freedesktop"
    return "hedgewars-data"


def duration(path: Path) -> float:
    """Length of a recording in seconds (header only)."""
    import soundfile

    try:
        return float(soundfile.info(str(path)).duration)
    except Exception as e:  # libsndfile raises its own error type for any unreadable file
        raise RecordingError(f"{path}: not readable ({e})") from None


def read(path: Path, start_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """A recording (or ``seconds`` of it from ``start_s``) as 16 kHz mono float32. soundfile
    reads Ogg Vorbis, FLAC and WAV, and seeks, so an excerpt does not decode the whole file."""
    import soundfile

    try:
        with soundfile.SoundFile(str(path)) as f:
            rate = f.samplerate
            f.seek(min(int(start_s * rate), f.frames))
            n = -1 if seconds is None else int(seconds * rate)
            data = f.read(n, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises its own error type for any unreadable file
        raise RecordingError(f"{path}: not readable ({e})") from None
    return resample(data.mean(axis=1), int(rate), SAMPLE_RATE)


def excerpts(
    recs: Sequence[Recording],
    seconds: float,
    total_s: float,
    rng: np.random.Generator,
    max_items: int | None = None,
) -> Iterator[tuple[Recording, np.ndarray]]:
    """Up to ``total_s`` seconds of audio (and ``max_items`` excerpts) as excerpts of at most
    ``seconds`` each, one per file visited in a random order, cycling through the files again
    when needed; files shorter than 0.3 s, unreadable or silent are passed over."""
    left, items, order = total_s, 0, rng.permutation(len(recs))
    misses, k = 0, 0
    while left > 0 and (max_items is None or items < max_items) and misses < 2 * len(recs):
        rec = recs[int(order[k % len(recs)])]
        k += 1
        try:
            length = duration(rec.path)
        except RecordingError as e:
            _LOGGER.warning("%s; skipped", e)
            misses += 1
            continue
        take = min(seconds, left, length)
        audio = read(rec.path, float(rng.uniform(0.0, length - take)), take) if take >= 0.3 else None
        if audio is None or not np.any(np.abs(audio) > 1e-4):
            misses += 1  # too short, or silent there
            continue
        misses = 0
        left -= audio.size / SAMPLE_RATE
        items += 1
        yield rec, audio
