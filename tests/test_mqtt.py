"""`earshotd run` with [mqtt] against a REAL mosquitto, subscribed to as Home Assistant would:
discovery, events, retained availability, the last will, a broker restart, bad credentials,
bad TLS, three daemons on one broker."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from daemon.config import MqttSettings
from daemon.mqtt import MqttSink, Topics, device_class, discovery
from earshot.bundle import load_bundle, sha256_file, write_manifest
from tests.mqtt_broker import USERS, Broker, Subscriber
from tests.test_daemon_helpers import (
    base_args,
    earshotd,
    empty_config,
    spawn,
    tone_bundle,
    tone_stream,
    write_stream,
)

ALARM_LABELS = ["_background_", "smoke_alarm", "kettle"]
"""The tone model with its two tones named as an alarm and an ordinary sound."""
RENAME = {"low_tone": "smoke_alarm", "high_tone": "kettle"}


def alarm_bundle(folder: Path) -> Path:
    """The hand-weighted tone bundle (1 kHz, 3 kHz) relabelled smoke_alarm / kettle."""
    tone_bundle(folder, name="alarm-tones")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(labels=ALARM_LABELS, thresholds={"smoke_alarm": 0.7, "kettle": 0.7},
                    model_sha256=sha256_file(folder / "model.tflite"))
    write_manifest(folder, manifest)
    return folder


@pytest.fixture()
def broker(tmp_path: Path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture()
def ha(broker: Broker):
    s = Subscriber(broker)
    yield s
    s.close()


def mqtt_args(broker: Broker, tmp: Path, device: str = "pi1", password: str = USERS["earshot"]) -> list[str]:
    pw = tmp / f"pw-{device}"
    pw.write_text(password + "\n")
    return ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port), "--mqtt-username",
            "earshot", "--mqtt-password-file", str(pw), "--mqtt-device", device,
            "--clips-dir", str(tmp / f"clips-{device}"), "--no-oled-enabled"]


class Tail:
    """A running daemon's stderr, collected by a thread so a test can wait for a line."""

    def __init__(self, p: subprocess.Popen) -> None:
        self.p, self.lines = p, []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.p.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in x for x in self.lines):
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise AssertionError(f"no {text!r} on stderr within {timeout} s: {''.join(self.lines)}")
            time.sleep(0.05)

    @property
    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def stream(tmp: Path, events: list[tuple[float, str]], seconds: float, name: str = "s.wav") -> Path:
    return write_stream(tmp / name, tone_stream(events, seconds))


def events(ha: Subscriber, device: str = "pi1") -> list[dict]:
    return [m.json() for m in ha.on(f"earshot/{device}/mic/event")]


def test_events_discovery_and_retained_availability_reach_home_assistant(tmp_path, broker, ha):
    empty_config()
    bundle = alarm_bundle(tmp_path / "bundle")
    wav = stream(tmp_path, [(1.0, "low_tone"), (3.0, "high_tone"), (5.0, "low_tone")], 7.0)
    proc = earshotd(*base_args(bundle, wav, "--output-json", "-", *mqtt_args(broker, tmp_path)))
    ha.wait(lambda: len(events(ha)) == 3, 15, "3 events")
    got = events(ha)
    assert [e["label"] for e in got] == ["smoke_alarm", "kettle", "smoke_alarm"]
    qos = [m.qos for m in ha.on("earshot/pi1/mic/event")]
    assert qos == [1, 0, 1]  # alarms go with QoS 1
    sha = load_bundle(bundle).sha256
    for e in got:
        assert e["model_sha256"] == sha and e["source"] == "mic" and e["device"] == "pi1"
        assert e["board_id"] == "" and e["score"] > 0.7 and abs(e["time"] - time.time()) < 120
        assert Path(e["clip"]).is_file(), e  # the clip the event names was kept
    local = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["clip"] for x in local] == [e["clip"] for e in got]
    assert "clip " + got[0]["clip"] in proc.stderr  # the log line names the clip too

    # A Home Assistant that connects later sees the retained state: discovery and "offline".
    late = Subscriber(broker, client_id="late-ha")
    try:
        late.wait(lambda: late.on("earshot/pi1/availability")
                  and len([m for m in late.messages if m.topic.startswith("homeassistant/")]) == 3,
                  10, "retained discovery and availability")
        assert [m.payload for m in late.on("earshot/pi1/availability")] == ["offline"]
        configs = {m.topic: m.json() for m in late.messages if m.topic.startswith("homeassistant/")}
    finally:
        late.close()
    smoke = configs["homeassistant/binary_sensor/earshot_pi1/mic_smoke_alarm/config"]
    kettle = configs["homeassistant/binary_sensor/earshot_pi1/mic_kettle/config"]
    last = configs["homeassistant/sensor/earshot_pi1/mic_last_detection/config"]
    assert smoke["device_class"] == "smoke" and kettle["device_class"] == "sound"
    assert smoke["off_delay"] == 30 and smoke["state_topic"] == "earshot/pi1/mic/event"
    assert smoke["availability_topic"] == "earshot/pi1/availability"
    assert smoke["device"]["identifiers"] == ["earshot_pi1"] == last["device"]["identifiers"]
    assert smoke["unique_id"] != kettle["unique_id"]
    assert last["value_template"] == "{{ value_json.label }}"
    assert [m.payload for m in ha.on("earshot/pi1/availability")] == ["online", "offline"]


