"""``earshotd run``: the daemon as a systemd service (daemon.service does the work).

Order: settings (refuse bad config, exit 2), logging (journald under systemd), then the
service (``daemon.service.Service``): a bad bundle, output file or audio source is refused with
its reason and exit status 2 before READY=1.

Picos: with ``[serial] enabled`` (or ``--serial-ports``) the boards are hosted beside the local
source (``daemon.pico_ears``) and publish to the same outputs. With ``[source] kind = "none"``
there is no local audio and no local model: the daemon only hosts Picos.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from earshot.bundle import BundleError
from earshot.wavio import WavError

from . import config
from .cli import HelpFormatter
from .config import ConfigError
from .listen import ListenSink
from .notify import Notifier
from .outputs import setup_logging
from .service import Service

_LOGGER = logging.getLogger(__name__)

START_ERRORS = (BundleError, ConfigError, RuntimeError, OSError, WavError)
"""What a bad bundle, output file or audio source raises at start (SourceError is a RuntimeError)."""


EPILOG = """examples:
  earshotd run --config /etc/earshot/earshot.toml          (what the systemd unit runs)
  earshotd run --model bundles/pi --source-kind wav --source-wav test.wav --no-source-realtime \\
      --no-oled-enabled --output-journal off --output-json -
  arecord -D hw:1 -f S16_LE -r 48000 -c 1 -t raw | earshotd run --source-kind stdin \\
      --source-stdin-rate 48000

exit status: 0 stopped cleanly (SIGTERM, end of a WAV), 2 refused to start (bad config, bundle,
output or audio source; the message names the file, key or device). SIGHUP (systemctl reload
earshot) re-reads the config and bundles; a reload that fails keeps the running settings.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", usage="earshotd run [--config TOML] [--FLAG VALUE ...]",
        help="listen and report detections (the systemd service)",
        description=(
            "Run the recogniser on the microphone (or a WAV file / stdin) and report detections "
            "to the OLED, journald and optionally JSON lines. Every config key has a flag below; "
            "a flag overrides the file."
        ),
        epilog=EPILOG, formatter_class=HelpFormatter,
    )
    p.add_argument("--listen", action="store_true",
                   help="also print every hop's level and label scores (see `earshotd listen`)")
    config.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, i2c_factory: Callable[[int], Any] | None = None) -> int:
    try:
        settings = config.from_args(args)
    except ConfigError as e:
        return _refuse(e)
    setup_logging(settings.output.journal, getattr(args, "debug", False))
    notifier = Notifier()
    try:
        listen = ListenSink() if getattr(args, "listen", False) else None
        service = Service(settings, lambda: config.from_args(args), notifier, i2c_factory,
                          listen=listen)
    except START_ERRORS as e:
        notifier.close()
        return _refuse(e)
    return service.main()


def _refuse(e: Exception) -> int:
    print(f"earshotd: error: {e}", file=sys.stderr)
    return 2
