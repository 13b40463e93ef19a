"""The Pico ↔ Pi serial protocol, version 1: parse and format lines (docs/serial-protocol.md).

Pure functions and small value types, no I/O. ``parse_line`` turns one received line into a
message or raises ``ProtocolError`` saying why; ``format_message`` is its inverse and prints the
same bytes the firmware's C formatter prints (both are tested against
``docs/serial-protocol-examples.txt``). ``LineSplitter`` cuts a byte stream into lines with a
bounded buffer, so garbage and over-long lines cost bounded memory.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

VERSION = 1
MAX_LINE = 1024
"""Longest line, newline included (bytes)."""
MAX_COMMAND_LINE = 64
"""Longest host → Pico command line, newline included (bytes)."""
MAX_AUDIO_SAMPLES = 256
"""Most samples in one AUD frame."""
MODES = ("detect", "raw")
U32_MAX = 0xFFFFFFFF

_HEADER = re.compile(r"ES(\d{1,3})")
_KEY = re.compile(r"[a-z0-9_]{1,16}")
_LABEL = re.compile(r"[^\s,=]+")
_HEX16 = re.compile(r"[0-9A-F]{16}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CRC = re.compile(r"[0-9A-F]{4}")
_SCORE = re.compile(r"(0|1)\.\d{1,6}|0|1")
_FW = re.compile(r"\d+\.\d+\.\d+")


class ProtocolError(ValueError):
    """A line is not valid protocol; the message says what is wrong with it."""


class VersionError(ProtocolError):
    """A line from another protocol version (``version`` holds it)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"protocol version {version} is not supported (this host speaks {VERSION})")
        self.version = version


@dataclass(frozen=True)
class Hello:
    """Who a board is: sent at boot, after a mode change and on request."""

    fw: str
    board: str
    id: str
    model: str
    labels: tuple[str, ...]
    rate: int
    mode: str


@dataclass(frozen=True)
class Det:
    """A detection by the board's own recogniser."""

    t: int
    label: str
    score: float


@dataclass(frozen=True)
class Scores:
    """Per-inference scores as levels of 1/256, in label order."""

    t: int
    q: tuple[int, ...]

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(v / 256.0 for v in self.q)


@dataclass(frozen=True)
class Status:
    """Periodic health report."""

    t: int
    loop_us: int
    cpu: int
    dropped: int
    mode: str


@dataclass(frozen=True)
class Err:
    """An error report from the board (never fatal for the protocol)."""

    code: str
    msg: str


@dataclass(frozen=True)
class Ok:
    """A command was accepted."""

    mode: str


@dataclass(frozen=True)
class Audio:
    """One raw-audio frame: int16 little-endian PCM bytes, already CRC-checked."""

    seq: int
    pcm: bytes

    @property
    def n(self) -> int:
        return len(self.pcm) // 2


@dataclass(frozen=True)
class Command:
    """Host → board: ``verb`` is ``mode`` (with ``value``) or ``hello``."""

    verb: str
    value: str | None = None


