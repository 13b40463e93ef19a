"""Builds of the firmware core: CMSIS-DSP fetch, strict host flags, Cortex-M cross builds + sizes.

The cross builds link core + model (the test model) with --gc-sections into an image whose size
is the flash and static RAM the block loop needs; the table is printed (pytest -s shows it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from trainer import firmware_build as fb

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion"]
FLASH_BUDGET = 64 * 1024  # docs/architecture.md budget: core + model flash
RAM_BUDGET = 48 * 1024    # docs/architecture.md budget: RAM peak (here: static RAM of the image)
CPU_ATTRS = {             # what arm-none-eabi-readelf -A must report for each target
    "cortex-m0plus": ("v6S-M", None),
    "cortex-m4": ("v7E-M", "VFPv4-D16"),
    "cortex-m7": ("v7E-M", "FPv5/FP-D16"),
}


def test_fetch_is_idempotent_and_matches_the_python_package() -> None:
    first = fb.fetch_cmsis_dsp()
    assert fb.fetch_cmsis_dsp() == first
    assert first.name == "cmsisdsp-1.10.3"
    import cmsisdsp  # the trainer's package: same release as the C sources

    assert cmsisdsp.__version__ == "1.10.3"


def test_fetch_refuses_a_tarball_with_the_wrong_hash(tmp_path) -> None:
    bad = tmp_path / "cmsisdsp-1.10.3.tar.gz"
    bad.write_bytes(b"definitely not the release")
    proc = subprocess.run([str(fb.REPO / "scripts" / "fetch-cmsis-dsp"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert str(bad) in proc.stderr and "expected" in proc.stderr, proc.stderr
    assert bad.read_bytes() == b"definitely not the release"  # nothing lost


def test_missing_cmsis_sources_is_a_clear_cmake_error(tmp_path) -> None:
    proc = subprocess.run(
        ["cmake", "-S", str(fb.FIRMWARE), "-B", str(tmp_path / "b"),
         f"-DES_CMSIS_DSP_DIR={tmp_path / 'nowhere'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "scripts/fetch-cmsis-dsp" in proc.stderr and "nowhere" in proc.stderr


def test_our_sources_build_with_strict_flags_and_sanitizers() -> None:
    build = fb.host_build(sanitize=True)
    assert build.es_host.is_file()
    commands = json.loads((build.folder / "compile_commands.json").read_text())
    ours = [c for c in commands if "/third_party/" not in c["file"]]
    files = {Path(c["file"]).name for c in ours}
    assert {"es_frontend.c", "es_detector.c", "es_pipeline.c", "es_common.c", "es_host.c",
            "es_test_model.c"} <= files
    for c in ours:
        for flag in STRICT + ["-fsanitize=address,undefined"]:
            assert flag in c["command"].split(), f"{c['file']} built without {flag}"


@pytest.mark.slow
@pytest.mark.usefixtures("arm_toolchain")
def test_cross_builds_for_each_cpu_fit_the_budget() -> None:
    builds = [fb.cross_build(cpu) for cpu in fb.CPUS]
    print("\ncore + test model, linked with --gc-sections (bytes)\n" + fb.size_table(builds))
    for b in builds:
        attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(b.image)],
                               capture_output=True, text=True, timeout=60, check=True).stdout
        arch, fp = CPU_ATTRS[b.cpu]
        assert f"Tag_CPU_arch: {arch}" in attrs, (b.cpu, attrs)
        if fp is None:
            assert "Tag_FP_arch" not in attrs
        else:
            assert f"Tag_FP_arch: {fp}" in attrs, (b.cpu, attrs)
        # the front end's tables for every FFT size up to 8192 stay out of the image
        syms = subprocess.run(["arm-none-eabi-nm", str(b.image)], capture_output=True,
                              text=True, timeout=60, check=True).stdout
        assert "realCoefAQ15" not in syms and "twiddleCoef_4096_q15" not in syms
        assert "es_pipeline_push_block" in syms and "es_rfft256_q15" in syms
        # es_rfft256_q15 replaces CMSIS-DSP's FFT: none of its code or tables is linked
        assert "arm_rfft_q15" not in syms and "twiddleCoef_128_q15" not in syms
        assert 4096 < b.size.flash <= FLASH_BUDGET, b.size
        assert b.size.ram <= RAM_BUDGET, b.size
