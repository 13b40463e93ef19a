"""The serial protocol at both ends: firmware/core/es_protocol.c and earshot/protocol.py.

Both are held to the same lines, docs/serial-protocol-examples.txt: the C formatter must print
every valid line byte for byte, the Python parser must read it back and format it unchanged, and
both must refuse the invalid ones.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earshot import protocol as P

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "firmware" / "core"
EXAMPLES = ROOT / "docs" / "serial-protocol-examples.txt"
BUILD = ROOT / "build" / "tests-protocol"
ES_OK = 0
ES_ERR_SHAPE = 2  # es_common.h


def _examples() -> tuple[list[str], list[str]]:
    valid, invalid = [], []
    for raw in EXAMPLES.read_text().splitlines():
        if not raw or raw.startswith("#"):
            continue
        (invalid if raw.startswith("! ") else valid).append(raw.removeprefix("! "))
    return valid, invalid


VALID, INVALID = _examples()


def build_shared(name: str, sources: list[Path]) -> ctypes.CDLL:
    """Compile C sources of the core into a shared library under build/ (warnings are errors)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / f"lib{name}.so"
    cmd = [
        "gcc", "-std=c99", "-O1", "-g", "-shared", "-fPIC",
        "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wconversion",
        f"-I{CORE}", "-o", str(out), *map(str, sources),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"gcc failed:\n{done.stderr}"
    return ctypes.CDLL(str(out))


class Hello(ctypes.Structure):
    _fields_ = [
        ("fw", ctypes.c_char_p),
        ("board", ctypes.c_char_p),
        ("id", ctypes.c_uint8 * 8),
        ("model_sha256", ctypes.c_char_p),
        ("labels", ctypes.POINTER(ctypes.c_char_p)),
        ("n_labels", ctypes.c_uint16),
        ("rate", ctypes.c_uint32),
        ("mode", ctypes.c_int),
    ]


class Health(ctypes.Structure):
    _fields_ = [(k, ctypes.c_uint32) for k in ("t_ms", "loop_us", "cpu", "dropped")] + [
        ("mode", ctypes.c_int)
    ]


class Command(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("mode", ctypes.c_int)]


class CmdReader(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_char * 64), ("len", ctypes.c_size_t), ("discarding", ctypes.c_bool)]


CMD_NONE, CMD_HELLO, CMD_MODE, CMD_BAD, CMD_TOO_LONG = range(5)
MODES = {"detect": 0, "raw": 1}


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    return build_shared("es_protocol", [CORE / "es_protocol.c"])


def c_format(lib: ctypes.CDLL, msg: P.Message, cap: int = 2048) -> tuple[int, str]:
    """Call the C formatter that matches ``msg``; returns (status, line)."""
    out = ctypes.create_string_buffer(cap)
    n = ctypes.c_size_t(0)
    tail = (out, ctypes.c_size_t(cap), ctypes.byref(n))
    if isinstance(msg, P.Hello):
        labels = (ctypes.c_char_p * len(msg.labels))(*(s.encode() for s in msg.labels))
        h = Hello(
            msg.fw.encode(), msg.board.encode(), (ctypes.c_uint8 * 8)(*bytes.fromhex(msg.id)),
            msg.model.encode(), labels, len(msg.labels), msg.rate, MODES[msg.mode],
        )  # fmt: skip
        rc = lib.es_proto_hello(ctypes.byref(h), *tail)
    elif isinstance(msg, P.Det):
        milli = ctypes.c_uint32(round(msg.score * 1000))
        rc = lib.es_proto_det(ctypes.c_uint32(msg.t), msg.label.encode(), milli, *tail)
    elif isinstance(msg, P.Scores):
        q = (ctypes.c_uint16 * len(msg.q))(*msg.q)
        rc = lib.es_proto_scores(ctypes.c_uint32(msg.t), q, ctypes.c_size_t(len(msg.q)), *tail)
    elif isinstance(msg, P.Status):
        s = Health(msg.t, msg.loop_us, msg.cpu, msg.dropped, MODES[msg.mode])
        rc = lib.es_proto_health(ctypes.byref(s), *tail)
    elif isinstance(msg, P.Err):
        rc = lib.es_proto_err(msg.code.encode(), msg.msg.encode(), *tail)
    elif isinstance(msg, P.Ok):
        rc = lib.es_proto_ok(MODES[msg.mode], *tail)
    elif isinstance(msg, P.Audio):
        pcm = np.frombuffer(msg.pcm, "<i2").astype(np.int16)
        rc = lib.es_proto_audio(
            ctypes.c_uint32(msg.seq), pcm.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(len(pcm)), *tail
        )
    else:
        raise AssertionError(f"no C formatter for {msg!r}")
    assert out.value.decode() == "" or n.value == len(out.value)
    return rc, out.value.decode()


