"""`earshotd record` into folders it cannot write: a clear message, exit 2, no empty WAV left."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.__main__ import main
from earshot.wavio import write_wav
from tests.test_daemon_helpers import REPO, _env, tone_stream

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _record_args(wav: Path, out: Path) -> list[str]:
    return ["record", "--label", "yes", "--out", str(out), "--clips", "2", "--source-kind", "wav",
            "--source-wav", str(wav), "--no-source-realtime"]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder an ordinary user can reach (pytest's tmp_path is root's, mode 0700)."""
    d = Path(tempfile.mkdtemp(prefix="earshot-record-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    for p in d.rglob("*"):
        p.chmod(0o755) if p.is_dir() else None
    shutil.rmtree(d)


@pytest.fixture
def speech(shared: Path) -> Path:
    wav = shared / "in.wav"
    write_wav(wav, tone_stream([(0.5, "low_tone"), (2.0, "low_tone")], 3.5))
    wav.chmod(0o644)
    return wav


def _as_nobody(wav: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, sys.executable, "-m", "daemon", *_record_args(wav, out)],
                          cwd=REPO, env=_env(None), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mode", [0o777, 0o555, 0o000])
def test_a_read_only_or_forbidden_folder_is_named(shared: Path, speech: Path, mode: int):
    """As an ordinary user (root may write anywhere): writable 0777 (the control), read-only
    0555 and forbidden 0000."""
    out = shared / "dataset"
    out.mkdir()
    out.chmod(mode)
    proc = _as_nobody(speech, out)
    out.chmod(0o755)
    if mode == 0o777:
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in (out / "yes").iterdir()) == ["yes_0000.wav", "yes_0001.wav"]
        return
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"earshotd: error: --out {out}: cannot write clips into "
                                   f"{out / 'yes'} (Permission denied)")
    assert not list(out.rglob("*"))


def test_a_full_disk_stops_with_the_file_named_and_no_empty_wav(tmp_path: Path, speech: Path,
                                                                monkeypatch, capsys):
    import wave

    def full(self, data):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wave.Wave_write, "writeframes", full)
    out = tmp_path / "dataset"
    assert main(_record_args(speech, out)) == 2
    err = capsys.readouterr().err
    assert f"earshotd: error: {out / 'yes' / 'yes_0000.wav'}: cannot write (No space left on device); " \
           "0 clip(s) saved before" in err
    assert list((out / "yes").iterdir()) == []  # neither a 0-byte WAV nor a temporary file


def test_speakers_name_the_clips_and_the_trainer_keeps_each_in_one_split(tmp_path: Path,
                                                                          speech: Path, capsys):
    """``--speaker`` names the clips NAME_NNNN.wav, numbering per speaker; the trainer's split
    then holds whole speakers, with every label in training."""
    from trainer.datasets import load_dataset

    out = tmp_path / "dataset"
    people = ["alice", "bob", "carol", "dan", "erin", "frank"]
    for who in people:
        for label in ("yes", "no"):
            args = _record_args(speech, out)
            args[args.index("yes")] = label
            assert main([*args, "--speaker", who]) == 0
    assert main([*_record_args(speech, out), "--speaker", "alice"]) == 0  # numbering continues
    assert sorted(p.name for p in (out / "yes").glob("alice_*")) == [
        f"alice_000{i}.wav" for i in range(4)]  # fmt: skip
    assert "no --speaker" not in capsys.readouterr().err
    ds = load_dataset(out, progress=False, val_percent=20, test_percent=20)
    where = {c.group: set() for c in ds.clips}
    for c in ds.clips:
        where[c.group].add(c.split)
    assert set(where) == set(people) and all(len(s) == 1 for s in where.values())
    assert {c.label for c in ds.split("train")} == {"yes", "no"}
    assert ds.split("test") and not ds.report.file_split_labels


def test_without_a_speaker_the_note_says_what_the_split_can_do(tmp_path: Path, speech: Path,
                                                               capsys):
    assert main([*_record_args(speech, tmp_path / "d"), "--speaker", "_x"]) == 2
    assert "--speaker '_x'" in capsys.readouterr().err
    assert main(_record_args(speech, tmp_path / "d")) == 0
    assert "no --speaker: the trainer cannot tell who spoke" in capsys.readouterr().err
