"""es_host, the firmware's block loop on a PC: WAV in, detections out.

With the test model (firmware/host/test_model: labels [background, tone], a fixed rule), the
whole chain — streaming q15 front end, int8 input, model, detector — is mirrored in Python from
earshot.frontends and earshot.detector, and the program must print exactly the detections the
mirror finds: same labels, same times, same scores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from earshot import audio, frontends, quant, wavio
from earshot.detector import Detector, DetectorConfig
from trainer import firmware_build as fb

BLOCK = 512
CLIP = 16000
RATE = 16000
DETECTOR_ARGS = ["--threshold", "179", "--ignore", "0", "--window-ms", "1000",
                 "--min-count", "3", "--suppression-ms", "1500"]


@pytest.fixture(scope="module")
def es_host() -> Path:
    return fb.host_build(sanitize=True).es_host


def test_model_levels(spectrogram: np.ndarray) -> list[float]:
    """Python mirror of es_test_model.c on one (124, 129) magnitude window."""
    q = quant.q15_to_int8(spectrogram, 4.0, -128).astype(np.int64) + 128
    best = int(min(255, (q[-16:].sum(axis=0) // 16).max()))
    return [(255 - best) / 256, best / 256]


def mirror(pcm: np.ndarray) -> list[str]:
    """The detections the firmware loop should print for pcm, computed in Python."""
    fe = frontends.Q15FrontEnd()
    blocks = len(pcm) // BLOCK
    padded = np.concatenate([np.zeros(CLIP, np.int16), pcm[: blocks * BLOCK]])
    frames = np.array([fe.frame(padded[j * 128 : j * 128 + 256])
                       for j in range((len(padded) - 256) // 128 + 1)])
    det = Detector(DetectorConfig(labels=("background", "tone"), thresholds=(179 / 256,) * 2,
                                  ignore=frozenset({"background"})))
    lines = []
    for b in range(blocks):
        end = BLOCK * (b + 1)  # padded offset where this window's first frame starts
        window = frames[end // 128 : end // 128 + 124]
        d = det.update((b + 1) * 32, test_model_levels(window))
        if d is not None:
            lines.append(f"{d.t_ms} {d.label} {d.score:.4f}")
    return lines


def tone_stream(events: list[tuple[float, float]], seconds: float, seed: int = 0) -> np.ndarray:
    """Low background noise with 1 kHz tones (amplitude 0.3) at the given (start, end) seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = rng.normal(0, 0.01, t.size)
    for start, end in events:
        on = (t >= start) & (t < end)
        x[on] += 0.3 * np.sin(2 * np.pi * 1000 * t[on])
    return audio.to_int16(x)


def run(es_host: Path, wav: Path, *extra: str) -> list[str]:
    proc = fb.run_host(es_host, *DETECTOR_ARGS, *extra, str(wav))
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().splitlines()


test_model_levels.__test__ = False  # a helper, not a test


def test_detects_each_tone_once_at_the_right_time(es_host, tmp_path) -> None:
    events = [(1.0, 2.5), (4.5, 5.7)]
    pcm = tone_stream(events, 7.0)
    wav = tmp_path / "tones.wav"
    wavio.write_wav(wav, pcm)
    got = run(es_host, wav)
    assert got == mirror(pcm)
    assert len(got) == 2, got
    for line, (start, end) in zip(got, events, strict=True):
        t_ms, label, score = line.split()
        assert label == "tone"
        assert start * 1000 < int(t_ms) < end * 1000 + 500, line  # within the event (+latency)
        assert float(score) >= 179 / 256


def test_no_detection_on_noise_or_silence(es_host, tmp_path) -> None:
    wav = tmp_path / "quiet.wav"
    wavio.write_wav(wav, tone_stream([], 4.0, seed=3))
    assert run(es_host, wav) == []
    silent = tmp_path / "silent.wav"
    wavio.write_wav(silent, np.zeros(3 * RATE, np.int16))
    assert run(es_host, silent) == []


def test_suppression_merges_close_events(es_host, tmp_path) -> None:
    """Two tones 0.3 s apart are one event under 1.5 s suppression, several without it."""
    pcm = tone_stream([(1.0, 1.8), (2.1, 2.9)], 5.0, seed=1)
    wav = tmp_path / "close.wav"
    wavio.write_wav(wav, pcm)
    got = run(es_host, wav)
    assert got == mirror(pcm)
    assert len(got) == 1
    assert len(run(es_host, wav, "--suppression-ms", "0")) > 1


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: wavio.write_wav(p, np.zeros(8000, np.int16), rate=8000), "16 kHz mono 16-bit"),
        (lambda p: p.write_bytes(b"not a wav file at all"), "not a RIFF/WAVE file"),
        (lambda p: p.write_bytes(b"RIFF\x04\x00\x00\x00WAVE"), "no data chunk"),
        (lambda p: None, "cannot open"),
    ],
)
def test_bad_wav_is_a_clear_error_naming_the_file(es_host, tmp_path, make, message) -> None:
    wav = tmp_path / "bad input.wav"
    make(wav)
    proc = fb.run_host(es_host, str(wav))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert str(wav) in err and message in err, err


def test_stereo_wav_is_refused(es_host, tmp_path) -> None:
    import wave

    wav = tmp_path / "stereo.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.zeros(2 * RATE, np.int16).tobytes())
    proc = fb.run_host(es_host, str(wav))
    assert proc.returncode == 1
    assert "2 channel(s)" in proc.stderr.decode()


