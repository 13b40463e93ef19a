"""Hard-negative mining (``--hard-negatives MIN``): the windows of real recordings a model fires
on join its negative class, and training on them makes it fire less there. Runs on the real
recordings the Debian packages install (``trainer.recordings``) and a real Keras model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures_data import train_settings

from earshot import frontends
from trainer import train


def _always_firing(fe: frontends.FrontEnd, outputs: int):  # type: ignore[no-untyped-def]
    """A small model whose output starts out on a firing label for any input."""
    import keras

    x = keras.Input((*fe.shape, 1))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    if outputs == 1:
        out = keras.layers.Dense(1, "sigmoid", bias_initializer=keras.initializers.Constant(4.0))(h)
    else:
        bias = keras.initializers.Constant([0.0] + [3.0] * (outputs - 1))
        out = keras.layers.Dense(outputs, "softmax", bias_initializer=bias)(h)
    return keras.Model(x, out)


@pytest.mark.parametrize(("labels", "negative"), [
    (["background", "smoke_alarm"], "background"),  # a transfer detector's sigmoid
    (["_background_", "smoke_alarm", "co_alarm"], "_background_"),  # its softmax
    (["_unknown_", "yes", "no"], "_unknown_"),  # a keyword model
])  # fmt: skip
def test_windows_a_model_fires_on_become_negatives_and_it_fires_less(
    tmp_path: Path, labels: list[str], negative: str
) -> None:
    import keras

    keras.utils.set_random_seed(0)
    fe = frontends.create("logmel")
    s = train_settings(tmp_path, "--no-progress", "--hard-negatives", "0.25", "--epochs", "10", "--patience", "6")
    rng = np.random.default_rng(0)
    pos = (rng.standard_normal((12, 16000)) * 0.05).astype(np.float32)
    f = train.compute_features(fe, pos, "train", False)
    y = np.full(len(f), 1, np.int64)  # every training clip is a positive: only mining adds negatives
    model = _always_firing(fe, 1 if len(labels) == 2 else len(labels))
    audio = train._mining_audio(0.25, s.seed)
    windows = np.stack([audio[a : a + 16000] for a in range(0, audio.size - 15999, 4000)])
    wf = train.compute_features(fe, windows, "windows", False)
    # validation as training has it: positives and negatives (here windows between the mined ones)
    between = train.compute_features(fe, audio[2000 : 2000 + 8 * 16000].reshape(8, 16000), "v", False)
    feats = {"train": (f, y), "val": (np.concatenate([f[:4], between]),
                                      np.r_[y[:4], np.full(8, labels.index(negative))])}  # fmt: skip

    def fires(m) -> np.ndarray:  # type: ignore[no-untyped-def]
        p = m.predict(wf, verbose=0)
        return p[:, 0] if p.shape[1] == 1 else p[:, [i for i, x in enumerate(labels) if x != negative]].max(1)

    before = fires(model)
    out, hist, mined = train._mine_hard_negatives(model, fe, feats, labels, s, negative, 1e-2)
    assert mined["windows"] == len(windows) and mined["minutes"] == 0.25
    assert mined["firing"] == int((before >= train.HARD_NEGATIVE_SCORE).sum()) > 0
    cap = int(train.HARD_NEGATIVE_MAX_SHARE * len(f) / len(labels))
    assert mined["kept"] == min(cap, mined["firing"])
    x2, y2 = out["train"]
    assert len(x2) == len(f) + mined["kept"] and hist is not None
    assert (y2[len(f):] == labels.index(negative)).all()  # fmt: skip
    assert (y2[: len(f)] == y).all() and np.array_equal(x2[: len(f)], f)
    after = fires(model)
    assert after.mean() < before.mean() - 0.2, (before.mean(), after.mean())



def test_mining_without_a_class_for_the_windows_is_refused_by_name(tmp_path: Path) -> None:
    import subprocess
    import sys

    from earshot.wavio import write_wav

    rng = np.random.default_rng(1)
    for label in ("yes", "no"):
        for k in range(10):
            write_wav(tmp_path / "data" / label / f"s{k}_nohash_0.wav",
                      (rng.standard_normal(16000) * 0.1).astype(np.float32))  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", str(tmp_path / "data"),
                           "--out", str(tmp_path / "o"), "--hard-negatives", "5", "--no-progress"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode != 0
    assert "--hard-negatives needs a class for the mined windows" in proc.stderr
    assert str(tmp_path / "data") in proc.stderr and "--unknown" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("manifest.json"))