def c_parse_command(lib: ctypes.CDLL, line: str) -> tuple[int, Command]:
    cmd = Command()
    raw = line.encode()
    rc = lib.es_proto_parse_command(raw, ctypes.c_size_t(len(raw)), ctypes.byref(cmd))
    return rc, cmd


def c_feed(lib: ctypes.CDLL, reader: CmdReader, data: bytes) -> list[int]:
    """Feed bytes to the C command reader; returns the kinds of completed lines."""
    kinds = []
    for b in data:
        cmd = Command()
        assert lib.es_cmd_reader_feed(ctypes.byref(reader), ctypes.c_char(b), ctypes.byref(cmd)) == ES_OK
        assert reader.len < 64
        if cmd.kind != CMD_NONE:
            kinds.append(cmd.kind)
    return kinds


# --- the shared example lines ------------------------------------------------------------------


@pytest.mark.parametrize("line", VALID)
def test_python_parses_and_formats_each_example_unchanged(line: str) -> None:
    assert P.format_message(P.parse_line(line.encode() + b"\n")) == line + "\n"
    assert P.format_message(P.parse_line(line + "\r\n")) == line + "\n"


@pytest.mark.parametrize("line", INVALID)
def test_python_rejects_each_invalid_example(line: str) -> None:
    with pytest.raises(P.ProtocolError):
        P.parse_line(line)


@pytest.mark.parametrize("line", [x for x in VALID if " CMD " not in x])
def test_c_formatter_prints_each_example_byte_for_byte(lib: ctypes.CDLL, line: str) -> None:
    rc, out = c_format(lib, P.parse_line(line))
    assert rc == ES_OK
    assert out == line + "\n"


def test_examples_cover_every_line_type() -> None:
    kinds = {type(P.parse_line(x)).__name__ for x in VALID}
    assert kinds == {"Hello", "Det", "Scores", "Status", "Err", "Ok", "Audio", "Command"}


def test_c_parses_the_example_commands(lib: ctypes.CDLL) -> None:
    for line in [x for x in VALID if " CMD " in x]:
        rc, cmd = c_parse_command(lib, line)
        want = P.parse_line(line)
        assert rc == ES_OK, line
        assert isinstance(want, P.Command)
        if want.verb == "hello":
            assert cmd.kind == CMD_HELLO
        else:
            assert (cmd.kind, cmd.mode) == (CMD_MODE, MODES[str(want.value)])
    for line in [x for x in INVALID if " CMD" in x]:
        assert c_parse_command(lib, line)[0] != ES_OK, line


def test_parsed_fields_are_what_the_lines_say() -> None:
    hello = P.parse_line(VALID[0])
    assert isinstance(hello, P.Hello)
    assert (hello.board, hello.id, hello.labels[-1], hello.rate) == (
        "pico", "E66058388B4A1234", "_unknown_", 16000,
    )  # fmt: skip
    det = P.parse_line("ES1 DET t=12345 label=yes score=0.871")
    assert det == P.Det(t=12345, label="yes", score=0.871)
    audio = P.parse_line("ES1 AUD seq=0 n=4 crc=5A8C data=AAABAP9/AIA=")
    assert isinstance(audio, P.Audio)
    assert np.frombuffer(audio.pcm, "<i2").tolist() == [0, 1, 32767, -32768]
    assert P.crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


def test_other_versions_raise_version_error_naming_it() -> None:
    with pytest.raises(P.VersionError, match="protocol version 2") as e:
        P.parse_line("ES2 DET t=12345 label=yes score=0.871")
    assert e.value.version == 2


# --- C edge cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 100, 255, 256])
def test_c_audio_frames_decode_to_the_same_samples_in_python(lib: ctypes.CDLL, n: int) -> None:
    pcm = np.random.default_rng(n).integers(-32768, 32768, n).astype(np.int16)
    msg = P.Audio(seq=7 * n, pcm=pcm.astype("<i2").tobytes())
    rc, line = c_format(lib, msg)
    assert rc == ES_OK
    assert len(line) <= P.MAX_LINE
    back = P.parse_line(line)
    assert isinstance(back, P.Audio)
    assert back.seq == 7 * n
    assert np.array_equal(np.frombuffer(back.pcm, "<i2"), pcm)


