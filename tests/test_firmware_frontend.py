"""The firmware's q15 front end in C against the trainer's Python q15 front end: equal to the bit.

Everything goes through the real host program (``es_host``, built with ASan/UBSan): a WAV in,
the rolling spectrogram after the last block out (``--features``), the same computed from
scratch on the last second (``--scratch``), and the int8 model input (``--input``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from earshot import audio, frontends, quant, wavio
from trainer import firmware_build as fb

FRONTEND_H = fb.FIRMWARE / "core" / "es_frontend.h"
BLOCK = 512
CLIP = 16000


@pytest.fixture(scope="module")
def es_host() -> Path:
    return fb.host_build(sanitize=True).es_host


def expected_features(pcm: np.ndarray) -> np.ndarray:
    """What the firmware should hold after its last whole block: Q15FrontEnd.native of the last
    second of the processed stream, with silence before the stream's first sample."""
    used = pcm[: len(pcm) // BLOCK * BLOCK]
    clip = np.concatenate([np.zeros(CLIP, np.int16), used])[-CLIP:]
    return frontends.Q15FrontEnd().native(clip)


def c_features(es_host: Path, pcm: np.ndarray, tmp_path: Path,
               *extra: str) -> tuple[np.ndarray, ...]:
    wav = tmp_path / "in.wav"
    wavio.write_wav(wav, pcm.astype(np.int16))
    outs = [tmp_path / n for n in ("features.bin", "scratch.bin", "input.bin")]
    proc = fb.run_host(es_host, *extra, "--features", str(outs[0]), "--scratch", str(outs[1]),
                       "--input", str(outs[2]), str(wav))
    assert proc.returncode == 0, proc.stderr.decode()
    feat = np.fromfile(outs[0], "<i2").reshape(124, 129)
    scratch = np.fromfile(outs[1], "<i2").reshape(124, 129)
    inp = np.fromfile(outs[2], np.int8).reshape(124, 129)
    return feat, scratch, inp


def assert_bit_exact(es_host: Path, pcm: np.ndarray, tmp_path: Path, *extra: str) -> None:
    feat, scratch, inp = c_features(es_host, pcm, tmp_path, *extra)
    want = expected_features(pcm)
    bad = np.argwhere(feat != want)
    assert bad.size == 0, f"{len(bad)} bins differ, first (frame, bin) {bad[0].tolist()}: " \
        f"C {feat[tuple(bad[0])]} vs Python {want[tuple(bad[0])]}"
    np.testing.assert_array_equal(scratch, want)  # from scratch == streaming == Python
    # the test model's input quantisation: scale 4.0, zero point -128
    np.testing.assert_array_equal(inp, quant.q15_to_int8(want, 4.0, -128))


def test_generated_tables_are_current() -> None:
    """The committed headers are what their generators produce from Python / CMSIS-DSP."""
    assert fb.HANN_HEADER.read_text() == fb.hann_header_text()
    assert fb.RFFT_HEADER.read_text() == fb.rfft_header_text(fb.fetch_cmsis_dsp())
    # and the Hann table in the header is the Python one, number for number
    text = fb.HANN_HEADER.read_text()
    body = text[text.index("{") + 1 : text.index("}")]
    c_table = [int(v) for v in body.replace("\n", " ").split(",") if v.strip()]
    assert c_table == frontends.hann_q15(256).tolist()


@pytest.mark.parametrize(
    "kind,seconds",
    [
        ("noise", 2.0),         # 62 whole blocks + a partial one that must be ignored
        ("fullscale", 1.5),     # uniform over the whole int16 range
        ("clipped", 1.25),      # a loud sine clipped at +-32767/-32768
        ("square", 1.0),        # rail-to-rail square wave
        ("short", 0.5),         # less than a second: the zero history shows
        ("silence", 1.1),
    ],
)
def test_random_and_extreme_audio_bit_exact(es_host, tmp_path, kind, seconds) -> None:
    rng = np.random.default_rng(sum(map(ord, kind)))
    n = int(seconds * 16000) + 77
    t = np.arange(n) / 16000.0
    if kind == "noise":
        pcm = rng.normal(0, 6000, n)
    elif kind == "fullscale":
        pcm = rng.integers(-32768, 32768, n)
    elif kind == "clipped":
        pcm = 90000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 500, n)
    elif kind == "square":
        pcm = np.where(np.sin(2 * np.pi * 1000 * t) >= 0, 32767, -32768)
    elif kind == "short":
        pcm = rng.normal(0, 3000, n)
    else:
        pcm = np.zeros(n)
    pcm = np.clip(np.round(pcm), -32768, 32767).astype(np.int16)
    assert_bit_exact(es_host, pcm, tmp_path)


