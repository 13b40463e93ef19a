"""deploy/earshot-deploy: the dry-run plan of every verb, its errors, and a real install, a
failed start, a purge and a refused remove over its --host path into a Debian root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_deb import ARCH, SITE, VERSION_1, build_deb, debian_root

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "earshot-deploy"
PI = "pi@raspberrypi"


def deploy(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def fake_deb(tmp_path: Path) -> Path:
    """Dry runs only look at the file's name and existence."""
    deb = tmp_path / f"earshot_{VERSION_1}_{ARCH}.deb"
    deb.write_bytes(b"")
    return deb


@pytest.fixture
def no_ssh() -> dict[str, str]:
    """ssh and scp that fail: a dry run must not contact the host."""
    return {"EARSHOT_SSH": "false", "EARSHOT_SCP": "false"}


def test_dry_run_install_over_ssh_shows_copy_apt_setup_and_status(fake_deb: Path, no_ssh) -> None:
    p = deploy("--dry-run", "--host", PI, "--deb", str(fake_deb), "--pi-setup", "install", env=no_ssh)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    remote = f"/tmp/{fake_deb.name}"
    assert f"would run here: false {fake_deb} {PI}:{remote}" in out
    assert f"would run on {PI}: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends '{remote}'" in out
    assert "raspi-config nonint do_i2c 0" in out and "add dtparam=i2c_arm=on" in out
    assert "add dtparam=i2s=on" in out and "add dtoverlay=googlevoicehat-soundcard" in out
    assert "pcm.earshot_mic {" in out and "type softvol" in out
    assert 'slave.pcm "hw:CARD=sndrpigooglevoi,DEV=0"' in out
    assert "systemctl is-active earshot.service" in out
    assert "systemctl --no-pager status earshot.service" in out
    # the order a user reads: copy, install, set-up, check, status
    keys = ["would run here: false", "apt-get install", "do_i2c", "dtoverlay=", "softvol",
            "is-active", "status earshot.service"]
    assert [out.index(k) for k in keys] == sorted(out.index(k) for k in keys)


@pytest.mark.parametrize("verb,expect", [
    ("upgrade", "apt-get install -y --no-install-recommends"),
    ("remove", "apt-get remove -y earshot"),
    ("purge", "apt-get purge -y earshot"),
    ("status", "dpkg-query -W earshot; systemctl --no-pager status earshot.service"),
])
def test_dry_run_of_each_verb_on_this_machine(verb: str, expect: str, fake_deb: Path, no_ssh) -> None:
    args = ["--dry-run", verb] + (["--deb", str(fake_deb)] if verb == "upgrade" else [])
    p = deploy(*args, env=no_ssh)
    assert p.returncode == 0, p.stderr
    assert "dry run: nothing below is executed" in p.stdout
    assert "would run on this machine: " in p.stdout and expect in p.stdout


def test_dry_run_with_another_overlay_and_card(no_ssh) -> None:
    p = deploy("--dry-run", "--host", PI, "--i2s-overlay", "adau7002-simple", "--softvol",
               "--alsa-card", "adau7002", "status", env=no_ssh)
    assert p.returncode == 0, p.stderr
    assert "add dtoverlay=adau7002-simple" in p.stdout
    assert 'slave.pcm "hw:CARD=adau7002,DEV=0"' in p.stdout
    assert "do_i2c" not in p.stdout


@pytest.mark.parametrize("args,message", [
    (["--deb", "/nonexistent/earshot_9_all.deb", "install"],
     "package /nonexistent/earshot_9_all.deb: no such file"),
    (["--i2s-overlay", "x;reboot", "status"], "--i2s-overlay x;reboot is not an overlay name"),
    (["install", "purge"], "one verb at a time (got install and purge)"),
    (["--frobnicate"], "unknown argument: --frobnicate"),
])
def test_bad_arguments_are_named(args: list[str], message: str) -> None:
    p = deploy(*args)
    assert p.returncode != 0
    assert message in p.stderr


