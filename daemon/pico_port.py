"""The one pyserial transport to a Pico: open, write commands, read protocol lines, reopen.

:class:`PicoPort` is one open port: it writes ``ES1 CMD`` lines and cuts what arrives into lines
(``earshot.protocol.LineSplitter``, so memory stays bounded whatever a board sends).
:func:`keep_reopening` runs a session on a port again and again, waiting with exponential backoff
after each failure, until told to halt. The serial host (``daemon.serial_host``, every board in
detect mode, reconnecting for ever) and ``earshotd record --from PORT``
(``daemon.sources.serial_audio``, one board's raw audio) both talk to boards through this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from earshot import protocol as P

_LOGGER = logging.getLogger(__name__)

Opener = Callable[[str, int, float], Any]
"""(port, baud, read timeout in s) -> an open pyserial-like object; tests hand in fakes."""


def open_serial(port: str, baud: int, timeout: float) -> Any:
    """Open ``port`` with pyserial (any URL pyserial knows, e.g. ``loop://``)."""
    import serial

    return serial.serial_for_url(port, baudrate=baud, timeout=timeout, exclusive=True)


class PicoPort:
    """One open port to a board; errors from the driver propagate to the caller."""

    def __init__(self, port: str, baud: int, timeout: float, opener: Opener = open_serial) -> None:
        self.port = port
        self._ser = opener(port, baud, timeout)
        self._splitter = P.LineSplitter()
        self._write_lock = threading.Lock()

    @property
    def overlong(self) -> int:
        """Lines dropped for being longer than ``earshot.protocol.MAX_LINE``."""
        return self._splitter.overlong

    def send(self, cmd: P.Command) -> None:
        """Write one command line (safe from any thread)."""
        with self._write_lock:
            self._ser.write(P.format_message(cmd).encode("ascii"))

    def read_lines(self) -> list[bytes]:
        """The complete lines that arrived within the read timeout (often none)."""
        data = self._ser.read(max(1, getattr(self._ser, "in_waiting", 0) or 1))
        return self._splitter.feed(data) if data else []

    def flush(self) -> None:
        self._ser.flush()

    def close(self) -> None:
        """Close the port; a port that is already gone is only logged (debug)."""
        try:
            self._ser.close()
        except Exception:
            _LOGGER.debug("%s: close failed", self.port, exc_info=True)


def keep_reopening(
    session: Callable[[], None],
    halt: threading.Event,
    backoff: tuple[float, float],
    on_error: Callable[[Exception, float], None],
    healthy_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``session`` until ``halt`` is set; after it returns or raises wait and run it again.

    The wait starts at ``backoff[0]`` s and doubles on each failure up to ``backoff[1]``; a
    session that returns normally, or that lived at least ``healthy_s`` before it failed (a board
    that was unplugged after working), starts the doubling again from the bottom. ``on_error``
    gets the exception and the coming wait.
    """
    low, high = backoff
    delay = low
    while not halt.is_set():
        start = clock()
        try:
            session()
            delay = low  # it worked for a while: start again fast
        except Exception as e:  # SerialException, OSError, anything a driver raises
            if clock() - start >= healthy_s:
                delay = low  # a good connection that ended: not a failing port
            on_error(e, delay)
        if halt.wait(delay):
            break
        delay = min(delay * 2.0, high)