def test_bad_options_exit_2_with_usage(es_host) -> None:
    for args in (["--threshold", "300", "x.wav"], ["--bogus", "1", "x.wav"], []):
        proc = fb.run_host(es_host, *args)
        assert proc.returncode == 2, args
        assert b"usage: es_host" in proc.stderr


MODEL_3 = """
#include "es_model.h"
static const char *const LABELS[] = {"a", "b", "c"};
const EsModelInfo es_model_info = {
    .labels = LABELS, .n_labels = 3, .n_outputs = 3, .input_frames = 124, .input_bins = 129,
    .input_scale = 1.0f, .input_zero_point = 0, .input_multiplier = 1073741824,
    .input_shift = 1, .output_scale = 1.0f / 256.0f, .output_zero_point = -128,
    .sha256 = "", .arena_bytes = 0,
};
static const uint16_t THRESHOLDS[] = {128u, 128u, 128u};
const EsModelPolicy es_model_policy = {
    .thresholds = THRESHOLDS, .ignore_mask = 0u, .average_window_ms = 1000u, .min_count = 3u,
    .suppression_ms = 1500u, .max_history = 32u,
};
/* always label "c" with certainty */
EsStatus es_model_invoke(const int8_t *input, int8_t *output)
{
    if (input == 0 || output == 0) {
        return ES_ERR_ARG;
    }
    output[0] = -128;
    output[1] = -128;
    output[2] = 127;
    return ES_OK;
}
EsStatus es_model_invoke_stream(const int8_t *input, int8_t *output)
{
    return es_model_invoke(input, output);
}
"""


@pytest.mark.slow
def test_model_comes_from_es_model_dir(tmp_path) -> None:
    """The host program is built against whatever model folder ES_MODEL_DIR names."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "es_model_data.c").write_text(MODEL_3)
    host = fb.host_build(model, sanitize=False).es_host
    wav = tmp_path / "any.wav"
    wavio.write_wav(wav, np.zeros(2 * RATE, np.int16))
    proc = fb.run_host(host, "--threshold", "200", str(wav))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == ["96 c 0.9961", "1600 c 0.9961"]


@pytest.mark.slow
def test_compiled_keyword_model_runs_as_the_interpreters_say(rp2040_bundle, synth_root,
                                                            tmp_path) -> None:
    """The trained RP2040 bundle, compiled to C (`earshot-train compile`), in the block loop.

    For every block: the int8 input equals daemon.inference's (q15_to_int8 with the manifest's
    quantisation) and the scores equal the tflite-micro interpreter's on that input; the
    detections equal the Python detector's on those scores, with the policy the daemon computes
    for the bundle (earshot.detector.device_policy of daemon.streaming.detector_config).
    """
    from tflite_micro.python.tflite_micro import runtime

    from daemon.inference import Classifier
    from earshot.bundle import load_bundle

    model_dir = tmp_path / "model"
    proc = subprocess.run([sys.executable, "-m", "trainer", "compile", str(rp2040_bundle),
                           "--out", str(model_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    host = fb.host_build(model_dir, sanitize=True).es_host

    clf = Classifier(load_bundle(rp2040_bundle))
    labels = list(clf.labels)
    pieces = []
    spoken = [x for x in labels if not x.startswith("_")]  # _silence_/_unknown_ have no folder
    for label in spoken[:4]:
        wav = sorted((synth_root / "keywords" / label).glob("*.wav"))[0]
        pieces += [audio.to_int16(wavio.read_wav(wav)), np.zeros(RATE // 2, np.int16)]
    pcm = np.concatenate(pieces)
    wav = tmp_path / "keywords.wav"
    wavio.write_wav(wav, pcm)
    trace, last_input = tmp_path / "trace.txt", tmp_path / "input.bin"
    proc2 = fb.run_host(host, "--trace", str(trace), "--input", str(last_input), str(wav),
                        timeout=300)  # the detector: the policy compiled into the model
    assert proc2.returncode == 0, proc2.stderr.decode()

    tflm = runtime.Interpreter.from_file(str(clf.bundle.model_path))
    from daemon.config import DetectorSettings
    from daemon.streaming import detector_config
    from earshot.detector import device_policy

    det = Detector(device_policy(detector_config(clf.bundle, DetectorSettings())))  # the daemon's
    blocks = len(pcm) // BLOCK
    padded = np.concatenate([np.zeros(CLIP, np.int16), pcm[: blocks * BLOCK]])
    c_levels = np.loadtxt(trace, dtype=np.int64, ndmin=2)
    assert c_levels.shape == (blocks, 1 + len(labels))
    want = []
    for b in range(blocks):
        x = clf.input_tensor(padded[BLOCK * (b + 1) : BLOCK * (b + 1) + CLIP])
        tflm.set_input(x, 0)
        tflm.invoke()
        levels = tflm.get_output(0).reshape(-1).astype(np.int64) + 128
        assert c_levels[b, 0] == (b + 1) * 32
        np.testing.assert_array_equal(c_levels[b, 1:], levels, err_msg=f"block {b}")
        d = det.update((b + 1) * 32, levels / 256)
        if d is not None:
            want.append(f"{d.t_ms} {d.label} {d.score:.4f}")
    np.testing.assert_array_equal(np.fromfile(last_input, np.int8), x.reshape(-1))
    assert proc2.stdout.decode().splitlines() == want
    assert want, "the keywords should give at least one detection"
