"""es_rfft256_q15 (firmware/core/es_rfft.c) equals CMSIS-DSP's arm_mult_q15 + arm_rfft_q15.

The firmware's window + 256-point real FFT is its own code; the trainer's features come from
CMSIS-DSP 1.10.3 (the Python package ``cmsisdsp``). A C checker, built with gcc -O2 against
the CMSIS-DSP 1.10.3 C sources (compiled as the firmware and the Python wrapper compile them),
runs both on millions of frames of many kinds (full-scale and small random, sines, clipped
sines, impulses, +-32768 extremes, square waves, full-scale tone sign patterns, silence and DC)
with the Hann window, without a window and with random windows, and compares all 258 output
values (bins 0..128). A smaller set goes through the Python package itself. The saturations
CMSIS's radix-4 butterflies could apply never act for any input (bounds below, from the
tables), which is why es_rfft.c has none; the int16 wrap of the final << 1 does happen and
is exercised.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from earshot import frontends
from tests.cmsis_checker import STRICT, build_checker, run
from trainer import firmware_build as fb

if str(fb.REPO) not in sys.path:
    sys.path.insert(0, str(fb.REPO))

from bench import cm0plus  # noqa: E402

CORE = fb.FIRMWARE / "core"
SOURCE = CORE / "es_rfft.c"
"""As the Python wrapper's build and firmware/CMakeLists.txt define them."""
CMSIS_FILES = (
    "BasicMathFunctions/arm_mult_q15.c", "BasicMathFunctions/arm_shift_q15.c",
    "TransformFunctions/arm_rfft_q15.c", "TransformFunctions/arm_rfft_init_q15.c",
    "TransformFunctions/arm_cfft_q15.c", "TransformFunctions/arm_cfft_init_q15.c",
    "TransformFunctions/arm_cfft_radix4_q15.c", "TransformFunctions/arm_bitreversal.c",
    "TransformFunctions/arm_bitreversal2.c", "CommonTables/arm_common_tables.c",
    "CommonTables/arm_const_structs.c",
)  # fmt: skip
FRAMES_DEFAULT = 2_000_000
"""Frames of the default run (each with three windows: 6 M transforms), ~20 s on one core."""
FRAMES_SLOW = 12_000_000
"""Frames of the slow run (36 M transforms), ~2 min."""

CHECKER = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arm_math.h"
#include "es_hann_q15.h"
#include "es_rfft.h"

#define N 256
static uint64_t state = 0x9E3779B97F4A7C15u;
static uint32_t rnd(void)   /* xorshift64*, high bits */
{
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return (uint32_t)((state * 0x2545F4914F6CDD1Du) >> 32);
}
static int16_t r16(void) { return (int16_t)(rnd() >> 16); }
static int16_t clamp16(double v) { return (int16_t)lrint(v > 32767 ? 32767 : (v < -32768 ? -32768 : v)); }

enum { FULL, SMALL, SINE, IMPULSE, EXTREME, SQUARE, TONESIGN, SILENCE, KINDS };
static const char *NAMES[KINDS] = {"fullscale", "small", "sine", "impulse", "extreme", "square",
                                   "tonesign", "silence"};