def test_c_refuses_values_that_would_break_the_line(lib: ctypes.CDLL) -> None:
    assert c_format(lib, P.Det(t=1, label="two words", score=0.5))[0] != ES_OK
    assert c_format(lib, P.Det(t=1, label="a=b", score=0.5))[0] != ES_OK
    assert c_format(lib, P.Det(t=1, label="yes", score=1.001))[0] != ES_OK
    assert c_format(lib, P.Status(t=1, loop_us=1, cpu=101, dropped=0, mode="raw"))[0] != ES_OK
    assert c_format(lib, P.Scores(t=1, q=(257,)))[0] != ES_OK
    assert c_format(lib, P.Err(code="Bad Code", msg="x"))[0] != ES_OK
    bad_sha = P.Hello("0.1.0", "pico", "00" * 8, "A" * 64, ("yes",), 16000, "detect")
    assert c_format(lib, bad_sha)[0] != ES_OK


def test_c_error_messages_cannot_inject_a_line(lib: ctypes.CDLL) -> None:
    rc, line = c_format(lib, P.Err(code="audio", msg="bad\nES1 DET t=1 label=x score=1.000"))
    assert rc == ES_OK
    assert line == "ES1 ERR code=audio msg=bad?ES1 DET t=1 label=x score=1.000\n"


def test_c_small_buffer_is_an_error_and_leaves_an_empty_string(lib: ctypes.CDLL) -> None:
    line = "ES1 DET t=12345 label=yes score=0.871\n"
    rc, out = c_format(lib, P.parse_line(line), cap=len(line))  # no room for the NUL
    assert (rc, out) == (ES_ERR_SHAPE, "")
    rc, out = c_format(lib, P.parse_line(line), cap=len(line) + 1)
    assert (rc, out) == (ES_OK, line)


def test_c_command_reader_handles_fragments_crlf_garbage_and_long_lines(lib: ctypes.CDLL) -> None:
    reader = CmdReader()
    assert lib.es_cmd_reader_init(ctypes.byref(reader)) == ES_OK
    assert c_feed(lib, reader, b"ES1 CMD mo") == []
    assert c_feed(lib, reader, b"de=raw\r\n") == [CMD_MODE]
    assert c_feed(lib, reader, b"\n\r\n") == []  # empty lines are ignored
    assert c_feed(lib, reader, b"\x00\xffgarbage\n") == [CMD_BAD]
    assert c_feed(lib, reader, b"x" * 500 + b"ES1 CMD hello\n") == [CMD_TOO_LONG]
    assert c_feed(lib, reader, b"ES1 CMD hello\n") == [CMD_HELLO]
    assert c_feed(lib, reader, b"x" * 63 + b"\n") == [CMD_BAD]  # 64 bytes with newline: fits
    assert c_feed(lib, reader, b"x" * 64 + b"\n") == [CMD_TOO_LONG]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_c_command_reader_survives_any_bytes(lib: ctypes.CDLL, data: bytes) -> None:
    reader = CmdReader()
    lib.es_cmd_reader_init(ctypes.byref(reader))
    kinds = c_feed(lib, reader, data + b"\nES1 CMD hello\n")
    assert kinds[-1] == CMD_HELLO


# --- Python stream handling ---------------------------------------------------------------------


def test_line_splitter_joins_partial_lines_and_drops_long_ones() -> None:
    sp = P.LineSplitter(max_line=32)
    assert sp.feed(b"ES1 OK mo") == []
    assert sp.feed(b"de=raw\nES1 OK") == [b"ES1 OK mode=raw"]
    assert sp.feed(b" mode=detect\n" + b"y" * 100) == [b"ES1 OK mode=detect"]
    assert sp.buffered == 0 and sp.overlong == 1
    assert sp.feed(b"y" * 100 + b"\nES1 OK mode=raw\n") == [b"ES1 OK mode=raw"]
    assert sp.overlong == 1
    assert sp.feed(b"x" * 31 + b"\n") == [b"x" * 31]  # 32 bytes with its newline: fits
    assert sp.feed(b"x" * 32 + b"\n" + b"z" * 30 + b"\n") == [b"z" * 30]
    assert sp.overlong == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=20))
def test_fuzzed_streams_never_crash_the_parser_or_grow_its_buffer(chunks: list[bytes]) -> None:
    sp = P.LineSplitter()
    for chunk in chunks:
        for line in sp.feed(chunk):
            assert len(line) < P.MAX_LINE
            try:
                P.parse_line(line)
            except P.ProtocolError:
                pass
        assert sp.buffered < P.MAX_LINE
    assert sp.feed(b"\nES1 OK mode=raw\n")[-1] == b"ES1 OK mode=raw"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_a_corrupted_example_is_rejected_or_parsed_never_crashes(line: str, pos: int, junk: bytes) -> None:
    raw = bytearray(line.encode())
    pos = min(pos, len(raw) - 1)
    raw[pos : pos + len(junk)] = junk
    try:
        P.parse_line(bytes(raw))
    except P.ProtocolError:
        pass
