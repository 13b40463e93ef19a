"""A Cortex-M0+ (RP2040) in the ``unicorn`` emulator, with a cycle model for what it executed.

Used by ``bench/mcu_cycles.py``. Three parts:

* :class:`ElfImage` reads an ARM ELF32 (loadable segments, symbol table) with ``struct``.
* :class:`Machine` loads it into unicorn (``UC_ARCH_ARM``, ``UC_MODE_THUMB | UC_MODE_MCLASS``),
  calls one function the way the AAPCS does (r0-r3, LR = a sentinel return address, SP at the
  top of a painted stack) and records the address of every executed instruction (a code hook).
* :func:`decode` classifies a Thumb (ARMv6-M) instruction from its bytes, and :func:`cost`
  turns a recorded trace into instructions and estimated cycles.

The cycle model (Arm Cortex-M0+ Technical Reference Manual, r0p1, table 3-1 "Cortex-M0+
instruction summary"; cycle counts there assume zero wait states):

============================================  ======  =========================================
instruction                                   cycles  note
============================================  ======  =========================================
data processing, shifts, MOV/ADD/SUB/CMP,      1      incl. ADD/SUB SP, ADR, SXT*/UXT*, REV*
  compare, logic, extend, reverse
MULS                                           1      RP2040 has the single-cycle multiplier
                                                      option (the other option is 32)
LDR*/STR* (every addressing mode)              2      1 only for the single-cycle I/O port (the
                                                      RP2040's SIO), which this code never uses
LDM/STM, PUSH, POP without PC                  1+N    N = registers transferred (PUSH: LR too)
POP with PC (pop and return)                   3+N    N = registers other than PC
B<cond> not taken / taken                      1 / 2  the M0+ two-stage pipeline refills in 1
B (unconditional)                              2
BL                                             3      one 32-bit instruction
BX, BLX (register)                             2
MOV PC, Rm / ADD PC, Rm                        2
DMB, DSB, ISB, MRS, MSR                        3
WFE, WFI                                       2      (not expected in this code)
CPS, NOP, YIELD, SEV                           1
============================================  ======  =========================================

Assumptions, all of them optimistic for the real chip unless said otherwise:

* No wait states: code and read-only data run from SRAM. That is the board build's placement:
  ``pico_set_binary_type(earshot copy_to_ram)`` (firmware/board/CMakeLists.txt) copies all code
  and constants (weights, CMSIS-DSP tables) from flash to SRAM at boot, so nothing runs behind the
  16 KB XIP cache and its misses (a QSPI burst, tens of cycles) do not arise; the core + model
  linked that way is ``es_image_ram.elf`` (firmware/cmake/rp2040_copy_to_ram.ld), whose sizes
  bench/mcu_cycles.py reports and tests/test_firmware_app.py checks for SRAM addresses. SRAM
  itself is modelled without bank conflicts.
* No bus contention (the second core and DMA idle) and no interrupts during the block.
* Taken is decided from the trace: a conditional branch is taken when the next executed
  instruction is not the one after it.
* The "N" of LDM/STM/PUSH/POP is the register count of the encoding (the TRM's definition).
* Library calls (``memmove``, ``__aeabi_*``) are counted like any other code: they run in the
  emulator from newlib/libgcc as linked. (The RP2040 boot ROM's faster memcpy and float routines
  and the SIO hardware divider are not used by this image.)
"""

from __future__ import annotations

import logging
import struct
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_LOGGER = logging.getLogger(__name__)

STACK_BASE = 0x2000_0000
"""Start of the emulated stack region (the RP2040's SRAM base)."""
STACK_SIZE = 0x1_0000
"""Bytes of stack mapped (64 KB; the high-water mark is measured, see Machine.stack_used)."""
SENTINEL = 0x3000_0000
"""Return address given to every call: emulation stops when PC reaches it."""
PAINT = 0xA5
"""Byte value the stack is painted with before a call (for the high-water mark)."""
MAX_INSTRUCTIONS = 200_000_000
"""Upper bound on instructions per call (a runaway loop stops here with an error)."""
CLOCK_HZ = 125_000_000
"""RP2040 default system clock (Hz) for the milliseconds column."""


