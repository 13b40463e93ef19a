"""Bundle contract: a good bundle loads and classifies; every kind of bad bundle says what is wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from daemon.inference import Classifier
from earshot.bundle import BundleError, load_bundle, sha256_file, write_manifest
from earshot.wavio import write_wav

LABELS = ["low", "high"]


def _tiny_tflite(path: Path) -> None:
    """A fixed (untrained) float model over stft features: energy in low vs high bins."""
    import tensorflow as tf

    inp = tf.keras.Input((124, 129, 1), batch_size=1)
    x = tf.keras.layers.AveragePooling2D((124, 1))(inp)  # (1, 1, 129, 1): mean over time
    x = tf.keras.layers.Reshape((129,))(x)
    dense = tf.keras.layers.Dense(2, activation="softmax")
    out = dense(x)
    model = tf.keras.Model(inp, out)
    w = np.zeros((129, 2), np.float32)
    w[:40, 0] = 400.0  # low bins -> "low"
    w[40:, 1] = 400.0  # high bins -> "high"
    dense.set_weights([w, np.zeros(2, np.float32)])
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("model") / "model.tflite"
    _tiny_tflite(p)
    return p


def _make_bundle(folder: Path, model_file: Path, **over) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, folder / "model.tflite")
    m = {
        "format_version": 1,
        "name": "tiny",
        "target": "pi",
        "model_file": "model.tflite",
        "model_sha256": sha256_file(folder / "model.tflite"),
        "labels": LABELS,
        "sample_rate": 16000,
        "clip_samples": 16000,
        "frontend": {"name": "stft", "params": {}},
        "input": {"shape": [1, 124, 129, 1], "dtype": "float32"},
        "output": {"shape": [1, 2], "dtype": "float32", "activation": "softmax"},
        "thresholds": {"low": 0.5, "high": 0.5},
    }
    m.update(over)
    write_manifest(folder, m)
    return folder


def test_good_bundle_classifies_tones(tmp_path: Path, model_file: Path) -> None:
    b = load_bundle(_make_bundle(tmp_path / "b", model_file))
    clf = Classifier(b)
    t = np.arange(16000) / 16000
    low = clf.scores((0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32))
    high = clf.scores((0.3 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32))
    assert low.argmax() == 0 and high.argmax() == 1
    assert abs(float(low.sum()) - 1) < 1e-5


def test_classify_cli_prints_the_json_contract(tmp_path: Path, model_file: Path) -> None:
    bundle = _make_bundle(tmp_path / "b", model_file)
    t = np.arange(24000) / 16000
    write_wav(tmp_path / "hi.wav", 0.3 * np.sin(2 * np.pi * 5000 * t))
    (tmp_path / "bad.wav").write_bytes(b"nope")
    r = subprocess.run(
        [sys.executable, "-m", "daemon", "classify", "--model", str(bundle), "--json",
         str(tmp_path / "hi.wav"), str(tmp_path / "bad.wav")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1, r.stderr  # one bad file: reported, the good one still scored
    line = json.loads(r.stdout.strip().splitlines()[0])
    assert {"file", "label", "score", "scores"} <= set(line)  # 1.5 s: also "detections"
    assert line["label"] == "high" and set(line["scores"]) == set(LABELS)
    assert "bad.wav: not a readable WAV file" in r.stderr


def test_daemon_classify_does_not_import_tensorflow(tmp_path: Path, model_file: Path) -> None:
    bundle = _make_bundle(tmp_path / "b", model_file)
    write_wav(tmp_path / "x.wav", np.zeros(16000))
    code = (
        "import sys; from daemon.__main__ import main; "
        f"rc = main(['classify', '--model', {str(bundle)!r}, {str(tmp_path / 'x.wav')!r}]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: (d / "model.tflite").write_bytes(b"x" + (d / "model.tflite").read_bytes()),
         "model_sha256 mismatch"),
        (lambda d: (d / "model.tflite").unlink(), "model file model.tflite is missing"),
        (lambda d: (d / "manifest.json").write_text("{"), "manifest.json is not valid JSON"),
        (lambda d: (d / "manifest.json").unlink(), "missing manifest.json"),
    ],
)
def test_broken_bundles_are_refused_with_the_reason(tmp_path: Path, model_file: Path, mutate, message) -> None:
    d = _make_bundle(tmp_path / "b", model_file)
    mutate(d)
    with pytest.raises(BundleError, match=message):
        load_bundle(d)


def test_shape_and_frontend_mismatches_are_named(tmp_path: Path, model_file: Path) -> None:
    d = _make_bundle(tmp_path / "a", model_file, frontend={"name": "logmel", "params": {}})
    with pytest.raises(BundleError, match=r"input shape \[1, 124, 129, 1\] does not match front end 'logmel'"):
        load_bundle(d)
    d = _make_bundle(tmp_path / "b", model_file, frontend={"name": "mfcc", "params": {}})
    with pytest.raises(BundleError, match="unknown front end 'mfcc'"):
        load_bundle(d)
    d = _make_bundle(tmp_path / "c", model_file, labels=["a", "b", "c"], thresholds={})
    with pytest.raises(BundleError, match="model has 2 outputs, manifest lists 3 labels"):
        Classifier(load_bundle(d))
    d = _make_bundle(tmp_path / "d", model_file, format_version=9)
    with pytest.raises(BundleError, match="format_version 9 is not supported"):
        load_bundle(d)
    d = _make_bundle(tmp_path / "e", model_file, thresholds={"loud": 0.5})
    with pytest.raises(BundleError, match="thresholds for unknown label\\(s\\) loud"):
        load_bundle(d)


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def _rewrite(d: Path, **over) -> None:
    write_manifest(d, {**_manifest(d), **over})


def _corrupt_but_consistent(d: Path) -> None:
    (d / "model.tflite").write_bytes(b"\0not a flatbuffer" * 100)
    _rewrite(d, model_sha256=sha256_file(d / "model.tflite"))


@pytest.mark.parametrize("mutate,message", [
    (lambda d: (d / "manifest.json").write_bytes(
        (d / "manifest.json").read_bytes().replace(b'"tiny"', b'"t\xefny"')),
     "{d}/manifest.json: not UTF-8 text (byte 0xef at offset"),
    (lambda d: _rewrite(d, input="float32"), "bundle {d}: manifest.json input must be an object"),
    (lambda d: _rewrite(d, labels=[0, 1], thresholds={}),
     "bundle {d}: manifest.json labels must be a non-empty list of distinct label names"),
    (lambda d: _rewrite(d, thresholds={"low": "0.5"}),
     "bundle {d}: manifest.json thresholds must be an object {{label: number from 0 to 1}}, "
     "got {{'low': '0.5'}}"),
    (lambda d: _rewrite(d, frontend={"name": "stft", "params": {"noverlap": 300}}),
     "bundle {d}: manifest.json frontend: stft: noverlap must be from 0 to nperseg - 1 (254), "
     "got 300"),
    (lambda d: _rewrite(d, frontend={"name": "stft", "params": {"nfft": "256"}}),
     "bundle {d}: manifest.json frontend: front end 'stft': parameter nfft must be an integer"),
    (lambda d: _rewrite(d, model_file="../../../../etc/hostname"),
     "bundle {d}: manifest.json model_file '../../../../etc/hostname' points outside the bundle "
     "folder; refused"),
    (_corrupt_but_consistent, "bundle {d}: model file {d}/model.tflite is not a usable TFLite model"),
    (lambda d: _rewrite(d, detector={"average_window_ms": 0}),
     "bundle {d}: manifest.json detector.average_window_ms must be an integer from 1 to 10000, got 0"),
    (lambda d: _rewrite(d, detector={"min_count": "3"}),
     "bundle {d}: manifest.json detector.min_count must be an integer from 1 to 64, got '3'"),
    (lambda d: _rewrite(d, detector=[300]), "bundle {d}: manifest.json detector must be an object"),
])
def test_bad_manifests_exit_2_naming_the_file_and_key(tmp_path: Path, model_file: Path, mutate,
                                                      message) -> None:
    d = _make_bundle(tmp_path / "b", model_file)
    mutate(d)
    write_wav(tmp_path / "x.wav", np.zeros(16000))
    r = subprocess.run([sys.executable, "-m", "daemon", "classify", "--model", str(d),
                        str(tmp_path / "x.wav")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("earshotd: error: " + message.format(d=d)), r.stderr
    assert "Traceback" not in r.stderr
