"""A WAV file as an audio source (``[source] kind = "wav"``), streamed: memory is one chunk."""

from __future__ import annotations

import os
import time
from collections.abc import Generator

import numpy as np

from earshot.audio import SAMPLE_RATE


class WavSource:
    """A WAV file in chunks (``earshot.wavio.iter_wav``), paced at real time or as fast as the
    reader takes it. A bad header raises WavError naming the file when the source is opened."""

    def __init__(self, path: str, realtime: bool = True, chunk_ms: int = 50) -> None:
        from earshot.wavio import iter_wav, wav_info

        self.name = os.path.basename(path)
        self.overflows = 0
        info = wav_info(path)
        self._blocks: Generator[np.ndarray, None, None] = iter_wav(path, block_frames=max(1, info.rate * chunk_ms // 1000))
        self._pos = 0
        self._realtime = realtime
        self._t0: float | None = None
        self._pending: np.ndarray | None = None

    def read(self, timeout: float) -> np.ndarray | None:
        if self._pending is None:
            self._pending = next(self._blocks, None)
            if self._pending is None:
                return None
        if self._realtime and not self._due(self._pending.size, timeout):
            return np.zeros(0, np.float32)
        out, self._pending = self._pending, None
        self._pos += out.size
        return out

    def _due(self, n: int, timeout: float) -> bool:
        """Sleep until the chunk's end is due; False if that is more than ``timeout`` away."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        wait = self._t0 + (self._pos + n) / SAMPLE_RATE - time.monotonic()
        if wait > timeout:
            time.sleep(max(0.0, timeout))
            return False
        if wait > 0:
            time.sleep(wait)
        return True

    def close(self) -> None:
        self._blocks.close()