class EmulationError(RuntimeError):
    """The emulated code faulted, ran away, or a symbol is missing; the message says which."""


# ---- ELF ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Symbol:
    """One ELF symbol."""

    name: str
    """Symbol name."""
    addr: int
    """Value (for Thumb functions bit 0 is cleared here)."""
    size: int
    """st_size (bytes)."""
    func: bool
    """True for STT_FUNC."""


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD segment."""

    vaddr: int
    """Run-time address."""
    data: bytes
    """File contents (p_filesz bytes)."""
    memsz: int
    """Size in memory (the rest beyond data is zero: .bss)."""


class ElfImage:
    """Loadable segments and symbols of an ARM ELF32 little-endian executable."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        raw = self.path.read_bytes()
        if raw[:4] != b"\x7fELF" or raw[4] != 1 or raw[5] != 1:
            raise EmulationError(f"{self.path}: not a little-endian ELF32 file")
        (_, machine, _, self.entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
         _) = struct.unpack_from("<HHIIIIIHHHHHH", raw, 16)
        if machine != 40:  # EM_ARM
            raise EmulationError(f"{self.path}: e_machine {machine} is not ARM (40)")
        self.segments: list[Segment] = []
        for i in range(phnum):
            p_type, off, vaddr, _, filesz, memsz, _, _ = struct.unpack_from(
                "<8I", raw, phoff + i * phentsize)
            if p_type == 1 and memsz:  # PT_LOAD
                self.segments.append(Segment(vaddr, raw[off:off + filesz], memsz))
        self.symbols: dict[str, Symbol] = {}
        sections = [struct.unpack_from("<10I", raw, shoff + i * shentsize) for i in range(shnum)]
        for sh in sections:
            if sh[1] != 2:  # SHT_SYMTAB
                continue
            strtab = sections[sh[6]]
            names = raw[strtab[4]:strtab[4] + strtab[5]]
            for off in range(sh[4], sh[4] + sh[5], 16):
                st_name, value, size, info, _, shndx = struct.unpack_from("<IIIBBH", raw, off)
                if st_name == 0 or shndx == 0 or (info & 0xF) not in (0, 1, 2):
                    continue
                name = names[st_name:names.index(b"\0", st_name)].decode()
                func = (info & 0xF) == 2
                sym = Symbol(name, value & ~1 if func else value, size, func)
                # globals win over a local of the same name
                if name not in self.symbols or (info >> 4) == 1:
                    self.symbols[name] = sym

    def symbol(self, name: str) -> Symbol:
        """The symbol called name, or EmulationError naming it and the file."""
        try:
            return self.symbols[name]
        except KeyError:
            raise EmulationError(f"{self.path}: no symbol {name!r}") from None

    def functions(self) -> list[Symbol]:
        """Function symbols sorted by address."""
        return sorted((s for s in self.symbols.values() if s.func), key=lambda s: s.addr)

    def read(self, addr: int, n: int) -> bytes:
        """n bytes of initial contents at addr (from the file; .bss reads as zeros)."""
        for seg in self.segments:
            if seg.vaddr <= addr and addr + n <= seg.vaddr + seg.memsz:
                off = addr - seg.vaddr
                data = seg.data[off:off + n]
                return data + bytes(n - len(data))
        raise EmulationError(f"{self.path}: address {addr:#x} is not in a loadable segment")


# ---- decoding and the cycle model -------------------------------------------------------------


@dataclass(frozen=True)
class Insn:
    """One decoded Thumb instruction, as the cycle model sees it."""

    kind: str
    """Class: alu, mul, load, store, ldm, stm, push, pop, pop_pc, bcond, b, bl, bx, pc_write,
    system, hint."""
    size: int
    """Bytes (2, or 4 for BL/MSR/MRS/barriers)."""
    cycles: int
    """Cycles when not a taken conditional branch."""
    taken_extra: int = 0
    """Extra cycles when a conditional branch is taken."""


