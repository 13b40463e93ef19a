"""daemon.serial_host (and daemon.pico_ears' alerts) against boards on real ptys (os.openpty; the host opens the slave with pyserial).

The simulated boards here speak the real protocol lines (earshot.protocol's formatter, held to the
same example file as the firmware's C formatter); tests/test_pico_sim.py does the same with the
firmware core's own host program.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon import serial_host as S
from daemon.config import SerialSettings, Settings
from daemon.outputs import Outputs
from daemon.pico_ears import PicoAlerts, PicoEars
from daemon.pico_port import keep_reopening
from earshot import protocol as P
from earshot.detector import Detector, DetectorConfig

SHA = "ab" * 32


class FakeBoard:
    """A pty that behaves like a Pico: answers ``CMD hello``, writes whatever the test says."""

    def __init__(self, board_id: str, labels: tuple[str, ...] = ("yes", "no"),
                 answer_hello: bool = True) -> None:  # fmt: skip
        self.hello = P.Hello("0.1.0", "pico", board_id, SHA, labels, 16000, "detect")
        self.answer_hello = answer_hello
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.commands: list[P.Message] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def write(self, data: bytes | str | P.Message) -> None:
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes):
            data = P.format_message(data).encode()
        os.write(self.master, data)

    def _serve(self) -> None:
        splitter = P.LineSplitter()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.master, 4096)
            except OSError:
                return
            for line in splitter.feed(data):
                cmd = P.parse_line(line)
                self.commands.append(cmd)
                if cmd == P.Command("hello") and self.answer_hello:
                    self.write(self.hello)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def boards():
    made: list[FakeBoard] = []

    def make(board_id: str, labels: tuple[str, ...] = ("yes", "no"), answer_hello: bool = True) -> FakeBoard:
        b = FakeBoard(board_id, labels, answer_hello)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def start_host(ports: list[str], handler, **kw) -> S.SerialHost:
    settings = S.HostSettings(ports=tuple(ports), backoff_min_s=0.05, backoff_max_s=0.2, **kw)
    host = S.SerialHost(settings, handler)
    host.start()
    return host


def test_two_boards_and_a_garbage_stream_at_once_get_the_right_detections(boards, caplog) -> None:
    a, b, junk = boards("E66058388B4A0001"), boards("E66058388B4A0002"), boards("0000000000000000")
    alerts: list = []
    host = start_host([a.path, b.path, junk.path], PicoAlerts(alerts.append, clock=lambda: 1.0))
    try:
        wait_for(lambda: all(host.links[x.path].stats.hello for x in (a, b, junk)), what="hellos")
        junk.write(os.urandom(3000) + b"\n" + b"z" * 5000 + b"\nES2 DET t=5 label=yes score=0.9\n")
        a.write("ES1 DET t=1000 label=ye")  # a partial line, finished below
        b.write(P.Det(t=2000, label="no", score=0.75))
        junk.write("ES1 DET t=3000 label=yes score=0.99\n")  # a real line after the garbage
        a.write("s score=0.871\n")
        wait_for(lambda: len(alerts) == 3, what="three alerts")
    finally:
        host.stop()
    got = {(x.source, x.label, x.score, x.stream_t_ms) for x in alerts}
    assert got == {
        ("pico-E66058388B4A0001", "yes", 0.871, 1000),
        ("pico-E66058388B4A0002", "no", 0.75, 2000),
        ("pico-0000000000000000", "yes", 0.99, 3000),
    }
    assert all(x.model_sha256 == SHA for x in alerts)
    stats = host.links[junk.path].stats
    assert stats.overlong >= 1 and stats.other_version == 1
    assert any(junk.path in r.getMessage() and "version 2" in r.getMessage() for r in caplog.records)
    assert host.links[a.path].stats.bad_lines == 0


def test_a_pty_closed_and_reopened_mid_stream_is_reconnected(boards, tmp_path: Path) -> None:
    first = boards("E66058388B4A1234")
    port = tmp_path / "ttyACM-by-id"  # like /dev/serial/by-id: a stable name for a new device
    port.symlink_to(first.path)
    alerts: list = []
    host = start_host([str(port)], PicoAlerts(alerts.append))
    try:
        link = host.links[str(port)]
        wait_for(lambda: link.stats.hello is not None, what="first hello")
        first.write(P.Det(t=100, label="yes", score=0.9))
        wait_for(lambda: len(alerts) == 1, what="first alert")
        first.write("ES1 DET t=200 lab")  # unplugged mid-line
        first.close()
        wait_for(lambda: not link.stats.connected, what="the link to notice the unplug")
        second = boards("E66058388B4A1234")  # replugged: a new pty behind the same name
        port.unlink()
        port.symlink_to(second.path)
        wait_for(lambda: link.stats.connects == 2 and link.stats.connected, what="reconnect")
        wait_for(lambda: P.Command("hello") in second.commands, what="hello request")
        wait_for(lambda: link.stats.hello is not None, what="the new connection's hello")
        second.write(P.Det(t=50, label="no", score=0.8))
        wait_for(lambda: len(alerts) == 2, what="alert after reconnect")
    finally:
        host.stop()
    assert [(x.label, x.stream_t_ms) for x in alerts] == [("yes", 100), ("no", 50)]
    assert link.stats.bad_lines == 0  # the torn line died with the old session


def test_a_missing_port_is_retried_with_backoff_never_fatal(tmp_path: Path, boards) -> None:
    port = tmp_path / "not-yet"
    host = start_host([str(port)], lambda port, msg: None)
    try:
        time.sleep(0.5)
        link = host.links[str(port)]
        assert link.is_alive() and link.stats.connects == 0
        board = boards("E66058388B4A9999")
        port.symlink_to(board.path)
        wait_for(lambda: link.stats.hello is not None, what="hello once the port exists")
    finally:
        host.stop()
    assert not link.is_alive()


def test_board_reset_with_scores_through_the_hosts_own_detector(boards) -> None:
    board = boards("E66058388B4A5555", labels=("yes", "no", "_silence_"))
    cfg = DetectorConfig(labels=("yes", "no", "_silence_"), thresholds=(0.7, 0.7, 0.7),
                         ignore=frozenset({"_silence_"}), min_count=3, suppression_ms=1500)  # fmt: skip
    alerts: list = []
    handler = PicoAlerts(alerts.append, detector_for_board=lambda hello: Detector(cfg))
    host = start_host([board.path], handler)
    try:
        wait_for(lambda: host.links[board.path].stats.hello is not None, what="hello")
        board.write(P.Det(t=1, label="no", score=0.9))  # ignored: the host decides
        for t in range(0, 640, 128):
            board.write(P.Scores(t=5000 + t, q=(230, 20, 6)))
        wait_for(lambda: len(alerts) == 1, what="a detection from SCORES")
        board.write(board.hello)  # the board reset: time starts again from 0
        for t in range(0, 640, 128):
            board.write(P.Scores(t=t, q=(10, 240, 6)))
        wait_for(lambda: len(alerts) == 2, what="a detection after the reset")
    finally:
        host.stop()
    assert [(a.label, a.stream_t_ms) for a in alerts] == [("yes", 5256), ("no", 256)]


def test_auto_finds_new_boards_when_they_appear(boards) -> None:
    found: list[str] = []
    alerts: list = []
    settings = S.HostSettings(ports=("auto",), scan_interval_s=0.1)
    host = S.SerialHost(settings, PicoAlerts(alerts.append), finder=lambda: list(found))
    host.start()
    try:
        board = boards("E66058388B4A7777")
        found.append(board.path)
        wait_for(lambda: board.path in host.links and host.links[board.path].stats.hello,
                 what="the scanner to pick up the board")  # fmt: skip
        board.write(P.Det(t=9, label="yes", score=0.8))
        wait_for(lambda: len(alerts) == 1, what="alert")
    finally:
        host.stop()


def test_earshotd_picos_lists_boards_with_their_hello(boards, capsys) -> None:
    from daemon.__main__ import main

    a, b = boards("E66058388B4A0001"), boards("E66058388B4A0002", labels=("alarm", "_bg_"))
    assert main(["picos", "--port", a.path, "--port", b.path, "--timeout", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == sorted([
        f"{a.path}: pico id=E66058388B4A0001 fw=0.1.0 model={SHA[:12]} labels=yes,no rate=16000 mode=detect",
        f"{b.path}: pico id=E66058388B4A0002 fw=0.1.0 model={SHA[:12]} labels=alarm,_bg_ rate=16000 mode=detect",
    ])  # fmt: skip


def test_earshotd_picos_says_when_a_port_never_says_hello(tmp_path: Path, capsys) -> None:
    from daemon.__main__ import main

    master, slave = os.openpty()
    try:
        assert main(["picos", "--port", os.ttyname(slave), "--timeout", "0.5"]) == 1
    finally:
        os.close(master)
        os.close(slave)
    assert "no hello within 0.5 s" in capsys.readouterr().out


def test_a_det_whose_label_the_hello_never_announced_is_no_alert(boards, caplog) -> None:
    """One corrupted byte turns "yes" into "kes": logged and counted, never an alert."""
    board = boards("E66058388B4A0101")
    alerts: list = []
    host = start_host([board.path], PicoAlerts(alerts.append))
    try:
        link = host.links[board.path]
        wait_for(lambda: link.stats.hello is not None, what="hello")
        board.write(P.Det(t=100, label="kes", score=0.9))
        board.write(P.Det(t=200, label="yes", score=0.9))
        wait_for(lambda: len(alerts) == 1, what="the real alert")
    finally:
        host.stop()
    assert [(a.label, a.stream_t_ms) for a in alerts] == [("yes", 200)]
    assert link.stats.unknown_labels == 1
    assert any("'kes'" in r.getMessage() and board.path in r.getMessage() for r in caplog.records)


def test_after_a_replug_nothing_counts_before_the_new_boards_hello(boards, tmp_path: Path) -> None:
    """A DET that arrives on a reconnected port before that connection's HELLO is not credited
    to the board that was there before; after the new HELLO it is the new board's."""
    first = boards("E66058388B4A0A01")
    port = tmp_path / "ttyACM0"
    port.symlink_to(first.path)
    alerts: list = []
    host = start_host([str(port)], PicoAlerts(alerts.append))
    try:
        link = host.links[str(port)]
        wait_for(lambda: link.stats.hello is not None, what="first hello")
        first.close()
        wait_for(lambda: not link.stats.connected, what="the unplug")
        second = boards("E66058388B4A0B02", answer_hello=False)  # a slow boot: no hello yet
        port.unlink()
        port.symlink_to(second.path)
        wait_for(lambda: link.stats.connected and link.stats.connects == 2, what="reconnect")
        assert link.stats.hello is None
        second.write(P.Det(t=10, label="yes", score=0.9))  # whose? nobody knows yet
        wait_for(lambda: link.stats.before_hello == 1, what="the stale line to be counted")
        second.write(second.hello)
        second.write(P.Det(t=20, label="no", score=0.8))
        wait_for(lambda: len(alerts) == 1, what="the new board's alert")
    finally:
        host.stop()
    assert [(a.source, a.label, a.stream_t_ms) for a in alerts] == [("pico-E66058388B4A0B02", "no", 20)]


