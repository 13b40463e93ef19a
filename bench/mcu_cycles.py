"""RP2040 cycles, flash and RAM of the firmware core, per MCU architecture, in an emulator.

    .venv/bin/python bench/mcu_cycles.py [--bundle DIR ...] [--opt O2 --opt Os] [--wav FILE]

For every model (default: each of ``trainer.models.MCU_ARCHITECTURES``, untrained, int8,
compiled with ``earshot-train compile``; or trained RP2040 bundles given with ``--bundle``) and
every optimisation level (``-O2`` and ``-Os``):

1. Cross-compile core + model for Cortex-M0+ (``arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb``)
   into the bare-metal image ``es_image.elf`` (firmware/host/es_size_image.c, ``--gc-sections``).
2. Load it into unicorn (bench/cm0plus.py), run its ``main`` (pipeline init + 4 silent blocks),
   feed 1 s of real audio block by block through ``es_image_run`` (= es_pipeline_push_block),
   and trace the last block instruction by instruction.
3. Split that block into front end (4 frames: es_frontend_push_block, the int8 quantisation and
   the input shift), inference (es_model_invoke_stream: the steady state, where streamed ops
   compute only their newest rows, see docs/compiler.md) and the rest (detector, glue); count
   instructions and estimate cycles with the Cortex-M0+ model; milliseconds at 125 MHz.
4. Check the emulated run against the host build on the same stream: the int8 model input equals
   ``es_host --input``, and the model's streamed int8 output equals the host-compiled model's
   whole-model (es_model_invoke) output on that input.
5. Flash (text + data) and RAM (data + bss, which holds the arena, + measured stack peak);
   soft-float helpers linked and called per block.

Ratios compare with the seed firmware (TFLM: 24 ms inference, 32 ms hard limit per block, 128 KB
arena) and the budget (6 ms per block, 64 KB flash, 48 KB RAM), both in docs/architecture.md. Prints tables and saves
bench/results/mcu_cycles.json. Exit 1 if the emulated output differs from the host build's.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import cm0plus  # noqa: E402
from trainer import firmware_build as fb  # noqa: E402
from trainer.compiler import CompiledModel  # noqa: E402
from trainer.compiler.host import EsModelInfo32, HostModelError  # noqa: E402

_LOGGER = logging.getLogger(__name__)

RESULTS = REPO / "bench" / "results" / "mcu_cycles.json"
WORK = REPO / "build" / "bench-mcu"
OPTS = ("O2", "Os")
"""Optimisation levels compared."""
SEED = {"inference_ms": 24.0, "block_limit_ms": 32.0, "arena_bytes": 128 * 1024}
"""The seed firmware (TFLM + AllOpsResolver): inference per block, hard limit, arena."""
BUDGET = {"block_ms": 6.0, "flash_bytes": 64 * 1024, "ram_bytes": 48 * 1024}
"""The budget (docs/architecture.md): front end + inference per 512-sample block, flash of core + model, RAM peak."""
FRONT_END_CALLS = ("es_frontend_push_block", "es_frontend_quantize", "es_quant_table_apply",
                   "es_log_quant_apply", "quantize", "memmove", "shift_input")
"""What es_pipeline_push_block calls to turn a block into the model's new input rows."""
INFERENCE_CALL = "es_model_invoke_stream"
"""What es_pipeline_push_block calls for the model on every block after the first."""
WARM_BLOCKS = 4
"""Silent blocks es_size_image.c's main pushes before ours."""
AUDIO_BLOCKS = 32
"""Audio blocks fed after them (1.02 s, so the whole model input is audio)."""
SOFT_FLOAT = re.compile(
    r"^__(aeabi_(f|d|cf|cd|[iu]l?2[fd]|l2[fd])\w*|\w+[sd]f[23]|fix\w*[sd]f\w*|float\w*[sd]f)$")
"""libgcc's soft-float entry points (__aeabi_fadd, __aeabi_cfcmple, __mulsf3, __fixsfsi, ...)."""


