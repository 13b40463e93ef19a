"""The .deb: the hash-pinned locks it is built from, what dpkg-deb and lintian see, the arm64
package's binaries, and a real install, upgrade, remove and purge with apt in a throwaway
Debian root (debootstrap, cached under build/) with networking off.

The chroot has no running systemd, as in an image build: the maintainer scripts must still
create the user and the enablement symlink, and must not try to start anything.
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
sys.path.insert(0, str(REPO / "deploy"))
import pylock  # noqa: E402  (deploy/ is not a package)

VERSION_1 = "0.1.0"
VERSION_2 = "0.1.0+test2"
LABELS = ["low", "high"]
MODEL_NAME = "tiny"
ARCH = "amd64"
"""The package the chroot installs: this machine's architecture."""
SITE = "/usr/lib/earshot/site-packages"
CMD_TIMEOUT_S = 600
"""Upper bound on any one command (debootstrap, a package build)."""
ELF_MACHINES = {"amd64": 62, "arm64": 183}
"""ELF e_machine: EM_X86_64, EM_AARCH64."""
# Libraries the package's binaries may load from the system, each covered by a Depends: entry:
# glibc, libgcc and libstdc++ (the manylinux set the wheels are built against), and zlib
# (the aarch64 numpy wheel's libgfortran needs it).
SYSTEM_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
               "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
               "libz.so.1"}
