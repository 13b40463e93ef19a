"""es_cmplx_mag_q15 (firmware/core/es_mag.c) equals CMSIS-DSP's arm_cmplx_mag_q15, proven.

arm_cmplx_mag_q15 turns each (re, im) pair into x = (re^2 + im^2) >> 1, a value in
[0, 2^30], and outputs arm_sqrt_q31(x) >> 16; ours computes the same x the same way, so the
two agree on every pair exactly when es_mag_from_power(x) == arm_sqrt_q31(x) >> 16 for every
x in [0, 2^30]. A C checker, compiled with gcc -O2 against the CMSIS-DSP 1.10.3 C sources (the
release the Python `cmsisdsp` package is), checks all 2^30 + 1 values, and the exception
windows es_mag.h documents; then the array functions on pairs (edges, every small pair, random
pairs, odd lengths). The cross-compiled object must need no 64-bit multiply, divide or float
helper. The front end's own C == Python tests (tests/test_firmware_frontend.py) run the
function inside es_host against the Python package.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cmsis_checker import CMSIS_DEFINES, STRICT, build_checker, run
from trainer import firmware_build as fb

if str(fb.REPO) not in sys.path:
    sys.path.insert(0, str(fb.REPO))

from bench import cm0plus  # noqa: E402

CORE = fb.FIRMWARE / "core"
SOURCE = CORE / "es_mag.c"
"""As the Python wrapper's build and firmware/CMakeLists.txt define them."""
CMSIS_FILES = ("FastMathFunctions/arm_sqrt_q31.c", "ComplexMathFunctions/arm_cmplx_mag_q15.c",
               "CommonTables/arm_common_tables.c")

CHECKER = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arm_math.h"
#include "es_mag.h"

static q15_t cmsis(uint32_t x)
{
    q31_t res;
    arm_sqrt_q31((q31_t)x, &res);
    return (q15_t)(res >> 16);
}

static int64_t isqrt_half(uint32_t x)   /* floor(sqrt(x / 2)) */
{
    int64_t r = (int64_t)sqrt((double)x / 2.0);
    while (r * r * 2 > (int64_t)x) r--;
    while ((r + 1) * (r + 1) * 2 <= (int64_t)x) r++;
    return r;
}

/* every x: ours == CMSIS; and CMSIS != floor(sqrt(x / 2)) only inside the documented windows */
static int exhaustive(void)
{
    unsigned long bad = 0, below = 0, above = 0, outside = 0;
    for (uint32_t x = 0;; x++) {
        const q15_t want = cmsis(x), got = es_mag_from_power(x);
        if (got != want && bad++ < 10)
            printf("x=%lu CMSIS %d ours %d\n", (unsigned long)x, want, got);
        const int64_t r = isqrt_half(x);
        if (want != r) {
            const int64_t e = want < r ? r : r + 1;        /* the nearest 2 E^2 */
            const int64_t delta = (int64_t)x - 2 * e * e;
            const int ok = want < r ? (delta >= 0 && delta <= 5) : (delta >= -4 && delta <= -1);
            if (!ok || (e < 8192 && delta != 0)) {
                if (outside++ < 10)
                    printf("x=%lu outside the windows: CMSIS %d floor %lld\n", (unsigned long)x,
                           want, (long long)r);
            }
            if (want < r) below++; else above++;
        }
        if (x == ES_MAG_MAX_POWER) break;
    }
    printf("checked %lu values: %lu mismatches, CMSIS one below floor(sqrt(x/2)) at %lu, "
           "one above at %lu, %lu outside the documented windows\n",
           (unsigned long)ES_MAG_MAX_POWER + 1UL, bad, below, above, outside);
    return bad != 0 || outside != 0;
}

static uint64_t state = 0x9E3779B97F4A7C15u;
static q15_t next(void)   /* xorshift64*, high bits */
{
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return (q15_t)(int16_t)((state * 0x2545F4914F6CDD1Du) >> 48);
}

#define N_MAX 1024
static q15_t src[2 * N_MAX];
static q15_t want[N_MAX + 1], got[N_MAX + 1];

static unsigned long compare(uint32_t n)
{
    unsigned long bad = 0;
    want[n] = got[n] = 0x5A5A;   /* neither may write past n */
    arm_cmplx_mag_q15(src, want, n);
    if (es_cmplx_mag_q15(src, got, n) != ES_OK) return n + 1;
    for (uint32_t i = 0; i <= n; i++) {
        if (want[i] != got[i] && bad++ < 5)
            printf("pair (%d, %d): CMSIS %d ours %d\n", src[2 * i], src[2 * i + 1], want[i], got[i]);
    }
    return bad;
}

