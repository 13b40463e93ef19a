"""The built-in synthetic dataset: espeak-ng keywords and smoke-alarm patterns, from one seed.

``earshot-train synth OUT`` writes

* ``OUT/keywords/``: Speech Commands layout. yes/no/up/down/left/right/go/stop spoken by
  espeak-ng (with ``EARSHOT_MBROLA=yes``, half of each split's speakers through the installed
  MBROLA voices, ``MBROLA_VOICES``: real people's diphones, and SVOX Pico's ``PICO_VOICES``,
  ``natural_voices``); a "speaker" is one voice +
  variant + pitch (+ vocal-tract warp), and the file names are
  ``<speaker>_nohash_<n>.wav``. Each clip has its own speed (words per minute) and amplitude
  (``-a``), is resampled from espeak's 22.05 kHz to 16 kHz, trimmed, placed in 1 s with a small
  random offset, and gets a faint white-noise floor. ``validation_list.txt`` and
  ``testing_list.txt`` put 10 % of the speakers each in val and test. ``_background_noise_/``
  holds 15 s of white, pink, brown and hum+fan noise. ``--fillers N`` adds N clips of each of
  the ``FILLER_WORDS`` (Speech Commands' auxiliary words, neighbours of each keyword, words of
  other shapes; over a hundred) in folders of their own, and ``HOUSEHOLD_SHARE`` as many non-speech
  household sounds (beeps, alarm windows, clicks) in ``household/``, for an ``_unknown_`` class
  (``earshot-train train --labels yes,no,... --unknown``). ``NEGATIVE_WORDS`` never enter the
  keyword set: they are the held-out words a streamed test checks a keyword model rejects.
* ``OUT/alarm/``: one folder per label. ``smoke_alarm/``: 1 s windows holding at least 80 ms of
  tone from a T3 pattern (NFPA 72 / ISO 8201: 0.5 s on, 0.5 s off, three times, then 1.5 s off);
  ``co_alarm/``: the same from a T4 pattern (NFPA 720 CO alarms: four 0.1 s beeps 0.1 s apart,
  then 5 s off); the tone is
  a piezo's ~3.0-3.4 kHz fundamental with a second harmonic and a slight wobble or, for
  ``LOW_FREQUENCY_SHARE`` of the T3 windows, a low-frequency alarm's 520 Hz square wave, at a
  random level over a random noise at 0-30 dB SNR. ``background/``: negatives: espeak-ng speech, noise,
  beeps away from the alarm band (microwave-like 2 kHz, 1 kHz, 440 Hz, 4-5 kHz), clicks and
  near-silence. Also a ``_background_noise_/`` folder for augmentation.

Every random choice comes from ``numpy.random.default_rng((seed, set, class, index))`` and
espeak-ng is deterministic, so the same seed writes byte-identical WAVs. espeak-ng runs in a
pool of two worker threads (each call is its own process).

``make_stream`` renders a test/demo stream with keyword or alarm events at known onsets.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from earshot.audio import SAMPLE_RATE, resample
from earshot.wavio import write_wav

_LOGGER = logging.getLogger(__name__)

FS = SAMPLE_RATE
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "go", "stop")
ENGLISH_VOICES = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")  # fmt: skip
"""espeak-ng's English voices (accents) of its own formant synthesiser."""
HELD_OUT_VOICES = {"test": ("en-us-nyc", "en-gb-x-gbcwmd"), "val": ("en-029",)}
"""Whole accents that only the validation or test speakers use: a test figure is for voices
(accent *and* variant) the model never heard."""
MBROLA_VOICES = ("mb-us1", "mb-us2", "mb-us3", "mb-en1", "mb-af1-en", "mb-nl2-en", "mb-fr1-en",
                 "mb-fr4-en", "mb-de1-en", "mb-de2-en", "mb-de3-en", "mb-de4-en", "mb-de5-en",
                 "mb-de6-en", "mb-gr2-en", "mb-hu1-en", "mb-pl1-en", "mb-ro1-en", "mb-sw1-en",
                 "mb-sw2-en")  # fmt: skip