Message = Hello | Det | Scores | Status | Err | Ok | Audio | Command


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor."""
    for byte in data:
        crc = _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF] ^ ((crc << 8) & 0xFFFF)
    return crc


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


# --- parsing -----------------------------------------------------------------------------------


def _u32(fields: dict[str, str], key: str, hi: int = U32_MAX) -> int:
    text = _need(fields, key)
    if not text.isdigit() or len(text) > 10 or int(text) > hi:
        raise ProtocolError(f"{key}={text!r} is not an integer in 0..{hi}")
    return int(text)


def _need(fields: dict[str, str], key: str) -> str:
    if key not in fields:
        raise ProtocolError(f"missing key {key!r}")
    return fields[key]


def _match(fields: dict[str, str], key: str, pattern: re.Pattern[str], what: str) -> str:
    text = _need(fields, key)
    if not pattern.fullmatch(text):
        raise ProtocolError(f"{key}={text!r} is not {what}")
    return text


def _mode(fields: dict[str, str]) -> str:
    mode = _need(fields, "mode")
    if mode not in MODES:
        raise ProtocolError(f"mode={mode!r} is not one of {', '.join(MODES)}")
    return mode


def _fields(tokens: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for tok in tokens:
        key, eq, value = tok.partition("=")
        if not eq or not _KEY.fullmatch(key):
            raise ProtocolError(f"{tok!r} is not key=value")
        if key in fields:
            raise ProtocolError(f"key {key!r} appears twice")
        fields[key] = value
    return fields


def _parse_hello(f: dict[str, str]) -> Hello:
    labels = tuple(_need(f, "labels").split(","))
    if not all(_LABEL.fullmatch(x) for x in labels):
        raise ProtocolError(f"labels={f['labels']!r} holds an empty or bad label")
    return Hello(
        fw=_match(f, "fw", _FW, "a version like 1.2.3"),
        board=_match(f, "board", _LABEL, "a board name"),
        id=_match(f, "id", _HEX16, "16 upper-case hex digits"),
        model=_match(f, "model", _SHA256, "a sha256 in lower-case hex"),
        labels=labels,
        rate=_u32(f, "rate", 384000),
        mode=_mode(f),
    )


def _parse_det(f: dict[str, str]) -> Det:
    score = _match(f, "score", _SCORE, "a score in 0..1")
    if float(score) > 1.0:
        raise ProtocolError(f"score={score!r} is above 1")
    label = _match(f, "label", _LABEL, "a label")
    return Det(t=_u32(f, "t"), label=label, score=float(score))


def _parse_scores(f: dict[str, str]) -> Scores:
    parts = _need(f, "q").split(",")
    if not all(p.isdigit() and len(p) <= 3 and int(p) <= 256 for p in parts):
        raise ProtocolError(f"q={f['q']!r} is not a list of integers in 0..256")
    return Scores(t=_u32(f, "t"), q=tuple(int(p) for p in parts))


def _parse_status(f: dict[str, str]) -> Status:
    return Status(
        t=_u32(f, "t"),
        loop_us=_u32(f, "loop_us"),
        cpu=_u32(f, "cpu", 100),
        dropped=_u32(f, "dropped"),
        mode=_mode(f),
    )


def _parse_audio(f: dict[str, str]) -> Audio:
    n = _u32(f, "n", MAX_AUDIO_SAMPLES)
    if n == 0:
        raise ProtocolError("n=0: an audio frame holds at least one sample")
    crc = int(_match(f, "crc", _CRC, "4 upper-case hex digits"), 16)
    try:
        pcm = base64.b64decode(_need(f, "data"), validate=True)
    except binascii.Error as e:
        raise ProtocolError(f"data is not valid base64 ({e})") from None
    if len(pcm) != 2 * n:
        raise ProtocolError(f"data holds {len(pcm)} bytes, n={n} needs {2 * n}")
    if crc16(pcm) != crc:
        raise ProtocolError(f"crc mismatch: line says {crc:04X}, data gives {crc16(pcm):04X}")
    return Audio(seq=_u32(f, "seq"), pcm=pcm)


def _parse_command(tokens: list[str]) -> Command:
    if tokens == ["hello"]:
        return Command("hello")
    if len(tokens) == 1 and tokens[0] in ("mode=detect", "mode=raw"):
        return Command("mode", tokens[0].partition("=")[2])
    raise ProtocolError(f"unknown command {' '.join(tokens)!r}")


_PARSERS: dict[str, Callable[[dict[str, str]], Message]] = {
    "HELLO": _parse_hello,
    "DET": _parse_det,
    "SCORES": _parse_scores,
    "STATUS": _parse_status,
    "OK": lambda f: Ok(mode=_mode(f)),
    "AUD": _parse_audio,
}


def parse_line(line: bytes | str) -> Message:
    """Parse one line (with or without its newline). Raises ProtocolError / VersionError."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise ProtocolError(f"line of {len(line)} bytes is longer than {MAX_LINE}")
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError("line holds non-ASCII bytes") from None
    else:
        text = line
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.isprintable() or not text.isascii():
        raise ProtocolError("line holds control or non-ASCII characters")
    tokens = text.split(" ")
    header = _HEADER.fullmatch(tokens[0])
    if header is None:
        raise ProtocolError(f"line does not start with ES<version>: {text[:40]!r}")
    if int(header.group(1)) != VERSION:
        raise VersionError(int(header.group(1)))
    if len(tokens) < 2:
        raise ProtocolError("line has no type")
    kind, rest = tokens[1], tokens[2:]
    if kind == "ERR":
        return _parse_err(text)
    if kind == "CMD":
        return _parse_command(rest)
    if kind not in _PARSERS:
        raise ProtocolError(f"unknown line type {kind[:16]!r}")
    return _PARSERS[kind](_fields(rest))


def _parse_err(text: str) -> Err:
    head, sep, msg = text.partition(" msg=")
    f = _fields(head.split(" ")[2:])
    if not sep:
        raise ProtocolError("missing key 'msg'")
    return Err(code=_match(f, "code", _KEY, "an error code"), msg=msg)


# --- formatting --------------------------------------------------------------------------------


def format_message(msg: Message) -> str:
    """The line (with its newline) for ``msg``, exactly as the firmware prints it."""
    return f"ES{VERSION} {_body(msg)}\n"


def _body(msg: Message) -> str:
    if isinstance(msg, Hello):
        return (
            f"HELLO fw={msg.fw} board={msg.board} id={msg.id} model={msg.model} "
            f"labels={','.join(msg.labels)} rate={msg.rate} mode={msg.mode}"
        )
    if isinstance(msg, Det):
        return f"DET t={msg.t} label={msg.label} score={msg.score:.3f}"
    if isinstance(msg, Scores):
        return f"SCORES t={msg.t} q={','.join(str(v) for v in msg.q)}"
    if isinstance(msg, Status):
        return (
            f"STATUS t={msg.t} loop_us={msg.loop_us} cpu={msg.cpu} dropped={msg.dropped} "
            f"mode={msg.mode}"
        )
    if isinstance(msg, Err):
        return f"ERR code={msg.code} msg={msg.msg}"
    if isinstance(msg, Ok):
        return f"OK mode={msg.mode}"
    if isinstance(msg, Audio):
        data = base64.b64encode(msg.pcm).decode("ascii")
        return f"AUD seq={msg.seq} n={msg.n} crc={crc16(msg.pcm):04X} data={data}"
    if isinstance(msg, Command):
        return "CMD hello" if msg.verb == "hello" else f"CMD {msg.verb}={msg.value}"
    raise TypeError(f"not a protocol message: {msg!r}")


# --- stream handling ---------------------------------------------------------------------------


class LineSplitter:
    """Cuts received bytes into lines; never holds more than ``max_line`` bytes.

    ``feed`` returns the complete lines (newline stripped). A line longer than ``max_line``
    is dropped up to its newline and counted in ``overlong``.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.overlong = 0
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            end = len(data) if nl < 0 else nl
            if not self._discarding:
                self._buf += data[start:end]
                if len(self._buf) >= self.max_line:  # no room left for the newline
                    self._buf.clear()
                    self._discarding = True
                    self.overlong += 1
            if nl < 0:
                break
            if not self._discarding:
                lines.append(bytes(self._buf))
            self._buf.clear()
            self._discarding = False
            start = nl + 1
        return lines

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line."""
        return len(self._buf)
