"""The compiler's one error type."""

from __future__ import annotations


class CompileError(ValueError):
    """The model cannot be compiled; the message names the op, tensor or label."""
