"""Quiet native libraries: what C code prints on file descriptor 2, silenced unless --debug."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native code prints on fd 2 (TFLite's "Created TensorFlow Lite XNNPACK
    delegate" banner, ALSA's and JACK's chatter while PortAudio probes devices) unless debug
    logging is on; Python exceptions still carry the reason."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
