"""The recogniser: per-inference scores in, at most one detection per event out.

Pure logic, no I/O: the daemon (float scores) and the RP2040 firmware (``es_detector.c``, int8
scores as levels of 1/256) implement the same rules and are tested with shared vectors.

Rules, for each call ``update(t_ms, scores)``:

1. ``t_ms`` must not go backwards (ValueError), ``scores`` must have one value per label.
2. The history keeps the results whose time is within ``average_window_ms`` of now
   (``t_ms - t < average_window_ms``), at most ``max_history`` of them (oldest dropped first).
3. Each label's score is the mean over the history. The candidate is the label with the highest
   mean (ties: the lower index), ignoring labels in ``ignore``.
4. It fires when its mean >= its threshold, the history holds >= ``min_count`` results, and
   no detection fired in the last ``suppression_ms`` (``t_ms - last >= suppression_ms``).
   The comparison is ``sum >= threshold * count``, exact for scores that are multiples of
   1/256, which is how the firmware's integer version matches this one bit for bit.

A model swap (the daemon's SIGHUP) does not restart the event clock: :meth:`Detector.carry_over`
builds the detector for the new configuration on the same stream, keeping the time of the last
detection while the label that fired still exists, so one event is not reported twice.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of the recogniser (the manifest's thresholds plus the timing rules)."""

    labels: tuple[str, ...]
    """Label names in model output order."""
    thresholds: tuple[float, ...]
    """Per-label threshold on the averaged score, 0..1."""
    average_window_ms: int = 1000
    """Scores from the last this many ms are averaged."""
    min_count: int = 3
    """At least this many results must be in the window before anything fires."""
    suppression_ms: int = 1500
    """After a detection, nothing fires for this long (refractory time)."""
    ignore: frozenset[str] = field(default_factory=frozenset)
    """Labels that never fire (background classes such as _silence_, _unknown_)."""
    max_history: int = 32
    """Upper bound on remembered results (the firmware's fixed array size)."""

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.thresholds):
            raise ValueError(
                f"detector: {len(self.labels)} labels but {len(self.thresholds)} thresholds"
            )
        for name, thr in zip(self.labels, self.thresholds, strict=True):
            if not 0.0 <= thr <= 1.0:
                raise ValueError(f"detector: threshold for {name!r} must be in 0..1, got {thr}")
        if self.average_window_ms <= 0:
            raise ValueError(f"detector: average_window_ms must be > 0, got {self.average_window_ms}")
        if self.min_count < 1:
            raise ValueError(f"detector: min_count must be >= 1, got {self.min_count}")
        if self.suppression_ms < 0:
            raise ValueError(f"detector: suppression_ms must be >= 0, got {self.suppression_ms}")
        if not 1 <= self.max_history <= 1024:
            raise ValueError(f"detector: max_history must be in 1..1024, got {self.max_history}")
        unknown = sorted(set(self.ignore) - set(self.labels))
        if unknown:
            raise ValueError(f"detector: ignore names unknown label(s) {', '.join(unknown)}")


@dataclass(frozen=True)
class Detection:
    """One event: the label, its averaged score and the time of the result that fired it."""

    label: str
    score: float
    t_ms: int
    index: int


class Detector:
    """Stateful recogniser; see the module docstring for the rules."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self._history: deque[tuple[int, tuple[float, ...]]] = deque()
        self._last_t: int | None = None
        self._last_fire: int | None = None
        self._last_label: str | None = None

    def reset(self) -> None:
        self._history.clear()
        self._last_t = None
        self._last_fire = None
        self._last_label = None

    def carry_over(self, config: DetectorConfig) -> Detector:
        """A detector for ``config`` on the same stream: stream time may not go backwards, and
        the last detection still suppresses if its label is one of ``config``'s labels (the
        score history is not kept; its rows belong to the old labels)."""
        new = Detector(config)
        new._last_t = self._last_t
        if self._last_label in config.labels:
            new._last_fire, new._last_label = self._last_fire, self._last_label
        return new

    def update(self, t_ms: int, scores: Sequence[float]) -> Detection | None:
        cfg = self.config
        if len(scores) != len(cfg.labels):
            raise ValueError(f"detector: got {len(scores)} scores for {len(cfg.labels)} labels")
        if self._last_t is not None and t_ms < self._last_t:
            raise ValueError(f"detector: time went backwards ({t_ms} ms after {self._last_t} ms)")
        self._last_t = t_ms
        self._history.append((t_ms, tuple(float(s) for s in scores)))
        while self._history and t_ms - self._history[0][0] >= cfg.average_window_ms:
            self._history.popleft()
        while len(self._history) > cfg.max_history:
            self._history.popleft()
        count = len(self._history)
        sums = [0.0] * len(cfg.labels)
        for _, s in self._history:
            for i, v in enumerate(s):
                sums[i] += v
        best = -1
        for i, name in enumerate(cfg.labels):
            if name in cfg.ignore:
                continue
            if best < 0 or sums[i] > sums[best]:
                best = i
        if best < 0 or count < cfg.min_count:
            return None
        if sums[best] < cfg.thresholds[best] * count:
            return None
        if self._last_fire is not None and t_ms - self._last_fire < cfg.suppression_ms:
            return None
        self._last_fire, self._last_label = t_ms, cfg.labels[best]
        return Detection(cfg.labels[best], sums[best] / count, t_ms, best)


# --- the detector policy of a bundle: one function for the daemon and the firmware ----------

DEFAULT_AVERAGE_WINDOW_MS = 300
"""Averaging window a bundle's policy gets unless told otherwise (the daemon's default too)."""
DEFAULT_MIN_COUNT = 2
"""Results needed in the window unless told otherwise."""
DEFAULT_SUPPRESSION_MS = 1500
"""Refractory time unless told otherwise."""
LEVEL_ONE = 256
"""The firmware's scores and thresholds are integer levels of 1/256."""