def test_a_silent_board_is_down_in_the_status_line_and_up_on_its_next_line(boards, caplog) -> None:
    board = boards("E66058388B4A0C03")
    settings = Settings(serial=SerialSettings(enabled=True, ports=[board.path]))

    def factory(hs: S.HostSettings, handler) -> S.SerialHost:  # a 0.2 s STATUS period
        return S.SerialHost(S.HostSettings(ports=hs.ports, status_period_s=0.2, silent_periods=3), handler)

    class Screen:  # the OLED's part of the sink interface: what it is told to show
        def __init__(self) -> None:
            self.notices: list[str] = []

        def alert(self, a) -> None: ...

        def notice(self, text: str) -> None:
            self.notices.append(text)

    screen = Screen()
    ears = PicoEars(settings, [], Outputs([screen]), host_factory=factory)
    ears.start()
    name = board.path.rsplit("/", 1)[-1]
    try:
        assert ears.host is not None
        link = ears.host.links[board.path]
        wait_for(lambda: link.stats.hello is not None, what="hello")
        board.write(P.Status(t=5000, loop_us=4000, cpu=12, dropped=0, mode="detect"))
        assert ears.status() == "Picos: 1/1 up, 0 detections"
        assert screen.notices == []
        wait_for(lambda: link.stats.silent, timeout=5, what="the board to be reported down")
        assert ears.status() == f"Picos: 0/1 up ({board.path} silent), 0 detections"
        assert screen.notices == [f"Pico down: {name}"]  # once, however often status is asked
        ears.status()
        assert screen.notices == [f"Pico down: {name}"]
        assert any("board down" in r.getMessage() and board.path in r.getMessage()
                   for r in caplog.records)  # fmt: skip
        board.write(P.Status(t=30000, loop_us=4000, cpu=12, dropped=0, mode="detect"))
        wait_for(lambda: not link.stats.silent, what="the board to be up again")
        assert ears.status() == "Picos: 1/1 up, 0 detections"
        assert screen.notices == [f"Pico down: {name}", f"Pico up: {name}"]
    finally:
        ears.stop()
    assert link.stats.downs == 1
    assert any("board up again" in r.getMessage() for r in caplog.records)


