"""Audio augmentation, reproducible from a seed.

The Arm RP2040 tutorial's three (white noise, random silence, mixing with background noise)
plus two (time shift, gain). Each is applied with its own probability, in this order:
time shift -> gain -> random silence -> room -> device colouring -> background mix -> white
noise, then clipped to [-1, 1].

* time shift: ``np.roll`` by up to ``shift_max_s`` earlier and ``shift_late_s`` (default: the
  same) later, with the wrapped part zeroed. With ``shift_fit`` the shift is drawn only from the
  range that keeps the clip's sound inside: the 10 ms frames within ``FIT_FLOOR_DB`` of the
  loudest one, so a word is moved, never cut. A late bias (``shift_late_s`` of several tenths
  of a second, with ``shift_fit``) teaches a keyword model words that end at the window's right
  edge, which is where a streaming sliding window first holds all of a word: the detection then
  comes when the word ends, not half a window later when it is centred.
* gain: multiply by ``10 ** (g / 20)``, g drawn from ``gain_db``. Microphones sit 15-20 dB
  apart in sensitivity, so the default spans 30 dB.
* random silence: zero a contiguous part (``silence_fraction`` of the clip) at a random place,
  or, with ``silence_whole_prob``, the whole clip. The label is kept: the whole-clip case is
  meant for negative/background classes.
* room: convolution with a simulated room's impulse response (``reverb_prob``): shoebox rooms
  of 2.5-9 m with RT60 0.15-0.9 s, source and microphone placed at random (pyroomacoustics'
  image-source model; a bank of ``ROOM_BANK`` rooms is made once per seed).
* device colouring (``colour_prob``): a cheap microphone's or loudspeaker's response: a
  high-pass at 60-400 Hz, with ``lowpass`` odds a low-pass at 3.4-7.5 kHz (a phone or a small
  speaker), and a +-8 dB resonance at 400-5000 Hz.
* background mix: a random slice of a random background clip, scaled so that
  clip RMS / background RMS = SNR drawn from ``snr_db``. A (near-)silent clip has no SNR; the
  background is then added at an RMS level drawn from ``silent_background_dbfs``.
* white noise: Gaussian noise at an RMS level (dBFS, 0 dB = full-scale RMS 1.0) from ``noise_dbfs``.

``augment_batch`` can also make negatives from positives (``CutConfig``): with ``prob``, an
augmented copy of a clip of a ``labels`` class is moved so that only ``keep`` (a share of its
sound, see ``shift_fit``) is left inside, at the start or the end, and is relabelled ``to`` (an
``_unknown_`` class). A streaming window holds every word cut like that on its way in and out;
a model that only ever saw whole words names such a fragment confidently ("stop"'s tail as
"down"), so the daemon fired on the edges of words.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from earshot.audio import SAMPLE_RATE

_LOGGER = logging.getLogger(__name__)

_SILENT_RMS = 1e-4  # -80 dBFS: below this a clip has no meaningful SNR
FIT_FLOOR_DB = -30.0
"""``shift_fit``: a 10 ms frame counts as sound within this many dB of the loudest frame."""
_FIT_FRAME = SAMPLE_RATE // 100  # 10 ms


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, how often, and how strongly."""

    shift_prob: float = 0.5
    """Probability of a time shift."""
    shift_max_s: float = 0.1
    """Largest shift earlier, and later unless ``shift_late_s`` is set (s)."""
    shift_late_s: float | None = None
    """Largest shift later (s); None = ``shift_max_s``."""
    shift_fit: bool = False
    """Draw the shift only from the range that keeps the clip's sound inside (no cut words)."""
    gain_prob: float = 0.8
    """Probability of a gain change."""
    gain_db: tuple[float, float] = (-20.0, 10.0)
    """Gain range (dB), drawn uniformly."""
    silence_prob: float = 0.1
    """Probability of random silence."""
    silence_fraction: tuple[float, float] = (0.1, 0.4)
    """Share of the clip zeroed when part of it is silenced, drawn uniformly."""
    silence_whole_prob: float = 0.0
    """Given random silence, the probability that the whole clip is zeroed."""
    reverb_prob: float = 0.5
    """Probability of convolving with a simulated room's impulse response."""
    colour_prob: float = 0.5
    """Probability of a device colouring (high-pass, optional low-pass, a resonance)."""
    background_prob: float = 0.8
    """Probability of mixing in a background clip (needs background clips)."""
    snr_db: tuple[float, float] = (0.0, 20.0)
    """Clip-to-background SNR range (dB), drawn uniformly."""
    silent_background_dbfs: tuple[float, float] = (-50.0, -25.0)
    """Background RMS level range (dBFS) for clips too quiet to have an SNR."""
    noise_prob: float = 0.5
    """Probability of adding white noise."""
    noise_dbfs: tuple[float, float] = (-60.0, -35.0)
    """White-noise RMS level range (dBFS), drawn uniformly."""

    def __post_init__(self) -> None:
        for name in ("shift_prob", "gain_prob", "silence_prob", "silence_whole_prob",
                     "reverb_prob", "colour_prob", "background_prob", "noise_prob"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} = {getattr(self, name)}: not in [0, 1]")
        for name in ("gain_db", "silence_fraction", "snr_db", "silent_background_dbfs",
                     "noise_dbfs"):  # fmt: skip
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"AugmentConfig.{name} = {(lo, hi)}: low end above high end")
        if not 0.0 <= self.silence_fraction[0] <= self.silence_fraction[1] <= 1.0:
            raise ValueError(
                f"AugmentConfig.silence_fraction = {self.silence_fraction}: not in [0, 1]"
            )
        if self.shift_max_s < 0:
            raise ValueError(f"AugmentConfig.shift_max_s = {self.shift_max_s}: negative")
        if self.shift_late_s is not None and self.shift_late_s < 0:
            raise ValueError(f"AugmentConfig.shift_late_s = {self.shift_late_s}: negative")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def time_shift(clip: np.ndarray, samples: int) -> np.ndarray:
    """``clip`` moved by ``samples`` (positive = later), the vacated part zero."""
    out = np.zeros_like(clip)
    if samples >= 0:
        out[samples:] = clip[: clip.size - samples]
    else:
        out[:samples] = clip[-samples:]
    return out


