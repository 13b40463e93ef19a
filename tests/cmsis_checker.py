"""A host C checker linked against the CMSIS-DSP 1.10.3 C sources: the oracle the firmware's own
bit-exact DSP code (es_mag.c, es_rfft.c) is compared with, built the way the firmware builds
CMSIS (plain-C paths, loop unrolling), our file with the strict warnings."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from trainer import firmware_build as fb

CORE = fb.FIRMWARE / "core"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion"]
CMSIS_DEFINES = ["-D__GNUC_PYTHON__", "-DARM_MATH_LOOPUNROLL", "-DCMSISDSP"]


def run(cmd: list[str], timeout: float = 300, **kw: object) -> subprocess.CompletedProcess:
    """Run ``cmd``; a non-zero exit fails with its output."""
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout!r}\n{proc.stderr!r}"
    return proc


M0PLUS = ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", "-O2", "-ffunction-sections",
          "-fdata-sections"]  # fmt: skip
"""Cross flags of the emulated checkers (the firmware's M0+ build)."""


def build_checker(name: str, checker_c: str, source: Path | Sequence[Path], cmsis_files: Sequence[str],
                  cross: Sequence[str] = ()) -> Path:  # fmt: skip
    """``build/<name>/checker``: ``checker_c`` + ``source`` (ours, strict flags) + ``cmsis_files``
    (paths under CMSIS-DSP's Source/). With ``cross`` (the final link's extra flags) it is an
    M0+ ELF built with arm-none-eabi-gcc (:data:`M0PLUS`), ``checker.elf``."""
    dsp = fb.fetch_cmsis_dsp()
    folder = fb.BUILD / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checker.c").write_text(checker_c)
    inc = ["-I", str(CORE), "-isystem", str(dsp / "Include"), "-isystem",
           str(dsp / "PrivateInclude"), *CMSIS_DEFINES]  # fmt: skip
    ours = [source] if isinstance(source, Path) else list(source)
    cc, cpu = (["arm-none-eabi-gcc"], M0PLUS) if cross else (["gcc"], ["-O2"])
    objs = []
    for src in [*ours, *(dsp / "Source" / f for f in cmsis_files), folder / "checker.c"]:
        obj = folder / (src.stem + ".o")
        flags = STRICT if src in ours else ["-std=c99", "-w"]
        run([*cc, *cpu, *flags, *inc, "-c", str(src), "-o", str(obj)])
        objs.append(str(obj))
    if cross:
        elf = folder / "checker.elf"
        run([*cc, *cpu, *objs, *cross, "-o", str(elf)])
        return elf
    exe = folder / "checker"
    run(["gcc", *objs, "-lm", "-o", str(exe)])
    return exe