def never_fire(labels: Sequence[str], activation: str, extra: Sequence[str] = ()) -> frozenset[str]:
    """Labels that never fire: ``_…`` labels (``_silence_``, ``_unknown_``, ``_background_``),
    the negative class (label 0) of a binary sigmoid model, and ``extra`` (a bundle's own
    ``detector.ignore`` list, a user's ``[detector] ignore``)."""
    ignore = {x for x in labels if x.startswith("_")} | set(extra)
    if activation == "sigmoid" and len(labels) == 2:
        ignore.add(labels[0])
    return frozenset(ignore)


TIMING_LIMITS = {"average_window_ms": (1, 10000), "min_count": (1, 64), "suppression_ms": (0, 60000)}
"""The timing rules a bundle may carry in its manifest's ``detector`` object, and their bounds
(the daemon's ``[detector]`` keys of the same names have the same bounds)."""


def bundle_timing(manifest: dict) -> dict[str, int]:  # type: ignore[type-arg]
    """The timing rules a bundle carries (manifest ``detector.average_window_ms``,
    ``min_count``, ``suppression_ms``; each optional), chosen when it was trained or evaluated:
    an alarm that sounds for seconds wants a longer averaging window than a spoken word.
    ValueError names a key whose value is not an integer within :data:`TIMING_LIMITS`."""
    det = manifest.get("detector") or {}
    out = {}
    for key, (lo, hi) in TIMING_LIMITS.items():
        v = det.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"detector.{key} must be an integer from {lo} to {hi}, got {v!r}")
        out[key] = v
    return out


def bundle_policy(
    labels: Sequence[str],
    activation: str,
    thresholds: dict[str, float],
    ignore: Sequence[str] = (),
    threshold_offset: float = 0.0,
    average_window_ms: int | None = None,
    min_count: int | None = None,
    suppression_ms: int | None = None,
) -> DetectorConfig:
    """The detector for a model: its thresholds (default 0.5, plus ``threshold_offset``,
    clipped to 0..1), :func:`never_fire`'s labels ignored, and the timing rules (None: the
    ``DEFAULT_*`` values; callers pass a bundle's own :func:`bundle_timing` unless a user set
    one).

    The daemon (``daemon.streaming.detector_config``) and the firmware (``earshot-train
    compile`` emits :func:`device_policy` of this into the generated C) both get their detector
    from here. ValueError names an ``ignore`` entry that is not a label.
    """
    labels = tuple(labels)
    unknown = [x for x in ignore if x not in labels]
    if unknown:
        raise ValueError(f"ignore names unknown label(s) {', '.join(unknown)} (labels: "
                         f"{', '.join(labels)})")
    thr = tuple(min(1.0, max(0.0, thresholds.get(x, 0.5) + threshold_offset)) for x in labels)
    return DetectorConfig(
        labels=labels, thresholds=thr,
        average_window_ms=DEFAULT_AVERAGE_WINDOW_MS if average_window_ms is None else average_window_ms,
        min_count=DEFAULT_MIN_COUNT if min_count is None else min_count,
        suppression_ms=DEFAULT_SUPPRESSION_MS if suppression_ms is None else suppression_ms,
        ignore=never_fire(labels, activation, ignore),
    )  # fmt: skip


def timing_rules(manifest: dict, **given: int | None) -> dict[str, int | None]:  # type: ignore[type-arg]
    """The timing rules to use: each of ``given`` that is set, else the bundle's own."""
    own = bundle_timing(manifest)
    return {k: given.get(k) if given.get(k) is not None else own.get(k) for k in TIMING_LIMITS}


def bundle_ignore(manifest: dict) -> list[str]:  # type: ignore[type-arg]
    """A bundle's own list of labels that never fire (manifest ``detector.ignore``; optional)."""
    return list((manifest.get("detector") or {}).get("ignore") or [])


def threshold_level(threshold: float) -> int:
    """A threshold as the firmware's level: the smallest multiple of 1/256 at or above it (so
    the device never fires below the bundle's threshold)."""
    return min(LEVEL_ONE, max(0, math.ceil(threshold * LEVEL_ONE - 1e-9)))


def device_policy(cfg: DetectorConfig) -> DetectorConfig:
    """``cfg`` as the firmware runs it: thresholds rounded up to levels of 1/256. On scores
    that are levels (every int8 model's), the Python detector with this config and
    ``es_detector.c`` with the emitted ``es_model_policy`` make the same detections."""
    thr = tuple(threshold_level(t) / LEVEL_ONE for t in cfg.thresholds)
    return DetectorConfig(
        labels=cfg.labels, thresholds=thr, average_window_ms=cfg.average_window_ms,
        min_count=cfg.min_count, suppression_ms=cfg.suppression_ms, ignore=cfg.ignore,
        max_history=cfg.max_history,
    )  # fmt: skip
