"""A WAV file as an audio source (``[source] kind = "wav"``)."""

from __future__ import annotations

import os
import time

import numpy as np

from earshot.audio import SAMPLE_RATE


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
