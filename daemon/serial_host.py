"""Picos as remote ears: the daemon as host of any number of boards on USB serial.

One :class:`PicoLink` thread per port opens it with pyserial, asks for a hello, cuts the bytes
into lines (``earshot.protocol.LineSplitter``, bounded memory) and hands parsed messages to a
handler. A port that fails or disappears is closed and reopened with exponential backoff (reset
after a connection that lived ``healthy_s``), so unplug/replug and board resets (a new HELLO) are
routine, and nothing a board sends (garbage, other protocol versions, over-long lines) is fatal.

The host believes a board only as far as the board has introduced itself:

* nothing is handed on from a connection before that connection's HELLO (a replugged port may be
  another board; what arrives before its HELLO is counted in ``before_hello``);
* a DET whose label is not in the HELLO's labels, or SCORES with the wrong number of values, is
  dropped and counted (``unknown_labels``, ``bad_lines``): a corrupted byte is not an alert;
* a board whose STATUS stops for ``silent_periods`` x ``status_period_s`` is reported down
  (warning, ``LinkStats.up`` false, so the daemon's status line counts it out) and up again on
  its next line;
* its log lines are bounded whatever it sends: per port at most ``log_burst`` messages per
  ``warn_interval_s`` (and one per kind), the rest counted in ``suppressed_logs`` and the count
  named in the next message that gets through.

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
from dataclasses import dataclass
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
    log_burst: int = 5
    """At most this many log messages per port in ``warn_interval_s``, whatever the kinds."""
    status_period_s: float = 5.0
    """How often a board sends STATUS (the firmware: every 5 s of device time)."""
    silent_periods: float = 3.0
    """A board without STATUS for this many periods is reported down."""
    healthy_s: float = 5.0
    """A connection that lived this long resets the reconnect backoff."""


class LogBudget:
    """Bounded logging for one port: one message per kind per ``interval_s``, at most ``burst``
    in total per ``interval_s``; what is held back is counted and named in the next message."""

    def __init__(self, logger: logging.Logger, interval_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.logger, self.interval_s, self.burst, self.clock = logger, interval_s, burst, clock
        self.suppressed = 0
        self._kinds: dict[str, float] = {}
        self._sent: list[float] = []
        self._held = 0

    def log(self, level: int, kind: str, fmt: str, *args: Any) -> bool:
        """Log unless over budget (then count it); True if it was logged."""
        now = self.clock()
        self._sent = [t for t in self._sent if now - t < self.interval_s]
        last = self._kinds.get(kind)
        if len(self._sent) >= self.burst or (last is not None and now - last < self.interval_s):
            self.suppressed += 1
            self._held += 1
            return False
        if len(self._kinds) > 64:  # bounded, whatever kinds a board makes up
            self._kinds.clear()
        self._kinds[kind] = now
        self._sent.append(now)
        if self._held:
            fmt, args = fmt + " (%d more message(s) held back)", (*args, self._held)
            self._held = 0
        self.logger.log(level, fmt, *args)
        return True


@dataclass
class LinkStats:
    """What a link has seen; read by ``earshotd picos``, the daemon's status line and tests."""

    connects: int = 0
    bad_lines: int = 0
    other_version: int = 0
    overlong: int = 0
    before_hello: int = 0
    """Lines of a connection that came before its HELLO (not handed on)."""
    unknown_labels: int = 0
    """DET lines whose label the board's HELLO did not announce (not handed on)."""
    suppressed_logs: int = 0
    """Log messages held back by the per-port budget."""
    downs: int = 0
    """Times the board went silent (no STATUS for silent_periods) and was reported down."""
    hello: P.Hello | None = None
    """This connection's HELLO (None until one arrives)."""
    last_status: P.Status | None = None
    connected: bool = False
    silent: bool = False
    """No STATUS for silent_periods: reported down until its next line."""

    @property
    def up(self) -> bool:
        """Connected, introduced (HELLO) and not silent."""
        return self.connected and self.hello is not None and not self.silent


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
        self.log = LogBudget(_LOGGER, settings.warn_interval_s, settings.log_burst)
        self._halt = threading.Event()
        self._open: PicoPort | None = None
        self._last_status_t = 0.0

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
        keep_reopening(self._session, self._halt, (s.backoff_min_s, s.backoff_max_s), self._failed,
                       healthy_s=s.healthy_s)  # fmt: skip

    def _failed(self, e: Exception, delay: float) -> None:
        self._warn("io", "%s: %s (retrying in %.1f s)", self.port, e, delay)

    def _session(self) -> None:
        s = self.settings
        port = PicoPort(self.port, s.baud, s.read_timeout_s, self.opener)
        self._open = port
        self.stats.connects += 1
        self.stats.hello = None  # whoever is on the port now must introduce itself
        self.stats.silent = False
        self._last_status_t = time.monotonic()
        self.stats.connected = True
        self._log(logging.INFO, "connect", "%s: connected", self.port)
        try:
            self.send(P.Command("hello"))  # a running board does not repeat its boot hello
            self._read(port)
        finally:
            self._open = None
            self.stats.connected = False
            port.close()

    def _read(self, port: PicoPort) -> None:
        overlong = 0
        while not self._halt.is_set():
            for line in port.read_lines():
                self._line(line)
            if port.overlong != overlong:
                self.stats.overlong += port.overlong - overlong
                overlong = port.overlong
                self._warn("overlong", "%s: dropped a line longer than %d bytes", self.port, P.MAX_LINE)
            self._check_silence()

    def _check_silence(self) -> None:
        s = self.settings
        quiet = time.monotonic() - self._last_status_t
        if not self.stats.silent and quiet >= s.silent_periods * s.status_period_s:
            self.stats.silent = True
            self.stats.downs += 1
            self._warn("silent", "%s: board down: no STATUS for %.0f s", self.port, quiet)

    def _heard(self) -> None:
        if self.stats.silent:
            self.stats.silent = False
            self._last_status_t = time.monotonic()
            self._log(logging.WARNING, "up", "%s: board up again", self.port)

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        self._heard()
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
        elif not self._believable(msg):
            return
        elif isinstance(msg, P.Status):
            self.stats.last_status = msg
            self._last_status_t = time.monotonic()
        elif isinstance(msg, P.Err):
            self._warn(f"err:{msg.code}", "%s: board reports %s: %s", self.port, msg.code, msg.msg)
        try:
            self.handler(self.port, msg)
        except Exception as e:
            self._warn("handler", "%s: handler failed on %r: %r", self.port, msg, e)

    def _believable(self, msg: P.Message) -> bool:
        """Whether a non-HELLO message may be handed on: after this connection's HELLO, with a
        label the HELLO announced and one score per label."""
        hello = self.stats.hello
        if hello is None:
            self.stats.before_hello += 1
            self._warn("before_hello", "%s: %s before the board's HELLO; ignored", self.port,
                       type(msg).__name__)  # fmt: skip
            return False
        if isinstance(msg, P.Det) and msg.label not in hello.labels:
            self.stats.unknown_labels += 1
            self._warn("label", "%s: DET label %r is not one of the board's labels %s; ignored",
                       self.port, msg.label[:40], ",".join(hello.labels))  # fmt: skip
            return False
        if isinstance(msg, P.Scores) and len(msg.q) != len(hello.labels):
            self.stats.bad_lines += 1
            self._warn("scores", "%s: %d scores for %d labels; ignored", self.port, len(msg.q),
                       len(hello.labels))  # fmt: skip
            return False
        return True

    def _hello(self, hello: P.Hello) -> None:
        if hello != self.stats.hello:
            self._log(
                logging.INFO, "hello", "%s: %s board id=%s fw=%s model=%s labels=%s mode=%s",
                self.port, hello.board, hello.id, hello.fw, hello.model[:12],
                ",".join(hello.labels)[:200], hello.mode,
            )  # fmt: skip
        self.stats.hello = hello

    def _log(self, level: int, kind: str, fmt: str, *args: Any) -> None:
        self.log.log(level, kind, fmt, *args)
        self.stats.suppressed_logs = self.log.suppressed

    def _warn(self, kind: str, fmt: str, *args: Any) -> None:
        self._log(logging.WARNING, kind, fmt, *args)


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