@dataclass(frozen=True)
class Settings:
    """What to benchmark."""

    bundles: tuple[Path, ...]
    """Trained RP2040 bundles; empty: untrained models of every MCU architecture."""
    opts: tuple[str, ...]
    """gcc optimisation levels without the dash (O2, Os)."""
    wav: Path | None
    """Audio to feed; None: a phrase spoken by espeak-ng."""
    out: Path
    """JSON results file."""


@dataclass
class Phase:
    """Instructions and cycles of one part of the block."""

    instructions: int
    """Executed instructions."""
    cycles: int
    """Estimated Cortex-M0+ cycles."""
    ms: float
    """Milliseconds at 125 MHz."""


@dataclass
class Result:
    """One model at one optimisation level."""

    model: str
    """Architecture (or bundle) name."""
    opt: str
    """Optimisation level."""
    front_end: Phase
    """4 frames: FFTs, magnitudes, int8 quantisation, input shift."""
    inference: Phase
    """es_model_invoke_stream (the steady-state block)."""
    other: Phase
    """Detector and loop glue."""
    total: Phase
    """The whole es_pipeline_push_block of one block."""
    by_kind: dict[str, int]
    """Executed instructions per class over the block."""
    calls: dict[str, Phase]
    """Each call es_pipeline_push_block made (callee and everything below it)."""
    flash_bytes: int
    """text + data of the linked image."""
    model_flash_bytes: int
    """Of which the compiled model (weights, tables, schedule)."""
    ram_bytes: int
    """data + bss + stack peak."""
    static_ram_bytes: int
    """data + bss (pipeline state, arena, CMSIS-DSP instance)."""
    arena_bytes: int
    """The model's planned arena (inside bss)."""
    ram_image_flash_bytes: int
    """Board placement (copy_to_ram, es_image_ram.elf): bytes stored in flash (text + data)."""
    ram_image_sram_bytes: int
    """Board placement: SRAM used when everything runs from SRAM (text + data + bss + stack)."""
    stack_bytes: int
    """Deepest stack use during the block."""
    streamed_ops: int
    """Ops of the model that compute only their newest output rows per block."""
    soft_float_linked: list[str]
    """Soft-float helpers present in the image."""
    soft_float_reachable: list[str]
    """Soft-float helpers statically reachable (direct calls) from es_image_run."""
    soft_float_calls: dict[str, int]
    """Soft-float helpers called during the block, with call counts."""
    library_calls: dict[str, int]
    """Every other libc/libgcc function called during the block, with call counts."""
    output: list[int]
    """The model's int8 output for the last block."""
    host_output: list[int]
    """The host build's int8 output for the same input."""
    input_matches_host: bool
    """The emulated int8 model input equals es_host --input on the same stream."""
    hot: list[tuple[str, int, int]] = field(default_factory=list)
    """Top functions by cycles in the block (self time): (name, instructions, cycles)."""
    ratios: dict[str, float] = field(default_factory=dict)
    """Against the seed and the budget (docs/architecture.md) (see ratios())."""

    @property
    def exact(self) -> bool:
        return self.input_matches_host and self.output == self.host_output


# ---- inputs -----------------------------------------------------------------------------------


