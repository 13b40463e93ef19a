"""The real microphone path with no hardware: PyAudio -> PortAudio -> ALSA's `file` PCM plugin.

Each test writes an ``.asoundrc`` in a fresh HOME whose capture PCM ``earshot_test`` reads a
raw file shaped like an SPH0645 on I2S (32-bit stereo at 48 kHz, one live channel with a DC
offset), and runs earshotd in a subprocess so PortAudio's global state is fresh.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from earshot.wavio import read_wav
from tests.test_daemon_helpers import FS, earshotd, empty_config, spawn, tone_bundle, tone_stream


def _alsa_home(tmp: Path, live: np.ndarray, rate: int = 48000, live_channel: int = 1) -> dict:
    """HOME with an .asoundrc; ``live`` (float, at ``rate``) on one channel, noise on the other."""
    rng = np.random.default_rng(0)
    frames = np.zeros((live.size, 2))
    frames[:, live_channel] = live + 0.25  # the SPH0645's DC offset
    frames[:, 1 - live_channel] = 0.02 * rng.standard_normal(live.size)
    raw = tmp / "i2s.raw"
    (frames * 2**31).astype("<i4").tofile(raw)
    (tmp / ".asoundrc").write_text(
        "pcm.earshot_test {\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n"
        f"  infile \"{raw}\"\n  format \"raw\"\n}}\n"
    )
    return {"HOME": str(tmp)}


def _upsample(x: np.ndarray) -> np.ndarray:
    import scipy.signal

    return scipy.signal.resample_poly(x, 3, 1)


def test_devices_lists_the_alsa_pcm(tmp_path: Path):
    env = _alsa_home(tmp_path, np.zeros(4800))
    out = earshotd("devices", env=env, timeout=60).stdout
    assert "earshot_test" in out


def test_missing_device_error_lists_the_inputs(tmp_path: Path):
    env = _alsa_home(tmp_path, np.zeros(4800))
    proc = earshotd("record", "--label", "x", "--out", str(tmp_path / "ds"), "--config",
                    str(empty_config()), "--mic-device", "sph9999", env=env, check=False, timeout=60)
    assert proc.returncode == 2
    assert "mic.device 'sph9999': no such input device; inputs are:" in proc.stderr
    assert "earshot_test" in proc.stderr


def test_record_captures_the_live_channel_dc_free_at_16k(tmp_path: Path):
    t = np.arange(48000 * 3) / 48000
    env = _alsa_home(tmp_path, 0.1 * np.sin(2 * np.pi * 1000 * t))
    proc = earshotd("record", "--label", "beep", "--out", str(tmp_path / "ds"), "--clips", "2",
                    "--capture-ms", "1000", "--config", str(empty_config()),
                    "--mic-device", "earshot_test", "--mic-channel", "1", "--mic-gain-db", "6",
                    env=env, timeout=90)
    clips = sorted((tmp_path / "ds" / "beep").glob("beep_*.wav"))
    assert [c.name for c in clips] == ["beep_0000.wav", "beep_0001.wav"], proc.stderr
    x = read_wav(clips[1])
    assert x.size == FS
    assert abs(float(x.mean())) < 0.005  # the 0.25 offset is gone
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    assert int(np.argmax(spec)) == pytest.approx(1000, abs=3)  # 1 Hz bins: the live channel's tone
    assert float(np.percentile(np.abs(x), 99.9)) == pytest.approx(0.2, rel=0.05)  # +6 dB


def test_run_on_the_alsa_microphone_detects_and_stops_cleanly(tmp_path: Path):
    """`earshotd run` with kind = mic reads the PCM, detects the tone, and exits 0 on SIGTERM."""
    audio = tone_stream([(1.5, "high_tone")], 4.0)
    env = _alsa_home(tmp_path, _upsample(audio.astype(np.float64)))
    args = ["run", "--config", str(empty_config()), "--model-bundle", str(tone_bundle()),
            "--source-kind", "mic", "--mic-device", "earshot_test", "--mic-channel", "1",
            "--mic-chunk-ms", "250", "--output-json", "-", "--output-journal", "off",
            "--no-oled-enabled"]
    p = spawn(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = _readline(p, timeout=60)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert json.loads(line)["label"] == "high_tone", err
    assert p.returncode == 0, err
    assert "microphone earshot_test open: 2 ch int32 at 48000 Hz, live channel 1" in err


def _readline(p: subprocess.Popen, timeout: float) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        p.kill()
        raise AssertionError(f"no detection within {timeout} s\n{p.communicate()[1][-4000:]}")
    return p.stdout.readline()
