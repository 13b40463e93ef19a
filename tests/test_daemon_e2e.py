"""End to end on TRAINED bundles: a rendered stream through `earshotd run` (WAV source, unpaced).

The stream (``trainer.synth.make_stream``) holds keywords, a smoke alarm and words that are
neither, over pink noise and hum, and ends in digital silence. Each daemon run must detect every
event of its model's labels, with the right label, within ``LATENCY_MS``, and nothing else: no
detection on the noise, the negatives, the other model's events or the silence. A long event
(the 2.5 s smoke alarm) may fire again while it is still sounding (after ``[detector]
suppression_ms``); those repeats count as the same event, not as false alarms.

Where the 500 ms is measured from (the budget in docs/architecture.md: "sound onset -> alert <= 500 ms p95"): from the
onset for a sound that is recognisable from its start (``FROM_ONSET``: the alarms, measured
110-210 ms), from the END of a spoken word (the truth's ``end_s``), because a word cannot be
named before it has been said ("no" and "go" share their first 100 ms, "up" is half said at
150 ms). Both latencies are in the per-event table. Measured on this stream with the fixture Pi
keyword bundle (docs/daemon.md, "Latency"): trained on centred words only, 600-800 ms from the
onset (140-505 ms from the end); with the late-biased time shift (``trainer.train.STREAM_SHIFT``)
400-600 ms from the onset, -86 to 143 ms from the end.

On failure the message is the whole per-event table, so a weak model is reported precisely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from earshot.bundle import load_bundle
from tests.test_daemon_helpers import base_args, earshotd, empty_config, write_stream

LATENCY_MS = 500
"""Sound-to-alert budget (docs/architecture.md), in stream time: from the onset for ``FROM_ONSET`` labels,
from the end of the word for the rest."""
FROM_ONSET = frozenset({"smoke_alarm", "co_alarm"})
"""Sounds recognisable from their start; every other event is a word, timed from its end."""
WINDOW_MS = 1000
"""The classified window: an event stays in it this long after its end."""
SEED = 11
EVENTS = [
    (2.0, "yes"), (5.0, "no"), (8.0, "hello"), (11.0, "up"), (14.0, "smoke_alarm"),
    (19.0, "kitchen"), (22.0, "stop"), (25.0, "go"), (28.0, "water"),
]  # fmt: skip
DURATION_S = 34.0
SILENCE_FROM_S = 31.0
"""Digital silence from here to the end."""

@dataclass(frozen=True)
class Outcome:
    """Detections of one run matched against the ground truth."""

    rows: list[str]
    """One line per event and per unmatched detection, for the failure message."""
    missed: list[str]
    """Events of the model's labels with no timely detection of the right label."""
    false_alarms: list[str]
    """Detections that belong to no event of their label."""


def match(truth: list[dict], detections: list[dict], labels: set[str], budget_ms: float = LATENCY_MS) -> Outcome:
    rows, missed, used = [], [], set()
    for ev in truth:
        on, end = ev["onset_s"] * 1000, ev["end_s"] * 1000
        hits = [i for i, d in enumerate(detections)
                if d["label"] == ev["label"] and on < d["stream_t_ms"] <= end + WINDOW_MS]  # fmt: skip
        used.update(hits)
        kind = "positive" if ev["label"] in labels else "negative"
        ref = on if ev["label"] in FROM_ONSET else end
        late = detections[hits[0]]["stream_t_ms"] - ref if hits else None
        heard = [f"{d['label']}@{d['stream_t_ms']}" for d in detections if on <= d["stream_t_ms"] <= end + WINDOW_MS]
        timing = ("" if late is None else f", first after {late + ref - on:.0f} ms from the onset"
                  + ("" if ref == on else f", {late:.0f} ms from the end"))  # fmt: skip
        rows.append(f"{ev['label']:>12} at {on:7.0f}-{end:.0f} ms ({kind}): heard {heard or 'nothing'}{timing}")
        if kind == "positive" and (late is None or late > budget_ms):
            missed.append(f"{ev['label']} at {on:.0f} ms")
    false_alarms = [f"{d['label']} ({d['score']:.2f}) at {d['stream_t_ms']} ms"
                    for i, d in enumerate(detections) if i not in used]  # fmt: skip
    rows += [f"  false alarm: {x}" for x in false_alarms]
    return Outcome(rows, missed, false_alarms)


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple[Path, list[dict]]:
    from trainer.synth import make_stream

    audio, truth = make_stream(SEED, DURATION_S, EVENTS)
    audio[int(SILENCE_FROM_S * 16000) :] = 0.0
    path = write_stream(tmp_path_factory.mktemp("e2e") / "stream.wav", audio)
    return path, truth