def test_no_verb_prints_usage() -> None:
    p = deploy()
    assert p.returncode == 2 and "usage: earshot-deploy" in p.stderr


def test_non_debian_host_is_refused(tmp_path: Path, fake_deb: Path) -> None:
    osr = tmp_path / "os-release"
    osr.write_text('NAME="Fedora Linux"\nID=fedora\n')
    p = deploy("--deb", str(fake_deb), "install", env={"EARSHOT_DEPLOY_OS_RELEASE": str(osr)})
    assert p.returncode == 1
    assert f"this machine is not Debian-like (ID=fedora in {osr})" in p.stderr
    assert "apt-get" not in p.stdout


def test_raspberry_pi_os_counts_as_debian_like(tmp_path: Path) -> None:
    osr = tmp_path / "os-release"
    osr.write_text('ID=raspbian\nID_LIKE=debian\n')
    p = deploy("status", env={"EARSHOT_DEPLOY_OS_RELEASE": str(osr)})
    assert p.returncode == 0, p.stderr
    assert "earshot" in p.stdout


def fake_remote(tmp: Path, root: Path) -> dict[str, str]:
    """ssh/scp stand-ins that reach the Debian root instead of a Pi: the script's remote
    quoting and its sudo-less root path run for real."""
    env = "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
    ssh, scp = tmp / "ssh", tmp / "scp"
    # unshare --net: the "Pi" has no network, as in the install tests
    ssh.write_text(f'#!/bin/sh\nshift\nexec {env} unshare --net chroot {root} /bin/sh -c "$*"\n')
    scp.write_text(f'#!/bin/sh\nexec cp "$1" "{root}${{2#*:}}"\n')
    for f in (ssh, scp):
        f.chmod(0o755)
    return {"EARSHOT_SSH": str(ssh), "EARSHOT_SCP": str(scp)}


@pytest.mark.slow
def test_deploy_over_host_installs_reports_failure_and_purges(tmp_path: Path) -> None:
    deb = build_deb(tmp_path / "dist", VERSION_1)
    with debian_root(tmp_path) as ch:
        env = fake_remote(tmp_path, ch.root)
        host = "root@chroot"

        p = deploy("--host", host, "--deb", str(deb), "install", env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"systemd is not running on {host}: the service is enabled" in p.stdout
        assert f"earshot {VERSION_1} is installed on {host}" in p.stdout
        assert ch.path(f"{SITE}/daemon/__main__.py").is_file()
        assert not ch.path(f"/tmp/{deb.name}").exists(), "the copied .deb is left behind"

        # a unit that fails to start: the error and the journal's tail reach the user
        ch.path("/run/systemd/system").mkdir(parents=True)
        for name, body in {
            "systemctl": 'case "$1" in is-active) echo failed; exit 3;; esac; exit 0',
            "journalctl": "echo 'earshotd[42]: error: /etc/earshot/earshot.toml: unknown key mic'",
        }.items():
            stub = ch.path(f"/usr/local/bin/{name}")
            stub.write_text(f"#!/bin/sh\n{body}\n")
            stub.chmod(0o755)
        p = deploy("--host", host, "--deb", str(deb), "--timeout", "3", "upgrade", env=env)
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"earshot.service did not start on {host} (NOT_ACTIVE failed)" in p.stderr
        assert "unknown key mic" in p.stderr
        for name in ("systemctl", "journalctl"):
            ch.path(f"/usr/local/bin/{name}").unlink()
        ch.path("/run/systemd/system").rmdir()

        p = deploy("--host", host, "purge", env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert not ch.path("/etc/earshot").exists() and not ch.path("/usr/bin/earshotd").exists()

        p = deploy("--host", host, "remove", env=env)
        assert p.returncode == 1
        assert f"earshot is not installed on {host}; nothing to remove" in p.stderr
