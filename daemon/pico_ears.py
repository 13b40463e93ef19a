"""Picos as ears: every board on ``[serial]``, its messages turned into Alerts for the outputs.

:class:`PicoEars` runs one ``daemon.serial_host.SerialHost`` for the configured ports and hands
its messages to :class:`PicoAlerts`, which publishes each detection to the same
``daemon.outputs.Outputs`` as the local microphone. A board whose model is one of the
``[serial] bundles`` (matched by sha256, :class:`BoardDetectors`) is judged by the host's own
detector from its SCORES lines; any other board's DET lines are its alerts. On SIGHUP the
service shell asks :meth:`PicoEars.prepare` for the new parts (it loads the new bundles, so a
bad one refuses the reload), then the host is restarted if ports, rules or bundles changed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from earshot import protocol as P
from earshot.bundle import Bundle, load_bundle
from earshot.detector import Detector

from .config import DetectorSettings, SerialSettings, Settings
from .outputs import Alert, Outputs
from .serial_host import Handler, HostSettings, LogBudget, SerialHost
from .streaming import detector_config

_LOGGER = logging.getLogger(__name__)

HostFactory = Callable[[HostSettings, Handler], SerialHost]
"""Builds the serial host (tests hand in one with a fake opener or finder)."""


def source_name(hello: P.Hello) -> str:
    """A board's name on the OLED and in journald's SOURCE: board type and unique id."""
    return f"{hello.board}-{hello.id}"


class PicoAlerts:
    """Handler that turns board messages into Alerts (``daemon.outputs``).

    By default each DET line is an alert. With ``detector_for_board`` (the board's Hello -> an
    ``earshot.detector.Detector`` or None; :class:`BoardDetectors`), SCORES lines of a board
    that got a detector go through it, with the local microphone's settings, and its DET lines
    are ignored.
    """

    def __init__(
        self,
        publish: Callable[[Alert], None],
        clock: Callable[[], float] = time.time,
        detector_for_board: Callable[[P.Hello], Any] | None = None,
        announce: Callable[[P.Hello], None] | None = None,
    ) -> None:
        self.publish = publish
        self.announce = announce
        self.detector_for_board = detector_for_board
        self.clock = clock
        self._boards: dict[str, tuple[P.Hello, Any]] = {}
        self._logs: dict[str, LogBudget] = {}
        self._lock = threading.Lock()

    def _log(self, port: str, level: int, kind: str, fmt: str, *args: Any) -> None:
        """A message about a board, within that port's log budget (whatever the board sends)."""
        with self._lock:
            budget = self._logs.setdefault(port, LogBudget(_LOGGER, 10.0, 5))
        budget.log(level, kind, fmt, *args)

    def _warn(self, port: str, kind: str, fmt: str, *args: Any) -> None:
        self._log(port, logging.WARNING, kind, fmt, *args)

    def _detector(self, port: str, hello: P.Hello) -> Any:
        pick = self.detector_for_board
        if isinstance(pick, BoardDetectors):  # its messages count against the port's budget
            return pick(hello, log=lambda *a: self._log(port, *a))
        return None if pick is None else pick(hello)

    def __call__(self, port: str, msg: P.Message) -> None:
        if isinstance(msg, P.Hello):
            det = self._detector(port, msg)
            with self._lock:
                self._boards[port] = (msg, det)  # a new hello: a reset board, fresh state
            if self.announce is not None:
                self.announce(msg)
            return
        with self._lock:
            board = self._boards.get(port)
        if board is None:
            return  # no hello yet: we do not know whose detection this is
        hello, det = board
        if isinstance(msg, P.Det) and det is None:
            self._alert(hello, msg.label, msg.score, msg.t)
        elif isinstance(msg, P.Scores) and det is not None:
            self._scores(port, hello, det, msg)

    def _scores(self, port: str, hello: P.Hello, det: Any, msg: P.Scores) -> None:
        if len(msg.q) != len(hello.labels):
            self._warn(port, "scores", "%s: %d scores for %d labels", port, len(msg.q), len(hello.labels))
            return
        try:
            hit = det.update(msg.t, msg.values)
        except ValueError as e:  # time went backwards: the board restarted without a hello
            self._warn(port, "time", "%s: %s; resetting its detector", port, e)
            det.reset()
            hit = det.update(msg.t, msg.values)
        if hit is not None:
            self._alert(hello, hit.label, hit.score, msg.t)

    def _alert(self, hello: P.Hello, label: str, score: float, t_ms: int) -> None:
        self.publish(
            Alert(
                label=label, score=score, source=source_name(hello), t=self.clock(),
                model_sha256=hello.model, stream_t_ms=t_ms, board_id=hello.id,
            )
        )  # fmt: skip


