"""WAV files in and out: any common rate, channel count and sample format, to 16 kHz mono float.

Used by the trainer's dataset loaders, the daemon's WAV source and ``earshotd classify``, so a
file means the same thing everywhere.

* Rates 8, 16, 22.05, 44.1 and 48 kHz (any rate, in fact) are resampled to 16 kHz with a
  polyphase filter (``scipy.signal.resample_poly``).
* Stereo and multichannel files are averaged to mono, unless ``channel`` picks one.
* int16, int32, 24-bit, uint8 and float32/64 samples are scaled to [-1, 1).
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

TARGET_RATE = 16000


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


def resample(audio: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Resample float audio from ``rate`` to ``target`` Hz (polyphase, exact rational ratio)."""
    if rate == target:
        return audio.astype(np.float32)
    import scipy.signal

    g = math.gcd(int(rate), int(target))
    return scipy.signal.resample_poly(audio, target // g, rate // g).astype(np.float32)


def read_wav(
    path: str | Path, target_rate: int = TARGET_RATE, channel: int | None = None
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


def fit_length(audio: np.ndarray, length: int, mode: str = "center") -> np.ndarray:
    """Pad with zeros or cut to ``length`` samples.

    Shorter clips are padded symmetrically (half before, half after) so the sound stays centred;
    longer clips are cut: ``center`` keeps the middle, ``start`` keeps the beginning, ``loudest``
    keeps the window centred on the peak absolute sample (the Pi seed's choice).
    """
    n = audio.shape[0]
    if n == length:
        return audio.astype(np.float32)
    if n < length:
        before = (length - n) // 2
        return np.pad(audio, (before, length - n - before)).astype(np.float32)
    if mode == "start":
        start = 0
    elif mode == "center":
        start = (n - length) // 2
    elif mode == "loudest":
        peak = int(np.argmax(np.abs(audio)))
        start = min(max(0, peak - length // 2), n - length)
    else:
        raise ValueError(f"unknown fit mode {mode!r}")
    return audio[start : start + length].astype(np.float32)


def write_wav(path: str | Path, audio: np.ndarray, rate: int = TARGET_RATE) -> None:
    """Write float audio in [-1, 1) (or int16) as 16-bit mono PCM."""
    a = np.asarray(audio)
    if a.dtype != np.int16:
        a = np.clip(np.round(a.astype(np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(a.tobytes())
