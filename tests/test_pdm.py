"""firmware/core/es_pdm.c: PDM bits at 1.024 MHz to 16 kHz PCM, against a sigma-delta-modulated sine.

The PDM stream comes from a 2nd-order sigma-delta modulator written here (what a PDM MEMS
microphone's modulator does), so the expected signal is known exactly. Measured on this build:
a -6 dBFS 1 kHz sine comes out at 69 dB SNR (noise + distortion, 0..8 kHz); the test's floor is
60 dB, about what a 10-bit converter gives and well above a MEMS mic's own ~60-65 dB.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "firmware" / "core"
BUILD = ROOT / "build" / "tests-pdm"
PDM_RATE = 1_024_000
PCM_RATE = 16_000
ES_OK, ES_ERR_ARG, ES_ERR_SHAPE = 0, 1, 2  # es_common.h


class Config(ctypes.Structure):
    _fields_ = [("gain_q8", ctypes.c_int32), ("dc_block", ctypes.c_bool)]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / "libes_pdm.so"
    cmd = [
        "gcc", "-std=c99", "-O2", "-shared", "-fPIC",
        "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion",
        f"-I{CORE}", "-o", str(out), str(CORE / "es_pdm.c"),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"gcc failed:\n{done.stderr}"
    return ctypes.CDLL(str(out))


def sigma_delta(x: np.ndarray) -> np.ndarray:
    """2nd-order sigma-delta modulator (two integrators, 1-bit quantiser): bits as 0/1."""
    bits = np.empty(len(x), np.uint8)
    i1 = i2 = 0.0
    y = 0.0
    for n, v in enumerate(x.tolist()):
        i1 += v - y
        i2 += i1 - y
        y = 1.0 if i2 >= 0.0 else -1.0
        bits[n] = y > 0.0
    return bits


def pack(bits: np.ndarray) -> np.ndarray:
    """Bits to 32-bit words, earliest bit in the MSB (what the PIO program delivers)."""
    return np.packbits(bits).view(">u4").astype(np.uint32)


class Pdm:
    def __init__(self, lib: ctypes.CDLL, gain_q8: int = 256, dc_block: bool = False) -> None:
        self.lib = lib
        self.state = ctypes.create_string_buffer(4096)  # > sizeof(EsPdm)
        assert lib.es_pdm_init(self.state, ctypes.byref(Config(gain_q8, dc_block))) == ES_OK

    def process(self, words: np.ndarray, cap: int | None = None) -> tuple[int, np.ndarray]:
        words = np.ascontiguousarray(words, np.uint32)
        cap = len(words) // 2 + 1 if cap is None else cap
        out = np.zeros(max(cap, 1), np.int16)
        n = ctypes.c_size_t(0)
        rc = self.lib.es_pdm_process(
            self.state, words.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(len(words)),
            out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(cap), ctypes.byref(n),
        )  # fmt: skip
        return rc, out[: n.value]


def sine_fit(y: np.ndarray, freq: float) -> tuple[float, float]:
    """Least-squares fit of a sine at ``freq`` plus DC: (amplitude, SNR in dB of the residual)."""
    t = np.arange(len(y)) / PCM_RATE
    m = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], 1)
    coef, *_ = np.linalg.lstsq(m, y, rcond=None)
    signal = m[:, :2] @ coef[:2]
    residual = y - m @ coef
    return float(np.hypot(coef[0], coef[1])), float(
        10 * np.log10(np.sum(signal**2) / np.sum(residual**2))
    )


def decimate_sine(lib: ctypes.CDLL, freq: float, amp: float, seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(PDM_RATE * seconds)) / PDM_RATE
    rc, pcm = Pdm(lib).process(pack(sigma_delta(amp * np.sin(2 * np.pi * freq * t))))
    assert rc == ES_OK
    assert len(pcm) == int(PCM_RATE * seconds)
    return pcm[400:].astype(np.float64) / 32768.0  # skip the filters' start-up


def test_sigma_delta_sine_comes_out_clean_at_16khz(lib: ctypes.CDLL) -> None:
    amp, snr = sine_fit(decimate_sine(lib, 1000.0, 0.5), 1000.0)
    print(f"PDM -> PCM: 1 kHz at -6 dBFS, SNR {snr:.1f} dB, amplitude {amp:.4f}")
    assert snr > 60.0
    assert amp == pytest.approx(0.5, abs=0.005)


@pytest.mark.parametrize("freq", [200.0, 3000.0, 6500.0])
def test_passband_is_flat_across_speech_frequencies(lib: ctypes.CDLL, freq: float) -> None:
    amp, snr = sine_fit(decimate_sine(lib, freq, 0.4, seconds=0.1), freq)
    assert 20 * np.log10(amp / 0.4) == pytest.approx(0.0, abs=0.5)  # CIC droop compensated
    assert snr > 55.0


def test_tone_above_the_output_band_is_rejected_not_aliased(lib: ctypes.CDLL) -> None:
    pcm = decimate_sine(lib, 12000.0, 0.5, seconds=0.1)  # would alias to 4 kHz
    assert 20 * np.log10(np.sqrt(2) * np.std(pcm) / 0.5) < -55.0


def test_fir_taps_are_unity_at_dc_and_meet_the_documented_response(lib: ctypes.CDLL) -> None:
    taps = np.ctypeslib.as_array((ctypes.c_int16 * 95).in_dll(lib, "es_pdm_fir_taps"))
    assert int(taps.sum()) == 32768
    assert np.array_equal(taps, taps[::-1])  # linear phase
    w, h = scipy.signal.freqz(taps / 32768.0, worN=8192, fs=64000)
    x = np.pi * w / PDM_RATE
    cic = np.abs(np.sin(16 * x[1:]) / (16 * np.sin(x[1:]))) ** 4
    total = 20 * np.log10(np.abs(h[1:]) * cic)
    f = w[1:]
    assert total[f <= 7000].max() < 0.2 and total[f <= 7000].min() > -0.4
    assert total[f >= 9000].max() < -60.0


def test_split_input_gives_the_same_samples_as_one_call(lib: ctypes.CDLL) -> None:
    rng = np.random.default_rng(1)
    words = pack(sigma_delta(0.3 * rng.standard_normal(64 * 1000).clip(-2, 2) / 2))
    _, whole = Pdm(lib).process(words)
    pdm = Pdm(lib)
    parts = []
    for chunk in np.array_split(words, [1, 2, 7, 300, 301, 640]):
        rc, part = pdm.process(chunk)
        assert rc == ES_OK
        parts.append(part)
    assert np.array_equal(np.concatenate(parts), whole)


def test_full_scale_saturates_and_gain_scales(lib: ctypes.CDLL) -> None:
    ones = np.full(64, 0xFFFFFFFF, np.uint32)
    _, pcm = Pdm(lib).process(ones)
    assert pcm[-1] == 32767  # all ones is +full scale
    _, zeros = Pdm(lib).process(np.zeros(64, np.uint32))
    assert zeros[-1] == -32768
    t = np.arange(PDM_RATE // 20) / PDM_RATE
    words = pack(sigma_delta(0.1 * np.sin(2 * np.pi * 1000 * t)))
    _, unity = Pdm(lib).process(words)
    _, quad = Pdm(lib, gain_q8=4 * 256).process(words)
    assert np.std(quad[200:]) / np.std(unity[200:]) == pytest.approx(4.0, rel=0.01)


def test_dc_blocker_removes_the_offset_a_pdm_mic_carries(lib: ctypes.CDLL) -> None:
    t = np.arange(PDM_RATE) / PDM_RATE
    words = pack(sigma_delta(0.2 + 0.1 * np.sin(2 * np.pi * 500 * t)))
    _, raw = Pdm(lib).process(words)
    _, blocked = Pdm(lib, dc_block=True).process(words)
    assert np.mean(raw[8000:]) / 32768 == pytest.approx(0.2, abs=0.01)
    assert abs(np.mean(blocked[8000:]) / 32768) < 0.002
    assert np.std(blocked[8000:]) / np.std(raw[8000:]) == pytest.approx(1.0, abs=0.02)


def test_bad_arguments_are_refused_and_consume_nothing(lib: ctypes.CDLL) -> None:
    state = ctypes.create_string_buffer(4096)
    assert lib.es_pdm_init(state, ctypes.byref(Config(0, False))) == ES_ERR_ARG
    assert lib.es_pdm_init(None, ctypes.byref(Config(256, False))) == ES_ERR_ARG
    pdm = Pdm(lib)
    words = np.full(4, 0xFFFFFFFF, np.uint32)
    assert pdm.process(words, cap=2)[0] == ES_ERR_SHAPE
    _, fresh = Pdm(lib).process(words)
    rc, after = pdm.process(words)
    assert rc == ES_OK and np.array_equal(after, fresh)
