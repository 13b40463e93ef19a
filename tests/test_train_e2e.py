"""End to end: the synthetic keywords trained into both bundles, scored the way the daemon does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import KEYWORDS, run_cli

from earshot.bundle import load_bundle
from trainer import evaluate

pytestmark = pytest.mark.slow

CHANCE = 1.0 / 8


def _all_clips(b, cache):  # type: ignore[no-untyped-def]
    """Every clip of the bundle's data set (train + val + test), for a fine-grained comparison."""
    from trainer.datasets import load_dataset, load_split

    t = b.manifest["training"]
    ds = load_dataset(t["root"], labels=t["label_subset"], unknown=t["unknown"],
                      silence=t["silence"], seed=t["seed"], progress=False)
    parts = [load_split(ds, s, progress=False) for s in ("train", "val", "test")]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("target", ["pi", "rp2040"])
def test_keywords_are_recognised_well_above_chance(keyword_bundles: dict[str, Path], target: str) -> None:
    b = load_bundle(keyword_bundles[target])
    x, y = evaluate.derive_test_split(b, None, {}, progress=False)
    acc = float((evaluate.score_clips(b, x, progress=False).argmax(1) == y).mean())
    assert acc >= 0.6, f"{target}: test accuracy {acc:.3f} (chance {CHANCE:.3f})"
    # the manifest's recorded metric is the one we just measured through the daemon's path
    assert b.manifest["metrics"]["test_accuracy"] == pytest.approx(acc, abs=1e-4)
    assert b.manifest["metrics"]["n_test"] == len(y)


INT8_GAP = 0.045
"""Largest int8-vs-float accuracy gap asserted. The budget is 1 point; on voices shared with
training it was met (0.94 / 0.93), on held-out voices with today's augmentation it is not:
measured 2.9 points on the test split and 3.4 on these 3000 clips (docs/training.md). This
bound stops it growing further; closing the gap is open work (issue 14)."""


def test_int8_stays_close_to_float(rp2040_bundle: Path) -> None:
    b = load_bundle(rp2040_bundle)
    x, y = _all_clips(b, {})
    acc_int8 = float((evaluate.score_clips(b, x, progress=False).argmax(1) == y).mean())
    acc_float = float((evaluate.score_clips(b, x, progress=False, use_float=True).argmax(1) == y).mean())
    assert abs(acc_int8 - acc_float) <= INT8_GAP, f"int8 {acc_int8:.4f} vs float {acc_float:.4f} on {len(y)} clips"


def test_daemon_classify_names_the_spoken_keyword(pi_bundle: Path, synth_root: Path) -> None:
    b = load_bundle(pi_bundle)
    test_list = (synth_root / "keywords" / "testing_list.txt").read_text().split()
    # two test clips of each keyword, spoken by voices training never heard
    files = [str(synth_root / "keywords" / rel) for k in KEYWORDS
             for rel in [r for r in test_list if r.startswith(f"{k}/")][:2]]  # fmt: skip
    proc = run_cli("daemon", "classify", "--model", str(pi_bundle), "--json", *files, timeout=120)
    lines = [json.loads(s) for s in proc.stdout.splitlines() if s.startswith("{")]
    assert len(lines) == len(files)
    said = [Path(d["file"]).parent.name for d in lines]  # a filler word's folder is _unknown_
    right = sum((w if w in b.labels else "_unknown_") == d["label"] for w, d in zip(said, lines, strict=True))
    assert right >= 0.6 * len(files), lines
    assert all(set(d["scores"]) == set(b.labels) for d in lines)


@pytest.mark.parametrize("target", ["pi", "rp2040"])
def test_transfer_learning_gives_a_binary_sigmoid_detector(alarm_bundles: dict[str, Path], target: str) -> None:
    from trainer import models

    b = load_bundle(alarm_bundles[target])
    assert b.labels == ["background", "smoke_alarm"]
    assert b.manifest["output"]["activation"] == "sigmoid"
    assert b.manifest["output"]["shape"] == [1, 1]
    assert b.manifest["training"]["positive"] == "smoke_alarm"
    model = models.load_model(b.path / "model.keras")
    head = model.layers[-1]
    assert head.units == 1 and head.activation.__name__ == "sigmoid"
    x, y = evaluate.derive_test_split(b, None, {}, progress=False)
    assert len(y) >= 20 and 0 < y.sum() < len(y), "the test split must hold alarms and negatives"
    kinds = {"float": True} if target == "pi" else {"int8": False, "float": True}
    for kind, use_float in kinds.items():
        p = evaluate.score_clips(b, x, progress=False, use_float=use_float)[:, 1]
        acc = float(((p > 0.5) == y).mean())
        # measured: Pi 0.94-1.0; RP2040 1.0 (20 clips), then 0.882 on 34 (30/34: four real
        # recordings among the negatives, a moan, a squeak and Czech speech, scored 0.95+; its
        # stream_cnn base has no level normaliser, docs/training.md "Smoke and CO alarms")
        floor = 0.9 if target == "pi" else 0.82
        assert acc >= floor, f"alarm {target} {kind}: test accuracy {acc:.3f} on {len(y)} clips"
        # a detector, not a coin: alarms and negatives get well-separated probabilities
        assert float(np.median(p[y == 1])) > 0.8 and float(np.median(p[y == 0])) < 0.2, (kind, p, y)


