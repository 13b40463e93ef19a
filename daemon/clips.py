"""Detection clips: the audio around each local detection, kept on disk for review and relabelling.

For every detection of the local source the keeper reserves a clip name at once (so journald,
JSON and MQTT can name it), waits until ``[clips] after_ms`` of audio has followed, and then a
worker thread writes three files into ``[clips] dir``:

* ``<stamp>_<source>_<label>.json``: label, score, every label's scores at the detection, source,
  device, time, model sha256, stream time, kind (``detection`` or ``negative``);
* ``<stamp>_<source>_<label>.png``: a log-magnitude spectrogram (numpy + Pillow);
* ``<stamp>_<source>_<label>.wav``: 16 kHz mono, ``before_ms`` + ``after_ms`` long, written
  last: a clip exists when its WAV does.

Each file is written under a temporary name and renamed, and a failed clip removes whatever it
had written, so there are never partial clips. The disk is bounded: at most ``max_count`` clips
and ``max_mb`` MB (the oldest are deleted first), and no clip is kept when the file system
would be left with less than ``min_free_mb`` MB free. A full or unwritable disk is logged at most
once per ``error_every_s`` and detection carries on.

With ``negatives_per_hour`` > 0, random stretches of audio with no detection near them are kept
too (kind ``negative``, label ``_negative_``): material for ``_unknown_`` when relabelling.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from earshot.audio import SAMPLE_RATE
from earshot.wavio import write_wav

from .config import ClipSettings
from .outputs import Alert
from .streaming import RingBuffer

_LOGGER = logging.getLogger(__name__)

NEGATIVE = "_negative_"
"""Label of a randomly sampled clip with no detection."""
MARGIN_S = 3
"""Audio kept beyond before + after (+ before again, for negatives), for chunks that arrive
ahead of the detection and for negatives held back until no detection follows them."""
NEGATIVE_GAP_S = 1
"""A negative must end at least this long before a detection's clip starts: the sound that
fired may have begun up to a window (1 s) before the detection."""
WAV_BYTES_PER_S = 2 * SAMPLE_RATE


@dataclass
class Pending:
    """A reserved clip waiting for the audio after its detection."""

    stem: str
    start: int
    """First sample (stream sample index)."""
    end: int
    """One past the last sample."""
    meta: dict[str, Any] = field(default_factory=dict)
    hold: int = 0
    """Stream sample from which the clip is written (a negative waits to see no detection)."""


def _stamp(t: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t)) + f"-{int(t * 1000) % 1000:03d}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def spectrogram_png(audio: np.ndarray, path: Path) -> None:
    """A log-magnitude spectrogram (25 ms Hann frames, 10 ms hop, 80 dB range), low
    frequencies at the bottom, written as an 8-bit PNG with Pillow."""
    from PIL import Image

    n, hop = 400, 160
    x = np.asarray(audio, np.float32)
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n).astype(np.float32)
    db = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) + 1e-6)
    top = float(db.max())
    img = np.clip((db - (top - 80.0)) / 80.0, 0.0, 1.0)[:, ::-1].T
    rgb = np.stack([img ** 0.5, img ** 1.5, 0.6 * img * (1 - img) * 4], axis=-1)  # dark blue..yellow
    Image.fromarray((rgb * 255).astype(np.uint8), "RGB").save(path, format="PNG")


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_clip(folder: Path, stem: str, audio: np.ndarray, meta: dict[str, Any]) -> Path:
    """The three files of one clip (JSON, PNG, then WAV); none left behind if any fails."""
    done: list[Path] = []
    try:
        for suffix, write in (
            (".json", lambda p: p.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")),
            (".png", lambda p: spectrogram_png(audio, p)),
            (".wav", lambda p: write_wav(p, audio)),
        ):
            target = folder / f"{stem}{suffix}"
            _write_atomic(target, write)
            done.append(target)
    except BaseException:
        for p in done:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    return folder / f"{stem}.wav"


def kept_clips(folder: Path) -> list[Path]:
    """The WAVs of complete clips, oldest first (names start with the time)."""
    try:
        return sorted(p for p in folder.glob("*.wav") if not p.name.startswith("."))
    except OSError:
        return []


def delete_clip(wav: Path) -> int:
    """Remove a clip's files; returns the bytes freed."""
    freed = 0
    for suffix in (".wav", ".png", ".json"):
        p = wav.with_suffix(suffix)
        with contextlib.suppress(OSError):
            freed += p.stat().st_size
            p.unlink()
    return freed


