"""Detections out: the ``Alert`` event, the sinks that consume it, and logging setup.

Anything that detects a sound (the local microphone's recogniser, a Pico on USB serial) makes an
:class:`Alert` and hands it to :meth:`Outputs.publish`; every sink (journald/stderr log, JSON
lines, OLED, MQTT) gets it. A sink is any object with ``alert(a)``, ``level(source, p2p, rms)`` and
``close()``; optionally ``announce(source, labels, ignore, model, board_id)`` (a source and its
labels became known: the local model at start, a Pico at hello) and ``hop(source, hop)`` (every
hop's levels and scores, for ``earshotd listen``). A sink that raises is logged and never stops
the others or the detection loop.

Clips: with a keeper (``daemon.clips.ClipKeeper``) the local source's audio is handed to it
(:meth:`Outputs.audio`) and each local alert first gets the path of the clip being kept, so
every sink names it.

Logging: under systemd (``INVOCATION_ID`` or ``JOURNAL_STREAM`` set, or ``[output] journal =
"on"``) records go to journald through systemd-python's ``JournalHandler``; an alert record
carries the structured fields LABEL, SCORE, SOURCE, MODEL_SHA256 (and STREAM_T_MS, BOARD_ID for
a Pico's detections, CLIP when a clip is kept). Otherwise
plain lines on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
from dataclasses import asdict, dataclass, replace
from typing import IO, Any, Protocol

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One detection, from any source."""

    label: str
    """The detected label."""
    score: float
    """Its averaged score, 0..1."""
    source: str
    """Where it was heard: the local mic's name (``[output] source_name``) or a Pico's id."""
    t: float
    """Wall-clock time of the detection (s since the epoch)."""
    model_sha256: str = ""
    """sha256 of the model that made it."""
    stream_t_ms: int | None = None
    """Stream time of the detection (ms since the source started; a Pico's device time)."""
    board_id: str = ""
    """A Pico's unique board id (16 hex digits) when a Pico heard it; "" for the local mic."""
    clip: str = ""
    """Path of the WAV kept around the detection (``[clips]``); "" when none is kept."""

    def short_source(self, limit: int = 14) -> str:
        """The source in at most ``limit`` characters (the OLED's top line): a Pico keeps the
        end of its board id, where boards differ, e.g. ``pico-E66058388B4A0001`` -> ``pico-8B4A0001``."""
        if len(self.source) <= limit:
            return self.source
        if self.board_id and self.source.endswith(self.board_id):
            tail = self.board_id[-8:]
            head = self.source[: len(self.source) - len(self.board_id)]
            return head[: limit - len(tail)] + tail
        return self.source[:limit]


class Sink(Protocol):
    """What :class:`Outputs` hands alerts and levels to."""

    def alert(self, a: Alert) -> None: ...
    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None: ...
    def close(self) -> None: ...


class ClipReserver(Protocol):
    """What Outputs needs of a clip keeper (daemon.clips.ClipKeeper)."""

    source: str

    def feed(self, chunk: Any) -> None: ...
    def reserve(self, a: Alert) -> str: ...
    def close(self) -> None: ...


