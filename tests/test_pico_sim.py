"""pico_sim (firmware/host/pico_sim.c): the firmware core's block loop speaking the real protocol.

Built from the core with CMake (trainer.firmware_build, test model: labels [background, tone]).
On stdout it is checked against es_host (same detections) and the protocol parser; on ptys the
daemon's serial host runs two of them and a garbage stream at once, survives one being killed
and restarted, and records a dataset from raw mode that the trainer loads.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from daemon import serial_host as S
from daemon.pico_ears import PicoAlerts
from earshot import protocol as P
from earshot.wavio import read_wav, write_wav

ROOT = Path(__file__).resolve().parents[1]
TONE_AT = (1.0, 2.0)  # s: where the 1 kHz tone is in tone.wav


@pytest.fixture(scope="module")
def bins() -> dict[str, Path]:
    from trainer import firmware_build as fb

    build = fb.host_build(sanitize=True)
    fb._run(["cmake", "--build", str(build.folder), "--target", "pico_sim", "-j", "2"])
    return {"pico_sim": build.folder / "pico_sim", "es_host": build.es_host}


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 4) / 16000
    noise = 0.01 * rng.standard_normal(len(t))
    tone = noise.copy()
    on = (t >= TONE_AT[0]) & (t < TONE_AT[1])
    tone[on] += 0.5 * np.sin(2 * np.pi * 1000 * t[on])
    write_wav(folder / "tone.wav", tone)
    write_wav(folder / "noise.wav", noise)
    return {"tone": folder / "tone.wav", "noise": folder / "noise.wav"}


def run_sim(bins, args: list[str], stdin: bytes = b"") -> list[str]:
    done = subprocess.run(
        [str(bins["pico_sim"]), "--speed", "0", *args], input=stdin, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


class Sim:
    """pico_sim on its own pty, reachable at ``link``."""

    def __init__(self, bins, link: Path, wav: Path, board_id: str, speed: float = 4.0,
                 extra: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.link = link
        self.proc = subprocess.Popen(
            [str(bins["pico_sim"]), "--pty", str(link), "--id", board_id, "--speed", str(speed),
             "--loop", *extra, str(wav)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for(lambda: link.exists() or self.proc.poll() is not None, 10, f"{link}")
        assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        err = self.proc.stderr.read().decode() if self.proc.stderr else ""
        assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_stdout_speaks_the_protocol_and_detects_what_es_host_detects(bins, wavs) -> None:
    lines = run_sim(bins, ["--status-ms", "1000", str(wavs["tone"])])
    msgs = [P.parse_line(x) for x in lines]  # every line is valid protocol
    hello = msgs[0]
    assert isinstance(hello, P.Hello)
    assert (hello.labels, hello.mode, hello.id) == (("background", "tone"), "detect", "0" * 15 + "1")
    scores = [m for m in msgs if isinstance(m, P.Scores)]
    assert len(scores) == 4 * 16000 // 512 and all(len(s.q) == 2 for s in scores)
    assert [s.t for s in scores] == [32 * (i + 1) for i in range(len(scores))]
    dets = [m for m in msgs if isinstance(m, P.Det)]
    host = subprocess.run([str(bins["es_host"]), str(wavs["tone"])],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert host.returncode == 0, host.stderr
    expected = [(int(t), label) for t, label, _ in (x.split() for x in host.stdout.splitlines())]
    assert [(d.t, d.label) for d in dets] == expected
    assert len(dets) == 1 and TONE_AT[0] * 1000 < dets[0].t < TONE_AT[1] * 1000
    assert [m.t for m in msgs if isinstance(m, P.Status)] == [1024, 2048, 3072]  # every >= 1000 ms


def test_raw_mode_on_command_streams_the_wav_samples_exactly(bins, wavs) -> None:
    lines = run_sim(bins, [str(wavs["tone"])], stdin=b"ES1 CMD mode=raw\nES1 CMD nonsense\n")
    msgs = [P.parse_line(x) for x in lines]
    ok = msgs.index(P.Ok("raw"))
    assert isinstance(msgs[ok + 1], P.Hello) and msgs[ok + 1].mode == "raw"
    assert any(isinstance(m, P.Err) and m.code == "bad_cmd" for m in msgs)
    frames = [m for m in msgs[ok:] if isinstance(m, P.Audio)]
    assert [f.seq for f in frames] == list(range(len(frames)))
    pcm = np.frombuffer(b"".join(f.pcm for f in frames), "<i2")
    wav = np.round(read_wav(wavs["tone"]) * 32768).astype(np.int16)  # write_wav's int16 values
    assert len(pcm) == len(wav) - 512  # the first block ran in detect mode
    assert np.array_equal(pcm, wav[512:])


@pytest.mark.slow
def test_daemon_hosts_two_sims_and_a_garbage_stream_and_survives_a_restart(bins, wavs, tmp_path) -> None:
    a = Sim(bins, tmp_path / "pico-a", wavs["tone"], "E66058388B4A000A")
    b = Sim(bins, tmp_path / "pico-b", wavs["noise"], "E66058388B4A000B")
    junk_master, junk_slave = os.openpty()
    stop = threading.Event()

    def garbage() -> None:
        rng = np.random.default_rng(1)
        while not stop.wait(0.05):
            os.write(junk_master, rng.bytes(200) + b"\n" + b"ES9 DET t=1 label=tone score=1.0\n")

    alerts: list = []
    host = S.SerialHost(
        S.HostSettings(ports=(str(a.link), str(b.link), os.ttyname(junk_slave)), backoff_min_s=0.05),
        PicoAlerts(alerts.append),
    )
    feeder = threading.Thread(target=garbage, daemon=True)
    feeder.start()
    host.start()
    try:
        wait_for(lambda: len(alerts) >= 2, 30, "two tone detections from board A")
        link_a, link_b = host.links[str(a.link)], host.links[str(b.link)]
        assert link_b.stats.hello is not None and link_b.stats.hello.id == "E66058388B4A000B"
        a.stop()  # board A unplugged...
        wait_for(lambda: not link_a.stats.connected, 10, "the host to notice")
        before = len(alerts)
        a = Sim(bins, tmp_path / "pico-a", wavs["tone"], "E66058388B4A000A")  # ...and back
        wait_for(lambda: link_a.stats.connects == 2, 15, "reconnect")
        wait_for(lambda: len(alerts) > before, 30, "a detection after the restart")
        junk_stats = host.links[os.ttyname(junk_slave)].stats
    finally:
        stop.set()
        host.stop()
        a.stop()
        b.stop()
        os.close(junk_master)
        os.close(junk_slave)
    assert {(x.source, x.label) for x in alerts} == {("host-E66058388B4A000A", "tone")}
    assert junk_stats.hello is None and junk_stats.bad_lines + junk_stats.other_version > 0
    assert link_b.stats.bad_lines == 0 and link_b.stats.last_status is not None


@pytest.mark.slow
def test_recording_from_a_sims_raw_mode_gives_wavs_the_trainer_loads(bins, wavs, tmp_path) -> None:
    from daemon.__main__ import main
    from trainer.datasets import load_dataset

    out = tmp_path / "dataset"
    for label, wav in (("tone", wavs["tone"]), ("background", wavs["noise"])):
        sim = Sim(bins, tmp_path / f"pico-{label}", wav, "E66058388B4A0C0D", speed=8.0)
        try:
            argv = ["record", "--from", str(sim.link), "--label", label, "--out", str(out),
                    "--clips", "2", "--keep-silence"]  # fmt: skip
            assert main(argv) == 0
        finally:
            sim.stop()
    ds = load_dataset(out, progress=False, val_percent=0, test_percent=0)
    assert sorted(ds.labels) == ["background", "tone"]
    assert len(ds.clips) == 4
    tone_files = sorted((out / "tone").glob("*.wav"))
    assert len(tone_files) == 2
    audio = read_wav(tone_files[0])
    assert len(audio) == 16000 and np.max(np.abs(audio)) > 0.4  # the recorded tone, not silence


def test_a_sim_that_hangs_is_reported_down_by_the_host(bins, wavs, tmp_path) -> None:
    """pico_sim --silent-after: the board's application stops talking (a hung board) while its
    port stays open; the host, which saw its STATUS every 200 ms, reports it down."""
    sim = Sim(bins, tmp_path / "ttyACM-hung", wavs["noise"], "E66058388B4AF00D", speed=1.0,
              extra=("--status-ms", "200", "--silent-after", "1500"))  # fmt: skip
    settings = S.HostSettings(ports=(str(sim.link),), status_period_s=0.2, silent_periods=3)
    host = S.SerialHost(settings, lambda port, msg: None)
    host.start()
    try:
        link = host.links[str(sim.link)]
        wait_for(lambda: link.stats.last_status is not None, 10, "a STATUS")
        assert link.stats.up
        wait_for(lambda: link.stats.silent, 10, "the hung board to be reported down")
        assert link.stats.connected and not link.stats.up and link.stats.downs == 1
        assert link.stats.last_status.t <= 1500
    finally:
        host.stop()
        sim.stop()