def spoken_audio(work: Path) -> np.ndarray:
    """A phrase spoken by espeak-ng, 16 kHz float32 (the default real audio)."""
    from earshot.wavio import read_wav

    wav = work / "spoken.wav"
    cmd = ["espeak-ng", "-s", "150", "-w", str(wav), "earshot hears a smoke alarm"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise SystemExit(f"error: espeak-ng failed ({e}); pass --wav FILE instead") from e
    return read_wav(wav)


def audio_blocks(audio: np.ndarray, n_blocks: int = AUDIO_BLOCKS) -> np.ndarray:
    """n_blocks x 512 int16 from float audio (zero-padded or cut)."""
    n = n_blocks * 512
    pcm = np.zeros(n, np.int16)
    clip = np.clip(np.round(audio[:n] * 32767.0), -32768, 32767).astype(np.int16)
    pcm[: clip.size] = clip
    return pcm.reshape(n_blocks, 512)


def untrained_models(work: Path, audio: np.ndarray) -> dict[str, CompiledModel]:
    """Every MCU architecture, untrained (fixed seed), int8, compiled to C: name -> model.

    Each runs the RP2040's default front end (``train.DEFAULT_FRONTEND``), except the seed's
    architecture, which keeps the seed's linear ``q15``; the default architecture also runs on
    the other MCU front end ("stream_cnn (q15)"), so both front ends' cost is measured in the same
    run. Cycles depend on the layer shapes, not the weights. The representative set for the int8
    calibration is the features of the audio and of noise at a few levels.
    """
    import keras

    from earshot.frontends import MCU_FRONTENDS, create
    from trainer import compiler, export, models
    from trainer.train import DEFAULT_FRONTEND, choose_clip_max

    default_fe = DEFAULT_FRONTEND["rp2040"]
    runs = [(name, "q15" if name == SEED_ARCH else default_fe) for name in models.MCU_ARCHITECTURES]
    runs += [(models.DEFAULT_ARCH["rp2040"], f) for f in MCU_FRONTENDS if f != default_fe]
    rng = np.random.default_rng(0)
    clips = [audio[:16000]] + [rng.normal(0, s, 16000) for s in (0.003, 0.03, 0.3)]
    labels = [f"class{i}" for i in range(8)]
    out = {}
    for name, fe_name in runs:
        fe = create(fe_name)
        feats = np.stack([fe.features(np.pad(c, (0, 16000 - len(c)))) for c in clips])[..., None]
        keras.utils.set_random_seed(0)
        model = models.build(name, (124, 129, 1), len(labels), feats,
                             choose_clip_max(fe, feats))
        key = name if fe_name == default_fe or name == SEED_ARCH else f"{name} ({fe_name})"
        folder = work / "models" / re.sub(r"\W+", "_", key)
        folder.mkdir(parents=True, exist_ok=True)
        tflite = folder / "model_int8.tflite"
        tflite.write_bytes(export.to_int8_tflite(model, feats))
        out[key] = compiler.compile_tflite(tflite, folder / "c", labels, frontend=fe_name)
    return out


def bundle_models(bundles: tuple[Path, ...], work: Path) -> dict[str, CompiledModel]:
    """Trained bundles compiled to C: '<architecture> (<folder>)' -> model."""
    from trainer import compiler

    out = {}
    for b in bundles:
        manifest = json.loads((Path(b) / "manifest.json").read_text())
        name = f"{manifest.get('architecture', '?')} ({Path(b).name})"
        if name in out:  # bundles of one name (out/a/rp2040, out/b/rp2040): say the folder too
            name = f"{manifest.get('architecture', '?')} ({Path(b).parent.name}/{Path(b).name})"
        folder = work / "bundles" / re.sub(r"\W+", "_", str(Path(b).resolve()))
        out[name] = compiler.compile_bundle(b, folder, "es")
    return out


# ---- builds -----------------------------------------------------------------------------------


def cross_image(model_dir: Path, opt: str) -> tuple[Path, Path]:
    """Build es_image.elf for Cortex-M0+ at -<opt>; returns (elf, map file)."""
    key = re.sub(r"\W+", "_", str(Path(model_dir).resolve()))[-60:]
    folder = WORK / f"m0plus-{opt}" / key
    fb._build(folder, {
        "CMAKE_TOOLCHAIN_FILE": str(fb.TOOLCHAIN),
        "ES_CPU": "cortex-m0plus",
        "ES_MODEL_DIR": str(Path(model_dir).resolve()),
        "CMAKE_BUILD_TYPE": "Release",
        "CMAKE_C_FLAGS_RELEASE": f"-{opt} -DNDEBUG",
        # main inlines es_image_run; keep its out-of-line copy, the entry point we call
        "CMAKE_EXE_LINKER_FLAGS_RELEASE": "-Wl,--undefined=es_image_run",
    }, "es_image")
    fb._run(["cmake", "--build", str(folder), "--target", "es_image_ram", "-j", "2"])
    return folder / "es_image.elf", folder / "es_image.map"


def host_reference(
    compiled: CompiledModel, blocks: np.ndarray, emulated_input: bytes
) -> tuple[bytes, bytes]:
    """(es_host --input after the same stream, host model output for emulated_input)."""
    from earshot.wavio import write_wav

    model_dir = compiled.c_path.parent
    es_host = fb.host_build(model_dir, sanitize=False).es_host
    with tempfile.TemporaryDirectory() as tmp:
        wav, inp = Path(tmp) / "stream.wav", Path(tmp) / "input.bin"
        stream = np.concatenate([np.zeros(WARM_BLOCKS * 512, np.int16), blocks.reshape(-1)])
        write_wav(wav, stream.astype(np.float32) / 32768.0, 16000)
        proc = fb.run_host(es_host, "--input", str(inp), str(wav))
        if proc.returncode != 0:
            raise fb.FirmwareBuildError(f"es_host exited {proc.returncode}: {proc.stderr!r}")
        host_input = inp.read_bytes()
    key = re.sub(r"\W+", "_", str(model_dir.resolve()))[-60:]
    model = compiled.build_host(WORK / "host" / key, sanitize=False)
    try:
        output = model.invoke(np.frombuffer(emulated_input, np.int8))
    except (HostModelError, ValueError) as e:
        raise fb.FirmwareBuildError(f"host build of {compiled.c_path}: {e}") from e
    return host_input, output.tobytes()


# ---- emulation --------------------------------------------------------------------------------


@dataclass
class Emulated:
    """What one emulated block gave."""

    timed: cm0plus.Timed
    """Executed instructions of the traced es_image_run, classified and costed."""
    stack: int
    """Stack bytes used."""
    model_input: bytes
    """The int8 model input es_model_invoke saw."""
    model_output: bytes
    """The int8 output it wrote."""
    arena_bytes: int
    """es_model_info.arena_bytes."""
    streamed_ops: int
    """es_model_info.streamed_ops: ops computing only their newest rows per block."""


def emulate(machine: cm0plus.Machine, blocks: np.ndarray) -> Emulated:
    """main() (init + silent blocks), then every block of audio; the last one traced."""
    image = machine.image
    status, _, _ = machine.call("main", trace=False)
    if status != 0:
        raise cm0plus.EmulationError(f"{image.path}: main returned status {status}")
    block_addr = image.symbol("es_image_block").addr
    info_addr = image.symbol("es_model_info").addr
    info = EsModelInfo32.from_buffer_copy(machine.read(info_addr, ctypes.sizeof(EsModelInfo32)))
    for b, block in enumerate(blocks):
        machine.write(block_addr, block.astype("<i2").tobytes())
        last = b == len(blocks) - 1
        t_ms = (WARM_BLOCKS + b + 1) * 32
        rv, trace, stack = machine.call("es_image_run", t_ms, trace=last,
                                        watch=INFERENCE_CALL if last else None)
        if rv & 0xFF:
            raise cm0plus.EmulationError(f"es_image_run block {b}: status {rv & 0xFF}")
    (in_ptr, out_ptr, *_), = machine.watched
    return Emulated(cm0plus.timed(trace, machine.decoder, cm0plus.SENTINEL), stack,
                    machine.read(in_ptr, info.input_frames * info.input_bins),
                    machine.read(out_ptr, info.n_outputs), info.arena_bytes, info.streamed_ops)


def phases(machine: cm0plus.Machine, em: Emulated) -> dict[str, cm0plus.Cost]:
    """Split the traced block into front end, inference, other and total."""
    image, dec = machine.image, machine.decoder
    caller = image.symbol("es_pipeline_push_block")
    names = [*FRONT_END_CALLS, INFERENCE_CALL, "es_detector_update"]
    callees = {image.symbol(n).addr: n for n in names if n in image.symbols}
    calls = cm0plus.calls_from(em.timed.trace, dec, caller, callees)
    found = {c[0] for c in calls}
    if not {"es_frontend_push_block", INFERENCE_CALL} <= found:
        raise cm0plus.EmulationError(f"{image.path}: traced block made only calls {found}")
    n = em.timed.trace.size
    mask = {"front_end": np.zeros(n, bool), "inference": np.zeros(n, bool)}
    each: dict[str, np.ndarray] = {}
    for name, i, j in calls:
        each.setdefault(f"call {name}", np.zeros(n, bool))[i:j] = True
        if name != "es_detector_update":
            mask["inference" if name == INFERENCE_CALL else "front_end"][i:j] = True
    mask["other"] = ~(mask["front_end"] | mask["inference"])
    out = {k: cm0plus.cost(em.timed, m) for k, m in {**mask, **each}.items()}
    out["total"] = cm0plus.cost(em.timed)
    return out


def call_counts(machine: cm0plus.Machine, trace: np.ndarray) -> dict[str, int]:
    """Function name (aliases joined) -> calls (entries from a BL/BLX) in trace."""
    by_addr: dict[int, list[str]] = {}
    for sym in machine.image.functions():
        by_addr.setdefault(sym.addr, []).append(sym.name)
    uniq, counts = np.unique(trace[1:][np.isin(trace[1:], list(by_addr))], return_counts=True)
    out = {}
    for addr, _ in zip(uniq, counts, strict=True):
        idx = np.nonzero(trace[1:] == addr)[0]
        n = sum(machine.decoder.at(int(trace[i])).kind in ("bl", "bx") for i in idx)
        if n:
            out["/".join(sorted(by_addr[int(addr)]))] = int(n)
    return out


# ---- sizes ------------------------------------------------------------------------------------

_MAP_LINE = re.compile(r"^ (\.[\w.]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")


def model_flash(map_file: Path) -> int:
    """Bytes of .text*/.rodata*/.data* that the linker placed from the model library."""
    text = map_file.read_text()
    text = text[text.find("Linker script and memory map"):]
    joined = re.sub(r"\n(?= {16}0x)", "", text)  # long section names wrap onto a second line
    total = 0
    for line in joined.splitlines():
        m = _MAP_LINE.match(line)
        if m and int(m.group(2), 16) and "libes_model.a" in m.group(4):
            if m.group(1).startswith((".text", ".rodata", ".data")):
                total += int(m.group(3), 16)
    return total


# ---- one configuration ------------------------------------------------------------------------


def _phase(c: cm0plus.Cost) -> Phase:
    return Phase(c.instructions, c.cycles, round(c.ms, 4))


def ratios(r: Result) -> dict[str, float]:
    """Result against the seed and the budget (docs/architecture.md; below 1 is better than the reference)."""
    return {
        "block_vs_budget_6ms": round(r.total.ms / BUDGET["block_ms"], 4),
        "inference_vs_seed_24ms": round(r.inference.ms / SEED["inference_ms"], 4),
        "block_vs_seed_limit_32ms": round(r.total.ms / SEED["block_limit_ms"], 4),
        "flash_vs_budget_64KB": round(r.flash_bytes / BUDGET["flash_bytes"], 4),
        "ram_vs_budget_48KB": round(r.ram_bytes / BUDGET["ram_bytes"], 4),
        "ram_vs_seed_arena_128KB": round(r.ram_bytes / SEED["arena_bytes"], 4),
    }


SEED_ARCH = "rp2040_seed"
"""The seed's architecture, compiled and emulated in the same run: the baseline of the
``*_vs_rp2040_seed_same_run`` ratios (the README quotes those, not constants)."""


def same_run_ratios(results: list[Result]) -> None:
    """Add each result's ratios against the rp2040_seed result at the same -O level."""
    base = {r.opt: r for r in results if r.model == SEED_ARCH}
    for r in results:
        b = base.get(r.opt)
        if b is not None:
            r.ratios["block_vs_rp2040_seed_same_run"] = round(r.total.ms / b.total.ms, 4)
            r.ratios["inference_vs_rp2040_seed_same_run"] = round(r.inference.ms / b.inference.ms, 4)
            r.ratios["front_end_vs_rp2040_seed_same_run"] = round(r.front_end.ms / b.front_end.ms, 4)


def run_one(name: str, compiled: CompiledModel, opt: str, blocks: np.ndarray) -> Result:
    """Build, emulate, check and measure one model at one optimisation level."""
    elf, map_file = cross_image(compiled.c_path.parent, opt)
    machine = cm0plus.Machine(cm0plus.ElfImage(elf))
    em = emulate(machine, blocks)
    parts = phases(machine, em)
    host_input, host_output = host_reference(compiled, blocks, em.model_input)
    size = fb.read_size(elf)
    ram_size = fb.read_size(elf.with_name("es_image_ram.elf"))
    calls = call_counts(machine, em.timed.trace)
    soft = sorted(s.name for s in machine.image.functions() if SOFT_FLOAT.match(s.name))
    result = Result(
        model=name, opt=opt,
        front_end=_phase(parts["front_end"]), inference=_phase(parts["inference"]),
        other=_phase(parts["other"]), total=_phase(parts["total"]),
        by_kind=parts["total"].by_kind,
        calls={k[5:]: _phase(v) for k, v in parts.items() if k.startswith("call ")},
        flash_bytes=size.flash, model_flash_bytes=model_flash(map_file),
        ram_image_flash_bytes=ram_size.text + ram_size.data,
        ram_image_sram_bytes=ram_size.text + ram_size.data + ram_size.bss + em.stack,
        ram_bytes=size.ram + em.stack, static_ram_bytes=size.ram, arena_bytes=em.arena_bytes,
        stack_bytes=em.stack, streamed_ops=em.streamed_ops,
        soft_float_linked=soft,
        soft_float_reachable=sorted(n for n in cm0plus.reachable(machine.image, "es_image_run")
                                    if SOFT_FLOAT.match(n)),
        soft_float_calls={k: v for k, v in calls.items() if any(SOFT_FLOAT.match(n)
                                                                for n in k.split("/"))},
        library_calls={k: v for k, v in calls.items()
                       if k.startswith("_") or k in ("memmove", "memcpy", "memset")},
        output=list(np.frombuffer(em.model_output, np.int8).tolist()),
        host_output=list(np.frombuffer(host_output, np.int8).tolist()),
        input_matches_host=host_input == em.model_input,
    )
    result.ratios = ratios(result)
    result.hot = cm0plus.profile(em.timed, machine.image, top=16)
    return result


# ---- report -----------------------------------------------------------------------------------


def timing_table(results: list[Result]) -> str:
    head = (f"{'model':<22} {'opt':<3} {'instr FE':>9} {'instr inf':>10} {'instr blk':>10} "
            f"{'cyc FE':>9} {'cyc inf':>10} {'cyc blk':>10} {'ms FE':>6} {'ms inf':>7} "
            f"{'ms blk':>7} {'/6ms':>5} {'inf/24ms':>8} {'blk/32ms':>8} {'strm':>4} {'exact':>5}")
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.model:<22} {r.opt:<3} {r.front_end.instructions:>9} "
            f"{r.inference.instructions:>10} {r.total.instructions:>10} {r.front_end.cycles:>9} "
            f"{r.inference.cycles:>10} {r.total.cycles:>10} {r.front_end.ms:>6.2f} "
            f"{r.inference.ms:>7.2f} {r.total.ms:>7.2f} "
            f"{r.ratios['block_vs_budget_6ms']:>5.2f} {r.ratios['inference_vs_seed_24ms']:>8.3f} "
            f"{r.ratios['block_vs_seed_limit_32ms']:>8.3f} {r.streamed_ops:>4} "
            f"{'yes' if r.exact else 'NO':>5}")
    return "\n".join(rows)


