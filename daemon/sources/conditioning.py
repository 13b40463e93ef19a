"""Signal conditioning shared by the sources: DC blocking and the mic chain.

Streaming resampling is ``earshot.audio.StreamingResampler`` (re-exported here), the one
implementation the WAV reader (``earshot.wavio.iter_wav``) uses too.

The microphone path is built for the SPH0645 on I2S: the ALSA device delivers 32-bit stereo
frames of which one channel is live (the other is zero or noise), the samples carry a large DC
offset, the level is low and the first few hundred ms after start-up hold a click. So the chain
(:class:`MicConditioner`) is: pick the live channel -> discard the first ``discard_ms`` ->
first-order DC-blocking high-pass -> digital gain -> streaming polyphase resampling to 16 kHz.
"""

from __future__ import annotations

import math

import numpy as np

from earshot.audio import SAMPLE_RATE, StreamingResampler

from ..config import MicSettings
from .base import DTYPE, SCALE

__all__ = ["DcBlocker", "MicConditioner", "StreamingResampler"]


class DcBlocker:
    """First-order high-pass y[n] = x[n] - x[n-1] + a*y[n-1], state kept across chunks.

    Computed in closed form per block, y[k] = a^k (a y[-1] + sum_j<=k d[j] a^-j) with
    d = diff(x), blocks short enough that a^-k stays below 1e4 (round-off below 1e-11), so the
    microphone path needs numpy only (scipy.signal.lfilter gives the same: tested). The first
    chunk starts settled on its first sample's DC level.
    """

    def __init__(self, corner_hz: float, rate: int) -> None:
        self.enabled = corner_hz > 0
        self._a = math.exp(-2.0 * math.pi * corner_hz / rate) if self.enabled else 0.0
        block = int(math.log(1e4) / -math.log(self._a)) if self.enabled else 1
        k = np.arange(max(1, block), dtype=np.float64)
        self._up, self._down = self._a**k, self._a**-k
        self._x1: float | None = None
        self._y1 = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        if not self.enabled or x.size == 0:
            return x
        x = x.astype(np.float64)
        d = np.diff(x, prepend=x[0] if self._x1 is None else self._x1)
        y = np.empty_like(d)
        n = self._up.size
        for s in range(0, d.size, n):
            seg = d[s : s + n]
            k = seg.size
            y[s : s + k] = self._up[:k] * (self._a * self._y1 + np.cumsum(seg * self._down[:k]))
            self._y1 = float(y[s + k - 1])
        self._x1 = float(x[-1])
        return y


class MicConditioner:
    """Interleaved device frames (bytes) -> float32 16 kHz mono, per MicSettings."""

    def __init__(self, mic: MicSettings) -> None:
        self.mic = mic
        self._discard = int(round(mic.discard_ms * mic.rate / 1000))
        self._dc = DcBlocker(mic.highpass_hz, mic.rate)
        self._gain = 10.0 ** (mic.gain_db / 20.0)
        self._resampler = StreamingResampler(mic.rate, SAMPLE_RATE)

    def process(self, data: bytes) -> np.ndarray:
        frames = np.frombuffer(data, DTYPE[self.mic.format])
        frames = frames[: frames.size - frames.size % self.mic.channels]
        x = frames.reshape(-1, self.mic.channels)[:, self.mic.channel].astype(np.float64)
        x /= SCALE[self.mic.format]
        if self._discard:
            cut = min(self._discard, x.size)
            self._discard -= cut
            x = x[cut:]
        x = self._dc.process(x) * self._gain
        return self._resampler.process(x)
