"""`earshot-train compile`: the generated C model equals TFLite's int8 reference kernels and the
TFLite Micro interpreter to the bit, for every MCU architecture and an op-coverage model.

The C is built by ``CompiledModel.build_host`` (gcc, strict warnings as errors, UBSan) together
with the kernel library into a shared library and called through ctypes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from trainer import compiler  # noqa: E402
from trainer.compiler import CompiledModel, host  # noqa: E402
from trainer.compiler.host import ES_ERR_ARG, HostModel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "firmware" / "core"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion"]
N_RANDOM = 120
"""Random inputs per model (half uniform int8, half near the low end like real spectrograms)."""

def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
        f"{proc.stderr.decode(errors='replace') if isinstance(proc.stderr, bytes) else proc.stderr}"
    )
    return proc


def on_host(compiled: CompiledModel) -> HostModel:
    """The compiled model built for this machine (UBSan, warnings as errors), called by ctypes;
    it must refuse NULL buffers as es_model.h says."""
    model = compiled.build_host()
    x, out = np.zeros(model.n_inputs, np.int8), np.zeros(model.info.n_outputs, np.int8)
    assert model.status(None, out) == ES_ERR_ARG and model.status(x, None, stream=True) == ES_ERR_ARG
    return model


def c_stream_outputs(model: HostModel, rows: np.ndarray, step: int) -> np.ndarray:
    """es_model_invoke on rows[:frames], then es_model_invoke_stream per ``step`` new rows, the
    input moved up as the firmware's rolling input is per block."""
    frames = model.info.input_frames
    x = np.ascontiguousarray(rows[:frames], np.int8)
    outs = [model.invoke(x)]
    for k in range(frames, len(rows) - step + 1, step):
        x = np.concatenate([x[step:], rows[k : k + step]])
        outs.append(model.invoke_stream(x))
    return np.stack(outs)


def rolling_inputs(rows: np.ndarray, frames: int, step: int) -> np.ndarray:
    """The model inputs a rolling spectrogram of ``rows`` presents, one per ``step`` rows."""
    return np.stack([rows[k : k + frames] for k in range(0, len(rows) - frames + 1, step)])


def oracle_outputs(model: Path, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of TFLite's reference kernels and of the TFLite Micro interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    ref = tf.lite.Interpreter(
        model_path=str(model),
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
    )
    ref.allocate_tensors()
    ind, outd = ref.get_input_details()[0], ref.get_output_details()[0]
    micro = runtime.Interpreter.from_file(str(model))
    a, b = [], []
    for x in xs:
        x = x.reshape(ind["shape"])
        ref.set_tensor(ind["index"], x)
        ref.invoke()
        a.append(ref.get_tensor(outd["index"]).reshape(-1).copy())
        micro.set_input(x, 0)
        micro.invoke()
        b.append(np.asarray(micro.get_output(0)).reshape(-1).copy())
    return np.array(a, np.int8), np.array(b, np.int8)


