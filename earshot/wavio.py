"""WAV files in and out: any common rate, channel count and sample format, to 16 kHz mono float.

Used by the trainer's dataset loaders, the daemon's WAV source and ``earshotd classify``, so a
file means the same thing everywhere.

* Rates 8, 16, 22.05, 44.1 and 48 kHz (any rate, in fact) are resampled to 16 kHz with a
  polyphase filter (``scipy.signal.resample_poly``).
* Stereo and multichannel files are averaged to mono, unless ``channel`` picks one.
* int16, int32, 24-bit, uint8 and float32/64 samples are scaled to [-1, 1).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, fit_length, resample, to_int16

__all__ = ["WavError", "fit_length", "read_wav", "resample", "write_wav"]


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
    """Write float audio in [-1, 1) (or int16) as 16-bit mono PCM (:func:`earshot.audio.to_int16`)."""
    a = np.asarray(audio)
    a = to_int16(a)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(a.tobytes())
