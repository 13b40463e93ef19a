"""Audio as every part of earshot sees it: one rate, one clip length, one float<->int16 rule.

* Everything downstream of a source runs at :data:`SAMPLE_RATE` (16 kHz) mono float32 in [-1, 1).
* float -> int16 is round-half-even of ``x * 32768``, saturating; int16 -> float is ``/ 32768``.
  The two are exact inverses on int16, and the RP2040's PCM path is int16 already, so the
  ``q15`` front end sees the same numbers on the Pi, in training and on the board.
* "The loudest window" is the ``length`` samples centred on the largest deviation from the mean
  (the mean is removed first, so a microphone's DC offset cannot pick the window).
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16000
"""The one sample rate of features, models and detectors (Hz)."""

CLIP_SAMPLES = 16000
"""One classification window: 1 s at :data:`SAMPLE_RATE`."""


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1) to int16 by round-half-even of ``x * 32768``, saturating.

    int16 input is returned unchanged.
    """
    a = np.asarray(audio)
    if a.dtype == np.int16:
        return a
    return np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def to_float(audio: np.ndarray) -> np.ndarray:
    """int16 or float audio to float32 in [-1, 1) (int16 / 32768)."""
    a = np.asarray(audio)
    if a.dtype == np.int16:
        return (a.astype(np.float32) / 32768.0).astype(np.float32)
    return a.astype(np.float32)


def resample(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float audio from ``rate`` to ``target`` Hz (polyphase, exact rational ratio)."""
    if rate == target:
        return audio.astype(np.float32)
    import scipy.signal

    g = math.gcd(int(rate), int(target))
    return scipy.signal.resample_poly(audio, target // g, rate // g).astype(np.float32)


def loudest_start(audio: np.ndarray, length: int) -> int:
    """Start of the ``length``-sample window centred on the peak of ``|audio - mean|``."""
    n = audio.shape[0]
    if n <= length:
        return 0
    peak = int(np.argmax(np.abs(audio - audio.mean())))
    return min(max(0, peak - length // 2), n - length)


def fit_length(audio: np.ndarray, length: int, mode: str = "center") -> np.ndarray:
    """Pad with zeros or cut to ``length`` samples.

    Shorter clips are padded symmetrically (half before, half after) so the sound stays centred;
    longer clips are cut: ``center`` keeps the middle, ``start`` keeps the beginning, ``loudest``
    keeps the loudest window (:func:`loudest_start`).
    """
    n = audio.shape[0]
    if n == length:
        return audio.astype(np.float32)
    if n < length:
        before = (length - n) // 2
        return np.pad(audio, (before, length - n - before)).astype(np.float32)
    if mode == "start":
        start = 0
    elif mode == "center":
        start = (n - length) // 2
    elif mode == "loudest":
        start = loudest_start(audio, length)
    else:
        raise ValueError(f"unknown fit mode {mode!r}")
    return audio[start : start + length].astype(np.float32)
