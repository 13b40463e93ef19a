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
from conftest import KEYWORDS, cached, make_alarm_bundles, run_cli

from earshot.bundle import load_bundle
from trainer import evaluate, heldout
from trainer.stream_eval import stream_metrics

pytestmark = pytest.mark.slow

FLOORS = {
    # measured (docs/training.md "What generalises": the fixture configuration on 1.33 h of
    # test streams laid out with seed 1, as trained) -> asserted. With real recordings under
    # most augmentation mixes the model trades recall for 2.7x fewer false alarms (0.675 at
    # 105/h before), so the recall floor came down and the false-alarm ceiling with it. With no
    # recording that says a keyword among the real clips (trainer.recordings.may_say: Czech "no",
    # "ano", hedgewars' "Enemy down", ...) the fixture bundles of seeds 0 / 1 measured recall
    # 0.775 / 0.65 at 111 / 58.5 FA/h on those 1.33 h (and 0.79 at 135/h for seed 0 on these
    # 0.4 h): they lost real hard negatives that say a keyword's sounds.
    "clip_clean": 0.80,  # 0.928 / 0.919 on the test split (seeds 0 / 1)
    "clip_noisy_10db": 0.60,  # 0.72 (seed 0, before the recordings that say a keyword went)
    "stream_recall": 0.45,  # 0.775 / 0.65
    "stream_fa_per_hour": 200.0,  # 111 / 58.5
}
STREAM_SEED = 7
ALARM_FLOORS = {
    # measured (docs/training.md "Smoke and CO alarms": 1.33 h of test streams laid out with
    # seed 1, settings chosen on 1.33 h of validation streams) -> asserted; the fixture
    # detectors of seeds 0 and 1 (settings from 20 validation minutes), mining 90 min, gave
    # 0.933 / 1.00 at 12.0 / 4.8 FA/h here (unmined, the same code: 0.933 / 0.933 at 12.0 / 2.4),
    # so the floors hold today's level with a margin, not the goal (1/h)
    "stream_recall": 0.80,  # 1.00
    "stream_fa_per_hour": 20.0,  # 0.75
}


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


ALARM_LABELS = ["smoke_alarm", "co_alarm"]


@pytest.fixture(scope="session")
def alarm_heldout_streams(synth_root: Path) -> Path:
    """Held-out alarm streams: 15 smoke and CO alarms of two cycles each in 5 minutes, 20
    minutes of negatives (test recordings), laid out with a seed no setting was chosen on."""

    def make(tmp: Path) -> None:
        heldout.make_streams(synth_root / "alarm", tmp, ALARM_LABELS, "test", seed=STREAM_SEED,
                             events_streams=1, events_minutes=5.0, negatives_minutes=20.0,
                             progress=False)  # fmt: skip

    return cached("heldout-alarm-streams", {"data": synth_root.name, "seed": STREAM_SEED,
                                            "labels": ALARM_LABELS}, make)  # fmt: skip


@pytest.fixture(scope="session", params=[0, 1], ids=["seed0", "seed1"])
def alarm_pi(request, synth_root: Path, keyword_bundles: dict[str, Path], seed1_pi_bundle: Path) -> Path:
    """The demo's Pi smoke/CO detector (``--positive smoke_alarm,co_alarm``), from the keyword
    bundle of the same training seed, its settings chosen on validation streams."""
    import conftest as c

    base = keyword_bundles["pi"] if request.param == 0 else seed1_pi_bundle
    params = {"data": synth_root.name, "base": base.parent.name, "seed": request.param,
              "epochs": c.ALARM_EPOCHS["pi"], "augment_copies": c.ALARM_AUGMENT_COPIES,
              "val_streams_min": c.ALARM_VAL_STREAM_MIN, "positive": ALARM_LABELS,
              "val_target": c.ALARM_VAL_TARGET, "hard_negatives": c.ALARM_HARD_NEGATIVES}  # fmt: skip

    def make(tmp: Path) -> None:
        make_alarm_bundles(tmp, synth_root, {"pi": base}, request.param, ",".join(ALARM_LABELS),
                           c.ALARM_HARD_NEGATIVES)  # fmt: skip

    return cached("alarm-demo", params, make) / "pi"


def test_smoke_and_co_detector_on_held_out_alarm_streams(alarm_pi: Path, alarm_heldout_streams: Path) -> None:
    """The alarm detector as make demo leaves it (settings chosen on validation streams) over
    alarms and negatives no step chose anything on."""
    doc = load_bundle(alarm_pi).manifest
    assert doc.get("thresholds_from", {}).get("streams"), "settings were not chosen on streams"
    m = stream_metrics(alarm_pi, [alarm_heldout_streams], progress=False)
    o = m["overall"]
    assert o["events"] >= 12 and o["hours"] > 0.4 and m["replay_matches_live"]
    assert o["recall"] >= ALARM_FLOORS["stream_recall"], o
    assert o["fa_per_hour"] <= ALARM_FLOORS["stream_fa_per_hour"], o


MCU_LEVEL_FLOORS = {
    # measured (docs/training.md "The RP2040 front end": bench/quality.py's recipe, 40 epochs,
    # training seeds 0 / 1, the test split scaled by a gain) -> asserted on the fixture bundle
    # (20 epochs, seed 0). The linear q15 front end it replaced: 0.617 / 0.690 at -10 dB, a drop
    # of 0.21 / 0.13 from 0 dB.
    "clip_minus_10db": 0.70,  # 0.844 / 0.822
    "drop_to_minus_10db": 0.12,  # 0.06 / 0.08
}


def test_the_rp2040_keyword_model_holds_up_when_the_microphone_is_10_db_quieter(
    rp2040_bundle: Path,
) -> None:
    """Microphones sit 15-20 dB apart: the int8 model on the chip's own input (q15log), scored
    on voices training never heard, at the training level and 10 dB below it."""
    b = load_bundle(rp2040_bundle)
    assert b.frontend().name == "q15log"
    x, y = evaluate.derive_test_split(b, None, {}, False)
    acc = {g: evaluate.model_report(evaluate.score_clips(b, x * 10 ** (g / 20), False), y,
                                    b.labels)["accuracy"] for g in (0, -10)}  # fmt: skip
    assert acc[-10] >= MCU_LEVEL_FLOORS["clip_minus_10db"], acc
    assert acc[0] - acc[-10] <= MCU_LEVEL_FLOORS["drop_to_minus_10db"], acc