def random_inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xs = rng.integers(-128, 128, (n, *shape), dtype=np.int64)
    low = np.clip(rng.normal(-100, 40, (n // 2, *shape)), -128, 127)
    xs[: n // 2] = low.astype(np.int64)
    return xs.astype(np.int8)


ORACLES_MAY_DIFFER = 0.10
"""Largest fraction of inputs on which TFLite's reference kernels and TFLM may disagree."""


def assert_bit_exact(model: Path, c_model: HostModel, xs: np.ndarray) -> None:
    """C == TFLM on every input; C == the TFLite reference kernels wherever the two agree.

    The two oracles disagree by one output step on a few inputs, and op by op
    (tests/test_kernels.py, docs/compiler.md) the only op responsible is FULLY_CONNECTED: TF
    2.21's reference rescales its accumulator in floating point, TFLM (and the firmware) with
    the integer MultiplyByQuantizedMultiplier. Measured on untrained models (3 seeds, 200
    inputs each): rp2040_seed 0-2 %, ds_cnn 0 % of final outputs (0.5-1.5 % at the FC op).
    """
    got = c_model.invoke_many(xs)
    ref, micro = oracle_outputs(model, xs)
    oracles_differ = np.any(ref != micro, axis=1)
    assert oracles_differ.mean() <= ORACLES_MAY_DIFFER, (
        f"{model.name}: TFLite and TFLM disagree on {oracles_differ.sum()}/{len(xs)} inputs"
    )
    ref = np.where(oracles_differ[:, None], micro, ref)
    bad_ref = np.nonzero(np.any(got != ref, axis=1))[0]
    bad_micro = np.nonzero(np.any(got != micro, axis=1))[0]
    assert bad_ref.size == 0, (
        f"{model.name}: C differs from TFLite reference on {bad_ref.size}/{len(xs)} inputs, "
        f"first #{bad_ref[:1]}: C {got[bad_ref[:1]]} ref {ref[bad_ref[:1]]}"
    )
    assert bad_micro.size == 0, f"{model.name}: C differs from TFLM on {bad_micro.size} inputs"
    # The inputs must exercise the model: not every output the same.
    assert len({r.tobytes() for r in got}) > 1, f"{model.name}: outputs do not vary"


# ---- models --------------------------------------------------------------------------------


def _adapt(shape: tuple[int, ...], n: int = 24) -> np.ndarray:
    return np.random.default_rng(0).gamma(1.5, 60.0, (n, *shape)).astype(np.float32)


def _spread_head(model: object, layer: str) -> None:
    """An untrained head can give one value for everything (a wide embedding of untrained
    maxima sums to near-constant logits, and int8 rounds the rest away); give it weights that
    spread each logit over about +-3 on inputs like the test's, so the softmax's or sigmoid's
    range is exercised."""
    import keras

    # The test's int8 inputs, dequantised (input scale 400/255, zero point -128).
    like = (random_inputs((124, 129, 1), 48, seed=99).astype(np.float32) + 128) * (400 / 255)
    head = model.get_layer(layer)  # type: ignore[attr-defined]
    trunk = keras.Model(model.inputs, head.input)  # type: ignore[attr-defined]
    emb = trunk.predict(like, verbose=0)
    w = np.random.default_rng(0).normal(size=(emb.shape[1], head.units))
    z = emb @ w
    k = 3.0 / (z.std(axis=0) + 1e-9)
    head.set_weights([(w * k).astype(np.float32), (-z.mean(axis=0) * k).astype(np.float32)])


@pytest.fixture(scope="module")
def mcu_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every MCU architecture (4 classes) and its binary sigmoid head, untrained (fixed seeds),
    as int8."""
    import keras

    from trainer import export, models

    out = tmp_path_factory.mktemp("mcu")
    adapt = _adapt((124, 129, 1))
    paths = {}
    for seed, name in enumerate(models.MCU_ARCHITECTURES):
        keras.utils.set_random_seed(seed)
        m = models.build(name, (124, 129, 1), 4, adapt, clip_max=400.0)
        _spread_head(m, "head")
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(export.to_int8_tflite(m, adapt))
        binary, _ = models.transfer_head(m)
        _spread_head(binary, "binary_head")
        paths[name + "_binary"] = out / f"{name}_binary.tflite"
        paths[name + "_binary"].write_bytes(export.to_int8_tflite(binary, adapt))
    return paths


def int8_tflite(model: object, shape: tuple[int, ...], path: Path) -> Path:
    """Full-int8 conversion of a Keras model with batch 1 (representative set from _adapt)."""
    import keras

    rep = _adapt(shape, 16)
    spec = tf.TensorSpec([1, *shape], tf.float32)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    archive.write_out(str(path.with_suffix(".saved")), verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(path.with_suffix(".saved")))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[None]] for x in rep)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="module")
def coverage_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ops the MCU architectures do not use: nearest resize, SAME pooling, depth multiplier 2,
    RELU6, ADD of two branches, MUL, a keep-dims mean."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    shape = (20, 24, 1)
    x_in = keras.Input(shape, batch_size=1)
    x = layers.Resizing(13, 17, interpolation="nearest")(x_in)
    x = layers.Rescaling(1 / 100.0)(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(x)
    x = layers.AveragePooling2D(2, padding="same")(x)
    y = layers.Conv2D(8, 1, activation="relu")(x)
    x = layers.Add()([x, y])
    x = layers.Multiply()([x, layers.Conv2D(8, 1)(x)])
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(3, activation="softmax")(x)
    model = keras.Model(x_in, out)
    return int8_tflite(model, shape, tmp_path_factory.mktemp("cov") / "coverage.tflite")


def compile_and_build(
    model: Path, out: Path, labels: list[str]
) -> tuple[CompiledModel, HostModel]:
    compiled = compiler.compile_tflite(model, out, labels)
    return compiled, on_host(compiled)


# ---- tests ---------------------------------------------------------------------------------


def test_every_mcu_architecture_is_bit_exact(mcu_models: dict[str, Path], tmp_path: Path) -> None:
    for name, model in mcu_models.items():
        labels = ["neg", "pos"] if name.endswith("_binary") else ["a", "b", "c", "d"]
        compiled, c_model = compile_and_build(model, tmp_path / name, labels)
        assert_bit_exact(model, c_model, random_inputs((124, 129, 1), N_RANDOM, seed=len(name)))
        # These models are chains: the greedy plan reaches the live-bytes lower bound.
        assert compiled.arena_bytes == compiled.peak_live_bytes, name


def test_streamed_schedule_equals_the_whole_model_at_every_block(
    mcu_models: dict[str, Path], tmp_path: Path
) -> None:
    """The firmware calls es_model_invoke_stream once per block on its rolling spectrogram: the
    output must be what the whole model gives on that input (C, TFLM and TFLite reference)."""
    step = compiler.STREAM_ROWS
    for name, model in mcu_models.items():
        labels = ["neg", "pos"] if name.endswith("_binary") else ["a", "b", "c", "d"]
        compiled, c_model = compile_and_build(model, tmp_path / name, labels)
        if name.startswith("stream_cnn"):
            # designed to stream: three convs reuse all but their newest rows
            assert [compiled.ops[i] for i in compiled.streamed] == ["CONV_2D"] * 3, name
            assert compiled.stream_rows == step
        # each block's rows either uniform or near the low end like real spectrograms, so the
        # windows mix both and the outputs move from block to block
        n_blocks = 40
        rows = random_inputs((step, 129, 1), 124 // step + n_blocks - 1, seed=len(name))
        rows = rows[np.random.default_rng(len(name)).permutation(len(rows))].reshape(-1, 129, 1)
        xs = rolling_inputs(rows, 124, step)
        got = c_stream_outputs(c_model, rows, step)
        assert len(got) == n_blocks
        whole = c_model.invoke_many(xs)
        assert np.array_equal(got, whole), f"{name}: streamed != whole model at blocks " + str(
            np.nonzero(np.any(got != whole, axis=1))[0][:5]
        )
        assert_bit_exact(model, c_model, xs)


@pytest.fixture(scope="module")
def stream_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    """Small models for the streaming planner: name -> (int8 model, ops expected to stream)."""
    import keras
    from keras import layers

    out = tmp_path_factory.mktemp("stream")
    shape = (20, 24, 1)
    keras.utils.set_random_seed(5)
    # every row kernel: x4 conv (stride 2 in time), depthwise, generic conv (patch 3*3*32 >
    # 256), max pool; then a SAME conv, which does not stream but reads a streamed tensor
    x_in = keras.Input(shape, batch_size=1)
    x = layers.Conv2D(32, (2, 3), strides=(2, 1), activation="relu")(x_in)
    x = layers.DepthwiseConv2D(3, activation="relu")(x)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2, strides=1)(x)
    x = layers.Conv2D(4, 3, strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    every = keras.Model(x_in, layers.Dense(3, activation="softmax")(x))
    # SAME with kernel height 2 pads one row at the bottom only: its output does not simply
    # move up with the input, so neither it nor the VALID conv after it may stream
    x_in = keras.Input(shape, batch_size=1)
    x = layers.Conv2D(4, (2, 3), padding="same", activation="relu")(x_in)
    x = layers.Conv2D(4, 3, activation="relu")(x)
    x = layers.AveragePooling2D((16, 20))(x)
    bottom = keras.Model(x_in, layers.Dense(3, activation="softmax")(layers.Flatten()(x)))
    return {
        "every_kernel": (int8_tflite(every, shape, out / "every.tflite"),
                         ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MAX_POOL_2D"]),
        "bottom_padding": (int8_tflite(bottom, shape, out / "bottom.tflite"), []),
    }


def test_streaming_planner_and_row_kernels_on_small_models(
    stream_models: dict[str, tuple[Path, list[str]]], tmp_path: Path
) -> None:
    step = compiler.STREAM_ROWS
    for name, (model, expected) in stream_models.items():
        compiled = compiler.compile_tflite(model, tmp_path / name, ["a", "b", "c"], any_input=True)
        assert [compiled.ops[i] for i in compiled.streamed] == expected, name
        if name == "every_kernel":
            c_text = compiled.c_path.read_text()
            for fn in ("es_conv2d_x4_rows_s8", "es_depthwise_conv2d_rows_s8",
                       "es_conv2d_rows_s8", "es_max_pool2d_rows_s8"):
                assert f"{fn}(" in c_text, fn
        c_model = on_host(compiled)
        n_blocks = 30
        rows = random_inputs((step, 24, 1), 20 // step + n_blocks - 1, seed=7).reshape(-1, 24, 1)
        xs = rolling_inputs(rows, 20, step)
        got = c_stream_outputs(c_model, rows, step)
        assert np.array_equal(got, c_model.invoke_many(xs)), name
        assert_bit_exact(model, c_model, xs)


def test_op_coverage_model_is_bit_exact(coverage_model: Path, tmp_path: Path) -> None:
    compiled, c_model = compile_and_build(coverage_model, tmp_path / "cov", ["x", "y", "z"])
    for op in ("RESIZE_NEAREST_NEIGHBOR", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "ADD", "MUL",
               "MEAN", "SOFTMAX"):
        assert op in compiled.ops, f"converter did not emit {op}: {compiled.ops}"
    assert_bit_exact(coverage_model, c_model, random_inputs((20, 24, 1), N_RANDOM, seed=7))


def test_arena_is_the_planned_size_and_live_buffers_never_overlap(
    coverage_model: Path, tmp_path: Path
) -> None:
    compiled, c_model = compile_and_build(coverage_model, tmp_path / "cov", ["x", "y", "z"])
    assert c_model.info.arena_bytes == compiled.arena_bytes
    assert compiled.arena_bytes == max(b.offset + b.size for b in compiled.buffers)
    assert compiled.arena_bytes >= compiled.peak_live_bytes
    # ADD keeps two branches alive at once, so the arena must hold both.
    for a in compiled.buffers:
        for b in compiled.buffers:
            if a is b or a.last < b.first or b.last < a.first:
                continue
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
    # Memory of dead tensors is reused: the arena is smaller than all buffers together.
    assert compiled.arena_bytes < sum(b.size for b in compiled.buffers)


def test_real_inputs_through_the_cli(rp2040_bundle: Path, synth_root: Path, tmp_path: Path) -> None:
    """The trained RP2040 bundle, compiled by the CLI, on features of real synthetic clips."""
    from daemon.inference import Classifier
    from earshot.audio import fit_length
    from earshot.bundle import load_bundle
    from earshot.wavio import read_wav

    out = tmp_path / "c"
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "compile", str(rp2040_bundle), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "arena:" in proc.stdout
    b = load_bundle(rp2040_bundle)
    header = (out / "es_model_data.h").read_text()
    source = (out / "es_model_data.c").read_text()
    banner = (f"generated by earshot-train compile from {b.model_path.name} sha256 {b.sha256}; "
              "do not edit")
    assert banner in header.splitlines()[0] and banner in source.splitlines()[0]
    c_model = host.build_library([out / "es_model_data.c"], out / "host").model("es")
    assert c_model.sha256 == b.sha256 and c_model.labels == b.labels
    assert [c_model.info.input_frames, c_model.info.input_bins] == b.manifest["input"]["shape"][1:3]
    clf = Classifier(b)
    wavs = sorted((synth_root / "keywords").rglob("*.wav"))[::7][:40]
    xs = np.array([clf.input_tensor(fit_length(read_wav(w), 16000)) for w in wavs])
    assert_bit_exact(b.model_path, c_model, xs)
    # The Pi daemon's own interpreter names the same label for every clip. (Its int8 scores
    # are not bit-exact: ai-edge-litert runs XNNPACK's int8 kernels, which differed from TFLM
    # and the reference on 2 of 40 clips, by up to 15 steps, when measured.)
    daemon = np.array([clf.raw(x) for x in xs], np.int8)
    assert np.array_equal(c_model.invoke_many(xs).argmax(axis=1), daemon.argmax(axis=1))


def test_unsupported_op_is_refused_with_its_name(
    rp2040_bundle: Path, tmp_path: Path
) -> None:
    import keras
    from keras import layers

    from earshot.bundle import sha256_file

    x_in = keras.Input((124, 129, 1), batch_size=1)
    x = layers.AveragePooling2D(4)(x_in)
    x = layers.Conv2D(2, 3, activation="tanh")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(x_in, layers.Dense(8, activation="softmax")(x))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    manifest = json.loads((rp2040_bundle / "manifest.json").read_text())
    model_path = int8_tflite(model, (124, 129, 1), tmp_path / "tanh.tflite")
    (bundle / manifest["model_file"]).write_bytes(model_path.read_bytes())
    manifest["model_sha256"] = sha256_file(bundle / manifest["model_file"])
    manifest["output"]["shape"] = [1, len(manifest["labels"])]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "compile", str(bundle), "--out", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert "op TANH (#" in proc.stderr and "not supported" in proc.stderr
    assert not (tmp_path / "c" / "es_model_data.c").exists()


def test_float_model_is_refused_naming_the_op(tmp_path: Path) -> None:
    import keras
    from keras import layers

    x_in = keras.Input((8, 8, 1), batch_size=1)
    model = keras.Model(x_in, layers.Dense(2, activation="softmax")(layers.Flatten()(x_in)))
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(compiler.CompileError, match=r"op RESHAPE \(#0\) uses float32 tensor"):
        compiler.compile_tflite(path, tmp_path / "c", ["a", "b"])


def test_labels_and_identifiers_are_validated(coverage_model: Path, tmp_path: Path) -> None:
    with pytest.raises(compiler.CompileError, match="not a valid C identifier"):
        compiler.compile_tflite(coverage_model, tmp_path, ["x", "y", "z"], prefix="es-1")
    with pytest.raises(compiler.CompileError, match="control character"):
        compiler.compile_tflite(coverage_model, tmp_path, ["x", "y\n", "z"])
    with pytest.raises(compiler.CompileError, match="3 outputs but 2 labels"):
        compiler.compile_tflite(coverage_model, tmp_path, ["x", "y"])
    # Quotes, backslashes and non-ASCII survive as C escapes and come back unchanged.
    labels = ['say "hi"', "back\\slash", "café"]
    assert on_host(compiler.compile_tflite(coverage_model, tmp_path / "esc", labels)).labels == labels


def test_prefix_names_the_symbols(coverage_model: Path, tmp_path: Path) -> None:
    compiler.compile_tflite(coverage_model, tmp_path, ["x", "y", "z"], prefix="kw")
    header = (tmp_path / "kw_model_data.h").read_text()
    assert "EsStatus kw_model_invoke(const int8_t *input, int8_t *output);" in header
    assert "#define KW_MODEL_ARENA_BYTES" in header
    run(["gcc", *CFLAGS, "-c", "-I", str(CORE), "-I", str(tmp_path),
         str(tmp_path / "kw_model_data.c"), "-o", str(tmp_path / "kw.o")])
    syms = run(["nm", str(tmp_path / "kw.o")]).stdout.decode()
    assert re.search(r" T kw_model_invoke$", syms, re.M)
    assert re.search(r" [DR] kw_model_info$", syms, re.M)
