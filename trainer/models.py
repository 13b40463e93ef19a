"""Keras 3 model builders, keyed by architecture name, and the transfer-learning head swap.

Every builder takes ``(input_shape, n_classes, adapt)``: ``input_shape`` is ``(frames, bins, 1)``,
``adapt`` a float32 batch of training features the ``Normalization`` layer learns its mean and
variance from. Models end in a softmax (or, for a binary head, a one-unit sigmoid), so the
exported TFLite models output probabilities.

Architectures
-------------
``simple_audio``  TensorFlow's simple_audio tutorial (the original Pi model): resize 32x32, normalise,
                  conv 32 3x3, conv 64 3x3, max-pool, dropout .25, flatten, dense 128,
                  dropout .5, dense n (about 1.6M parameters).
``rp2040_seed``   the Arm RP2040 tutorial model: resize 32x32, normalise, conv 8 filters 8x8
                  stride 2, max-pool, flatten, dense 50, dense n (about 15K parameters).
``stream_cnn``    the streaming MCU model (RP2040 default): three VALID convolutions straight on the
                  124x129 spectrogram, the first striding 4 frames (one firmware block), the others
                  1 frame in time, then max-pooling over three time segments (each frequency column kept
                  apart), dense n. The C
                  compiler reuses each conv's rows from the previous block, so per 32 ms block only
                  the newest output row of each conv is computed (~32K of its ~0.9M MACs).
``ds_cnn``        our small MCU model: 4x4 average pooling of the spectrogram to (31, 32),
                  normalise, conv 12 3x3 stride 2, two depthwise-separable blocks (24 and 32
                  channels, stride 2), global average pool, dense n. About 2K parameters and
                  70K MACs per inference.

``simple_audio`` and ``rp2040_seed`` are the seed-compatible architectures (the original Pi and
RP2040 models, ``docs/architecture.md``). The RP2040 default is ``stream_cnn``; how the
architectures compared on the synthetic sets and the emulated M0+: ``docs/training.md``.

All MCU architectures convert to full-int8 TFLite using only the ops in ``MCU_OPS`` (the
firmware's C kernels); ``tests/test_models.py`` checks it for each name in
``MCU_ARCHITECTURES``.

Input range (``clip_max``)
--------------------------
The q15 magnitudes span 0..32767 but carry their information in the low hundreds; a plain
min/max calibration would give an int8 input scale of ~100 and round almost every value to
zero. MCU models therefore start with ``ClipInput(clip_max)`` and are trained on
``min(x, clip_max)``. For the int8 export that layer is bypassed and the input tensor's range is
calibrated to exactly ``[0, clip_max]`` (scale ``clip_max/255``, zero point -128), so the int8
input's own saturation performs the same clipping, on the device too, with no extra op.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

_LOGGER = logging.getLogger(__name__)

_BN_MOMENTUM = 0.9
"""Batch-norm moving-average momentum: small data sets give few steps, so 0.99 lags badly."""

MCU_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "FULLY_CONNECTED",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "RESHAPE",
        "SOFTMAX",
        "LOGISTIC",
        "MEAN",
        "ADD",
        "SUB",
        "MUL",
    }
)
"""TFLite builtin ops the RP2040 firmware's int8 kernels implement."""


