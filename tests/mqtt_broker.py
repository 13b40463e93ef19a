"""A real mosquitto for tests and the bench, and a subscriber that listens as Home Assistant does.

:class:`Broker` starts ``mosquitto`` (Debian package, scripts/install-system-deps) on a free
localhost port with a generated config and a password file made by ``mosquitto_passwd``;
persistence is on, so a persistent subscriber's session survives a broker restart.
:class:`Subscriber` is a paho client with a persistent session subscribed to ``#`` at QoS 1
that records every message.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USERS = {"earshot": "daemon-secret", "ha": "ha-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if path is None:
        raise AssertionError(f"{tool} is not installed (Debian package mosquitto): run "
                             "scripts/install-system-deps (make test does)")
    return path


class Broker:
    """One mosquitto on 127.0.0.1:<port> with users :data:`USERS`; start/stop/restart."""

    def __init__(self, folder: Path, tls: bool = False) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.ca = folder / "ca.pem"
        self.passwd = folder / "passwd"
        for i, (user, pw) in enumerate(USERS.items()):
            subprocess.run([_require("mosquitto_passwd"), "-b", *(["-c"] if i == 0 else []),
                            str(self.passwd), user, pw], check=True, timeout=30)
        self.conf = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self.conf.write_text(
            f"per_listener_settings false\nlistener {self.port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {self.passwd}\npersistence true\n"
            f"persistence_location {folder}/\nqueue_qos0_messages true\n"
            f"log_dest file {self.log}\nlog_type all\nuser root\n"
        )
        if tls:
            self._tls_listener()
        self.proc: subprocess.Popen | None = None

    def _tls_listener(self) -> None:
        """A second listener with TLS: a self-signed CA (``ca.pem``) for CN localhost."""
        key, cert = self.folder / "key.pem", self.folder / "cert.pem"
        subprocess.run([_require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        self.ca.write_bytes(cert.read_bytes())
        with open(self.conf, "a") as f:
            f.write(f"listener {self.tls_port} 127.0.0.1\ncafile {self.ca}\n"
                    f"certfile {cert}\nkeyfile {key}\n")

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen([_require("mosquitto"), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: str
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A persistent-session paho client on ``#`` (QoS 1), as Home Assistant subscribes."""

    def __init__(self, broker: Broker, client_id: str = "home-assistant", user: str = "ha",
                 password: str = USERS["ha"], topic: str = "#") -> None:
        import paho.mqtt.client as paho

        self.messages: list[Msg] = []
        self.connects = 0
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topic, qos=1), self._connected())
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()
        self.wait(lambda: self.connects > 0, 10, "subscriber connected")

    def _connected(self) -> None:
        with self._cond:
            self.connects += 1
            self._cond.notify_all()

    def _on_message(self, client: Any, userdata: Any, m: Any) -> None:
        with self._cond:
            self.messages.append(Msg(m.topic, m.payload.decode(), m.qos, bool(m.retain)))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Msg]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, pred: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; got "
                                         f"{[(m.topic, m.payload[:80]) for m in self.messages]}")
                self._cond.wait(min(left, 0.1))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
