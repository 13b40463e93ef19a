"""What lowering produces: the kernel calls of the schedule, the const declarations they use and
the lifetime of every buffer (the planners' input)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..c_text import c_value, ident
from ..errors import CompileError


@dataclass
class Call:
    """One kernel call of the schedule."""

    op: str
    comment: str
    fn: str | None
    """Kernel function, or None for a RESHAPE (aliasing, no code)."""
    params: str
    args: list[int | str]
    """Input tensor indices, or C expressions for constant operands."""
    output: int


@dataclass
class Lowered:
    """Declarations, schedule and lifetimes produced by ``lower``."""

    prefix: str
    decls: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    sizes: dict[int, int] = field(default_factory=dict)
    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    root: dict[int, int] = field(default_factory=dict)
    const_bytes: int = 0

    def array(self, name: str, ctype: str, values: np.ndarray | None) -> str:
        """Emit a const array; returns its identifier. ``values`` None (a tensor the model
        computes where the op needs constants) is refused naming the array."""
        if values is None:
            raise CompileError(f"{name}: the op needs constant data here, the model computes it")
        name = ident(name)
        flat = [int(v) for v in np.asarray(values).reshape(-1)]
        rows = [", ".join(str(v) for v in flat[i : i + 16]) for i in range(0, len(flat), 16)]
        self.decls.append(f"static const {ctype} {name}[{len(flat)}] = {{")
        self.decls += [f"    {r}," for r in rows]
        self.decls.append("};")
        self.const_bytes += len(flat) * (1 if ctype == "int8_t" else 2 if "int16" in ctype else 4)
        return name

    def struct(self, name: str, ctype: str, fields: dict[str, Any]) -> str:
        """Emit a const parameter struct with designated initialisers; returns ``&name``."""
        name = ident(name)
        self.decls.append(f"static const {ctype} {name} = {{")
        for k, v in fields.items():
            self.decls.append(f"    .{ident(k)} = {c_value(v)},")
        self.decls.append("};")
        return f"&{name}"
