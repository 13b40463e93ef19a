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


def lowpass_kaiser(numtaps: int, cutoff: float, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass FIR, unit gain at DC: ``scipy.signal.firwin(numtaps, cutoff,
    window=("kaiser", beta))`` (cutoff as a fraction of Nyquist), with numpy only (tested equal),
    so streaming code need not import scipy.signal (about 52 MB)."""
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


class StreamingResampler:
    """Rational-ratio polyphase FIR resampler that keeps its history across chunks.

    Output sample m is the low-pass filtered, up-by-``up`` signal at index m*``down`` (+ the
    filter's centre with ``zero_phase``); chunk boundaries do not change the result (feeding 1
    sample at a time equals feeding it all). Live sources use the causal form (no look-ahead);
    a file reader uses ``zero_phase=True``, whose output n is input time n (an odd-length filter
    whose centre is looked ahead to; it needs :meth:`flush` at the end).
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE, taps_per_phase: int = 24,
                 zero_phase: bool = False) -> None:  # fmt: skip
        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = rate_out // g, rate_in // g
        self.passthrough = self.up == self.down == 1
        n = taps_per_phase * self.up + (1 if zero_phase else 0)
        cutoff = 0.95 / max(self.up, self.down)  # fraction of the up-sampled Nyquist
        h = lowpass_kaiser(n, cutoff, 8.0) * self.up
        h = np.concatenate([h, np.zeros(-n % self.up)])
        self._lead = (n - 1) // 2 if zero_phase else 0  # up-sampled samples looked ahead
        # phase p uses taps h[p], h[p+up], ...; reversed so a dot product with x[n-T+1..n] works
        self._poly = np.stack([h[p :: self.up][::-1] for p in range(self.up)]).astype(np.float64)
        self._taps = self._poly.shape[1]
        self._hist = np.zeros(self._taps - 1, np.float64)
        self._n_in = 0  # input samples consumed so far
        self._m_out = 0  # output samples produced so far

    def process(self, x: np.ndarray) -> np.ndarray:
        if self.passthrough:
            return x.astype(np.float32)
        buf = np.concatenate([self._hist, x.astype(np.float64)])
        first = self._n_in - self._hist.size  # global index of buf[0]
        self._n_in += x.size
        last_m = (self._n_in * self.up - 1 - self._lead) // self.down  # newest output with input
        m = np.arange(self._m_out, last_m + 1)
        self._m_out = max(self._m_out, last_m + 1)
        self._hist = buf[buf.size - (self._taps - 1) :] if self._taps > 1 else buf[:0]
        if m.size == 0:
            return np.zeros(0, np.float32)
        j = m * self.down + self._lead
        n = j // self.up - first  # newest input index (in buf) for each output
        phase = j % self.up
        win = np.lib.stride_tricks.sliding_window_view(buf, self._taps)
        return np.einsum("ij,ij->i", win[n - self._taps + 1], self._poly[phase]).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The outputs still waiting for look-ahead input (``zero_phase``): zeros fed in."""
        if self.passthrough or self._lead == 0:
            return np.zeros(0, np.float32)
        return self.process(np.zeros(self._lead // self.up + 1))


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