static void make(int kind, int16_t *x)
{
    switch (kind) {
    case FULL:
        for (int i = 0; i < N; i++) x[i] = r16();
        break;
    case SMALL: {            /* random at 1..15 bits below full scale */
        const int sh = 1 + (int)(rnd() % 15);
        for (int i = 0; i < N; i++) x[i] = (int16_t)(r16() >> sh);
    } break;
    case SINE: {             /* any frequency up to Nyquist, any level; a quarter clipped */
        const double f = (rnd() % 100000) / 200000.0, ph = (rnd() % 1000) * 0.00628;
        const double a = (double)(rnd() % 32769) * ((rnd() % 4 == 0) ? 2.0 : 1.0);
        for (int i = 0; i < N; i++) x[i] = clamp16(a * sin(2 * PI * f * i + ph));
    } break;
    case IMPULSE: {          /* one to three spikes on silence */
        static const int16_t amp[] = {-32768, 32767, -32767, 1, -1, 16384};
        memset(x, 0, N * sizeof x[0]);
        for (int k = 1 + (int)(rnd() % 3); k > 0; k--) x[rnd() % N] = amp[rnd() % 6];
    } break;
    case EXTREME: {          /* only rails: random rails, all -32768, alternating */
        static const int16_t v[] = {-32768, 32767, -32767, 0};
        const uint32_t mode = rnd() % 3;
        for (int i = 0; i < N; i++)
            x[i] = mode == 0 ? v[rnd() % 4] : (mode == 1 ? -32768 : ((i & 1) ? 32767 : -32768));
    } break;
    case SQUARE: {           /* any period 2..65, rail to rail or quieter */
        const int per = 2 + (int)(rnd() % 64), off = (int)(rnd() % (uint32_t)per);
        const int full = rnd() & 1;
        const int16_t hi = full ? 32767 : (int16_t)(rnd() >> 17), lo = full ? -32768 : (int16_t)-hi;
        for (int i = 0; i < N; i++) x[i] = ((i + off) % per) < per / 2 ? hi : lo;
    } break;
    case TONESIGN: {         /* full-scale signs of one bin of the 128-point complex FFT */
        const int k = (int)(rnd() % 128);
        const double ph = (rnd() % 1000) * 0.00628;
        for (int i = 0; i < N / 2; i++) {
            const double t = 2 * PI * k * i / 128.0 + ph;
            x[2 * i] = cos(t) >= 0 ? 32767 : -32768;
            x[2 * i + 1] = sin(t) >= 0 ? 32767 : -32768;
        }
    } break;
    default: {               /* silence, or a constant */
        const int16_t dc = (rnd() & 1) ? 0 : r16();
        for (int i = 0; i < N; i++) x[i] = dc;
    } break;
    }
}

static arm_rfft_instance_q15 S;
static void cmsis(const int16_t *x, const int16_t *w, int16_t *out)
{
    static q15_t tmp[N], spec[2 * N];
    if (w != NULL) arm_mult_q15(x, w, tmp, N);
    else memcpy(tmp, x, sizeof tmp);
    arm_rfft_q15(&S, tmp, spec);
    memcpy(out, spec, ES_RFFT_OUT * sizeof out[0]);
}

static int compare(unsigned long frames)
{
    static int16_t x[N], want[ES_RFFT_OUT], got[ES_RFFT_OUT + 1], rw[N];
    static int16_t work[ES_RFFT_LEN];
    unsigned long bad[KINDS][3] = {{0}}, count[KINDS] = {0}, total = 0;
    if (arm_rfft_init_q15(&S, N, 0, 1) != ARM_MATH_SUCCESS) return 3;
    for (unsigned long f = 0; f < frames; f++) {
        const int kind = (int)(f % KINDS);
        make(kind, x);
        for (int i = 0; i < N; i++) {      /* a random window: any value but -32768 */
            const int16_t v = r16();
            rw[i] = v == -32768 ? 32767 : v;
        }
        const int16_t *wins[3] = {ES_HANN_Q15, NULL, rw};
        for (int v = 0; v < 3; v++) {
            cmsis(x, wins[v], want);
            got[ES_RFFT_OUT] = 0x5A5A;     /* nothing may be written past bin 128 */
            es_rfft256_q15(x, wins[v], work, got);
            if (memcmp(want, got, sizeof want) != 0 || got[ES_RFFT_OUT] != 0x5A5A) {
                if (bad[kind][v]++ < 3) {
                    for (int i = 0; i < ES_RFFT_OUT; i++)
                        if (want[i] != got[i]) {
                            printf("%s window %d frame %lu: [%d] CMSIS %d ours %d\n", NAMES[kind],
                                   v, f, i, want[i], got[i]);
                            break;
                        }
                }
            }
        }
        count[kind]++;
    }
    for (int k = 0; k < KINDS; k++) {
        printf("%s %lu frames: mismatches hann %lu none %lu random %lu\n", NAMES[k], count[k],
               bad[k][0], bad[k][1], bad[k][2]);
        total += bad[k][0] + bad[k][1] + bad[k][2];
    }
    printf("checked %lu frames: %lu mismatches\n", frames, total);
    printf("random state after: %016llx\n", (unsigned long long)state);
    return total != 0;
}

