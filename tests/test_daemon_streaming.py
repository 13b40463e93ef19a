"""Streaming pieces: resampler, DC blocker, level gate, ring buffer, windows, detector rules."""

from __future__ import annotations

import numpy as np
import pytest

from daemon import config
from daemon.inference import Classifier
from daemon.sources.conditioning import DcBlocker, MicConditioner, StreamingResampler
from daemon.streaming import (
    Recogniser,
    RingBuffer,
    SilenceGate,
    choose_window,
    detector_config,
    levels,
)
from earshot.bundle import load_bundle
from earshot.detector import Detector, DetectorConfig
from tests.test_daemon_helpers import FS, tone_bundle, tone_stream


def _peak_hz(x: np.ndarray, fs: int = FS) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * fs / x.size)


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 8000])
def test_resampler_is_chunk_invariant_and_keeps_the_pitch(rate: int):
    t = np.arange(rate * 2) / rate
    x = 0.5 * np.sin(2 * np.pi * 1000 * t)
    whole = StreamingResampler(rate).process(x)
    r = StreamingResampler(rate)
    sizes = np.random.default_rng(1).integers(1, 3000, 200)
    parts, pos = [], 0
    for n in sizes:
        parts.append(r.process(x[pos : pos + n]))
        pos += n
    parts.append(r.process(x[pos:]))
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert whole.size == 2 * FS
    assert _peak_hz(whole[FS // 2 :]) == pytest.approx(1000, abs=2)
    assert np.abs(whole[FS // 2 :]).max() == pytest.approx(0.5, abs=0.01)


def test_resampler_rejects_aliases():
    t = np.arange(48000) / 48000
    y = StreamingResampler(48000).process(np.sin(2 * np.pi * 12000 * t))  # above 8 kHz Nyquist
    assert np.abs(y[2000:]).max() < 0.01


def test_dc_blocker_removes_the_offset_across_chunks():
    t = np.arange(48000) / 48000
    x = 0.2 + 0.05 * np.sin(2 * np.pi * 440 * t)
    dc = DcBlocker(20.0, 48000)
    y = np.concatenate([dc.process(c) for c in np.array_split(x, 37)])
    assert abs(y[24000:].mean()) < 1e-3
    assert np.abs(y[24000:]).max() == pytest.approx(0.05, rel=0.02)


def test_mic_conditioner_sph0645_frames():
    """32-bit stereo, live right channel with DC, startup discarded, gain applied, 48 -> 16 kHz."""
    mic = config.MicSettings(channel=1, gain_db=6.0206, discard_ms=100)
    t = np.arange(48000) / 48000
    live = 0.3 + 0.1 * np.sin(2 * np.pi * 1000 * t)
    frames = np.stack([np.full_like(live, -0.9), live], 1)
    data = (frames * 2**31).astype("<i4").tobytes()
    cond = MicConditioner(mic)
    y = np.concatenate([cond.process(data[i : i + 8 * 960]) for i in range(0, len(data), 8 * 960)])
    assert y.size == pytest.approx(FS * 0.9, abs=2)
    tail = y[FS // 2 :]
    assert abs(tail.mean()) < 2e-3
    assert np.abs(tail).max() == pytest.approx(0.2, rel=0.03)
    assert _peak_hz(tail) == pytest.approx(1000, abs=5)


def test_levels_and_gate_work_on_dc_free_and_dc_signals():
    t = np.arange(FS) / FS
    sine = 0.1 * np.sin(2 * np.pi * 440 * t)
    p2p, rms = levels(sine)
    assert p2p == pytest.approx(-20.0, abs=0.05) and rms == pytest.approx(-20.0, abs=0.05)
    gate = SilenceGate(-50.0, -65.0)
    assert gate.is_open(*levels(sine))
    assert not gate.is_open(*levels(np.zeros(FS)))
    assert not gate.is_open(*levels(np.full(FS, 0.5)))  # a DC offset alone is silence
    assert gate.is_open(*levels(sine + 0.5))  # and does not hide a sound
    assert not gate.is_open(*levels(1e-4 * sine))  # -100 dBFS


def test_ring_buffer_keeps_the_latest_samples():
    rb = RingBuffer(10)
    rb.write(np.arange(4))
    rb.write(np.arange(4, 13))
    np.testing.assert_array_equal(rb.latest(10), np.arange(3, 13))
    rb.write(np.arange(13, 40))
    np.testing.assert_array_equal(rb.latest(5), np.arange(35, 40))
    assert rb.total == 40
    with pytest.raises(ValueError):
        rb.latest(11)


def test_window_choice():
    buf = np.zeros(24000, np.float32)
    buf[12000] = 1.0
    np.testing.assert_array_equal(choose_window(buf, FS, "sliding"), buf[-FS:])
    w = choose_window(buf, FS, "loudest")
    assert w.size == FS and w[FS // 2] == 1.0
    buf[:] = 0
    buf[100] = 1.0  # near the start: clamped into the buffer
    assert choose_window(buf, FS, "loudest")[100] == 1.0


# -- detector rules (earshot.detector, pure logic) --

def _det(**kw) -> Detector:
    cfg = dict(labels=("bg", "yes", "no"), thresholds=(0.5, 0.7, 0.7), average_window_ms=300,
               min_count=2, suppression_ms=1000, ignore=frozenset({"bg"}))
    cfg.update(kw)
    return Detector(DetectorConfig(**cfg))


def test_detector_fires_once_per_event_and_honours_suppression():
    d = _det()
    fired = []
    for t in range(0, 5000, 100):
        event = 1000 <= t < 1600 or 1900 <= t < 2200 or 3500 <= t < 3900
        s = (0.0, 0.95, 0.05) if event else (1.0, 0.0, 0.0)
        r = d.update(t, s)
        if r:
            fired.append((r.label, r.t_ms))
    # the second event (1900-2100 ms) is inside the 1000 ms suppression after 1200 ms
    assert fired == [("yes", 1200), ("yes", 3700)]


def test_detector_rejects_backwards_time_and_bad_lengths():
    d = _det()
    d.update(500, (1, 0, 0))
    with pytest.raises(ValueError, match="backwards"):
        d.update(400, (1, 0, 0))
    with pytest.raises(ValueError, match="got 2 scores for 3 labels"):
        d.update(600, (1, 0))


def _fired(d: Detector, times: range, scores: tuple[float, ...]) -> list[tuple[str, int]]:
    return [(r.label, r.t_ms) for t in times if (r := d.update(t, scores))]


def test_model_swap_keeps_the_suppression_of_a_label_that_still_exists():
    """SIGHUP swaps the model mid-event: the label that just fired stays quiet for the rest of
    its suppression time under the new detector; a fresh detector would report it again."""
    old = _det()
    assert _fired(old, range(0, 200, 100), (0.0, 0.95, 0.05)) == [("yes", 100)]
    cfg = DetectorConfig(labels=("bg", "yes", "stop"), thresholds=(0.5, 0.7, 0.7),
                         average_window_ms=300, min_count=2, suppression_ms=1000,
                         ignore=frozenset({"bg"}))  # fmt: skip
    still_yes = range(200, 1500, 100)
    assert _fired(Detector(cfg), still_yes, (0.0, 0.95, 0.05)) == [("yes", 300), ("yes", 1300)]
    carried = old.carry_over(cfg)
    assert _fired(carried, still_yes, (0.0, 0.95, 0.05)) == [("yes", 1100)]
    with pytest.raises(ValueError, match="backwards"):
        old.carry_over(cfg).update(50, (1, 0, 0))  # the same stream: time goes on


def test_model_swap_drops_the_clock_of_a_label_that_no_longer_exists():
    old = _det()
    assert _fired(old, range(0, 200, 100), (0.0, 0.05, 0.95)) == [("no", 100)]
    cfg = DetectorConfig(labels=("bg", "yes", "stop"), thresholds=(0.5, 0.7, 0.7),
                         average_window_ms=300, min_count=2, suppression_ms=1000,
                         ignore=frozenset({"bg"}))  # fmt: skip
    carried = old.carry_over(cfg)  # "no" is gone: "stop" may fire at once
    assert _fired(carried, range(200, 500, 100), (0.0, 0.05, 0.95)) == [("stop", 300)]


def test_detector_config_from_bundle_ignores_background_and_checks_names():
    b = load_bundle(tone_bundle())
    cfg = detector_config(b, config.DetectorSettings(threshold_offset=0.1))
    assert cfg.ignore == frozenset({"_background_"})
    assert cfg.thresholds == pytest.approx((0.6, 0.8, 0.8))
    with pytest.raises(config.ConfigError, match=r"detector.ignore .* unknown label\(s\) bark"):
        detector_config(b, config.DetectorSettings(ignore=["bark"]))


# -- the recogniser, in process, on the tone bundle --

def test_recogniser_detects_each_event_within_budget_and_nothing_else():
    onsets = [(2.0, "low_tone"), (4.37, "high_tone"), (7.81, "low_tone")]
    audio = tone_stream(onsets, 11.0, negatives=[6.0], silence=[(9.0, 11.0)])
    b = load_bundle(tone_bundle())
    rec = Recogniser(Classifier(b), Detector(detector_config(b, config.DetectorSettings())),
                     config.StreamSettings())
    results = []
    for chunk in np.array_split(audio, 173):  # odd chunk sizes: hops fall inside chunks
        results += rec.feed(chunk)
    assert [r.t_ms for r in results] == list(range(100, 11001, 100))
    hits = [(r.detection.label, r.detection.t_ms) for r in results if r.detection]
    assert [h[0] for h in hits] == [label for _, label in onsets]
    for (onset, _), (_, t_ms) in zip(onsets, hits, strict=True):
        assert 0 < t_ms - onset * 1000 <= 500
    silent = [r for r in results if r.t_ms > 10100]
    assert silent and all(r.scores is None for r in silent)  # gate closed: no inference


@pytest.mark.parametrize("corner,rate", [(20.0, 48000), (500.0, 8000), (100.0, 16000)])
def test_the_numpy_dc_blocker_equals_scipy_lfilter_across_chunks(corner, rate):
    """The mic path avoids scipy.signal (52 MB); lfilter with lfiltic is the definition."""
    import scipy.signal

    x = 0.3 + np.random.default_rng(1).standard_normal(3 * rate) * 0.1
    a = np.exp(-2 * np.pi * corner / rate)
    zi = scipy.signal.lfiltic([1.0, -1.0], [1.0, -a], y=[0.0], x=[x[0]])
    want, _ = scipy.signal.lfilter([1.0, -1.0], [1.0, -a], x, zi=zi)
    dc = DcBlocker(corner, rate)
    got = np.concatenate([dc.process(x[i : i + 777]) for i in range(0, x.size, 777)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_the_resampler_filter_is_scipy_firwin():
    import scipy.signal

    from earshot.audio import lowpass_kaiser
    for n, cutoff in [(24, 0.95), (72, 0.95 / 3), (24 * 160, 0.95 / 441)]:
        want = scipy.signal.firwin(n, cutoff, window=("kaiser", 8.0))
        np.testing.assert_allclose(lowpass_kaiser(n, cutoff, 8.0), want, rtol=0, atol=1e-15)