"""espeak-ng's English voices that speak through MBROLA diphone databases: each database is
cut from recordings of one real person (four native English speakers, sixteen who speak
English with their own language's sounds), so the voice has a real glottal source and real
formants, which espeak-ng's formant synthesis has not. They come from Debian's non-free
``mbrola-*`` packages (``EARSHOT_MBROLA=yes scripts/install-system-deps`` installs them);
``mbrola_voices()`` lists the installed ones."""
MBROLA_HELD_OUT = {"test": ("mb-us3", "mb-de5-en", "mb-pl1-en"), "val": ("mb-hu1-en",)}
"""MBROLA voices only the test or validation speakers use (one native English voice held out)."""
MBROLA_VARIANT = "mbrola"
"""``Voice.variant`` of an MBROLA voice (espeak-ng's variants shape its formant synthesiser,
which an MBROLA voice does not use)."""
MBROLA_SHARE = 0.5
"""Share of each split's speakers drawn from the installed MBROLA voices of that split."""
MBROLA_DIR = Path("/usr/share/mbrola")
PICO_VOICES = ("en-US", "en-GB")
"""SVOX Pico's English voices (``pico2wave -l``; Debian non-free ``libttspico-utils``): a
statistical (HMM) synthesiser trained on recordings of one real speaker each, unlike
espeak-ng's formant rules or MBROLA's concatenated diphones. Drawn beside the MBROLA voices
(``natural_voices``) with ``EARSHOT_MBROLA=yes``."""
PICO_HELD_OUT = {"test": ("en-GB",), "val": ()}
"""Pico voices only the test speakers use (``en-US`` trains)."""
PICO_VARIANT = "pico"
"""``Voice.variant`` of a Pico voice (``Voice.base`` is ``pico-<language>``)."""
PICO_WEIGHT = 4
"""A Pico voice is drawn as often as this many MBROLA voices (each is one of few)."""
VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Demonic", "Denis", "Diogo",
    "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike",
    "Nguyen", "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "UniRobot",
    "adam", "anika", "anikaRobot", "announcer", "antonio", "aunty", "belinda", "benjamin",
    "boris", "caleb", "croak", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5",
    "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4",
    "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul",
    "pedro", "quincy", "rob", "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4",
    "robosoft5", "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby", "steph", "steph2",
    "steph3", "travis", "victor", "whisper", "whisperf", "zac",
)  # fmt: skip
"""espeak-ng 1.51's voice variants (``espeak-ng --voices=variant``, by file name)."""
VARIANT_TEST_PERCENT, VARIANT_VAL_PERCENT = 20.0, 10.0
"""Shares of ``VARIANTS`` (by name hash) that only test or validation speakers use."""
WARP_RANGE = (0.86, 1.16)
"""Vocal-tract-length perturbation: a speaker's audio is resampled by this factor (formants,
pitch and tempo move together, as between a large and a small speaker)."""
SPLIT_SHARES = {"train": 0.7, "val": 0.1, "test": 0.2}
"""Share of each word's clips spoken by training, validation and test speakers."""
FILLER_WORDS = (
    # Speech Commands' auxiliary words (v1 and v2), the digits that are not negatives below
    "bed", "bird", "cat", "dog", "house", "marvin", "sheila", "tree", "wow", "learn",
    "backward", "forward", "follow", "visual", "one", "two", "four", "five", "six", "eight", "nine",
    # neighbours of the keywords: a shared onset, vowel or coda, so "_unknown_" is learnt where
    # it borders each keyword (homophones such as "know" and "write" are left out: they ARE the
    # keyword to the ear)
    "yet", "yeah", "yell", "guess", "less", "test", "dress", "chess", "jet",
    "note", "nose", "now", "not", "snow", "slow", "show", "low", "toe", "bone",
    "goal", "ghost", "goat", "gold", "coat", "code", "grow", "glow", "boat", "gum", "goose",
    "cup", "pup", "hop", "top", "bus", "but", "cut", "jump", "under", "uncle", "ugly", "oven",
    "town", "brown", "crown", "round", "sound", "dawn", "done", "doubt", "loud", "cloud",
    "lift", "loft", "laughed", "theft", "felt", "belt", "lent", "leaf", "let", "lap",
    "light", "bright", "white", "ride", "ripe", "rate", "wide", "bite", "kite", "fight", "quite",
    "step", "shop", "drop", "spot", "stock", "strap", "stamp", "star", "store", "stuff",
    # other shapes (vowel onsets, two or three syllables, sibilants, nasals)
    "orange", "because", "maybe", "tomorrow", "pillow", "shadow", "hero", "radio", "banana",
    "computer", "pencil", "family", "button", "bottle", "number", "people", "little", "money",
    "summer", "winter", "sugar", "baby", "city", "movie", "letter", "party", "robot", "silver",
    "tiger", "ocean", "island", "always", "around", "about", "monkey", "jacket", "lemon",
    # ending in the vowel of "no" and "go" after another consonant (a word whose last syllable
    # IS a keyword, such as "ago" or "mango", is left out)
    "so", "row", "though", "although", "below", "piano", "potato", "tomato", "photo", "video",
    "studio", "solo", "elbow", "rainbow", "arrow", "meadow", "borrow",
)  # fmt: skip
"""Non-keywords for an ``_unknown_`` class (``--fillers``): Speech Commands' auxiliary words,
words that share sounds with each keyword, and words of other shapes. None is a keyword or one
of ``NEGATIVE_WORDS`` (tests/test_synth.py checks), and none is a near-copy of a negative word
("even" of "evening", "rice" of "ice"): the negatives stay the held-out check that a model
rejects words it never heard."""
NEGATIVE_WORDS = (
    "hello", "kitchen", "coffee", "window", "music", "morning", "dinner", "weather", "garden",
    "table", "seven", "happy", "later", "paper", "water", "listen", "never", "okay",
    # varied onsets (glides, vowels, sibilants, stops): a vowel's upper harmonics reach the
    # piezo band, and a window that holds only a word's first syllable must stay a negative
    "yellow", "evening", "apple", "open", "zero", "three", "sister", "chicken", "shoes", "very",
    "thank you", "good night", "easy", "tea", "answer", "ice",
)  # fmt: skip
ALARM_LABELS = ("smoke_alarm", "co_alarm", "background")
"""The alarm set's folders: T3 smoke alarms, T4 carbon-monoxide alarms, everything else."""
DEFAULT_PER_LABEL = {"keywords": 300, "alarm": 150}
MARKER = "SYNTH.json"
_WORD = re.compile(r"^[a-z][a-z' ]*$")


@dataclass(frozen=True)
class Voice:
    """One espeak-ng "speaker": an accent, a variant, a pitch and a vocal-tract length."""

    base: str
    """espeak-ng language voice, e.g. "en-gb"."""
    variant: str
    """espeak-ng variant appended with "+", e.g. "f3"."""
    pitch: int
    """espeak-ng -p pitch (0-99)."""
    warp: float = 1.0
    """Resampling factor applied to the speech (``WARP_RANGE``); 1.0 = espeak-ng as it is."""

    @property
    def speaker(self) -> str:
        warp = "" if self.warp == 1.0 else f"-w{round(self.warp * 100)}"
        return f"{self.base.replace('-', '')}-{self.variant}-p{self.pitch}{warp}"


# --- sound sources ---------------------------------------------------------------------------


def espeak(text: str, voice: Voice, speed: int = 160, amplitude: int = 100) -> np.ndarray:
    """``text`` spoken by espeak-ng (or an MBROLA voice through it, or SVOX Pico for a
    ``PICO_VARIANT`` voice), float32 at 16 kHz (untrimmed)."""
    if voice.variant == PICO_VARIANT:
        return _pico(text, voice, speed, amplitude)
    name = voice.base if voice.variant == MBROLA_VARIANT else f"{voice.base}+{voice.variant}"
    cmd = ["espeak-ng", "--stdout", "-v", name, "-s", str(speed), "-p", str(voice.pitch),
           "-a", str(amplitude), text]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=30).stdout
    except FileNotFoundError:
        raise FileNotFoundError("espeak-ng not found: run scripts/install-system-deps") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(
            f"espeak-ng failed for {text!r} in voice {name}: {e.stderr.decode().strip()}"
        ) from None
    # espeak-ng --stdout writes a 44-byte RIFF header with a placeholder size, then int16 PCM.
    return _warped(out, voice.warp)


def _warped(wav: bytes, warp: float, gain: float = 1.0) -> np.ndarray:
    """A synthesiser's 44-byte-header int16 WAV -> float32 at 16 kHz, read as if sampled
    ``warp`` times faster (vocal-tract-length perturbation), times ``gain``."""
    rate = int.from_bytes(wav[24:28], "little")
    pcm = np.frombuffer(wav[44 : 44 + (len(wav) - 44) // 2 * 2], "<i2").astype(np.float32)
    as_if = int(round(rate * warp / 50.0)) * 50
    return resample(pcm * np.float32(gain / 32768.0), as_if, FS)


def _pico(text: str, voice: Voice, speed: int, amplitude: int) -> np.ndarray:
    """SVOX Pico speaking ``text``: espeak-ng's words per minute become Pico's speed (175 wpm
    = 100 %), its pitch 0-99 Pico's pitch level 70-140 %, its amplitude a gain (100 = 1)."""
    import tempfile

    lang = voice.base.removeprefix("pico-")
    markup = (f"<speed level='{round(speed / 175 * 100)}'><pitch level='"
              f"{round(70 + 0.7 * voice.pitch)}'>{text}</pitch></speed>")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="earshot-pico-") as tmp:
        wav = Path(tmp) / "say.wav"
        try:
            subprocess.run(["pico2wave", "-l", lang, "-w", str(wav), markup],
                           capture_output=True, check=True, timeout=30)  # fmt: skip
        except FileNotFoundError:
            raise FileNotFoundError(
                "pico2wave not found (voice " + voice.base + "): EARSHOT_MBROLA=yes "
                "scripts/install-system-deps installs libttspico-utils") from None
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"pico2wave failed for {text!r} in voice {voice.base}: "
                               f"{e.stderr.decode().strip()}") from None  # fmt: skip
        return _warped(wav.read_bytes(), voice.warp, amplitude / 100.0)