class ClipKeeper:
    """Keeps clips of one source's detections; see the module docstring."""

    def __init__(self, s: ClipSettings, source: str, device: str, model_sha256: str = "",
                 write: Callable[[Path, str, np.ndarray, dict[str, Any]], Path] = write_clip,
                 rng: np.random.Generator | None = None,
                 disk_free: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free) -> None:  # fmt: skip
        self.s, self.source, self.device, self.model_sha256 = s, source, device, model_sha256
        self.folder = Path(s.dir)
        self.before = SAMPLE_RATE * s.before_ms // 1000
        self.after = SAMPLE_RATE * s.after_ms // 1000
        self.ring = RingBuffer(2 * self.before + self.after + MARGIN_S * SAMPLE_RATE)
        self.kept = self.failed = 0
        self._write, self._disk_free = write, disk_free
        self._rng = rng or np.random.default_rng()
        self._pending: list[Pending] = []
        self._labels: list[str] = []
        self._scores: list[float] = []
        self._last_error_t = -1e18
        self._errors_quiet = 0
        self._complain_lock = threading.Lock()  # the worker and the audio thread both complain
        self._last_det_sample = -(10**12)
        self._jobs: queue.Queue[tuple[Pending, np.ndarray] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="earshot-clips", daemon=True)
        self._worker.start()

    # -- the detection thread --
    def announce(self, source: str, labels: list[str], *rest: Any) -> None:
        if source == self.source:
            self._labels = list(labels)

    def hop(self, source: str, hop: Any) -> None:
        if source == self.source and hop.scores is not None:
            self._scores = [round(float(x), 4) for x in hop.scores]

    def feed(self, chunk: np.ndarray) -> None:
        self.ring.write(chunk)
        self._maybe_negative(chunk.size)
        ready = [p for p in self._pending if p.hold <= self.ring.total]
        if ready:
            self._pending = [p for p in self._pending if p.hold > self.ring.total]
            for p in ready:
                self._hand_over(p)

    def reserve(self, a: Alert) -> str:
        """Reserve the clip of a detection; its WAV path, or "" when none can be kept."""
        det = (a.stream_t_ms or 0) * SAMPLE_RATE // 1000
        self._last_det_sample = det
        clear = det - self.before - NEGATIVE_GAP_S * SAMPLE_RATE
        self._pending = [p for p in self._pending if p.meta["kind"] != "negative" or p.end <= clear]
        meta = {"kind": "detection", "label": a.label, "score": round(a.score, 4),
                "scores": dict(zip(self._labels, self._scores, strict=False)),
                "source": a.source, "device": self.device, "time": a.t,
                "model_sha256": a.model_sha256, "stream_t_ms": a.stream_t_ms}  # fmt: skip
        return self._reserve(a.t, a.label, det, meta)

    def _reserve(self, t: float, label: str, det: int, meta: dict[str, Any], hold: int = 0) -> str:
        if not self._room():
            return ""
        stem = f"{_stamp(t)}_{_safe(self.source)}_{_safe(label)}"
        taken = {p.stem for p in self._pending}
        while stem in taken or (self.folder / f"{stem}.wav").exists():
            stem += "x"
        end = det + self.after
        self._pending.append(Pending(stem, max(0, det - self.before), end, meta, max(hold, end)))
        return str(self.folder / f"{stem}.wav")

    def _maybe_negative(self, n: int) -> None:
        rate = self.s.negatives_per_hour
        if rate <= 0 or self._rng.random() >= rate * n / SAMPLE_RATE / 3600.0:
            return
        now = self.ring.total
        quiet = self.before + self.after + SAMPLE_RATE
        if now - self._last_det_sample < quiet or any(p.meta["kind"] == "detection" for p in self._pending):
            return
        t = time.time()
        meta = {"kind": "negative", "label": NEGATIVE, "score": 0.0, "source": self.source,
                "device": self.device, "time": t, "model_sha256": self.model_sha256,
                "stream_t_ms": now * 1000 // SAMPLE_RATE}  # fmt: skip
        # Written once a detection that would overlap it can no longer come (plus half a second
        # for a chunk that arrives ahead of the detector).
        hold = now + self.after + self.before + NEGATIVE_GAP_S * SAMPLE_RATE + SAMPLE_RATE // 2
        self._reserve(t, NEGATIVE, now, meta, hold=hold)

    def _hand_over(self, p: Pending) -> None:
        have = min(self.ring.total, p.end)
        start = max(p.start, self.ring.total - self.ring.capacity, 0)
        if have <= start:
            return
        back = self.ring.total - start
        audio = self.ring.latest(back)[: have - start]
        self._jobs.put((p, audio))

    def _room(self) -> bool:
        """The folder exists (its parent must) and leaves min_free_mb free after a clip."""
        try:
            self.folder.mkdir(mode=0o750, exist_ok=True)
            free = self._disk_free(self.folder)
        except OSError as e:
            self._complain(f"cannot use {self.folder} ({e.strerror or e})")
            return False
        need = (self.s.min_free_mb * 1e6) + 2 * WAV_BYTES_PER_S * (self.before + self.after) / SAMPLE_RATE
        if free < need:
            self._complain(f"{self.folder}: only {free / 1e6:.1f} MB free (keeping "
                           f"[clips] min_free_mb = {self.s.min_free_mb:g} MB free)")
            return False
        return True

    def _complain(self, text: str) -> None:
        with self._complain_lock:
            now = time.monotonic()
            if now - self._last_error_t < self.s.error_every_s:
                self._errors_quiet += 1
                return
            more = f" ({self._errors_quiet} more since the last report)" if self._errors_quiet else ""
            self._last_error_t, self._errors_quiet = now, 0
        _LOGGER.error("clips: not keeping clips: %s; detection carries on%s", text, more)

    # -- the worker thread --
    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            p, audio = job
            try:
                self._write(self.folder, p.stem, audio, p.meta)
                self.kept += 1
                self._enforce_caps()
            except OSError as e:
                self.failed += 1
                why = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
                self._complain(f"writing {p.stem} in {self.folder}: {why} (nothing partial left)")
            except Exception:
                self.failed += 1
                _LOGGER.exception("clips: writing %s failed", p.stem)

    def _enforce_caps(self) -> None:
        clips = kept_clips(self.folder)
        sizes = [sum(_size(w.with_suffix(x)) for x in (".wav", ".png", ".json")) for w in clips]
        total, limit = sum(sizes), self.s.max_mb * 1e6
        i = 0
        while i < len(clips) - 1 and (len(clips) - i > self.s.max_count or total > limit):
            total -= delete_clip(clips[i])
            i += 1
        if i:
            _LOGGER.info("clips: deleted the %d oldest clip(s) ([clips] max_count %d, max_mb %g)",
                         i, self.s.max_count, self.s.max_mb)  # fmt: skip

    def close(self) -> None:
        """Write the clips still waiting (with the audio there is), then stop the worker."""
        for p in self._pending:
            self._hand_over(p)
        self._pending.clear()
        self._jobs.put(None)
        self._worker.join(timeout=30)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0
