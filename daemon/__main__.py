"""``earshotd``: the Pi daemon's command line (also ``python -m daemon``).

This module only parses, validates and wires. Each subcommand lives in the module that does the
work and exposes ``add_parser(subparsers)``, which registers it and sets ``func``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from daemon.cli import add_commands

COMMAND_MODULES = (
    "daemon.runner",       # earshotd run
    "daemon.sources.mic",  # earshotd devices
    "daemon.record",       # earshotd record
    "daemon.classify",     # earshotd classify
    "daemon.serial_host",  # earshotd picos
    "daemon.listen",       # earshotd listen
    "daemon.clip_review",  # earshotd clips
    "daemon.mqtt",         # earshotd mqtt-dropin
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earshotd",
        description=(
            "earshot daemon: listen on a microphone (or attached Picos), recognise sounds with a "
            "trained bundle, and show alerts on an OLED, in journald, as JSON events and over "
            "MQTT (Home Assistant discovery); keep clips of detections for relabelling."
        ),
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    add_commands(parser, COMMAND_MODULES)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.DEBUG if args.debug else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
