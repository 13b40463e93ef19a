"""Signals that arrive before the service is built: held, then replayed to it.

``earshotd run`` spends seconds importing numpy and the interpreter and loading the model
before its service exists. A SIGHUP in that time would kill the process (the default action,
exit status 129) and a SIGTERM would skip the clean stop. :func:`hold` is called first thing
in ``earshotd``'s ``main`` for the ``run`` command; it records SIGHUP, SIGTERM and SIGINT, and
``daemon.service`` replays them once its own handlers are in place (a held SIGHUP becomes a
reload, a held SIGTERM a clean stop before the first read).
"""

from __future__ import annotations

import signal
from typing import Any

_PENDING: list[int] = []
HELD = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


def _record(signum: int, frame: Any) -> None:
    if signum not in _PENDING:
        _PENDING.append(signum)


def hold() -> None:
    """Record SIGHUP/SIGTERM/SIGINT until the service takes over."""
    for sig in HELD:
        signal.signal(sig, _record)


def take_pending() -> list[int]:
    """The signals held so far (each once, in arrival order); clears the list."""
    out = list(_PENDING)
    _PENDING.clear()
    return out
