"""Outputs in process: OLED screens through the real driver on a fake bus, retry with backoff,
journald fields over a real socket, JSON lines."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from daemon.config import OledSettings
from daemon.oled import OledSink, render_alert, render_idle
from daemon.outputs import Alert, JsonLinesSink, LogSink, Outputs
from tests.fakes_i2c import FakeSSD1306Bus


def _wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(0.01)


@pytest.mark.parametrize("height", [64, 32])
def test_alert_frame_reaches_the_panel_and_returns_to_idle(tmp_path: Path, height: int):
    bus = FakeSSD1306Bus(tmp_path, height=height)
    s = OledSettings(height=height, hold_s=0.3, refresh_hz=20.0)
    sink = OledSink(s, "tones", i2c_factory=lambda n: bus, clock=lambda: 1000.0)
    try:
        a = Alert("smoke_alarm", 0.5, "pico-1", 997.0)
        sink.alert(a)
        want = np.array(render_alert(a, 1000.0, 128, height), np.uint8)
        _wait(lambda: any(np.array_equal(f, want) for f in bus.frames))
        assert want[:, :40].any() and want.shape == (height, 128)
        bar_row = want[-3] if height == 32 else want[55]
        assert 40 <= int(bar_row[:98].sum()) <= 56  # half-full confidence bar (score 0.5)
        idle = np.array(render_idle("tones", -200.0, 128, height), np.uint8)
        _wait(lambda: np.array_equal(bus.frames[-1], idle))  # after hold_s
    finally:
        sink.close()
    assert list(tmp_path.glob("oled_*.png"))


def test_failing_display_is_retried_with_backoff_and_never_blocks(caplog):
    attempts: list[float] = []
    bus = FakeSSD1306Bus(fail_writes=0)

    def factory(n: int):
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise OSError(2, "No such file or directory: '/dev/i2c-1'")
        return bus

    sink = OledSink(OledSettings(refresh_hz=30.0), "m", i2c_factory=factory)
    try:
        for _ in range(50):  # queued for the display thread while the bus is missing
            sink.alert(Alert("x", 0.9, "mic", time.time()))
        _wait(lambda: len(attempts) >= 3 and bus.frames, timeout=10)
    finally:
        sink.close()
    gaps = np.diff(attempts[:3])
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # 1 s, then 2 s
    assert "unavailable; retrying in 1 s" in caplog.text


def test_journal_gets_structured_fields(tmp_path: Path):
    """systemd-python's JournalHandler over a real datagram socket at the journal's path."""
    path = "/run/systemd/journal/socket"
    if os.path.exists(path):
        pytest.skip("a real journald owns /run/systemd/journal/socket here")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        import logging

        from systemd.journal import JournalHandler

        log = logging.getLogger("test.alerts")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(JournalHandler(SYSLOG_IDENTIFIER="earshotd"))
        LogSink(log).alert(Alert("yes", 0.91234, "mic", 1.0, "ab" * 32, 2300))
        fields = dict(line.split("=", 1) for line in sock.recv(65536).decode().splitlines()
                      if "=" in line)
    finally:
        sock.close()
        os.unlink(path)
    assert fields["LABEL"] == "yes" and fields["SCORE"] == "0.912"
    assert fields["SOURCE"] == "mic" and fields["MODEL_SHA256"] == "ab" * 32
    assert fields["MESSAGE"] == "detected yes (0.91) from mic"
    assert fields["STREAM_T_MS"] == "2300"


def test_json_lines_and_a_failing_sink_does_not_stop_the_others(tmp_path: Path):
    class Broken:
        def alert(self, a):
            raise RuntimeError("boom")

        def level(self, *a):
            raise RuntimeError("boom")

        def close(self):
            pass

    out = tmp_path / "events.jsonl"
    outputs = Outputs([Broken(), JsonLinesSink(str(out))])
    outputs.publish(Alert("co_alarm", 0.8, "pico-2", 12.5, "cd" * 32))
    outputs.level("mic", -30.0, -40.0)
    outputs.close()
    rec = json.loads(out.read_text())
    assert rec == {"label": "co_alarm", "score": 0.8, "source": "pico-2", "t": 12.5,
                   "model_sha256": "cd" * 32, "stream_t_ms": None}
