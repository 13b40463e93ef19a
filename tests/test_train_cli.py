"""`earshot-train train`'s flags are made from ``TrainSettings``: every default shows in --help,
every bad value is refused by the flag's name, and nothing is copied by hand."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_data import train_settings

from trainer import train
from trainer.__main__ import build_parser

REPO = Path(__file__).resolve().parents[1]


def _raw_help() -> str:
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _help() -> str:
    return re.sub(r"\s+", " ", _raw_help())


def _entries(text: str) -> dict[str, str]:
    """--help's options section: flag -> its entry (flag, metavar, help), whitespace collapsed."""
    body = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n(?=  -)", body)
    return {e.split()[0].rstrip(","): re.sub(r"\s+", " ", e) for e in entries}


@pytest.mark.parametrize("field", [f for f in dataclasses.fields(train.TrainSettings)
                                   if f.default is not dataclasses.MISSING])  # fmt: skip
def test_every_default_shows_in_help(field: dataclasses.Field) -> None:
    flag = "--" + field.name.replace("_", "-")
    default = field.metadata.get("shown", field.default)
    if isinstance(default, bool):
        default = "on" if default else "off"
    entry = _entries(_raw_help())[flag]
    assert f"(default: {default})" in entry or f"(default: {default};" in entry, entry


def test_a_changed_default_changes_help_and_settings(tmp_path: Path, monkeypatch, capsys) -> None:
    """The dataclass field is the one home of a default: change it and the flag follows."""
    monkeypatch.setitem(train.OPTIONS, "epochs", dataclasses.replace(train.OPTIONS["epochs"], default=7))
    assert train_settings(tmp_path).epochs == 7
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert re.search(r"--epochs INT .*\(default: 7\)", re.sub(r"\s+", " ", capsys.readouterr().out))


def test_enumerated_flags_list_their_choices() -> None:
    text = _help()
    assert "--target TARGET what to build (default: both; one of: pi, rp2040, both)" in text
    for arch in ("rp2040_seed", "simple_audio", "stream_cnn", "ds_cnn"):
        assert arch in text.split("--arch ARCH architecture", 1)[1].split("--frontend FRONTEND", 1)[0]
    assert "one of: logmel, q15, q15log, stft" in text


def test_help_has_examples_and_no_research_notes() -> None:
    text = _help()
    assert "examples:" in text and "earshot-train train out/data/keywords --out" in text
    assert "--transfer-from out/bundles/rp2040" in text
    assert "lr/10" not in text and "``" not in text and "docs/training.md" in text


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--batch-size", "-3"], "--batch-size must be an integer >= 1, got -3"),
    (["--augment-copies", "-1"], "--augment-copies must be an integer >= 0, got -1"),
    (["--spec-augment", "1.5"], "--spec-augment must be a number from 0 to 1, got 1.5"),
    (["--unknown-share", "0"], "--unknown-share must be a number > 0, got 0.0"),
    (["--learning-rate=-1e-3"], "--learning-rate must be a number > 0, got -0.001"),
    (["--target", "esp32"], "--target must be one of 'pi', 'rp2040', 'both', got 'esp32'"),
    (["--frontend", "mfcc"], "--frontend must be one of 'logmel', 'q15', 'q15log', 'stft', got 'mfcc'"),
    (["--frontend", "logmel", "--target", "rp2040"], "--frontend logmel: the rp2040 firmware "
     "computes q15 or q15log features only (--target pi takes any front end)"),
])  # fmt: skip
def test_a_bad_value_is_refused_by_its_flag(tmp_path: Path, flags: list[str], message: str) -> None:
    with pytest.raises(ValueError) as e:
        train_settings(tmp_path, *flags)
    assert str(e.value) == message


def test_the_command_line_reports_the_flag_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", str(tmp_path), "--out",
                           str(tmp_path / "o"), "--epochs", "0"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "earshot-train: error: --epochs must be an integer >= 1, got 0"


def test_flags_land_in_their_fields(tmp_path: Path) -> None:
    s = train_settings(tmp_path, "--target", "rp2040", "--arch", "ds_cnn", "--labels", "yes, no,",
                  "--unknown", "--no-progress", "--epochs", "3", "--unknown-share", "2.5",
                  "--transfer-from", "base", "--positive", "yes")  # fmt: skip
    assert (s.targets, s.arch, s.labels, s.unknown, s.progress) == (("rp2040",), "ds_cnn",
                                                                     ("yes", "no"), True, False)  # fmt: skip
    assert (s.epochs, s.unknown_share, s.transfer_from, s.positive) == (3, 2.5, Path("base"), "yes")
    d = train_settings(tmp_path)
    assert (d.targets, d.labels, d.epochs, d.progress, d.silence) == (("pi", "rp2040"), None, 30,
                                                                      True, False)  # fmt: skip


def test_cross_field_rules_name_both_flags(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--arch needs --target pi or --target rp2040"):
        train_settings(tmp_path, "--arch", "ds_cnn")
    with pytest.raises(ValueError, match="--transfer-from and --positive go together"):
        train_settings(tmp_path, "--positive", "yes")
    with pytest.raises(FileNotFoundError, match="data set folder .*nope does not exist"):
        train.settings_from_args(build_parser().parse_args(
            ["train", str(tmp_path / "nope"), "--out", str(tmp_path)]))


def test_version_names_the_package_and_the_bundle_format() -> None:
    from earshot.bundle import FORMAT_VERSION

    proc = subprocess.run([sys.executable, "-m", "trainer", "--version"], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"earshot-train 0.1.0 (bundle format {FORMAT_VERSION})")
