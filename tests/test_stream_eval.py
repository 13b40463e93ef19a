"""Continuous-audio evaluation: the matcher's counts, the stream builder, replay, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from daemon.config import DetectorSettings
from earshot.bundle import load_bundle
from earshot.wavio import read_wav, write_wav
from tests.fixtures_data import tone
from trainer import stream_eval
from trainer.stream_eval import match, pool, replay, run_stream, stream_metrics
from trainer.streams import (
    Event,
    StreamError,
    StreamSpec,
    build_stream,
    find_streams,
    read_events,
    rms_dbfs,
)

FS = 16000


# -- the matcher ---------------------------------------------------------------------------------

EVENTS = [
    Event("A", 10.0, 11.0),
    Event("A", 20.0, 21.0),
    Event("B", 30.0, 31.0),
    Event("A", 40.0, 41.0),  # never detected
]
DETECTIONS = [
    (10.3, "A"),  # hit, 300 ms
    (10.8, "A"),  # same event again: duplicate
    (11.9, "A"),  # still inside end + 1 s: duplicate
    (12.2, "A"),  # just after end + tolerance: false alarm
    (20.5, "A"),  # hit, 500 ms
    (30.2, "A"),  # wrong label during B: false alarm (wrong_label)
    (30.6, "B"),  # hit, 600 ms
    (50.0, "B"),  # nothing there, inside the negative span: false alarm
]


def test_matcher_counts_hits_duplicates_and_false_alarms() -> None:
    m = match(EVENTS, DETECTIONS, duration_s=3600.0, tolerance_s=1.0,
              negative_spans=[(45.0, 60.0)])  # fmt: skip
    assert (m["events"], m["hits"], m["misses"]) == (4, 3, 1)
    assert m["recall"] == 0.75
    assert (m["false_alarms"], m["wrong_label"], m["duplicates"]) == (3, 1, 2)
    assert m["fa_per_hour"] == 3.0  # one hour of stream
    assert m["false_alarms_negative"] == 1
    assert m["fa_per_hour_negative"] == 240.0  # 1 in 15 s
    assert m["latencies_ms"] == [300.0, 500.0, 600.0]
    assert m["latency_ms_p50"] == 500.0 and m["latency_ms_p95"] == 590.0
    a, b = m["per_label"]["A"], m["per_label"]["B"]
    assert (a["events"], a["hits"], a["false_alarms"], a["duplicates"], a["wrong_label"]) == (3, 2, 2, 2, 1)
    assert a["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert a["latency_ms_p50"] == 400.0 and a["latency_ms_p95"] == 490.0
    assert (b["events"], b["hits"], b["false_alarms"], b["latency_ms_p50"]) == (1, 1, 1, 600.0)
    assert m["hits_at"] == [(0, 10.3), (1, 20.5), (2, 30.6)]


def test_matcher_edges_tolerance_order_and_pooling() -> None:
    ev = [Event("A", 10.0, 11.0), Event("A", 11.5, 12.0)]
    # exactly at end + tolerance still counts; the earlier event is hit first, the later one next
    m = match(ev, [(12.0, "A"), (12.5, "A")], 1800.0, tolerance_s=1.0)
    assert m["hits_at"] == [(0, 12.0), (1, 12.5)] and m["false_alarms"] == 0
    m = match(ev, [(11.2, "A"), (12.0, "A"), (13.01, "A")], 1800.0, tolerance_s=0.0)
    assert m["false_alarms"] == 2 and m["hits_at"] == [(1, 12.0)]
    # detections are sorted by time before matching
    assert match(EVENTS, DETECTIONS[::-1], 3600.0)["hits_at"] == match(EVENTS, DETECTIONS, 3600.0)["hits_at"]
    # a label the bundle can fire but nothing used still gets a row
    assert match([], [], 60.0, labels=["C"])["per_label"]["C"]["recall"] is None
    p = pool([match(EVENTS, DETECTIONS, 1800.0), match(EVENTS, [], 1800.0)])
    assert (p["events"], p["hits"], p["false_alarms"], p["fa_per_hour"]) == (8, 3, 3, 3.0)
    assert p["recall"] == 0.375 and p["latency_ms_p50"] == 500.0
    with pytest.raises(ValueError, match="duration_s"):
        match(EVENTS, [], 0.0)


# -- the stream builder --------------------------------------------------------------------------


def _beep_clips(folder: Path) -> list[tuple[str, Path]]:
    """Two labels of 1 s clips: 0.3 s tone bursts in digital silence."""
    out = []
    for lab, hz in (("low", 1000.0), ("high", 3000.0)):
        for i in range(3):
            x = np.zeros(FS, np.float32)
            x[5000:9800] = tone(hz * (1 + 0.02 * i), 0.3, 0.5)
            write_wav(folder / lab / f"{i}.wav", x)
            out.append((lab, folder / lab / f"{i}.wav"))
    return out


def test_events_land_where_the_events_file_says(tmp_path: Path) -> None:
    clips = _beep_clips(tmp_path / "clips")
    spec = StreamSpec(duration_s=30.0, events=8, snr_db=(10.0, 10.0), background_dbfs=-45.0,
                      negative_share=0.2, seed=3)  # fmt: skip
    ev = build_stream(tmp_path / "s", "beeps", clips, spec=spec, progress=False)
    x = read_wav(ev.wav_path)
    assert x.size == 30 * FS and ev.duration_s == 30.0
    assert [e.label for e in ev.events].count("low") == 4 and len(ev.events) == 8
    inside = np.zeros(x.size, bool)
    for e in ev.events:
        a, b = round(e.start_s * FS), round(e.end_s * FS)
        inside[a:b] = True
        assert e.end_s - e.start_s == pytest.approx(0.3, abs=0.011)  # trimmed to the burst
        assert rms_dbfs(x[a:b]) == pytest.approx(-35.0, abs=0.3)  # bed -45 dBFS + 10 dB SNR
        assert not any(s < e.end_s and e.start_s < t for s, t in ev.negative_spans)
    assert np.abs(x[~inside]).max() == 0.0  # no background file: silence everywhere else
    ordered = sorted((e.start_s, e.end_s) for e in ev.events)
    assert all(b[0] - a[1] >= spec.min_gap_s - 1e-3 for a, b in zip(ordered, ordered[1:], strict=False))
    assert ev.negative_s == pytest.approx(6.0, abs=1e-3)


def test_streams_are_reproducible_from_the_seed(tmp_path: Path) -> None:
    clips = _beep_clips(tmp_path / "clips")
    noise = tmp_path / "bg" / "noise.wav"
    write_wav(noise, 0.1 * np.random.default_rng(0).standard_normal(3 * FS))
    negs = tmp_path / "neg"
    write_wav(negs / "hum.wav", tone(2000.0, 0.5, 0.3))
    spec = StreamSpec(duration_s=40.0, events=6, negative_share=0.3, negatives_per_minute=20, seed=7)
    files = {}
    for name, s in (("a", spec), ("b", spec), ("c", replace(spec, seed=8))):
        ev = build_stream(tmp_path / name, "s", clips, [noise.parent], [negs], s, progress=False)
        files[name] = (ev.wav_path.read_bytes(), json.loads(ev.path.read_text()))
    assert files["a"] == files["b"]
    assert files["a"][0] != files["c"][0]
    doc = files["a"][1]
    assert doc["negatives"], "negatives should be placed in the negative-only stretches"
    for n in doc["negatives"]:
        assert any(s["start_s"] <= n["start_s"] < n["end_s"] <= s["end_s"] for s in doc["negative_spans"])
    # between the placed sounds the stream is the bed alone, at its RMS level
    x = read_wav(tmp_path / "a" / "s.wav")
    bed = np.ones(x.size, bool)
    for item in doc["events"] + doc["negatives"]:
        bed[round(item["start_s"] * FS) : round(item["end_s"] * FS)] = False
    assert bed.mean() > 0.5 and rms_dbfs(x[bed]) == pytest.approx(-45.0, abs=0.5)


def test_folder_dataset_and_bad_spec(tmp_path: Path) -> None:
    _beep_clips(tmp_path / "clips")
    (tmp_path / "clips" / "_background_noise_").mkdir()
    ev = build_stream(tmp_path / "s", "f", tmp_path / "clips", spec=StreamSpec(duration_s=20, events=4),
                      labels=["high"], progress=False)  # fmt: skip
    assert {e.label for e in ev.events} == {"high"}
    with pytest.raises(StreamError, match="do not fit in"):
        build_stream(tmp_path / "s", "g", tmp_path / "clips", spec=StreamSpec(duration_s=5, events=20),
                     progress=False)  # fmt: skip
    with pytest.raises(StreamError, match="label 'nope' has no folder"):
        build_stream(tmp_path / "s", "h", tmp_path / "clips", labels=["nope"], progress=False)


GOOD = {"version": 1, "duration_s": 10.0,
        "events": [{"label": "a", "start_s": 1.0, "end_s": 2.0, "source": "x.wav"}]}  # fmt: skip


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("events"), "missing key 'events'"),
        (lambda d: d.update(version=2), "version must be 1"),
        (lambda d: d.update(duration_s="long"), "duration_s must be a finite number"),
        (lambda d: d["events"][0].update(end_s=0.5), r"events\[0\].end_s \(0.5\) must be after start_s"),
        (lambda d: d["events"][0].update(end_s=11.0), r"events\[0\].end_s \(11.0\) is after the stream's duration_s"),
        (lambda d: d["events"][0].pop("label"), r"events\[0\].label must be a non-empty string"),
        (lambda d: d["events"][0].pop("start_s"), r"events\[0\] has no key 'start_s'"),
        (lambda d: d.update(negative_spans=[{"start_s": 1.5, "end_s": 3.0}]), "lies in the negative span"),
        (lambda d: d.update(events={}), "events must be a list"),
    ],
)
def test_bad_events_file_names_the_file_and_key(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(GOOD))
    edit(doc)
    p = tmp_path / "bad.events.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(StreamError, match=message) as e:
        read_events(p)
    assert str(p) in str(e.value)


def test_events_file_not_json_and_missing_wav(tmp_path: Path) -> None:
    p = tmp_path / "x.events.json"
    p.write_text("{nope")
    with pytest.raises(StreamError, match=f"{p}: not valid JSON"):
        read_events(p)
    p.write_text(json.dumps(GOOD))
    assert read_events(p).events == (Event("a", 1.0, 2.0, "x.wav"),)
    with pytest.raises(StreamError, match=r"x.events.json: its audio .*x.wav does not exist"):
        find_streams([tmp_path])
    with pytest.raises(StreamError, match="no such events file"):
        find_streams([tmp_path / "other.wav"])


def test_cli_names_a_bad_events_file(tmp_path: Path) -> None:
    p = tmp_path / "s.events.json"
    p.write_text(json.dumps({**GOOD, "version": 3}))
    write_wav(tmp_path / "s.wav", np.zeros(10 * FS, np.float32))
    with pytest.raises(AssertionError, match=r"s.events.json: version must be 1, got 3"):
        run_cli("trainer", "evaluate-stream", str(tmp_path), "--streams", str(tmp_path),
                "--out", str(tmp_path / "o"), timeout=120)  # fmt: skip


def test_cli_help_has_the_flags_and_an_example() -> None:
    text = run_cli("trainer", "evaluate-stream", "--help", timeout=120).stdout
    for word in ("--streams", "--out", "--target-fa-per-hour", "--tolerance-s",
                 "--detector-threshold-offset", "example:", "earshot-train evaluate-stream"):
        assert word in text, word
    assert "make-streams" in run_cli("trainer", "--help", timeout=120).stdout


# -- end to end ----------------------------------------------------------------------------------


def _tone_stream(tmp_path: Path, seconds: float = 60.0, seed: int = 0) -> Path:
    """Tone bursts the hand-weighted tone bundle knows, over noise, with 2 kHz negatives."""
    clips = []
    for lab, hz in (("low_tone", 1000.0), ("high_tone", 3000.0)):
        for i in range(2):
            write_wav(tmp_path / "clips" / lab / f"{i}.wav", tone(hz * (1 + 0.01 * i), 0.4, 0.3))
            clips.append((lab, tmp_path / "clips" / lab / f"{i}.wav"))
    write_wav(tmp_path / "bg" / "noise.wav", 0.05 * np.random.default_rng(1).standard_normal(5 * FS))
    write_wav(tmp_path / "neg" / "other.wav", tone(2000.0, 0.4, 0.3))
    spec = StreamSpec(duration_s=seconds, events=12, snr_db=(24.0, 34.0), background_dbfs=-50.0,
                      negative_share=0.25, negatives_per_minute=30, seed=seed)  # fmt: skip
    build_stream(tmp_path / "streams", f"tones-{seed}", clips, [tmp_path / "bg"], [tmp_path / "neg"],
                 spec, progress=False)  # fmt: skip
    return tmp_path / "streams"


def _keys(dets):  # type: ignore[no-untyped-def]
    return [(d.t_ms, d.label, d.score) for d in dets]


def test_replay_reproduces_the_live_recogniser(tmp_path: Path) -> None:
    from tests.test_daemon_helpers import tone_bundle

    b = load_bundle(tone_bundle())
    (ev,) = find_streams([_tone_stream(tmp_path)])
    audio = read_wav(ev.wav_path)
    for settings in (DetectorSettings(), DetectorSettings(threshold_offset=-0.3, min_count=1, suppression_ms=500)):
        live = run_stream(b, audio, settings, progress=False)
        assert live.detections, "the tone stream should make the live run fire"
        assert _keys(replay(live)) == _keys(live.detections)
        # replaying the default run at other settings is the live run at those settings
        other = replace(settings, threshold_offset=settings.threshold_offset + 0.25)
        cfg = stream_eval.detector_config(b, other)
        base = run_stream(b, audio, DetectorSettings(), progress=False)
        assert _keys(replay(base, cfg)) == _keys(run_stream(b, audio, other, progress=False).detections)
    gated = sum(s is None for s in live.scores)
    assert 0 < len(live.t_ms) == int(ev.duration_s * 10) and gated == 0  # one hop per 100 ms


def test_cli_writes_report_and_det_plot_on_tone_streams(tmp_path: Path) -> None:
    from tests.test_daemon_helpers import tone_bundle

    bundle = tone_bundle()
    streams = _tone_stream(tmp_path, seed=0)
    _tone_stream(tmp_path, seed=1)
    out = tmp_path / "out"
    proc = run_cli("trainer", "evaluate-stream", str(bundle), "--streams", str(streams), "--out", str(out),
                   "--no-progress", "--target-fa-per-hour", "60", timeout=300)  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    (e,) = report["bundles"]
    o = e["overall"]
    assert len(e["streams"]) == 2 and o["events"] == 24
    assert o["hits"] == sum(s["hits"] for s in e["streams"])
    assert o["recall"] >= 0.9, o  # 24-34 dB tone bursts: the hand-set model should catch them
    assert o["hours"] == pytest.approx(120 / 3600, abs=1e-6)
    assert o["fa_per_hour"] == pytest.approx(o["false_alarms"] / o["hours"], abs=1e-2)
    assert 0 < o["latency_ms_p50"] <= o["latency_ms_p95"] < 1400
    assert set(o["per_label"]) == {"low_tone", "high_tone"}
    assert e["replay_matches_live"] is True
    cur = e["at_current_offset"]
    assert cur["threshold_offset"] == 0.0
    assert (cur["hits"], cur["false_alarms"]) == (o["hits"], o["false_alarms"])
    miss = [r["miss_rate"] for r in e["sweep"]]
    assert miss[0] <= miss[-1] and miss[-1] > 0.5  # thresholds near 1 miss most events
    s = e["suggested"]
    md = (out / "report.md").read_text()
    assert s is not None and s["fa_per_hour"] <= 60
    assert s["miss_rate"] == min(r["miss_rate"] for r in e["sweep"] if r["fa_per_hour"] <= 60)
    tied = [r["threshold_offset"] for r in e["sweep"] if r["fa_per_hour"] <= 60 and r["miss_rate"] == s["miss_rate"]]
    assert s["threshold_offset"] == tied[len(tied) // 2]  # the middle of the tied offsets
    assert "longer streams before trusting" not in md  # 2 min resolve 60/h
    assert f"recall {o['recall']:.3f} ({o['hits']}/{o['events']})" in proc.stdout
    assert f"]({e['det_png']})" in md and f"`--detector-threshold-offset {s['threshold_offset']:+.2f}`" in md
    with Image.open(out / e["det_png"]) as im:
        assert im.format == "PNG" and im.size[0] >= 400


def test_record_thresholds_picks_a_timing_the_daemon_and_compiler_then_use(tmp_path: Path) -> None:
    from tests.test_daemon_helpers import tone_bundle
    from trainer.compiler.model import policy_of

    bundle = tone_bundle(tmp_path / "bundle")
    streams = _tone_stream(tmp_path, seed=0)
    out = tmp_path / "out"
    proc = run_cli("trainer", "evaluate-stream", str(bundle), "--streams", str(streams), "--out", str(out),
                   "--no-progress", "--target-fa-per-hour", "60", "--record", "thresholds", timeout=300)  # fmt: skip
    (e,) = json.loads((out / "report.json").read_text())["bundles"]
    t = e["timing"]
    assert [(r["average_window_ms"], r["min_count"]) for r in t["tried"]] == list(stream_eval.TIMINGS)
    ok = [r for r in t["tried"] if r["suggested"] is not None]
    assert t["suggested"] is not None and ok
    best = min(r["suggested"]["miss_rate"] for r in ok)
    first = next(r for r in ok if r["suggested"]["miss_rate"] == best)  # ties: the shorter window
    assert (t["average_window_ms"], t["min_count"]) == (first["average_window_ms"], first["min_count"])
    assert f"averaging window {t['average_window_ms']} ms" in proc.stdout
    assert "| window ms | min count |" in (out / "report.md").read_text()
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["detector"]["average_window_ms"] == t["average_window_ms"]
    assert m["detector"]["min_count"] == t["min_count"]
    assert m["thresholds_from"]["offset"] == t["suggested"]["threshold_offset"]
    # the bundle's timing is what the daemon and the compiled policy run, unless a user sets one
    b = load_bundle(bundle)
    cfg = stream_eval.detector_config(b, DetectorSettings())
    assert (cfg.average_window_ms, cfg.min_count, cfg.suppression_ms) == (t["average_window_ms"], t["min_count"], 1500)
    assert policy_of(b).average_window_ms == t["average_window_ms"]
    mine = stream_eval.detector_config(b, DetectorSettings(average_window_ms=700, min_count=4))
    assert (mine.average_window_ms, mine.min_count) == (700, 4)
    assert policy_of(b, average_window_ms=700).average_window_ms == 700


@pytest.mark.slow
def test_alarm_bundle_on_a_constructed_stream(
    synth_root: Path, alarm_bundles: dict[str, Path], tmp_path: Path
) -> None:
    from trainer.heldout import alarm_cycles

    alarm = synth_root / "alarm"
    cycles = alarm_cycles(tmp_path / "cycles", 5, ["smoke_alarm"], count=12)  # two T3 cycles each
    build_stream(tmp_path / "streams", "alarm", cycles, [alarm / "_background_noise_"], [alarm / "background"],
                 StreamSpec(duration_s=240.0, events=12, seed=5), progress=False)  # fmt: skip
    out = tmp_path / "out"
    run_cli("trainer", "evaluate-stream", str(alarm_bundles["pi"]), "--streams", str(tmp_path / "streams"),
            "--out", str(out), "--no-progress", timeout=600)  # fmt: skip
    (e,) = json.loads((out / "report.json").read_text())["bundles"]
    o = e["overall"]
    assert e["target_fa_per_hour"] == 1.0  # an alarm bundle gets the alarm budget
    assert e["firing_labels"] == ["smoke_alarm"] and o["events"] == 12
    assert o["recall"] >= 0.75, o
    assert o["latency_ms_p50"] is not None and 0 < o["latency_ms_p50"] < 6500  # within 2 cycles
    assert isinstance(o["fa_per_hour"], float) and o["fa_per_hour_negative"] is not None
    assert e["replay_matches_live"] is True
    with Image.open(out / e["det_png"]) as im:
        assert im.format == "PNG"
    # the library call gives the same figures, and its recordings replay to the live detections
    recs: list = []
    m = stream_metrics(alarm_bundles["pi"], [tmp_path / "streams"], progress=False, recordings=recs)
    assert m["overall"] == o
    assert _keys(replay(recs[0])) == _keys(recs[0].detections)


def test_suggestion_is_the_lowest_miss_within_budget() -> None:
    from trainer.stream_eval import suggest

    rows = [{"threshold_offset": o, "miss_rate": m, "fa_per_hour": f}
            for o, m, f in [(-0.2, 0.0, 9.0), (-0.1, 0.1, 2.0), (0.0, 0.1, 1.0), (0.1, 0.1, 0.0),
                            (0.2, 0.3, 0.0), (0.3, 1.0, 0.0)]]  # fmt: skip
    assert suggest(rows, 2.0)["threshold_offset"] == 0.0  # middle of the three 10 % rows
    assert suggest(rows, 10.0)["threshold_offset"] == -0.2
    assert suggest(rows[:1], 1.0) is None


def test_make_streams_cli_builds_seeded_streams(tmp_path: Path) -> None:
    _beep_clips(tmp_path / "clips")
    out = tmp_path / "streams"
    proc = run_cli("trainer", "make-streams", str(tmp_path / "clips"), "--out", str(out), "--count", "2",
                   "--duration-s", "20", "--events", "4", "--seed", "10", "--no-progress", timeout=120)  # fmt: skip
    found = find_streams([out])
    assert [ev.path.name for ev in found] == ["stream-000.events.json", "stream-001.events.json"]
    assert [json.loads(ev.path.read_text())["seed"] for ev in found] == [10, 11]
    assert all(len(ev.events) == 4 and ev.duration_s == 20.0 for ev in found)
    assert f"{found[0].wav_path}: 20 s, 4 events" in proc.stdout


def test_window_means_are_what_the_detector_averages(tmp_path: Path) -> None:
    """The per-label sweep's vectorised window means equal the Detector's own sums / counts."""
    from tests.test_daemon_helpers import tone_bundle

    b = load_bundle(tone_bundle())
    (ev,) = find_streams([_tone_stream(tmp_path)])
    rec = run_stream(b, read_wav(ev.wav_path), progress=False)
    for window, count, hist in ((300, 2, 32), (1500, 8, 32), (5000, 1, 12)):
        cfg = replace(stream_eval.detector_config(b, DetectorSettings(average_window_ms=window,
                                                                      min_count=count)), max_history=hist)  # fmt: skip
        t, n, means = stream_eval.window_means(rec, cfg)
        kept = [(tt, s) for tt, s in zip(rec.t_ms, rec.scores, strict=True) if s is not None]
        for i, (tt, _) in enumerate(kept):
            inside = [s for t2, s in kept[: i + 1] if tt - t2 < window][-hist:]
            assert t[i] == tt and n[i] == len(inside)
            assert np.allclose(means[i], np.mean(inside, axis=0), atol=1e-9)


def test_per_label_thresholds_free_a_label_one_offset_would_miss() -> None:
    """Label A fires confidently on its events and on nothing else; label B's events score only
    0.6 and a noise burst scores A at 0.9: one offset for both misses B or pays false alarms,
    one threshold each catches every event within the budget."""
    from earshot.detector import DetectorConfig
    from trainer.stream_eval import Recording, per_label_thresholds

    labels = ("_x_", "A", "B")
    t_ms, scores = [], []
    events = []
    for k in range(40):  # one item every 10 s for 400 s: A events, B events, A-like noise
        start = k * 10_000
        kind = ("A", "B", "noise", "quiet")[k % 4]
        if kind in ("A", "B"):
            events.append(Event(kind, start / 1000 + 1.0, start / 1000 + 2.0))
        for h in range(100):
            t = start + h * 100
            on = 1000 <= h * 100 < 2000
            p = {"A": (0.02, 0.96, 0.02), "B": (0.4, 0.0, 0.6), "noise": (0.15, 0.85, 0.0)}.get(kind)
            s = np.array(p if on and p else (1.0, 0.0, 0.0), np.float32)
            t_ms.append(t)
            scores.append(s)
    cfg = DetectorConfig(labels=labels, thresholds=(0.5, 0.5, 0.5), average_window_ms=300,
                         min_count=2, suppression_ms=1500, ignore=frozenset({"_x_"}))  # fmt: skip
    rec = Recording(t_ms, scores, [], cfg, 400.0)
    ev = type("Ev", (), {"events": tuple(events), "duration_s": 400.0, "negative_spans": ()})()
    for off in np.arange(-0.4, 0.5, 0.05):  # one offset for both: misses B, or fires on the noise
        thr = tuple(min(1.0, 0.5 + off) for _ in labels)
        m = match(events, [(d.t_ms / 1000, d.label) for d in replay(rec, replace(cfg, thresholds=thr))], 400.0)
        assert m["misses"] > 0 or m["false_alarms"] > 0, off
    got = per_label_thresholds([(ev, rec)], cfg, 1.0, 0.0)  # no false alarm allowed
    assert got is not None and got["miss_rate"] == 0.0 and got["false_alarms"] == 0
    assert got["thresholds"]["A"] > 0.85 and got["thresholds"]["B"] <= 0.6