def memory_table(results: list[Result]) -> str:
    head = (f"{'model':<22} {'opt':<3} {'flash':>7} {'model':>7} {'/64KB':>6} {'static':>7} "
            f"{'arena':>6} {'stack':>6} {'RAM':>7} {'/48KB':>6} {'/128KB':>7} {'ram:fl':>8} "
            f"{'ram:SRAM':>8}  soft-float calls")
    rows = [head, "-" * len(head)]
    for r in results:
        soft = ", ".join(f"{k} x{v}" for k, v in r.soft_float_calls.items()) or (
            "none (reachable: " + (", ".join(r.soft_float_reachable) or "none") + ")")
        rows.append(
            f"{r.model:<22} {r.opt:<3} {r.flash_bytes:>7} {r.model_flash_bytes:>7} "
            f"{r.ratios['flash_vs_budget_64KB']:>6.2f} {r.static_ram_bytes:>7} "
            f"{r.arena_bytes:>6} {r.stack_bytes:>6} {r.ram_bytes:>7} "
            f"{r.ratios['ram_vs_budget_48KB']:>6.2f} {r.ratios['ram_vs_seed_arena_128KB']:>7.2f}"
            f" {r.ram_image_flash_bytes:>8} {r.ram_image_sram_bytes:>8}  {soft}")
    return "\n".join(rows)


