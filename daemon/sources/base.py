"""What every audio source is: the AudioSource protocol, SourceError, the PCM sample formats."""

from __future__ import annotations

from typing import Protocol

import numpy as np

SCALE = {"int16": 32768.0, "int32": 2147483648.0, "float32": 1.0}
"""Full scale of each PCM sample format (divide by it to get floats in [-1, 1))."""
DTYPE = {"int16": "<i2", "int32": "<i4", "float32": "<f4"}
"""numpy dtype of each PCM sample format (little-endian, as ALSA and pipes deliver it)."""


class SourceError(RuntimeError):
    """An audio source cannot be opened or read; the message names the device or file."""


class AudioSource(Protocol):
    """What an ear (daemon.local_ear) and ``earshotd record`` need from a source."""

    name: str
    overflows: int

    def read(self, timeout: float) -> np.ndarray | None:
        """The next float32 16 kHz mono chunk; empty if none arrived in time; None at the end."""
        ...

    def close(self) -> None: ...
