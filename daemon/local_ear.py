"""The local ear: the daemon's own audio source and the recogniser listening to it.

:class:`LocalEar` reads the source, feeds ``daemon.streaming.Recogniser``, sends each hop's level
and each detection (as an ``Alert``) to the shared ``daemon.outputs.Outputs``, and warns when the
source loses audio. On SIGHUP :meth:`LocalEar.prepare` loads the new bundle (a bad one refuses the
reload) and the returned step swaps it in: the audio already buffered, stream time and the
detector's event clock carry over. The source itself stays open (``[source]`` and ``[mic]`` take
effect at the next restart).

With ``[source] kind = "none"`` the daemon has no local audio and no local model: the
:class:`IdleEar` only paces the service loop (``daemon.sources.none.NoAudio``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from earshot.bundle import Bundle, load_bundle
from earshot.detector import Detection, Detector, DetectorConfig

from .config import Settings, StreamSettings
from .outputs import Alert, Outputs
from .sources import AudioSource
from .streaming import HopResult, Recogniser, detector_config

_LOGGER = logging.getLogger(__name__)

PICOS_ONLY = "picos"
"""Model name on the OLED idle screen when there is no local model (source kind "none")."""


@dataclass(frozen=True)
class LocalModel:
    """A loaded bundle with its classifier and detector configuration."""

    bundle: Bundle
    classifier: Any
    detector: DetectorConfig


def load_model(s: Settings) -> LocalModel:
    """``[model]`` and ``[detector]`` (raises BundleError, ConfigError or RuntimeError)."""
    from .inference import Classifier

    bundle = load_bundle(s.model.bundle)
    model = LocalModel(bundle, Classifier(bundle, num_threads=s.model.threads), detector_config(bundle, s.detector))
    _LOGGER.info(
        "model %s (%s…): labels %s, front end %s",
        bundle.name, bundle.sha256[:12], ", ".join(bundle.labels), bundle.manifest["frontend"]["name"],
    )  # fmt: skip
    return model


class LocalEar:
    """One source and its recogniser; see the module docstring."""

    def __init__(self, source: AudioSource, model: LocalModel, stream: StreamSettings,
                 outputs: Outputs, name: str) -> None:  # fmt: skip
        self.source = source
        self.model = model
        self.outputs = outputs
        self.name = name
        self.recogniser = Recogniser(model.classifier, Detector(model.detector), stream)
        self.detections = 0
        self._overflows_seen = 0

    @property
    def model_name(self) -> str:
        return self.model.bundle.name

    @property
    def inferences(self) -> int:
        return self.recogniser.inferences

    def listen(self, timeout: float) -> bool | None:
        """Hear what arrived: True if audio was processed, False if none came, None at the end."""
        chunk = self.source.read(timeout)
        if chunk is None:
            _LOGGER.info("end of audio from %s", self.source.name)
            return None
        if chunk.size == 0:
            return False
        self.outputs.audio(self.name, chunk)
        for hop in self.recogniser.feed(chunk):
            self._hop(hop)
        self._check_overflows()
        return True

    def _hop(self, hop: HopResult) -> None:
        self.outputs.level(self.name, hop.p2p_dbfs, hop.rms_dbfs)
        self.outputs.hop(self.name, hop)
        if hop.detection is not None:
            self._publish(hop.detection)

    def _publish(self, det: Detection) -> None:
        self.detections += 1
        self.outputs.publish(
            Alert(
                label=det.label, score=float(det.score), source=self.name, t=time.time(),
                model_sha256=self.model.bundle.sha256, stream_t_ms=int(det.t_ms),
            )
        )  # fmt: skip

    def _check_overflows(self) -> None:
        total = self.source.overflows
        if total > self._overflows_seen:
            _LOGGER.warning(
                "audio overflow: %d buffer(s) lost (%d in total); the loop is falling behind",
                total - self._overflows_seen, total,
            )  # fmt: skip
            self._overflows_seen = total

    def prepare(self, new: Settings) -> Callable[[], None]:
        """Load ``new``'s model (raises on a bad one); the result swaps it in."""
        model = load_model(new)
        return lambda: self.replace(model, new.stream)

    def replace(self, model: LocalModel, stream: StreamSettings) -> None:
        self.model = model
        self.recogniser.replace(model.classifier, model.detector, stream)
        _LOGGER.info("reloaded: model %s (%s…)", model.bundle.name, model.bundle.sha256[:12])

    def describe(self) -> str:
        return f"listening on {self.source.name} with {self.model_name}"

    def status(self) -> str:
        return (
            f"listening on {self.source.name}: {self.inferences} inferences, "
            f"{self.detections} detections, {self.source.overflows} overflows"
        )

    def close(self) -> None:
        self.source.close()


class IdleEar:
    """No local audio (``kind = "none"``): each listen waits on the source and hears nothing."""

    model_name = PICOS_ONLY
    inferences = 0
    detections = 0

    def __init__(self, source: AudioSource) -> None:
        self.source = source

    def listen(self, timeout: float) -> bool | None:
        return None if self.source.read(timeout) is None else True

    def prepare(self, new: Settings) -> Callable[[], None]:
        return lambda: None  # no model to reload

    def describe(self) -> str:
        return f"listening on {self.source.name} with {self.model_name}"

    def status(self) -> str:
        return f"listening on {self.source.name}: 0 inferences, 0 detections, {self.source.overflows} overflows"

    def close(self) -> None:
        self.source.close()


def open_local_ear(s: Settings, model: LocalModel | None, outputs: Outputs,
                   open_source: Callable[..., AudioSource]) -> LocalEar | IdleEar:  # fmt: skip
    """The ear for ``[source]``: ``model`` is None exactly when the kind is "none"."""
    source = open_source(s.source, s.mic)
    if model is None:
        return IdleEar(source)
    return LocalEar(source, model, s.stream, outputs, s.output.source_name)
