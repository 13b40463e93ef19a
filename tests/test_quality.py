"""Quality floors on material training never used, for two training seeds.

What a user in a real room gets: the Pi keyword bundle (the default, ``logmel`` + ``kws_dscnn``)
scored on the synthetic set's test split (speakers of accents and espeak-ng variants no training
speaker has), clean and with held-out music and speech mixed in at 10 dB, and run as
``earshotd run`` runs it over held-out streams (``trainer.heldout``: test voices over held-out
recordings, with words no model trained on). The floors sit a margin below what
``bench/quality.py`` measured on other streams (layout seed 1; these use seed 7), so no setting
was chosen by watching these streams. ``FLOORS`` records the measurement each floor comes from.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import KEYWORDS, cached, run_cli

from earshot.bundle import load_bundle
from trainer import evaluate, heldout
from trainer.stream_eval import stream_metrics

pytestmark = pytest.mark.slow

FLOORS = {
    # measured (bench/quality.py, docs/training.md "Held-out figures") -> asserted
    "clip_clean": 0.80,  # 0.909 on the test split (seed 0)
    "clip_noisy_10db": 0.60,  # 0.72
    "stream_recall": 0.50,  # 0.66
    "stream_fa_per_hour": 180.0,  # 87
}
STREAM_SEED = 7


@pytest.fixture(scope="session")
def seed1_pi_bundle(synth_root: Path) -> Path:
    """The Pi keyword bundle trained as the fixture's, with training seed 1."""
    from conftest import AUGMENT_COPIES, TRAIN_EPOCHS, UNKNOWN_SHARE

    params = {"data": synth_root.name, "epochs": TRAIN_EPOCHS, "seed": 1, "target": "pi",
              "labels": KEYWORDS, "augment_copies": AUGMENT_COPIES,
              "unknown_share": UNKNOWN_SHARE}  # fmt: skip

    def make(tmp: Path) -> None:
        run_cli("trainer", "train", str(synth_root / "keywords"), "--out", str(tmp),
                "--target", "pi", "--epochs", str(TRAIN_EPOCHS), "--seed", "1",
                "--labels", ",".join(KEYWORDS), "--unknown", "--silence",
                "--unknown-share", str(UNKNOWN_SHARE), "--augment-copies", str(AUGMENT_COPIES))

    return cached("keywords-seed1", params, make) / "pi"


@pytest.fixture(scope="session")
def heldout_streams(synth_root: Path) -> Path:
    """Held-out keyword streams: one 4-minute events stream and 20 minutes of negatives."""

    def make(tmp: Path) -> None:
        heldout.make_streams(synth_root / "keywords", tmp, KEYWORDS, "test", seed=STREAM_SEED,
                             events_streams=1, events_minutes=4.0, negatives_minutes=20.0,
                             progress=False)  # fmt: skip

    return cached("heldout-streams", {"data": synth_root.name, "seed": STREAM_SEED}, make)


@pytest.fixture(scope="session", params=[0, 1], ids=["seed0", "seed1"])
def trained(request, keyword_bundles: dict[str, Path], seed1_pi_bundle: Path) -> Path:
    return keyword_bundles["pi"] if request.param == 0 else seed1_pi_bundle


def test_clip_accuracy_on_voices_training_never_heard(trained: Path) -> None:
    b = load_bundle(trained)
    x, y = evaluate.derive_test_split(b, None, {}, False)
    speakers = {p for p in b.manifest["training"]["report"]["groups"]}
    assert speakers == {"train", "val", "test"}  # the split is by speaker (tests/test_synth.py)
    clean = evaluate.model_report(evaluate.score_clips(b, x, False), y, b.labels)["accuracy"]
    noisy_x = heldout.noisy(x, 10.0, "test")
    noisy = evaluate.model_report(evaluate.score_clips(b, noisy_x, False), y, b.labels)["accuracy"]
    assert clean >= FLOORS["clip_clean"], clean
    assert noisy >= FLOORS["clip_noisy_10db"], noisy


def test_streamed_recall_and_false_alarms_on_held_out_streams(
    trained: Path, heldout_streams: Path
) -> None:
    m = stream_metrics(trained, [heldout_streams], progress=False)
    o = m["overall"]
    assert o["hours"] > 0.39 and o["events"] >= 20
    assert m["replay_matches_live"]
    assert o["recall"] >= FLOORS["stream_recall"], o
    assert o["fa_per_hour"] <= FLOORS["stream_fa_per_hour"], o
