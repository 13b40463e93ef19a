"""Streaming recognition: ring buffer, hop, window choice, silence gate, one classifier.

Audio arrives in chunks of any size. Every ``hop_ms`` of stream time the recogniser takes one
1 s window from the ring buffer, measures its level, and, if the silence gate is open, runs the
persistent classifier on it and feeds the scores to the detector. Time is *stream time*: the
number of samples consumed, in ms, so results do not depend on how fast audio is delivered.

Silence gate (absolute level of the window about to be classified; 0 dBFS = full scale):

* peak-to-peak level ``20 log10((max - min) / 2)``: a full-scale sine is 0 dBFS. A constant
  (DC) signal has no peak-to-peak swing, so an offset never opens the gate.
* RMS level of the window with its mean removed, ``20 log10(sqrt(2) * rms)`` (AES17: a
  full-scale sine is 0 dBFS).

The gate is open when both are at or above their thresholds (``[stream] gate_p2p_dbfs`` and
``gate_rms_dbfs``). While it is closed nothing is classified and the detector gets no result, so
a quiet room costs almost no CPU. A threshold on the raw mean would never open for a DC-free
microphone signal; this gate works on any signal.

Window choice: ``sliding`` is the latest 1 s; ``loudest`` is the 1 s of the last ``buffer_ms``
centred on the largest deviation from the mean (``earshot.audio.loudest_start``, the same rule
as ``fit_length(..., "loudest")``), clamped inside the buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from earshot.audio import SAMPLE_RATE, loudest_start
from earshot.detector import (
    Detection,
    Detector,
    DetectorConfig,
    bundle_ignore,
    bundle_policy,
    timing_rules,
)

from .config import ConfigError, DetectorSettings, StreamSettings

FLOOR_DBFS = -200.0


class RingBuffer:
    """The last ``capacity`` samples (zeros before any arrive)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data = np.zeros(capacity, np.float32)
        self._pos = 0
        self.total = 0  # samples written since the start

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float32)
        if x.size >= self.capacity:
            self._data[:] = x[-self.capacity :]
            self._pos = 0
        else:
            end = self._pos + x.size
            if end <= self.capacity:
                self._data[self._pos : end] = x
            else:
                k = self.capacity - self._pos
                self._data[self._pos :] = x[:k]
                self._data[: x.size - k] = x[k:]
            self._pos = end % self.capacity
        self.total += x.size

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` samples, oldest first (a copy)."""
        if not 0 < n <= self.capacity:
            raise ValueError(f"ring buffer: asked for {n} samples, holds {self.capacity}")
        idx = (self._pos - n + np.arange(n)) % self.capacity
        return self._data[idx]


def _db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else FLOOR_DBFS


def levels(x: np.ndarray) -> tuple[float, float]:
    """(peak-to-peak dBFS, RMS dBFS of the mean-removed signal); see the module docstring."""
    if x.size == 0:
        return FLOOR_DBFS, FLOOR_DBFS
    x64 = x.astype(np.float64)
    p2p = _db((float(x64.max()) - float(x64.min())) / 2.0)
    rms = _db(math.sqrt(2.0) * float(np.std(x64)))
    return max(p2p, FLOOR_DBFS), max(rms, FLOOR_DBFS)


@dataclass(frozen=True)
class SilenceGate:
    """Open (classify) when both levels reach their thresholds."""

    p2p_dbfs: float
    """Minimum peak-to-peak level (dBFS)."""
    rms_dbfs: float
    """Minimum RMS level (dBFS)."""

    def is_open(self, p2p: float, rms: float) -> bool:
        return p2p >= self.p2p_dbfs and rms >= self.rms_dbfs


def choose_window(buffer: np.ndarray, clip: int, mode: str) -> np.ndarray:
    """The 1 s (``clip`` samples) to classify out of ``buffer`` (oldest first)."""
    if mode == "sliding":
        return buffer[-clip:]
    if mode == "loudest":
        start = loudest_start(buffer, clip)
        return buffer[start : start + clip]
    raise ValueError(f"unknown window mode {mode!r}")


@dataclass(frozen=True)
class HopResult:
    """What one hop produced."""

    t_ms: int
    """Stream time at the end of the window (ms since the start)."""
    p2p_dbfs: float
    """Peak-to-peak level of the window (dBFS)."""
    rms_dbfs: float
    """RMS level of the window (dBFS)."""
    scores: np.ndarray | None
    """Per-label probabilities, or None when the gate was closed."""
    detection: Detection | None
    """The detector's verdict for this hop."""


def detector_config(bundle, settings: DetectorSettings) -> DetectorConfig:  # type: ignore[no-untyped-def]
    """The detector for a bundle: ``earshot.detector.bundle_policy`` (the same function the
    firmware's compiled policy comes from) with the daemon's ``[detector]`` rules.

    Labels starting with ``_`` (``_silence_``, ``_unknown_``, ``_background_``) never fire, nor
    does the negative class of a binary sigmoid bundle (label 0), nor the bundle's own
    ``detector.ignore``, nor ``[detector] ignore``.
    """
    labels = tuple(bundle.labels)
    unknown = [x for x in settings.ignore if x not in labels]
    if unknown:
        raise ConfigError(
            f"detector.ignore (--detector-ignore) names unknown label(s) {', '.join(unknown)} "
            f"(bundle {bundle.name} has: {', '.join(labels)})"
        )
    timing = timing_rules(bundle.manifest, average_window_ms=settings.average_window_ms,
                          min_count=settings.min_count, suppression_ms=settings.suppression_ms)
    return bundle_policy(
        labels, bundle.manifest["output"].get("activation", "softmax"), bundle.thresholds,
        ignore=[*bundle_ignore(bundle.manifest), *settings.ignore],
        threshold_offset=settings.threshold_offset, **timing,
    )  # fmt: skip


class Recogniser:
    """Chunks in, one HopResult per hop out (see the module docstring)."""

    def __init__(self, classifier, detector: Detector, stream: StreamSettings) -> None:  # type: ignore[no-untyped-def]
        self.detector = detector
        self._configure(classifier, stream)
        self.ring = self._new_ring()
        self._next_hop = self.hop
        self.inferences = 0

    def _configure(self, classifier, stream: StreamSettings) -> None:  # type: ignore[no-untyped-def]
        self.classifier = classifier
        self.stream = stream
        self.clip = int(classifier.bundle.manifest["clip_samples"])
        self.hop = SAMPLE_RATE * stream.hop_ms // 1000
        self.gate = SilenceGate(stream.gate_p2p_dbfs, stream.gate_rms_dbfs)

    def _new_ring(self) -> RingBuffer:
        size = max(self.clip, SAMPLE_RATE * self.stream.buffer_ms // 1000)
        return RingBuffer(size if self.stream.window == "loudest" else self.clip)

    def replace(self, classifier, detector: DetectorConfig, stream: StreamSettings) -> None:  # type: ignore[no-untyped-def]
        """Swap model/settings (SIGHUP) keeping the audio already buffered, stream time and the
        detector's event clock (``Detector.carry_over``)."""
        old = self.ring
        self._configure(classifier, stream)
        self.detector = self.detector.carry_over(detector)
        self.ring = self._new_ring()
        if self.ring.capacity == old.capacity:
            self.ring = old
        else:
            self.ring.write(old.latest(min(old.capacity, self.ring.capacity)))
            self.ring.total = old.total
        self._next_hop = max(self._next_hop, self.ring.total + 1)

    def feed(self, chunk: np.ndarray) -> list[HopResult]:
        out = []
        pos = 0
        while pos < chunk.size:
            take = min(chunk.size - pos, self._next_hop - self.ring.total)
            self.ring.write(chunk[pos : pos + take])
            pos += take
            if self.ring.total >= self._next_hop:
                self._next_hop += self.hop
                out.append(self._hop())
        return out

    def _hop(self) -> HopResult:
        t_ms = self.ring.total * 1000 // SAMPLE_RATE
        buf = self.ring.latest(self.ring.capacity)
        window = choose_window(buf, self.clip, self.stream.window)
        p2p, rms = levels(window)
        if not self.gate.is_open(p2p, rms):
            return HopResult(t_ms, p2p, rms, None, None)
        scores = self.classifier.scores(window)
        self.inferences += 1
        det = self.detector.update(t_ms, scores.tolist())
        return HopResult(t_ms, p2p, rms, scores, det)
