"""Detection clips: kept by `earshotd run` around each detection, bounded on disk, never partial,
reviewed and relabelled with `earshotd clips`, read back by the trainer; and `earshotd listen`."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.clips import NEGATIVE, ClipKeeper, write_clip
from daemon.config import ClipSettings
from daemon.outputs import Alert
from earshot.audio import SAMPLE_RATE
from earshot.wavio import read_wav
from tests.test_daemon_helpers import (
    REPO,
    _env,
    base_args,
    earshotd,
    empty_config,
    tone_bundle,
    tone_stream,
    write_stream,
)

ONSETS = [(2.0, "low_tone"), (5.0, "high_tone")]


def clips_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    import sys

    proc = subprocess.run([sys.executable, "-m", "daemon", "clips", *args], cwd=REPO, env=_env(None),
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_daemon(tmp: Path, *more: str, events=ONSETS, seconds: float = 7.0) -> subprocess.CompletedProcess:
    empty_config()
    wav = write_stream(tmp / "s.wav", tone_stream(events, seconds))
    return earshotd(*base_args(tone_bundle(), wav, "--output-json", "-", "--no-oled-enabled", *more))


def test_each_detection_keeps_a_wav_a_spectrogram_and_its_scores(tmp_path: Path):
    clips = tmp_path / "clips"
    proc = run_daemon(tmp_path, "--clips-dir", str(clips), "--mqtt-device", "kitchen")
    alerts = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [a["label"] for a in alerts] == ["low_tone", "high_tone"]
    for (onset, label), a in zip(ONSETS, alerts, strict=True):
        wav = Path(a["clip"])
        audio = read_wav(wav)
        assert audio.size == 3 * SAMPLE_RATE  # 2 s before, 1 s after
        # The tone burst sits where it was in the stream: the clip starts 2 s before detection.
        start_s = a["stream_t_ms"] / 1000 - 2.0
        env = np.abs(audio).reshape(-1, 160).max(axis=1)
        loud = np.flatnonzero(env > 0.1)
        assert abs(loud[0] * 0.01 + start_s - onset) < 0.02, (loud[0], start_s, onset)
        png = Image.open(wav.with_suffix(".png"))
        assert png.format == "PNG" and png.size[1] == 201 and png.size[0] > 250
        meta = json.loads(wav.with_suffix(".json").read_text())
        assert meta["label"] == label and meta["kind"] == "detection" and meta["device"] == "kitchen"
        assert meta["scores"][label] > 0.9 and set(meta["scores"]) == {"_background_", "low_tone", "high_tone"}
    assert sorted(p.name for p in clips.iterdir()) == sorted(
        Path(a["clip"]).with_suffix(s).name for a in alerts for s in (".json", ".png", ".wav"))


def test_clips_list_show_and_label_into_a_dataset_the_trainer_reads(tmp_path: Path):
    clips = tmp_path / "clips"
    alerts = [json.loads(x) for x in run_daemon(tmp_path, "--clips-dir", str(clips),
                                                "--mqtt-device", "kitchen").stdout.splitlines()]
    listed = clips_cli("--dir", str(clips), "list").stdout.splitlines()
    assert len(listed) == 3 and listed[-1] == f"2 clip(s) in {clips}"
    assert "low_tone" in listed[0] and alerts[0]["clip"] in listed[0]
    stem = Path(alerts[1]["clip"]).stem
    shown = clips_cli("--dir", str(clips), "show", stem[:22]).stdout
    assert f"spectrogram: {clips / stem}.png" in shown and "high_tone" in shown
    assert "label:       high_tone" in shown

    data = tmp_path / "dataset"
    (data / "low_tone").mkdir(parents=True)
    rng = np.random.default_rng(0)
    from earshot.wavio import write_wav
    for i in range(4):
        write_wav(data / "low_tone" / f"alice_nohash_{i}.wav", 0.1 * rng.standard_normal(SAMPLE_RATE))
    out = clips_cli("--dir", str(clips), "label", stem, "--as", "_unknown_", "--into", str(data)).stdout
    assert out.strip() == f"{stem}.wav -> {data / 'unknown' / 'kitchen_nohash_0.wav'}"
    out = clips_cli("--dir", str(clips), "label", alerts[0]["clip"], "--as", "_unknown_",
                    "--into", str(data)).stdout
    assert out.strip().endswith("kitchen_nohash_1.wav")
    assert read_wav(data / "unknown" / "kitchen_nohash_0.wav").size == 3 * SAMPLE_RATE
    assert "filed as _unknown_" in clips_cli("--dir", str(clips), "show", stem).stdout

    from trainer.datasets import load_dataset

    ds = load_dataset(data, labels=["low_tone"], unknown=True, progress=False)
    filed = [c for c in ds.clips if c.path and c.path.parent.name == "unknown"]
    assert {(c.label, c.group) for c in filed} == {("_unknown_", "kitchen")}
    assert len({c.split for c in filed}) == 1  # one device, one split


def test_clips_cli_names_what_is_wrong(tmp_path: Path):
    (tmp_path / "c").mkdir()
    bad = clips_cli("--dir", str(tmp_path / "c"), "show", "nothing", check=False)
    assert bad.returncode == 2 and f"clip nothing: not in {tmp_path / 'c'}" in bad.stderr
    bad = clips_cli("--dir", str(tmp_path / "none"), "list", check=False)
    assert bad.returncode == 2 and "no such folder" in bad.stderr
    write_clip(tmp_path / "c", "20260101-000000-000_mic_x", np.zeros(SAMPLE_RATE, np.float32), {})
    bad = clips_cli("--dir", str(tmp_path / "c"), "label", "2026", "--as", "_silence_",
                    "--into", str(tmp_path), check=False)
    assert bad.returncode == 2 and "trainer reads no folder starting with '_'" in bad.stderr
    bad = clips_cli("--dir", str(tmp_path / "c"), "label", "2026", "--as", "x", "--into",
                    str(tmp_path / "nope"), check=False)
    assert bad.returncode == 2 and f"--into {tmp_path / 'nope'}: no such folder" in bad.stderr


# -- the keeper on its own -------------------------------------------------------------------


def keeper(tmp: Path, **kw) -> ClipKeeper:
    return ClipKeeper(ClipSettings(dir=str(tmp / "clips"), min_free_mb=0.0, **kw), "mic", "pi1")


def detect(k: ClipKeeper, t_s: float, label: str = "x") -> str:
    """Feed audio up to t_s, then a detection at t_s; returns the clip path."""
    n = int(t_s * SAMPLE_RATE) - k.ring.total
    if n > 0:
        k.feed(np.full(n, 0.01, np.float32))
    return k.reserve(Alert(label, 0.9, "mic", time.time() + t_s, stream_t_ms=int(t_s * 1000)))


def test_count_and_size_caps_delete_the_oldest_first(tmp_path: Path):
    k = keeper(tmp_path, max_count=3, before_ms=500, after_ms=500)
    paths = [detect(k, 2.0 * (i + 1), f"n{i}") for i in range(5)]
    k.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
    k.close()
    kept = sorted(p.name for p in (tmp_path / "clips").glob("*.wav"))
    assert kept == sorted(Path(p).name for p in paths[2:])
    # Size: each clip is about 32 KB of WAV plus its PNG; 0.1 MB holds two of them.
    k = ClipKeeper(ClipSettings(dir=str(tmp_path / "small"), min_free_mb=0.0, max_mb=0.1,
                                before_ms=500, after_ms=500), "mic", "pi1")
    paths = [detect(k, 2.0 * (i + 1), f"s{i}") for i in range(4)]
    k.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
    k.close()
    kept = sorted((tmp_path / "small").glob("*"))
    assert sum(p.stat().st_size for p in kept) <= 0.1e6
    assert [p.name for p in kept if p.suffix == ".wav"] == [Path(p).name for p in paths[-len(kept) // 3:]]


def test_disk_full_leaves_no_partial_clip_and_is_logged_once_per_period(tmp_path: Path, caplog):
    calls = []

    def full_twice(folder, stem, audio, meta):
        """The first two clips meet a full disk (write_clip cleans up: next test)."""
        calls.append(stem)
        if len(calls) <= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_clip(folder, stem, audio, meta)

    k = ClipKeeper(ClipSettings(dir=str(tmp_path / "clips"), min_free_mb=0.0, error_every_s=3600),
                   "mic", "pi1", write=full_twice)
    with caplog.at_level(logging.ERROR):
        paths = [detect(k, 4.0 * (i + 1)) for i in range(3)]
        k.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
        k.close()
    assert [m for m in caplog.messages if "disk full" in m] and len(caplog.messages) == 1
    assert "detection carries on" in caplog.messages[0]
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == sorted(
        Path(paths[2]).with_suffix(s).name for s in (".json", ".png", ".wav"))
    assert (k.kept, k.failed) == (1, 2)


def test_write_clip_removes_what_it_wrote_when_a_later_file_fails(tmp_path: Path, monkeypatch):
    import daemon.clips as clips

    def no_space(path, audio):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(clips, "write_wav", no_space)
    with pytest.raises(OSError):
        write_clip(tmp_path, "c", np.zeros(SAMPLE_RATE, np.float32), {"a": 1})
    assert list(tmp_path.iterdir()) == []  # neither the JSON, the PNG nor a temporary file


def test_a_tiny_tmpfs_keeps_what_fits_and_the_daemon_carries_on(tmp_path: Path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=30)
    assert m.returncode == 0, f"cannot mount a tmpfs (the test runs as root): {m.stderr}"
    try:
        events = [(2.0, "low_tone"), (5.0, "high_tone"), (8.0, "low_tone"), (11.0, "high_tone")]
        proc = run_daemon(tmp_path, "--clips-dir", str(mnt / "clips"), "--clips-min-free-mb", "0",
                          events=events, seconds=13.0)
        assert len(proc.stdout.splitlines()) == 4  # every detection reported
        files = sorted((mnt / "clips").iterdir())
        wavs = [p for p in files if p.suffix == ".wav"]
        assert 1 <= len(wavs) < 4, files  # 300 KB holds a 96 KB WAV and its PNG, not four
        assert sorted(files) == sorted(w.with_suffix(s) for w in wavs for s in (".json", ".png", ".wav"))
        assert proc.stderr.count("clips: not keeping clips") == 1, proc.stderr
        # The free-space rule: with the default 200 MB to keep free nothing is even tried.
        proc = run_daemon(tmp_path, "--clips-dir", str(mnt / "clips2"), events=events, seconds=13.0)
        assert "MB free (keeping [clips] min_free_mb = 200 MB free)" in proc.stderr
        assert not list((mnt / "clips2").iterdir())
    finally:
        subprocess.run(["umount", str(mnt)], timeout=30)


def test_a_clip_folder_that_cannot_be_made_is_logged_and_detection_carries_on(tmp_path: Path):
    proc = run_daemon(tmp_path, "--clips-dir", str(tmp_path / "no" / "such" / "clips"))
    assert len(proc.stdout.splitlines()) == 2
    assert all("clip" not in json.loads(x) for x in proc.stdout.splitlines())
    assert proc.stderr.count(f"clips: not keeping clips: cannot use {tmp_path / 'no/such/clips'}") == 1


def test_random_negatives_are_kept_away_from_detections(tmp_path: Path):
    k = ClipKeeper(ClipSettings(dir=str(tmp_path / "clips"), min_free_mb=0.0, negatives_per_hour=3600.0,
                                before_ms=500, after_ms=500), "mic", "pi1", rng=np.random.default_rng(1))
    for _ in range(300):  # 30 s in 100 ms chunks
        k.feed(np.full(1600, 0.01, np.float32))
    detect(k, 30.0, "real")
    k.feed(np.zeros(SAMPLE_RATE, np.float32))
    k.close()
    metas = [json.loads(p.read_text()) for p in (tmp_path / "clips").glob("*.json")]
    negatives = [m for m in metas if m["kind"] == "negative"]
    assert 5 <= len(negatives) <= 60 and all(m["label"] == NEGATIVE for m in negatives)
    assert [m["label"] for m in metas if m["kind"] == "detection"] == ["real"]
    # None ends within 1 s of the start of the detection's clip (29.5 s): the sound that fired
    # may have begun up to a window before the detection.
    assert all(m["stream_t_ms"] + 500 <= 28500 for m in negatives), [m["stream_t_ms"] for m in negatives]


def test_clips_are_off_with_no_clips_enabled(tmp_path: Path):
    proc = run_daemon(tmp_path, "--clips-dir", str(tmp_path / "c"), "--no-clips-enabled")
    assert not (tmp_path / "c").exists() and "clip" not in proc.stdout


# -- earshotd listen ---------------------------------------------------------------------------


def test_listen_prints_the_level_and_every_score_per_hop(tmp_path: Path):
    empty_config()
    wav = write_stream(tmp_path / "s.wav", tone_stream(ONSETS, 7.0, silence=[(6.0, 7.0)]))
    args = base_args(tone_bundle(), wav, "--no-oled-enabled", "--no-clips-enabled")
    proc = earshotd("listen", *args[1:])
    lines = proc.stdout.splitlines()
    assert len(lines) == 70  # one per 100 ms hop
    fired = [x for x in lines if "<<" in x]
    assert [x.split("<< ")[1] for x in fired] == ["low_tone", "high_tone"]
    first = fired[0]
    assert "LOW_TONE ██████████ 1.00" in first and "dBFS" in first
    quiet = lines[10]  # 1.1 s: noise only
    assert "low_tone " in quiet and "|" in quiet and "0.9" not in quiet.split("low_tone")[1][:16]
    assert "below the silence gate" in lines[-1]  # digital silence at the end
    same = earshotd(*args, "--listen")
    assert same.stdout.splitlines() == lines