def test_a_flooding_board_gets_a_bounded_log_and_a_count_of_the_rest(boards, caplog) -> None:
    """Thousands of bad lines of ever new kinds (versions, error codes, labels): at most
    log_burst messages for the port, the rest counted; the board's real lines still count."""
    board = boards("E66058388B4A0D04")
    alerts: list = []
    host = start_host([board.path], PicoAlerts(alerts.append), log_burst=5)
    try:
        link = host.links[board.path]
        wait_for(lambda: link.stats.hello is not None, what="hello")
        caplog.clear()
        flood = []
        for i in range(600):
            flood += [f"ES{i + 2} DET t=1 label=yes score=0.9", f"ES1 ERR code=e{i} msg=boom",
                      f"ES1 DET t={i} label=x{i} score=0.5", "ES1 garbage"]  # fmt: skip
        board.write("\n".join(flood) + "\n")
        board.write(P.Det(t=9999, label="yes", score=0.9))
        wait_for(lambda: len(alerts) == 1, timeout=20, what="the real alert after the flood")
    finally:
        host.stop()
    mine = [r for r in caplog.records if r.name == "daemon.serial_host" and board.path in r.getMessage()]
    assert len(mine) <= 5
    assert link.stats.unknown_labels == 600 and link.stats.other_version == 600
    assert link.stats.suppressed_logs >= 4 * 600 - 5
    assert [(a.label, a.stream_t_ms) for a in alerts] == [("yes", 9999)]