@functools.cache
def clip_input_class() -> type:
    """The ``ClipInput`` layer class, defined (and registered with Keras) on first use.

    Keras is imported here rather than at module level so that ``earshot-train --help`` and the
    commands that do not train never pay TensorFlow's import.
    """
    import keras

    @keras.saving.register_keras_serializable(package="earshot")
    class ClipInput(keras.layers.Layer):
        """``min(x, max_value)``; bypassed (identity) while tracing the int8 export."""

        def __init__(self, max_value: float, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.max_value = float(max_value)
            self.bypass = False

        def call(self, x):  # type: ignore[no-untyped-def]
            if self.bypass:
                return x
            return keras.ops.minimum(x, self.max_value)

        def get_config(self) -> dict:
            return {**super().get_config(), "max_value": self.max_value}

    return ClipInput


@functools.cache
def level_norm_class() -> type:
    """The ``LevelNorm`` layer class (registered with Keras on first use).

    ``x - mean(x)`` over each example's whole feature map: on log features a gain is an added
    constant, so this makes the model deaf to the recording level (microphones sit 15-20 dB
    apart). Exported to TFLite as MEAN and SUB, which the Pi's interpreter runs."""
    import keras

    @keras.saving.register_keras_serializable(package="earshot")
    class LevelNorm(keras.layers.Layer):
        def call(self, x):  # type: ignore[no-untyped-def]
            return x - keras.ops.mean(x, axis=tuple(range(1, len(x.shape))), keepdims=True)

    return LevelNorm


def load_model(path: str | Path) -> keras.Model:
    """Load a bundle's ``model.keras`` (registers earshot's own layers first)."""
    import keras

    clip_input_class()
    level_norm_class()
    return keras.models.load_model(path)


@dataclass(frozen=True)
class Architecture:
    """One model family: how to build it and where it may run."""

    name: str
    """Key used on the command line (``--arch``) and in the manifest."""
    build: Callable[..., keras.Model]
    """``build(input_shape, n_classes, adapt, clip_max=None) -> keras.Model``."""
    mcu: bool
    """True if its full-int8 model uses only ``MCU_OPS`` and fits the RP2040 budget."""
    summary: str
    """One line for ``--help``."""


def _normalizer(adapt: np.ndarray | None) -> Any:
    from keras import layers

    norm = layers.Normalization(axis=None, name="normalize")
    if adapt is not None:
        norm.adapt(np.asarray(adapt, np.float32))
    return norm


def _stem(input_shape, adapt, clip_max):  # type: ignore[no-untyped-def]
    """The input and optional clipping: ``(input, x, adapt)``, ``adapt`` clipped the same way
    so a normaliser after the stem learns from what the model sees."""
    import keras

    inp = keras.Input(shape=input_shape, name="features")
    x = inp
    if clip_max is not None:
        x = clip_input_class()(clip_max, name="clip_input")(x)
        if adapt is not None:
            adapt = np.minimum(adapt, clip_max)
    return inp, x, adapt


def _resized_normalised(x, adapt):  # type: ignore[no-untyped-def]
    """The seed-compatible models' input stage: resize to 32x32, then normalise with the resized data's stats."""
    from keras import layers

    x = layers.Resizing(32, 32, name="resize")(x)
    return _normalizer(_resize_np(adapt, (32, 32)))(x)


def build_simple_audio(
    input_shape: tuple[int, int, int],
    n_classes: int,
    adapt: np.ndarray | None,
    clip_max: float | None = None,
) -> keras.Model:
    import keras
    from keras import layers

    inp, x, adapt = _stem(input_shape, adapt, clip_max)
    x = _resized_normalised(x, adapt)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name="embedding")(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="simple_audio")


