"""Audio in: every source the daemon and ``earshotd record`` read from, and :func:`open_source`.

Every source yields float32 mono chunks at 16 kHz from ``read(timeout)``: an empty chunk if
none arrived in time, ``None`` when the stream ended (end of file, a stalled board). A source
counts overflows (audio lost because the reader fell behind) in ``overflows``; the local ear
and ``earshotd record`` report them.

* ``mic`` — :class:`~daemon.sources.mic.MicSource`, PyAudio (ALSA), conditioned for the SPH0645
  (``conditioning``); also ``earshotd devices``.
* ``wav`` — :class:`~daemon.sources.wav.WavSource`, a file paced at real time or not.
* ``stdin`` — :class:`~daemon.sources.stdin.StdinSource`, raw interleaved PCM from a pipe.
* ``none`` — :class:`~daemon.sources.none.NoAudio`, for a daemon that only hosts Picos.
* ``serial_audio`` — :class:`~daemon.sources.serial_audio.SerialAudioSource`, a Pico's raw-audio
  mode (``earshotd record --from PORT``).
"""

from __future__ import annotations

from ..config import MicSettings, SourceSettings
from .base import AudioSource, SourceError

__all__ = ["AudioSource", "SourceError", "open_source"]


def open_source(src: SourceSettings, mic: MicSettings) -> AudioSource:
    """The source the settings name (raises SourceError or WavError naming the device/file)."""
    if src.kind == "wav":
        from .wav import WavSource

        return WavSource(src.wav, src.realtime, mic.chunk_ms)
    if src.kind == "stdin":
        from .stdin import StdinSource

        return StdinSource(src, chunk_ms=mic.chunk_ms)
    if src.kind == "none":
        from .none import NoAudio

        return NoAudio()
    from .mic import MicSource

    return MicSource(mic)