def hot_table(results: list[Result], top: int = 6) -> str:
    """Where the cycles of a block go: the top functions (self time) per configuration."""
    rows = []
    for r in results:
        parts = ", ".join(f"{name} {cyc / r.total.cycles:.0%}" for name, _, cyc in r.hot[:top])
        rows.append(f"{r.model:<22} {r.opt:<3} {parts}")
    return "\n".join(rows)


def save(results: list[Result], settings: Settings, seconds: float) -> None:
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "what": "firmware core per 512-sample block on a Cortex-M0+ (unicorn + bench/cm0plus.py)",
        "clock_hz": cm0plus.CLOCK_HZ,
        "seed": SEED,
        "budget": BUDGET,
        "audio": str(settings.wav) if settings.wav else "espeak-ng phrase",
        "host": platform.platform(),
        "bench_seconds": round(seconds, 1),
        "results": [{**asdict(r), "exact": r.exact} for r in results],
    }
    settings.out.write_text(json.dumps(doc, indent=2) + "\n")


def run(settings: Settings) -> list[Result]:
    """Benchmark every model at every optimisation level."""
    from tqdm import tqdm

    from earshot.wavio import read_wav

    WORK.mkdir(parents=True, exist_ok=True)
    audio = read_wav(settings.wav) if settings.wav else spoken_audio(WORK)
    blocks = audio_blocks(audio)
    compiled = (bundle_models(settings.bundles, WORK) if settings.bundles
                else untrained_models(WORK, audio))
    jobs = [(n, m, o) for n, m in compiled.items() for o in settings.opts]
    results = [run_one(n, d, o, blocks) for n, d, o in tqdm(jobs, desc="emulating", unit="build")]
    same_run_ratios(results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, action="append", default=[],
                        help="trained RP2040 bundle to benchmark (repeatable; default: every MCU "
                             "architecture, untrained)")
    parser.add_argument("--opt", choices=OPTS, action="append",
                        help="gcc optimisation level (repeatable; default: O2 and Os)")
    parser.add_argument("--wav", type=Path,
                        help="audio fed to the pipeline (any WAV; default: espeak-ng speech)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help=f"JSON results (default: {RESULTS.relative_to(REPO)})")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    settings = Settings(tuple(args.bundle), tuple(args.opt or OPTS), args.wav, args.out)
    t0 = time.monotonic()
    try:
        results = run(settings)
    except (cm0plus.EmulationError, fb.FirmwareBuildError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\nper 512-sample block (32 ms of audio), Cortex-M0+ at 125 MHz "
          "(FE = front end, 4 frames; inf = inference; blk = whole es_pipeline_push_block; "
          "strm = ops streamed, computing only their newest rows)")
    print(timing_table(results))
    print(f"\nsame run, against {SEED_ARCH} at the same -O level (block / inference / front end)")
    for r in results:
        q = r.ratios
        if "block_vs_rp2040_seed_same_run" in q:
            print(f"{r.model:<22} {r.opt:<3} {q['block_vs_rp2040_seed_same_run']:.3f} / "
                  f"{q['inference_vs_rp2040_seed_same_run']:.3f} / "
                  f"{q['front_end_vs_rp2040_seed_same_run']:.3f}")
    print("\nflash = text+data of core+model image; RAM = data+bss (incl. arena) + stack peak; "
          "ram:fl / ram:SRAM = the board's copy_to_ram placement (es_image_ram.elf): stored in "
          "flash / used in SRAM, code and weights included (bytes)")
    print(memory_table(results))
    print("\nshare of the block's cycles by function (self time)")
    print(hot_table(results))
    save(results, settings, time.monotonic() - t0)
    print(f"\nsaved {settings.out}")
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
