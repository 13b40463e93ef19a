"""Signal conditioning shared by the sources: streaming resampling, DC blocking, the mic chain.

The microphone path is built for the SPH0645 on I2S: the ALSA device delivers 32-bit stereo
frames of which one channel is live (the other is zero or noise), the samples carry a large DC
offset, the level is low and the first few hundred ms after start-up hold a click. So the chain
(:class:`MicConditioner`) is: pick the live channel -> discard the first ``discard_ms`` ->
first-order DC-blocking high-pass -> digital gain -> streaming polyphase resampling to 16 kHz.
"""

from __future__ import annotations

import math

import numpy as np

from earshot.audio import SAMPLE_RATE

from ..config import MicSettings
from .base import DTYPE, SCALE


class StreamingResampler:
    """Rational-ratio polyphase FIR resampler that keeps its history across chunks.

    Output sample m is the low-pass filtered, up-by-``up`` signal at index m*``down``; chunk
    boundaries do not change the result (feeding 1 sample at a time equals feeding it all).
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE, taps_per_phase: int = 24) -> None:
        import scipy.signal

        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = rate_out // g, rate_in // g
        self.passthrough = self.up == self.down == 1
        n = taps_per_phase * self.up
        cutoff = 0.95 / max(self.up, self.down)  # fraction of the up-sampled Nyquist
        h = scipy.signal.firwin(n, cutoff, window=("kaiser", 8.0)) * self.up
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
        last_m = (self._n_in * self.up - 1) // self.down  # highest output whose input has arrived
        m = np.arange(self._m_out, last_m + 1)
        self._m_out = last_m + 1
        self._hist = buf[buf.size - (self._taps - 1) :] if self._taps > 1 else buf[:0]
        if m.size == 0:
            return np.zeros(0, np.float32)
        j = m * self.down
        n = j // self.up - first  # newest input index (in buf) for each output
        phase = j % self.up
        win = np.lib.stride_tricks.sliding_window_view(buf, self._taps)
        return np.einsum("ij,ij->i", win[n - self._taps + 1], self._poly[phase]).astype(np.float32)


class DcBlocker:
    """First-order high-pass y[n] = x[n] - x[n-1] + a*y[n-1], state kept across chunks."""

    def __init__(self, corner_hz: float, rate: int) -> None:
        self.enabled = corner_hz > 0
        self._a = math.exp(-2.0 * math.pi * corner_hz / rate) if self.enabled else 0.0
        self._zi: np.ndarray | None = None

    def process(self, x: np.ndarray) -> np.ndarray:
        if not self.enabled or x.size == 0:
            return x
        import scipy.signal

        b, a = [1.0, -1.0], [1.0, -self._a]
        if self._zi is None:  # start settled on the first sample's DC level
            self._zi = scipy.signal.lfiltic(b, a, y=[0.0], x=[float(x[0])])
        y, self._zi = scipy.signal.lfilter(b, a, x.astype(np.float64), zi=self._zi)
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