def test_the_backoff_starts_again_after_a_connection_that_lived_long_enough() -> None:
    """Two quick failures double the wait; a session that ran healthy_s before it failed (an
    unplugged board that had worked) starts again from the shortest wait."""
    lived = iter([0.0, 0.0, 10.0, 0.0])  # how long each session ran (fake clock, s)
    now = [0.0]
    waits: list[float] = []
    halt = threading.Event()

    def session() -> None:
        now[0] += next(lived)
        raise OSError("gone")

    def on_error(e: Exception, delay: float) -> None:
        waits.append(delay)
        if len(waits) == 4:
            halt.set()

    keep_reopening(session, halt, (0.01, 1.0), on_error, healthy_s=5.0, clock=lambda: now[0])
    assert waits == [0.01, 0.02, 0.01, 0.02]


def test_a_board_flooding_new_hellos_gets_a_bounded_log(boards, caplog) -> None:
    """Every HELLO with a new model makes the host decide the board's detector again; that
    decision's log is within the port's budget too, and the last HELLO is the one believed."""
    from daemon.config import DetectorSettings
    from daemon.pico_ears import BoardDetectors

    caplog.set_level(logging.INFO)
    board = boards("E66058388B4A0E05")
    alerts: list = []
    handler = PicoAlerts(alerts.append, detector_for_board=BoardDetectors([], DetectorSettings()))
    host = start_host([board.path], handler)
    try:
        link = host.links[board.path]
        wait_for(lambda: link.stats.hello is not None, what="hello")
        caplog.clear()
        hellos = [P.Hello("0.2.0", "pico", "E66058388B4A0E05", f"{i:064x}", ("yes", "no"), 16000,
                          "detect") for i in range(300)]  # fmt: skip
        board.write("".join(P.format_message(h) for h in hellos))
        board.write(P.Det(t=77, label="no", score=0.9))
        wait_for(lambda: len(alerts) == 1, timeout=20, what="the alert after the hellos")
    finally:
        host.stop()
    for logger in ("daemon.pico_ears", "daemon.serial_host"):
        assert len([r for r in caplog.records if r.name == logger]) <= 5, logger
    assert alerts[0].model_sha256 == f"{299:064x}"
