"""Our Cortex-M0+ __aeabi_lmul (firmware/host/es_lmul_m0.c) equals the plain 64-bit product.

The file holds a portable C version and, for ARMv6-M, the same steps scheduled by hand in
Thumb-1. The C is compiled for the host (renamed es_lmul, millions of pairs against uint64
multiplication); both are cross-compiled for ARMv6-M and run in unicorn on edge and random
pairs, and checked to call nothing (in particular not themselves); in the cross-built image the
helper must replace libgcc's __muldi3 on the M0+ only.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from trainer import firmware_build as fb

SOURCE = fb.FIRMWARE / "host" / "es_lmul_m0.c"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion"]
MASK = (1 << 64) - 1
EDGES = sorted({
    0, 1, 2, 3, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x10001, 0x7FFF_FFFF, 0x8000_0000,
    0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_FFFF, 0xFFFF_0000_FFFF, 0x7FFF_FFFF_FFFF_FFFF,
    0x8000_0000_0000_0000, 0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF_FFFF_0001, 0x0000_8000_0000_8000,
    0xDEAD_BEEF_CAFE_F00D, 0x0123_4567_89AB_CDEF,
})
"""Operands (as uint64): halves at their limits, sign-extended int32s as arm_sqrt_q31 passes."""

HOST_DRIVER = r"""
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
uint64_t es_lmul(uint64_t a, uint64_t b);
static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next(void)   /* xorshift64* */
{
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Du;
}
static int check(uint64_t a, uint64_t b)
{
    if (es_lmul(a, b) != a * b) {
        printf("MISMATCH %016" PRIx64 " %016" PRIx64 "\n", a, b);
        return 1;
    }
    return 0;
}
int main(int argc, char **argv)
{
    static const uint64_t edges[] = {EDGES};
    const size_t n_edges = sizeof edges / sizeof edges[0];
    long n = argc > 1 ? atol(argv[1]) : 0;
    long checked = 0, bad = 0;
    for (size_t i = 0; i < n_edges; i++) {
        for (size_t j = 0; j < n_edges; j++) {
            bad += check(edges[i], edges[j]);
            /* and one side or the other negated, as signed int64 operands */
            bad += check(0u - edges[i], edges[j]);
            checked += 2;
        }
    }
    for (long k = 0; k < n && bad < 10; k++) {
        uint64_t a = next(), b = next();
        /* every third pair: sign-extended int32 operands (what (q63_t)x * y passes) */
        if (k % 3 == 0) {
            a = (uint64_t)(int64_t)(int32_t)a;
            b = (uint64_t)(int64_t)(int32_t)b;
        } else if (k % 3 == 1) {
            a >>= (unsigned)(b & 63u);   /* operands of every magnitude */
        }
        bad += check(a, b);
        checked++;
    }
    printf("checked %ld bad %ld\n", checked, bad);
    return bad != 0;
}
"""


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr}"
    return proc


def test_host_build_equals_the_uint64_product_on_edges_and_four_million_pairs(tmp_path) -> None:
    driver = tmp_path / "driver.c"
    edges = ", ".join(f"0x{v:016x}u" for v in EDGES)
    driver.write_text(HOST_DRIVER.replace("{EDGES}", "{" + edges + "}"))
    exe = tmp_path / "lmul"
    _run(["gcc", "-O2", *STRICT, "-DES_LMUL_NAME=es_lmul", str(SOURCE), str(driver), "-o",
          str(exe)])
    out = subprocess.run([str(exe), "4000000"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == f"checked {2 * len(EDGES) ** 2 + 4_000_000} bad 0"


def test_without_a_name_it_refuses_to_build_for_anything_but_armv6m(tmp_path) -> None:
    proc = subprocess.run(["gcc", "-c", str(SOURCE), "-o", str(tmp_path / "x.o")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "ARMv6-M only" in proc.stderr


needs_arm = pytest.mark.usefixtures("arm_toolchain")  # fails, never skips, when missing


def _pairs(n: int) -> list[tuple[int, int]]:
    rng = random.Random(14)
    pairs = [(a, b) for a in EDGES for b in EDGES]
    for _ in range(n):
        a, b = rng.getrandbits(64), rng.getrandbits(64)
        if rng.random() < 0.5:  # sign-extended int32 operands
            a = (a & 0xFFFF_FFFF) - ((a & 0x8000_0000) << 1) & MASK
            b = (b & 0xFFFF_FFFF) - ((b & 0x8000_0000) << 1) & MASK
        pairs.append((a, b))
    return pairs


def _emulate(code: bytes, pairs: list[tuple[int, int]]) -> list[int]:
    """Call the function at the start of code with each (a, b) in r0:r1, r2:r3 (AAPCS)."""
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
    from unicorn.arm_const import (
        UC_ARM_REG_LR,
        UC_ARM_REG_R0,
        UC_ARM_REG_R1,
        UC_ARM_REG_R2,
        UC_ARM_REG_R3,
        UC_ARM_REG_SP,
        UC_CPU_ARM_CORTEX_M0,
    )

    base, stack, sentinel = 0x1000_0000, 0x2000_0000, 0x3000_0000
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)  # ARMv6-M: anything else faults
    uc.mem_map(base, 0x1000)
    uc.mem_write(base, code)
    uc.mem_map(stack, 0x1000)
    uc.mem_map(sentinel, 0x1000)
    out = []
    for a, b in pairs:
        for reg, v in zip((UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3),
                          (a, a >> 32, b, b >> 32), strict=True):
            uc.reg_write(reg, v & 0xFFFF_FFFF)
        uc.reg_write(UC_ARM_REG_SP, stack + 0x1000)
        uc.reg_write(UC_ARM_REG_LR, sentinel | 1)
        uc.emu_start(base | 1, sentinel, count=200)
        out.append(uc.reg_read(UC_ARM_REG_R0) | uc.reg_read(UC_ARM_REG_R1) << 32)
    return out


@needs_arm
@pytest.mark.parametrize("opt", ["-O2", "-Os", "-O2 -DES_LMUL_PORTABLE"])
def test_cortex_m0plus_build_calls_nothing_and_multiplies_exactly_in_the_emulator(
        tmp_path: Path, opt: str) -> None:
    """The hand-scheduled Thumb-1 version (and the portable C, cross-compiled) in unicorn."""
    pytest.importorskip("unicorn")
    obj, text = tmp_path / "lmul.o", tmp_path / "lmul.bin"
    _run(["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", *opt.split(),
          *STRICT, "-c", str(SOURCE), "-o", str(obj)])
    syms = _run(["arm-none-eabi-nm", str(obj)]).stdout
    assert " T __aeabi_lmul" in syms
    # no undefined symbols: no call to libgcc, and none to itself through the PLT of the
    # compiler's own 64-bit multiply lowering
    assert _run(["arm-none-eabi-nm", "-u", str(obj)]).stdout.strip() == ""
    relocs = _run(["arm-none-eabi-objdump", "-dr", str(obj)]).stdout
    assert "\tbl\t" not in relocs and "R_ARM_THM_CALL" not in relocs, relocs
    _run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(obj), str(text)])
    pairs = _pairs(20_000)
    got = _emulate(text.read_bytes(), pairs)
    bad = [(hex(a), hex(b), hex(g)) for (a, b), g in zip(pairs, got, strict=True)
           if g != (a * b) & MASK]
    assert not bad, f"{len(bad)} wrong products, first {bad[:3]}"


@pytest.mark.slow
@needs_arm
def test_m0plus_image_never_links_libgcc_multiply_and_builds_our_helper_only_there() -> None:
    """Only the M0+ image compiles es_lmul_m0.c (strictly); libgcc's __muldi3 is never linked.

    Whether __aeabi_lmul itself is linked depends on the code: since es_mag.c replaced
    arm_sqrt_q31 nothing in the block loop multiplies in 64 bits, so --gc-sections drops it."""
    m0 = fb.cross_build("cortex-m0plus")
    syms = _run(["arm-none-eabi-nm", str(m0.image)]).stdout
    # since es_mag.c replaced arm_sqrt_q31 the test model's image has no 64-bit multiply left
    # (--gc-sections drops our helper); a model that needs one gets ours, never libgcc's
    assert "__muldi3" not in syms  # libgcc's generic helper is no longer linked
    commands = json.loads((m0.folder / "compile_commands.json").read_text())
    lmul = [c for c in commands if c["file"].endswith("es_lmul_m0.c")]
    # the size image and its copy_to_ram twin (es_image_ram) each compile it, strictly
    assert len(lmul) == 2 and {Path(c["directory"]).name for c in lmul} == {m0.folder.name}
    for entry in lmul:
        for flag in STRICT[1:]:
            assert flag in entry["command"].split(), flag
    m4 = fb.cross_build("cortex-m4")
    commands = json.loads((m4.folder / "compile_commands.json").read_text())
    assert not [c for c in commands if c["file"].endswith("es_lmul_m0.c")]


# ---- the front end's int8 input quantisation (es_frontend_quantize), rewritten alongside ------


@pytest.mark.parametrize("shift", [-31, -20, -12, -7, -3, -1, 0, 1, 5, 16, 17])
def test_front_end_quantisation_equals_tflite_arithmetic_for_random_multipliers(shift) -> None:
    """Every int16 magnitude, multipliers at both ends of [2^30, 2^31) and random between."""
    import numpy as np

    from earshot import quant

    es_host = fb.host_build(sanitize=True).es_host
    mag = np.arange(-32768, 32768, dtype=np.int16)
    rng = random.Random(shift)
    for mult in (1 << 30, (1 << 31) - 1, rng.randrange(1 << 30, 1 << 31), 0x5A82_7999):
        for zero_point in (-128, 0, 127):
            proc = fb.run_host(es_host, "--quantize", f"{mult},{shift},{zero_point}",
                               stdin=mag.astype("<i2").tobytes())
            assert proc.returncode == 0, proc.stderr.decode()
            got = np.frombuffer(proc.stdout, np.int8)
            want = np.clip(quant.multiply_by_quantized_multiplier(
                mag.astype(np.int64), mult, shift) + zero_point, -128, 127)
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, (
                f"mult {mult} shift {shift} zp {zero_point} mag {mag[bad[0]]}: "
                f"C {got[bad[0]]}, Python {want[bad[0]]}")