/* Frames of 256 int16 on stdin -> es_rfft256_q15 with the Hann window, 258 int16 each out. */
static int dump(void)
{
    static int16_t x[N], got[ES_RFFT_OUT];
    static int16_t work[ES_RFFT_LEN];
    while (fread(x, sizeof x[0], N, stdin) == N) {
        es_rfft256_q15(x, ES_HANN_Q15, work, got);
        fwrite(got, sizeof got[0], ES_RFFT_OUT, stdout);
    }
    return 0;
}

/* FRAMES frames of every kind in turn, each followed by a random window, on stdout. */
static int frames_out(unsigned long frames)
{
    static int16_t x[N], rw[N];
    for (unsigned long f = 0; f < frames; f++) {
        make((int)(f % KINDS), x);
        for (int i = 0; i < N; i++) {
            const int16_t v = r16();
            rw[i] = v == -32768 ? 32767 : v;
        }
        fwrite(x, sizeof x[0], N, stdout);
        fwrite(rw, sizeof rw[0], N, stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "compare") == 0)   /* another random stream: seed it */
        state ^= 0xD1B54A32D192ED03u * strtoull(argv[3], NULL, 10);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "compare") == 0)
        return compare(strtoul(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "frames") == 0) return frames_out(strtoul(argv[2], NULL, 10));
    if (argc == 2 && strcmp(argv[1], "dump") == 0) return dump();
    fprintf(stderr, "usage: %s compare FRAMES [SEED] | frames FRAMES | dump\n", argv[0]);
    return 2;
}
"""


EMU_BATCH = 64
"""Frames per call of the emulated checker."""
EMU_FRAMES = 12288
"""Frames (each with four window/alignment variants) the Cortex-M0+ build checks in unicorn."""

EMU_CHECKER = r"""
#include <string.h>
#include "arm_math.h"
#include "es_hann_q15.h"
#include "es_rfft.h"

#define N 256
#define BATCH EMU_BATCH_VALUE
int16_t es_check_in[BATCH][2][N] __attribute__((aligned(4)));   /* frame, random window */
uint32_t es_check_first[4];    /* the first mismatch: frame, variant, index, CMSIS << 16 | ours */
static arm_rfft_instance_q15 S;
static q15_t tmp[N], spec[2 * N];
static int16_t work[N] __attribute__((aligned(4)));
static int16_t got[ES_RFFT_OUT + 1] __attribute__((aligned(4)));
static int16_t shifted[N + 1] __attribute__((aligned(4)));

/* n frames of es_check_in, each with the Hann window (the assembly passes), no window and a
 * random window, and Hann on a copy at an odd halfword address (the C passes); mismatches out */