def _bits(v: int) -> int:
    return bin(v).count("1")


def decode(hw: int, hw2: int = 0) -> Insn:
    """Classify the ARMv6-M Thumb instruction whose first halfword is hw (second hw2)."""
    top5 = hw >> 11
    if top5 in (0b11101, 0b11110, 0b11111):
        if top5 == 0b11110 and (hw2 & 0xD000) == 0xD000:
            return Insn("bl", 4, 3)
        if (hw & 0xFFE0) in (0xF380, 0xF3E0) or (hw == 0xF3BF and (hw2 & 0xFF00) == 0x8F00):
            return Insn("system", 4, 3)  # MSR, MRS, DMB/DSB/ISB
        raise EmulationError(f"32-bit encoding {hw:04x} {hw2:04x} is not ARMv6-M")
    if hw >> 12 == 0b1101:
        if (hw >> 8) & 0xF in (0xE, 0xF):
            raise EmulationError(f"UDF/SVC {hw:04x} executed")
        return Insn("bcond", 2, 1, 1)
    if top5 == 0b11100:
        return Insn("b", 2, 2)
    if top5 == 0b11000:
        return Insn("stm", 2, 1 + _bits(hw & 0xFF))
    if top5 == 0b11001:
        return Insn("ldm", 2, 1 + _bits(hw & 0xFF))
    if hw >> 12 == 0b1011:
        return _decode_misc(hw)
    if top5 in (0b10100, 0b10101):
        return Insn("alu", 2, 1)  # ADR, ADD Rd, SP, #imm
    if hw >> 12 in (0b1001, 0b1000, 0b0101) or hw >> 13 == 0b011 or top5 == 0b01001:
        # SP-relative, halfword, register-offset, word/byte immediate, literal
        store = (hw >> 12 == 0b0101 and ((hw >> 9) & 7) < 3) or (
            hw >> 12 != 0b0101 and top5 != 0b01001 and not (hw >> 11) & 1)
        return Insn("store" if store else "load", 2, 2)
    if hw >> 10 == 0b010001:
        op = (hw >> 8) & 3
        if op == 3:
            return Insn("bx", 2, 2)  # BX / BLX register
        rd = ((hw >> 4) & 8) | (hw & 7)
        if op != 1 and rd == 15:
            return Insn("pc_write", 2, 2)  # ADD PC, Rm / MOV PC, Rm
        return Insn("alu", 2, 1)
    if hw >> 10 == 0b010000:
        return Insn("mul" if (hw >> 6) & 0xF == 0b1101 else "alu", 2, 1)
    if hw >> 14 == 0:
        return Insn("alu", 2, 1)  # shifts by immediate, ADD/SUB, MOV/CMP/ADD/SUB immediate
    raise EmulationError(f"cannot decode Thumb halfword {hw:04x}")


def _decode_misc(hw: int) -> Insn:
    """The 1011xxxx group: SP adjust, extend, PUSH/POP, reverse, CPS, BKPT, hints."""
    if (hw & 0xFE00) == 0xB400:
        return Insn("push", 2, 1 + _bits(hw & 0x1FF))
    if (hw & 0xFE00) == 0xBC00:
        if hw & 0x100:
            return Insn("pop_pc", 2, 3 + _bits(hw & 0xFF))
        return Insn("pop", 2, 1 + _bits(hw & 0xFF))
    if (hw & 0xFF00) == 0xBE00:
        raise EmulationError(f"BKPT {hw:04x} executed")
    if (hw & 0xFF00) == 0xBF00:
        return Insn("hint", 2, 2 if (hw & 0xF0) in (0x20, 0x30) else 1)  # WFE/WFI 2
    return Insn("alu", 2, 1)  # ADD/SUB SP, SXT*/UXT*, REV*, CPS


