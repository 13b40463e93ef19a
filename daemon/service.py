"""The service shell: start-up order, signals, sd_notify, reload orchestration, the outputs.

The shell hears nothing itself. It builds the one ``daemon.outputs.Outputs`` and two ears that
publish to it: the local ear (``daemon.local_ear``: the source and its recogniser) and the Picos
(``daemon.pico_ears``). Order at start: model bundles (refuse a bad one), outputs, audio source;
then the Picos are started and READY=1 is sent. The loop lets the local ear listen, pings the
watchdog only when audio was processed (so a stalled pipeline stops the pings) and updates STATUS
every ``STATUS_EVERY_S``.

Signals: SIGTERM/SIGINT stop cleanly (STOPPING=1, serial host stopped, exit 0). SIGHUP re-reads
the config; each ear prepares its new parts (a bad config or bundle is logged and everything
stays as it was), then each swaps them in through its own method. ``[source]``, ``[mic]``,
``[oled]``, ``[output]``, ``[mqtt]`` and ``[clips]`` take effect at the next restart.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .clips import ClipKeeper
from .config import Settings
from .local_ear import PICOS_ONLY, LocalModel, load_model, open_local_ear
from .mqtt import device_name, open_mqtt
from .notify import Notifier
from .outputs import JsonLinesSink, LogSink, Outputs, Sink
from .pico_ears import HostFactory, PicoEars, load_board_bundles
from .serial_host import SerialHost
from .sources import AudioSource, open_source

if TYPE_CHECKING:
    from .oled import OledSink

_LOGGER = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
READ_TIMEOUT_S = 0.5
RESTART_ONLY = ("source", "mic", "oled", "output", "mqtt", "clips")
"""Config sections a reload does not apply (the hardware and outputs stay as they are)."""
RELOAD_FAILED = "reload failed"
"""What the OLED shows (and STATUS= starts with) when a reload is refused."""


class Ear(Protocol):
    """What the shell asks of an ear."""

    def prepare(self, new: Settings) -> Callable[[], None]:
        """Load the new parts (raise to refuse the reload); the result swaps them in."""
        ...

    def describe(self) -> str | None: ...
    def status(self) -> str | None: ...


class Service:
    """One running ``earshotd run``; see the module docstring. Start-up errors raise."""

    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings],
        notifier: Notifier,
        i2c_factory: Callable[[int], Any] | None = None,
        host_factory: HostFactory = SerialHost,
        source_opener: Callable[..., AudioSource] = open_source,
        listen: Sink | None = None,
    ) -> None:
        self.settings = settings
        self._reload_settings = reload_settings
        self.notifier = notifier
        self._stop = False
        self._reload = False
        self._old_handlers = install_signal_handlers(self._on_signal)
        notifier.status("loading model")
        model = load_model(settings) if settings.source.kind != "none" else None
        bundles = load_board_bundles(settings.serial.bundles) if settings.serial.enabled else []
        self.outputs, self.oled = build_outputs(settings, model, i2c_factory, listen)
        try:
            notifier.status("opening audio source")
            self.local = open_local_ear(settings, model, self.outputs, source_opener)
        except BaseException:
            self.outputs.close()
            restore_signal_handlers(self._old_handlers)
            raise
        self.picos = PicoEars(settings, bundles, self.outputs, host_factory)

    @property
    def ears(self) -> tuple[Ear, Ear]:
        return self.local, self.picos

    def main(self) -> int:
        """Host the Picos, serve until stopped; always closes what it opened. Exit status."""
        try:
            self.picos.start()
            return self._serve()
        finally:
            self.picos.stop()
            self.local.close()
            self.outputs.close()
            self.notifier.close()

    def _serve(self) -> int:
        try:
            what = " and ".join(d for ear in self.ears if (d := ear.describe()))
            stream = self.settings.stream
            _LOGGER.info("%s (hop %d ms, window %s)", what, stream.hop_ms, stream.window)
            self.notifier.ready(what)
            self._loop()
        finally:
            self.notifier.stopping()
            restore_signal_handlers(self._old_handlers)
        _LOGGER.info(
            "stopped: %d inferences, %d detections, %d Pico detections, %d overflows",
            self.local.inferences, self.local.detections, self.picos.detections, self.local.source.overflows,
        )  # fmt: skip
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.request_reload()
        else:
            self.request_stop()

    def request_reload(self) -> None:
        """Reload before the next read (what SIGHUP does)."""
        self._reload = True

    def request_stop(self) -> None:
        """Stop after the current read (what SIGTERM and SIGINT do)."""
        self._stop = True

    def _loop(self) -> None:
        next_status = time.monotonic() + STATUS_EVERY_S
        while not self._stop:
            if self._reload:
                self._reload = False
                self._do_reload()
            heard = self.local.listen(READ_TIMEOUT_S)
            if heard is None:
                break
            if not heard:
                continue  # no audio in time: no watchdog ping, so a stalled mic restarts us
            self.notifier.watchdog()
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_EVERY_S
                self.notifier.status(self._status())

    def _status(self) -> str:
        return "; ".join(s for ear in self.ears if (s := ear.status()))

    # -- SIGHUP --
    def _do_reload(self) -> None:
        self.notifier.reloading()
        _LOGGER.info("SIGHUP: reloading config and model")
        try:
            read = self._reload_settings()
            new = self._kept(read)
            swaps = [ear.prepare(new) for ear in self.ears]
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the running daemon stays
            self._refuse_reload(e)
            return
        self._warn_restart_only(read)
        self.settings = new
        for swap in swaps:
            swap()
        if self.oled is not None:
            self.oled.set_model(self.local.model_name)
        self.notifier.ready(f"reloaded; listening with {self.local.model_name}")

    def _refuse_reload(self, e: Exception) -> None:
        """Keep everything running and say why: journald, STATUS= and the OLED."""
        reason = str(e) or type(e).__name__
        _LOGGER.error("%s, keeping the running config and model: %s", RELOAD_FAILED, reason)
        _LOGGER.debug("reload failure", exc_info=True)
        self.notifier.ready(f"{RELOAD_FAILED}: {reason}")
        if self.oled is not None:
            self.oled.notice(RELOAD_FAILED)

    def _kept(self, new: Settings) -> Settings:
        """``new`` with the running restart-only sections."""
        return dataclasses.replace(new, **{p: getattr(self.settings, p) for p in RESTART_ONLY})

    def _warn_restart_only(self, read: Settings) -> None:
        for part in RESTART_ONLY:
            if getattr(read, part) != getattr(self.settings, part):
                _LOGGER.warning("[%s] changed; it takes effect at the next restart", part)


_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def install_signal_handlers(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """Route SIGTERM, SIGINT and SIGHUP to ``handler``; returns the handlers it replaced.

    Signals that arrived before (while ``daemon.signals`` held them) are replayed to it.
    """
    from . import signals

    old: dict[int, Any] = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    for sig in signals.take_pending():
        handler(sig, None)
    return old


def restore_signal_handlers(old: dict[int, Any]) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)


def build_outputs(
    s: Settings, model: LocalModel | None, i2c_factory: Callable[[int], Any] | None,
    listen: Sink | None = None,
) -> tuple[Outputs, OledSink | None]:
    """The one Outputs for ``[output]``, ``[oled]``, ``[mqtt]`` and ``[clips]`` (plus the
    ``earshotd listen`` view), and the OLED sink (None if disabled)."""
    sinks: list[Sink] = [LogSink()]
    if listen is not None and model is not None:
        listen.set_model(model.detector)  # type: ignore[attr-defined]
        sinks.append(listen)
    if s.output.json:
        sinks.append(JsonLinesSink(s.output.json))
    oled: OledSink | None = None
    if s.oled.enabled:
        from .oled import OledSink

        oled = OledSink(s.oled, model.bundle.name if model else PICOS_ONLY, i2c_factory)
        sinks.append(oled)
    mqtt = open_mqtt(s.mqtt)
    if mqtt is not None:
        sinks.append(mqtt)
    clips = None
    if model is not None and s.clips.enabled:
        clips = ClipKeeper(s.clips, s.output.source_name, device_name(s.mqtt), model.bundle.sha256)
    outputs = Outputs(sinks, clips)
    if model is not None:
        outputs.announce(s.output.source_name, list(model.bundle.labels), model.detector.ignore,
                         model.bundle.name)
    return outputs, oled
