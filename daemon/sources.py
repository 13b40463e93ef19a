"""Audio in: a PyAudio (ALSA) microphone, a WAV file, or raw PCM on stdin; ``earshotd devices``.

Every source yields float32 mono chunks at 16 kHz from ``read(timeout)``; ``None`` means the
stream ended (end of file). A source counts overflows (audio lost because the reader fell
behind) in ``overflows``; the runner reports them.

The microphone path is built for the SPH0645 on I2S: the ALSA device delivers 32-bit stereo
frames of which one channel is live (the other is zero or noise), the samples carry a large DC
offset, the level is low and the first few hundred ms after start-up hold a click. So the chain
is: pick the live channel -> discard the first ``discard_ms`` -> first-order DC-blocking
high-pass -> digital gain -> streaming polyphase resampling to 16 kHz.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import queue
import select
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import numpy as np

from earshot.audio import SAMPLE_RATE

from .config import MicSettings, SourceSettings

_LOGGER = logging.getLogger(__name__)

_SCALE = {"int16": 32768.0, "int32": 2147483648.0, "float32": 1.0}
_DTYPE = {"int16": "<i2", "int32": "<i4", "float32": "<f4"}


class SourceError(RuntimeError):
    """An audio source cannot be opened or read; the message names the device or file."""


class AudioSource(Protocol):
    """What the runner needs from a source."""

    name: str
    overflows: int

    def read(self, timeout: float) -> np.ndarray | None:
        """The next float32 16 kHz mono chunk; empty if none arrived in time; None at the end."""
        ...

    def close(self) -> None: ...


# -- signal conditioning ----------------------------------------------------------------------


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
        frames = np.frombuffer(data, _DTYPE[self.mic.format])
        frames = frames[: frames.size - frames.size % self.mic.channels]
        x = frames.reshape(-1, self.mic.channels)[:, self.mic.channel].astype(np.float64)
        x /= _SCALE[self.mic.format]
        if self._discard:
            cut = min(self._discard, x.size)
            self._discard -= cut
            x = x[cut:]
        x = self._dc.process(x) * self._gain
        return self._resampler.process(x)


# -- PyAudio microphone ---------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio input device."""

    index: int
    """PortAudio device index."""
    name: str
    """Device name (for ALSA PCMs, the PCM name)."""
    channels: int
    """Maximum input channels."""
    rate: float
    """Default sample rate (Hz)."""


@contextmanager
def _quiet_stderr():  # type: ignore[no-untyped-def]
    """Silence ALSA/JACK chatter on fd 2 while PortAudio probes devices (unless --debug)."""
    if _LOGGER.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def open_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError as e:
        raise SourceError(f"microphone needs PyAudio (pip install pyaudio): {e}") from None
    with _quiet_stderr():
        return pyaudio.PyAudio()


def list_inputs(pa: Any) -> list[DeviceInfo]:
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        if int(d.get("maxInputChannels", 0)) > 0:
            out.append(
                DeviceInfo(i, str(d["name"]), int(d["maxInputChannels"]), float(d["defaultSampleRate"]))
            )
    return out


def format_devices(devices: list[DeviceInfo]) -> str:
    if not devices:
        return "  (no input devices)"
    return "\n".join(
        f"  {d.index:3d}  {d.name}  ({d.channels} ch, {d.rate:.0f} Hz)" for d in devices
    )


def find_device(spec: str, devices: list[DeviceInfo]) -> DeviceInfo | None:
    """By index (all digits) or case-insensitive name substring; '' gives None (the default)."""
    if spec == "":
        return None
    if spec.isdigit():
        hits = [d for d in devices if d.index == int(spec)]
    else:
        exact = [d for d in devices if d.name.lower() == spec.lower()]
        hits = exact or [d for d in devices if spec.lower() in d.name.lower()]
    if not hits:
        raise SourceError(
            f"mic.device {spec!r}: no such input device; inputs are:\n{format_devices(devices)}"
        )
    if len(hits) > 1:
        _LOGGER.warning("mic.device %r matches %d devices; using %r", spec, len(hits), hits[0].name)
    return hits[0]