static int pairs(void)
{
    static const q15_t edges[] = {-32768, -32767, -23170, -16384, -256, -3, -2, -1,
                                  0, 1, 2, 3, 181, 16384, 23170, 32766, 32767};
    const uint32_t n_edges = sizeof edges / sizeof edges[0];
    unsigned long bad = 0, checked = 0;
    uint32_t n = 0;
    for (uint32_t a = 0; a < n_edges; a++)
        for (uint32_t b = 0; b < n_edges; b++, n++) {
            src[2 * n] = edges[a];
            src[2 * n + 1] = edges[b];
        }
    bad += compare(n); checked += n;
    for (int re = -128; re <= 128; re++) {          /* every small pair: dense windows */
        for (int im = -128; im <= 128; im++) {
            src[2 * (uint32_t)(im + 128)] = (q15_t)re;
            src[2 * (uint32_t)(im + 128) + 1] = (q15_t)im;
        }
        bad += compare(257); checked += 257;
    }
    for (int rep = 0; rep < 4000; rep++) {          /* random pairs, every length mod 4 */
        const uint32_t len = rep < 20 ? (uint32_t)rep : N_MAX - (uint32_t)(rep % 4);
        for (uint32_t i = 0; i < 2 * len; i++) {
            q15_t v = next();
            if (rep % 3 == 1) v = (q15_t)(v >> 8);     /* quiet spectra */
            src[i] = v;
        }
        bad += compare(len); checked += len;
    }
    /* arguments: NULL refused and nothing written; beyond 2^30 clamped */
    got[0] = 7;
    if (es_cmplx_mag_q15(NULL, got, 1) != ES_ERR_ARG || got[0] != 7) bad++;
    if (es_cmplx_mag_q15(src, NULL, 1) != ES_ERR_ARG) bad++;
    if (es_cmplx_mag_q15(src, got, 0) != ES_OK || got[0] != 7) bad++;
    if (es_mag_from_power(0xFFFFFFFFu) != es_mag_from_power(ES_MAG_MAX_POWER)) bad++;
    printf("checked %lu pairs: %lu mismatches\n", checked, bad);
    return bad != 0;
}

/* LOW_AT_SQUARE as CMSIS-DSP defines it: bit E set when arm_sqrt_q31(2 E^2) >> 16 == E - 1 */
static int low_at_square(void)
{
    for (uint32_t word = 0; word < 8; word++) {
        uint32_t bits = 0;
        for (uint32_t b = 0; b < 32; b++) {
            const uint32_t e = 32 * word + b;
            if (cmsis(2 * e * e) == (q15_t)e - 1) bits |= 1U << b;
        }
        printf("0x%08lXU\n", (unsigned long)bits);
    }
    return 0;
}

/* For every E <= 23170 and d in [-6, 7]: one pair (re, im) with (re^2 + im^2) >> 1 = 2 E^2 + d,
 * if any exists (int16 LE pairs on stdout). The exception windows are at these x. */
