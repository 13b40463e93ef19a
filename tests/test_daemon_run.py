"""`earshotd run` as a subprocess: detections, OLED frames, sd_notify, SIGHUP, SIGTERM, bad bundles."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.oled import Layout, render_alert
from daemon.outputs import Alert
from tests.test_daemon_helpers import (
    base_args,
    earshotd,
    empty_config,
    spawn,
    tone_bundle,
    tone_stream,
    write_stream,
)

ONSETS = [(2.0, "low_tone"), (4.37, "high_tone"), (7.81, "low_tone")]


class NotifySocket:
    """A real unix datagram socket in the abstract namespace, as systemd would pass it; a thread
    collects the messages so the sender never finds the queue full."""

    def __init__(self) -> None:
        self.name = f"@earshot-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._closed:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_for(self, key: str, timeout: float = 60.0, after: int = 0) -> str:
        """The first message from index ``after`` on that holds ``key`` (e.g. READY=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages[after:]:
                if key in m.split("\n"):
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no {key!r} on NOTIFY_SOCKET within {timeout} s; got {self.messages}")

    def drain(self) -> list[str]:
        time.sleep(0.3)
        return list(self.messages)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture()
def notify():
    s = NotifySocket()
    yield s
    s.close()


def _label_rows(img: np.ndarray, height: int = 64) -> np.ndarray:
    lay = Layout(128, height)
    return img[lay.label_top : lay.bar[3] + 1]  # label + confidence bar, not the time line


def _expected(label: str, score: float) -> np.ndarray:
    img = render_alert(Alert(label, score, "mic", 0.0), 0.0)
    return _label_rows(np.array(img, np.uint8))


def test_run_detects_events_shows_them_on_the_oled_and_talks_to_systemd(tmp_path: Path, notify):
    empty_config()
    wav = write_stream(tmp_path / "stream.wav",
                       tone_stream(ONSETS, 11.0, negatives=[6.0], silence=[(9.0, 11.0)]))
    png = tmp_path / "oled"
    proc = earshotd(*base_args(tone_bundle(), wav, "--output-json", "-"), png_dir=png,
                    env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "100000"})
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["label"] for x in lines] == [label for _, label in ONSETS]
    for (onset, _), x in zip(ONSETS, lines, strict=True):
        assert 0 < x["stream_t_ms"] - onset * 1000 <= 500, x  # latency budget, stream time
        assert x["source"] == "mic" and len(x["model_sha256"]) == 64
    msgs = notify.drain()
    assert any(m.startswith("READY=1") for m in msgs)
    assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in msgs)
    assert "WATCHDOG=1" in msgs
    assert msgs[-1] == "STOPPING=1"
    frames = [np.array(Image.open(p), np.uint8) for p in sorted(png.glob("oled_*.png"))]
    assert frames, proc.stderr
    shown = [label for label in ("low_tone", "high_tone")
             if any(np.array_equal(_label_rows(f > 0), _expected(label, 1.0)) for f in frames)]
    assert shown == ["low_tone", "high_tone"]


def test_sighup_reloads_the_model_and_sigterm_exits_zero(tmp_path: Path, notify):
    bundle_a = tone_bundle(tmp_path / "a", name="tones-a")
    bundle_b = tone_bundle(tmp_path / "b", name="tones-b")
    wav = write_stream(tmp_path / "stream.wav", tone_stream([(1.0, "low_tone"), (4.0, "high_tone")], 30.0))
    cfg = tmp_path / "earshot.toml"
    cfg.write_text(f'[model]\nbundle = "{bundle_a}"\n[output]\njournal = "off"\njson = "-"\n'
                   f'[source]\nkind = "wav"\nwav = "{wav}"\n[oled]\nenabled = false\n')
    p = spawn("run", "--config", str(cfg), env={"NOTIFY_SOCKET": notify.name},
              stdout=__import__("subprocess").PIPE, stderr=__import__("subprocess").PIPE)
    try:
        notify.wait_for("READY=1")
        first = p.stdout.readline()  # real-time pacing: arrives about 1.3 s in
        assert json.loads(first)["label"] == "low_tone"
        cfg.write_text(cfg.read_text().replace(str(bundle_a), str(bundle_b)))
        n = len(notify.messages)
        p.send_signal(signal.SIGHUP)
        assert "reloaded" in notify.wait_for("READY=1", timeout=30, after=n)
        second = json.loads(p.stdout.readline())  # the mic stream kept going: 4 s event
        assert second["label"] == "high_tone" and 4000 < second["stream_t_ms"] <= 4500
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert "reloaded: model tones-b" in err
    assert notify.drain()[-1] == "STOPPING=1"


