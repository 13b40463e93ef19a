"""No local audio (``[source] kind = "none"``): the daemon only hosts Picos."""

from __future__ import annotations

import time

import numpy as np


class NoAudio:
    """Each read waits ``timeout`` and returns an empty chunk; the stream never ends."""

    name = "no local audio (Picos only)"
    overflows = 0

    def read(self, timeout: float) -> np.ndarray | None:
        time.sleep(timeout)
        return np.zeros(0, np.float32)

    def close(self) -> None:
        pass
