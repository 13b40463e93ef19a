"""Helpers for the daemon tests: a hand-weighted tone bundle, test streams, a daemon launcher.

The tone bundle is a real TFLite model (built with TensorFlow once per session, cached under
build/) whose weights are set by hand: the loudest STFT frame's energy around 1 kHz means
"low_tone", around 3 kHz "high_tone", else "_background_". Deterministic and instant, so the
streaming, timing and output tests do not depend on training; the trained fixture bundles from
conftest.py are used in the slow end-to-end test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from earshot.bundle import sha256_file, write_manifest
from earshot.wavio import write_wav

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "test-daemon"
LABELS = ["_background_", "low_tone", "high_tone"]
FS = 16000
TONE_HZ = {"low_tone": 1000.0, "high_tone": 3000.0}
TIMEOUT_S = 120


def _tone_model(path: Path) -> None:
    import tensorflow as tf

    inp = tf.keras.Input((124, 129, 1), batch_size=1)
    x = tf.keras.layers.MaxPooling2D((124, 1))(inp)  # loudest frame per bin: position-free
    x = tf.keras.layers.Reshape((129,))(x)
    dense = tf.keras.layers.Dense(3, activation="softmax")
    model = tf.keras.Model(inp, dense(x))
    w = np.zeros((129, 3), np.float32)
    w[14:19, 1] = 100.0  # bins 14-18 = 875-1125 Hz (62.5 Hz per bin)
    w[46:51, 2] = 100.0  # 2875-3125 Hz
    dense.set_weights([w, np.array([3.0, 0.0, 0.0], np.float32)])
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def tone_bundle(folder: Path | None = None, name: str = "tones") -> Path:
    """A valid Pi bundle of the tone model (model built once and cached under build/)."""
    model = BUILD / "tone_model_v1.tflite"
    if not model.is_file():
        BUILD.mkdir(parents=True, exist_ok=True)
        tmp = model.with_suffix(f".tmp{os.getpid()}")
        _tone_model(tmp)
        os.replace(tmp, model)
    folder = folder or BUILD / f"bundle-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / "model.tflite")
    write_manifest(folder, {
        "format_version": 1, "name": name, "target": "pi", "model_file": "model.tflite",
        "model_sha256": sha256_file(folder / "model.tflite"), "architecture": "hand_tones",
        "labels": LABELS, "sample_rate": FS, "clip_samples": FS,
        "frontend": {"name": "stft", "params": {}},
        "input": {"shape": [1, 124, 129, 1], "dtype": "float32"},
        "output": {"shape": [1, 3], "dtype": "float32", "activation": "softmax"},
        "thresholds": {"low_tone": 0.7, "high_tone": 0.7},
    })
    return folder


def tone_stream(events: list[tuple[float, str]], duration_s: float, seed: int = 0,
                noise_dbfs: float = -45.0, silence: list[tuple[float, float]] = (),
                negatives: list[float] = ()) -> np.ndarray:
    """Pink-ish noise with 400 ms tone bursts at the given onsets (s), digital silence in the
    ``silence`` spans, and 400 ms 2 kHz bursts (a sound that is neither label) at ``negatives``."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FS)
    noise = np.cumsum(rng.standard_normal(n)) * 0.02
    noise -= np.convolve(noise, np.ones(801) / 801, mode="same")  # drift removed: pinkish
    noise *= 10 ** (noise_dbfs / 20) / (np.std(noise) * np.sqrt(2))
    out = noise.astype(np.float64)
    burst = int(0.4 * FS)
    t = np.arange(burst) / FS
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    bursts = [(onset, TONE_HZ[label]) for onset, label in events] + [(o, 2000.0) for o in negatives]
    for onset, hz in bursts:
        a = int(onset * FS)
        k = min(burst, n - a)
        out[a : a + k] += (0.3 * env * np.sin(2 * np.pi * hz * t))[:k]
    for a, b in silence:
        out[int(a * FS) : int(b * FS)] = 0.0
    return out.astype(np.float32)


def write_stream(path: Path, audio: np.ndarray) -> Path:
    write_wav(path, audio)
    return path


def earshotd(*args: str, png_dir: Path | None = None, env: dict | None = None,
             timeout: float = TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    """Run earshotd (with the OLED on the fake I2C bus when png_dir is given)."""
    cmd = _command(args, png_dir)
    proc = subprocess.run(cmd, cwd=REPO, env=_env(env), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n--- stderr ---\n"
                             f"{proc.stderr[-6000:]}\n--- stdout ---\n{proc.stdout[-2000:]}")
    return proc


def spawn(*args: str, png_dir: Path | None = None, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(_command(args, png_dir), cwd=REPO, env=_env(env), text=True, **kw)


def _command(args, png_dir) -> list[str]:
    if png_dir is not None:
        return [sys.executable, "-m", "daemon.oled_capture", str(png_dir), *args]
    return [sys.executable, "-m", "daemon", *args]


def _env(extra: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID",
                        "JOURNAL_STREAM")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def base_args(bundle: Path, wav: Path, *more: str) -> list[str]:
    """`run` arguments for a fast WAV-sourced daemon with no config file and no real OLED."""
    return ["run", "--config", str(BUILD / "empty.toml"), "--model-bundle", str(bundle),
            "--source-kind", "wav", "--source-wav", str(wav), "--no-source-realtime",
            "--output-journal", "off", *more]


def empty_config() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    p = BUILD / "empty.toml"
    p.write_text("# all defaults\n")
    return p


def test_tone_bundle_tells_the_tones_apart():
    """The helper model itself: each tone gets its label, noise and a 2 kHz tone get none."""
    from daemon.inference import Classifier
    from earshot.bundle import load_bundle

    clf = Classifier(load_bundle(tone_bundle()))
    for label in TONE_HZ:
        clip = tone_stream([(0.7, label)], 1.0)
        assert clf.labels[int(np.argmax(clf.scores(clip)))] == label
    assert clf.labels[int(np.argmax(clf.scores(tone_stream([], 1.0, negatives=[0.3]))))] == "_background_"