class Outputs:
    """Fan-out to every sink; thread-safe, so the serial host's threads can publish too."""

    def __init__(self, sinks: list[Sink], clips: ClipReserver | None = None) -> None:
        self.sinks = list(sinks)
        self.clips = clips
        self._lock = threading.Lock()

    def audio(self, source: str, chunk: Any) -> None:
        """The local source's audio (16 kHz float32), for the clip keeper."""
        if self.clips is not None and source == self.clips.source:
            self.clips.feed(chunk)

    def announce(self, source: str, labels: list[str], ignore: frozenset[str] = frozenset(),
                 model: str = "", board_id: str = "") -> None:
        """A source and its labels became known (sinks that care, e.g. MQTT discovery)."""
        self._each("announce", source, labels, ignore, model, board_id)

    def notice(self, text: str) -> None:
        """A daemon message for people at the device (the OLED shows it like an alert)."""
        self._each("notice", text)

    def hop(self, source: str, hop: Any) -> None:
        """One hop's levels and scores (sinks that care, e.g. ``earshotd listen``)."""
        self._each("hop", source, hop)

    def _each(self, method: str, *args: Any) -> None:
        with self._lock:
            for s in [*self.sinks, *([self.clips] if self.clips is not None else [])]:
                fn = getattr(s, method, None)
                if fn is None:
                    continue
                try:
                    fn(*args)
                except Exception:
                    _LOGGER.exception("output %s failed on %s", type(s).__name__, method)

    def publish(self, a: Alert) -> None:
        if self.clips is not None and a.source == self.clips.source and not a.board_id:
            try:
                a = replace(a, clip=self.clips.reserve(a))
            except Exception:
                _LOGGER.exception("clip keeper failed on an alert")
        with self._lock:
            for s in self.sinks:
                try:
                    s.alert(a)
                except Exception:
                    _LOGGER.exception("output %s failed on an alert", type(s).__name__)

    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None:
        with self._lock:
            for s in self.sinks:
                try:
                    s.level(source, p2p_dbfs, rms_dbfs)
                except Exception:
                    _LOGGER.exception("output %s failed on a level update", type(s).__name__)

    def close(self) -> None:
        if self.clips is not None:
            try:
                self.clips.close()
            except Exception:
                _LOGGER.exception("clip keeper failed to close")
        for s in self.sinks:
            try:
                s.close()
            except Exception:
                _LOGGER.exception("output %s failed to close", type(s).__name__)


class LogSink:
    """Each alert as a log record with journald fields LABEL, SCORE, SOURCE, MODEL_SHA256
    (plus STREAM_T_MS when known and BOARD_ID for a Pico)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("daemon.alerts")

    def alert(self, a: Alert) -> None:
        fields = {
            "LABEL": a.label, "SCORE": f"{a.score:.3f}", "SOURCE": a.source,
            "MODEL_SHA256": a.model_sha256,
        }
        if a.stream_t_ms is not None:
            fields["STREAM_T_MS"] = str(a.stream_t_ms)
        if a.board_id:
            fields["BOARD_ID"] = a.board_id
        if a.clip:
            fields["CLIP"] = a.clip
            self._log.info("detected %s (%.2f) from %s, clip %s", a.label, a.score, a.source,
                           a.clip, extra=fields)  # fmt: skip
            return
        self._log.info("detected %s (%.2f) from %s", a.label, a.score, a.source, extra=fields)

    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None:
        pass

    def close(self) -> None:
        pass


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


class JsonLinesSink:
    """One JSON object per alert, to a file (appended) or stdout (``-``), flushed each line:
    label, score, source, t, model_sha256, stream_t_ms, and board_id for a Pico's alerts."""

    def __init__(self, target: str) -> None:
        self._own = target != "-"
        if self._own and _is_fifo(target):
            raise OSError(f"output.json {target!r} is a FIFO, which is not supported (opening it "
                          "would block until a reader appears): use '-' and a shell pipe")
        try:
            self._fh: IO[str] = open(target, "a", encoding="utf-8") if self._own else sys.stdout
        except OSError as e:
            raise OSError(f"output.json {target!r}: cannot open ({e.strerror})") from None

    def alert(self, a: Alert) -> None:
        d = asdict(a)
        d["score"] = round(a.score, 4)
        if not a.board_id:
            del d["board_id"]  # only a Pico's alerts carry one
        if not a.clip:
            del d["clip"]  # only when a clip is kept
        self._fh.write(json.dumps(d) + "\n")
        self._fh.flush()

    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None:
        pass

    def close(self) -> None:
        if self._own:
            self._fh.close()


def under_systemd() -> bool:
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"))


def setup_logging(journal: str = "auto", debug: bool = False) -> str:
    """Route the root logger to journald or stderr; returns which ("journal" or "stderr")."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    use_journal = journal == "on" or (journal == "auto" and under_systemd())
    if use_journal:
        try:
            from systemd.journal import JournalHandler

            root.addHandler(JournalHandler(SYSLOG_IDENTIFIER="earshotd"))
            return "journal"
        except ImportError:
            _fallback(root)
            _LOGGER.warning("journald logging needs systemd-python; logging to stderr")
            return "stderr"
    _fallback(root)
    return "stderr"


def _fallback(root: logging.Logger) -> None:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(h)
