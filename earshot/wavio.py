"""WAV files in and out: any common rate, channel count and sample format, to 16 kHz mono float.

Used by the trainer's dataset loaders, the daemon's WAV source and ``earshotd classify``, so a
file means the same thing everywhere.

* Rates 8, 16, 22.05, 44.1 and 48 kHz (any rate, in fact) are resampled to 16 kHz with a
  polyphase filter (``scipy.signal.resample_poly``).
* Stereo and multichannel files are averaged to mono, unless ``channel`` picks one.
* int16, int32, 24-bit, uint8 and float32/64 samples are scaled to [-1, 1).

Two readers: :func:`read_wav` loads a whole file (the trainer's clips; resampled with
``scipy.signal.resample_poly``), :func:`iter_wav` streams one in blocks with bounded memory
(``earshotd classify`` and the daemon's WAV source; resampled with the streaming polyphase
``earshot.audio.StreamingResampler``, chunk boundaries do not change its output).
:func:`wav_info` reads the header only.
"""

from __future__ import annotations

import os
import struct
import tempfile
import wave
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .audio import SAMPLE_RATE, StreamingResampler, fit_length, resample, to_int16

__all__ = ["WavError", "WavInfo", "fit_length", "iter_wav", "read_wav", "resample", "wav_info",
           "write_wav"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
BLOCK_FRAMES = 1 << 16
"""Frames read per block by :func:`iter_wav` (about 4 s at 16 kHz)."""


class WavError(ValueError):
    """A WAV file could not be read; the message names the file and the reason."""


def _scale(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype == np.int16:
        return data.astype(np.float32) / 32768.0
    if data.dtype == np.int32:
        return (data.astype(np.float64) / 2147483648.0).astype(np.float32)
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    raise WavError(f"unsupported sample type {data.dtype}")


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says."""

    path: Path
    rate: int
    channels: int
    sample_bytes: int
    is_float: bool
    frames: int
    """Frames in the data chunk (clamped to what the file holds)."""
    data_offset: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def _chunks(fh: BinaryIO, size: int) -> Iterator[tuple[bytes, int, int]]:
    """(id, offset of the body, body size) of each RIFF chunk after the WAVE header."""
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        cid, n = struct.unpack("<4sI", fh.read(8))
        yield cid, pos + 8, n
        pos += 8 + n + (n & 1)


def _fmt(p: Path, body: bytes) -> tuple[int, int, int, bool]:
    if len(body) < 16:
        raise WavError(f"{p}: fmt chunk too short ({len(body)} bytes)")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]
    if rate == 0:
        raise WavError(f"{p}: sample rate 0 in the WAV header")
    if channels == 0:
        raise WavError(f"{p}: 0 channels in the WAV header")
    ok = {(_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)}
    if (tag, bits) not in ok:
        raise WavError(f"{p}: unsupported WAV sample format (format tag {tag}, {bits} bits)")
    return rate, channels, bits // 8, tag == _FLOAT


def wav_info(path: str | Path) -> WavInfo:
    """Parse a WAV header (RIFF fmt and data chunks). Raises WavError naming the file."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
                raise WavError(f"{p}: not a readable WAV file (no RIFF/WAVE header)")
            fmt = data = None
            for cid, off, n in _chunks(fh, size):
                if cid == b"fmt ":
                    fh.seek(off)
                    fmt = _fmt(p, fh.read(min(n, 64)))
                elif cid == b"data":
                    data = (off, min(n, size - off))
                    break
    except FileNotFoundError:
        raise WavError(f"{p}: no such file") from None
    except (OSError, struct.error) as e:
        raise WavError(f"{p}: not a readable WAV file ({e})") from None
    if fmt is None or data is None:
        raise WavError(f"{p}: not a readable WAV file (no {'fmt' if fmt is None else 'data'} chunk)")
    rate, channels, width, is_float = fmt
    frames = data[1] // (channels * width)
    if frames == 0:
        raise WavError(f"{p}: WAV file holds no samples")
    return WavInfo(p, rate, channels, width, is_float, frames, data[0])


def _decode(info: WavInfo, raw: bytes) -> np.ndarray:
    """Little-endian frames -> float (frames, channels) in [-1, 1)."""
    w = info.sample_bytes
    if info.is_float:
        x = np.frombuffer(raw, "<f4" if w == 4 else "<f8").astype(np.float64)
    elif w == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif w == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float64)
    else:
        x = np.frombuffer(raw, "<i2" if w == 2 else "<i4").astype(np.float64) / float(1 << (8 * w - 1))
    return x.reshape(-1, info.channels)


def iter_wav(path: str | Path, target_rate: int = SAMPLE_RATE, channel: int | None = None,
             block_frames: int = BLOCK_FRAMES) -> Generator[np.ndarray, None, None]:
    """Stream ``path`` as float32 mono blocks at ``target_rate`` (memory: one block).

    Mono mixing and scaling as :func:`read_wav`; resampled by a streaming polyphase filter.
    Raises WavError naming the file (header errors at the first ``next()``).
    """
    info = wav_info(path)
    if channel is not None and not 0 <= channel < info.channels:
        raise WavError(f"{info.path}: channel {channel} requested, file has {info.channels}")
    resampler = StreamingResampler(info.rate, target_rate, zero_phase=True)
    total = -(-info.frames * target_rate // info.rate)  # resample_poly's length
    given = 0
    for x in _blocks(info, channel, block_frames):
        y = resampler.process(x)[: total - given]
        given += y.size
        yield y
    tail = resampler.flush()[: total - given]
    yield np.concatenate([tail, np.zeros(total - given - tail.size, np.float32)])


def _blocks(info: WavInfo, channel: int | None, block_frames: int) -> Iterator[np.ndarray]:
    """The file's frames as float64 mono blocks at the file's rate."""
    frame = info.channels * info.sample_bytes
    with open(info.path, "rb") as fh:
        fh.seek(info.data_offset)
        left = info.frames
        while left > 0:
            raw = fh.read(min(left, block_frames) * frame)
            raw = raw[: len(raw) - len(raw) % frame]
            if not raw:
                return  # the file was shorter than its header said
            left -= len(raw) // frame
            x = _decode(info, raw)
            x = x[:, channel] if channel is not None else x.mean(axis=1)
            if not np.all(np.isfinite(x)):
                raise WavError(f"{info.path}: WAV file holds NaN or infinite samples")
            yield x


def read_wav(
    path: str | Path, target_rate: int = SAMPLE_RATE, channel: int | None = None
) -> np.ndarray:
    """Read ``path`` as float32 mono at ``target_rate``. Raises WavError naming the file."""
    import scipy.io.wavfile

    p = Path(path)
    try:
        rate, data = scipy.io.wavfile.read(p)
    except FileNotFoundError:
        raise WavError(f"{p}: no such file") from None
    except Exception as e:  # scipy raises ValueError/EOFError/struct errors on bad headers
        raise WavError(f"{p}: not a readable WAV file ({e})") from None
    if data.size == 0:
        raise WavError(f"{p}: WAV file holds no samples")
    if int(rate) <= 0:
        raise WavError(f"{p}: sample rate {rate} in the WAV header")
    audio = _scale(np.asarray(data))
    if audio.ndim == 2:
        if channel is not None:
            if not 0 <= channel < audio.shape[1]:
                raise WavError(f"{p}: channel {channel} requested, file has {audio.shape[1]}")
            audio = audio[:, channel]
        else:
            audio = audio.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise WavError(f"{p}: WAV file holds NaN or infinite samples")
    return resample(audio, int(rate), target_rate)


def write_wav(path: str | Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write float audio in [-1, 1) (or int16) as 16-bit mono PCM (:func:`earshot.audio.to_int16`).

    Written to a temporary name in the same folder and renamed, so a failure (a full disk, a
    read-only folder) leaves no partial file behind; raises OSError.
    """
    a = to_int16(np.asarray(audio))
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(a.tobytes())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
