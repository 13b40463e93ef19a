"""sd_notify for systemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1 over ``$NOTIFY_SOCKET``.

The protocol (sd_notify(3)): newline-separated ``KEY=VALUE`` assignments in one datagram to the
unix socket named by ``NOTIFY_SOCKET``; a leading ``@`` means the Linux abstract namespace.
``WATCHDOG_USEC`` (with ``WATCHDOG_PID``, when set, naming this process) asks for a WATCHDOG=1
at least that often; we ping at half of it, and only from the processing loop, so a stalled
pipeline stops the pings and systemd restarts the service. Without ``NOTIFY_SOCKET`` every call
is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time

_LOGGER = logging.getLogger(__name__)


class Notifier:
    """Sends notifications; ``watchdog()`` rate-limits itself to half of WATCHDOG_USEC."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._last_ping = 0.0
        if self.address:
            addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._addr = addr
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)  # a reader that stops reading must not stall the loop

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, message: str) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message.encode(), self._addr)
            return True
        except BlockingIOError:
            _LOGGER.debug("sd_notify to %s: queue full, %r dropped", self.address, message)
            return False
        except OSError as e:
            _LOGGER.warning("sd_notify to %s failed: %s", self.address, e)
            return False

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def reloading(self) -> None:
        self.send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> bool:
        """WATCHDOG=1 if half the watchdog interval has passed since the last one."""
        if self.watchdog_interval is None:
            return False
        t = time.monotonic() if now is None else now
        if t - self._last_ping < self.watchdog_interval / 2:
            return False
        self._last_ping = t
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(env: dict[str, str] | os._Environ[str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        _LOGGER.warning("ignoring WATCHDOG_USEC=%r (not an integer)", usec)
        return None
    return value / 1e6 if value > 0 else None
