"""What ``earshotd`` and ``earshot-train`` share: registering subcommands from their modules.

Each subcommand lives in the module that does the work; that module exposes
``add_parser(subparsers)``, which registers the subcommand and sets ``func``. Modules are
imported here, when the parser is built, so ``--help`` pays only for what the modules import at
their top level (TensorFlow never: the trainer imports it inside the functions that train).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterable


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph text (descriptions) as usual but keeps text with line breaks (the
    examples of an epilog) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_commands(parser: argparse.ArgumentParser, modules: Iterable[str]) -> None:
    """A required COMMAND subparser with one subcommand per module, in the given order."""
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        importlib.import_module(name).add_parser(sub)