uint32_t es_check_batch(uint32_t n)
{
    uint32_t bad = 0;
    if (S.fftLenReal == 0U && arm_rfft_init_q15(&S, N, 0, 1) != ARM_MATH_SUCCESS) return 0xFFFFFFFFU;
    for (uint32_t f = 0; f < n; f++) {
        const int16_t *x = es_check_in[f][0];
        memcpy(shifted + 1, x, sizeof tmp);
        for (uint32_t v = 0; v < 4; v++) {
            const int16_t *w = v == 1 ? NULL : (v == 2 ? es_check_in[f][1] : ES_HANN_Q15);
            if (w != NULL) arm_mult_q15(x, w, tmp, N);
            else memcpy(tmp, x, sizeof tmp);
            arm_rfft_q15(&S, tmp, spec);
            got[ES_RFFT_OUT] = 0x5A5A;
            es_rfft256_q15(v == 3 ? shifted + 1 : x, w, work, got);
            for (uint32_t i = 0; i <= ES_RFFT_OUT; i++) {
                const int16_t want = i < ES_RFFT_OUT ? spec[i] : 0x5A5A;
                if (got[i] != want) {
                    if (bad++ == 0) {
                        es_check_first[0] = f; es_check_first[1] = v; es_check_first[2] = i;
                        es_check_first[3] = ((uint32_t)(uint16_t)want << 16) | (uint16_t)got[i];
                    }
                    break;
                }
            }
        }
    }
    return bad;
}

int main(void)
{
    return 0;
}
""".replace("EMU_BATCH_VALUE", str(EMU_BATCH))


_run = run


@pytest.fixture(scope="module")
def checker() -> Path:
    """The checker: ours with the strict flags, CMSIS-DSP's files as the firmware builds them."""
    return build_checker("test-fft", CHECKER, SOURCE, CMSIS_FILES)


def _compare(checker: Path, frames: int, timeout: float) -> str:
    out = _run([str(checker), "compare", str(frames)], timeout=timeout, text=True).stdout
    print(out)
    return str(out)


