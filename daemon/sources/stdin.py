"""Raw PCM on stdin as an audio source (``[source] kind = "stdin"``)."""

from __future__ import annotations

import os
import select
import sys
from typing import BinaryIO

import numpy as np

from earshot.audio import SAMPLE_RATE

from ..config import SourceSettings
from .base import DTYPE, SCALE
from .conditioning import StreamingResampler


class StdinSource:
    """Raw interleaved little-endian PCM from a pipe (e.g. ``arecord -t raw | earshotd run``)."""

    def __init__(self, src: SourceSettings, stream: BinaryIO | None = None, chunk_ms: int = 50) -> None:
        self.name = "stdin"
        self.overflows = 0
        self._src = src
        self._fh = stream or sys.stdin.buffer
        self._frame = np.dtype(DTYPE[src.stdin_format]).itemsize * src.stdin_channels
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
        x = np.frombuffer(data, DTYPE[self._src.stdin_format]).astype(np.float64)
        x = x.reshape(-1, self._src.stdin_channels).mean(axis=1) / SCALE[self._src.stdin_format]
        return self._resampler.process(x)

    def close(self) -> None:
        pass
