"""Bundle export: manifest contents, the daemon's acceptance, the C header, thresholds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from daemon.inference import Classifier
from earshot import frontends, quant
from earshot.bundle import load_bundle, sha256_file
from trainer import export, models


@pytest.mark.parametrize("target", ["pi", "rp2040"])
def test_manifest_has_the_contract(keyword_bundles: dict[str, Path], target: str) -> None:
    b = load_bundle(keyword_bundles[target])  # the daemon's own validation
    m = b.manifest
    assert m["target"] == target
    # the fixture trains the eight keywords (in the order given) plus silence and unknown
    assert m["labels"] == ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "go", "stop"]
    assert m["sample_rate"] == 16000 and m["clip_samples"] == 16000
    fe = b.frontend()
    assert fe.name == {"pi": "logmel", "rp2040": "q15log"}[target]
    assert m["input"]["shape"] == [1, *fe.shape, 1]
    assert m["output"]["shape"] == [1, len(m["labels"])]
    assert m["output"]["activation"] == "softmax"
    assert set(m["thresholds"]) == set(m["labels"])
    assert all(export.THRESHOLD_FLOOR <= t <= export.THRESHOLD_CEIL for t in m["thresholds"].values())
    assert m["model_sha256"] == sha256_file(b.model_path)
    for name, digest in m["extra_files"].items():
        assert sha256_file(b.path / name) == digest, name
    t = m["training"]
    assert Path(t["root"]).is_dir() and t["seed"] == 0 and t["layout"]
    assert sum(t["counts"].values()) > 0 and "report" in t
    assert 0.0 < m["metrics"]["test_accuracy"] <= 1.0
    if target == "pi":
        assert m["model_file"] == "model.tflite" and m["input"]["dtype"] == "float32"
    else:
        assert m["model_file"] == "model_int8.tflite"
        assert m["input"]["dtype"] == "int8" and m["output"]["dtype"] == "int8"
        assert set(m["ops"]) <= models.MCU_OPS
        assert (b.path / "model_float.tflite").is_file()


def test_rp2040_input_quantisation_is_the_firmware_path(rp2040_bundle: Path, synth_root: Path) -> None:
    b = load_bundle(rp2040_bundle)
    q = b.manifest["input"]["quantization"]
    assert q["zero_point"] == -128
    assert q["scale"] == pytest.approx(b.manifest["input"]["clip_max"] / 255.0, rel=1e-6)
    clf = Classifier(b)
    from earshot.wavio import read_wav

    clip = read_wav(next((synth_root / "keywords" / "yes").glob("*.wav")))
    mag = frontends.Q15FrontEnd().native(clip)  # the firmware's magnitudes, q15 and q15log alike
    assert b.frontend().name == "q15log"  # the MCU default: ln(1 + m) by the compiled-in table
    table = quant.log_mag_int8_table(q["scale"], q["zero_point"])
    want = quant.log_mag_to_int8(mag, table)
    np.testing.assert_array_equal(clf.input_tensor(clip).reshape(want.shape), want)
    # the table is what the float model was trained on, quantised as TFLite quantises its input
    f = b.frontend().features(clip)
    ideal = np.clip(np.round(f / q["scale"]) + q["zero_point"], -128, 127)
    assert np.abs(want.astype(np.int64) - ideal).max() <= 1


def test_c_header_holds_the_int8_model(rp2040_bundle: Path) -> None:
    b = load_bundle(rp2040_bundle)
    text = (b.path / "model_data.h").read_text()
    data = b.model_path.read_bytes()
    assert "DO NOT EDIT" in text and b.sha256 in text
    assert "alignas(8) const unsigned char earshot_model_tflite[] = {" in text
    assert f"const unsigned int earshot_model_tflite_len = {len(data)};" in text
    body = text.split("= {", 1)[1].split("};", 1)[0]
    parsed = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert parsed == data


def test_c_header_rejects_a_bad_identifier() -> None:
    with pytest.raises(ValueError, match="C identifier '1model' is not valid"):
        export.c_header(b"\x00", "0" * 64, "1model")


def test_thresholds_keep_validation_false_positives_low() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    y = np.repeat([0, 1, 2], 100)
    scores = rng.uniform(0.0, 0.2, size=(300, 3))
    scores[y == 0, 0] = 0.9
    scores[y == 1, 0] = rng.uniform(0.0, 0.7, 100)  # label b often looks like a
    thr = export.choose_thresholds(scores, y, labels)
    neg = scores[y != 0, 0]
    assert (neg >= thr["a"]).mean() <= 0.01
    assert thr["a"] <= 0.9  # true "a" clips still fire
    assert thr["b"] == thr["c"] == export.THRESHOLD_FLOOR  # never below an even bet