class BoardDetectors:
    """The host-side detector for a board whose model is one of the given rp2040 bundles.

    A board is matched by the model sha256 in its hello (the rp2040 bundle's ``model_sha256``)
    and gets ``daemon.streaming.detector_config(bundle, detector_settings)``: that bundle's
    thresholds and the local microphone's ``[detector]`` rules (``ignore`` entries that are not
    the board's labels are skipped). Unknown models get None, so their own DET lines count.
    """

    def __init__(self, bundles: list[Bundle], detector_settings: DetectorSettings) -> None:
        self.bundles = {b.sha256: b for b in bundles}
        self.settings = detector_settings

    def __call__(self, hello: P.Hello, log: Callable[..., None] | None = None) -> Detector | None:
        """``log(level, kind, fmt, *args)`` says what was decided (default: this module's logger)."""
        say = log or (lambda level, kind, fmt, *args: _LOGGER.log(level, fmt, *args))
        bundle = self.bundles.get(hello.model)
        if bundle is None:
            say(logging.INFO, "model", "board %s: model %s… is not in [serial] bundles; using its "
                "DET lines", hello.id, hello.model[:12])  # fmt: skip
            return None
        if tuple(bundle.labels) != tuple(hello.labels):
            say(logging.WARNING, "labels",
                "board %s: labels %s differ from bundle %s's %s; using its DET lines",
                hello.id, ",".join(hello.labels)[:200], bundle.name, ",".join(bundle.labels),
            )  # fmt: skip
            return None
        ignore = [x for x in self.settings.ignore if x in bundle.labels]
        cfg = detector_config(bundle, dataclasses.replace(self.settings, ignore=ignore))
        say(logging.INFO, "model", "board %s: model %s; its SCORES go through the host's detector",
            hello.id, bundle.name)  # fmt: skip
        return Detector(cfg)


def load_board_bundles(folders: list[str]) -> list[Bundle]:
    """The rp2040 bundles of ``[serial] bundles`` (raises earshot.bundle.BundleError)."""
    return [load_bundle(f) for f in folders]


def host_settings_from_config(serial_cfg: SerialSettings) -> HostSettings:
    """HostSettings from the config file's ``[serial]`` table (daemon.config.SerialSettings)."""
    return HostSettings(ports=tuple(serial_cfg.ports), baud=int(serial_cfg.baud))


class PicoEars:
    """The Picos of ``[serial]``: started, stopped and reloaded as one ear."""

    def __init__(
        self,
        settings: Settings,
        bundles: list[Bundle],
        outputs: Outputs,
        host_factory: HostFactory = SerialHost,
    ) -> None:
        self.serial, self.rules, self.bundles = settings.serial, settings.detector, bundles
        self.outputs = outputs
        self.detections = 0
        self.host: SerialHost | None = None
        self._host_factory = host_factory
        self._down: set[str] = set()
        """Ports last reported down on the OLED (``status`` tells it of each change)."""

    def start(self) -> None:
        """Start hosting Picos when ``[serial] enabled``."""
        if not self.serial.enabled:
            return
        handler = PicoAlerts(self._publish, detector_for_board=BoardDetectors(self.bundles, self.rules),
                             announce=self._announce)
        self.host = self._host_factory(host_settings_from_config(self.serial), handler)
        self.host.start()
        _LOGGER.info(
            "hosting Picos on %s (%d rp2040 bundle(s) for host-side detection)",
            ", ".join(self.serial.ports), len(self.bundles),
        )  # fmt: skip

    def stop(self) -> None:
        host, self.host = self.host, None
        if host is not None:
            host.stop()

    def _announce(self, hello: P.Hello) -> None:
        """A board said hello: outputs that list sources (MQTT discovery) learn of it."""
        self.outputs.announce(source_name(hello), list(hello.labels), frozenset(),
                              hello.model[:12], hello.id)

    def _publish(self, alert: Alert) -> None:
        self.detections += 1
        self.outputs.publish(alert)

    def prepare(self, new: Settings) -> Callable[[], None]:
        """Load what ``new`` needs (raises BundleError); the result swaps it in."""
        bundles = load_board_bundles(new.serial.bundles) if new.serial.enabled else []
        return lambda: self.replace(new.serial, new.detector, bundles)

    def replace(self, serial: SerialSettings, rules: DetectorSettings, bundles: list[Bundle]) -> None:
        """New ports, detector rules or bundle files (always re-read): host afresh."""
        if (serial, rules) == (self.serial, self.rules) and not serial.bundles:
            return
        self.stop()
        self.serial, self.rules, self.bundles = serial, rules, bundles
        self.start()

    def describe(self) -> str | None:
        return None if self.host is None else f"{len(self.host.links)} Pico port(s)"

    def status(self) -> str | None:
        if self.host is None:
            return None
        links = list(self.host.links.values())
        up = sum(1 for link in links if link.stats.up)
        down = [link.port for link in links if link.stats.connected and link.stats.silent]
        self._tell_changes(set(down))
        silent = f" ({', '.join(down)} silent)" if down else ""
        return f"Picos: {up}/{len(links)} up{silent}, {self.detections} detections"

    def _tell_changes(self, down: set[str]) -> None:
        """A board that went silent, or came back, is shown on the OLED (the journal has it
        from the serial host already)."""
        for port in sorted(down - self._down):
            self.outputs.notice(f"Pico down: {port.rsplit('/', 1)[-1]}")
        for port in sorted(self._down - down):
            self.outputs.notice(f"Pico up: {port.rsplit('/', 1)[-1]}")
        self._down = down
