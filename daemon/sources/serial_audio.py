"""A Pico's raw-audio mode as an audio source: ``earshotd record --from PORT``.

:class:`SerialAudioSource` switches the board to raw mode (``ES1 CMD mode=raw``), reads its AUD
frames (base64 int16 PCM with a sequence number and a CRC, docs/serial-protocol.md) and hands out
float32 16 kHz audio with the same interface as every other source (``read(timeout)``, ``name``,
``overflows``, ``close()``), so ``earshotd record`` keeps its clip logic (loudest 1 s, silence
gate, folder-per-label WAVs) whatever the audio comes from. Frames lost on the way (a gap in the
sequence numbers) are filled with silence, so time stays right, and counted in ``overflows``;
frames that fail their CRC are dropped the same way. ``close()`` puts the board back in detect
mode.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from earshot import protocol as P

from ..pico_port import Opener, PicoPort, open_serial
from .base import SourceError

_LOGGER = logging.getLogger(__name__)

FRAME_SAMPLES = P.MAX_AUDIO_SAMPLES
MAX_FILL_FRAMES = 64
"""A larger gap than this (about 1 s) is a restart, not a loss: no silence is invented."""


class SerialRecordError(SourceError):
    """The board on a port cannot stream raw audio; the message names the port."""


class SerialAudioSource:
    """Raw audio from a board in raw mode; see the module docstring."""

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        start_timeout_s: float = 5.0,
        stall_timeout_s: float = 5.0,
        opener: Opener = open_serial,
    ) -> None:
        self.port = port
        self.name = f"Pico on {port}"
        self.overflows = 0
        self.stall_timeout_s = stall_timeout_s
        self._seq: int | None = None
        self._raw = False
        self._last_audio = time.monotonic()
        try:
            self._port = PicoPort(port, baud, 0.05, opener)
        except Exception as e:
            raise SerialRecordError(f"{port}: cannot open: {e}") from None
        self._send(P.Command("mode", "raw"))
        self._wait_raw(start_timeout_s)

    def _send(self, cmd: P.Command) -> None:
        try:
            self._port.send(cmd)
        except Exception as e:
            raise SerialRecordError(f"{self.port}: write failed: {e}") from None

    def _wait_raw(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._raw:
            if time.monotonic() > deadline:
                self.close()
                raise SerialRecordError(
                    f"{self.port}: no 'ES1 OK mode=raw' within {timeout_s:g} s "
                    "(is it an earshot board with protocol version 1?)"
                )
            self._pump()

    def _pump(self) -> list[np.ndarray]:
        """Read what has arrived; returns the new audio as int16 arrays."""
        try:
            lines = self._port.read_lines()
        except Exception as e:
            raise SerialRecordError(f"{self.port}: read failed: {e}") from None
        out: list[np.ndarray] = []
        for line in lines:
            try:
                msg = P.parse_line(line)
            except P.ProtocolError as e:  # a bad AUD frame counts as lost at the next good one
                _LOGGER.debug("%s: %s", self.port, e)
                continue
            if isinstance(msg, P.Ok):
                self._raw = msg.mode == "raw"
                self._seq = None  # the board restarts its sequence numbers
            elif isinstance(msg, P.Audio) and self._raw:
                out.extend(self._frame(msg))
        return out

    def _frame(self, msg: P.Audio) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        if self._seq is not None:
            lost = (msg.seq - self._seq - 1) & P.U32_MAX
            if lost:
                self.overflows += lost
                _LOGGER.warning("%s: %d audio frame(s) lost", self.port, lost)
                if lost <= MAX_FILL_FRAMES:
                    out.append(np.zeros(lost * FRAME_SAMPLES, np.int16))
        self._seq = msg.seq
        out.append(np.frombuffer(msg.pcm, "<i2").astype(np.int16))
        self._last_audio = time.monotonic()
        return out

    def read(self, timeout: float) -> np.ndarray | None:
        """Audio that arrived within ``timeout`` s (float32); None once the board stalls."""
        deadline = time.monotonic() + timeout
        parts: list[np.ndarray] = []
        while time.monotonic() < deadline:
            try:
                parts.extend(self._pump())
            except SerialRecordError as e:
                _LOGGER.error("%s", e)
                return None
        if not parts:
            if time.monotonic() - self._last_audio > self.stall_timeout_s:
                _LOGGER.error("%s: no audio for %.1f s", self.port, self.stall_timeout_s)
                return None
            return np.zeros(0, np.float32)
        return np.concatenate(parts).astype(np.float32) / 32768.0

    def close(self) -> None:
        try:
            self._port.send(P.Command("mode", "detect"))
            self._port.flush()
        except Exception:
            _LOGGER.debug("%s: could not switch back to detect mode", self.port, exc_info=True)
        self._port.close()


def open_serial_source(port: str, baud: int = 115200) -> SerialAudioSource:
    """The source ``earshotd record --from PORT`` reads (raises SerialRecordError)."""
    return SerialAudioSource(port, baud)
