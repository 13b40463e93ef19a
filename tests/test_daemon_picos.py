"""`earshotd run` hosting Picos beside the local source: one daemon, two simulated boards.

The boards are the firmware core's host program (firmware/host/pico_sim.c, built here with the
test model: labels [background, tone], a 1 kHz tone is "tone") speaking the real protocol on
ptys; the local source is a WAV through the hand-weighted tone bundle of test_daemon_helpers.
The daemon's OLED is the fake SSD1306 bus, so its frames are decoded back into PNGs.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from daemon.oled import Layout, _font, render_alert
from daemon.outputs import Alert
from earshot.wavio import write_wav
from tests.test_daemon_helpers import (
    base_args,
    earshotd,
    empty_config,
    tone_bundle,
    tone_stream,
    write_stream,
)

FS = 16000
LOOP_S = 4.0
"""Length of each board's WAV; the boards loop it, so device time t has tones at t mod 4 s."""
BOARDS = {  # board id -> where its 1 kHz tone is in its WAV (s)
    "E66058388B4A000A": (0.5, 1.3),
    "E66058388B4A000B": (2.2, 3.0),
}
LOCAL = [(1.5, "low_tone"), (5.0, "high_tone"), (8.5, "low_tone")]
LOCAL_S = 11.0
"""The local stream, paced at real time so the boards have time to be heard too."""


@pytest.fixture(scope="module")
def pico_sim() -> Path:
    from trainer import firmware_build as fb

    build = fb.host_build(sanitize=True)  # the same build folder as tests/test_pico_sim.py
    fb._run(["cmake", "--build", str(build.folder), "--target", "pico_sim", "-j", "2"])
    return build.folder / "pico_sim"


def board_wav(path: Path, tone: tuple[float, float], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(LOOP_S * FS)) / FS
    audio = 0.01 * rng.standard_normal(t.size)
    on = (t >= tone[0]) & (t < tone[1])
    audio[on] += 0.5 * np.sin(2 * np.pi * 1000 * t[on])
    write_wav(path, audio.astype(np.float32))
    return path