@functools.lru_cache(maxsize=512)
def _espeak_cached(text: str, voice: Voice, speed: int) -> np.ndarray:
    audio = trim(espeak(text, voice, speed))
    audio.setflags(write=False)
    return audio


def trim(audio: np.ndarray, floor_dbfs: float = -45.0) -> np.ndarray:
    """Cut leading and trailing samples quieter than ``floor_dbfs`` below the peak."""
    if audio.size == 0:
        return audio
    level = np.max(np.abs(audio)) * 10.0 ** (floor_dbfs / 20.0)
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS noise: "white", "pink", "brown" or "hum" (mains hum + fan)."""
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind in ("pink", "brown"):
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1.0 / FS)
        f[0] = f[1]
        spec *= 1.0 / np.sqrt(f) if kind == "pink" else 1.0 / np.maximum(f, 20.0)
        x = np.fft.irfft(spec, n)
    elif kind == "hum":
        t = np.arange(n) / FS
        mains = rng.choice([50.0, 60.0])
        x = sum(a * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3))
                for k, a in ((1, 1.0), (2, 0.5), (3, 0.3), (5, 0.1)))  # fmt: skip
        blade = rng.uniform(15.0, 40.0)  # fan blade-pass rate (Hz) modulating broadband noise
        fan = noise("pink", n, rng) * (1.0 + 0.3 * np.sin(2 * np.pi * blade * t))
        x = np.asarray(x) + 0.7 * fan
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    x = np.asarray(x, np.float64)
    x -= x.mean()
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def _db(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


# --- alarms ----------------------------------------------------------------------------------


def alarm_schedule(kind: str, cycles: int, rng: np.random.Generator | None = None) -> list:
    """(on_s, off_s) pairs for ``cycles`` cycles of "t3" or "t4", timings jittered by up to 10 %."""
    if kind == "t3":
        cycle = [(0.5, 0.5), (0.5, 0.5), (0.5, 1.5)]
    elif kind == "t4":
        cycle = [(0.1, 0.1), (0.1, 0.1), (0.1, 0.1), (0.1, 5.0)]
    else:
        raise ValueError(f"unknown alarm pattern {kind!r} (t3 or t4)")
    j = (lambda: 1.0) if rng is None else (lambda: float(rng.uniform(0.9, 1.1)))
    return [(on * j(), off * j()) for _ in range(cycles) for on, off in cycle]


def _envelope(schedule: Sequence[tuple[float, float]], lead_s: float = 0.0) -> np.ndarray:
    """0..1 on/off envelope of ``schedule`` (4 ms attack/release ramps), float32."""
    total = lead_s + sum(on + off for on, off in schedule)
    n = int(round(total * FS))
    env = np.zeros(n, np.float32)
    ramp = int(0.004 * FS)  # 4 ms attack/release: a driven piezo settles in a few ms
    start = lead_s
    for on, off in schedule:
        a, b = int(round(start * FS)), min(n, int(round((start + on) * FS)))
        k = min(ramp, (b - a) // 2)
        env[a:b] = 1.0
        if k:
            env[a : a + k] = np.linspace(0, 1, k)
            env[b - k : b] = np.linspace(1, 0, k)
        start += on + off
    return env


def _tone(freq: float, n: int, rng: np.random.Generator, harmonic: float) -> np.ndarray:
    """``n`` samples of a piezo-like tone: ``freq`` Hz with a slight wobble and a 2nd harmonic."""
    t = np.arange(n) / FS
    wobble = 1.0 + 0.003 * np.sin(2 * np.pi * rng.uniform(3.0, 8.0) * t)
    phase = 2 * np.pi * np.cumsum(freq * wobble) / FS
    tone = np.sin(phase)
    if 2 * freq < 0.49 * FS:
        tone += harmonic * np.sin(2 * phase + rng.uniform(0, 6.3))
    return tone


LOW_FREQUENCY_HZ = 520.0
"""Low-frequency smoke alarms (required in many sleeping areas: UL 217 / NFPA 72 since 2014)
sound a 520 Hz (+-10 %) square wave in the T3 pattern; they wake sleepers a piezo does not."""
LOW_FREQUENCY_SHARE = 0.3
"""Share of the synthetic smoke-alarm clips that are low-frequency square-wave alarms."""


def _square(freq: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a band-limited square wave at ``freq`` Hz (odd harmonics 1/k, below
    7.5 kHz), with the slight wobble of a driven transducer."""
    t = np.arange(n) / FS
    wobble = 1.0 + 0.003 * np.sin(2 * np.pi * rng.uniform(3.0, 8.0) * t)
    phase = 2 * np.pi * np.cumsum(freq * wobble) / FS
    ks = range(1, int(7500.0 // freq) + 1, 2)
    return np.asarray(sum(np.sin(k * phase) / k for k in ks), np.float64)


def alarm_tone(n: int, rng: np.random.Generator, low_frequency: bool | None = None) -> np.ndarray:
    """``n`` samples of an alarm's sound: a piezo (2.95-3.45 kHz with a 2nd harmonic) or, with
    ``LOW_FREQUENCY_SHARE`` odds (or when ``low_frequency``), a 520 Hz square wave."""
    if low_frequency is None:
        low_frequency = bool(rng.random() < LOW_FREQUENCY_SHARE)
    if low_frequency:
        return _square(LOW_FREQUENCY_HZ * float(rng.uniform(0.92, 1.08)), n, rng)
    return _tone(float(rng.uniform(2950, 3450)), n, rng, float(rng.uniform(0.1, 0.5)))


def render_tones(
    schedule: Sequence[tuple[float, float]],
    freq: float,
    rng: np.random.Generator,
    harmonic: float = 0.3,
    lead_s: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Beeps at ``freq`` Hz following ``schedule``; returns (audio peak ~1, boolean on-mask)."""
    env = _envelope(schedule, lead_s)
    audio = _tone(freq, env.size, rng, harmonic) * env
    return (audio / (np.max(np.abs(audio)) + 1e-12)).astype(np.float32), env > 0.5


def _mix_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float, ref_rms: float) -> None:
    kind = str(rng.choice(["white", "pink", "brown", "hum"]))
    x += noise(kind, x.size, rng) * np.float32(ref_rms / _db(snr_db))


def _alarm_clip(rng: np.random.Generator, n: int = FS, kind: str | None = None) -> np.ndarray:
    """A 1 s window of a T3 (smoke) or T4 (CO) alarm, ``kind`` or either, with at least 80 ms of
    tone; only that window is synthesised (the pattern's envelope picks it)."""
    if kind is None:
        kind = "t3" if rng.random() < 0.6 else "t4"
    schedule = alarm_schedule(kind, 2, rng)
    env = _envelope(schedule)
    on = env > 0.5
    c = np.concatenate([[0], np.cumsum(on)])
    counts = c[n:] - c[:-n]  # on-samples in each n-sample window
    starts = np.flatnonzero(counts >= int(0.08 * FS))
    s = int(starts[rng.integers(starts.size)])
    tone = alarm_tone(n, rng, False if kind == "t4" else None)  # low-frequency alarms are T3
    x = (tone * env[s : s + n] / (np.max(np.abs(tone)) + 1e-12)).astype(np.float32)
    x *= np.float32(_db(rng.uniform(-36.0, -6.0)))
    _mix_noise(x, rng, rng.uniform(0.0, 30.0), _rms(x[on[s : s + n]]))
    return x


def _beep_clip(rng: np.random.Generator, n: int, near_piezo: bool = False) -> np.ndarray:
    """An appliance beep. ``near_piezo`` (the alarm set's negatives): half of them at a
    frequency just outside the piezo band (2.0-2.75 or 3.7-5.5 kHz), and a fourth pattern with
    an alarm-like rhythm; a smoke detector that never heard one fired on a 4.5 kHz beep
    repeating 0.35 s on, 0.15 s off (7 of its 8 false alarms on held-out streams)."""
    if near_piezo and rng.random() < 0.5:
        freq = float(rng.uniform(2000.0, 2750.0) if rng.random() < 0.4 else rng.uniform(3700.0, 5500.0))
    else:
        freq = float(rng.choice([440.0, 1000.0, 1500.0, 2000.0, 2400.0, 4000.0, 4500.0, 5000.0]))
    pattern = int(rng.integers(4 if near_piezo else 3))
    if pattern == 3:  # a beeping appliance with an alarm-like rhythm, never T3's 0.5/0.5
        sched = [(float(rng.uniform(0.25, 0.45)), float(rng.uniform(0.1, 0.3)))] * 3
        audio, _ = render_tones(sched, freq, rng, rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.5))
        return _fit(audio, n) * np.float32(_db(rng.uniform(-30.0, -6.0)))
    if pattern == 0:  # microwave: a few 0.3 s beeps
        sched = [(0.3, 0.2)] * 3
    elif pattern == 1:  # one long tone
        sched = [(rng.uniform(0.3, 1.0), 0.5)]
    else:  # fast timer chirps
        sched = [(0.05, 0.1)] * 8
    audio, _ = render_tones(sched, freq, rng, rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.9))
    return _fit(audio, n) * np.float32(_db(rng.uniform(-30.0, -6.0)))


MELODY_NOTES = 440.0 * 2.0 ** ((np.arange(-12, 25) - 0.0) / 12.0)
"""Equal-tempered notes A3 (220 Hz) to A6 (1760 Hz): B4 (494 Hz) and C5 (523 Hz) sit on the
520 Hz low-frequency alarm, and music held them long enough to pass for one (measured: a
smoke detector's confident false alarms on held-out music fell on sustained B4s)."""


def _melody_clip(rng: np.random.Generator, n: int) -> np.ndarray:
    """Music-like notes: a phrase of harmonic-series tones (every partial, falling as 1/k^a,
    unlike a square wave's odd ones) with attack and decay, a third of the phrases on the notes
    around 520 Hz, sometimes with vibrato. Half the phrases keep a beat (0.25 or 0.5 s per note
    or chord, as music at 120 beats a minute does: the T3 pattern's own rhythm), the others
    run free (0.15-1.2 s per note)."""
    x = np.zeros(n, np.float32)
    t, near, beat = 0.0, rng.random() < 1 / 3, rng.random() < 0.5
    step = float(rng.choice([0.25, 0.5])) * float(rng.uniform(0.95, 1.05))
    tilt, partials = float(rng.uniform(0.8, 2.0)), int(rng.integers(3, 9))
    pool = MELODY_NOTES[(MELODY_NOTES > 430) & (MELODY_NOTES < 620)] if near else MELODY_NOTES
    while t < n / FS:
        dur = step if beat else float(rng.uniform(0.15, 1.2))
        a = int(t * FS)
        m = min(int(dur * FS), n - a)
        tt = np.arange(m) / FS
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt * rng.uniform(0.3, 3.0))
        for f0 in rng.choice(pool, size=int(rng.integers(1, 4)) if beat else 1, replace=False):
            f0 = float(f0) * float(rng.uniform(0.99, 1.01))
            vib = 1.0 + (0.006 * np.sin(2 * np.pi * rng.uniform(4, 7) * tt) if rng.random() < 0.4 else 0.0)
            phase = 2 * np.pi * f0 * np.cumsum(vib) / FS
            note = sum(np.sin(k * phase) / k**tilt for k in range(1, partials + 1) if k * f0 < 7000)
            x[a : a + m] += (note * env).astype(np.float32)
        t += dur if beat else dur * float(rng.uniform(0.8, 1.0))
    return (x / (np.max(np.abs(x)) + 1e-12) * np.float32(_db(rng.uniform(-30.0, -6.0)))).astype(np.float32)


def _click_clip(rng: np.random.Generator, n: int) -> np.ndarray:
    x = np.zeros(n, np.float32)
    rate = rng.uniform(1.0, 10.0)
    burst = np.exp(-np.arange(80) / rng.uniform(5.0, 20.0)) * rng.standard_normal(80)
    for t in np.arange(rng.uniform(0, 1.0 / rate), 1.0, 1.0 / rate):
        a = int(t * FS)
        m = min(80, n - a)
        x[a : a + m] += (burst[:m] * rng.uniform(0.1, 0.5)).astype(np.float32)
    return x


ALARM_SPEECH_WORDS = (*NEGATIVE_WORDS, *KEYWORDS, *FILLER_WORDS)
"""What the alarm set's speech negatives say: any word is speech an alarm detector must not
take for an alarm (with only the 36 negative words, the RP2040 detector fired on "yes")."""


def _speech_clip(rng: np.random.Generator, n: int, voices: Sequence[Voice]) -> np.ndarray:
    words = " ".join(rng.choice(ALARM_SPEECH_WORDS, size=int(rng.integers(1, 3))))
    voice = voices[int(rng.integers(len(voices)))]
    audio = trim(espeak(words, voice, int(rng.integers(140, 200)), int(rng.integers(30, 131))))
    if rng.random() < 0.4:
        return _place(audio, rng, n, 0.3)
    return _place_cut(audio, rng, n)


def _place_cut(audio: np.ndarray, rng: np.random.Generator, n: int, keep_s: float = 0.08) -> np.ndarray:
    """``audio`` cut by an edge of ``n`` samples: starting in the last 0.3 s or ending in the
    first 0.3 s (at least ``keep_s`` of it inside), as a sliding 1 s window sees a word that
    starts or ends outside it. Without such negatives a detector learns "a sound starting at the
    window's end" as an alarm onset, since alarm windows often hold just a beep's start."""
    keep = min(audio.size, int(keep_s * FS))
    edge = int(0.3 * FS)
    if rng.random() < 0.5:  # onset near the end
        start = int(rng.integers(n - edge, n - keep + 1))
    else:  # tail near the start
        start = int(rng.integers(keep, edge + 1)) - audio.size
    out = np.zeros(n, np.float32)
    a, b = max(0, start), min(n, start + audio.size)
    out[a:b] = audio[a - start : b - start]
    return out


def _negative_clip(rng: np.random.Generator, voices: Sequence[Voice], n: int = FS) -> np.ndarray:
    kind = rng.choice(["speech", "noise", "beep", "clicks", "quiet", "melody"],
                      p=[0.3, 0.1, 0.2, 0.1, 0.1, 0.2])  # fmt: skip
    if kind == "speech":
        x = _speech_clip(rng, n, voices)
    elif kind == "melody":
        x = _melody_clip(rng, n)
    elif kind == "beep":
        x = _beep_clip(rng, n, near_piezo=True)
    elif kind == "clicks":
        x = _click_clip(rng, n)
    else:
        x = np.zeros(n, np.float32)
    if kind in ("noise", "quiet"):
        lo, hi = (-50.0, -15.0) if kind == "noise" else (-75.0, -50.0)
        _mix_noise(x, rng, 0.0, _db(rng.uniform(lo, hi)))
    else:
        _mix_noise(x, rng, rng.uniform(5.0, 35.0), max(_rms(x), 1e-4))
    return x


# --- keywords --------------------------------------------------------------------------------


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    m = min(n, audio.size)
    out[:m] = audio[:m]
    return out


def _place(audio: np.ndarray, rng: np.random.Generator, n: int, max_shift_s: float) -> np.ndarray:
    """Put ``audio`` in ``n`` samples, centred, then moved by up to ``max_shift_s`` seconds."""
    audio = audio[:n]
    slack = n - audio.size
    shift = int(rng.uniform(-1, 1) * min(slack / 2, max_shift_s * FS))
    start = slack // 2 + shift
    out = np.zeros(n, np.float32)
    out[start : start + audio.size] = audio
    return out


def _percent(name: str) -> float:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) % 10000 / 100.0


