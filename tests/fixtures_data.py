"""Builders for small on-disk datasets of each layout, WAV files that are broken on purpose, and
the trainer's settings as its command line makes them."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from earshot.wavio import write_wav

FS = 16000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5, rate: int = FS) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int = FS) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * rate / x.size)


def write_24bit(path: Path, audio: np.ndarray, rate: int) -> None:
    """A mono 24-bit PCM WAV, written byte by byte (the wave module has no 24-bit helper)."""
    ints = np.clip(np.round(audio * (2**23 - 1)), -(2**23), 2**23 - 1).astype("<i4")
    data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 3, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    body += struct.pack("<I", len(data)) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def bad_files(folder: Path) -> dict[str, str]:
    """Broken WAVs in ``folder``: {file name: what is wrong}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "_tmp_good.wav"
    write_wav(good, tone(440.0, 0.5))
    raw = good.read_bytes()
    good.unlink()
    files = {
        "empty.wav": b"",
        "garbage.wav": b"RIFF" + bytes(range(200)),
        "header_only.wav": raw[:30],
        "truncated.wav": raw[:2000],
        "no_samples.wav": raw[:40] + b"\0\0\0\0",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {
        "empty.wav": "empty",
        "garbage.wav": "garbage",
        "header_only.wav": "header only",
        "truncated.wav": "truncated",
        "no_samples.wav": "no samples",
    }


def make_folders(root: Path, labels: dict[str, float], per_label: int = 10) -> Path:
    """Folder-per-label set: each label is a tone at its own frequency, one file per "take"."""
    for label, freq in labels.items():
        for i in range(per_label):
            write_wav(root / label / f"take{i:03d}.wav", tone(freq * (1 + 0.01 * i)))
    return root


def make_speech_commands(
    root: Path,
    words: dict[str, float],
    speakers: int = 30,
    per_speaker: int = 2,
    background: int = 2,
    lists: dict[str, list[str]] | None = None,
) -> Path:
    """Speech Commands layout: ``<speaker>_nohash_<n>.wav`` per word, noise files, optional lists."""
    for word, freq in words.items():
        for s in range(speakers):
            for n in range(per_speaker):
                write_wav(root / word / f"{s:08x}_nohash_{n}.wav", tone(freq, 1.0, 0.3 + 0.01 * s))
    rng = np.random.default_rng(0)
    for b in range(background):
        write_wav(root / "_background_noise_" / f"noise{b}.wav", 0.1 * rng.standard_normal(10 * FS))
    for name, entries in (lists or {}).items():
        (root / name).write_text("".join(f"{e}\n" for e in entries))
    return root


ESC50_COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def make_esc50(
    root: Path, categories: dict[str, float], per_fold: int = 1, silent_tail_s: float = 2.0
) -> Path:
    """ESC-50 layout: 5 s 44.1 kHz clips, the last ``silent_tail_s`` seconds digital silence."""
    rate = 44100
    rows = []
    src = 1000
    for target, (cat, freq) in enumerate(categories.items()):
        for fold in range(1, 6):
            for _ in range(per_fold):
                src += 1
                name = f"{fold}-{src}-A-{target}.wav"
                audio = tone(freq, 5.0, 0.5, rate)
                audio[int((5.0 - silent_tail_s) * rate) :] = 0.0
                path = root / "audio" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                scipy.io.wavfile.write(path, rate, (audio * 32767).astype(np.int16))
                rows.append([name, fold, target, cat, False, src, "A"])
    (root / "meta").mkdir(parents=True, exist_ok=True)
    with (root / "meta" / "esc50.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ESC50_COLUMNS)
        w.writerows(rows)
    return root


def train_settings(root: Path, *flags: str):  # type: ignore[no-untyped-def]
    """``earshot-train train ROOT --out ROOT/o FLAGS...`` parsed into its ``TrainSettings``."""
    from trainer import train
    from trainer.__main__ import build_parser

    args = build_parser().parse_args(["train", str(root), "--out", str(root / "o"), *flags])
    return train.settings_from_args(args)