KINDS = ("alu", "mul", "load", "store", "ldm", "stm", "push", "pop", "pop_pc", "bcond", "b",
         "bl", "bx", "pc_write", "system", "hint")
"""Instruction classes in report order."""


@dataclass(frozen=True)
class Cost:
    """Instructions and estimated cycles of one stretch of a trace."""

    instructions: int
    """Executed instructions."""
    cycles: int
    """Estimated Cortex-M0+ cycles (see the module docstring)."""
    by_kind: dict[str, int]
    """Executed instructions per class (KINDS)."""
    taken: int
    """Conditional branches taken."""

    @property
    def ms(self) -> float:
        """Milliseconds at CLOCK_HZ."""
        return self.cycles / CLOCK_HZ * 1e3


class Decoder:
    """Decodes (and caches) instructions from an image's bytes."""

    def __init__(self, image: ElfImage) -> None:
        self.image = image
        self._cache: dict[int, Insn] = {}

    def at(self, addr: int) -> Insn:
        insn = self._cache.get(addr)
        if insn is None:
            (hw,) = struct.unpack("<H", self.image.read(addr, 2))
            hw2 = 0
            if hw >> 11 in (0b11101, 0b11110, 0b11111):  # 32-bit: read its second halfword
                (hw2,) = struct.unpack("<H", self.image.read(addr + 2, 2))
            insn = self._cache[addr] = decode(hw, hw2)
        return insn


@dataclass(frozen=True)
class Timed:
    """A trace with every instruction's class and estimated cycles."""

    trace: np.ndarray
    """Executed addresses."""
    kind: np.ndarray
    """Index into KINDS per instruction."""
    cycles: np.ndarray
    """Cycles per instruction (taken branches included)."""
    taken: np.ndarray
    """True where a conditional branch was taken."""


def timed(trace: np.ndarray, decoder: Decoder, next_addr: int | None = None) -> Timed:
    """Classify and cost every instruction of trace.

    next_addr is what ran after the trace's last instruction (it decides whether that one, if a
    conditional branch, was taken).
    """
    uniq, inv = np.unique(trace, return_inverse=True)
    insns = [decoder.at(int(a)) for a in uniq]
    size = np.array([i.size for i in insns], np.int64)[inv]
    extra = np.array([i.taken_extra for i in insns], np.int64)[inv]
    following = np.empty(trace.size, np.int64)
    following[:-1] = trace[1:]
    if trace.size:
        following[-1] = -1 if next_addr is None else next_addr
    taken = (extra > 0) & (following != trace.astype(np.int64) + size)
    cycles = np.array([i.cycles for i in insns], np.int64)[inv] + extra * taken
    kind = np.array([KINDS.index(i.kind) for i in insns], np.int64)[inv]
    return Timed(trace, kind, cycles, taken)


def cost(t: Timed, mask: np.ndarray | None = None) -> Cost:
    """Instructions and cycles of t (only where mask is True, if given)."""
    kind, cycles, taken = (t.kind, t.cycles, t.taken) if mask is None else (
        t.kind[mask], t.cycles[mask], t.taken[mask])
    counts = np.bincount(kind, minlength=len(KINDS))
    return Cost(int(kind.size), int(cycles.sum()),
                {k: int(n) for k, n in zip(KINDS, counts, strict=True)}, int(taken.sum()))


def profile(t: Timed, image: ElfImage, top: int = 10) -> list[tuple[str, int, int]]:
    """The top functions by cycles: (name, instructions, cycles), self time only."""
    funcs = image.functions()
    starts = np.array([f.addr for f in funcs], np.int64)
    idx = np.searchsorted(starts, t.trace.astype(np.int64), side="right") - 1
    n = np.bincount(idx, minlength=len(funcs))
    c = np.bincount(idx, weights=t.cycles, minlength=len(funcs))
    order = np.argsort(-c)[:top]
    return [(funcs[i].name, int(n[i]), int(c[i])) for i in order if n[i]]


