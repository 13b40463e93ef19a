"""``earshotd run``: the daemon — wiring, the processing loop, signals.

Order at start: settings (refuse bad config), logging (journald under systemd), model bundle
(refuse a bad one), outputs, audio source; then READY=1. The loop reads audio, feeds the
recogniser, publishes alerts, pings the watchdog (only here, so a stalled pipeline stops the
pings), and updates STATUS every ``STATUS_EVERY_S``.

Picos: with ``[serial] enabled`` (or ``--serial-ports``), a ``daemon.serial_host.SerialHost``
runs beside the local source and its ``PicoAlerts`` publish to the same outputs. With ``[source]
kind = "none"`` there is no local audio and no local model: the daemon only hosts Picos.

Signals: SIGTERM/SIGINT stop cleanly (STOPPING=1, serial host stopped, exit 0); SIGHUP re-reads
the config, the model bundle and the ``[serial]`` bundles and keeps the microphone open (mic,
source and OLED hardware settings take effect at the next restart; a changed ``[serial]`` or
``[detector]`` restarts the serial host; a bad new config or bundle is logged and the old one
stays in use).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from earshot.bundle import Bundle, BundleError, load_bundle
from earshot.detector import Detector
from earshot.wavio import WavError

from . import config
from .config import ConfigError, Settings
from .notify import Notifier
from .outputs import Alert, JsonLinesSink, LogSink, Outputs, setup_logging
from .serial_host import (
    BoardDetectors,
    PicoAlerts,
    SerialHost,
    host_settings_from_config,
    load_board_bundles,
)
from .sources import AudioSource, SourceError, open_source
from .streaming import Recogniser, detector_config

_LOGGER = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
READ_TIMEOUT_S = 0.5
PICOS_ONLY = "picos"
"""Model name on the OLED idle screen when there is no local model (source kind "none")."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="listen and report detections (the systemd service)",
        description=(
            "Run the recogniser on the microphone (or a WAV file / stdin) and report detections "
            "to the OLED, journald and optionally JSON lines. Every config key has a flag below."
        ),
    )
    config.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, i2c_factory: Callable[[int], Any] | None = None) -> int:
    try:
        settings = config.from_args(args)
    except ConfigError as e:
        print(f"earshotd: error: {e}", file=sys.stderr)
        return 2
    setup_logging(settings.output.journal, getattr(args, "debug", False))
    d = Daemon(settings, lambda: config.from_args(args), Notifier(), i2c_factory)
    return d.main()


