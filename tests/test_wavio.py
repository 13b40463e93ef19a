"""WAV reading: every common rate, width and channel count lands as 16 kHz mono float."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from earshot.audio import fit_length
from earshot.wavio import WavError, iter_wav, read_wav, wav_info, write_wav


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


def _pcm24(path: Path, x: np.ndarray, rate: int) -> None:
    """A 24-bit PCM WAV by hand (neither scipy nor the wave module writes one)."""
    v = np.round(np.clip(x, -1, 1 - 2**-23) * 2**23).astype(np.int32)
    data = np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 3, 3, 24)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16)
                     + fmt + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.uint8, "pcm24"])
def test_the_streaming_reader_matches_the_whole_file_reader(tmp_path: Path, rate: int, dtype) -> None:
    t = np.arange(int(rate * 1.3)) / rate
    x = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
    p = tmp_path / "x.wav"
    if dtype == "pcm24":
        _pcm24(p, x, rate)
    else:
        full = {np.int16: 32767, np.int32: 2**31 - 1, np.float32: 1.0, np.uint8: 127}[dtype]
        scipy.io.wavfile.write(p, rate, (x * full + (128 if dtype == np.uint8 else 0)).astype(dtype))
    whole = read_wav(p)
    streamed = np.concatenate(list(iter_wav(p, block_frames=999)))
    assert streamed.size == whole.size
    if rate == 16000:  # nothing to resample: the same samples
        tol = 2**-23 if dtype in (np.int32, "pcm24") else 1e-7
    else:  # two good low-pass filters differ a little; 100 samples at each end are edge effects
        tol = 3e-3 if dtype != np.uint8 else 1.5e-2
    np.testing.assert_allclose(streamed[100:-100], whole[100:-100], rtol=0, atol=tol)
    one = np.concatenate(list(iter_wav(p, block_frames=1)))
    np.testing.assert_array_equal(one, streamed)  # block size does not change the output


def test_a_long_file_streams_in_bounded_blocks(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    scipy.io.wavfile.write(p, 48000, np.zeros(48000 * 30, np.int16))
    sizes = [b.size for b in iter_wav(p, block_frames=4800)]
    assert sum(sizes) == 16000 * 30 and max(sizes) <= 1700  # 100 ms blocks, never the whole file
    assert wav_info(p).seconds == 30.0


def test_sample_rate_0_is_a_wav_error_in_both_readers(tmp_path: Path) -> None:
    p = tmp_path / "rate0.wav"
    write_wav(p, np.zeros(100))
    raw = bytearray(p.read_bytes())
    raw[24:28] = struct.pack("<I", 0)
    p.write_bytes(bytes(raw))
    with pytest.raises(WavError, match=f"^{p}: sample rate 0 in the WAV header$"):
        list(iter_wav(p))
    with pytest.raises(WavError, match=f"^{p}: .*(nSamplesPerSec = 0|sample rate 0)"):
        read_wav(p)  # scipy's own header check


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    import wave

    def full_disk(self, data):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wave.Wave_write, "writeframes", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_wav(tmp_path / "clip.wav", np.zeros(16000))
    assert list(tmp_path.iterdir()) == []
