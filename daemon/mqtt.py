"""Alerts to an MQTT broker (paho-mqtt), with Home Assistant discovery and a last will.

Topics (``[mqtt] topic_prefix`` = ``earshot``, ``device`` = the host name by default):

* ``earshot/<device>/<source>/event``: one JSON object per detection (label, score, time, ISO
  time, source, device, model_sha256, board_id, clip, stream_t_ms). Labels containing
  ``alarm`` go with QoS 1, others QoS 0; never retained.
* ``earshot/<device>/availability``: ``online`` (retained) once connected; the broker's last
  will sets ``offline`` (retained) when the daemon dies, a clean stop sets it too.
* ``homeassistant/...``: retained discovery (``[mqtt] discovery``): the Pi is a device with a
  ``binary_sensor`` per alert label of its local model (``device_class`` smoke, carbon_monoxide
  or sound, ``off_delay``) and a ``sensor`` holding the last detected label; each Pico that says
  hello is its own device, connected ``via_device`` the Pi.

Detection never waits on the network: :meth:`MqttSink.alert` only hands the message to paho's
network thread (``loop_start``), or, while the broker is away, keeps it in a bounded queue
(``[mqtt] queue``; the oldest is dropped first, and every drop is counted and logged). The queue
is sent when the connection comes back; paho reconnects with exponential backoff (1 s to 60 s).
A refused login, an unreachable broker or a TLS failure is logged with its reason once per
change, and detection carries on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import MqttSettings
from .outputs import Alert

_LOGGER = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
NOT_ALERTS = ("background",)
"""Labels that never fire besides ``_*`` ones (a binary detector's negative class)."""


class MqttSetupError(RuntimeError):
    """The [mqtt] settings cannot be used (password file, CA file); the message names the key."""


def device_name(s: MqttSettings) -> str:
    """``[mqtt] device``, or the host name made into one topic level."""
    return s.device or re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]) or "earshot"


def read_password(path: str) -> str:
    """The first line of ``[mqtt] password_file`` (raises MqttSetupError naming the file)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise MqttSetupError(f"mqtt.password_file {path}: cannot read ({e.strerror})") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise MqttSetupError(f"mqtt.password_file {path}: empty (the first line is the password)")
    return lines[0]


def is_alarm(label: str) -> bool:
    return "alarm" in label.lower()


def device_class(label: str) -> str:
    """Home Assistant binary_sensor class: smoke, carbon_monoxide or sound."""
    low = label.lower()
    if "smoke" in low:
        return "smoke"
    if low.startswith("co_") or "carbon" in low or "_co_" in low:
        return "carbon_monoxide"
    return "sound"


def alert_labels(labels: tuple[str, ...] | list[str], ignore: frozenset[str] = frozenset()) -> list[str]:
    """The labels that can fire: not ``_*``, not a binary detector's ``background``, not ignored."""
    return [x for x in labels if not x.startswith("_") and x not in NOT_ALERTS and x not in ignore]