def run_daemon(bundle: Path, wav: Path) -> list[dict]:
    empty_config()
    proc = earshotd(*base_args(bundle, wav, "--output-json", "-", "--no-oled-enabled"), timeout=300)
    return [json.loads(x) for x in proc.stdout.splitlines()]


def check(bundle: Path, stream: tuple[Path, list[dict]], words_may_fire: bool = False) -> None:
    """Every event of the bundle's labels detected in time, and no false alarm; with
    ``words_may_fire``, a false alarm during a negative word is reported, not failed (below)."""
    wav, truth = stream
    b = load_bundle(bundle)
    labels = {x for x in b.labels if not x.startswith("_")}
    if b.manifest["output"].get("activation") == "sigmoid" and len(b.labels) == 2:
        labels.discard(b.labels[0])
    assert labels & {ev["label"] for ev in truth}, f"{bundle}: stream has none of {labels}"
    dets = run_daemon(bundle, wav)
    # a bundle whose own settings average longer than the default 300 ms (an alarm detector's,
    # chosen on validation streams) alerts later by the difference (docs/daemon.md, "Latency")
    window = b.manifest.get("detector", {}).get("average_window_ms", 300)
    out = match(truth, dets, labels, LATENCY_MS + max(0, window - 300))
    report = f"{bundle.name} ({b.name}, labels {sorted(labels)}):\n" + "\n".join(out.rows)
    false_alarms = out.false_alarms
    if words_may_fire:
        words = [ev for ev in truth if ev["label"] not in labels | FROM_ONSET]
        during = {f"{d['label']} ({d['score']:.2f}) at {d['stream_t_ms']} ms" for d in dets
                  if any(ev["onset_s"] * 1000 <= d["stream_t_ms"] <= ev["end_s"] * 1000 + WINDOW_MS
                         for ev in words)}  # fmt: skip
        false_alarms = [x for x in false_alarms if x not in during]
        print(report)  # the words it took for a keyword, in the -s / failure output
    assert not out.missed and not false_alarms, (
        f"missed {out.missed}; false alarms {false_alarms}\n{report}"
    )


def test_match_counts_repeats_inside_an_event_and_flags_the_rest() -> None:
    """The matcher itself: what counts as a hit, a late hit, a repeat and a false alarm; a word
    is timed from its end, an alarm from its onset."""
    truth = [{"label": "yes", "onset_s": 1.0, "end_s": 1.4}, {"label": "hello", "onset_s": 3.0, "end_s": 3.5},
             {"label": "no", "onset_s": 6.0, "end_s": 6.1}, {"label": "go", "onset_s": 8.0, "end_s": 8.5},
             {"label": "smoke_alarm", "onset_s": 10.0, "end_s": 12.5}]  # fmt: skip
    dets = [{"label": "yes", "score": 0.9, "stream_t_ms": 1300}, {"label": "yes", "score": 0.9, "stream_t_ms": 2300},
            {"label": "no", "score": 0.8, "stream_t_ms": 3300}, {"label": "no", "score": 0.9, "stream_t_ms": 6700},
            {"label": "go", "score": 0.9, "stream_t_ms": 8900}, {"label": "smoke_alarm", "score": 0.9, "stream_t_ms": 10600},
            {"label": "smoke_alarm", "score": 0.9, "stream_t_ms": 12100}]  # fmt: skip
    out = match(truth, dets, {"yes", "no", "go", "smoke_alarm"})
    # "no" ended at 6100: 600 ms after its end is over the budget; "go" 900 ms after its onset
    # but 400 ms after its end is in time; the alarm 600 ms after its onset is late
    assert out.missed == ["no at 6000 ms", "smoke_alarm at 10000 ms"]
    assert out.false_alarms == ["no (0.80) at 3300 ms"]  # on the negative "hello"
    assert len(out.rows) == 6
    assert "first after 900 ms from the onset, 400 ms from the end" in out.rows[3]
    assert out.rows[4].endswith("first after 600 ms from the onset")


@pytest.mark.slow
def test_keyword_bundle_detects_each_keyword_in_time_and_nothing_else(pi_bundle: Path, stream) -> None:
    """Every keyword, in time, and no detection on the noise, the alarm or the silence. The
    three negative words are spoken by voices the model never heard, and it still takes some
    unseen words for keywords (on held-out streams about 100 false alarms an hour,
    docs/training.md): how often is measured over 20 minutes by tests/test_quality.py, not by
    three words here."""
    check(pi_bundle, stream, words_may_fire=True)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["pi", "rp2040"])
def test_alarm_bundle_detects_the_smoke_alarm_in_time_and_nothing_else(alarm_bundles, target, stream) -> None:
    check(alarm_bundles[target], stream)
