"""Front ends: `stft` is scipy's STFT, `q15` is the CMSIS-DSP call sequence, shapes are the contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from earshot import frontends as F
from earshot import quant


def _speechlike(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    f0 = 140 + 40 * np.sin(2 * np.pi * 3 * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 8))
    env = np.clip(np.sin(np.pi * t * 2), 0, None)
    return (0.3 * env * x + 0.01 * rng.standard_normal(16000)).astype(np.float32)


def test_stft_equals_scipy_stft_magnitude() -> None:
    x = _speechlike()
    fe = F.create("stft")
    _, _, z = scipy.signal.stft(x, fs=16000, nperseg=255, noverlap=124, nfft=256)
    np.testing.assert_array_equal(fe.native(x), np.abs(z).astype(np.float32))
    assert fe.native(x).shape == (129, 124)
    assert fe.features(x).shape == (124, 129) == fe.shape
    np.testing.assert_array_equal(fe.features(x), fe.native(x).T)


def test_q15_equals_step_by_step_cmsis_dsp() -> None:
    import cmsisdsp as dsp

    x = _speechlike(1)
    pcm = np.clip(np.round(x.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    half = np.round((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(129) / 256)) * 32767)
    window = np.concatenate([half, half[1:128][::-1]]).astype(np.int16)  # periodic, mirrored
    inst = dsp.arm_rfft_instance_q15()
    assert dsp.arm_rfft_init_q15(inst, 256, 0, 1) == 0
    expect = np.empty((124, 129), np.int16)
    for f in range(124):
        w = dsp.arm_mult_q15(pcm[f * 128 : f * 128 + 256], window)
        spec = dsp.arm_rfft_q15(inst, w)
        expect[f] = dsp.arm_cmplx_mag_q15(spec[:258])
    fe = F.create("q15")
    got = fe.native(x)
    assert got.dtype == np.int16 and got.shape == (124, 129) == fe.shape
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(fe.features(x), expect.astype(np.float32))


def test_q15_sees_a_tone_in_the_right_bin() -> None:
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    mag = F.create("q15").native(x)
    assert int(np.argmax(mag[60])) == round(3000 / 16000 * 256)


def test_q15_int16_input_is_taken_as_is() -> None:
    pcm = (np.random.default_rng(3).integers(-32768, 32767, 16000)).astype(np.int16)
    fe = F.create("q15")
    np.testing.assert_array_equal(fe.native(pcm), fe.native(pcm.astype(np.float32) / 32768))


def test_hann_q15_is_periodic_and_symmetric() -> None:
    w = F.hann_q15(256)
    assert w[0] == 0 and w[128] == 32767
    np.testing.assert_array_equal(w[1:128], w[255:128:-1])


def test_logmel_shape_and_tone_band() -> None:
    fe = F.create("logmel")
    assert fe.shape == (98, 40)
    t = np.arange(16000) / 16000
    lo = fe.features((0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
    hi = fe.features((0.5 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32))
    assert lo.shape == (98, 40)
    assert int(lo.mean(0).argmax()) < int(hi.mean(0).argmax())


def test_frontend_manifest_round_trip() -> None:
    for name in F.names():
        fe = F.create(name)
        again = F.from_manifest(fe.to_manifest())
        assert type(again) is type(fe) and again.params() == fe.params()


def test_unknown_frontend_and_parameter_are_named() -> None:
    with pytest.raises(F.FrontEndError, match="unknown front end 'mfcc'; choose one of"):
        F.create("mfcc")
    with pytest.raises(F.FrontEndError, match="unknown parameter\\(s\\) nfft_len"):
        F.create("stft", nfft_len=512)


def test_wrong_clip_length_is_an_error() -> None:
    with pytest.raises(F.FrontEndError, match="expected a mono clip of 16000 samples"):
        F.create("stft").features(np.zeros(8000, np.float32))


def _tflite_quantize_reference(x: int, mult: int, shift: int) -> int:
    """TFLite reference MultiplyByQuantizedMultiplier on Python ints (written from its definition)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x * (1 << left)
    ab = a * mult
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    s = ab + nudge  # C's int64 division truncates toward zero
    high = (abs(s) >> 31) * (1 if s >= 0 else -1)
    if right == 0:
        return high
    mask = (1 << right) - 1
    rem = high & mask
    thr = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if rem > thr else 0)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.7, 17.25, 130.0, 1e-3])
def test_q15_to_int8_matches_reference_arithmetic(scale: float) -> None:
    mags = np.concatenate([np.arange(0, 600), np.random.default_rng(1).integers(0, 32768, 400)])
    mult, shift = quant.quantize_multiplier(1.0 / scale)
    got = quant.q15_to_int8(mags, scale, -128)
    want = [max(-128, min(127, _tflite_quantize_reference(int(m), mult, shift) - 128)) for m in mags]
    np.testing.assert_array_equal(got, np.array(want, np.int8))
    # and it is the rounding a user expects: nearest level of the real scale
    approx = np.clip(np.round(mags / scale) - 128, -128, 127)
    assert np.max(np.abs(got.astype(int) - approx)) <= 1


def test_quantize_multiplier_represents_the_real_value() -> None:
    for real in (1e-4, 0.3, 1.0, 7.5, 1234.5):
        m, s = quant.quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (s - 31) - real) / real < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nperseg,noverlap,nfft,boundary", [
    (255, 124, 256, True),     # the stft front end
    (400, 240, 512, False),    # logmel's window
    (256, 128, 256, True), (101, 0, 128, True),
])
def test_the_scipy_fft_stft_equals_scipy_signal_stft(dtype, nperseg, noverlap, nfft, boundary):
    """F.stft avoids importing scipy (80 MB); scipy.signal.stft is the definition."""
    import scipy.signal

    x = (np.random.default_rng(3).standard_normal(16000) * 0.3).astype(dtype)
    extra = {} if boundary else {"boundary": None, "padded": False}
    _, _, want = scipy.signal.stft(x, fs=16000, window="hann", nperseg=nperseg, noverlap=noverlap,
                                   nfft=nfft, scaling="spectrum", **extra)
    got = F.stft(x, nperseg, noverlap, nfft, boundary=boundary)
    assert got.shape == want.shape and got.dtype == want.dtype
    if dtype == np.float64 or boundary:  # scipy computes in float64: equal to the bit
        np.testing.assert_array_equal(got, want)
    else:  # float32 all the way: float32 round-off
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * float(np.abs(want).max()))
