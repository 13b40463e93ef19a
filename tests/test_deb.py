"""The .deb: what dpkg-deb and lintian see, and a real install, upgrade, remove and purge with
apt in a throwaway Debian root (debootstrap, cached under build/).

The chroot has no running systemd, as in an image build: the maintainer scripts must still
create the user, the venv and the enablement symlink, and must not try to start anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from earshot.bundle import sha256_file, write_manifest
from earshot.wavio import write_wav

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "build" / "deploy-test"
VERSION_1 = "0.1.0"
VERSION_2 = "0.1.0+test2"
LABELS = ["low", "high"]
MODEL_NAME = "tiny"
CMD_TIMEOUT_S = 600
"""Upper bound on any one command (debootstrap, pip in the chroot)."""
# lintian findings we accept, each with its reason (docs/deploy.md lists them too).
LINTIAN_ACCEPTED = {
    "no-manual-page",  # earshotd --help is the reference; no man page yet
    "package-contains-documentation-outside-usr-share-doc",  # requirements.txt is data for pip
    "package-contains-empty-directory",  # usr/share/earshot/models/ when built with no --model
    "package-supports-alternative-init-but-no-init.d-script",  # systemd only, by design
}


def run(cmd: list[str], timeout: float = CMD_TIMEOUT_S, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command; a failure raises with its output, so the reason is in the test report."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(map(str, cmd))}` exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        )
    return proc


def tiny_tflite(path: Path) -> None:
    """A fixed (untrained) float model over stft features: energy in low vs high bins."""
    import tensorflow as tf

    inp = tf.keras.Input((124, 129, 1), batch_size=1)
    x = tf.keras.layers.AveragePooling2D((124, 1))(inp)
    x = tf.keras.layers.Reshape((129,))(x)
    dense = tf.keras.layers.Dense(2, activation="softmax")
    model = tf.keras.Model(inp, dense(x))
    w = np.zeros((129, 2), np.float32)
    w[:40, 0] = 400.0  # bins below 2.5 kHz -> "low"
    w[40:, 1] = 400.0
    dense.set_weights([w, np.zeros(2, np.float32)])
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def make_bundle(folder: Path) -> Path:
    """A tiny Pi bundle (stft front end, float32) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_tflite(folder / "model.tflite")
    write_manifest(folder, {
        "format_version": 1, "name": MODEL_NAME, "target": "pi", "model_file": "model.tflite",
        "model_sha256": sha256_file(folder / "model.tflite"), "labels": LABELS,
        "sample_rate": 16000, "clip_samples": 16000,
        "frontend": {"name": "stft", "params": {}},
        "input": {"shape": [1, 124, 129, 1], "dtype": "float32"},
        "output": {"shape": [1, 2], "dtype": "float32", "activation": "softmax"},
        "thresholds": {"low": 0.5, "high": 0.5},
    })
    return folder


