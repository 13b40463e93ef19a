"""``earshot-train``: the trainer's command line (also ``python -m trainer``).

Each subcommand lives in the module that does the work; the module exposes
``add_parser(subparsers)`` which registers the subcommand and sets ``func``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from daemon.cli import add_commands

# (module, what it adds) — the order is the order `--help` lists them in.
COMMAND_MODULES = (
    "trainer.synth",
    "trainer.datasets",
    "trainer.train",
    "trainer.evaluate",
    "trainer.streams",
    "trainer.heldout",
    "trainer.stream_eval",
    "trainer.compiler.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earshot-train",
        description=(
            "Train sound recognisers for a Raspberry Pi (float TFLite) and an RP2040 (int8, "
            "compiled to C) from one labelled audio set.\n\n"
            "typical run:\n"
            "  earshot-train synth out/data            # built-in synthetic set\n"
            "  earshot-train train out/data/keywords --out out/bundles\n"
            "  earshot-train evaluate out/bundles/pi out/bundles/rp2040\n"
            "  earshot-train heldout-streams out/data/keywords --labels yes,no --out out/streams\n"
            "  earshot-train evaluate-stream out/bundles/pi --streams out/streams\n"
            "  earshot-train compile out/bundles/rp2040"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from daemon.__main__ import version_text

    parser.add_argument("--debug", action="store_true", help="verbose logging")
    parser.add_argument("--version", action="version", version=version_text("earshot-train"),
                        help="package version, bundle format version, git describe in a checkout")
    add_commands(parser, COMMAND_MODULES)
    return parser


def quiet_tensorflow(debug: bool) -> None:
    """TensorFlow's C++ start-up chatter (CPU instruction notes, XNNPACK, absl) stays out of
    training logs unless ``--debug``; set before TensorFlow is first imported."""
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow(args.debug)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as e:
        # Library errors carry a message naming the file/key; show it without a traceback.
        if args.debug:
            raise
        print(f"earshot-train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