def test_equals_cmsis_dsp_c_sources_on_millions_of_frames(checker: Path) -> None:
    out = _compare(checker, FRAMES_DEFAULT, timeout=600)
    assert f"checked {FRAMES_DEFAULT} frames: 0 mismatches" in out, out
    kinds = re.findall(r"^(\w+) (\d+) frames: mismatches hann 0 none 0 random 0$", out, re.M)
    assert len(kinds) == 8 and all(int(n) >= FRAMES_DEFAULT // 8 for _, n in kinds), out


@pytest.mark.slow
def test_equals_cmsis_dsp_c_sources_on_tens_of_millions_of_frames(checker: Path) -> None:
    """``FRAMES_SLOW`` more frames, from other random streams than the default run's, one
    checker per core."""
    import os
    import subprocess

    jobs = max(1, min(4, os.cpu_count() or 1))
    each = FRAMES_SLOW // jobs
    procs = [subprocess.Popen([str(checker), "compare", str(each), str(k + 1)], text=True,
                              stdout=subprocess.PIPE) for k in range(jobs)]  # fmt: skip
    outs = [p.communicate(timeout=3600)[0] for p in procs]
    print("".join(outs))
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0 and f"checked {each} frames: 0 mismatches" in out, out
    states = {re.search(r"random state after: (\w+)", out).group(1) for out in outs}  # type: ignore[union-attr]
    assert len(states) == jobs  # each checker saw frames of its own


def _frames(rng: np.random.Generator) -> np.ndarray:
    """Frames for the Python comparison: random at several levels, tones, rails, impulses."""
    n = np.arange(256)
    frames: list[np.ndarray] = [rng.integers(-32768, 32768, 256) >> s for s in range(16)
                                for _ in range(60)]
    for f in rng.uniform(0, 0.5, 300):
        a = rng.uniform(0, 65536)
        frames.append(np.clip(np.round(a * np.sin(2 * np.pi * f * n + rng.uniform(0, 6.3))),
                              -32768, 32767))
    frames += [rng.choice([-32768, 32767, 0], 256) for _ in range(200)]
    frames += [np.full(256, v) for v in (-32768, -32767, -1, 0, 1, 32767)]
    for p in rng.integers(0, 256, 100):
        imp = np.zeros(256)
        imp[p] = rng.choice([-32768, 32767])
        frames.append(imp)
    return np.stack(frames).astype(np.int16)


def test_equals_the_cmsisdsp_python_package(checker: Path) -> None:
    """What the trainer's q15 front end computes (cmsisdsp==1.10.3), frame by frame."""
    import cmsisdsp as dsp
    frames = _frames(np.random.default_rng(7))
    got = np.frombuffer(_run([str(checker), "dump"], input=frames.tobytes()).stdout, "<i2")
    got = got.reshape(len(frames), 258)
    inst = dsp.arm_rfft_instance_q15()
    assert dsp.arm_rfft_init_q15(inst, 256, 0, 1) == 0
    window = frontends.hann_q15(256)
    for i, x in enumerate(frames):
        want = np.asarray(dsp.arm_rfft_q15(inst, dsp.arm_mult_q15(x, window)))[:258]
        np.testing.assert_array_equal(got[i], want, err_msg=f"frame {i}")


def test_hann_table_needs_no_saturation() -> None:
    """es_rfft256_q15 skips arm_mult_q15's __SSAT: fine for every window entry in
    [-32767, 32767] ((s w) >> 15 then stays in int16), which the Hann table is."""
    w = frontends.hann_q15(256).astype(int)
    assert w.min() >= 0 and w.max() <= 32767
    s = np.array([-32768, 32767])
    assert ((s[:, None] * w[None, :]) >> 15).min() >= -32768
    assert ((s[:, None] * w[None, :]) >> 15).max() <= 32767


def test_cmsis_radix4_saturations_cannot_act() -> None:
    """Bounds on every intermediate of CMSIS's 128-point radix-4-by-2 FFT for any int16 input,
    from the twiddles it uses: each __SSAT sums two values whose magnitude stays far below
    2^15, so es_rfft.c computes the sums plainly.

    Complex magnitudes, with floors costing at most 1 per component (sqrt 2 per value): the
    radix-2 step leaves |z| <= 2^14 sqrt 2 (even column) or |W| |xt + i yt| / 2^16 (odd); the
    first radix-4 stage takes z >> 2, adds four and halves (or rotates by W / 2^16 ~ 1/2); the
    second and third stages add two halved pairs."""
    tw = fb.cmsis_q15_table(fb.fetch_cmsis_dsp() / "Source" / "CommonTables" /
                            "arm_common_tables.c", "twiddleCoef_128_q15")
    w_max = max(math.hypot(tw[2 * i], tw[2 * i + 1]) for i in range(96)) / 65536
    slop = math.sqrt(2)
    radix2 = max(2**14 * math.sqrt(2), w_max * 32767 * math.sqrt(2) + slop)
    stage1_in = radix2 / 4 + slop
    stage1_out = max(4 * stage1_in / 2, 4 * stage1_in * w_max) + slop
    stage2_sum = 2 * stage1_out                      # the __SSAT arguments of stage 2
    stage2_out = max(4 * stage1_out / 4, 2 * stage1_out * w_max) + 2 * slop
    stage3_sum = 2 * stage2_out                      # the __SSAT arguments of stage 3
    assert stage2_sum < 32767 and stage3_sum < 32767, (stage2_sum, stage3_sum)
    assert stage3_sum < 24000  # far below: the bound is not close to the edge


def test_split_tables_hold_the_identities_es_rfft_uses() -> None:
    """es_rfft.c computes bins k and 128 - k from A_re(k), A_im(k) alone."""
    common = fb.fetch_cmsis_dsp() / "Source" / "CommonTables" / "arm_common_tables.c"
    a = fb.cmsis_q15_table(common, "realCoefAQ15")[::64]  # stride 32 pairs: (re, im) at 64 k
    a_im = fb.cmsis_q15_table(common, "realCoefAQ15")[1::64]
    b = fb.cmsis_q15_table(common, "realCoefBQ15")[::64]
    b_im = fb.cmsis_q15_table(common, "realCoefBQ15")[1::64]
    assert len(a) == 128
    for k in range(1, 128):
        assert b_im[k] == -a_im[k] and a[k] == a[128 - k] and a_im[k] == -a_im[128 - k], k
        assert k == 64 or b[k] == 32768 - a[k], k
    assert b[64] == 32767  # the one exception, computed directly
    t = fb.rfft_tables(fb.fetch_cmsis_dsp())
    assert t.split == [v for k in range(1, 64) for v in (a[k], a_im[k])]
    assert t.middle == [a[64], a_im[64], b[64], b_im[64]]


@pytest.mark.usefixtures("arm_toolchain")
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
def test_cross_build_needs_no_helper_and_no_cmsis(tmp_path: Path, cpu: str) -> None:
    """Only MULS, shifts and adds: no libgcc call, no CMSIS-DSP; on the M0+ the C file calls
    nothing but the assembly passes, which call nothing."""
    m0_passes = ["es_rfft_m0_radix2", "es_rfft_m0_split", "es_rfft_m0_stage1",
                 "es_rfft_m0_stage2", "es_rfft_m0_stage3"]
    for opt in ("-O2", "-Os"):
        undefined = {}
        for src in (SOURCE, CORE / "es_rfft_m0.c"):
            obj = tmp_path / (src.stem + ".o")
            _run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", opt,
                  *STRICT, "-I", str(CORE), "-c", str(src), "-o", str(obj)])
            nm = _run(["arm-none-eabi-nm", "-u", str(obj)], text=True).stdout.split()
            undefined[src.name] = [s for s in nm if s != "U"]
        assert undefined["es_rfft.c"] == (m0_passes if cpu == "cortex-m0plus" else []), undefined
        assert undefined["es_rfft_m0.c"] == [], undefined