def tone(path: Path, hz: float) -> Path:
    t = np.arange(16000, dtype=np.float32) / 16000
    write_wav(path, (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
    return path


def build_deb(out: Path, version: str, *models: Path) -> Path:
    args = [str(REPO / "deploy" / "build-deb"), "--out", str(out), "--version", version]
    for m in models:
        args += ["--model", str(m)]
    run(args)
    deb = out / f"earshot_{version}_all.deb"
    assert deb.is_file(), f"build-deb did not write {deb}"
    return deb


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / MODEL_NAME)


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> dict[str, Path]:
    """Two versions of the package, both carrying the tiny bundle."""
    out = tmp_path_factory.mktemp("dist")
    return {v: build_deb(out, v, tiny_bundle) for v in (VERSION_1, VERSION_2)}


def deb_field(deb: Path, field: str) -> str:
    return run(["dpkg-deb", "--field", str(deb), field]).stdout.strip()


# --- what the package holds ------------------------------------------------------------------

def test_control_fields_name_the_debian_dependencies(debs: dict[str, Path]) -> None:
    deb = debs[VERSION_1]
    assert deb_field(deb, "Package") == "earshot"
    assert deb_field(deb, "Version") == VERSION_1
    assert deb_field(deb, "Architecture") == "all"
    depends = {d.split()[0] for d in deb_field(deb, "Depends").split(", ")}
    assert {"python3", "python3-venv", "python3-pyaudio", "python3-systemd", "libportaudio2",
            "adduser", "init-system-helpers"} <= depends
    info = run(["dpkg-deb", "--info", str(deb)]).stdout
    for script in ("postinst", "prerm", "postrm", "conffiles", "md5sums"):
        assert re.search(rf"\b{script}\b", info), f"control archive lacks {script}:\n{info}"


def test_contents_put_every_file_where_the_design_says(debs: dict[str, Path]) -> None:
    listing = run(["dpkg-deb", "--contents", str(debs[VERSION_1])]).stdout
    entries = {}
    for line in listing.splitlines():
        perms, owner, *_, path = line.split()
        entries[path.removeprefix(".")] = (perms, owner)
    for path in ("/usr/bin/earshotd", "/lib/systemd/system/earshot.service",
                 "/etc/earshot/earshot.toml", "/usr/share/earshot/requirements.txt",
                 f"/usr/share/earshot/models/{MODEL_NAME}/manifest.json",
                 f"/usr/share/earshot/models/{MODEL_NAME}/model.tflite",
                 "/usr/share/doc/earshot/copyright", "/usr/share/doc/earshot/changelog.gz"):
        assert path in entries, f"{path} missing from the .deb:\n{listing}"
    assert any(p.startswith("/usr/share/earshot/wheels/earshot-") and p.endswith("-py3-none-any.whl")
               for p in entries), listing
    assert entries["/usr/bin/earshotd"][0] == "-rwxr-xr-x"
    assert all(owner == "root/root" for _, owner in entries.values()), "files must be owned by root"
    assert not any(p.startswith("/opt") for p in entries), "/opt is made by postinst, not shipped"


def test_config_is_a_conffile_and_unit_is_the_repo_one(debs: dict[str, Path], tmp_path: Path) -> None:
    run(["dpkg-deb", "--control", str(debs[VERSION_1]), str(tmp_path / "ctl")])
    assert (tmp_path / "ctl" / "conffiles").read_text().split() == ["/etc/earshot/earshot.toml"]
    run(["dpkg-deb", "--extract", str(debs[VERSION_1]), str(tmp_path / "x")])
    shipped = (tmp_path / "x/lib/systemd/system/earshot.service").read_text()
    assert shipped == (REPO / "systemd" / "earshot.service").read_text()
    reqs = (tmp_path / "x/usr/share/earshot/requirements.txt").read_text()
    assert "numpy==" in reqs and "ai-edge-litert==" in reqs
    assert "pyaudio" not in reqs.lower(), "PyAudio comes from Debian's python3-pyaudio"
    import tomllib

    tomllib.loads((tmp_path / "x/etc/earshot/earshot.toml").read_text())  # valid TOML


def test_lintian_finds_no_errors(debs: dict[str, Path]) -> None:
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed; run scripts/install-system-deps")
    proc = run(["lintian", "--info", "--no-tag-display-limit", str(debs[VERSION_1])], check=False,
               timeout=300)
    tags = re.findall(r"^([EWIXP]): earshot: (\S+)", proc.stdout, re.M)
    errors = [t for sev, t in tags if sev == "E"]
    assert not errors, f"lintian errors:\n{proc.stdout}"
    unexpected = sorted({t for sev, t in tags if sev in "WI"} - LINTIAN_ACCEPTED)
    assert not unexpected, f"new lintian findings (fix them or list them with a reason):\n{proc.stdout}"


def test_bad_model_folder_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "manifest.json").write_text("{}")
    proc = run([str(REPO / "deploy" / "build-deb"), "--out", str(tmp_path), "--model", str(bad)],
               check=False)
    assert proc.returncode != 0
    assert f"--model {bad} is not a valid bundle" in proc.stderr
    assert "lacks key(s)" in proc.stderr
    assert not list(tmp_path.glob("*.deb"))


# --- a throwaway Debian root -----------------------------------------------------------------