def variant_split(variant: str) -> str:
    """The split whose speakers may use ``variant`` (``VARIANT_*_PERCENT`` by name hash)."""
    pct = _percent(variant)
    if pct < VARIANT_TEST_PERCENT:
        return "test"
    return "val" if pct < VARIANT_TEST_PERCENT + VARIANT_VAL_PERCENT else "train"


def voice_pool(split: str) -> list[tuple[str, str]]:
    """The (accent, variant) pairs a ``split``'s espeak-ng speakers are drawn from. Test and
    validation speakers use accents and variants no other split uses, so no voice crosses
    splits."""
    held = {v for vs in HELD_OUT_VOICES.values() for v in vs}
    bases = HELD_OUT_VOICES.get(split) or tuple(b for b in ENGLISH_VOICES if b not in held)
    return [(b, v) for b in bases for v in VARIANTS if variant_split(v) == split]


def _mbrola_database(voice: str) -> str:
    """The MBROLA database an espeak-ng ``mb-*`` voice reads: "mb-de1-en" -> "de1"."""
    return voice.split("-")[1]


def mbrola_enabled() -> bool:
    """MBROLA voices are opt-in, ``EARSHOT_MBROLA=yes`` (with them on, the held-out stream
    floors of tests/test_quality.py failed; docs/training.md "Voices")."""
    return os.environ.get("EARSHOT_MBROLA") == "yes"


