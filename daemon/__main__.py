"""``earshotd``: the Pi daemon's command line (also ``python -m daemon``).

This module only parses, validates and wires. Each subcommand lives in the module that does the
work and exposes ``add_parser(subparsers)``, which registers it and sets ``func``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from daemon.cli import HelpFormatter, add_commands

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


EPILOG = """examples:
  earshotd run --config /etc/earshot/earshot.toml
  earshotd classify --model /usr/share/earshot/models/pi --json clip.wav
  earshotd run --help            (every flag of a command, grouped by config table)
"""


def version_text(prog: str = "earshotd") -> str:
    """Package version, bundle format version and, in a git checkout, ``git describe``."""
    from importlib.metadata import PackageNotFoundError, version

    from earshot.bundle import FORMAT_VERSION

    try:
        pkg = version("earshot")
    except PackageNotFoundError:
        pkg = "unknown"
    text = f"{prog} {pkg} (bundle format {FORMAT_VERSION})"
    described = _git_describe(Path(__file__).resolve().parents[1])
    return f"{text}, git {described}" if described else text


def _git_describe(repo: Path) -> str | None:
    if not (repo / ".git").exists():
        return None  # an installed package, not a checkout
    try:
        out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--tags"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earshotd",
        description=(
            "earshot daemon: listen on a microphone (or attached Picos), recognise sounds with a "
            "trained bundle, and show alerts on an OLED, in journald, as JSON events and over "
            "MQTT (Home Assistant discovery); keep clips of detections for relabelling."
        ),
        epilog=EPILOG, formatter_class=HelpFormatter,
    )
    parser.add_argument("--debug", action="store_true",
                        help="verbose logging, and native libraries' messages (TFLite's XNNPACK)")
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the package, bundle format and git versions and exit")
    add_commands(parser, COMMAND_MODULES)
    return parser


def _command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    if _command(sys.argv[1:] if argv is None else argv) == "run":
        from daemon import signals

        signals.hold()  # before the slow imports: a SIGHUP now must not kill the service
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