# lintian findings we accept, each with its reason (docs/deploy.md lists them too).
LINTIAN_ACCEPTED = {
    "no-manual-page",  # earshotd --help is the reference; no man page yet
    # licence and README files inside the wheels' *.dist-info, and requirements.lock
    "package-contains-documentation-outside-usr-share-doc",
    "package-contains-empty-directory",  # usr/share/earshot/models/ when built with no --model
    "package-supports-alternative-init-but-no-init.d-script",  # systemd only, by design
    # The wheels' shared objects exactly as PyPI ships them (stripping would edit them):
    "unstripped-binary-or-object",
    "library-not-linked-against-libc",  # a few numpy/scipy extensions need no libc symbol
    "shared-library-lacks-prerequisites",  # ditto, test-only extension modules
    "unusual-interpreter",  # pyserial's modules start with "#!python"; they are imported
    "script-not-executable",  # tqdm/completion.sh, a shell completion nothing here runs
    "embedded-library",  # zlib and friends inside numpy.libs/pillow.libs (manylinux wheels)
    # auditwheel's RPATH $ORIGIN/../<name>.libs: each wheel finds the libraries it carries
    "custom-library-search-path",
    "relative-library-search-path",
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


def build_deb(out: Path, version: str, *models: Path, arch: str = ARCH) -> Path:
    args = [str(REPO / "deploy" / "build-deb"), "--arch", arch, "--out", str(out),
            "--version", version]
    for m in models:
        args += ["--model", str(m)]
    # xz level 1: the same files, 20% larger, several times faster to pack.
    run(args, env={**os.environ, "EARSHOT_DEB_XZ_LEVEL": "1"})
    deb = out / f"earshot_{version}_{arch}.deb"
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


# --- the locks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(pylock.ARCHES))
def test_committed_lock_matches_pyproject_and_pins_every_wheel_by_hash(arch: str) -> None:
    lock = REPO / "deploy" / "lock" / f"pi-{arch}.txt"
    pylock.check_fresh(lock, REPO / "pyproject.toml")  # raises naming the file if stale
    pins = [ln for ln in lock.read_text().splitlines() if ln and not ln.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9-]+==\S+ --hash=sha256:[0-9a-f]{64}", p) for p in pins), pins
    names = {p.split("==")[0] for p in pins}
    # the direct pins and some transitive ones: the lock holds the whole tree
    assert {"numpy", "scipy", "ai-edge-litert", "pillow", "pyserial", "adafruit-circuitpython-ssd1306",
            "adafruit-blinka", "ml-dtypes", "protobuf"} <= names
    assert not names & {"pyaudio", "systemd-python", "cmsisdsp"}, "Debian supplies / no wheel"
    pyproject_pins = pylock.runtime_requirements(REPO / "pyproject.toml")
    for pin in ("numpy==", "scipy==", "ai-edge-litert==", "pillow=="):
        want = next(ln for ln in pyproject_pins.splitlines() if ln.startswith(pin))
        assert any(p.startswith(want + " ") for p in pins), f"{lock} does not pin {want}"


def test_stale_lock_is_refused_by_name(tmp_path: Path) -> None:
    lock = tmp_path / "pi-amd64.txt"
    text = (REPO / "deploy" / "lock" / "pi-amd64.txt").read_text()
    lock.write_text(re.sub(r"(# input sha256: )\w+", r"\g<1>" + "0" * 64, text))
    with pytest.raises(SystemExit, match=f"{lock} was made from other pins than"):
        pylock.check_fresh(lock, REPO / "pyproject.toml")


def test_build_refuses_armhf_with_the_reason(tmp_path: Path) -> None:
    proc = run([str(REPO / "deploy" / "build-deb"), "--arch", "armhf", "--out", str(tmp_path)],
               check=False)
    assert proc.returncode != 0
    assert "PyPI has no armv7l wheels of numpy" in proc.stderr
    assert not list(tmp_path.glob("*.deb"))


# --- what the package holds ------------------------------------------------------------------

def test_control_fields_name_the_debian_dependencies(debs: dict[str, Path]) -> None:
    deb = debs[VERSION_1]
    assert deb_field(deb, "Package") == "earshot"
    assert deb_field(deb, "Version") == VERSION_1
    assert deb_field(deb, "Architecture") == ARCH
    depends = deb_field(deb, "Depends").split(", ")
    assert "python3 (>= 3.11~)" in depends and "python3 (<< 3.12)" in depends, depends
    names = {d.split()[0] for d in depends}
    assert {"python3-pyaudio", "python3-systemd", "libportaudio2", "libc6", "libstdc++6",
            "adduser", "init-system-helpers"} <= names
    assert not names & {"python3-venv", "ca-certificates", "python3-pip"}, "nothing to fetch"
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
                 "/etc/earshot/earshot.toml", "/usr/share/earshot/requirements.lock",
                 f"/usr/share/earshot/models/{MODEL_NAME}/manifest.json",
                 f"/usr/share/earshot/models/{MODEL_NAME}/model.tflite",
                 f"{SITE}/daemon/__main__.py", f"{SITE}/earshot/bundle.py",
                 f"{SITE}/numpy/__init__.py", f"{SITE}/scipy/__init__.py",
                 f"{SITE}/ai_edge_litert/__init__.py", f"{SITE}/PIL/__init__.py",
                 f"{SITE}/serial/__init__.py", f"{SITE}/adafruit_ssd1306.py",
                 "/usr/share/doc/earshot/copyright", "/usr/share/doc/earshot/changelog.gz"):
        assert path in entries, f"{path} missing from the .deb:\n{listing[:3000]}"
    assert entries["/usr/bin/earshotd"][0] == "-rwxr-xr-x"
    assert all(owner == "root/root" for _, owner in entries.values()), "files must be owned by root"
    assert not any(p.startswith("/opt") for p in entries), "nothing lives in /opt any more"
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in entries), "postinst compiles"
    assert not any(p.startswith(f"{SITE}/bin/") for p in entries), "console scripts of the build host"
    assert not any(p.endswith(".whl") for p in entries), "wheels are unpacked at build time"


def installed_dists(site: Path) -> set[str]:
    """``name==version`` of every *.dist-info in an unpacked site-packages folder."""
    dists = set()
    for info in site.glob("*.dist-info"):
        meta = (info / "METADATA").read_text(errors="replace")
        name = re.search(r"^Name: (\S+)", meta, re.M).group(1)
        version = re.search(r"^Version: (\S+)", meta, re.M).group(1)
        dists.add(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}")
    return dists


def test_site_packages_is_exactly_the_lock_plus_earshot(debs: dict[str, Path], tmp_path: Path) -> None:
    run(["dpkg-deb", "--extract", str(debs[VERSION_1]), str(tmp_path / "x")])
    lock = (REPO / "deploy" / "lock" / f"pi-{ARCH}.txt").read_text()
    assert (tmp_path / "x/usr/share/earshot/requirements.lock").read_text() == lock
    locked = {ln.split()[0] for ln in lock.splitlines() if ln and not ln.startswith("#")}
    assert installed_dists(tmp_path / "x" / SITE.lstrip("/")) == locked | {f"earshot=={VERSION_1.split('+')[0]}"}
    assert not list((tmp_path / "x" / SITE.lstrip("/")).glob("*.dist-info/direct_url.json"))


