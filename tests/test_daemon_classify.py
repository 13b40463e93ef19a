"""`earshotd classify`: long files window by window with times, bad files skipped, not fatal."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from earshot.wavio import write_wav
from tests.test_daemon_helpers import FS, earshotd, tone_bundle, tone_stream

EVENTS = [(5.0, "low_tone"), (31.0, "high_tone"), (62.5, "low_tone")]


def _rate_zero(path: Path) -> Path:
    write_wav(path, np.zeros(FS))
    raw = bytearray(path.read_bytes())
    raw[24:28] = struct.pack("<I", 0)  # fmt chunk: sample rate
    path.write_bytes(bytes(raw))
    return path


def test_a_long_file_lists_each_detection_with_its_time(tmp_path: Path):
    long = tmp_path / "long.wav"
    write_wav(long, tone_stream(EVENTS, 70.0), rate=FS)  # > 60 s: streamed, never whole
    proc = earshotd("classify", "--model", str(tone_bundle()), "--json", str(long), timeout=300)
    line = json.loads(proc.stdout)
    assert {"file", "label", "score", "scores"} <= set(line)
    assert line["label"] in ("low_tone", "high_tone")  # the best window of the file
    dets = line["detections"]
    assert [d["label"] for d in dets] == [label for _, label in EVENTS]
    for (onset, _), d in zip(EVENTS, dets, strict=True):
        assert d["start_s"] <= onset and onset + 0.4 <= d["end_s"] <= onset + 2.0, d


def test_the_table_form_prints_start_end_label_score(tmp_path: Path):
    wav = tmp_path / "three.wav"
    write_wav(wav, tone_stream([(1.5, "high_tone")], 4.0), rate=FS)
    proc = earshotd("classify", "--model", str(tone_bundle()), str(wav), timeout=120)
    first, *rows = proc.stdout.splitlines()
    assert first.startswith(f"{wav}\thigh_tone\t")
    assert len(rows) == 1
    f, start, end, label, score = rows[0].split("\t")
    assert f == str(wav) and label == "high_tone" and float(start) <= 1.5 < float(end)


def test_a_wav_with_sample_rate_0_is_reported_and_the_batch_goes_on(tmp_path: Path):
    bad = _rate_zero(tmp_path / "rate0.wav")
    good = tmp_path / "good.wav"
    write_wav(good, tone_stream([(0.3, "low_tone")], 1.0))
    proc = earshotd("classify", "--model", str(tone_bundle()), "--json", str(bad), str(good),
                    check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"earshotd: error: {bad}: sample rate 0 in the WAV header" in proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert line["file"] == str(good) and line["label"] == "low_tone"


def test_flac_and_ogg_are_scored_as_their_wav_and_a_broken_mp3_is_skipped(tmp_path: Path):
    import soundfile

    audio = tone_stream(EVENTS, 70.0)  # long: streamed block by block through soundfile
    write_wav(tmp_path / "a.wav", audio, rate=FS)
    t = np.arange(int(70.0 * 44100)) / 44100.0
    up = np.interp(t, np.arange(audio.size) / FS, audio).astype(np.float32)
    soundfile.write(tmp_path / "a.flac", up, 44100)  # another rate: resampled while streaming
    soundfile.write(tmp_path / "a.ogg", audio, FS)
    (tmp_path / "broken.mp3").write_bytes(b"ID3 nothing decodable")
    files = [str(tmp_path / n) for n in ("a.wav", "broken.mp3", "a.flac", "a.ogg")]
    proc = earshotd("classify", "--model", str(tone_bundle()), "--json", *files, check=False,
                    timeout=300)  # fmt: skip
    assert proc.returncode == 1 and "broken.mp3: not a readable audio file" in proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [Path(x["file"]).name for x in lines] == ["a.wav", "a.flac", "a.ogg"]
    for line in lines:
        assert [d["label"] for d in line["detections"]] == [label for _, label in EVENTS], line
