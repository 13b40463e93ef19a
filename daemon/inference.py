"""Running a bundle's TFLite model: one interpreter, loaded once, fed by the bundle's front end.

Interpreter choice, first that imports: ai-edge-litert (the Pi runtime), tflite-runtime, then
``tensorflow.lite`` (only where TensorFlow is installed anyway, e.g. the trainer's machine).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from earshot import frontends
from earshot.bundle import Bundle, BundleError
from earshot.quant import log_mag_int8_table, log_mag_to_int8, q15_to_int8

from .native import quiet_native_stderr

_LOGGER = logging.getLogger(__name__)


def make_interpreter(model_path: str, num_threads: int = 1, reference_kernels: bool = False) -> Any:
    """Build a TFLite interpreter with the first runtime available.

    ``reference_kernels`` selects TFLite's reference op implementations (no XNNPACK). int8
    models need it: XNNPACK's int8 kernels round differently (seen here: up to 15 output steps
    on 2 of 40 clips), while the reference kernels are what TFLite Micro and earshot's C kernels
    implement, so an int8 model is evaluated as it runs on the RP2040.
    """
    errors = []
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        return Interpreter(
            model_path=model_path,
            num_threads=num_threads,
            experimental_op_resolver_type=resolver,
        )
    except ImportError as e:
        errors.append(f"ai-edge-litert: {e}")
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

        return Interpreter(model_path=model_path, num_threads=num_threads)
    except ImportError as e:
        errors.append(f"tflite-runtime: {e}")
    try:
        import tensorflow as tf

        resolver = (
            tf.lite.experimental.OpResolverType.BUILTIN_REF
            if reference_kernels
            else tf.lite.experimental.OpResolverType.AUTO
        )
        return tf.lite.Interpreter(
            model_path=model_path, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
    except ImportError as e:
        errors.append(f"tensorflow: {e}")
    raise RuntimeError(
        "no TFLite interpreter available (pip install ai-edge-litert): " + "; ".join(errors)
    )



def load_interpreter(bundle: Bundle, num_threads: int, reference_kernels: bool) -> Any:
    """The bundle's model, allocated; a file TFLite cannot load is a BundleError naming it."""
    try:
        with quiet_native_stderr():
            interpreter = make_interpreter(str(bundle.model_path), num_threads, reference_kernels)
            interpreter.allocate_tensors()
    except ValueError as e:
        raise BundleError(
            f"bundle {bundle.path}: model file {bundle.model_path} is not a usable TFLite model ({e})"
        ) from None
    return interpreter


class Classifier:
    """A bundle's model ready to score 1 s clips: ``scores(clip) -> np.ndarray`` of probabilities."""

    def __init__(self, bundle: Bundle, num_threads: int = 1) -> None:
        self.bundle = bundle
        self.labels = bundle.labels
        self.frontend = bundle.frontend()
        int8_model = bundle.manifest["input"].get("dtype") == "int8"
        self.interpreter = load_interpreter(bundle, num_threads, reference_kernels=int8_model)
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        want = list(bundle.manifest["input"]["shape"])
        got = [int(d) for d in self._in["shape"]]
        if got != want:
            raise BundleError(
                f"bundle {bundle.path}: model input shape {got} does not match manifest {want}"
            )
        n_out = int(np.prod(self._out["shape"]))
        activation = bundle.manifest["output"].get("activation", "softmax")
        expect_out = 1 if activation == "sigmoid" and len(self.labels) == 2 else len(self.labels)
        if n_out != expect_out:
            raise BundleError(
                f"bundle {bundle.path}: model has {n_out} outputs, manifest lists "
                f"{len(self.labels)} labels"
            )
        self._sigmoid_binary = n_out == 1 and len(self.labels) == 2
        self.is_int8 = self._in["dtype"] == np.int8
        self._log_table: np.ndarray | None = None
        if self.is_int8 and isinstance(self.frontend, frontends.Q15LogFrontEnd):
            self._log_table = log_mag_int8_table(*self._in["quantization"])

    def input_tensor(self, clip: np.ndarray) -> np.ndarray:
        """The exact tensor the model gets for one clip (int8 for RP2040 bundles)."""
        if self.is_int8:
            scale, zp = self._in["quantization"]
            if isinstance(self.frontend, frontends.Q15FrontEnd):  # q15 and q15log
                mag = self.frontend.native(clip)
                x = (q15_to_int8(mag, scale, zp) if self._log_table is None
                     else log_mag_to_int8(mag, self._log_table))  # fmt: skip
            else:
                f = self.frontend.features(clip)
                x = np.clip(np.round(f / scale) + zp, -128, 127).astype(np.int8)
        else:
            x = self.frontend.features(clip)
        return x.reshape(self._in["shape"]).astype(self._in["dtype"])

    def raw(self, tensor: np.ndarray) -> np.ndarray:
        """Run the model on a prepared input tensor; returns the raw output (int8 or float)."""
        self.interpreter.set_tensor(self._in["index"], tensor)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self._out["index"])).reshape(-1)

    def scores(self, clip: np.ndarray) -> np.ndarray:
        """Probabilities per label, float32, in the bundle's label order."""
        out = self.raw(self.input_tensor(clip))
        if self._out["dtype"] == np.int8:
            scale, zp = self._out["quantization"]
            out = (out.astype(np.float32) - zp) * scale
        out = out.astype(np.float32)
        if self._sigmoid_binary:
            p = float(out[0])
            return np.array([1.0 - p, p], np.float32)
        return out