static int window_pairs(void)
{
    for (int64_t e = 1; e <= 23170; e++) {
        for (int64_t d = -6; d <= 7; d++) {
            const int64_t x = 2 * e * e + d;
            int found = 0;
            for (int64_t s = 2 * x; s <= 2 * x + 1 && !found && x >= 0; s++) {
                int64_t a = (int64_t)sqrt((double)s) + 1, b = 0;  /* two pointers, a >= b */
                while (a * a > s) a--;
                while (a >= b && !found) {
                    const int64_t v = a * a + b * b;
                    if (v == s && a <= 32768) {
                        const int16_t pair[2] = {(int16_t)-a, (int16_t)-b};
                        fwrite(pair, sizeof pair, 1, stdout);
                        found = 1;
                    }
                    if (v > s) a--; else b++;
                }
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "window-pairs") == 0) return window_pairs();
    if (argc == 2 && strcmp(argv[1], "low-at-square") == 0) return low_at_square();
    if (argc == 2 && strcmp(argv[1], "exhaustive") == 0) return exhaustive();
    if (argc == 2 && strcmp(argv[1], "pairs") == 0) return pairs();
    fprintf(stderr, "usage: %s exhaustive|pairs|low-at-square\n", argv[0]);
    return 2;
}
"""


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run(cmd, timeout, text=True)


@pytest.fixture(scope="module")
def checker() -> Path:
    """The checker, ours with the strict flags, CMSIS-DSP's files as the firmware build has them."""
    return build_checker("test-mag", CHECKER, SOURCE, CMSIS_FILES)


@pytest.mark.slow
def test_equals_arm_sqrt_q31_for_every_input_the_magnitude_can_see(checker: Path) -> None:
    """All 2^30 + 1 values of x (~30 s on one core): the proof that ours == CMSIS."""
    out = _run([str(checker), "exhaustive"], timeout=900).stdout
    print(out)
    assert "0 mismatches" in out and "0 outside the documented windows" in out, out
    # the windows are real: CMSIS does differ from the exact floor, both ways, and ours follows
    counts = re.search(r"below .* at (\d+), one above at (\d+)", out)
    assert counts is not None, out
    below, above = map(int, counts.groups())
    assert below > 10_000 and above > 1_000, out


def test_equals_arm_cmplx_mag_q15_on_pairs_and_refuses_null(checker: Path) -> None:
    out = _run([str(checker), "pairs"], timeout=120).stdout
    assert re.fullmatch(r"checked \d+ pairs: 0 mismatches\n", out), out


def test_interpolation_table_is_the_documented_formula() -> None:
    text = SOURCE.read_text()
    body = text[text.index("SQRT_Q8[193] = {") :]
    values = [int(v) for v in re.findall(r"(\d+)U", body[: body.index("}")])]
    # floor(2^19 sqrt(i)) for i = 64..256, exactly (integer square root)
    assert values == [math.isqrt(i << 38) for i in range(64, 257)]


def test_bitmap_of_low_results_is_what_cmsis_computes(checker: Path) -> None:
    """es_mag.c's LOW_AT_SQUARE, regenerated from arm_sqrt_q31 itself."""
    words = _run([str(checker), "low-at-square"]).stdout.split()
    text = SOURCE.read_text()
    body = text[text.index("LOW_AT_SQUARE[8] = {") :]
    assert re.findall(r"0x[0-9A-F]{8}U", body[: body.index("}")]) == words


@pytest.mark.usefixtures("arm_toolchain")
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
def test_cross_build_needs_no_64_bit_multiply_divide_or_float(tmp_path: Path, cpu: str) -> None:
    """What makes it fast on the M0+: no run-time helper, only 32-bit MULS, on any Cortex-M."""
    dsp = fb.fetch_cmsis_dsp()
    obj = tmp_path / "es_mag.o"
    for opt in ("-O2", "-Os"):
        _run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", opt, *STRICT,
              "-I", str(CORE), "-isystem", str(dsp / "Include"), *CMSIS_DEFINES,
              "-c", str(SOURCE), "-o", str(obj)])
        undefined = _run(["arm-none-eabi-nm", "-u", str(obj)]).stdout.split()
        m0_loop = ["es_mag_m0"] if cpu == "cortex-m0plus" else []
        assert [s for s in undefined if s != "U"] == [*m0_loop, "sqrt_initial_lut_q31"], undefined
        code = _run(["arm-none-eabi-objdump", "-d", str(obj)]).stdout
        wide = re.findall(r"\t(u|s)(mull|mlal|div)\b", code)
        assert not wide, wide  # M4 has UMULL/SDIV; ours must not need them either


EMU_BATCH = 16384
"""Pairs per emulator call."""
EMU_CHECKER = r"""
#include <string.h>
#include "arm_math.h"
#include "es_mag.h"

#define BATCH EMU_BATCH_VALUE
int16_t es_check_in[2 * BATCH + 2] __attribute__((aligned(4)));   /* (re, im) pairs */
uint32_t es_check_first[3];     /* the first mismatch: pair, reference, ours */
static int16_t got[BATCH + 1], want[BATCH + 1];

/* es_cmplx_mag_q15 on n pairs (the assembly loop when offset is 0, the C loop at an odd
 * halfword address) against, per pair, es_mag_from_power (cmsis 0) or arm_cmplx_mag_q15 */
uint32_t es_check_batch(uint32_t n, uint32_t offset, uint32_t cmsis)
{
    const int16_t *src = es_check_in + offset;
    if (offset != 0U) memmove(es_check_in + 1, es_check_in, 4U * n);
    got[n] = 0x5A5A;
    if (es_cmplx_mag_q15(src, got, n) != ES_OK) return 0xFFFFFFFFU;
    if (cmsis) {
        arm_cmplx_mag_q15(src, want, n);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            const int32_t re = src[2U * i], im = src[2U * i + 1U];
            want[i] = es_mag_from_power(((uint32_t)(re * re) + (uint32_t)(im * im)) >> 1);
        }
    }
    want[n] = 0x5A5A;
    uint32_t bad = 0;
    for (uint32_t i = 0; i <= n; i++) {
        if (got[i] != want[i] && bad++ == 0) {
            es_check_first[0] = i;
            es_check_first[1] = (uint32_t)(uint16_t)want[i];
            es_check_first[2] = (uint32_t)(uint16_t)got[i];
        }
    }
    return bad;
}

int main(void)
{
    return 0;
}
""".replace("EMU_BATCH_VALUE", str(EMU_BATCH))