def test_bad_bundle_is_refused_with_the_reason(tmp_path: Path):
    empty_config()
    bundle = tone_bundle(tmp_path / "bad", name="bad")
    with open(bundle / "model.tflite", "ab") as f:
        f.write(b"\0")
    wav = write_stream(tmp_path / "s.wav", tone_stream([], 1.0))
    proc = earshotd(*base_args(bundle, wav), check=False, timeout=60)
    assert proc.returncode == 2
    assert f"earshotd: error: bundle {bundle}: model_sha256 mismatch" in proc.stderr
    shutil.rmtree(bundle)
    proc = earshotd(*base_args(bundle, wav), check=False, timeout=60)
    assert proc.returncode == 2 and f"bundle {bundle}: no such folder" in proc.stderr


def test_missing_wav_is_named(tmp_path: Path):
    empty_config()
    proc = earshotd(*base_args(tone_bundle(), tmp_path / "none.wav"), check=False, timeout=60)
    assert proc.returncode == 2 and f"{tmp_path / 'none.wav'}: no such file" in proc.stderr


def test_daemon_never_imports_tensorflow(tmp_path: Path):
    empty_config()
    wav = write_stream(tmp_path / "s.wav", tone_stream([(0.5, "low_tone")], 2.0))
    code = (
        "import sys, runpy; sys.argv = ['earshotd'] + sys.argv[1:]\n"
        "from daemon.__main__ import main\n"
        "rc = main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "heavy = [m for m in ('scipy.signal', 'scipy.fft', 'scipy.io') if m in sys.modules]\n"
        "assert not heavy, f'{heavy} imported (scipy.signal alone is about 50 MB)'\n"
        "sys.exit(rc)\n"
    )
    import subprocess
    import sys

    from tests.test_daemon_helpers import REPO, _env
    proc = subprocess.run([sys.executable, "-c", code, *base_args(tone_bundle(), wav)], cwd=REPO,
                          env=_env(None), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


EARLY_SIGHUP = r"""
import os, signal, sys
import daemon.service as service
real = service.load_model
def slow_load(settings):  # a signal while the model loads, before the main loop
    os.kill(os.getpid(), getattr(signal, os.environ["EARLY_SIGNAL"]))
    return real(settings)
service.load_model = slow_load
from daemon.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def _early(tmp_path: Path, notify, sig: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from tests.test_daemon_helpers import REPO, _env
    empty_config()
    wav = write_stream(tmp_path / "s.wav", tone_stream([(0.5, "low_tone")], 2.0))
    env = _env({"NOTIFY_SOCKET": notify.name, "EARLY_SIGNAL": sig})
    return subprocess.run([sys.executable, "-c", EARLY_SIGHUP, *base_args(tone_bundle(), wav)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_a_sighup_during_start_up_is_a_reload_not_a_death(tmp_path: Path, notify):
    proc = _early(tmp_path, notify, "SIGHUP")
    assert proc.returncode == 0, proc.stderr  # not -1/129 (killed by SIGHUP)
    assert "SIGHUP: reloading config and model" in proc.stderr
    msgs = notify.drain()
    assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in msgs)
    assert msgs[-1] == "STOPPING=1"


def test_a_sigterm_during_start_up_stops_cleanly_before_the_first_read(tmp_path: Path, notify):
    proc = _early(tmp_path, notify, "SIGTERM")
    assert proc.returncode == 0, proc.stderr
    assert "stopped: 0 inferences" in proc.stderr
    assert notify.drain()[-1] == "STOPPING=1"


def test_the_xnnpack_banner_is_shown_only_with_debug(tmp_path: Path):
    empty_config()
    wav = write_stream(tmp_path / "s.wav", tone_stream([], 1.0))
    quiet = earshotd(*base_args(tone_bundle(), wav), timeout=60)
    assert "XNNPACK" not in quiet.stderr
    loud = earshotd("--debug", *base_args(tone_bundle(), wav), timeout=60)
    assert "XNNPACK" in loud.stderr


def test_a_fifo_as_output_json_is_refused_instead_of_blocking_before_ready(tmp_path: Path, notify):
    empty_config()
    fifo = tmp_path / "alerts.fifo"
    os.mkfifo(fifo)
    wav = write_stream(tmp_path / "s.wav", tone_stream([], 1.0))
    proc = earshotd(*base_args(tone_bundle(), wav, "--output-json", str(fifo)), check=False,
                    timeout=60, env={"NOTIFY_SOCKET": notify.name})
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"earshotd: error: output.json {str(fifo)!r} is a FIFO, "
                                        "which is not supported (opening it would block until a "
                                        "reader appears): use '-' and a shell pipe")
    assert not any("READY=1" in m for m in notify.drain())


def test_kind_none_with_no_serial_ports_refuses_to_start(tmp_path: Path):
    proc = earshotd("run", "--config", str(empty_config()), "--source-kind", "none",
                    "--serial-ports", "", "--output-journal", "off", "--no-oled-enabled",
                    check=False, timeout=30)
    assert proc.returncode == 2
    assert "source.kind (--source-kind) 'none' needs serial.ports (--serial-ports)" in proc.stderr
