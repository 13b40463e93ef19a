"""Model builders: shapes, parameter budgets, the transfer head, and the MCU op whitelist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer import export, models

SHAPE = (124, 129, 1)


def _q15_like(n: int = 24, seed: int = 0) -> np.ndarray:
    """Heavy-tailed non-negative integers, like q15 spectrogram magnitudes."""
    rng = np.random.default_rng(seed)
    return np.floor(rng.gamma(0.4, 40.0, size=(n, *SHAPE))).astype(np.float32)


def test_mcu_and_pi_architecture_lists() -> None:
    assert set(models.MCU_ARCHITECTURES) <= set(models.ARCHITECTURES)
    assert {"rp2040_seed", "ds_cnn"} <= set(models.MCU_ARCHITECTURES)
    assert "simple_audio" in models.PI_ARCHITECTURES
    assert "simple_audio" not in models.MCU_ARCHITECTURES
    assert models.DEFAULT_ARCH["rp2040"] in models.MCU_ARCHITECTURES


@pytest.mark.parametrize("name", models.MCU_ARCHITECTURES)
def test_mcu_int8_model_uses_only_firmware_ops(name: str, tmp_path: Path) -> None:
    x = _q15_like()
    model = models.build(name, SHAPE, 8, x, clip_max=255.0)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(export.to_int8_tflite(model, x))
    ops = export.tflite_ops(path)
    assert set(ops) <= models.MCU_OPS, f"{name}: {sorted(set(ops) - models.MCU_OPS)}"
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops

    from daemon.inference import make_interpreter

    interp = make_interpreter(str(path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert list(inp["shape"]) == [1, *SHAPE]
    # the clip is the int8 input range: [0, 255] -> scale 1.0, zero point -128 (lossless ints)
    scale, zp = inp["quantization"]
    assert scale == pytest.approx(1.0, rel=1e-6) and zp == -128


def test_mcu_models_fit_the_rp2040_budget() -> None:
    x = _q15_like(4)
    seed = models.build("rp2040_seed", SHAPE, 8, x, 255.0)
    ds = models.build("ds_cnn", SHAPE, 8, x, 255.0)
    assert 12_000 <= seed.count_params() <= 18_000  # "about 15K parameters"
    assert ds.count_params() < 5_000
    assert models.count_macs(ds) < models.count_macs(seed) <= 120_000


def test_float_model_clips_like_the_int8_input(tmp_path: Path) -> None:
    x = _q15_like(4)
    model = models.build("rp2040_seed", SHAPE, 8, x, clip_max=100.0)
    big = x[:1].copy()
    big[big > 100] = 100
    loud = x[:1].copy()
    loud[loud > 100] = 5000  # anything above the clip looks the same to the model
    np.testing.assert_allclose(model.predict(big, verbose=0), model.predict(loud, verbose=0), rtol=1e-5)


def test_binary_head_is_one_sigmoid_unit() -> None:
    base = models.build("rp2040_seed", SHAPE, 8, _q15_like(4), 255.0)
    model, trunk = models.transfer_head(base)
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation.__name__ == "sigmoid"
    trunk.trainable = False
    assert all(not w.trainable for w in trunk.weights)
    assert {w.path for w in model.trainable_weights} == {w.path for w in model.layers[-1].weights}


def test_unknown_architecture_and_single_class_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet'.*choose one of"):
        models.build("resnet", SHAPE, 8, None)
    with pytest.raises(ValueError, match="at least 2 classes"):
        models.build("ds_cnn", SHAPE, 1, None)


def _imported_after(code: str) -> set[str]:
    """Which of tensorflow/keras a fresh interpreter has imported after running ``code``."""
    import json
    import subprocess
    import sys

    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({'tensorflow', 'keras'} & set(sys.modules))))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["synth", "--help"], ["train", "--help"],
                                  ["evaluate", "--help"], ["inspect", "--help"]])
def test_cli_help_does_not_import_tensorflow(argv: list[str]) -> None:
    code = ("import contextlib, io, sys\nfrom trainer.__main__ import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    try:\n        main({argv!r})\n    except SystemExit as e:\n"
            "        assert e.code == 0, e.code\n"
            "assert 'usage: earshot-train' in out.getvalue(), out.getvalue()")
    assert _imported_after(code) == set()


def test_trainer_modules_import_without_tensorflow() -> None:
    mods = ["datasets", "synth", "augment", "models", "train", "export", "evaluate"]
    assert _imported_after("".join(f"import trainer.{m}\n" for m in mods)) == set()


def test_saved_model_with_clip_input_loads_back(tmp_path: Path) -> None:
    """``models.load_model`` registers ClipInput itself, so a fresh process can load model.keras."""
    x = _q15_like(2)
    model = models.build("rp2040_seed", SHAPE, 8, x, clip_max=300.0)
    model.save(tmp_path / "model.keras")
    code = ("import numpy as np\nfrom trainer import models\n"
            f"m = models.load_model({str(tmp_path / 'model.keras')!r})\n"
            "c = models.clip_layer(m)\nassert c is not None and c.max_value == 300.0, c\n"
            f"np.save({str(tmp_path / 'out.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))")
    np.save(tmp_path / "x.npy", x)
    assert _imported_after(code) == {"tensorflow", "keras"}
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(x, verbose=0), rtol=1e-5)


def test_transfer_head_for_several_positives_is_a_softmax_over_background_and_them() -> None:
    from trainer.train import transfer_labels, transfer_targets

    base = models.build("rp2040_seed", SHAPE, 8, _q15_like(4), 255.0)
    model, _ = models.transfer_head(base, 2)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].activation.__name__ == "softmax"
    # the negative class starts with "_", so no detector ever fires on it
    assert transfer_labels(["smoke_alarm", "co_alarm"]) == ["_background_", "smoke_alarm", "co_alarm"]
    assert transfer_labels(["smoke_alarm"]) == ["background", "smoke_alarm"]
    y = np.array([0, 1, 2, 1, 0])  # data set labels: background, co_alarm, smoke_alarm
    got = transfer_targets(y, ["background", "co_alarm", "smoke_alarm"], ["smoke_alarm", "co_alarm"])
    np.testing.assert_array_equal(got, [0, 2, 1, 2, 0])
