"""C text helpers: identifiers, string literals and initialiser values."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .errors import CompileError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def ident(name: str) -> str:
    """Return ``name`` if it is a valid C identifier, else raise CompileError."""
    if not _IDENT.match(name):
        raise CompileError(f"{name!r} is not a valid C identifier")
    return name


def c_string(s: str) -> str:
    """A C string literal for ``s``: printable ASCII as is, everything else as octal escapes."""
    out = []
    for byte in s.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_value(v: Any) -> str:
    """A C initialiser: tuples become braces, dicts designated initialisers, ints decimal."""
    if isinstance(v, tuple):
        return "{" + ", ".join(c_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f".{ident(k)} = {c_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        iv = int(v)
        return "INT32_MIN" if iv == -(1 << 31) else str(iv)
    return str(v)
