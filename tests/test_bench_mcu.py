"""The RP2040 cycle benchmark (bench/mcu_cycles.py, bench/cm0plus.py): its cycle model on
assembled instructions, and its emulation path on a trained model against the host build.

Not timing tests: they check that the emulator ran the firmware (its int8 model input and output
equal the host build's on the same audio) and that cycles are counted as the model documents.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import cm0plus  # noqa: E402

needs_arm = pytest.mark.usefixtures("arm_toolchain")  # fails, never skips, when missing

# instruction -> (class, cycles not taken, extra when taken), per the Cortex-M0+ TRM table 3-1
EXPECTED = {
    "movs r0, #1": ("alu", 1, 0),
    "adds r0, r1, r2": ("alu", 1, 0),
    "muls r0, r1, r0": ("mul", 1, 0),
    "ldr r0, [r1, #4]": ("load", 2, 0),
    "ldrb r0, [r1, r2]": ("load", 2, 0),
    "ldrsh r0, [r1, r2]": ("load", 2, 0),
    "ldr r0, [sp, #8]": ("load", 2, 0),
    "str r0, [r1, r2]": ("store", 2, 0),
    "strh r0, [r1, #2]": ("store", 2, 0),
    "strb r0, [r1, #1]": ("store", 2, 0),
    "str r0, [sp, #4]": ("store", 2, 0),
    "push {r4, r5, r6, lr}": ("push", 5, 0),
    "pop {r4, r5}": ("pop", 3, 0),
    "pop {r4, r5, r6, pc}": ("pop_pc", 6, 0),
    "ldmia r0!, {r1, r2, r3}": ("ldm", 4, 0),
    "stmia r0!, {r1, r2}": ("stm", 3, 0),
    "bne .": ("bcond", 1, 1),
    "b .": ("b", 2, 0),
    "bl .": ("bl", 3, 0),
    "bx lr": ("bx", 2, 0),
    "blx r3": ("bx", 2, 0),
    "mov pc, lr": ("pc_write", 2, 0),
    "add sp, #16": ("alu", 1, 0),
    "sxth r0, r1": ("alu", 1, 0),
    "rev r0, r1": ("alu", 1, 0),
    "dmb sy": ("system", 3, 0),
    "sev": ("hint", 1, 0),
    "wfi": ("hint", 2, 0),
    "nop": ("alu", 1, 0),  # gas emits MOV r8, r8 for the ARMv6-M NOP
}

LOOP = """
    .syntax unified
    .thumb
    .global count_down
    .type count_down, %function
    .thumb_func
count_down:            @ r0 = n >= 1; returns 0
    push {r4, lr}      @ 1 + 2
1:  subs r0, #1        @ n x 1
    bne 1b             @ (n - 1) x 2 taken + 1 not taken
    movs r4, r0        @ 1
    pop {r4, pc}       @ 3 + 1
"""


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stderr}"
    return proc


def _assemble(tmp: Path, body: str, name: str) -> Path:
    src = tmp / f"{name}.s"
    src.write_text(body)
    elf = tmp / f"{name}.elf"
    _run(["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-nostdlib", "-nostartfiles",
          "-Wl,-Ttext=0x8000", "-Wl,--entry=0x8000", str(src), "-o", str(elf)])
    return elf


@needs_arm
def test_decoder_classifies_what_the_assembler_emits(tmp_path: Path) -> None:
    lines = "\n".join(f"    {asm}" for asm in EXPECTED)
    elf = _assemble(tmp_path, f"    .syntax unified\n    .thumb\n    .text\n{lines}\n", "insns")
    image = cm0plus.ElfImage(elf)
    dec = cm0plus.Decoder(image)
    addr = min(s.vaddr for s in image.segments)
    for asm, (kind, cycles, extra) in EXPECTED.items():
        insn = dec.at(addr)
        assert (insn.kind, insn.cycles, insn.taken_extra) == (kind, cycles, extra), asm
        addr += insn.size


@needs_arm
def test_emulated_loop_counts_taken_branches(tmp_path: Path) -> None:
    machine = cm0plus.Machine(cm0plus.ElfImage(_assemble(tmp_path, LOOP, "loop")))
    for n in (1, 7):
        r0, trace, stack = machine.call("count_down", n)
        t = cm0plus.timed(trace, machine.decoder, cm0plus.SENTINEL)
        c = cm0plus.cost(t)
        assert r0 == 0 and stack == 8
        assert c.instructions == 1 + 2 * n + 2
        assert c.taken == n - 1
        assert c.cycles == 3 + n + 2 * (n - 1) + 1 + 1 + 4
    _, untraced, _ = machine.call("count_down", 3, trace=False)
    assert untraced.size == 0


@needs_arm
def test_a_fault_names_the_function_and_address(tmp_path: Path) -> None:
    body = ".syntax unified\n.thumb\n.global bad\n.thumb_func\nbad:\n movs r0, #0\n ldr r0, [r0]\n"
    machine = cm0plus.Machine(cm0plus.ElfImage(_assemble(tmp_path, body, "bad")))
    with pytest.raises(cm0plus.EmulationError, match=r"bad faulted at pc 0x8002 \(bad\+0x2\)"):
        machine.call("bad")


@needs_arm
def test_static_reachability_follows_bl_both_ways(tmp_path: Path) -> None:
    body = """
    .syntax unified
    .thumb
    .macro fn name
    .global \\name
    .type \\name, %function
    .thumb_func
    .endm
    fn before
