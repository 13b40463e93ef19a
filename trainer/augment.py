"""Audio augmentation, reproducible from a seed.

The Arm RP2040 tutorial's three (white noise, random silence, mixing with background noise)
plus two (time shift, gain). Each is applied with its own probability, in this order:
time shift -> gain -> random silence -> background mix -> white noise, then clipped to [-1, 1].

* time shift: ``np.roll`` by up to ``shift_max_s`` either way, with the wrapped part zeroed.
* gain: multiply by ``10 ** (g / 20)``, g drawn from ``gain_db``.
* random silence: zero a contiguous part (``silence_fraction`` of the clip) at a random place,
  or, with ``silence_whole_prob``, the whole clip. The label is kept: the whole-clip case is
  meant for negative/background classes.
* background mix: a random slice of a random background clip, scaled so that
  clip RMS / background RMS = SNR drawn from ``snr_db``. A (near-)silent clip has no SNR; the
  background is then added at an RMS level drawn from ``silent_background_dbfs``.
* white noise: Gaussian noise at an RMS level (dBFS, 0 dB = full-scale RMS 1.0) from ``noise_dbfs``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from daemon.wavio import TARGET_RATE

_LOGGER = logging.getLogger(__name__)

_SILENT_RMS = 1e-4  # -80 dBFS: below this a clip has no meaningful SNR


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, how often, and how strongly."""

    shift_prob: float = 0.5
    """Probability of a time shift."""
    shift_max_s: float = 0.1
    """Largest shift either way (s)."""
    gain_prob: float = 0.5
    """Probability of a gain change."""
    gain_db: tuple[float, float] = (-6.0, 6.0)
    """Gain range (dB), drawn uniformly."""
    silence_prob: float = 0.1
    """Probability of random silence."""
    silence_fraction: tuple[float, float] = (0.1, 0.4)
    """Share of the clip zeroed when part of it is silenced, drawn uniformly."""
    silence_whole_prob: float = 0.0
    """Given random silence, the probability that the whole clip is zeroed."""
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
                     "background_prob", "noise_prob"):  # fmt: skip
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
) -> np.ndarray:
    """One augmented copy of ``clip`` (float32, same length); ``rng`` decides everything."""
    x = np.asarray(clip, np.float32).copy()
    n = x.size
    if rng.random() < config.shift_prob:
        k = int(round(config.shift_max_s * TARGET_RATE))
        x = time_shift(x, int(rng.integers(-k, k + 1)) if k else 0)
    if rng.random() < config.gain_prob:
        x *= np.float32(10.0 ** (rng.uniform(*config.gain_db) / 20.0))
    if rng.random() < config.silence_prob:
        if rng.random() < config.silence_whole_prob:
            x[:] = 0.0
        else:
            m = int(round(rng.uniform(*config.silence_fraction) * n))
            start = int(rng.integers(0, n - m + 1))
            x[start : start + m] = 0.0
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
) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by ``copies`` augmented versions of each; deterministic for ``seed``."""
    X = np.asarray(X, np.float32)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"augment_batch: X {X.shape} and y ({len(y)}) do not match")
    if copies < 0:
        raise ValueError(f"augment_batch: copies = {copies} is negative")
    out = np.empty((len(X) * (copies + 1), X.shape[1]), np.float32)
    out[: len(X)] = X
    rng = np.random.default_rng(seed)
    total = len(X) * copies
    for j in tqdm(
        range(total), desc="augmenting", unit="clip", disable=not progress or total < 1000
    ):
        out[len(X) + j] = augment(X[j % len(X)], rng, config, background)
    return out, np.tile(np.asarray(y), copies + 1)