def sound_extent(clip: np.ndarray) -> tuple[int, int]:
    """(first, end) sample of the 10 ms frames within ``FIT_FLOOR_DB`` of the loudest frame;
    (0, clip.size) for a silent clip."""
    frames = clip.size // _FIT_FRAME
    if frames == 0:
        return 0, clip.size
    x = np.asarray(clip[: frames * _FIT_FRAME], np.float64).reshape(frames, _FIT_FRAME)
    energy = np.mean(np.square(x), axis=1)
    peak = float(energy.max())
    if peak <= _SILENT_RMS**2:
        return 0, clip.size
    loud = np.flatnonzero(energy >= peak * 10.0 ** (FIT_FLOOR_DB / 10.0))
    end = clip.size if loud[-1] == frames - 1 else int(loud[-1] + 1) * _FIT_FRAME
    return int(loud[0]) * _FIT_FRAME, end


def _draw_shift(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> int:
    early = int(round(config.shift_max_s * SAMPLE_RATE))
    late_s = config.shift_max_s if config.shift_late_s is None else config.shift_late_s
    late = int(round(late_s * SAMPLE_RATE))
    if config.shift_fit:
        first, end = sound_extent(x)
        early, late = min(early, first), min(late, x.size - end)
    return int(rng.integers(-early, late + 1)) if early or late else 0


@dataclass(frozen=True)
class CutConfig:
    """Word fragments at the window's edges as negatives (``augment_batch``)."""

    to: int
    """Label index the fragments get (the ``_unknown_`` class)."""
    labels: frozenset[int]
    """Label indices whose clips may be cut (the keywords)."""
    prob: float = 0.15
    """Probability that an augmented copy of such a clip is a fragment instead."""
    keep: tuple[float, float] = (0.1, 0.45)
    """Share of the clip's sound left inside, drawn uniformly."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"CutConfig.prob = {self.prob}: not in [0, 1]")
        if not 0.0 < self.keep[0] <= self.keep[1] < 1.0:
            raise ValueError(f"CutConfig.keep = {self.keep}: not 0 < low <= high < 1")


def cut_at_edge(clip: np.ndarray, keep: float, at_end: bool) -> np.ndarray:
    """``clip`` moved so that ``keep`` of its sound (``sound_extent``) is left, at the window's
    end (the word's start, coming in) or at its start (the word's end, going out)."""
    first, end = sound_extent(clip)
    inside = max(1, int(round(keep * (end - first))))
    shift = clip.size - inside - first if at_end else inside - end
    return time_shift(clip, shift)


ROOM_BANK = 48
"""Simulated rooms per seed (each impulse response is used for many clips)."""
_RIR_S = 0.5
"""Impulse responses are cut to this length (s): later reflections are far below the noise."""


@functools.lru_cache(maxsize=4)
def room_bank(seed: int, count: int = ROOM_BANK) -> tuple[np.ndarray, ...]:
    """``count`` room impulse responses (16 kHz, peak 1 at the direct path), from ``seed``."""
    import pyroomacoustics as pra

    rng = np.random.default_rng((seed, 11))
    bank = []
    for _ in range(count):
        dims = np.array([rng.uniform(2.5, 9.0), rng.uniform(2.5, 7.0), rng.uniform(2.3, 3.5)])
        rt60 = float(rng.uniform(0.15, 0.9))
        absorption, order = pra.inverse_sabine(rt60, dims)
        room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                           max_order=int(min(order, 10)))  # fmt: skip
        src, mic = (rng.uniform(0.3, 1.0, 3) * (dims - 0.6) + 0.3 for _ in range(2))
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], np.float64)
        peak = int(np.argmax(np.abs(rir)))
        rir = rir[peak : peak + int(_RIR_S * SAMPLE_RATE)]  # the direct path at t = 0
        bank.append((rir / np.abs(rir[0])).astype(np.float32))
    return tuple(bank)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` heard in a room: convolved with ``rir``, same length, the same RMS as ``x``."""
    import scipy.signal

    y = scipy.signal.fftconvolve(x, rir)[: x.size]
    return (y * np.float32(_rms(x) / max(_rms(y), 1e-12))).astype(np.float32)


def colour(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` through a random device response (module docstring), RMS kept."""
    import scipy.signal

    sos = [scipy.signal.butter(2, rng.uniform(60.0, 400.0), "highpass", fs=SAMPLE_RATE,
                               output="sos")]  # fmt: skip
    if rng.random() < 0.4:
        sos.append(scipy.signal.butter(int(rng.integers(2, 5)), rng.uniform(3400.0, 7500.0),
                                       "lowpass", fs=SAMPLE_RATE, output="sos"))  # fmt: skip
    b, a = _peaking(float(rng.uniform(400.0, 5000.0)), float(rng.uniform(-8.0, 8.0)),
                    float(rng.uniform(0.7, 3.0)))  # fmt: skip
    sos.append(scipy.signal.tf2sos(b, a))
    y = scipy.signal.sosfilt(np.concatenate(sos), x)
    return (y * (_rms(x) / max(_rms(y), 1e-12))).astype(np.float32)


def _peaking(f0: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """A peaking equaliser biquad (the Audio EQ Cookbook's formulas)."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * f0 / SAMPLE_RATE
    alpha = np.sin(w0) / (2.0 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    return b / a[0], a / a[0]


def _slice(bg: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if bg.size <= n:
        return np.resize(bg, n) if bg.size else np.zeros(n, np.float32)
    start = int(rng.integers(0, bg.size - n + 1))
    return bg[start : start + n]


def mix_background(
    clip: np.ndarray, bg: np.ndarray, snr_db: float, silent_dbfs: float
) -> np.ndarray:
    """``clip`` + ``bg`` scaled to ``snr_db`` below it (or to ``silent_dbfs`` if clip is silent)."""
    bg_rms = _rms(bg)
    if bg_rms == 0.0:
        return clip
    clip_rms = _rms(clip)
    target = (
        clip_rms / 10.0 ** (snr_db / 20.0)
        if clip_rms > _SILENT_RMS
        else 10.0 ** (silent_dbfs / 20.0)
    )
    return (clip + bg * np.float32(target / bg_rms)).astype(np.float32)


def augment(
    clip: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    background: Sequence[np.ndarray] = (),
    rooms: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One augmented copy of ``clip`` (float32, same length); ``rng`` decides everything."""
    x = np.asarray(clip, np.float32).copy()
    n = x.size
    if rng.random() < config.shift_prob:
        x = time_shift(x, _draw_shift(x, rng, config))
    if rng.random() < config.gain_prob:
        x *= np.float32(10.0 ** (rng.uniform(*config.gain_db) / 20.0))
    if rng.random() < config.silence_prob:
        if rng.random() < config.silence_whole_prob:
            x[:] = 0.0
        else:
            m = int(round(rng.uniform(*config.silence_fraction) * n))
            start = int(rng.integers(0, n - m + 1))
            x[start : start + m] = 0.0
    if rooms and rng.random() < config.reverb_prob:
        x = reverberate(x, rooms[int(rng.integers(len(rooms)))])
    if rng.random() < config.colour_prob and _rms(x) > _SILENT_RMS:
        x = colour(x, rng)
    if background and rng.random() < config.background_prob:
        bg = _slice(np.asarray(background[int(rng.integers(len(background)))], np.float32), n, rng)
        x = mix_background(
            x, bg, rng.uniform(*config.snr_db), rng.uniform(*config.silent_background_dbfs)
        )
    if rng.random() < config.noise_prob:
        level = 10.0 ** (rng.uniform(*config.noise_dbfs) / 20.0)
        x += rng.standard_normal(n).astype(np.float32) * np.float32(level)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def augment_batch(
    X: np.ndarray,
    y: np.ndarray,
    config: AugmentConfig,
    background: Sequence[np.ndarray],
    seed: int,
    copies: int = 1,
    progress: bool = True,
    cut: CutConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by ``copies`` augmented versions of each; deterministic for ``seed``.
    With ``cut``, some copies are edge fragments with the label ``cut.to`` (module docstring)."""
    X = np.asarray(X, np.float32)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"augment_batch: X {X.shape} and y ({len(y)}) do not match")
    if copies < 0:
        raise ValueError(f"augment_batch: copies = {copies} is negative")
    out = np.empty((len(X) * (copies + 1), X.shape[1]), np.float32)
    out[: len(X)] = X
    labels = np.tile(np.asarray(y), copies + 1)
    rng = np.random.default_rng(seed)
    cut_rng = np.random.default_rng((seed, 1))  # its own stream: cut=None keeps rng's draws
    total = len(X) * copies
    cut_config = replace(config, shift_prob=0.0)  # a fragment is already placed at an edge
    rooms = room_bank(seed) if config.reverb_prob > 0 and copies > 0 else ()
    for j in tqdm(
        range(total), desc="augmenting", unit="clip", disable=not progress or total < 1000
    ):
        x = X[j % len(X)]
        if cut is not None and int(y[j % len(X)]) in cut.labels and cut_rng.random() < cut.prob:
            x = cut_at_edge(x, float(cut_rng.uniform(*cut.keep)), bool(cut_rng.random() < 0.5))
            labels[len(X) + j] = cut.to
            out[len(X) + j] = augment(x, rng, cut_config, background, rooms)
        else:
            out[len(X) + j] = augment(x, rng, config, background, rooms)
    return out, labels