@pytest.fixture(scope="module")
def m0_checker() -> Path:
    """es_mag.c + es_mag_m0.c + CMSIS-DSP's magnitude, cross-compiled for the M0+ into one image."""
    return build_checker("test-mag-m0", EMU_CHECKER, [SOURCE, CORE / "es_mag_m0.c"], CMSIS_FILES,
                         cross=["--specs=nosys.specs", "-Wl,--gc-sections", "-Wl,--undefined=es_check_batch"])


def window_pairs(checker: Path) -> np.ndarray:
    """For every E up to 23170 and every offset d in [-6, 7], one pair whose x is 2 E^2 + d,
    where one exists (2x or 2x + 1 must be a sum of two squares), found by the host checker;
    negated (-32768 occurs), swapped and with mixed signs too. The exception windows are at
    these x."""
    out = subprocess.run([str(checker), "window-pairs"], capture_output=True, timeout=300,
                         check=True).stdout
    pairs = np.frombuffer(out, "<i2").reshape(-1, 2).astype(np.int64)
    pairs = np.concatenate([pairs, pairs[:, ::-1], -pairs[:, ::-1] * [1, -1], -pairs * [-1, 1]])
    return pairs[(pairs >= -32768).all(1) & (pairs <= 32767).all(1)]


def edge_and_random_pairs(windows: np.ndarray, n_random: int) -> np.ndarray:
    rng = np.random.default_rng(2040)
    small = np.stack(np.meshgrid(np.arange(-64, 65), np.arange(-64, 65)), -1).reshape(-1, 2)
    every = np.arange(-32768, 32768)
    rails = np.concatenate([np.stack([every, np.full_like(every, v)], 1)
                            for v in (-32768, 32767, 0)])
    full = rng.integers(-32768, 32768, (n_random // 2, 2))
    level = np.exp2(rng.uniform(0, 15, (n_random - n_random // 2, 1)))
    scaled = np.clip(np.round(rng.uniform(-1, 1, (len(level), 2)) * level), -32768, 32767)
    pairs = np.concatenate([small, rails, windows, full, scaled.astype(np.int64)])
    return pairs.astype("<i2")


def _emulated_mismatches(machine: cm0plus.Machine, pairs: np.ndarray, offset: int,
                         cmsis: int) -> None:
    buf = machine.image.symbol("es_check_in").addr
    for start in range(0, len(pairs), EMU_BATCH):
        chunk = pairs[start : start + EMU_BATCH]
        machine.write(buf, chunk.tobytes())
        bad, _, _ = machine.call("es_check_batch", len(chunk), offset, cmsis, trace=False)
        first = np.frombuffer(machine.read(machine.image.symbol("es_check_first").addr, 12), "<u4")
        i = int(first[0])
        assert bad == 0, f"{bad} mismatches from pair {start}, first {chunk[min(i, len(chunk) - 1)]}: " \
                         f"reference {first[1]}, ours {first[2]} (offset {offset}, cmsis {cmsis})"


@pytest.mark.usefixtures("arm_toolchain")
def test_cortex_m0_assembly_equals_the_c_in_the_emulator(checker: Path, m0_checker: Path) -> None:
    """The code the RP2040 runs (es_mag_m0.c's loop), in unicorn, against es_mag_from_power (the
    C the exhaustive test proves equal to CMSIS) on every pair with |re|, |im| <= 64, the rails,
    pairs at every reachable exception-window x of every E, and 2 M random pairs; a sample of them against
    arm_cmplx_mag_q15 itself, and the C loop at an unaligned address."""
    windows = window_pairs(checker)
    pairs = edge_and_random_pairs(windows, 2_000_000)
    assert len(pairs) > 2_300_000
    machine = cm0plus.Machine(cm0plus.ElfImage(m0_checker))
    machine.write(machine.image.symbol("es_check_in").addr, pairs[:64].tobytes())
    bad, trace, _ = machine.call("es_check_batch", 64, 0, 0)
    ran = {machine.where(int(a)).split("+")[0] for a in np.unique(trace)}
    assert bad == 0 and "es_mag_m0" in ran, ran
    _emulated_mismatches(machine, pairs, 0, 0)
    sample = np.concatenate([windows[::7], pairs[-40_000:]]).astype("<i2")
    _emulated_mismatches(machine, sample, 0, 1)
    _emulated_mismatches(machine, sample, 1, 1)