before: bx lr
    .size before, . - before
    fn root
root:   push {r4, lr}
        bl after
        bl before
        pop {r4, pc}
    .size root, . - root
    fn unused
unused: bl after
        bx lr
    .size unused, . - unused
    .space 5000
    fn after
after:  bx lr
    .size after, . - after
"""
    image = cm0plus.ElfImage(_assemble(tmp_path, body, "calls"))
    assert cm0plus.reachable(image, "root") == {"root", "before", "after"}
    assert cm0plus.reachable(image, "after") == {"after"}


@pytest.mark.slow
@needs_arm
def test_benchmark_block_on_the_trained_model_equals_the_host_build(
    rp2040_bundle: Path, synth_root: Path, tmp_path: Path
) -> None:
    from bench import mcu_cycles
    from earshot.wavio import read_wav

    (name, compiled), = mcu_cycles.bundle_models((rp2040_bundle,), tmp_path).items()
    clip = sorted((synth_root / "keywords" / "yes").glob("*.wav"))[0]
    blocks = mcu_cycles.audio_blocks(read_wav(clip))
    assert np.abs(blocks).max() > 1000  # real speech, not silence
    r = mcu_cycles.run_one(name, compiled, "Os", blocks)

    assert r.front_end.instructions > 0 and r.inference.instructions > 0
    assert r.total.instructions == (r.front_end.instructions + r.inference.instructions
                                    + r.other.instructions)
    assert r.total.cycles == r.front_end.cycles + r.inference.cycles + r.other.cycles
    assert r.total.cycles > r.total.instructions  # loads, calls and taken branches cost more
    # the emulator really ran the firmware: same model input as es_host, same output as the
    # host-compiled model on it
    assert r.input_matches_host
    n_labels = len(json.loads((rp2040_bundle / "manifest.json").read_text())["labels"])
    assert r.output == r.host_output and len(r.output) == n_labels
    assert len(set(r.output)) > 1  # a trained model on speech: not a constant output
    assert r.flash_bytes > r.model_flash_bytes > 10_000  # stream_cnn: ~6K weights, 4x in the fast conv
    assert r.arena_bytes > 0 and r.stack_bytes > 0
    assert r.ram_bytes == r.static_ram_bytes + r.stack_bytes
    assert r.soft_float_calls == {}  # docs/compiler.md: no float at run time
    # the input shift, once per block, and one per streamed op moving its kept rows up
    assert r.streamed_ops == 3  # stream_cnn, the default MCU architecture
    assert r.library_calls["memmove"] == 1 + r.streamed_ops


@needs_arm
def test_model_info_fields_are_where_the_cortex_m0plus_build_puts_them(tmp_path: Path) -> None:
    """bench/mcu_cycles.py reads es_model_info out of the emulator by field name through
    EsModelInfo32: its layout must be arm-none-eabi-gcc's own for es_model.h."""
    import ctypes

    from trainer.compiler import host

    src = tmp_path / "layout.c"
    src.write_text(host.layout_source())
    obj = tmp_path / "layout.o"
    _run(["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-std=c99", "-Wall", "-Werror",
          "-I", str(REPO / "firmware" / "core"), "-c", str(src), "-o", str(obj)])
    raw = tmp_path / "layout.bin"
    _run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".rodata", str(obj), str(raw)])
    got = list(np.frombuffer(raw.read_bytes(), "<u4"))
    info = host.EsModelInfo32
    want = [ctypes.sizeof(info)] + [getattr(info, f).offset for f in host.FIELD_NAMES]
    assert got == want
    assert want[0] == 60 and info.arena_bytes.offset == 40  # a 32-bit layout, not the host's