class Daemon:
    """One running service: settings, model, source, outputs, and the loop."""

    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings],
        notifier: Notifier,
        i2c_factory: Callable[[int], Any] | None = None,
    ) -> None:
        self.settings = settings
        self._reload_settings = reload_settings
        self.notifier = notifier
        self._i2c_factory = i2c_factory
        self._stop = False
        self._reload = False
        self.detections = 0
        self.pico_detections = 0
        self._overflows_seen = 0
        self.oled: Any = None
        self.bundle: Bundle | None = None
        self.recogniser: Recogniser | None = None
        self.serial_host: SerialHost | None = None

    # -- start-up --
    def _load_model(self, s: Settings) -> tuple[Bundle, Any, Detector]:
        from .inference import Classifier

        bundle = load_bundle(s.model.bundle)
        clf = Classifier(bundle, num_threads=s.model.threads)
        det = Detector(detector_config(bundle, s.detector))
        _LOGGER.info(
            "model %s (%s…): labels %s, front end %s",
            bundle.name, bundle.sha256[:12], ", ".join(bundle.labels), bundle.manifest["frontend"]["name"],
        )
        return bundle, clf, det

    def _model_name(self) -> str:
        return self.bundle.name if self.bundle is not None else PICOS_ONLY

    def _outputs(self, s: Settings) -> Outputs:
        sinks: list[Any] = [LogSink()]
        if s.output.json:
            sinks.append(JsonLinesSink(s.output.json))
        if s.oled.enabled:
            from .oled import OledSink

            self.oled = OledSink(s.oled, self._model_name(), self._i2c_factory)
            sinks.append(self.oled)
        return Outputs(sinks)

    def main(self) -> int:
        s = self.settings
        self.notifier.status("loading model")
        try:
            if s.source.kind != "none":
                self.bundle, clf, det = self._load_model(s)
                self.recogniser = Recogniser(clf, det, s.stream)
            board_bundles = load_board_bundles(s.serial.bundles) if s.serial.enabled else []
        except (BundleError, ConfigError, RuntimeError) as e:
            print(f"earshotd: error: {e}", file=sys.stderr)
            return 2
        try:
            self.outputs = self._outputs(s)
        except OSError as e:
            print(f"earshotd: error: {e}", file=sys.stderr)
            return 2
        try:
            self.notifier.status("opening audio source")
            try:
                source = open_source(s.source, s.mic)
            except (SourceError, WavError) as e:
                print(f"earshotd: error: {e}", file=sys.stderr)
                return 2
            try:
                self._start_serial(s, board_bundles)
                return self._serve(source)
            finally:
                self._stop_serial()
                source.close()
        finally:
            self.outputs.close()
            self.notifier.close()

    # -- Picos --
    def _start_serial(self, s: Settings, board_bundles: list[Bundle]) -> None:
        """Start hosting Picos when ``[serial] enabled``; their alerts go to the same outputs."""
        if not s.serial.enabled:
            return
        handler = PicoAlerts(
            self._publish_pico, detector_for_board=BoardDetectors(board_bundles, s.detector)
        )
        self.serial_host = SerialHost(host_settings_from_config(s.serial), handler)
        self.serial_host.start()
        _LOGGER.info(
            "hosting Picos on %s (%d rp2040 bundle(s) for host-side detection)",
            ", ".join(s.serial.ports), len(board_bundles),
        )  # fmt: skip

    def _stop_serial(self) -> None:
        host, self.serial_host = self.serial_host, None
        if host is not None:
            host.stop()

    def _publish_pico(self, alert: Alert) -> None:
        self.pico_detections += 1
        self.outputs.publish(alert)

    # -- the loop --
    def _serve(self, source: AudioSource) -> int:
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            what = f"listening on {source.name} with {self._model_name()}"
            if self.serial_host is not None:
                what += f" and {len(self.serial_host.links)} Pico port(s)"
            _LOGGER.info("%s (hop %d ms, window %s)", what, self.settings.stream.hop_ms, self.settings.stream.window)
            self.notifier.ready(what)
            self._loop(source)
        finally:
            self.notifier.stopping()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        _LOGGER.info(
            "stopped: %d inferences, %d detections, %d Pico detections, %d overflows",
            self._inferences(), self.detections, self.pico_detections, source.overflows,
        )
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stop = True

    def _loop(self, source: AudioSource) -> None:
        next_status = time.monotonic() + STATUS_EVERY_S
        while not self._stop:
            if self._reload:
                self._reload = False
                self._do_reload()
            chunk = source.read(READ_TIMEOUT_S)
            if chunk is None:
                _LOGGER.info("end of audio from %s", source.name)
                break
            if self.recogniser is not None:
                if chunk.size == 0:
                    continue  # no audio in time: no watchdog ping, so a stalled mic restarts us
                for r in self.recogniser.feed(chunk):
                    self.outputs.level(self.settings.output.source_name, r.p2p_dbfs, r.rms_dbfs)
                    if r.detection is not None:
                        self._publish(r.detection)
            self.notifier.watchdog()
            self._check_overflows(source)
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_EVERY_S
                self.notifier.status(self._status(source))

    def _publish(self, det: Any) -> None:
        self.detections += 1
        assert self.bundle is not None
        self.outputs.publish(
            Alert(
                label=det.label, score=float(det.score), source=self.settings.output.source_name,
                t=time.time(), model_sha256=self.bundle.sha256, stream_t_ms=int(det.t_ms),
            )
        )

    def _inferences(self) -> int:
        return self.recogniser.inferences if self.recogniser is not None else 0

    def _status(self, source: AudioSource) -> str:
        text = (
            f"listening on {source.name}: {self._inferences()} inferences, "
            f"{self.detections} detections, {source.overflows} overflows"
        )
        if self.serial_host is not None:
            links = list(self.serial_host.links.values())
            up = sum(1 for link in links if link.stats.connected and link.stats.hello)
            text += f"; Picos: {up}/{len(links)} up, {self.pico_detections} detections"
        return text

    def _check_overflows(self, source: AudioSource) -> None:
        if source.overflows > self._overflows_seen:
            _LOGGER.warning(
                "audio overflow: %d buffer(s) lost (%d in total); the loop is falling behind",
                source.overflows - self._overflows_seen, source.overflows,
            )
            self._overflows_seen = source.overflows

    def _do_reload(self) -> None:
        self.notifier.reloading()
        _LOGGER.info("SIGHUP: reloading config and model")
        try:
            new = self._reload_settings()
            local = self._load_model(new) if self.recogniser is not None else None
            board_bundles = load_board_bundles(new.serial.bundles) if new.serial.enabled else []
        except (ConfigError, BundleError, RuntimeError) as e:
            _LOGGER.error("reload failed, keeping the running config and model: %s", e)
            self.notifier.ready(f"reload failed: {e}")
            return
        for part in ("source", "mic", "oled", "output"):
            if getattr(new, part) != getattr(self.settings, part):
                _LOGGER.warning("[%s] changed; it takes effect at the next restart", part)
        kept = dataclasses.replace(
            new, **{p: getattr(self.settings, p) for p in ("source", "mic", "oled", "output")}
        )
        old, self.settings = self.settings, kept
        if local is not None and self.recogniser is not None:
            bundle, clf, det = local
            self.bundle = bundle
            self.recogniser.replace(clf, det.config, kept.stream)
            if self.oled is not None:
                self.oled.set_model(bundle.name)
            _LOGGER.info("reloaded: model %s (%s…)", bundle.name, bundle.sha256[:12])
        if (old.serial, old.detector) != (kept.serial, kept.detector) or kept.serial.bundles:
            self._stop_serial()  # new ports, detector rules or bundle files: start afresh
            self._start_serial(kept, board_bundles)
        self.notifier.ready(f"reloaded; listening with {self._model_name()}")