def bl_target(addr: int, hw: int, hw2: int) -> int:
    """Destination of the BL at addr with halfwords hw, hw2 (ARMv6-M ARM, A6.7.13)."""
    s = (hw >> 10) & 1
    i1 = 1 - (((hw2 >> 13) & 1) ^ s)
    i2 = 1 - (((hw2 >> 11) & 1) ^ s)
    imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
    if s:
        imm -= 1 << 25
    return addr + 4 + imm


def reachable(image: ElfImage, root: str) -> set[str]:
    """Functions reachable from root through direct BL calls (static; indirect calls are not
    followed; literal pools are decoded too, so a stray match may over-approximate)."""
    by_addr: dict[int, list[Symbol]] = {}
    for f in image.functions():
        by_addr.setdefault(f.addr, []).append(f)
    todo, seen = [image.symbol(root)], set()
    while todo:
        f = todo.pop()
        if f.name in seen:
            continue
        seen.add(f.name)
        body = image.read(f.addr, f.size)
        i = 0
        while i + 4 <= len(body):
            hw, hw2 = struct.unpack_from("<HH", body, i)
            if hw >> 11 == 0b11110 and (hw2 & 0xD000) == 0xD000:
                todo.extend(by_addr.get(bl_target(f.addr + i, hw, hw2), []))
                i += 4
            else:
                i += 4 if hw >> 11 in (0b11101, 0b11110, 0b11111) else 2
    return seen


# ---- the emulator -----------------------------------------------------------------------------