def build_rp2040_seed(
    input_shape: tuple[int, int, int],
    n_classes: int,
    adapt: np.ndarray | None,
    clip_max: float | None = None,
) -> keras.Model:
    import keras
    from keras import layers

    inp, x, adapt = _stem(input_shape, adapt, clip_max)
    x = _resized_normalised(x, adapt)
    x = layers.Conv2D(8, 8, strides=2, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Dense(50, activation="relu", name="embedding")(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="rp2040_seed")


STREAM_FRAMES = 4
"""Spectrogram frames per firmware block (512 samples / hop 128): stream_cnn's first time stride."""


def build_stream_cnn(
    input_shape: tuple[int, int, int],
    n_classes: int,
    adapt: np.ndarray | None,
    clip_max: float | None = None,
) -> keras.Model:
    """Every op before the time pooling is VALID in time with time strides dividing
    ``STREAM_FRAMES``, so trainer/compiler (plan.plan_stream) can stream it (see docs/compiler.md). No
    normaliser: it would be an elementwise op over the full input; batch norm after the first
    conv (folded into it by the converter) absorbs the input's level instead."""
    import keras
    from keras import layers

    inp, x, _ = _stem(input_shape, adapt, clip_max)
    x = layers.Conv2D(8, (STREAM_FRAMES, 12), strides=(STREAM_FRAMES, 6), name="conv1")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    for i, filters in ((2, 16), (3, 24)):
        x = layers.Conv2D(filters, 3, strides=(1, 2), use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"conv{i}_bn")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
    rows = int(x.shape[1])
    seg = max(1, rows // 3)
    # Pool over time only: the frequency columns stay apart, so the head knows where in the
    # spectrum a pattern sits (pooled over all columns, a 4.5 kHz appliance beep looked like a
    # 3 kHz piezo: 3-6x the alarm detector's false alarms per hour, docs/training.md).
    x = layers.MaxPooling2D((seg, 1), name="segments")(x)
    x = layers.Flatten(name="embedding")(x)
    x = layers.Dropout(0.25)(x)
    out = layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="stream_cnn")


def _ds_block(x, filters: int, stride: int, name: str):  # type: ignore[no-untyped-def]
    from keras import layers

    x = layers.DepthwiseConv2D(
        3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_pw_bn")(x)
    return layers.ReLU(name=f"{name}_pw_relu")(x)


def build_ds_cnn(
    input_shape: tuple[int, int, int],
    n_classes: int,
    adapt: np.ndarray | None,
    clip_max: float | None = None,
) -> keras.Model:
    import keras
    from keras import layers

    inp, x, adapt = _stem(input_shape, adapt, clip_max)
    x = layers.AveragePooling2D((4, 4), name="pool_in")(x)
    x = _normalizer(_pool_np(adapt, 4))(x)
    x = layers.Conv2D(12, 3, strides=2, padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="conv_bn")(x)
    x = layers.ReLU(name="conv_relu")(x)
    x = _ds_block(x, 24, 2, "ds1")
    x = _ds_block(x, 32, 2, "ds2")
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    x = layers.Dropout(0.2)(x)
    out = layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="ds_cnn")


def build_kws_dscnn(
    input_shape: tuple[int, int, int],
    n_classes: int,
    adapt: np.ndarray | None,
    clip_max: float | None = None,
) -> keras.Model:
    """A DS-CNN (Zhang et al., "Hello Edge", 2017) sized for the Pi's log-mel input: a strided
    10x4 conv, four depthwise-separable blocks, global pooling. Level-normalised per clip
    (``LevelNorm``), then scaled by the training set's statistics; about 2.9 M MACs on (98, 40),
    a sixth of ``simple_audio``'s 16.3 M."""
    import keras
    from keras import layers

    inp, x, adapt = _stem(input_shape, adapt, clip_max)
    x = level_norm_class()(name="level_norm")(x)
    if adapt is not None:
        adapt = adapt - adapt.mean(axis=tuple(range(1, adapt.ndim)), keepdims=True)
    x = _normalizer(adapt)(x)
    x = layers.Conv2D(24, (10, 4), strides=2, padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="conv_bn")(x)
    x = layers.ReLU(name="conv_relu")(x)
    for i, (filters, stride) in enumerate(((48, 2), (64, 1), (64, 2), (64, 1)), start=1):
        x = _ds_block(x, filters, stride, f"ds{i}")
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="kws_dscnn")


def _resize_np(x: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """Adapt data after the same resize as the model (so the normaliser sees model-side values)."""
    if x is None:
        return None
    import keras

    return keras.ops.convert_to_numpy(keras.layers.Resizing(*size)(np.asarray(x, np.float32)))


def _pool_np(x: np.ndarray | None, k: int) -> np.ndarray | None:
    if x is None:
        return None
    import keras

    return keras.ops.convert_to_numpy(keras.layers.AveragePooling2D((k, k))(np.asarray(x, np.float32)))


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("simple_audio", build_simple_audio, False, "Pi seed CNN (simple_audio)"),
        Architecture(
            "rp2040_seed", build_rp2040_seed, True, "Arm RP2040 tutorial CNN, ~15K params, ~100K MACs"
        ),
        Architecture(
            "stream_cnn",
            build_stream_cnn,
            True,
            "streaming CNN, ~6K params, ~32K MACs per 32 ms block on the MCU (MCU default)",
        ),
        Architecture(
            "ds_cnn",
            build_ds_cnn,
            True,
            "depthwise-separable CNN, ~2K params, ~70K MACs",
        ),
        Architecture(
            "kws_dscnn",
            build_kws_dscnn,
            False,
            "level-normalised DS-CNN for log-mel on the Pi, ~17K params, ~2.9M MACs",
        ),
    )
}
MCU_ARCHITECTURES: tuple[str, ...] = tuple(n for n, a in ARCHITECTURES.items() if a.mcu)
"""Architectures whose int8 model runs on the firmware's kernels (tested bit-exactly there)."""
PI_ARCHITECTURES: tuple[str, ...] = tuple(ARCHITECTURES)
"""Architectures for the Pi's float model (any of them runs there)."""
DEFAULT_ARCH = {"pi": "kws_dscnn", "rp2040": "stream_cnn"}
"""Architecture used when ``--arch`` is not given, per target."""


