"""The MQTT network drop-in: `earshotd mqtt-dropin` opens the unit's network to the broker only,
`systemd-analyze` still passes the unit with it (exposure <= 2.0), earshot-deploy writes it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_systemd_unit import directives

from daemon.config import MqttSettings
from daemon.mqtt import dropin

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "earshot.service"
EXPOSURE_GOAL = 2.0
"""`systemd-analyze security` exposure of the unit with the MQTT drop-in (issue 11)."""
BROKER = "192.0.2.10"
"""A documentation address (RFC 5737): written into the drop-in, never contacted."""


def merged_unit(tmp: Path, extra: str) -> Path:
    """The unit with the drop-in's [Service] lines added, as systemd merges a drop-in, and
    ExecStart= pointing at a stand-in binary (verify needs one)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed (Debian package systemd)")
    exe = tmp / "earshotd"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    body = extra.split("[Service]\n", 1)[1]
    text = UNIT.read_text().replace("ExecStart=/usr/bin/earshotd", f"ExecStart={exe}")
    unit = tmp / "earshot.service"
    unit.write_text(text.replace("\n[Install]", "\n" + body + "\n[Install]"))
    return unit


def test_the_drop_in_allows_the_broker_only_and_the_unit_stays_hardened(tmp_path: Path):
    text = dropin(MqttSettings(host=BROKER))
    unit = merged_unit(tmp_path, text)
    d = directives(unit.read_text())
    assert d["IPAddressDeny"] == ["any"] and d["IPAddressAllow"] == [BROKER]
    assert d["PrivateNetwork"] == ["yes", "no"]  # the drop-in's later assignment wins
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "earshot" not in proc.stdout + proc.stderr, proc.stderr
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for earshot\.service: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    print(f"systemd-analyze security with the MQTT drop-in: {m.group(1)} (goal <= {EXPOSURE_GOAL})")
    assert float(m.group(1)) <= EXPOSURE_GOAL, proc.stdout
    assert "Service defines IP address allow list with non-localhost entries" in proc.stdout


def test_a_host_name_also_allows_the_name_servers(tmp_path: Path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# test\nnameserver 192.0.2.53\nsearch lan\n")
    text = dropin(MqttSettings(host="localhost"), resolv)
    allow = re.search(r"^IPAddressAllow=(.*)$", text, re.M).group(1).split()
    assert "192.0.2.53" in allow and ("127.0.0.1" in allow or "::1" in allow)
    assert dropin(MqttSettings(host=""), resolv) == ""


def earshotd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_mqtt_dropin_command_names_a_host_it_cannot_resolve(tmp_path: Path):
    cfg = tmp_path / "e.toml"
    cfg.write_text('[mqtt]\nhost = "no-such-broker.invalid"\n')
    p = earshotd("mqtt-dropin", "--config", str(cfg))
    assert p.returncode == 2
    assert "mqtt.host 'no-such-broker.invalid': cannot resolve" in p.stderr
    p = earshotd("mqtt-dropin", "--config", str(cfg), "--mqtt-host", BROKER)
    assert p.returncode == 0 and f"IPAddressAllow={BROKER}\n" in p.stdout


def test_earshot_deploy_mqtt_writes_and_removes_the_drop_in(tmp_path: Path):
    wrapper = tmp_path / "earshotd"
    wrapper.write_text(f"#!/bin/sh\ncd {REPO} && exec {sys.executable} -m daemon \"$@\"\n")
    wrapper.chmod(0o755)
    cfg = tmp_path / "earshot.toml"
    cfg.write_text(f'[mqtt]\nhost = "{BROKER}"\n')
    env = {**os.environ, "EARSHOT_DEPLOY_DROPIN_DIR": str(tmp_path / "d"),
           "EARSHOT_DEPLOY_EARSHOTD": str(wrapper), "EARSHOT_DEPLOY_CONFIG": str(cfg)}
    deploy = [str(REPO / "deploy" / "earshot-deploy"), "mqtt"]
    p = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"IPAddressAllow={BROKER}" in p.stdout
    assert (tmp_path / "d" / "mqtt.conf").read_text() == dropin(MqttSettings(host=BROKER))
    cfg.write_text("[mqtt]\nhost = \"\"\n")
    p = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "no network drop-in" in p.stdout
    assert not (tmp_path / "d" / "mqtt.conf").exists()
    cfg.write_text("[mqtt]\nhost = \"x\"\ntopic_prefix = \"a/#\"\n")
    p = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "mqtt.topic_prefix (--mqtt-topic-prefix)" in p.stderr
    deb = tmp_path / "earshot_0.1.0_all.deb"
    deb.write_bytes(b"")
    p = subprocess.run([str(REPO / "deploy" / "earshot-deploy"), "--dry-run", "--mqtt", "--deb",
                        str(deb), "install"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.index("apt-get install") < out.index("mqtt-dropin --config") < out.index("is-active")
