"""The PyAudio (ALSA) microphone source and ``earshotd devices``, which lists its devices.

PortAudio's callback thread queues the device's buffers; ``read`` drains them through the
conditioning chain (``daemon.sources.conditioning.MicConditioner``). A full queue or a PortAudio
input overflow counts in ``overflows``.
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cli import HelpFormatter
from ..config import MicSettings
from ..native import quiet_native_stderr
from .base import SourceError
from .conditioning import MicConditioner

_LOGGER = logging.getLogger(__name__)


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



def open_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError as e:
        raise SourceError(f"microphone needs PyAudio (pip install pyaudio): {e}") from None
    with quiet_native_stderr():
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
            with quiet_native_stderr():
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


# -- earshotd devices --------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list audio input devices (for --mic-device)",
        description="List PortAudio/ALSA input devices: index, name, channels, default rate.",
        epilog="example:\n  earshotd devices\n  earshotd run --mic-device sndrpihifiberry   "
        "(a name substring or an index from the list)\n",
        formatter_class=HelpFormatter,
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