def test_tones_and_sweep_bit_exact(es_host, tmp_path) -> None:
    t = np.arange(int(2.3 * 16000)) / 16000.0
    tone = 0.3 * np.sin(2 * np.pi * 3100 * t) + 0.1 * np.sin(2 * np.pi * 6200 * t)
    sweep = 0.6 * np.sin(2 * np.pi * (100 * t + 1700 * t**2))  # 100 Hz .. ~7.9 kHz
    for i, x in enumerate((tone, sweep)):
        sub = tmp_path / str(i)
        sub.mkdir()
        assert_bit_exact(es_host, audio.to_int16(x), sub)


@pytest.mark.usefixtures("espeak")
def test_speech_bit_exact(es_host, tmp_path) -> None:
    """Real speech: espeak-ng at 22.05 kHz, resampled to 16 kHz by earshot.wavio."""
    raw = tmp_path / "speech22k.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(raw), "-a", "180", "turn on the kitchen light, then stop"],
        check=True, capture_output=True, timeout=60,
    )
    pcm = audio.to_int16(wavio.read_wav(raw))
    assert len(pcm) > CLIP
    assert_bit_exact(es_host, pcm, tmp_path)


def test_synthetic_set_bit_exact(es_host, tmp_path, synth_root) -> None:
    """Clips from the built-in synthetic data set (keywords and alarm), joined into one stream."""
    wavs = sorted(synth_root.rglob("*.wav"))
    assert wavs, f"no WAVs under {synth_root}"
    pick = wavs[:: max(1, len(wavs) // 5)][:5]
    pcm = np.concatenate([audio.to_int16(wavio.read_wav(w)) for w in pick])
    assert_bit_exact(es_host, pcm, tmp_path)


def test_streaming_across_many_block_counts(es_host, tmp_path) -> None:
    """Every ending position of the rolling window within two seconds lands on the same bits."""
    rng = np.random.default_rng(7)
    pcm = np.clip(rng.normal(0, 9000, 2 * CLIP), -32768, 32767).astype(np.int16)
    for blocks in (1, 3, 31, 32, 33, 47):
        sub = tmp_path / f"b{blocks}"
        sub.mkdir()
        assert_bit_exact(es_host, pcm[: blocks * BLOCK], sub)


def test_streaming_with_misaligned_blocks(es_host, tmp_path) -> None:
    """Blocks at a non-word-aligned address (every other one) take the front end's copy path
    instead of reading the block in place: the same bits, across switches between the two."""
    rng = np.random.default_rng(8)
    pcm = np.clip(rng.normal(0, 9000, 2 * CLIP), -32768, 32767).astype(np.int16)
    for blocks in (1, 2, 33, 48):
        sub = tmp_path / f"b{blocks}"
        sub.mkdir()
        assert_bit_exact(es_host, pcm[: blocks * BLOCK], sub, "--misalign")


@pytest.mark.parametrize("scale", [0.003, 0.05, 0.37, 1.0, 2.5, 17.0, 123.4, 4096.0])
@pytest.mark.parametrize("zero_point", [-128, -3, 40])
def test_int8_input_equals_q15_to_int8(es_host, scale, zero_point) -> None:
    """Every int16 value, at scales far below 1 (the seed firmware's integer divider, docs/architecture.md, gave 0 there) and above."""
    mag = np.arange(-32768, 32768, dtype=np.int16)
    mult, shift = quant.quantize_multiplier(1.0 / scale)
    proc = fb.run_host(es_host, "--quantize", f"{mult},{shift},{zero_point}",
                       stdin=mag.astype("<i2").tobytes())
    assert proc.returncode == 0, proc.stderr.decode()
    got = np.frombuffer(proc.stdout, np.int8)
    want = quant.q15_to_int8(mag, scale, zero_point)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"mag {mag[bad[0]]}: C {got[bad[0]]}, Python {want[bad[0]]}"
    # and it is the quantisation a user expects: round(mag / scale) + zero_point, saturated
    # (the seed firmware's integer divider made every small scale a division by zero)
    ideal = np.clip(np.round(mag / scale) + zero_point, -128, 127)
    assert np.abs(got.astype(np.int64) - ideal).max() <= 1


def test_quantize_rejects_bad_multiplier(es_host) -> None:
    proc = fb.run_host(es_host, "--quantize", "12345,0,0", stdin=b"\x01\x00")
    assert proc.returncode == 1
    assert b"ES_ERR_ARG" in proc.stderr


EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16).astype("<i2").tobytes()
# scales where the widest bucket is tightest (just below powers of two and 1.5 x them), the
# test models' and the bench's, extremes, and step widths of 1 and 2 with jumps of more than 1
TABLE_SCALES = [2.0**-16 * 1.01, 0.003, 0.05, 0.37, 0.99, 1.0, 1.01, 1.4999, 1.5, 1.99, 2.0,
                2.5, 3.0, 3.9, 3.99, 4.0, 4.2, 7.9999, 15.99, 17.0, 31.7, 63.99, 123.4,
                255.9, 4096.0, 32767.0, 70000.0]


def quantize_all(es_host: Path, mode: str, spec: str) -> tuple[np.ndarray, str]:
    proc = fb.run_host(es_host, mode, spec, stdin=EVERY_INT16)
    assert proc.returncode == 0, proc.stderr.decode()
    return np.frombuffer(proc.stdout, np.int8), proc.stderr.decode()


@pytest.mark.parametrize("scale", TABLE_SCALES)
@pytest.mark.parametrize("zero_point", [-128, -1, 0, 90, 127])
def test_quant_table_equals_reference_on_every_int16(es_host, scale, zero_point) -> None:
    """es_quant_table_apply (what the pipeline runs) == es_frontend_quantize == q15_to_int8 on
    all 65536 magnitudes; and it uses a table (not the per-value fallback) at every such scale."""
    mult, shift = quant.quantize_multiplier(1.0 / scale)
    spec = f"{mult},{shift},{zero_point}"
    ref, _ = quantize_all(es_host, "--quantize", spec)
    got, shape = quantize_all(es_host, "--quantize-table", spec)
    mag = np.arange(-32768, 32768)
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, f"{shape}: mag {mag[bad[0]]}: table {got[bad[0]]}, reference {ref[bad[0]]}"
    np.testing.assert_array_equal(got, quant.q15_to_int8(mag.astype(np.int16), scale, zero_point))
    assert shape.startswith("table buckets"), shape


def test_quant_table_fits_every_scale() -> None:
    """Over a fine sweep of input scales 2^-16 .. 2^15 the table never needs more buckets than
    ES_QTABLE_MAX (the per-value fallback would be exact but slow); computed in Python with
    the same rule as es_quant_table_init, from q15_to_int8 itself."""
    limit = int(re.search(r"#define ES_QTABLE_MAX (\d+)", FRONTEND_H.read_text()).group(1))
    mag = np.arange(0, 32768, dtype=np.int16)
    most = 0
    for scale in 2.0 ** np.linspace(-16, 15, 1500):
        for zp in (-128, 0):
            most = max(most, table_buckets(quant.q15_to_int8(mag, scale, zp)))
    assert 0 < most <= limit, most


def table_buckets(q: np.ndarray) -> int:
    """Buckets es_quant_table_init would use for the values q over m = 0..32767."""
    steps = np.flatnonzero(np.diff(q.astype(np.int64))) + 1
    if steps.size == 0:
        return 0
    k = 8
    if np.any(np.diff(q.astype(np.int64))[steps - 1] != 1):
        k = 0
    elif steps.size > 1:
        k = min(k, int((steps[:-1] ^ steps[1:]).min()).bit_length() - 1)
    return int(steps[-1] >> k) + 1


@pytest.mark.parametrize(("scale", "zero_point"), [
    (float(np.log1p(quant.MAG_MAX)) / 255, -128),  # what training gives a q15log model
    (0.02, -128), (0.05, -20), (0.5, 0), (0.01, 100),  # finer steps (many clamp at 127), coarser
])  # fmt: skip
def test_log_input_equals_the_python_table_on_every_int16(es_host, tmp_path, scale,
                                                          zero_point) -> None:
    """es_log_quant_apply with the compiler's breakpoints == log_mag_to_int8 on every int16
    (negative magnitudes, which the FFT never gives, as 0); and the table is the rounding a
    user expects of ln(1 + m)."""
    table = quant.log_mag_int8_table(scale, zero_point)
    starts, values = quant.log_mag_breakpoints(table)
    assert 1 <= len(starts) <= 256 and starts[0] == 0 and np.all(np.diff(starts.astype(int)) > 0)
    bp = tmp_path / "log.bin"
    bp.write_bytes(np.uint16(len(starts)).astype("<u2").tobytes()
                   + starts.astype("<u2").tobytes() + values.astype(np.int8).tobytes())  # fmt: skip
    proc = fb.run_host(es_host, "--quantize-log", str(bp), stdin=EVERY_INT16)
    assert proc.returncode == 0, proc.stderr.decode()
    got = np.frombuffer(proc.stdout, np.int8)
    mag = np.arange(-32768, 32768)
    want = quant.log_mag_to_int8(mag, table)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"mag {mag[bad[0]]}: C {got[bad[0]]}, Python {want[bad[0]]}"
    m = np.arange(quant.MAG_MAX + 1)
    ideal = np.clip(np.round(np.log1p(m) / scale) + zero_point, -128, 127)
    assert np.abs(table.astype(np.int64) - ideal).max() <= 1
    bp.write_bytes(b"\x00\x00")  # no breakpoints: refused, named
    proc = fb.run_host(es_host, "--quantize-log", str(bp), stdin=b"\x01\x00")
    assert proc.returncode == 1 and str(bp).encode() in proc.stderr