def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (sources.list or deb822 .sources)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            texts.append(p.read_text())
    for url in re.findall(r"(https?://\S+/debian)/?(?:\s|$)", "\n".join(texts)):
        return url
    return "http://deb.debian.org/debian"


def codename() -> str:
    m = re.search(r"^VERSION_CODENAME=(\S+)", Path("/etc/os-release").read_text(), re.M)
    return m.group(1) if m else "bookworm"


def package_depends() -> list[str]:
    text = (REPO / "deploy" / "debian" / "control.in").read_text()
    line = re.search(r"^Depends: (.*)$", text, re.M).group(1)
    return sorted(re.sub(r"\s*\(.*\)", "", d).strip() for d in line.split(","))


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base_root_tarball() -> Path:
    """``debootstrap --variant=minbase`` with the package's Depends, made once and cached."""
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed; run scripts/install-system-deps")
    include = ",".join(package_depends())
    key = hashlib.sha256(f"{codename()} {include}".encode()).hexdigest()[:12]
    tarball = CACHE / f"{codename()}-minbase-{key}.tar"
    with locked("debootstrap"):
        if tarball.is_file():
            return tarball
        tmp = CACHE / f"root.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            run(["debootstrap", "--variant=minbase", f"--include={include}", codename(), str(tmp),
                 debian_mirror()], timeout=1200)
            run(["tar", "-C", str(tmp), "-cf", f"{tarball}.part", "."])
            os.replace(f"{tarball}.part", tarball)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return tarball


def wheelhouse(requirements: Path) -> Path:
    """Binary wheels for the package's requirements, for the chroot's pip (no network there)."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    folder = CACHE / f"wheels-{key}"
    with locked("wheels"):
        if not (folder / ".complete").is_file():
            run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                 "--python-version", "3.11", "-d", str(folder), "-r", str(requirements)])
            (folder / ".complete").write_text("")
    return folder


class Chroot:
    """A Debian root unpacked from the cached tarball; ``/proc`` mounted while in use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *cmd: str, check: bool = True, user: str | None = None,
            timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
        pre = ["chroot"] + ([f"--userspec={user}:{user}"] if user else []) + [str(self.root)]
        return run([*pre, *cmd], check=check, env=env, timeout=timeout)

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def copy_in(self, src: Path, dest: str) -> str:
        shutil.copy(src, self.path(dest))
        return dest


@contextlib.contextmanager
def debian_root(tmp: Path, wheels: Path) -> Iterator[Chroot]:
    root = tmp / "root"
    root.mkdir()
    run(["tar", "-C", str(root), "-xf", str(base_root_tarball())])
    # pip in the chroot installs only from the cached wheels: the admin's offline set-up.
    shutil.copytree(wheels, root / "var/cache/earshot-wheels")
    (root / "etc/pip.conf").write_text(
        "[global]\nno-index = true\nfind-links = /var/cache/earshot-wheels\n")
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        yield Chroot(root)
    finally:
        run(["umount", "-l", str(root / "proc")], check=False)
    if not any(str(root) in line for line in Path("/proc/mounts").read_text().splitlines()):
        shutil.rmtree(root, ignore_errors=True)


def installed_state(ch: Chroot) -> dict[str, object]:
    """What a user would look at after each apt step."""
    status = ch.run("dpkg-query", "-W", "-f=${db:Status-Abbrev}${Version}", "earshot", check=False)
    passwd = ch.run("getent", "passwd", "earshot", check=False).stdout.strip()
    groups = ch.run("id", "-nG", "earshot", check=False).stdout.split()
    wants = ch.path("/etc/systemd/system/multi-user.target.wants/earshot.service")
    return {
        "status": status.stdout.strip(),
        "user": passwd,
        "groups": set(groups),
        "unit": ch.path("/lib/systemd/system/earshot.service").is_file(),
        "enabled": wants.is_symlink(),
        "venv": ch.path("/opt/earshot/venv/bin/earshotd").is_file(),
        "config": ch.path("/etc/earshot/earshot.toml").read_text()
        if ch.path("/etc/earshot/earshot.toml").is_file() else None,
        "state_dir": ch.path("/var/lib/earshot/models").is_dir(),
    }


