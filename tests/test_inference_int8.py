"""int8 bundles run on TFLite's reference kernels: the numbers the RP2040 firmware reproduces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daemon.inference import Classifier
from earshot.bundle import load_bundle
from trainer.datasets import load_dataset, load_split


@pytest.mark.slow
def test_int8_classifier_equals_tflite_micro(rp2040_bundle: Path, synth_root: Path) -> None:
    from tflite_micro.python.tflite_micro import runtime

    clf = Classifier(load_bundle(rp2040_bundle))
    assert clf.is_int8
    tflm = runtime.Interpreter.from_file(str(clf.bundle.model_path))
    ds = load_dataset(synth_root / "keywords", progress=False)
    x, _ = load_split(ds, "test", progress=False)
    rng = np.random.default_rng(0)
    clips = list(x[:30]) + [rng.normal(0, 0.2, 16000).astype(np.float32) for _ in range(10)]
    same = 0
    for clip in clips:
        t = clf.input_tensor(clip)
        ours = clf.raw(t)
        tflm.set_input(t, 0)
        tflm.invoke()
        theirs = np.asarray(tflm.get_output(0)).reshape(-1)
        # The two differ only by FULLY_CONNECTED's rounding (reference: float rescale, TFLM:
        # integer rescale; docs/compiler.md), by at most a few output steps and rarely.
        assert np.max(np.abs(ours.astype(int) - theirs.astype(int))) <= 8
        same += int(np.array_equal(ours, theirs))
    assert same >= int(0.9 * len(clips))