@pytest.fixture(scope="module")
def m0_checker() -> Path:
    """The emulated checker: es_rfft (its Thumb-1 assembly passes) and CMSIS-DSP for the M0+."""
    return build_checker("test-fft-m0", EMU_CHECKER, [SOURCE, CORE / "es_rfft_m0.c"], CMSIS_FILES,
                         cross=["--specs=nosys.specs", "-Wl,--gc-sections", "-Wl,--undefined=es_check_batch"])


@pytest.mark.usefixtures("arm_toolchain")
def test_cortex_m0_assembly_equals_cmsis_dsp_in_the_emulator(checker: Path, m0_checker: Path) -> None:
    """The code the RP2040 runs: es_rfft_m0.c's passes, cross-compiled, in unicorn, against
    CMSIS-DSP cross-compiled into the same image, on the checker's frames of every kind."""
    frames = np.frombuffer(_run([str(checker), "frames", str(EMU_FRAMES)]).stdout, "<i2")
    frames = frames.reshape(EMU_FRAMES, 2, 256)
    machine = cm0plus.Machine(cm0plus.ElfImage(m0_checker))
    buf = machine.image.symbol("es_check_in").addr
    # the Hann frames take the assembly path: its passes run
    machine.write(buf, frames[:1].tobytes())
    bad, trace, _ = machine.call("es_check_batch", 1)
    assert bad == 0
    ran = {machine.where(int(a)).split("+")[0] for a in np.unique(trace)}
    passes = {"es_rfft_m0_radix2", "es_rfft_m0_stage1", "es_rfft_m0_stage2",
              "es_rfft_m0_stage3", "es_rfft_m0_split"}
    assert passes <= ran, ran
    for start in range(0, EMU_FRAMES, EMU_BATCH):
        machine.write(buf, frames[start : start + EMU_BATCH].tobytes())
        bad, _, _ = machine.call("es_check_batch", EMU_BATCH, trace=False)
        first = np.frombuffer(machine.read(machine.image.symbol("es_check_first").addr, 16), "<u4")
        assert bad == 0, f"frames {start}..: {bad} mismatches, first (frame, variant, index, " \
                         f"CMSIS << 16 | ours) {first.tolist()}"