@pytest.mark.slow
def test_apt_install_upgrade_remove_purge_in_a_debian_root(
    debs: dict[str, Path], tmp_path: Path, tiny_bundle: Path
) -> None:
    reqs = tmp_path / "requirements.txt"
    run(["sh", "-c", f"dpkg-deb --fsys-tarfile {debs[VERSION_1]} | "
                     f"tar -xOf - ./usr/share/earshot/requirements.txt > {reqs}"])
    with debian_root(tmp_path, wheelhouse(reqs)) as ch:
        deb1 = ch.copy_in(debs[VERSION_1], "/tmp/earshot_1.deb")
        deb2 = ch.copy_in(debs[VERSION_2], "/tmp/earshot_2.deb")
        wav_low = ch.copy_in(tone(tmp_path / "low.wav", 440.0), "/tmp/low.wav")
        wav_high = ch.copy_in(tone(tmp_path / "high.wav", 5000.0), "/tmp/high.wav")

        # install
        ch.run("apt-get", "install", "-y", "--no-install-recommends", deb1)
        s = installed_state(ch)
        assert s["status"] == f"ii {VERSION_1}", s
        assert s["user"].startswith("earshot:") and s["user"].endswith(":/var/lib/earshot:/usr/sbin/nologin"), s
        assert {"earshot", "audio", "i2c", "dialout", "gpio"} <= s["groups"], s
        assert s["unit"] and s["enabled"] and s["venv"] and s["state_dir"], s
        wants = ch.path("/etc/systemd/system/multi-user.target.wants/earshot.service")
        assert os.readlink(wants) == "/lib/systemd/system/earshot.service"
        assert ch.path("/var/lib/earshot").stat().st_uid == int(s["user"].split(":")[2])

        # the daemon from the installed tree, as its own user
        helptext = ch.run("earshotd", "--help", user="earshot").stdout
        assert "classify" in helptext
        model = f"/usr/share/earshot/models/{MODEL_NAME}"
        out = ch.run("earshotd", "classify", "--json", "--model", model, wav_low, wav_high,
                     user="earshot").stdout
        lines = [json.loads(x) for x in out.splitlines()]
        assert [(d["file"], d["label"]) for d in lines] == [(wav_low, "low"), (wav_high, "high")]
        assert "tensorflow" not in ch.run("/opt/earshot/venv/bin/pip", "list").stdout.lower()

        # upgrade keeps a local config edit (it is a conffile) and re-runs cleanly
        conf = ch.path("/etc/earshot/earshot.toml")
        edited = conf.read_text() + "\n# local edit: keep me\n"
        conf.write_text(edited)
        ch.run("apt-get", "install", "-y", "--no-install-recommends", deb2)
        s = installed_state(ch)
        assert s["status"] == f"ii {VERSION_2}", s
        assert s["config"] == edited, "upgrade lost the local config edit"
        assert s["enabled"] and s["venv"], s
        assert ch.run("earshotd", "classify", "--json", "--model", model, wav_high).stdout

        # the user's own models survive remove; remove drops the venv and the unit file
        ch.path("/var/lib/earshot/models/mine").mkdir()
        ch.run("apt-get", "remove", "-y", "earshot")
        s = installed_state(ch)
        assert s["status"].startswith("rc"), s
        assert not s["unit"] and not s["venv"], s
        assert not ch.path("/usr/bin/earshotd").exists()
        assert s["config"] == edited, "remove must keep the config"
        assert ch.path("/var/lib/earshot/models/mine").is_dir()
        assert s["user"], "remove keeps the user (its files are still there)"

        # purge removes user, state, logs, config and the enablement
        ch.run("apt-get", "purge", "-y", "earshot")
        s = installed_state(ch)
        assert s["status"] == "", s
        assert s["user"] == "" and s["config"] is None and not s["enabled"], s
        for gone in ("/var/lib/earshot", "/var/log/earshot", "/etc/earshot", "/opt/earshot"):
            assert not ch.path(gone).exists(), f"purge left {gone}"