def mbrola_voices(split: str | None = None) -> tuple[str, ...]:
    """The ``MBROLA_VOICES`` whose database is installed, those of ``split`` only if given
    (``MBROLA_HELD_OUT``; the rest are training voices); none unless ``mbrola_enabled()``."""
    if not mbrola_enabled():
        return ()
    held = {v for vs in MBROLA_HELD_OUT.values() for v in vs}
    mine = (MBROLA_VOICES if split is None else MBROLA_HELD_OUT.get(split)
            or tuple(v for v in MBROLA_VOICES if v not in held))  # fmt: skip
    return tuple(v for v in mine if (MBROLA_DIR / _mbrola_database(v)).is_dir())


@functools.lru_cache(maxsize=1)
def _warn_no_mbrola() -> None:
    _LOGGER.warning(
        "EARSHOT_MBROLA=yes but no MBROLA voice is installed in %s: every speaker is "
        "espeak-ng's own; EARSHOT_MBROLA=yes scripts/install-system-deps installs them",
        MBROLA_DIR)


def pico_voices(split: str | None = None) -> tuple[str, ...]:
    """``pico-<language>`` of the ``PICO_VOICES`` of ``split`` (all if None) when
    ``pico2wave`` is installed and ``mbrola_enabled()``; ``PICO_HELD_OUT`` are test-only."""
    if not mbrola_enabled() or shutil.which("pico2wave") is None:
        return ()
    held = {v for vs in PICO_HELD_OUT.values() for v in vs}
    mine = [v for v in PICO_VOICES if split is None
            or (v in PICO_HELD_OUT[split] if split in PICO_HELD_OUT else v not in held)]  # fmt: skip
    return tuple(f"pico-{v}" for v in mine)


def natural_voices(split: str) -> list[tuple[str, str]]:
    """(base, variant) of ``split``'s voices made from real speakers' recordings: installed
    MBROLA voices, and Pico voices (``PICO_WEIGHT`` times each in training)."""
    weight = PICO_WEIGHT if split == "train" else 1
    return ([(v, MBROLA_VARIANT) for v in mbrola_voices(split)]
            + [(v, PICO_VARIANT) for v in pico_voices(split) for _ in range(weight)])  # fmt: skip


def pick_voices(count: int, rng: np.random.Generator, split: str = "train") -> list[Voice]:
    """``count`` distinct speakers of ``split`` (accent, variant, pitch, warp), by speaker id:
    ``MBROLA_SHARE`` of them natural voices (MBROLA, Pico) where the split has any installed,
    the rest espeak-ng's own."""
    natural = natural_voices(split)
    if mbrola_enabled() and not mbrola_voices():
        _warn_no_mbrola()
    # (at most ten speakers per natural voice: a split with one has few)
    n_natural = min(int(round(count * MBROLA_SHARE)), 10 * len(natural))
    chosen = _pick(count - n_natural, rng, voice_pool(split), split)
    if n_natural:
        chosen += _pick(n_natural, np.random.default_rng(rng.integers(2**32)), natural, split)
    return sorted(chosen, key=lambda v: v.speaker)