def test_last_will_marks_a_killed_daemon_offline(tmp_path, broker, ha):
    empty_config()
    wav = stream(tmp_path, [(1.0, "low_tone")], 60.0)
    p = spawn(*base_args(tone_bundle(), wav, "--source-realtime", *mqtt_args(broker, tmp_path)),
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ha.wait(lambda: [m.payload for m in ha.on("earshot/pi1/availability")] == ["online"],
                30, "online")
        ha.wait(lambda: len(events(ha)) == 1, 15, "the first event")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        ha.wait(lambda: [m.payload for m in ha.on("earshot/pi1/availability")] == ["online", "offline"],
                20, "the last will")
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)
    late = Subscriber(broker, client_id="late-ha")
    try:
        late.wait(lambda: late.on("earshot/pi1/availability"), 10, "retained availability")
        assert [m.payload for m in late.on("earshot/pi1/availability")] == ["offline"]
        assert late.on("earshot/pi1/availability")[0].retain
    finally:
        late.close()


ONSETS = [(1.0, "low_tone"), (3.0, "high_tone"), (5.0, "low_tone"), (7.0, "high_tone"),
          (9.0, "low_tone"), (11.0, "high_tone")]


def test_broker_restart_mid_run_loses_no_event(tmp_path, broker, ha):
    empty_config()
    wav = stream(tmp_path, ONSETS, 13.0)
    p = spawn(*base_args(tone_bundle(), wav, "--source-realtime", "--output-json", "-",
                         *mqtt_args(broker, tmp_path)),
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ha.wait(lambda: len(events(ha)) >= 1, 30, "the first event")
        broker.stop()  # at about 1.5 s: the events at 3 and 5 s happen while it is away
        time.sleep(4.0)
        broker.start()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    local = [json.loads(x)["stream_t_ms"] for x in out.splitlines()]
    assert len(local) == len(ONSETS)
    ha.wait(lambda: len(events(ha)) >= len(ONSETS), 20, "every event after the restart")
    assert sorted(e["stream_t_ms"] for e in events(ha)) == local
    assert "lost the connection to 127.0.0.1" in err
    assert "queued event(s)" in err


def test_broker_down_at_start_then_up_gets_every_event(tmp_path, broker, ha):
    empty_config()
    broker.stop()
    wav = stream(tmp_path, ONSETS[:3], 7.0)
    p = spawn(*base_args(tone_bundle(), wav, "--source-realtime", "--output-json", "-",
                         *mqtt_args(broker, tmp_path)),
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tail = Tail(p)
    try:
        tail.wait_for(f"cannot reach broker 127.0.0.1:{broker.port} (ConnectionRefusedError", 30)
        broker.start()
        out = p.stdout.read()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and len(out.splitlines()) == 3, tail.text
    assert "lost the connection" not in tail.text  # a clean stop is no lost connection
    ha.wait(lambda: len(events(ha)) == 3, 20, "3 events")


def test_wrong_password_is_refused_clearly_and_detection_carries_on(tmp_path, broker, ha):
    empty_config()
    wav = stream(tmp_path, ONSETS[:3], 7.0)
    t0 = time.monotonic()
    proc = earshotd(*base_args(tone_bundle(), wav, "--output-json", "-",
                               *mqtt_args(broker, tmp_path, password="wrong")))
    assert len(proc.stdout.splitlines()) == 3  # every detection still reported locally
    assert (f"mqtt: broker 127.0.0.1:{broker.port} refused the connection: Not authorized "
            "(check mqtt.username / mqtt.password_file)") in proc.stderr
    assert "3 event(s) not delivered" in proc.stderr
    assert time.monotonic() - t0 < 60
    assert events(ha) == []


def test_missing_password_file_and_bad_ca_file_are_named(tmp_path, broker):
    empty_config()
    wav = stream(tmp_path, ONSETS[:1], 2.0)
    args = mqtt_args(broker, tmp_path)
    args[args.index("--mqtt-password-file") + 1] = str(tmp_path / "nope")
    proc = earshotd(*base_args(tone_bundle(), wav, "--output-json", "-", *args))
    assert f"mqtt: not publishing: mqtt.password_file {tmp_path / 'nope'}: cannot read" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    proc = earshotd(*base_args(tone_bundle(), wav, "--output-json", "-", *mqtt_args(broker, tmp_path),
                               "--mqtt-tls", "--mqtt-ca-file", str(tmp_path / "ca.pem")))
    assert f"mqtt.ca_file {tmp_path / 'ca.pem'}: no such file" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1


def test_tls_with_the_right_ca_delivers_and_a_wrong_ca_is_refused_clearly(tmp_path):
    empty_config()
    broker = Broker(tmp_path / "tls-broker", tls=True)
    broker.start()
    ha = Subscriber(broker)
    try:
        wav = stream(tmp_path, ONSETS[:1], 2.0)
        args = mqtt_args(broker, tmp_path)
        args[args.index("--mqtt-port") + 1] = str(broker.tls_port)
        earshotd(*base_args(tone_bundle(), wav, *args, "--mqtt-tls", "--mqtt-ca-file", str(broker.ca)))
        ha.wait(lambda: len(events(ha)) == 1, 15, "the event over TLS")
        # The system's CAs do not know the broker's self-signed certificate.
        proc = earshotd(*base_args(tone_bundle(), wav, "--output-json", "-", *args, "--mqtt-tls",
                                   "--mqtt-flush-s", "1", "--mqtt-device", "pi2"))
        assert f"cannot reach broker 127.0.0.1:{broker.tls_port} (SSLCertVerificationError" in proc.stderr
        assert "certificate verify failed" in proc.stderr
        assert len(proc.stdout.splitlines()) == 1  # detection carried on
        # TLS against the plain port: a hint about the listener.
        args[args.index("--mqtt-port") + 1] = str(broker.port)
        proc = earshotd(*base_args(tone_bundle(), wav, *args, "--mqtt-tls", "--mqtt-flush-s", "1",
                                   "--mqtt-ca-file", str(broker.ca)))
        assert "mqtt.tls is on: is this port a TLS listener?" in proc.stderr
    finally:
        ha.close()
        broker.stop()


@pytest.mark.parametrize("key,value", [("topic-prefix", "home/#"), ("discovery-prefix", "ha/+"),
                                       ("device", "a/b")])
def test_wildcards_in_topics_are_a_config_error_naming_the_key(tmp_path, key, value):
    empty_config()
    wav = stream(tmp_path, ONSETS[:1], 2.0)
    proc = earshotd(*base_args(tone_bundle(), wav, "--mqtt-host", "127.0.0.1", f"--mqtt-{key}", value),
                    check=False)
    assert proc.returncode == 2
    assert f"mqtt.{key.replace('-', '_')} (--mqtt-{key}) must be an MQTT topic part" in proc.stderr


def test_three_daemons_share_one_broker(tmp_path, broker, ha):
    empty_config()
    wav = stream(tmp_path, ONSETS[:3], 7.0)
    procs = [spawn(*base_args(tone_bundle(), wav, *mqtt_args(broker, tmp_path, device=f"pi{i}")),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for i in range(3):
        ha.wait(lambda i=i: len(events(ha, f"pi{i}")) == 3, 15, f"pi{i}'s events")
        assert [m.payload for m in ha.on(f"earshot/pi{i}/availability")] == ["online", "offline"]
        assert [e["label"] for e in events(ha, f"pi{i}")] == ["low_tone", "high_tone", "low_tone"]


def test_a_pico_is_its_own_device_via_the_pi(tmp_path, broker, ha):
    """What PicoEars announces at a board's hello, through the sink to the broker."""
    pw = tmp_path / "pw"
    pw.write_text(USERS["earshot"])
    sink = MqttSink(MqttSettings(host="127.0.0.1", port=broker.port, username="earshot",
                                 password_file=str(pw), device="pi9"))
    try:
        sink.announce("pico-E66058388B4A0001", ["background", "co_alarm"], frozenset(), "abc",
                      "E66058388B4A0001")
        ha.wait(lambda: any("pico" in m.topic and "co_alarm" in m.topic for m in ha.messages), 10,
                "the Pico's discovery")
    finally:
        sink.close()
    cfg = next(m.json() for m in ha.messages if m.topic.endswith("co_alarm/config"))
    assert cfg["device"]["via_device"] == "earshot_pi9"
    assert cfg["device"]["identifiers"] == ["earshot_pi9_pico-E66058388B4A0001"]
    assert cfg["device_class"] == "carbon_monoxide"
    assert cfg["state_topic"] == "earshot/pi9/pico-E66058388B4A0001/event"
    assert not any(m.topic.endswith("_background/config") for m in ha.messages)


def test_device_classes_and_the_template_that_ignores_other_labels():
    assert [device_class(x) for x in ("smoke_alarm", "co_alarm", "doorbell")] == \
        ["smoke", "carbon_monoxide", "sound"]
    msgs = discovery(Topics("earshot", "pi1", "homeassistant"), "mic", ["doorbell"], 12)
    binary = msgs[0][1]
    assert binary["off_delay"] == 12
    assert binary["value_template"] == "{{ 'ON' if value_json.label == 'doorbell' else '' }}"


def test_a_full_queue_drops_the_oldest_and_says_so(tmp_path, caplog):
    from daemon.outputs import Alert

    port = __import__("tests.mqtt_broker", fromlist=["free_port"]).free_port()  # nobody there
    sink = MqttSink(MqttSettings(host="127.0.0.1", port=port, device="pi1", queue=2, flush_s=0.0))
    try:
        for i in range(3):
            sink.alert(Alert(f"label{i}", 0.9, "mic", time.time()))
        assert sink.dropped == 1 and sink.backlog() == 2
    finally:
        sink.close()
    assert "queue full (2 events, broker 127.0.0.1" in caplog.text and "dropped label0 (0.90)" in caplog.text
