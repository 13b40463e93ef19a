"""Picos as remote ears: the daemon as host of any number of boards on USB serial.

One :class:`PicoLink` thread per port opens it with pyserial, asks for a hello, cuts the bytes
into lines (``earshot.protocol.LineSplitter``, bounded memory) and hands every parsed message to
a handler. A port that fails or disappears is closed and reopened with exponential backoff, so
unplug/replug and board resets (a new HELLO) are routine, and nothing a board sends (garbage,
other protocol versions, over-long lines) is fatal: it is counted and logged with the port, at
most once per ``warn_interval_s`` per kind.

:class:`SerialHost` starts links for configured ports and, for ``auto``, for every port with
USB vendor id 0x2E8A (Raspberry Pi) that ``serial.tools.list_ports`` shows, rescanning
periodically. What the daemon makes of the messages (alerts for the same outputs as the local
microphone) is ``daemon.pico_ears``; the bytes go through ``daemon.pico_port``.

``earshotd picos`` lists attached boards with their hello info.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from earshot import protocol as P

from .cli import HelpFormatter
from .pico_port import Opener, PicoPort, keep_reopening, open_serial

_LOGGER = logging.getLogger(__name__)

PICO_USB_VID = 0x2E8A
"""USB vendor id of Raspberry Pi (RP2040 boards running pico-sdk's USB CDC)."""

Handler = Callable[[str, P.Message], None]


@dataclass(frozen=True)
class HostSettings:
    """How the serial host finds and keeps its boards."""

    ports: tuple[str, ...] = ("auto",)
    """Serial ports to host; ``auto`` adds every port with USB VID 0x2E8A."""
    baud: int = 115200
    """Baud rate (ignored by USB CDC, used by real UARTs)."""
    scan_interval_s: float = 2.0
    """How often ``auto`` looks for new boards (s)."""
    backoff_min_s: float = 0.2
    """First wait before reopening a failed port (s); doubles on each failure."""
    backoff_max_s: float = 10.0
    """Longest wait between reopen attempts (s)."""
    read_timeout_s: float = 0.1
    """pyserial read timeout: how quickly a link notices stop() (s)."""
    warn_interval_s: float = 10.0
    """At most one warning per port and kind of problem in this time (s)."""


@dataclass
class LinkStats:
    """What a link has seen; read by ``earshotd picos`` and the tests."""

    connects: int = 0
    bad_lines: int = 0
    other_version: int = 0
    overlong: int = 0
    hello: P.Hello | None = None
    last_status: P.Status | None = None
    connected: bool = False
    warned: dict[str, float] = field(default_factory=dict)


def find_pico_ports() -> list[str]:
    """Device paths of attached boards with USB VID 0x2E8A."""
    from serial.tools import list_ports

    return sorted(p.device for p in list_ports.comports() if p.vid == PICO_USB_VID)


class PicoLink(threading.Thread):
    """One port: open, read lines, dispatch messages, reconnect with backoff; never dies."""

    def __init__(
        self,
        port: str,
        settings: HostSettings,
        handler: Handler,
        opener: Opener = open_serial,
    ) -> None:
        super().__init__(name=f"pico:{port}", daemon=True)
        self.port = port
        self.settings = settings
        self.handler = handler
        self.opener = opener
        self.stats = LinkStats()
        self._halt = threading.Event()
        self._open: PicoPort | None = None

    def stop(self) -> None:
        self._halt.set()

    def send(self, cmd: P.Command) -> bool:
        """Write a command line; False if the port is not open or the write failed."""
        port = self._open
        if port is None:
            return False
        try:
            port.send(cmd)
            return True
        except Exception as e:  # a port that vanishes mid-write
            _LOGGER.debug("%s: write failed: %s", self.port, e)
            return False

    def run(self) -> None:
        s = self.settings
        keep_reopening(self._session, self._halt, (s.backoff_min_s, s.backoff_max_s), self._failed)

    def _failed(self, e: Exception, delay: float) -> None:
        self._warn("io", "%s: %s (retrying in %.1f s)", self.port, e, delay)

    def _session(self) -> None:
        s = self.settings
        port = PicoPort(self.port, s.baud, s.read_timeout_s, self.opener)
        self._open = port
        self.stats.connects += 1
        self.stats.connected = True
        _LOGGER.info("%s: connected", self.port)
        try:
            self.send(P.Command("hello"))  # a running board does not repeat its boot hello
            self._read(port)
        finally:
            self._open = None
            self.stats.connected = False
            port.close()

    def _read(self, port: PicoPort) -> None:
        while not self._halt.is_set():
            for line in port.read_lines():
                self._line(line)
            if port.overlong != self.stats.overlong:
                self.stats.overlong = port.overlong
                self._warn("overlong", "%s: dropped a line longer than %d bytes", self.port, P.MAX_LINE)

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            msg = P.parse_line(line)
        except P.VersionError as e:
            self.stats.other_version += 1
            self._warn(f"version{e.version}", "%s: %s; ignoring: %r", self.port, e, line[:80])
            return
        except P.ProtocolError as e:
            self.stats.bad_lines += 1
            self._warn("bad", "%s: bad line (%s): %r", self.port, e, line[:80])
            return
        if isinstance(msg, P.Hello):
            self._hello(msg)
        elif isinstance(msg, P.Status):
            self.stats.last_status = msg
        elif isinstance(msg, P.Err):
            self._warn(f"err:{msg.code}", "%s: board reports %s: %s", self.port, msg.code, msg.msg)
        try:
            self.handler(self.port, msg)
        except Exception:
            _LOGGER.exception("%s: handler failed on %r", self.port, msg)

    def _hello(self, hello: P.Hello) -> None:
        if hello != self.stats.hello:
            _LOGGER.info(
                "%s: %s board id=%s fw=%s model=%s labels=%s mode=%s",
                self.port, hello.board, hello.id, hello.fw, hello.model[:12],
                ",".join(hello.labels), hello.mode,
            )  # fmt: skip
        self.stats.hello = hello

    def _warn(self, kind: str, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        last = self.stats.warned.get(kind)
        if last is not None and now - last < self.settings.warn_interval_s:
            _LOGGER.debug(fmt, *args)
            return
        if len(self.stats.warned) > 64:  # bounded, whatever a board sends
            self.stats.warned.clear()
        self.stats.warned[kind] = now
        _LOGGER.warning(fmt, *args)


class SerialHost:
    """Hosts every configured and (with ``auto``) discovered board, one PicoLink each."""

    def __init__(
        self,
        settings: HostSettings,
        handler: Handler,
        opener: Opener = open_serial,
        finder: Callable[[], list[str]] = find_pico_ports,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.opener = opener
        self.finder = finder
        self.links: dict[str, PicoLink] = {}
        self._stop = threading.Event()
        self._scanner: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        for port in self.settings.ports:
            if port != "auto":
                self._add(port)
        if "auto" in self.settings.ports:
            self._scan()
            self._scanner = threading.Thread(target=self._scan_loop, name="pico-scan", daemon=True)
            self._scanner.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            links = list(self.links.values())
        for link in links:
            link.stop()
        for link in links:
            link.join(timeout)

    def _add(self, port: str) -> None:
        with self._lock:
            if port in self.links:
                return
            link = PicoLink(port, self.settings, self.handler, self.opener)
            self.links[port] = link
        link.start()

    def _scan(self) -> None:
        try:
            ports = self.finder()
        except Exception:
            _LOGGER.exception("listing serial ports failed")
            return
        for port in ports:
            if port not in self.links:
                _LOGGER.info("found a board on %s (USB VID 0x%04X)", port, PICO_USB_VID)
                self._add(port)

    def _scan_loop(self) -> None:
        while not self._stop.wait(self.settings.scan_interval_s):
            self._scan()


# --- earshotd picos ----------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "picos",
        help="list attached Picos with their hello info",
        description=(
            "Open every Pico (USB VID 0x2E8A) and the given ports, ask each for its hello line "
            "and print what it says: board, unique id, firmware, model sha256, labels, mode."
        ),
        epilog="examples:\n  earshotd picos\n  earshotd picos --serial-ports /dev/ttyACM0,"
        "/dev/ttyACM1 --json\n", formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--serial-ports", dest="port", action="extend", type=_port_list, default=[],
        metavar="PORT[,PORT]",
        help="serial ports to ask (comma-separated, repeatable; default: every port with USB "
        "VID 0x2E8A)",
    )  # fmt: skip
    p.add_argument("--port", dest="port", action="extend", type=_port_list, help=argparse.SUPPRESS)
    p.add_argument("--serial-baud", dest="baud", type=int, default=115200,
                   help="baud rate (default: 115200)")
    p.add_argument("--baud", dest="baud", type=int, help=argparse.SUPPRESS)
    p.add_argument(
        "--timeout", type=float, default=3.0, help="how long to wait for hellos (s, default: 3)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per board")
    p.set_defaults(func=run_picos)


def _port_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def list_boards(ports: list[str], baud: int, timeout: float) -> list[tuple[str, LinkStats]]:
    """Open ``ports`` (or every Pico), wait up to ``timeout`` s for hellos; (port, stats) each."""
    settings = HostSettings(ports=tuple(ports) or ("auto",), baud=baud, warn_interval_s=60.0)
    host = SerialHost(settings, handler=lambda port, msg: None)
    host.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            links = list(host.links.values())
            if links and all(link.stats.hello is not None for link in links):
                break
            time.sleep(0.05)
    finally:
        host.stop()
    return [(port, link.stats) for port, link in sorted(host.links.items())]


def run_picos(args: argparse.Namespace) -> int:
    boards = list_boards(args.port, args.baud, args.timeout)
    if not boards:
        print("no Picos found (no port given and none with USB VID 0x2E8A attached)")
        return 1
    for port, stats in boards:
        h = stats.hello
        if args.json:
            info: dict[str, Any] = {"port": port, "hello": None if h is None else h.__dict__}
            print(json.dumps(info))
        elif h is None:
            print(f"{port}: no hello within {args.timeout:g} s ({stats.bad_lines} bad lines)")
        else:
            print(
                f"{port}: {h.board} id={h.id} fw={h.fw} model={h.model[:12]} "
                f"labels={','.join(h.labels)} rate={h.rate} mode={h.mode}"
            )
    return 0 if all(s.hello is not None for _, s in boards) else 1