@dataclass(frozen=True)
class Topics:
    """Every topic one daemon publishes on."""

    prefix: str
    device: str
    discovery_prefix: str

    @property
    def availability(self) -> str:
        return f"{self.prefix}/{self.device}/availability"

    def event(self, source: str) -> str:
        return f"{self.prefix}/{self.device}/{source}/event"

    def config(self, component: str, node: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{node}/{object_id}/config"


def event_payload(a: Alert, device: str) -> dict[str, Any]:
    """The JSON event for one detection."""
    return {
        "label": a.label, "score": round(a.score, 4), "time": round(a.t, 3),
        "iso_time": datetime.fromtimestamp(a.t, timezone.utc).isoformat(timespec="milliseconds"),
        "source": a.source, "device": device, "model_sha256": a.model_sha256,
        "board_id": a.board_id, "clip": a.clip, "stream_t_ms": a.stream_t_ms,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def discovery(topics: Topics, source: str, labels: list[str], off_delay_s: int,
              model: str = "", board_id: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(topic, payload) of every discovery message for one source: the Pi itself (no
    ``board_id``) or a Pico (its own device, ``via_device`` the Pi)."""
    host_id = f"earshot_{_slug(topics.device)}"
    node = host_id if not board_id else f"{host_id}_{_slug(source)}"
    dev: dict[str, Any] = {"identifiers": [node], "manufacturer": "earshot",
                           "name": f"earshot {topics.device}" + (f" {source}" if board_id else ""),
                           "model": "Raspberry Pi Pico" if board_id else "earshotd"}
    if model:
        dev["sw_version"] = model
    if board_id:
        dev["via_device"] = host_id
        dev["serial_number"] = board_id
    common = {"device": dev, "availability_topic": topics.availability,
              "payload_available": ONLINE, "payload_not_available": OFFLINE,
              "state_topic": topics.event(source)}
    out = []
    for label in labels:
        uid = f"{node}_{_slug(source)}_{_slug(label)}"
        out.append((topics.config("binary_sensor", node, f"{_slug(source)}_{_slug(label)}"), {
            **common, "name": label.replace("_", " "), "unique_id": uid,
            "device_class": device_class(label), "off_delay": off_delay_s,
            "payload_on": "ON", "payload_off": "OFF",
            # Other labels' events render '' (ignored), so they never switch this sensor off.
            "value_template": "{{ 'ON' if value_json.label == '" + label + "' else '' }}",
        }))
    uid = f"{node}_{_slug(source)}_last_detection"
    out.append((topics.config("sensor", node, f"{_slug(source)}_last_detection"), {
        **common, "name": "last detection", "unique_id": uid,
        "icon": "mdi:ear-hearing", "value_template": "{{ value_json.label }}",
        "json_attributes_topic": topics.event(source),
    }))
    return out


@dataclass(frozen=True)
class Outgoing:
    """One message waiting for the broker."""

    topic: str
    payload: str
    qos: int
    retain: bool
    what: str
    """How the overflow log names it (e.g. 'smoke_alarm (0.97) from mic at 12:00:01')."""


def _make_client(client_id: str) -> Any:
    """A paho client that remembers why its last connection attempt failed."""
    import paho.mqtt.client as paho

    class Client(paho.Client):
        last_error: OSError | None = None

        def reconnect(self) -> Any:
            try:
                return super().reconnect()
            except OSError as e:
                self.last_error = e
                raise

    return Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                  protocol=paho.MQTTv311, clean_session=True)


class MqttSink:
    """An outputs sink (``daemon.outputs``) that publishes to ``[mqtt]``; see the module docstring."""

    def __init__(self, s: MqttSettings,
                 client_factory: Callable[[str], Any] = _make_client) -> None:
        self.s = s
        self.topics = Topics(s.topic_prefix.strip("/"), device_name(s), s.discovery_prefix.strip("/"))
        self.where = f"{s.host}:{s.port}"
        self.dropped = 0
        self.sent = 0
        self._queue: deque[Outgoing] = deque()
        self._pending: set[int] = set()
        self._announced: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._connected = False
        self._refused = False
        self._closing = False
        self._last_problem = ""
        self.client = self._configure(client_factory(f"earshotd-{self.topics.device}"))
        self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()
        _LOGGER.info("mqtt: publishing to %s as device %s (events on %s)",
                     self.where, self.topics.device, self.topics.event("<source>"))

    def _configure(self, c: Any) -> Any:
        s = self.s
        if s.username:
            c.username_pw_set(s.username, read_password(s.password_file) if s.password_file else None)
        elif s.password_file:
            raise MqttSetupError("mqtt.password_file is set but mqtt.username is empty")
        if s.tls:
            self._tls(c)
        c.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        c.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        c.on_connect, c.on_disconnect = self._on_connect, self._on_disconnect
        c.on_connect_fail, c.on_publish = self._on_connect_fail, self._on_publish
        return c

    def _tls(self, c: Any) -> None:
        ca = self.s.ca_file or None
        if ca and not Path(ca).is_file():
            raise MqttSetupError(f"mqtt.ca_file {ca}: no such file")
        try:
            c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
        except (ssl.SSLError, OSError, ValueError) as e:
            raise MqttSetupError(f"mqtt.ca_file {ca}: not a usable CA certificate ({e})") from None

    # -- paho's network thread --
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = True
            self._problem(f"broker {self.where} refused the connection: {reason} "
                          f"(check mqtt.username / mqtt.password_file); retrying with backoff")
            return
        self._refused = False
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        with self._lock:
            self._connected = True
            backlog = list(self._queue)
            self._queue.clear()
            announced = [m for msgs in self._announced.values() for m in msgs]
        for topic, payload in announced:
            self._send(Outgoing(topic, json.dumps(payload), 1, True, "discovery"))
        for m in backlog:
            self._send(m)
        self._last_problem = ""
        _LOGGER.info("mqtt: connected to %s%s", self.where,
                     f"; sent {len(backlog)} queued event(s)" if backlog else "")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._lock:
            was, self._connected = self._connected, False
        if was and not self._closing:
            self._problem(f"lost the connection to {self.where} ({reason}); "
                          "queueing events and reconnecting with backoff")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        err = getattr(client, "last_error", None)
        why = f"{type(err).__name__}: {err}" if err else "connection failed"
        if self.s.tls and not isinstance(err, ssl.SSLError):
            why += "; mqtt.tls is on: is this port a TLS listener?"
        self._problem(f"cannot reach broker {self.where} ({why}); queueing events and "
                      "retrying with backoff")

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
                self.sent += 1

    def _problem(self, text: str) -> None:
        """Log a connection problem once until it changes or the connection comes back."""
        if text != self._last_problem:
            self._last_problem = text
            _LOGGER.error("mqtt: %s", text)

    # -- any thread --
    def _send(self, m: Outgoing) -> None:
        info = self.client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
        if m.what != "discovery":
            with self._lock:
                self._pending.add(info.mid)

    def _enqueue(self, m: Outgoing) -> None:
        with self._lock:
            if not self._connected:
                if len(self._queue) >= self.s.queue:
                    lost = self._queue.popleft()
                    self.dropped += 1
                    _LOGGER.warning("mqtt: queue full (%d events, broker %s away): dropped %s "
                                    "(%d dropped in total)", self.s.queue, self.where, lost.what,
                                    self.dropped)  # fmt: skip
                self._queue.append(m)
                return
        self._send(m)

    def alert(self, a: Alert) -> None:
        when = time.strftime("%H:%M:%S", time.localtime(a.t))
        self._enqueue(Outgoing(self.topics.event(a.source), json.dumps(event_payload(a, self.topics.device)),
                               1 if is_alarm(a.label) else 0, False,
                               f"{a.label} ({a.score:.2f}) from {a.source} at {when}"))  # fmt: skip

    def announce(self, source: str, labels: list[str], ignore: frozenset[str] = frozenset(),
                 model: str = "", board_id: str = "") -> None:
        """Home Assistant discovery for a source (the local mic at start, a Pico at hello)."""
        if not self.s.discovery:
            return
        msgs = discovery(self.topics, source, alert_labels(labels, ignore), self.s.off_delay_s,
                         model, board_id)
        with self._lock:
            self._announced[source] = msgs
            connected = self._connected
        if connected:
            for topic, payload in msgs:
                self._send(Outgoing(topic, json.dumps(payload), 1, True, "discovery"))

    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None:
        pass

    def backlog(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._pending)

    def close(self) -> None:
        """Send what is queued (up to ``[mqtt] flush_s``), mark offline, disconnect."""
        deadline = time.monotonic() + self.s.flush_s
        while self.backlog() and time.monotonic() < deadline and not self._refused:
            time.sleep(0.05)
        left = self.backlog()
        if left:
            _LOGGER.error("mqtt: stopping with %d event(s) not delivered to %s", left, self.where)
        self._closing = True
        if self._connected:
            info = self.client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(1.0, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()


def open_mqtt(s: MqttSettings, client_factory: Callable[[str], Any] = _make_client) -> MqttSink | None:
    """The sink for ``[mqtt]``, or None when MQTT is off or its settings cannot be used (logged:
    detection carries on without it)."""
    if not s.host:
        return None
    try:
        return MqttSink(s, client_factory)
    except (MqttSetupError, ImportError) as e:
        _LOGGER.error("mqtt: not publishing: %s", e)
        return None


# -- the systemd drop-in: the unit's network closed except to the broker -------------------------

DROPIN_PATH = "/etc/systemd/system/earshot.service.d/mqtt.conf"
RESOLV_CONF = Path("/etc/resolv.conf")


def _addresses(host: str) -> list[str]:
    """The IP addresses ``host`` resolves to (a literal address is itself)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise MqttSetupError(f"mqtt.host {host!r}: cannot resolve ({e.strerror})") from None
    return sorted({str(i[4][0]) for i in infos})


def _is_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False


def _nameservers(resolv: Path) -> list[str]:
    try:
        lines = resolv.read_text().splitlines()
    except OSError:
        return []
    return [ln.split()[1] for ln in lines if ln.startswith("nameserver ") and len(ln.split()) > 1]


def dropin(s: MqttSettings, resolv: Path = RESOLV_CONF) -> str:
    """The unit drop-in for ``[mqtt]``: IP networking allowed to the broker's addresses only
    (and to the name servers when the host is a name). Empty when MQTT is off."""
    if not s.host:
        return ""
    allow = _addresses(s.host)
    dns = [] if _is_literal(s.host) else _nameservers(resolv)
    why = f"the broker {s.host}:{s.port}" + (f" and the name servers of {resolv}" if dns else "")
    return (
        f"# Written by earshot-deploy --mqtt from [mqtt] host: the unit may reach {why},\n"
        "# nothing else (the unit's IPAddressDeny=any stays). Re-run it when the broker moves.\n"
        "[Service]\nPrivateNetwork=no\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
        f"IPAddressAllow={' '.join(allow + [a for a in dns if a not in allow])}\n"
    )


def add_parser(sub: Any) -> None:
    import argparse

    from . import config

    p = sub.add_parser(
        "mqtt-dropin", help="print the systemd drop-in that opens the network to the [mqtt] broker",
        description="Print the earshot.service drop-in for [mqtt] host: IPAddressAllow= with the "
        "broker's addresses (and the name servers when host is a name); everything else stays "
        f"denied. earshot-deploy --mqtt writes it to {DROPIN_PATH}. Prints nothing when "
        "[mqtt] host is empty.",
        epilog="example:\n  earshotd mqtt-dropin --config /etc/earshot/earshot.toml\n"
        "  earshotd mqtt-dropin --mqtt-host 192.168.1.10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_arguments(p, sections=("mqtt",))
    p.set_defaults(func=_run_dropin)


def _run_dropin(args: Any) -> int:
    import sys

    from . import config

    try:
        print(dropin(config.from_args(args).mqtt), end="")
    except (config.ConfigError, MqttSetupError) as e:
        print(f"earshotd mqtt-dropin: error: {e}", file=sys.stderr)
        return 2
    return 0