def start_board(sim: Path, link: Path, wav: Path, board_id: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(sim), "--pty", str(link), "--id", board_id, "--speed", "1", "--loop",
         str(wav)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not link.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not link.exists():
        proc.kill()
        raise AssertionError(f"pico_sim made no pty at {link}: {proc.communicate(timeout=10)[1]!r}")
    return proc


def stop_board(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
    _, err = proc.communicate(timeout=10)
    return err.decode(errors="replace")


def source_pixels(img: np.ndarray, source: str) -> np.ndarray:
    """The top line's source text (left of "Ns ago") of an alert screen."""
    width = int(ImageDraw.Draw(Image.new("1", (128, 64))).textlength(source, font=_font(10)))
    return img[: Layout(128, 64).label_top, : width + 1]


def shown(frames: list[np.ndarray], a: Alert) -> bool:
    """Some frame is ``a``'s alert screen: its source on the top line, its label and bar below."""
    want = np.array(render_alert(a, a.t), np.uint8)
    lay = Layout(128, 64)
    src = source_pixels(want, a.short_source())
    return any(
        np.array_equal(f[lay.label_top : lay.bar[3] + 1], want[lay.label_top : lay.bar[3] + 1])
        and np.array_equal(source_pixels(f, a.short_source()), src)
        for f in frames
    )


@pytest.mark.slow
def test_run_hosts_two_picos_beside_the_local_wav_and_attributes_every_detection(pico_sim, tmp_path):
    empty_config()
    wav = write_stream(tmp_path / "local.wav",
                       tone_stream(LOCAL, LOCAL_S, silence=[(LOCAL_S - 1.0, LOCAL_S)]))  # fmt: skip
    boards = {}
    try:
        for i, (board_id, tone) in enumerate(BOARDS.items()):
            link = tmp_path / f"ttyACM-{board_id[-1]}"
            boards[board_id] = (link, start_board(pico_sim, link, board_wav(tmp_path / f"{i}.wav", tone, i), board_id))
        args = base_args(tone_bundle(), wav, "--source-realtime", "--output-json", "-",
                         "--serial-ports", ",".join(str(link) for link, _ in boards.values()))  # fmt: skip
        proc = earshotd(*args, png_dir=tmp_path / "oled", timeout=120)
    finally:
        errors = {board_id: stop_board(p) for board_id, (_, p) in boards.items()}
    for board_id, err in errors.items():
        assert "AddressSanitizer" not in err and "runtime error" not in err, (board_id, err)
    alerts = [json.loads(x) for x in proc.stdout.splitlines()]
    local = [a for a in alerts if a["source"] == "mic"]
    assert [a["label"] for a in local] == [label for _, label in LOCAL], proc.stderr
    for (onset, _), a in zip(LOCAL, local, strict=True):
        assert 0 < a["stream_t_ms"] - onset * 1000 <= 500 and "board_id" not in a, a
    for board_id, (start, end) in BOARDS.items():
        mine = [a for a in alerts if a.get("board_id") == board_id]
        assert mine, f"no detection from board {board_id}:\n{proc.stderr[-4000:]}"
        for a in mine:
            assert (a["source"], a["label"]) == (f"host-{board_id}", "tone"), a
            assert len(a["model_sha256"]) == 64
            heard = a["stream_t_ms"] % int(LOOP_S * 1000)  # device time, into its looping WAV
            assert start * 1000 < heard <= end * 1000 + 500, (board_id, a)
    assert len(alerts) == len(local) + sum(1 for a in alerts if a.get("board_id")), alerts
    assert "hosting Picos on" in proc.stderr
    frames = [np.array(Image.open(p), np.uint8) for p in sorted((tmp_path / "oled").glob("oled_*.png"))]
    for a in alerts:
        alert = Alert(a["label"], a["score"], a["source"], a["t"], board_id=a.get("board_id", ""))
        assert shown(frames, alert), f"no OLED frame shows {a}"
    assert Alert("tone", 1.0, "host-E66058388B4A000A", 0.0, board_id="E66058388B4A000A"
                 ).short_source() == "host-8B4A000A"  # fmt: skip


def test_source_none_needs_picos_and_says_so(tmp_path: Path):
    empty_config()
    proc = earshotd("run", "--config", str(tmp_path / "missing.toml"), check=False, timeout=60)
    assert proc.returncode == 2 and f"config {tmp_path / 'missing.toml'}: no such file" in proc.stderr
    proc = earshotd("run", "--config", str(empty_config()), "--source-kind", "none",
                    "--output-journal", "off", "--no-oled-enabled", check=False, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "source.kind (--source-kind) 'none' needs serial.enabled (--serial-enabled)" in proc.stderr


@pytest.mark.slow
def test_picos_only_daemon_reports_a_board_and_stops_on_sigterm(pico_sim, tmp_path: Path):
    """`[source] kind = "none"`: no local model or audio; one board's DETs reach the JSON output
    and journald-style log line with its board id; SIGHUP keeps it hosting; SIGTERM exits 0."""
    import signal

    from tests.test_daemon_helpers import spawn

    board_id = "E66058388B4A00CC"
    link = tmp_path / "ttyACM-c"
    board = start_board(pico_sim, link, board_wav(tmp_path / "c.wav", (0.5, 1.3), 3), board_id)
    cfg = tmp_path / "earshot.toml"
    cfg.write_text(f'[source]\nkind = "none"\n[serial]\nenabled = true\nports = ["{link}"]\n'
                   '[output]\njournal = "off"\njson = "-"\n[oled]\nenabled = false\n'
                   '[model]\nbundle = "/nonexistent"\n')  # fmt: skip
    p = spawn("run", "--config", str(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = Lines(p)
        first = json.loads(lines.next(30))
        p.send_signal(signal.SIGHUP)
        second = json.loads(lines.next(30))  # still hosting after the reload
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        stop_board(board)
    assert p.returncode == 0, err
    for a in (first, second):
        assert (a["source"], a["board_id"], a["label"]) == (f"host-{board_id}", board_id, "tone")
    assert f"detected tone ({first['score']:.2f}) from host-{board_id}" in err
    assert "SIGHUP: reloading" in err


class Lines:
    """Lines of a subprocess's stdout, read by a thread so every wait can time out."""

    def __init__(self, p: subprocess.Popen) -> None:
        import queue
        import threading

        self.p = p
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(x) for x in p.stdout], daemon=True).start()

    def next(self, timeout: float) -> str:
        import queue

        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            self.p.kill()
            raise AssertionError(
                f"no output line within {timeout} s:\n{self.p.stderr.read()[-4000:]}"
            ) from None


def test_pico_alert_fields_reach_journald_as_board_id(caplog):
    """LogSink gives a Pico's alert the BOARD_ID field (the local mic's has none)."""
    import logging

    from daemon.outputs import LogSink

    with caplog.at_level(logging.INFO, logger="daemon.alerts"):
        LogSink().alert(Alert("tone", 0.9, "pico-E66058388B4A0001", 1.0, "ab" * 32, 1234,
                              board_id="E66058388B4A0001"))  # fmt: skip
        LogSink().alert(Alert("yes", 0.8, "mic", 2.0, "cd" * 32, 99))
    pico, mic = caplog.records
    assert (pico.SOURCE, pico.BOARD_ID, pico.STREAM_T_MS) == ("pico-E66058388B4A0001", "E66058388B4A0001", "1234")
    assert not hasattr(mic, "BOARD_ID")


def test_boards_running_a_listed_bundle_are_judged_by_the_hosts_detector_from_scores():
    """[serial] bundles: a board whose model sha256 is a listed bundle's gets the daemon's
    detector (bundle thresholds, [detector] rules) on its SCORES, and its DETs are ignored; a
    board with another model is trusted line by line."""
    from daemon.config import DetectorSettings
    from daemon.pico_ears import BoardDetectors, PicoAlerts
    from earshot import protocol as P
    from earshot.bundle import load_bundle

    bundle = load_bundle(tone_bundle())  # labels _background_, low_tone, high_tone; thresholds 0.7
    alerts: list[Alert] = []
    rules = DetectorSettings(average_window_ms=300, min_count=2, suppression_ms=1500, ignore=["nope"])
    handler = PicoAlerts(alerts.append, detector_for_board=BoardDetectors([bundle], rules), clock=lambda: 5.0)
    known = P.Hello("0.1.0", "pico", "E66058388B4A0001", bundle.sha256, tuple(bundle.labels), 16000, "detect")
    other = P.Hello("0.1.0", "pico", "E66058388B4A0002", "ef" * 32, ("yes", "no"), 16000, "detect")
    handler("/dev/ttyACM0", known)
    handler("/dev/ttyACM1", other)
    handler("/dev/ttyACM0", P.Det(t=10, label="low_tone", score=0.99))  # ignored: the host judges
    handler("/dev/ttyACM1", P.Det(t=20, label="no", score=0.75))  # trusted
    for t, q in ((1000, (20, 170, 66)), (1032, (20, 190, 46)), (1064, (256, 0, 0)), (1096, (0, 200, 56))):
        handler("/dev/ttyACM0", P.Scores(t=t, q=q))  # averages: 170 (<179 = 0.7), 180 (fires)
    assert [(a.source, a.board_id, a.label, a.stream_t_ms) for a in alerts] == [
        ("pico-E66058388B4A0002", "E66058388B4A0002", "no", 20),
        ("pico-E66058388B4A0001", "E66058388B4A0001", "low_tone", 1032),
    ]
    assert alerts[1].score == pytest.approx(180 / 256) and alerts[1].model_sha256 == bundle.sha256