class Machine:
    """An ELF image loaded into unicorn, ready for function calls."""

    def __init__(self, image: ElfImage) -> None:
        from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

        self.image = image
        self.decoder = Decoder(image)
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M0

        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        # ARMv6-M (unicorn has no M0+ model; the ISA is the same): anything else faults
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)
        lo = min(s.vaddr for s in image.segments) & ~0xFFF
        hi = (max(s.vaddr + s.memsz for s in image.segments) + 0xFFF) & ~0xFFF
        if hi > STACK_BASE:
            raise EmulationError(f"{image.path}: image reaches {hi:#x}, past the stack region")
        self.uc.mem_map(lo, hi - lo)
        for seg in image.segments:
            self.uc.mem_write(seg.vaddr, seg.data)
        self.uc.mem_map(STACK_BASE, STACK_SIZE)
        self.uc.mem_map(SENTINEL, 0x1000)
        self.uc.mem_write(SENTINEL, b"\xfe\xe7" * 0x800)  # b . (never executed)
        self._range = (lo, hi - 1)
        self._trace = array("I")
        self.watched: list[tuple[int, int, int, int]] = []
        """r0-r3 at each entry to the watched function of the last call."""

    def _hooks(self, trace: bool, watch: str | None) -> list[int]:
        """Install the tracing and watching code hooks for one call; returns their handles."""
        from unicorn import UC_HOOK_CODE
        from unicorn.arm_const import UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3

        hooks = []
        if trace:
            append = self._trace.append
            hooks.append(self.uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, ud: append(addr),
                                          begin=self._range[0], end=self._range[1]))
        self.watched = []
        if watch is not None:
            at = self.image.symbol(watch).addr
            regs = (UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3)

            def on_entry(uc, addr, size, ud):  # type: ignore[no-untyped-def]
                self.watched.append(tuple(uc.reg_read(r) for r in regs))

            hooks.append(self.uc.hook_add(UC_HOOK_CODE, on_entry, begin=at, end=at))
        self.uc.ctl_flush_tb()  # type: ignore[attr-defined]  # code translated before would run without the new hooks
        return hooks

    def read(self, addr: int, n: int) -> bytes:
        """n bytes of emulated memory at addr."""
        return bytes(self.uc.mem_read(addr, n))

    def write(self, addr: int, data: bytes) -> None:
        """Write data to emulated memory at addr."""
        self.uc.mem_write(addr, bytes(data))

    def call(self, function: str, *args: int, trace: bool = True,
             watch: str | None = None) -> tuple[int, np.ndarray, int]:
        """Call function(args) (up to 4 word arguments).

        Returns (r0, trace of executed addresses, stack bytes used). Without trace the code
        runs at full emulator speed and the trace is empty. The stack is painted before the
        call; the deepest byte that changed gives the high-water mark. With watch, r0-r3 at
        every entry to that function are collected in self.watched.
        """
        from unicorn import UcError
        from unicorn.arm_const import (
            UC_ARM_REG_LR,
            UC_ARM_REG_PC,
            UC_ARM_REG_R0,
            UC_ARM_REG_R1,
            UC_ARM_REG_R2,
            UC_ARM_REG_R3,
            UC_ARM_REG_SP,
        )

        if len(args) > 4:
            raise EmulationError(f"{function}: at most 4 register arguments, got {len(args)}")
        entry = self.image.symbol(function).addr
        self.uc.mem_write(STACK_BASE, bytes([PAINT]) * STACK_SIZE)
        hooks = self._hooks(trace, watch)
        for reg, value in zip((UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3), args,
                              strict=False):
            self.uc.reg_write(reg, value & 0xFFFFFFFF)
        self.uc.reg_write(UC_ARM_REG_SP, STACK_BASE + STACK_SIZE)
        self.uc.reg_write(UC_ARM_REG_LR, SENTINEL | 1)
        del self._trace[:]
        try:
            self.uc.emu_start(entry | 1, SENTINEL, count=MAX_INSTRUCTIONS)
        except UcError as e:
            pc = self.uc.reg_read(UC_ARM_REG_PC)
            raise EmulationError(
                f"{self.image.path}: {function} faulted at pc {pc:#x} ({self.where(pc)}): {e}"
            ) from e
        finally:
            for h in hooks:
                self.uc.hook_del(h)
            if hooks:
                self.uc.ctl_flush_tb()  # type: ignore[attr-defined]
        pc = self.uc.reg_read(UC_ARM_REG_PC)
        if pc & ~1 != SENTINEL:
            raise EmulationError(
                f"{self.image.path}: {function} did not return within {MAX_INSTRUCTIONS} "
                f"instructions (pc {pc:#x}, {self.where(pc)})")
        executed = np.frombuffer(self._trace.tobytes(), np.uint32).copy()
        stack = np.frombuffer(self.read(STACK_BASE, STACK_SIZE), np.uint8)
        touched = np.nonzero(stack != PAINT)[0]
        used = STACK_SIZE - int(touched[0]) if touched.size else 0
        _LOGGER.debug("%s: %d instructions, %d stack bytes", function, executed.size, used)
        return int(self.uc.reg_read(UC_ARM_REG_R0)), executed, used

    def where(self, addr: int) -> str:
        """The function containing addr (or the nearest before it, if it has no size), as
        name+offset."""
        for sym in reversed(self.image.functions()):
            if sym.addr <= addr and (sym.size == 0 or addr < sym.addr + sym.size):
                return f"{sym.name}+{addr - sym.addr:#x}"
        return "?"


def calls_from(trace: np.ndarray, decoder: Decoder, caller: Symbol,
               callees: dict[int, str]) -> list[tuple[str, int, int]]:
    """Calls made directly from caller's body: (callee name, first index, end index) in trace.

    A call is an entry to one of callees (address -> name) whose previous instruction is a BL or
    BLX inside caller; it ends where execution comes back to the instruction after that BL.
    """
    out = []
    for addr, name in callees.items():
        for i in np.nonzero(trace == addr)[0]:
            if i == 0:
                continue
            prev = int(trace[i - 1])
            if not caller.addr <= prev < caller.addr + caller.size:
                continue
            insn = decoder.at(prev)
            if insn.kind not in ("bl", "bx"):
                raise EmulationError(f"{name} entered from {prev:#x} by {insn.kind}, not a call")
            back = np.nonzero(trace[i:] == prev + insn.size)[0]
            end = int(i + back[0]) if back.size else int(trace.size)
            out.append((name, int(i), end))
    return sorted(out, key=lambda c: c[1])