def test_config_is_a_conffile_and_unit_is_the_repo_one(debs: dict[str, Path], tmp_path: Path) -> None:
    run(["dpkg-deb", "--control", str(debs[VERSION_1]), str(tmp_path / "ctl")])
    assert (tmp_path / "ctl" / "conffiles").read_text().split() == ["/etc/earshot/earshot.toml"]
    postinst = (tmp_path / "ctl" / "postinst").read_text()
    assert "pip" not in postinst, "the postinst must not install anything from an index"
    run(["dpkg-deb", "--extract", str(debs[VERSION_1]), str(tmp_path / "x")])
    shipped = (tmp_path / "x/lib/systemd/system/earshot.service").read_text()
    assert shipped == (REPO / "systemd" / "earshot.service").read_text()
    import tomllib

    tomllib.loads((tmp_path / "x/etc/earshot/earshot.toml").read_text())  # valid TOML


def test_lintian_finds_no_errors(debs: dict[str, Path]) -> None:
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed; run scripts/install-system-deps")
    proc = run(["lintian", "--info", "--no-tag-display-limit", str(debs[VERSION_1])], check=False,
               timeout=900)
    tags = re.findall(r"^([EWIXP]): earshot: (\S+)", proc.stdout, re.M)
    errors = sorted({t for sev, t in tags if sev == "E"} - LINTIAN_ACCEPTED)
    assert not errors, f"lintian errors:\n{proc.stdout}"
    unexpected = sorted({t for sev, t in tags if sev in "WI"} - LINTIAN_ACCEPTED)
    assert not unexpected, f"new lintian findings (fix them or list them with a reason):\n{proc.stdout}"


def elf_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
            and p.open("rb").read(4) == b"\x7fELF"]


def elf_machine(path: Path) -> tuple[int, int]:
    """(EI_CLASS, e_machine) from the ELF header: 2 = 64-bit; 62 x86-64, 183 AArch64."""
    head = path.open("rb").read(20)
    assert head[5] == 1, f"{path}: not little-endian"
    return head[4], int.from_bytes(head[18:20], "little")


def needed_libs(path: Path) -> set[str]:
    dyn = run(["readelf", "-d", str(path)]).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn))


def check_binaries(root: Path, arch: str) -> int:
    """Every ELF file is for ``arch``; every library it needs is shipped or a Depends: one."""
    elves = elf_files(root)
    shipped = {p.name for p in elves}
    for elf in elves:
        assert elf_machine(elf) == (2, ELF_MACHINES[arch]), f"{elf}: not a 64-bit {arch} binary"
        missing = needed_libs(elf) - shipped - SYSTEM_LIBS
        assert not missing, f"{elf} needs {missing}, neither shipped nor in Depends:"
    return len(elves)