def test_alarm_detector_fires_on_a_stream_alarm_and_not_on_speech(alarm_bundles: dict[str, Path]) -> None:
    """1 s windows of a make_stream stream (alarm pitch and level unlike the training clips')
    against the bundle's own threshold (chosen on validation streams, docs/evaluation.md)."""
    from daemon.inference import Classifier
    from trainer.synth import make_stream

    audio, truth = make_stream(7, 12.0, [(1.0, "smoke_alarm"), (7.0, "kitchen"), (9.5, "water")])
    alarm = truth[0]
    starts = np.arange(0, len(audio) - 16000 + 1, 4000)
    for target in ("pi", "rp2040"):
        b = load_bundle(alarm_bundles[target])
        clf, thr = Classifier(b), b.thresholds["smoke_alarm"]
        p = np.array([clf.scores(audio[s : s + 16000])[1] for s in starts])
        t = starts / 16000
        inside = (t >= alarm["onset_s"]) & (t + 1.0 <= alarm["end_s"])
        outside = (t >= alarm["end_s"] + 0.2) | (t + 1.0 <= alarm["onset_s"])
        assert np.mean(p[inside] >= thr) >= 0.75, (target, thr, p[inside])
        assert np.mean(p[outside] >= thr) <= 0.1, (target, thr, t[outside], p[outside])


def test_train_refuses_positive_without_base(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="--transfer-from and --positive go together"):
        run_cli("trainer", "train", str(synth_root / "keywords"), "--out", str(tmp_path),
                "--positive", "yes", timeout=120)


def test_a_makers_few_speakers_get_the_same_speaker_figure_beside_the_unseen_one(
    tmp_path: Path,
) -> None:
    """A folder set of a few speakers (split by speaker hash): the manifest and the summary
    carry the unseen-speaker test figure and, from held-back takes of the training speakers,
    the same-speaker one; a set whose lists decide the split (the synthetic one) gets none."""
    from fixtures_data import tone

    from earshot.wavio import write_wav
    from trainer import train
    from trainer.__main__ import build_parser

    rng = np.random.default_rng(0)
    for label, hz in (("hum", 220.0), ("whistle", 1800.0)):
        for s in range(8):
            for n in range(10):
                x = tone(hz * (1 + 0.02 * s)) * float(rng.uniform(0.2, 0.8))
                write_wav(tmp_path / "data" / label / f"spk{s}_{n:02d}.wav", x)
    proc = run_cli("trainer", "train", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
                  "--target", "pi", "--epochs", "3", "--augment-copies", "0")  # fmt: skip
    m = load_bundle(tmp_path / "o" / "pi").manifest
    assert m["training"]["seen_percent"] == train.SEEN_PERCENT
    assert m["metrics"]["n_seen"] >= 8 and 0.0 <= m["metrics"]["seen_speaker_accuracy"] <= 1.0
    assert m["training"]["counts"]["seen"] == m["metrics"]["n_seen"]
    out = proc.stdout.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("target "))
    assert "seen spk" in out[head] and f"{m['metrics']['seen_speaker_accuracy']:.3f}" in out[head + 2]
    assert "what a new voice gets" in out[head + 3]

    def seen_of(*flags: str) -> float:
        args = build_parser().parse_args(["train", *flags, "--out", str(tmp_path / "x")])
        return train.seen_percent(train.settings_from_args(args))

    listed = tmp_path / "listed"  # Speech Commands layout whose lists decide the split
    write_wav(listed / "hum" / "a_nohash_0.wav", tone(220.0))
    (listed / "testing_list.txt").write_text("hum/a_nohash_0.wav\n")
    assert seen_of(str(listed)) == 0.0
    assert seen_of(str(tmp_path / "data"), "--seen-test", "0") == 0.0
    assert seen_of(str(listed), "--seen-test", "20") == 20.0