def _pick(count: int, rng: np.random.Generator, combos: list[tuple[str, str]], split: str
          ) -> list[Voice]:  # fmt: skip
    if count <= 0:
        return []
    if count > 10 * len(combos):
        raise ValueError(f"--speakers {count}: at most {10 * len(combos)} {split} speakers")
    # Every (accent, variant) once before any twice; a repeat differs in pitch and warp.
    idx = np.concatenate([rng.permutation(len(combos)) for _ in range(-(-count // len(combos)))])
    voices: dict[str, Voice] = {}
    for i in idx:
        while len(voices) < count:
            v = Voice(combos[i][0], combos[i][1], int(rng.integers(15, 86)),
                      round(float(rng.uniform(*WARP_RANGE)), 2))  # fmt: skip
            if v.speaker not in voices:
                voices[v.speaker] = v
                break
    return list(voices.values())


def split_speakers(speakers: int) -> dict[str, int]:
    """Speakers per split for ``--speakers`` training speakers (at least 3 in val and test)."""
    return {"train": speakers, "val": max(3, speakers // 6), "test": max(3, speakers // 3)}


# --- vocabulary ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def phonemes(text: str) -> str:
    """espeak-ng's phonemes for ``text`` (en-us, stress and syllable marks removed)."""
    cmd = ["espeak-ng", "-q", "-x", "-v", "en-us", text]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=30, text=True).stdout
    except FileNotFoundError:
        raise FileNotFoundError("espeak-ng not found: run scripts/install-system-deps") from None
    return re.sub(r"[\s'`,_:;-]", "", out)


def collides(word: str, other: str) -> bool:
    """True when ``other`` would be heard as ``word``: the same spelling, the same phonemes
    (a homophone: "know" of "no") or ``word``'s phonemes ending it ("ago" holds "go")."""
    if word == other:
        return True
    pw, po = phonemes(word), phonemes(other)
    return pw == po or po.endswith(pw)


def parse_words(spec: str) -> tuple[str, ...]:
    """``--words a,b,"two words"`` -> the words, lower case, each checked and unique."""
    words = []
    for raw in next(csv.reader([spec], skipinitialspace=True)):
        w = " ".join(raw.lower().split())
        if not _WORD.match(w):
            raise ValueError(f"--words: {raw!r} is not a word (letters, spaces and ' only)")
        if w in words:
            raise ValueError(f"--words: {w!r} is given twice")
        words.append(w)
    if not words:
        raise ValueError("--words: no word given")
    return tuple(words)


def label_of(word: str) -> str:
    """The folder (label) of a word: spaces become underscores ("turn on" -> "turn_on")."""
    return word.replace(" ", "_")


def word_of(label: str) -> str:
    """The words a label stands for: :func:`label_of` undone ("turn_on" -> "turn on")."""
    return label.replace("_", " ")


def fillers_for(words: Sequence[str], pool: Sequence[str] = ()) -> tuple[str, ...]:
    """``pool`` (default: ``FILLER_WORDS``) without every word that collides with a keyword."""
    return tuple(f for f in (pool or FILLER_WORDS) if not any(collides(w, f) for w in words))


HOUSEHOLD_FOLDER = "household"
"""Folder of non-speech filler sounds in the keyword set (alarm beeps, appliance beeps, clicks)."""
HOUSEHOLD_SHARE = 0.3
"""``--fillers N`` writes this many household clips per filler-word clip (rounded)."""


def household_count(fillers: int, filler_words: Sequence[str] = FILLER_WORDS) -> int:
    """Household clips that ``--fillers fillers`` writes (with ``filler_words`` in use)."""
    return round(HOUSEHOLD_SHARE * fillers * len(filler_words))


def _household_clip(rng: np.random.Generator, n: int = FS) -> np.ndarray:
    kind = int(rng.integers(3))
    if kind == 0:
        return _alarm_clip(rng, n)
    x = _beep_clip(rng, n) if kind == 1 else _click_clip(rng, n)
    _mix_noise(x, rng, rng.uniform(5.0, 35.0), max(_rms(x), 1e-4))
    return x


def _keyword_clip(word: str, voice: Voice, rng: np.random.Generator) -> np.ndarray:
    speed, amp = int(rng.integers(110, 221)), int(rng.integers(30, 131))
    # One speaker never says a word twice the same: pitch and vocal tract move a little.
    take = replace(voice, pitch=int(np.clip(voice.pitch + rng.integers(-6, 7), 0, 99)),
                   warp=voice.warp * float(rng.uniform(0.98, 1.02)))  # fmt: skip
    x = _place(trim(espeak(word, take, speed, amp)), rng, FS, 0.15)
    x += noise("white", FS, rng) * np.float32(_db(rng.uniform(-70.0, -50.0)))
    return x


def _background_folder(out: Path, seed: int, seconds: float = 15.0) -> None:
    for i, kind in enumerate(("white", "pink", "brown", "hum")):
        rng = np.random.default_rng((seed, 7, i))
        level = _db(rng.uniform(-30.0, -20.0))
        write_wav(out / "_background_noise_" / f"{kind}_noise.wav",
                  noise(kind, int(seconds * FS), rng) * np.float32(level))  # fmt: skip


def _run_jobs(jobs: list[tuple[Path, Callable[[], np.ndarray]]], desc: str, workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [(path, pool.submit(fn)) for path, fn in jobs]
        for path, fut in tqdm(futures, desc=desc, unit="clip"):
            write_wav(path, np.clip(fut.result(), -1.0, 1.0))


def _fresh(folder: Path) -> None:
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise ValueError(
                f"{folder}: exists and was not written by synth; remove it or pick OUT"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def synth_keywords(
    out: Path,
    seed: int,
    per_label: int,
    speakers: int,
    workers: int = 2,
    fillers: int = 0,
    words: Sequence[str] = KEYWORDS,
    recordings: bool = True,
) -> None:
    """Write the keyword set (Speech Commands layout) to ``out``.

    Each word's clips are spoken by training, validation and test speakers in the shares of
    ``SPLIT_SHARES``; ``validation_list.txt`` and ``testing_list.txt`` name the last two, whose
    accents and variants no training speaker has (``voice_pool``). ``fillers`` clips of each
    filler word that does not collide with ``words`` go in folders of their own, plus
    ``household_count(fillers)`` household sounds and, with ``recordings``, 1 s clips of real
    speech in other languages (``other_speech/``) and of music and effects (``other_sounds/``),
    ``real_unknown_count(fillers)`` each, for an ``_unknown_`` class. With
    ``recordings`` the ``_background_noise_/`` folder also holds excerpts of real music, speech
    and effects (``trainer.recordings``, training files only)."""
    _fresh(out)
    shares = split_speakers(speakers)
    voices = {sp: pick_voices(n, np.random.default_rng((seed, 1, k)), sp)
              for k, (sp, n) in enumerate(shares.items())}  # fmt: skip
    filler_words = fillers_for(words) if fillers else ()
    jobs: list[tuple[Path, Callable[[], np.ndarray]]] = []
    lists: dict[str, list[str]] = {"val": [], "test": []}
    takes: Counter[tuple[str, str]] = Counter()

    def add(folder: str, i: int, job: Callable[[Voice], Callable[[], np.ndarray]]) -> None:
        """Clip ``i`` of ``folder``: its split, its speaker, its path; ``job(voice)`` makes it."""
        split = _split_of_index(hash_index(folder) + i)
        pool = voices[split]
        voice = pool[(hash_index(folder) + i) % len(pool)]
        rel = f"{folder}/{voice.speaker}_nohash_{takes[voice.speaker, folder]}.wav"
        takes[voice.speaker, folder] += 1
        if split in lists:
            lists[split].append(rel)
        jobs.append((out / rel, job(voice)))

    entries = [(w, word, per_label, 2) for w, word in enumerate(words)]
    entries += [(w, word, fillers, 5) for w, word in enumerate(filler_words)]
    for w, word, count, stream in entries:
        for i in range(count):
            rng = np.random.default_rng((seed, stream, w, i))
            add(label_of(word), i, functools.partial(_word_job, word, rng))
    for i in range(household_count(fillers, filler_words)):
        # Non-speech sounds for _unknown_ too: a keyword model that never heard a beep calls
        # an alarm "yes" (seen in the streamed end-to-end test before this).
        rng = np.random.default_rng((seed, 6, i))
        add(HOUSEHOLD_FOLDER, i, functools.partial(_household_job, rng))
    if recordings and fillers:
        n = real_unknown_count(fillers, filler_words)
        _real_clips(out, seed, n, lists, OTHER_SPEECH_FOLDER, ["speech"], 8, words)
        _real_clips(out, seed, n, lists, OTHER_SOUNDS_FOLDER, ["music", "effects"], 10, words)
    _run_jobs(jobs, "keywords", workers)
    for name, split in (("validation_list.txt", "val"), ("testing_list.txt", "test")):
        (out / name).write_text("".join(f"{line}\n" for line in sorted(lists[split])))
    _background_folder(out, seed)
    if recordings:
        _real_backgrounds(out, seed, words)
    _speakers_file(out, voices)
    _marker(out, seed, per_label, speakers, fillers, words)


_SPLIT_CYCLE = ("train", "test", "val", "train", "train", "test", "train", "train", "train",
                "train")  # fmt: skip
"""Splits of clips 0-9, 10-19, ... of a word: ``SPLIT_SHARES``, with every split in the first
three clips, so even a tiny set has a test and a validation speaker."""


def _word_job(word: str, rng: np.random.Generator, voice: Voice) -> Callable[[], np.ndarray]:
    return functools.partial(_keyword_clip, word, voice, rng)


def _household_job(rng: np.random.Generator, voice: Voice) -> Callable[[], np.ndarray]:
    return functools.partial(_household_clip, rng)


def _split_of_index(i: int) -> str:
    """Clip ``i`` of a word goes to train, val or test (``_SPLIT_CYCLE``)."""
    return _SPLIT_CYCLE[i % len(_SPLIT_CYCLE)]


def hash_index(name: str) -> int:
    """A stable small integer for ``name`` (rotates speakers differently per word)."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:6], 16)


OTHER_SPEECH_FOLDER = "other_speech"
"""Folder of 1 s clips of real speech in other languages (``trainer.recordings``)."""
OTHER_SOUNDS_FOLDER = "other_sounds"
"""Folder of 1 s clips of real music and sound effects (``trainer.recordings``)."""
REAL_UNKNOWN_SHARE = 3.0
"""``--fillers N`` writes this many real-speech clips, and as many music/effects clips, per
filler-word clip. A keyword model whose ``_unknown_`` held words only fired 370 times an hour
on held-out music and speech (docs/training.md)."""


def real_unknown_count(fillers: int, filler_words: Sequence[str] = FILLER_WORDS) -> int:
    """Clips of each of ``OTHER_SPEECH_FOLDER`` and ``OTHER_SOUNDS_FOLDER`` (training files)."""
    return round(REAL_UNKNOWN_SHARE * fillers * len(filler_words))


def _real_clips(
    out: Path, seed: int, count: int, lists: dict[str, list[str]], folder: str,
    kinds: Sequence[str], stream: int, words: Sequence[str] = (),
) -> None:
    """``count`` 1 s clips of real ``kinds`` recordings (training files) and a fifth as many
    (held-out files, listed in testing_list.txt) in ``folder``, as ``_unknown_`` material, each
    at an RMS level of -40 to -6 dBFS; no file that may say one of ``words`` is used."""
    from . import recordings

    for split, n in (("train", count), ("test", max(1, count // 5))):
        recs = recordings.require(kinds, split, words)
        rng = np.random.default_rng((seed, stream, 0 if split == "train" else 1))
        for k, (rec, audio) in enumerate(recordings.excerpts(recs, 1.0, float(n), rng, n)):
            rel = f"{folder}/{split}{rec.path.parent.name}_nohash_{k}.wav"
            x = _place(audio * np.float32(_db(rng.uniform(-40, -6)) / max(_rms(audio), 1e-6)),
                       rng, FS, 0.2)
            write_wav(out / rel, np.clip(x, -1, 1))
            if split == "test":
                lists["test"].append(rel)


REAL_BACKGROUND = {"music": (8, 120.0), "speech": (8, 120.0), "effects": (2, 60.0)}
"""Real recordings in a set's ``_background_noise_/`` (training files): kind -> (files, seconds
each). Augmentation draws a background file uniformly, so the file count is the weight: 18 real
files beside the 4 generated noises put real music, speech and effects under ~80 % of the mixed
clips. With 4 minutes of music in one file (one mix in 7), half of a keyword model's false
alarms and nearly all of a smoke detector's fell on held-out music and speech (docs/training.md)."""


def _real_backgrounds(out: Path, seed: int, words: Sequence[str] = ()) -> None:
    from . import recordings

    for k, (kind, (files, seconds)) in enumerate(REAL_BACKGROUND.items()):
        recs = recordings.require([kind], "train", words)
        rng = np.random.default_rng((seed, 9, k))
        audio = np.concatenate([a for _, a in recordings.excerpts(recs, 20.0, files * seconds, rng)])
        audio *= np.float32(_db(-25.0) / max(_rms(audio), 1e-6))
        for i, part in enumerate(np.array_split(audio, files)):
            write_wav(out / "_background_noise_" / f"real_{kind}_{i}.wav", np.clip(part, -1, 1))


SPEAKERS_FILE = "SPEAKERS.json"
"""Who speaks in a synthetic set: speaker id -> split, accent, variant, pitch, warp."""


def _speakers_file(out: Path, voices: dict[str, list[Voice]]) -> None:
    info = {v.speaker: {"split": sp, "accent": v.base, "variant": v.variant, "pitch": v.pitch,
                        "warp": v.warp} for sp, vs in voices.items() for v in vs}  # fmt: skip
    (out / SPEAKERS_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")


def synth_alarm(
    out: Path, seed: int, per_label: int, speakers: int, workers: int = 2,
    recordings: bool = True,
) -> None:
    """Write the smoke-alarm set (folder per label) to ``out``; with ``recordings`` its
    ``_background_noise_/`` also holds real music, speech and effects, and ``background/`` as
    many 1 s excerpts of them as a label has clips (training files)."""
    _fresh(out)
    voices = pick_voices(speakers, np.random.default_rng((seed, 3)), "train")
    jobs: list[tuple[Path, Callable[[], np.ndarray]]] = []
    for i in range(per_label):
        rng = np.random.default_rng((seed, 4, 0, i))
        jobs.append((out / "smoke_alarm" / f"alarm{i:04d}.wav",
                     functools.partial(_alarm_clip, rng, FS, "t3")))  # fmt: skip
    for i in range(per_label):
        rng = np.random.default_rng((seed, 4, 2, i))
        jobs.append((out / "co_alarm" / f"co{i:04d}.wav",
                     functools.partial(_alarm_clip, rng, FS, "t4")))  # fmt: skip
    for i in range(per_label):
        rng = np.random.default_rng((seed, 4, 1, i))
        fn = functools.partial(_negative_clip, rng, voices)
        jobs.append((out / "background" / f"negative{i:04d}.wav", fn))
    _run_jobs(jobs, "alarm", workers)
    _background_folder(out, seed + 1)
    if recordings:
        _real_backgrounds(out, seed + 1)
        _real_alarm_negatives(out, seed, round(ALARM_REAL_SHARE * per_label))
    _marker(out, seed, per_label, speakers)


ALARM_REAL_SHARE = 1.0
"""Real-recording negatives in the alarm set's ``background/``, per clip of a label: a smoke
detector whose negatives were only synthetic fired 260 times an hour on held-out music and
speech (docs/training.md)."""


def _real_alarm_negatives(out: Path, seed: int, count: int) -> None:
    """``count`` 1 s excerpts of training-split music, speech and effects in ``background/``,
    named ``<recording>_<n>.wav`` so one recording is one group, never in two splits."""
    from . import recordings

    recs = recordings.require(["music", "speech", "effects"], "train")
    rng = np.random.default_rng((seed, 12))
    taken: Counter[str] = Counter()
    for rec, audio in recordings.excerpts(recs, 1.0, float(count), rng, count):
        stem = re.sub(r"[^A-Za-z0-9]", "", f"{rec.path.parent.name}{rec.path.stem}")[:40]
        x = _place(audio * np.float32(_db(rng.uniform(-45, -8)) / max(_rms(audio), 1e-6)),
                   rng, FS, 0.2)
        write_wav(out / "background" / f"{stem}_{taken[stem]}.wav", np.clip(x, -1, 1))
        taken[stem] += 1


def _marker(
    out: Path, seed: int, per_label: int, speakers: int, fillers: int = 0,
    words: Sequence[str] | None = None,
) -> None:
    info = {"generator": "earshot-train synth", "seed": seed, "per_label": per_label,
            "speakers": speakers, **({"fillers": fillers} if fillers else {}),
            **({"mbrola_voices": list(mbrola_voices())} if mbrola_voices() else {}),
            **({"pico_voices": list(pico_voices())} if pico_voices() else {}),
            **({"words": list(words)} if words is not None else {})}  # fmt: skip
    (out / MARKER).write_text(json.dumps(info, indent=2) + "\n")


# --- streams ---------------------------------------------------------------------------------


_STREAM_VOICES = (Voice("en-us", "m3", 50), Voice("en-gb", "f3", 60), Voice("en", "m1", 40),
                  Voice("en-us", "f2", 55))  # fmt: skip


def _event_audio(label: str, rng: np.random.Generator) -> np.ndarray:
    if label == "smoke_alarm":
        audio, _ = render_tones(alarm_schedule("t3", 1)[:3], rng.uniform(3000, 3400), rng)
        return audio[: int(2.5 * FS)]  # the three beeps; the 1.5 s pause belongs to no event
    if label == "co_alarm":
        audio, _ = render_tones(alarm_schedule("t4", 1), rng.uniform(3000, 3400), rng)
        return audio[: int(0.7 * FS)]
    if not _WORD.match(label):
        raise ValueError(f"make_stream: event label {label!r} is neither an alarm nor a word")
    voice = _STREAM_VOICES[int(rng.integers(len(_STREAM_VOICES)))]
    return np.array(_espeak_cached(label, voice, int(rng.integers(150, 181))))


def make_stream(
    seed: int,
    duration_s: float,
    events: Sequence[tuple[float, str]],
    background: str = "noise",
    snr_db: float = 20.0,
    level_dbfs: float = -20.0,
) -> tuple[np.ndarray, list[dict]]:
    """A 16 kHz float32 stream with events at the given onsets, and its ground truth.

    ``events`` are (onset seconds, label): "smoke_alarm" (one T3 cycle, 3 beeps, 2.5 s),
    "co_alarm" (T4, 4 beeps, 0.7 s) or a word spoken by espeak-ng. Each event is scaled to
    ``level_dbfs`` RMS; the ``background`` "noise" (pink + hum) sits ``snr_db`` below that,
    "silence" is digital zero. Returns (audio, [{"label", "onset_s", "end_s"}, ...]).
    """
    if background not in ("noise", "silence"):
        raise ValueError(f"make_stream: background {background!r} is not 'noise' or 'silence'")
    n = int(round(duration_s * FS))
    if n <= 0:
        raise ValueError(f"make_stream: duration_s {duration_s} must be positive")
    rng = np.random.default_rng(seed)
    out = np.zeros(n, np.float32)
    truth = []
    for onset, label in sorted(events):
        a = int(round(onset * FS))
        if not 0 <= a < n:
            raise ValueError(
                f"make_stream: event {label!r} at {onset} s is outside 0-{duration_s} s"
            )
        audio = _event_audio(label, rng)
        audio = audio * np.float32(_db(level_dbfs) / max(_rms(audio), 1e-9))
        m = min(audio.size, n - a)
        out[a : a + m] += audio[:m]
        truth.append({"label": label, "onset_s": a / FS, "end_s": (a + m) / FS})
    if background == "noise":
        bed = noise("pink", n, rng) + 0.5 * noise("hum", n, rng)
        out += bed * np.float32(_db(level_dbfs - snr_db) / _rms(bed))
    return np.clip(out, -1.0, 1.0).astype(np.float32), truth


# --- CLI -------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write the built-in synthetic dataset (espeak-ng keywords, smoke alarms)",
        description="Write the synthetic keyword and smoke-alarm sets, deterministically.",
    )
    p.add_argument("out", metavar="OUT", help="output folder (keywords/ and alarm/ go inside)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--set", choices=("keywords", "alarm", "all"), default="all",
                   help="which set to write (default: all)")  # fmt: skip
    p.add_argument("--per-label", type=int, default=None,
                   help="clips per label (default: 300 per keyword, 150 per alarm class)")  # fmt: skip
    p.add_argument("--speakers", type=int, default=80,
                   help="distinct espeak-ng training speakers; validation and test get a sixth and a third as many, of accents and variants held out (default: 80)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="parallel espeak-ng calls (default: 2)")
    p.add_argument("--fillers", type=int, default=0, metavar="N",
                   help=f"keywords set: N clips of each of {len(FILLER_WORDS)} non-keywords, one "
                        f"folder per word, and {HOUSEHOLD_SHARE:g} household sounds and as many "
                        "clips of real speech in other languages per such clip, for an _unknown_ "
                        "class (default: 0)")  # fmt: skip
    p.add_argument("--words", metavar="A,B,...",
                   help="keywords set: the words to speak, comma-separated, quoted if they hold "
                        "a space (default: " + ",".join(KEYWORDS) + "); filler words that sound "
                        "like one of them are left out")  # fmt: skip
    p.add_argument("--no-recordings", action="store_true",
                   help="use no real recordings (music, speech, effects from Debian packages) "
                        "for backgrounds and _unknown_; synthetic noise only")  # fmt: skip
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.per_label is not None and args.per_label < 1:
        raise ValueError(f"--per-label {args.per_label}: must be at least 1")
    if args.speakers < 1:
        raise ValueError(f"--speakers {args.speakers}: must be at least 1")
    if args.fillers < 0:
        raise ValueError(f"--fillers {args.fillers}: must be at least 0")
    for name in ("keywords", "alarm"):
        if args.set in (name, "all"):
            per = args.per_label or DEFAULT_PER_LABEL[name]
            if name == "keywords":
                words = parse_words(args.words) if args.words else KEYWORDS
                synth_keywords(out / name, args.seed, per, args.speakers, args.workers,
                               args.fillers, words, not args.no_recordings)  # fmt: skip
            else:
                synth_alarm(out / name, args.seed, per, args.speakers, args.workers,
                            not args.no_recordings)
            print(f"wrote {out / name} ({per} clips per label)")
    return 0