class MicSource:
    """PyAudio capture in callback mode: PortAudio's thread queues buffers, ``read`` drains them."""

    def __init__(self, mic: MicSettings, pa: Any = None) -> None:
        import pyaudio

        self.mic = mic
        self.overflows = 0
        self._pa = pa or open_pyaudio()
        devices = list_inputs(self._pa)
        dev = find_device(mic.device, devices)
        self.name = dev.name if dev else "default"
        self._cond = MicConditioner(mic)
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=max(4, 4000 // mic.chunk_ms))
        fmt = pyaudio.paInt32 if mic.format == "int32" else pyaudio.paInt16
        frames = max(1, mic.rate * mic.chunk_ms // 1000)
        try:
            with _quiet_stderr():
                self._stream = self._pa.open(
                    format=fmt, channels=mic.channels, rate=mic.rate, input=True,
                    input_device_index=dev.index if dev else None,
                    frames_per_buffer=frames, stream_callback=self._callback,
                )
        except (OSError, ValueError) as e:
            raise SourceError(
                f"mic.device {mic.device or 'default'!r} ({self.name}): cannot open "
                f"{mic.channels} ch {mic.format} at {mic.rate} Hz: {e}"
            ) from None
        _LOGGER.info(
            "microphone %s open: %d ch %s at %d Hz, live channel %d",
            self.name, mic.channels, mic.format, mic.rate, mic.channel,
        )

    def _callback(self, data: bytes, frames: int, info: Any, status: int) -> tuple[None, int]:
        import pyaudio

        if status & pyaudio.paInputOverflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self.overflows += 1
        return None, pyaudio.paContinue

    def read(self, timeout: float) -> np.ndarray | None:
        try:
            data = self._queue.get(timeout=timeout)
        except queue.Empty:
            return np.zeros(0, np.float32)
        return self._cond.process(data)

    def close(self) -> None:
        try:
            self._stream.stop_stream()
            self._stream.close()
        finally:
            self._pa.terminate()


# -- files and pipes ----------------------------------------------------------------------


class WavSource:
    """A WAV file in chunks, paced at real time or as fast as the reader takes it."""

    def __init__(self, path: str, realtime: bool = True, chunk_ms: int = 50) -> None:
        from earshot.wavio import read_wav

        self.name = os.path.basename(path)
        self.overflows = 0
        self._audio = read_wav(path)
        self._chunk = SAMPLE_RATE * chunk_ms // 1000
        self._pos = 0
        self._realtime = realtime
        self._t0: float | None = None

    def read(self, timeout: float) -> np.ndarray | None:
        if self._pos >= self._audio.size:
            return None
        if self._realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            due = self._t0 + (self._pos + self._chunk) / SAMPLE_RATE
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return np.zeros(0, np.float32)
            if wait > 0:
                time.sleep(wait)
        out = self._audio[self._pos : self._pos + self._chunk]
        self._pos += self._chunk
        return out

    def close(self) -> None:
        pass


class StdinSource:
    """Raw interleaved little-endian PCM from a pipe (e.g. ``arecord -t raw | earshotd run``)."""

    def __init__(self, src: SourceSettings, stream: BinaryIO | None = None, chunk_ms: int = 50) -> None:
        self.name = "stdin"
        self.overflows = 0
        self._src = src
        self._fh = stream or sys.stdin.buffer
        self._frame = np.dtype(_DTYPE[src.stdin_format]).itemsize * src.stdin_channels
        self._bytes = self._frame * max(1, src.stdin_rate * chunk_ms // 1000)
        self._resampler = StreamingResampler(src.stdin_rate, SAMPLE_RATE)
        self._carry = b""

    def read(self, timeout: float) -> np.ndarray | None:
        fd = self._fh.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return np.zeros(0, np.float32)
        data = os.read(fd, self._bytes)
        if not data:
            return None
        data = self._carry + data
        usable = len(data) - len(data) % self._frame
        data, self._carry = data[:usable], data[usable:]
        x = np.frombuffer(data, _DTYPE[self._src.stdin_format]).astype(np.float64)
        x = x.reshape(-1, self._src.stdin_channels).mean(axis=1) / _SCALE[self._src.stdin_format]
        return self._resampler.process(x)

    def close(self) -> None:
        pass


def open_source(src: SourceSettings, mic: MicSettings) -> AudioSource:
    """The source the settings name (raises SourceError or WavError naming the device/file)."""
    if src.kind == "wav":
        return WavSource(src.wav, src.realtime, mic.chunk_ms)
    if src.kind == "stdin":
        return StdinSource(src, chunk_ms=mic.chunk_ms)
    return MicSource(mic)


# -- earshotd devices --------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list audio input devices (for --mic-device)",
        description="List PortAudio/ALSA input devices: index, name, channels, default rate.",
    )
    p.set_defaults(func=run_devices)


def run_devices(args: argparse.Namespace) -> int:
    try:
        pa = open_pyaudio()
    except SourceError as e:
        print(f"earshotd: error: {e}", file=sys.stderr)
        return 2
    try:
        devices = list_inputs(pa)
    finally:
        pa.terminate()
    print("input devices (use the index or a name substring with --mic-device):")
    print(format_devices(devices))
    return 0
