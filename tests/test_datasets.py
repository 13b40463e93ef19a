"""Dataset loaders: each layout, every common WAV format, bad files, splits, label mapping."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile
from fixtures_data import (
    bad_files,
    dominant_hz,
    make_esc50,
    make_folders,
    make_speech_commands,
    tone,
    write_24bit,
)

from earshot.wavio import write_wav
from trainer.datasets import (
    SEEN,
    SILENCE,
    SILENCE_MAX_GAIN,
    SPLITS,
    UNKNOWN,
    hash_percent,
    load_background,
    load_clip,
    load_dataset,
    load_split,
)

REPO = Path(__file__).resolve().parents[1]


def _load(root: Path, **kw):
    return load_dataset(root, progress=False, **kw)


# --- folder per label ------------------------------------------------------------------------


def test_folders_layout_labels_splits_and_arrays(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"hum": 200.0, "whistle": 2000.0, "beep": 1000.0})
    ds = _load(root)
    assert ds.layout == "folders"
    assert ds.labels == ["beep", "hum", "whistle"]
    assert len(ds.clips) == 30 and ds.report.files_used == 30 and not ds.report.skipped
    counts = ds.report.counts
    assert sum(counts["test"].values()) == 3 and sum(counts["val"].values()) == 3
    for split in ("train", "val", "test"):
        x, y = load_split(ds, split, progress=False)
        assert x.shape == (len(ds.split(split)), 16000) and x.dtype == np.float32
        assert y.dtype == np.int64
        for xi, yi in zip(x, y, strict=True):  # the right audio under the right label
            expect = {"beep": 1000.0, "hum": 200.0, "whistle": 2000.0}[ds.labels[yi]]
            assert abs(dominant_hz(xi) / expect - 1) < 0.12


@pytest.mark.parametrize(
    "name,rate,writer",
    [
        ("8k_int16", 8000, lambda x: (x * 32767).astype(np.int16)),
        ("22k_int16", 22050, lambda x: (x * 32767).astype(np.int16)),
        ("44k_int32", 44100, lambda x: (x * (2**31 - 1)).astype(np.int32)),
        ("48k_float32", 48000, lambda x: x.astype(np.float32)),
        ("48k_stereo", 48000, lambda x: np.stack([x, x], 1).astype(np.float32)),
        ("16k_stereo_int16", 16000, lambda x: (np.stack([x, x], 1) * 32767).astype(np.int16)),
    ],
)
def test_common_wav_formats_load_as_16k_clips(tmp_path: Path, name: str, rate: int, writer) -> None:
    root = make_folders(tmp_path / "d", {"other": 300.0}, per_label=3)
    path = root / "target" / f"{name}.wav"
    path.parent.mkdir(parents=True)
    scipy.io.wavfile.write(path, rate, writer(tone(1000.0, 1.0, 0.5, rate)))
    ds = _load(root)
    assert not ds.report.skipped
    clip = next(c for c in ds.clips if c.path == path)
    x = load_clip(clip)
    assert x.shape == (16000,) and x.dtype == np.float32
    assert abs(dominant_hz(x) - 1000.0) < 10
    assert 0.45 < np.max(np.abs(x[1000:-1000])) < 0.55


def test_24bit_wav_loads(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"other": 300.0}, per_label=3)
    write_24bit(root / "target" / "a24.wav", tone(1500.0, 1.0, 0.5, 22050), 22050)
    ds = _load(root)
    assert not ds.report.skipped
    x = load_clip(next(c for c in ds.clips if c.label == "target"))
    assert abs(dominant_hz(x) - 1500.0) < 10 and 0.45 < np.max(np.abs(x[1000:-1000])) < 0.55


def test_short_clip_padded_centred_and_long_clip_cut_around_loudest(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"other": 300.0}, per_label=3)
    write_wav(root / "x" / "short.wav", tone(1000.0, 0.25))
    long = np.full(48000, 0.01, np.float32)
    long[35000:36000] = 0.9  # a loud burst at 2.19-2.25 s of a 3 s file
    write_wav(root / "x" / "long.wav", long)
    ds = _load(root)
    by_name = {c.path.name: c for c in ds.clips if c.path is not None}
    short = load_clip(by_name["short.wav"])
    assert np.all(short[:5900] == 0) and np.all(short[-5900:] == 0)  # 0.25 s in the middle
    assert np.max(np.abs(short[6000:10000])) > 0.4
    cut = load_clip(by_name["long.wav"])
    assert cut.shape == (16000,)
    burst = np.flatnonzero(cut > 0.5)
    assert burst.size == 1000 and abs(burst.mean() - 8000) < 600  # burst kept, near the centre


def test_corrupt_empty_truncated_files_are_reported_skipped_and_counted(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"a": 300.0, "b": 900.0}, per_label=5)
    broken = bad_files(root / "a")
    ds = _load(root)
    skipped = {p.name: reason for p, reason in ds.report.skipped}
    assert set(skipped) == set(broken)
    assert "truncated" in skipped["truncated.wav"]
    assert "no samples" in skipped["no_samples.wav"] or "truncated" in skipped["no_samples.wav"]
    assert ds.report.files_seen == 10 + len(broken)
    assert ds.report.files_used == 10
    assert all(c.path is not None and c.path.name not in broken for c in ds.clips)
    table = ds.report.table()
    for name in broken:
        assert str(root / "a" / name) in table
    summary = json.loads(json.dumps(ds.report.summary()))
    assert summary["files_skipped"] == len(broken)
    assert {Path(s["file"]).name for s in summary["skipped"]} == set(broken)
    x, _ = load_split(ds, "train", progress=False)  # nothing broken reaches training
    assert np.all(np.isfinite(x))


# --- Speech Commands -------------------------------------------------------------------------


def test_speech_commands_hash_split_keeps_each_speaker_in_one_split(tmp_path: Path) -> None:
    root = make_speech_commands(tmp_path / "sc", {"yes": 500.0, "no": 1500.0}, speakers=60)
    ds = _load(root)
    assert ds.layout == "speech_commands"
    splits_of: dict[str, set[str]] = {}
    for c in ds.clips:
        splits_of.setdefault(c.group, set()).add(c.split)
    assert len(splits_of) == 60
    assert all(len(s) == 1 for s in splits_of.values())
    for c in ds.clips:  # the split is Speech Commands' which_set rule on the speaker id
        pct = hash_percent(c.group)
        assert c.split == ("val" if pct < 10 else "test" if pct < 20 else "train")
    assert {c.split for c in ds.clips} == {"train", "val", "test"}
    assert len(ds.background) == 2


def test_speech_commands_lists_are_honoured(tmp_path: Path) -> None:
    lists = {
        "validation_list.txt": ["yes/00000001_nohash_0.wav", "no/00000001_nohash_0.wav"],
        "testing_list.txt": ["yes/00000002_nohash_0.wav", "yes/00000002_nohash_1.wav"],
    }
    root = make_speech_commands(tmp_path / "sc", {"yes": 500.0, "no": 1500.0}, 5, 2, 0, lists)
    ds = _load(root)
    got = {c.path.relative_to(root).as_posix(): c.split for c in ds.clips if c.path}
    assert {k for k, v in got.items() if v == "val"} == set(lists["validation_list.txt"])
    assert {k for k, v in got.items() if v == "test"} == set(lists["testing_list.txt"])
    assert sum(v == "train" for v in got.values()) == 20 - 4


def test_label_subset_unknown_is_capped_and_silence_comes_from_background(tmp_path: Path) -> None:
    words = {"yes": 500.0, "no": 1500.0, "up": 700.0, "down": 900.0, "left": 1100.0}
    root = make_speech_commands(tmp_path / "sc", words, speakers=40)
    ds = _load(root, labels=["yes", "no"], unknown=True, silence=True, seed=1)
    assert ds.labels == [SILENCE, UNKNOWN, "yes", "no"]
    for split, counts in ds.report.counts.items():
        known = (counts["yes"] + counts["no"]) / 2
        assert counts[UNKNOWN] == counts[SILENCE] == int(np.ceil(known)), split
    unk = [c for c in ds.clips if c.label == UNKNOWN]
    assert {c.source_label for c in unk} <= {"up", "down", "left"}
    assert ds.report.not_used["over the _unknown_ cap"] == 3 * 80 - len(unk)
    sil = [c for c in ds.clips if c.label == SILENCE]
    assert all(c.path in ds.background and 0 <= c.gain <= SILENCE_MAX_GAIN for c in sil)
    # Each noise file is cut in time: train, val and test silence never share samples.
    ranges = {
        s: [(c.path, c.offset) for c in sil if c.split == s] for s in ("train", "val", "test")
    }
    for path in ds.background:
        tr = [o for p, o in ranges["train"] if p == path]
        te = [o for p, o in ranges["test"] if p == path]
        if tr and te:
            assert max(tr) + 16000 <= min(te)
    x, y = load_split(ds, "train", progress=False)
    quiet = x[y == ds.labels.index(SILENCE)]
    assert np.max(np.abs(quiet)) < 0.1 * SILENCE_MAX_GAIN * 10  # low gain: well under full scale
    assert len(load_background(ds, "train", progress=False)) == 2
    again = _load(root, labels=["yes", "no"], unknown=True, silence=True, seed=1)
    assert again.clips == ds.clips  # same seed, same picks


def test_silence_without_background_is_digital_silence(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"a": 300.0, "b": 900.0}, per_label=10)
    ds = _load(root, silence=True)
    sil = [c for c in ds.clips if c.label == SILENCE]
    assert sil and all(c.path is None for c in sil)
    assert not np.any(load_clip(sil[0]))


# --- ESC-50 ----------------------------------------------------------------------------------


def test_esc50_folds_windows_and_silent_windows_dropped(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "esc", {"dog": 500.0, "siren": 1500.0}, silent_tail_s=2.0)
    ds = _load(root)
    assert ds.layout == "esc50"
    # 5 s clips -> 5 windows; the last 2 s are digital silence -> 3 windows per clip kept.
    assert len(ds.clips) == 2 * 5 * 3
    assert ds.report.silent_windows_dropped == 2 * 5 * 2
    assert {c.offset for c in ds.clips} == {0, 16000, 32000}
    folds = {c.path.name.split("-")[0]: c.split for c in ds.clips if c.path}
    assert folds == {"1": "train", "2": "train", "3": "train", "4": "val", "5": "test"}
    assert all(c.group == c.path.name.split("-")[1] for c in ds.clips if c.path)
    x, y = load_split(ds, "test", progress=False)
    assert x.shape == (6, 16000)
    for xi, yi in zip(x, y, strict=True):
        assert np.min(np.abs(xi).reshape(-1, 400).max(1)) > 0.3  # a full window of tone
        assert abs(dominant_hz(xi) - {"dog": 500.0, "siren": 1500.0}[ds.labels[yi]]) < 10


def test_esc50_label_subset_with_unknown(tmp_path: Path) -> None:
    cats = {"dog": 500.0, "siren": 1500.0, "rain": 800.0, "cat": 1200.0}
    root = make_esc50(tmp_path / "esc", cats, silent_tail_s=0.0)
    ds = _load(root, labels="siren", unknown=True)
    assert ds.labels == [UNKNOWN, "siren"]
    for counts in ds.report.counts.values():
        assert counts[UNKNOWN] == counts["siren"]


# --- errors ----------------------------------------------------------------------------------


def test_unknown_label_is_an_error_listing_the_available_ones(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"hum": 200.0, "beep": 1000.0}, per_label=3)
    with pytest.raises(ValueError) as e:
        _load(root, labels=["hum", "marvin"])
    msg = str(e.value)
    assert str(root) in msg and "'marvin'" in msg and "beep, hum" in msg


def test_single_class_empty_and_missing_datasets_are_errors(tmp_path: Path) -> None:
    one = make_folders(tmp_path / "one", {"hum": 200.0}, per_label=3)
    with pytest.raises(ValueError, match=r"only one class \(hum\)"):
        _load(one)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable audio"):
        _load(tmp_path / "empty")
    broken = tmp_path / "broken"
    bad_files(broken / "a")
    bad_files(broken / "b")
    with pytest.raises(ValueError, match=r"no usable audio .* 10 skipped"):
        _load(broken)
    with pytest.raises(ValueError, match="does not exist"):
        _load(tmp_path / "nowhere")
    two = make_folders(tmp_path / "two", {"hum": 200.0, "beep": 1000.0}, per_label=3)
    with pytest.raises(ValueError, match="needs labels= to name a subset"):
        _load(two, unknown=True)


# --- CLI -------------------------------------------------------------------------------------


def test_inspect_prints_the_table_and_skipped_files(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "d", {"hum": 200.0, "beep": 1000.0}, per_label=10)
    (root / "beep" / "broken.wav").write_bytes(b"RIFFnonsense")
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "inspect", str(root), "--labels", "beep,hum"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "labels: beep, hum" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["beep"][-1] == "10" and lines["hum"][-1] == "10"
    assert "broken.wav" in out and "1 skipped" in out


# --- speakers never cross splits -------------------------------------------------------------


def _speaker_folders(root: Path, names: str) -> Path:
    """Two labels, 12 speakers, 3 takes each, file names as ``names`` formats them."""
    for li, label in enumerate(("hum", "beep")):
        for s in range(12):
            for n in range(3):
                name = names.format(label=label, li=li, speaker=f"spk{s:02d}", n=n)
                write_wav(root / label / f"{name}.wav", tone(200.0 * (li + 1) * (1 + 0.01 * s)))
    return root


def _splits_of_speakers(ds, speaker) -> dict[str, set[str]]:
    per: dict[str, set[str]] = {}
    for c in ds.clips:
        per.setdefault(speaker(c.path.stem), set()).add(c.split)
    return per


def test_folder_split_keeps_a_speaker_in_one_split_by_the_prefix_before_the_last_underscore(
    tmp_path: Path,
) -> None:
    root = _speaker_folders(tmp_path / "d", "{speaker}_{n}")
    ds = _load(root, val_percent=20, test_percent=20)
    per = _splits_of_speakers(ds, lambda stem: stem.rsplit("_", 1)[0])
    assert len(per) == 12 and all(len(s) == 1 for s in per.values())  # across both labels
    assert {s for v in per.values() for s in v} == {"train", "val", "test"}
    assert ds.report.groups == {s: sum(v == {s} for v in per.values()) for s in SPLITS}
    assert ds.report.shared_groups == []


def test_a_label_whose_files_are_one_speaker_is_split_file_by_file(tmp_path: Path, caplog) -> None:
    # earshotd record without --speaker writes yes/yes_0000.wav, ...: the group is the label, and
    # a split by group would put all of one label in test and none in training
    root = tmp_path / "d"
    for label, hz in (("yes", 200.0), ("no", 500.0), ("up", 900.0), ("down", 1300.0)):
        for n in range(30):
            write_wav(root / label / f"{label}_{n:04d}.wav", tone(hz * (1 + 0.002 * n)))
    for s in range(10):  # a label recorded by ten people keeps its split by speaker
        for n in range(3):
            write_wav(root / "stop" / f"spk{s}_{n}.wav", tone(1700.0 * (1 + 0.01 * s)))
    ds = _load(root, val_percent=10, test_percent=10)
    for label in ("yes", "no", "up", "down"):
        got = Counter(c.split for c in ds.clips if c.label == label)
        assert got == {"train": 24, "val": 3, "test": 3}, (label, got)
    stop = _splits_of_speakers(ds, lambda stem: stem.rsplit("_", 1)[0])
    assert all(len(v) == 1 for k, v in stop.items() if k.startswith("spk"))
    assert ds.report.file_split_labels == ["down", "no", "up", "yes"]
    line = next(x for x in ds.report.table().splitlines() if x.startswith("split file by file"))
    assert line.endswith(": down, no, up, yes")
    assert "--speaker NAME" in caplog.text and "down/down_0000.wav is 'down'" in caplog.text
    assert ds.report.summary()["file_split_labels"] == ["down", "no", "up", "yes"]


def test_seen_split_holds_back_clips_of_training_speakers_only(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for label, hz in (("hum", 200.0), ("beep", 900.0)):
        for s in range(8):  # speakers with 10 takes a label, and two with 2
            for n in range(10 if s < 6 else 2):
                write_wav(root / label / f"spk{s}_{n:02d}.wav", tone(hz * (1 + 0.01 * s)))
    plain = _load(root, val_percent=20, test_percent=20)
    ds = _load(root, val_percent=20, test_percent=20, seen_percent=20)
    seen = ds.split(SEEN)
    train_groups = {c.group for c in ds.split("train")}
    assert seen and {c.group for c in seen} <= train_groups  # every seen speaker still trains
    assert not {c.path for c in seen} & {c.path for c in ds.split("train")}
    # val and test are untouched; the seen clips come out of training
    for split in ("val", "test"):
        assert [c.path for c in ds.split(split)] == [c.path for c in plain.split(split)]
    assert len(seen) + len(ds.split("train")) == len(plain.split("train"))
    per = Counter(c.group for c in seen)
    files = Counter(c.group for c in plain.split("train"))
    assert per == {g: n // 5 for g, n in files.items() if n // 5}  # a fifth, rounded down
    assert {"spk6", "spk7"} & set(files) and not {"spk6", "spk7"} & set(per)  # 4 files: none
    assert ds.report.counts[SEEN] == dict(Counter(c.label for c in seen))
    assert ds.report.groups[SEEN] == len(per) and ds.report.shared_groups == []
    assert "seen" in ds.report.table().splitlines()[1]
    assert "seen" not in plain.report.table().splitlines()[1]
    proc = subprocess.run([sys.executable, "-m", "trainer", "inspect", str(root), "--val-percent",
                           "20", "--test-percent", "20", "--seen-test", "20"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.strip()}
    assert rows["label"][:4] == ["train", "val", "test", "seen"]
    assert int(rows["total"][3]) == len(seen)
    with pytest.raises(ValueError, match="seen_percent"):
        _load(root, seen_percent=100)


def test_group_pattern_names_the_speaker_inside_the_file_name(tmp_path: Path, caplog) -> None:
    # "<label index>_<speaker>_<take>": the default group would be "0_spk03", one per label,
    # and a speaker's two labels could land in two splits; the pattern makes it "spk03"
    root = _speaker_folders(tmp_path / "d", "{li}_{speaker}_{n}")
    ds = _load(root, val_percent=20, test_percent=20, group_pattern=r"^\d+_([a-z0-9]+)_")
    per = _splits_of_speakers(ds, lambda stem: stem.split("_")[1])
    assert len(per) == 12 and all(len(s) == 1 for s in per.values())
    with pytest.raises(ValueError, match=r"take.wav: --group-pattern .* does not match"):
        write_wav(root / "hum" / "take.wav", tone(300.0))
        _load(root, group_pattern=r"^\d+_([a-z0-9]+)_")
    with pytest.raises(ValueError, match="--group-pattern '\\(' is not a regular expression"):
        _load(root, group_pattern="(")


def test_lists_that_share_a_speaker_are_reported(tmp_path: Path, caplog) -> None:
    root = make_speech_commands(tmp_path / "sc", {"yes": 500.0, "no": 1500.0}, speakers=6,
                                lists={"testing_list.txt": ["yes/00000001_nohash_0.wav"],
                                       "validation_list.txt": ["no/00000002_nohash_0.wav"]})  # fmt: skip
    ds = _load(root)
    assert ds.report.shared_groups == ["00000001", "00000002"]
    assert "in more than one split" in caplog.text
    assert "shared by two splits: 2" in ds.report.table()


def test_flac_ogg_and_mp3_load_like_wav_and_a_broken_one_is_skipped(tmp_path: Path) -> None:
    import soundfile

    root = tmp_path / "d"
    for label, hz in (("hum", 200.0), ("beep", 1000.0)):
        (root / label).mkdir(parents=True)
        for i, fmt in enumerate(("FLAC", "OGG", "FLAC", "OGG", "WAV")):
            x = tone(hz * (1 + 0.01 * i), 1.0, 0.3)
            ext = {"FLAC": "flac", "OGG": "ogg", "WAV": "wav"}[fmt]
            soundfile.write(root / label / f"take{i}_{i}.{ext}", x, 16000,
                            format=fmt)  # fmt: skip
    (root / "beep" / "broken_0.mp3").write_bytes(b"ID3 not really an mp3")
    ds = _load(root, val_percent=20, test_percent=20)
    assert ds.report.files_seen == 11 and ds.report.files_used == 10
    assert [p.name for p, _ in ds.report.skipped] == ["broken_0.mp3"]
    x, y = load_split(ds, "train", progress=False)
    for clip, label in zip(x, y, strict=True):  # decoded: the tone where it was
        want = 200.0 if ds.labels[label] == "hum" else 1000.0
        assert abs(dominant_hz(clip) - want) < 0.06 * want