def build(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    adapt: np.ndarray | None,
    clip_max: float | None = None,
) -> keras.Model:
    """Build architecture ``name``; unknown names are an error that lists the known ones."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    return ARCHITECTURES[name].build(tuple(input_shape), n_classes, adapt, clip_max)


def transfer_head(base: keras.Model, positives: int = 1) -> tuple[keras.Model, keras.Model]:
    """Transfer learning: the base up to its ``embedding`` plus a new head: one sigmoid unit for
    one positive label, else a softmax over background and the ``positives``.

    Returns ``(model, trunk)``; freeze or unfreeze ``trunk`` for the two training phases.
    """
    import keras
    from keras import layers

    try:
        emb = base.get_layer("embedding").output
    except ValueError:
        raise ValueError(f"model {base.name!r} has no 'embedding' layer to transfer from") from None
    trunk = keras.Model(base.inputs, emb, name=f"{base.name}_trunk")
    x = trunk.output
    x = layers.Dropout(0.3, name="head_dropout")(x)
    if positives == 1:
        out = layers.Dense(1, activation="sigmoid", name="binary_head")(x)
    else:
        out = layers.Dense(positives + 1, activation="softmax", name="transfer_head")(x)
    return keras.Model(trunk.inputs, out, name=base.name), trunk


def readapt_input(model: keras.Model, feats: np.ndarray, clip_max: float | None = None) -> None:
    """Fit the input stage to new data before transfer learning: set the ``ClipInput`` level to
    ``clip_max`` (if the model has one and it is given) and re-learn the ``normalize`` layer's
    mean and variance from ``feats`` as they arrive at that layer (clipped, resized or pooled),
    or, in a model without one, the first batch norm's moving statistics.

    A base trained on speech normalises with speech statistics; a piezo tone's q15 spectrogram
    has another level and spread, and the trunk's frozen features then barely respond to it.
    """
    import keras

    clip = clip_layer(model)
    if clip is not None and clip_max is not None:
        clip.max_value = float(clip_max)
    try:
        norm = model.get_layer("normalize")
    except ValueError:
        _readapt_first_batch_norm(model, feats)
        return
    upstream = keras.Model(model.inputs, norm.input)
    norm.adapt(upstream.predict(np.asarray(feats, np.float32), batch_size=64, verbose=0))


def _readapt_first_batch_norm(model: keras.Model, feats: np.ndarray) -> None:
    """For models without a normaliser (stream_cnn): the first batch norm plays its part, so
    its moving mean and variance are re-estimated, per channel, from ``feats``."""
    import keras
    from keras import layers

    bn = next((la for la in model.layers if isinstance(la, layers.BatchNormalization)), None)
    if bn is None:
        _LOGGER.warning("model %s has neither a 'normalize' layer nor a batch norm to re-adapt",
                        model.name)
        return
    upstream = keras.Model(model.inputs, bn.input)
    x = upstream.predict(np.asarray(feats, np.float32), batch_size=64, verbose=0)
    axes = tuple(range(x.ndim - 1))
    bn.moving_mean.assign(x.mean(axis=axes).astype(np.float32))
    bn.moving_variance.assign(x.var(axis=axes).astype(np.float32))


def clip_layer(model: keras.Model) -> Any:
    """The model's ``ClipInput`` layer, if it has one (else None)."""
    cls = clip_input_class()
    for layer in model.layers:
        if isinstance(layer, cls):
            return layer
    return None


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one inference (conv, depthwise, dense), for the summary table."""
    from keras import layers

    total = 0
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        if shape is None:
            continue
        out = layer.output.shape
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(out[1:])) * kh * kw
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(out[1:])) * kh * kw * int(layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            total += int(layer.units) * int(layer.input.shape[-1])
    return total
