"""The device application (firmware/core/es_app.c) and the detector policy compiled into a model.

* es_host drives the application through its port interface (EsPort: lines out, command bytes
  in, a fake clock of +1 ms per reading) with canned audio and commands; every line it writes is
  checked, byte for byte, against what the protocol, the scores and the Python detector say.
* The board glue (firmware/board/main.c) compiles, -Werror, against declarations of the pico-sdk
  functions it calls (firmware/board/sdk_decls) with gcc and arm-none-eabi-gcc.
* The transfer-learned alarm bundle (labels [background, smoke_alarm], one sigmoid output),
  compiled with its policy, runs on pico_sim with no option: silence, speech and music give no
  detection at all; the smoke alarm is detected at the bundle's threshold; and the DET lines are
  exactly what earshot.detector makes of the same SCORES with the policy the daemon computes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from earshot import protocol as P
from earshot.detector import Detector, bundle_policy, device_policy, threshold_level
from earshot.wavio import write_wav
from trainer import firmware_build as fb

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
BLOCK = 512
TEST_LABELS = ("background", "tone")


@pytest.fixture(scope="module")
def es_host() -> Path:
    return fb.host_build(sanitize=True).es_host


def tone_wav(path: Path) -> Path:
    rng = np.random.default_rng(1)
    t = np.arange(RATE * 4) / RATE
    x = 0.01 * rng.standard_normal(len(t))
    on = (t >= 1.0) & (t < 2.0)
    x[on] += 0.5 * np.sin(2 * np.pi * 1000 * t[on])
    write_wav(path, x)
    return path


def test_policy_stand_in_model_states_is_what_bundle_policy_gives() -> None:
    """The stand-in test model's hand-written policy is the one bundle_policy computes for it
    (its comment names the call)."""
    pol = device_policy(bundle_policy(TEST_LABELS, "softmax", {"background": 0.7, "tone": 0.7},
                                      ignore=["background"], average_window_ms=1000, min_count=3))
    src = (ROOT / "firmware/host/test_model/es_test_model.c").read_text()
    levels = [int(v) for v in re.search(r"THRESHOLDS\[\] = \{(.*?)\}", src)[1].replace("u", "").split(",")]
    assert levels == [threshold_level(t) for t in pol.thresholds] == [180, 180]
    assert "ignore_mask = 0x1u" in src and pol.ignore == frozenset({"background"})
    assert f".average_window_ms = {pol.average_window_ms}u" in src
    assert f".min_count = {pol.min_count}u" in src and f".suppression_ms = {pol.suppression_ms}u" in src


def expected_lines(trace: list[tuple[int, tuple[int, ...]]], pcm: np.ndarray,
                   raw_blocks: range, status_ms: int) -> list[str]:  # fmt: skip
    """What the application must write for es_host's run below, from first principles."""
    hello = P.Hello("0.2.0", "host", "0000000000000001", "0" * 64, TEST_LABELS, RATE, "detect")
    det = Detector(device_policy(bundle_policy(
        TEST_LABELS, "softmax", {"background": 0.7, "tone": 0.7}, ignore=["background"],
        average_window_ms=1000, min_count=3)))  # fmt: skip
    out = [hello, P.Err("bad_cmd", "unknown command")]
    scores = iter(trace)
    last_status, busy, seq = 0, 0, 0
    for b in range(len(pcm) // BLOCK):
        if b == raw_blocks.start:
            out += [P.Ok("raw"), P.Hello(**{**hello.__dict__, "mode": "raw"})]
        if b == raw_blocks.stop:
            out += [P.Ok("detect"), hello]
        t = (b + 1) * 32
        if b in raw_blocks:
            for half in (0, 256):
                out.append(P.Audio(seq, pcm[b * BLOCK + half:b * BLOCK + half + 256].tobytes()))
                seq += 1
        else:
            st, q = next(scores)
            assert st == t
            out.append(P.Scores(t, q))
            hit = det.update(t, [v / 256 for v in q])
            if hit is not None:
                milli = int(hit.score * 1000 + 0.5 + 1e-9)  # thousandths, rounded half up
                out.append(P.Det(t, hit.label, min(1000, milli) / 1000))
        busy += 1000  # the fake clock: one block = 1 ms
        if t - last_status >= status_ms:
            cpu = min(100, busy * 100 // ((t - last_status) * 1000))
            out.append(P.Status(t, 1000, cpu, 0, "raw" if b in raw_blocks else "detect"))
            last_status, busy = t, 0
    return [P.format_message(m) for m in out]


def test_the_application_through_its_port_writes_exactly_these_lines(es_host, tmp_path) -> None:
    wav = tone_wav(tmp_path / "tone.wav")
    lines, trace = tmp_path / "lines.txt", tmp_path / "trace.txt"
    proc = fb.run_host(es_host, "--lines", str(lines), "--trace", str(trace), "--status-ms", "1000",
                       "--command", "0:ES1 CMD bogus", "--command", "60:ES1 CMD mode=raw",
                       "--command", "63:ES1 CMD mode=detect", str(wav))  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [list(map(int, x.split())) for x in trace.read_text().splitlines()]
    import scipy.io.wavfile

    pcm = scipy.io.wavfile.read(wav)[1].astype("<i2")  # the samples as the application got them
    want = expected_lines([(r[0], tuple(r[1:])) for r in rows], pcm, range(60, 63), 1000)
    got = lines.read_text().splitlines(keepends=True)
    assert got == want
    assert sum(x.startswith("ES1 DET") for x in got) == 1  # the tone, once
    assert sum(x.startswith("ES1 AUD") for x in got) == 6


@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_board_glue_compiles_against_the_sdk_signatures(cc, tmp_path) -> None:
    """main.c against firmware/board/sdk_decls (the pico-sdk 2.x signatures it calls), with the
    firmware's own warnings as errors. Compile only: nothing here links or runs the board."""
    if shutil.which(cc) is None:
        pytest.fail(f"{cc} is not installed: run scripts/install-system-deps")
    dsp = fb.fetch_cmsis_dsp()
    board = ROOT / "firmware" / "board"
    cmd = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion",
           "-Wconversion", "-c", "-o", str(tmp_path / "main.o"),
           "-D__GNUC_PYTHON__", "-DARM_MATH_LOOPUNROLL", "-DCMSISDSP",
           '-DES_BOARD_HEADER="boards/pico.h"', "-DES_MIC_GAIN_Q8=256",
           f"-I{board / 'sdk_decls'}", f"-I{board}", f"-I{ROOT / 'firmware/core'}",
           f"-I{ROOT / 'firmware/host/test_model'}", "-isystem", str(dsp / "Include"),
           str(board / "main.c")]  # fmt: skip
    if cc.startswith("arm"):
        cmd[1:1] = ["-mcpu=cortex-m0plus", "-mthumb"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    syms = subprocess.run(["nm" if cc == "gcc" else "arm-none-eabi-nm", str(tmp_path / "main.o")],
                          capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    for fn in ("es_app_init", "es_app_block", "es_app_poll", "es_app_hello", "dma_claim_unused_channel"):
        assert re.search(rf" U {fn}$", syms, re.M), f"main.c does not call {fn}"
    assert "es_pipeline_push_block" not in syms and "es_proto_" not in syms.replace("es_proto_err", "")


def music(seconds: float, seed: int) -> np.ndarray:
    """A stand-in for music: chords of harmonic notes with attacks, changing every 0.5 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 0.5):
        on = (t >= start) & (t < start + 0.5)
        env = np.exp(-3.0 * (t[on] - start))
        for midi in rng.choice(np.arange(48, 76), size=3, replace=False):
            f = 440.0 * 2 ** ((midi - 69) / 12)
            for k, a in ((1, 1.0), (2, 0.5), (3, 0.25)):
                out[on] += a * env * np.sin(2 * np.pi * f * k * t[on])
    return (0.1 * out / np.sqrt(np.mean(out**2))).astype(np.float32)


@pytest.fixture(scope="module")
def alarm_sim(alarm_bundles, tmp_path_factory) -> tuple[Path, Path]:
    """pico_sim built with the rp2040 alarm bundle compiled by `earshot-train compile`."""
    bundle = alarm_bundles["rp2040"]
    out = tmp_path_factory.mktemp("alarm") / "c"
    proc = subprocess.run([sys.executable, "-m", "trainer", "compile", str(bundle), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "never fire: background" in proc.stdout
    build = fb.host_build(out, sanitize=False)
    fb._run(["cmake", "--build", str(build.folder), "--target", "pico_sim", "-j", "2"])
    return build.folder / "pico_sim", out


@pytest.mark.slow
def test_alarm_bundle_on_pico_sim_fires_only_for_the_alarm_with_the_daemons_policy(
    alarm_bundles, alarm_sim, tmp_path
) -> None:
    from daemon.config import DetectorSettings
    from daemon.streaming import detector_config
    from earshot.bundle import load_bundle
    from trainer.synth import make_stream

    sim, c_dir = alarm_sim
    bundle = load_bundle(alarm_bundles["rp2040"])
    policy = device_policy(detector_config(bundle, DetectorSettings()))  # what the daemon runs
    src = (c_dir / "es_model_data.c").read_text()
    levels = [threshold_level(t) for t in policy.thresholds]
    assert f"{{{', '.join(f'{v}u' for v in levels)}}}" in src  # the same numbers in the C
    assert ".ignore_mask = 0x00000001u" in src  # the sigmoid's negative class never fires
    alarm, truth = make_stream(32, 8.0, [(2.0, "smoke_alarm")])
    streams = {
        "silence": make_stream(30, 6.0, [], background="silence")[0],
        "speech": make_stream(31, 8.0, [(1.0, "hello"), (3.0, "kitchen"), (5.5, "weather")])[0],
        "music": music(8.0, 33),
        "alarm": alarm,
    }
    dets = {}
    for name, audio in streams.items():
        wav = tmp_path / f"{name}.wav"
        write_wav(wav, audio)
        run = subprocess.run([str(sim), "--speed", "0", str(wav)], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stderr.decode()
        msgs = [P.parse_line(x) for x in run.stdout.decode().splitlines()]
        det = Detector(policy)  # the same scores through earshot/detector.py
        py = [(h.t_ms, h.label) for m in msgs if isinstance(m, P.Scores)
              if (h := det.update(m.t, m.values)) is not None]  # fmt: skip
        dets[name] = [m for m in msgs if isinstance(m, P.Det)]
        assert [(d.t, d.label) for d in dets[name]] == py, name
    assert all(d.label != "background" for ds in dets.values() for d in ds), dets
    assert dets["silence"] == [] and dets["speech"] == [] and dets["music"] == [], dets
    hits = [d for d in dets["alarm"] if truth[0]["onset_s"] * 1000 < d.t <= (truth[0]["end_s"] + 1) * 1000]
    assert hits and hits[0].label == "smoke_alarm", dets["alarm"]
    assert hits[0].score >= bundle.thresholds["smoke_alarm"]


SRAM = (0x2000_0000, 0x2004_2000)  # the RP2040's 264 KB of SRAM (banks + scratch X/Y)
FLASH = (0x1000_0000, 0x1100_0000)  # QSPI flash behind the XIP cache
HOT_PATH = ("es_pipeline_push_block", "es_frontend_push_block", "es_frontend_quantize",
            "es_rfft256_q15", "es_detector_update", "es_model_invoke_stream")  # fmt: skip


def test_the_hot_path_runs_from_sram_in_the_board_placement(arm_toolchain) -> None:
    """es_image_ram (the core + model linked with the board's copy_to_ram placement,
    firmware/cmake/rp2040_copy_to_ram.ld): every function and every constant table (weights,
    CMSIS-DSP twiddles, window) has its run address in SRAM and its load address in flash, so
    the cycle model's zero wait states hold; and the board build asks the SDK for that placement."""
    build = fb.cross_build()
    fb._run(["cmake", "--build", str(build.folder), "--target", "es_image_ram", "-j", "2"])
    elf = build.folder / "es_image_ram.elf"
    heads = fb._run(["arm-none-eabi-objdump", "-h", str(elf)])
    sections = {m[1]: (int(m[3], 16), int(m[4], 16), int(m[2], 16))
                for m in re.finditer(r"^\s*\d+\s+(\S+)\s+([0-9a-f]{8})\s+([0-9a-f]{8})\s+([0-9a-f]{8})",
                                     heads, re.M)}  # fmt: skip
    vma, lma, size = sections[".text"]
    assert SRAM[0] <= vma and vma + size <= SRAM[1] and FLASH[0] <= lma < FLASH[1]
    syms = fb._run(["arm-none-eabi-nm", "-S", str(elf)])
    placed = {m[3]: int(m[1], 16) for m in re.finditer(r"^([0-9a-f]{8}) [0-9a-f]{8} ([TtRrDd]) (\S+)$", syms, re.M)}
    assert set(HOT_PATH) <= set(placed)
    assert all(SRAM[0] <= a < SRAM[1] for a in placed.values()), {
        k: hex(a) for k, a in placed.items() if not SRAM[0] <= a < SRAM[1]}
    cmake = (ROOT / "firmware/board/CMakeLists.txt").read_text()
    assert "pico_set_binary_type(earshot copy_to_ram)" in cmake


def test_board_and_simulator_share_one_application(es_host, tmp_path) -> None:
    """pico_sim's and the board's object code call es_app for everything they say; neither
    formats a line or runs the pipeline itself."""
    build = es_host.parent
    fb._run(["cmake", "--build", str(build), "--target", "pico_sim", "-j", "2"])
    sim_obj = build / "CMakeFiles" / "pico_sim.dir" / "host" / "pico_sim.c.o"
    board_obj = tmp_path / "main.o"
    dsp = fb.fetch_cmsis_dsp()
    board = ROOT / "firmware" / "board"
    fb._run(["gcc", "-std=c99", "-c", "-o", str(board_obj), "-D__GNUC_PYTHON__", "-DCMSISDSP",
             '-DES_BOARD_HEADER="boards/pico.h"', "-DES_MIC_GAIN_Q8=256", f"-I{board / 'sdk_decls'}",
             f"-I{board}", f"-I{ROOT / 'firmware/core'}", f"-I{ROOT / 'firmware/host/test_model'}",
             "-isystem", str(dsp / "Include"), str(board / "main.c")])  # fmt: skip
    for obj in (sim_obj, board_obj):
        undefined = set(re.findall(r" U (\w+)$", fb._run(["nm", str(obj)]), re.M))
        assert {"es_app_init", "es_app_hello", "es_app_poll", "es_app_block"} <= undefined, obj
        own = {u for u in undefined if u.startswith(("es_proto_", "es_pipeline_", "es_detector_"))}
        assert own <= {"es_proto_err"}, (obj, own)  # main.c: the one line before es_app exists


def test_compile_options_change_the_emitted_policy_and_bad_ones_name_the_bundle(
    alarm_bundles, tmp_path
) -> None:
    bundle = alarm_bundles["rp2040"]
    run = [sys.executable, "-m", "trainer", "compile", str(bundle), "--out", str(tmp_path / "c")]
    ok = subprocess.run([*run, "--threshold-offset", "0.2", "--window-ms", "640", "--min-count",
                         "4", "--suppression-ms", "900", "--ignore", "smoke_alarm"],
                        capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    src = (tmp_path / "c" / "es_model_data.c").read_text()
    from earshot.bundle import load_bundle

    thr = load_bundle(bundle).thresholds  # + 0.2, rounded up to levels of 1/256
    levels = [threshold_level(min(1.0, thr.get(x, 0.5) + 0.2)) for x in ("background", "smoke_alarm")]
    assert f"= {{{levels[0]}u, {levels[1]}u}};" in src
    for field in (".ignore_mask = 0x00000003u", ".average_window_ms = 640u", ".min_count = 4u",
                  ".suppression_ms = 900u"):  # fmt: skip
        assert field in src
    bad = subprocess.run([*run, "--ignore", "smoke_alarn"], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)  # fmt: skip
    assert bad.returncode != 0
    assert str(bundle) in bad.stderr and "smoke_alarn" in bad.stderr
