"""Settings dataclasses whose fields carry their own default, help and rules, and the flags made
from them: one field, one flag, one default.

A field is declared with :func:`opt`::

    epochs: int = opt(30, "max epochs per phase", lo=1)

Rules: ``choices`` (allowed values), ``lo``/``hi`` (inclusive numeric bounds, either or both),
``above`` (exclusive lower bound), ``metavar`` (the flag's placeholder), ``shown`` (the default
as ``--help`` says it, when the value alone does not tell, e.g. ``None``). A field whose default
is ``dataclasses.MISSING`` is required.

:func:`options` reads a class's fields as :class:`Option` records (the kind comes from the type
annotation: bool, int, float, str, path or list, ``X | None`` allowed); :func:`check` validates
one value against them, :func:`add_flag` adds the matching argparse flag. ``daemon.config``
(TOML keys plus ``--section-key`` flags) and ``trainer.train`` (``earshot-train train``) are
built on these.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MISSING: Any = dataclasses.MISSING
"""The default of a required field."""

_KINDS = {bool: "bool", int: "int", float: "float", str: "str", Path: "path", list: "list",
          tuple: "list"}  # fmt: skip


def opt(default: Any, help: str, **rules: Any) -> Any:
    """A settings field: its default, its one-line help (with units) and validation rules."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **rules})
    return field(default=default, metadata={"help": help, **rules})


@dataclass(frozen=True)
class Option:
    """One settings field as the validation and the command line see it."""

    name: str
    kind: str
    """bool, int, float, str, path or list (of strings)."""
    default: Any
    """The default value, or ``MISSING`` for a required field."""
    nullable: bool
    """``None`` is allowed (the annotation is ``X | None``)."""
    container: type
    """For lists: ``list`` or ``tuple``, what :func:`check` returns."""
    rules: typing.Mapping[str, Any]
    """``help`` and the rules given to :func:`opt`."""

    @property
    def help(self) -> str:
        return str(self.rules["help"])


def options(cls: type) -> dict[str, Option]:
    """The fields of dataclass ``cls`` declared with :func:`opt`, by name, in order."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        hint, nullable = _unwrap(hints[f.name])
        origin = typing.get_origin(hint) or hint
        default = f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default  # type: ignore[misc,operator]
        out[f.name] = Option(f.name, _KINDS[origin], default, nullable,
                             tuple if origin is tuple else list, f.metadata)  # fmt: skip
    return out


def _unwrap(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0], len(rest) < len(typing.get_args(hint))
    return hint, False


def describe(o: Option) -> str:
    """What ``o`` accepts, as an error message says it: "an integer from 10 to 250"."""
    m = o.rules
    if "choices" in m:
        return "one of " + ", ".join(repr(c) if isinstance(c, str) else str(c) for c in m["choices"])
    if o.kind in ("int", "float"):
        noun = "an integer" if o.kind == "int" else "a number"
        if "lo" in m and "hi" in m:
            return f"{noun} from {m['lo']} to {m['hi']}"
        if "lo" in m:
            return f"{noun} >= {m['lo']}"
        if "above" in m:
            return f"{noun} > {m['above']}"
        return noun
    return {"bool": "true or false", "str": "a string", "path": "a path",
            "list": "a list of strings"}[o.kind]  # fmt: skip


def check(o: Option, value: Any, where: str, error: type[Exception] = ValueError) -> Any:
    """``value`` converted to ``o``'s type; else ``error("<where> must be <describe>, got ...")``."""
    if value is None and o.nullable:
        return None
    bad = error(f"{where} must be {describe(o)}, got {value!r}")
    converted = _convert(o, value)
    if converted is None:
        raise bad
    m = o.rules
    if "choices" in m and converted not in m["choices"]:
        raise bad
    if ("lo" in m and converted < m["lo"]) or ("hi" in m and converted > m["hi"]):
        raise bad
    if "above" in m and not converted > m["above"]:
        raise bad
    return converted


def _convert(o: Option, value: Any) -> Any:
    """``value`` as ``o.kind``, or None when it is not one."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if o.kind == "bool":
        return value if isinstance(value, bool) else None
    if o.kind == "int":
        return value if is_number and isinstance(value, int) else None
    if o.kind == "float":
        return float(value) if is_number and not math.isnan(value) else None
    if o.kind == "str":
        return value if isinstance(value, str) else None
    if o.kind == "path":
        return Path(value) if isinstance(value, (str, Path)) else None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return o.container(value)
    return None


def parse_text(kind: str) -> Callable[[str], Any]:
    """The argparse ``type`` for a flag of ``kind`` (ints also in hex: 0x3C)."""

    def parse(text: str) -> Any:
        if kind == "int":
            try:
                return int(text, 0)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if kind == "float":
            try:
                return float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if kind == "list":
            return [t.strip() for t in text.split(",") if t.strip()]
        if kind == "path":
            return Path(text)
        return text

    return parse


def add_flag(group: Any, o: Option, flag: str, dest: str, shown: str) -> None:
    """Add ``flag`` for ``o`` to an argparse parser or group; its value lands in ``dest`` (None
    when not given; a required field's flag is required). The help says ``shown`` as the default
    and lists any choices."""
    required = o.default is MISSING
    said = [] if required else [f"default: {shown}"]
    if "choices" in o.rules:
        said.append(f"one of: {', '.join(map(str, o.rules['choices']))}")
    text = (f"{o.help} ({'; '.join(said)})" if said else o.help).replace("%", "%%")
    if o.kind == "bool":
        group.add_argument(flag, dest=dest, default=None, action=argparse.BooleanOptionalAction,
                           help=text)  # fmt: skip
        return
    metavar = o.rules.get("metavar", "LIST" if o.kind == "list" else o.kind.upper())
    group.add_argument(flag, dest=dest, default=None, type=parse_text(o.kind), metavar=metavar,
                       required=required, help=text)  # fmt: skip