def test_amd64_binaries_are_amd64_and_need_only_declared_libraries(debs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    run(["dpkg-deb", "--extract", str(debs[VERSION_1]), str(tmp_path / "x")])
    assert check_binaries(tmp_path / "x", ARCH) > 50


@pytest.mark.slow
def test_arm64_package_carries_only_aarch64_binaries_and_wheels(tmp_path: Path) -> None:
    deb = build_deb(tmp_path / "dist", VERSION_1, arch="arm64")
    assert deb_field(deb, "Architecture") == "arm64"
    run(["dpkg-deb", "--extract", str(deb), str(tmp_path / "x")])
    site = tmp_path / "x" / SITE.lstrip("/")
    assert check_binaries(tmp_path / "x", "arm64") > 50
    extensions = list(site.rglob("*.cpython-*.so"))
    assert extensions and all(p.name.endswith("-311-aarch64-linux-gnu.so") for p in extensions), \
        [p.name for p in extensions if not p.name.endswith("-311-aarch64-linux-gnu.so")]
    # each wheel's own record of the platform it was built for
    for wheel_file in site.glob("*.dist-info/WHEEL"):
        tags = re.findall(r"^Tag: \S+-\S+-(\S+)$", wheel_file.read_text(), re.M)
        assert tags and all(t == "any" or t.endswith("_aarch64") for t in tags), (wheel_file, tags)
    lock = (REPO / "deploy" / "lock" / "pi-arm64.txt").read_text()
    assert (tmp_path / "x/usr/share/earshot/requirements.lock").read_text() == lock
    locked = {ln.split()[0] for ln in lock.splitlines() if ln and not ln.startswith("#")}
    assert installed_dists(site) - {f"earshot=={VERSION_1}"} == locked
    # reproducible: the same commit and lock build the same bytes
    again = build_deb(tmp_path / "again", VERSION_1, arch="arm64")
    assert sha256_file(again) == sha256_file(deb), "two builds of one commit differ"


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
    return sorted({re.sub(r"\s*\(.*\)", "", d).strip() for d in line.split(",")})


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


class Chroot:
    """A Debian root unpacked from the cached tarball; ``/proc`` mounted while in use.

    Every command runs in a new network namespace (``unshare --net``: only a downed loopback),
    as on a Pi with no network: anything that reached for PyPI or a mirror would fail."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *cmd: str, check: bool = True, user: str | None = None,
            timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
        pre = ["unshare", "--net", "chroot"] + ([f"--userspec={user}:{user}"] if user else [])
        pre.append(str(self.root))
        return run([*pre, *cmd], check=check, env=env, timeout=timeout)

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def copy_in(self, src: Path, dest: str) -> str:
        shutil.copy(src, self.path(dest))
        return dest


@contextlib.contextmanager
def debian_root(tmp: Path) -> Iterator[Chroot]:
    root = tmp / "root"
    root.mkdir()
    run(["tar", "-C", str(root), "-xf", str(base_root_tarball())])
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
        "site": ch.path(f"{SITE}/daemon/__main__.py").is_file(),
        "compiled": any(ch.path(SITE).rglob("__pycache__/*.cpython-311.pyc"))
        if ch.path(SITE).is_dir() else False,
        "config": ch.path("/etc/earshot/earshot.toml").read_text()
        if ch.path("/etc/earshot/earshot.toml").is_file() else None,
        "state_dir": ch.path("/var/lib/earshot/models").is_dir(),
    }


@pytest.mark.slow
def test_apt_install_upgrade_remove_purge_in_a_debian_root(
    debs: dict[str, Path], tmp_path: Path, tiny_bundle: Path
) -> None:
    with debian_root(tmp_path) as ch:
        assert ch.run("python3", "-c", "import numpy", check=False).returncode != 0, \
            "the bare root must not have numpy already"
        offline = ch.run("python3", "-c", "import socket; socket.create_connection(('pypi.org', 443), 5)",
                         check=False)
        assert offline.returncode != 0, "the chroot was meant to have no network"
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
        assert s["unit"] and s["enabled"] and s["site"] and s["compiled"] and s["state_dir"], s
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
        assert not list(ch.path(SITE).glob("tensorflow*")), "the Pi runtime carries no TensorFlow"
        # Debian's PyAudio and python-systemd, seen from earshotd's interpreter
        probe = ch.run("python3", "-I", "-c", f"import sys; sys.path.insert(0, {SITE!r}); "
                       "import pyaudio, systemd.journal, numpy, scipy.signal, ai_edge_litert, "
                       "PIL, serial, adafruit_ssd1306; print(pyaudio.__file__, numpy.__file__)",
                       user="earshot").stdout
        assert probe.startswith("/usr/lib/python3/dist-packages/pyaudio") and SITE in probe, probe

        # upgrade keeps a local config edit (it is a conffile) and re-runs cleanly
        conf = ch.path("/etc/earshot/earshot.toml")
        edited = conf.read_text() + "\n# local edit: keep me\n"
        conf.write_text(edited)
        ch.run("apt-get", "install", "-y", "--no-install-recommends", deb2)
        s = installed_state(ch)
        assert s["status"] == f"ii {VERSION_2}", s
        assert s["config"] == edited, "upgrade lost the local config edit"
        assert s["enabled"] and s["site"] and s["compiled"], s
        assert ch.run("earshotd", "classify", "--json", "--model", model, wav_high).stdout

        # the user's own models survive remove; remove drops the package's files and the unit
        ch.path("/var/lib/earshot/models/mine").mkdir()
        ch.run("apt-get", "remove", "-y", "earshot")
        s = installed_state(ch)
        assert s["status"].startswith("rc"), s
        assert not s["unit"] and not s["site"], s
        assert not ch.path("/usr/bin/earshotd").exists()
        assert not ch.path("/usr/lib/earshot").exists(), "remove left files (compiled .pyc?) behind"
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
