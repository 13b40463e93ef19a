"""WAV reading: every common rate, width and channel count lands as 16 kHz mono float."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from earshot.audio import fit_length
from earshot.wavio import WavError, read_wav, write_wav


def _tone(rate: int, seconds: float = 0.5, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def _dominant_hz(x: np.ndarray, rate: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * rate / x.size)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize(
    "dtype,scale", [(np.int16, 32767), (np.int32, 2**31 - 1), (np.float32, 1.0)]
)
def test_any_rate_and_format_becomes_16k_float(tmp_path: Path, rate: int, dtype, scale) -> None:
    x = _tone(rate)
    p = tmp_path / "a.wav"
    scipy.io.wavfile.write(p, rate, (x * scale).astype(dtype))
    y = read_wav(p)
    assert y.dtype == np.float32
    assert abs(y.size - 8000) <= 1
    assert abs(_dominant_hz(y) - 1000) < 10
    assert 0.45 < np.max(np.abs(y[500:-500])) < 0.55


def test_stereo_is_averaged_and_channel_can_be_picked(tmp_path: Path) -> None:
    left = _tone(16000, freq=500)
    right = _tone(16000, freq=3000)
    p = tmp_path / "s.wav"
    scipy.io.wavfile.write(p, 16000, (np.stack([left, right], 1) * 32767).astype(np.int16))
    mono = read_wav(p)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=2e-4)
    assert abs(_dominant_hz(read_wav(p, channel=1)) - 3000) < 10
    with pytest.raises(WavError, match="channel 2 requested, file has 2"):
        read_wav(p, channel=2)


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnotreally")
    with pytest.raises(WavError, match="junk.wav: not a readable WAV file"):
        read_wav(junk)
    empty = tmp_path / "empty.wav"
    scipy.io.wavfile.write(empty, 16000, np.zeros(0, np.int16))
    with pytest.raises(WavError, match="empty.wav: WAV file holds no samples"):
        read_wav(empty)
    with pytest.raises(WavError, match="missing.wav: no such file"):
        read_wav(tmp_path / "missing.wav")


def test_fit_length_pads_centred_and_cuts_as_documented() -> None:
    x = np.ones(10, np.float32)
    padded = fit_length(x, 16)
    assert padded.size == 16 and padded[:3].sum() == 0 and padded[3:13].sum() == 10
    ramp = np.arange(100, dtype=np.float32)
    assert fit_length(ramp, 10, "start")[0] == 0
    assert fit_length(ramp, 10, "center")[0] == 45
    spike = np.zeros(100, np.float32)
    spike[90] = 1.0
    assert fit_length(spike, 20, "loudest")[-1] == 0 and fit_length(spike, 20, "loudest").max() == 1


def test_write_read_round_trip(tmp_path: Path) -> None:
    x = _tone(16000).astype(np.float32)
    write_wav(tmp_path / "sub" / "x.wav", x)
    np.testing.assert_allclose(read_wav(tmp_path / "sub" / "x.wav"), x, atol=1 / 16000)
