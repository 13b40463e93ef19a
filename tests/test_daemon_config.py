"""earshotd's config: the example file holds every key, flags override, bad input is named."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from daemon import config
from daemon.config import ConfigError
from tests.test_daemon_helpers import REPO, earshotd

EXAMPLE = REPO / "config" / "earshot.toml"


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    config.add_arguments(p)
    return p.parse_args(argv)


def test_example_file_lists_every_key_with_its_default():
    text = EXAMPLE.read_text()
    for table in dataclasses.fields(config.Settings):
        assert f"[{table.name}]" in text
        for f in dataclasses.fields(table.type if isinstance(table.type, type) else
                                    type(getattr(config.Settings(), table.name))):
            # an unset key (None: e.g. a timing rule the bundle gives) is shown commented out
            assert re.search(rf"^(# )?{f.name} = ", text, re.M), f"{table.name}.{f.name} undocumented"
    assert config.load(EXAMPLE) == config.Settings()


def test_flags_override_the_file(tmp_path: Path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[mic]\ndevice = "sph0645"\nchannel = 1\n[oled]\naddress = 0x3D\n')
    s = config.from_args(_parse("--config", str(cfg), "--mic-channel", "0", "--no-oled-enabled",
                                "--serial-ports", "/dev/ttyACM0,/dev/ttyACM1"))
    assert s.mic.device == "sph0645" and s.mic.channel == 0
    assert s.oled.address == 0x3D and s.oled.enabled is False
    assert s.serial.ports == ["/dev/ttyACM0", "/dev/ttyACM1"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mic.channel = 3  # type: ignore[misc]


@pytest.mark.parametrize("body, message", [
    ("[mic]\ndevcie = 1\n",
     "config {p}: unknown key mic.devcie (allowed in [mic]: device, rate, channels, channel, "
     "format, gain_db, highpass_hz, discard_ms, chunk_ms)"),
    ("[speaker]\n", "config {p}: unknown table [speaker] (allowed: model, source, mic, stream, "
     "detector, oled, output, serial, mqtt, clips)"),
    ('[stream]\nwindow = "centre"\n',
     "config {p}: stream.window (--stream-window) must be one of 'sliding', 'loudest', "
     "got 'centre'"),
    ("[stream]\nhop_ms = 500\n",
     "config {p}: stream.hop_ms (--stream-hop-ms) must be an integer from 10 to 250, got 500"),
    ("[oled]\nheight = 48\n", "config {p}: oled.height (--oled-height) must be one of 64, 32, got 48"),
    ('[oled]\nenabled = "yes"\n',
     "config {p}: oled.enabled (--oled-enabled) must be true or false, got 'yes'"),
    ("[mic]\nchannel = 2\n",
     "config {p}: mic.channel (--mic-channel) must be from 0 to 1 (mic.channels is 2), got 2"),
    ("[serial]\nbaud = 300\n",
     "config {p}: serial.baud (--serial-baud) must be an integer from 1200 to 4000000, got 300"),
    ("[serial]\nports = \"/dev/ttyACM0\"\n",
     "config {p}: serial.ports (--serial-ports) must be a list of strings, got '/dev/ttyACM0'"),
    ("threads = 2\n", "config {p}: unknown key 'threads' at the top level (put it under [model])"),
    ("colour = 1\n", "config {p}: unknown key 'colour' at the top level (keys belong in a "
     "table: [model], [source], [mic], [stream], [detector], [oled], [output], [serial], [mqtt], "
     "[clips])"),
    ('[source]\nkind = "none"\n[serial]\nenabled = true\nports = []\n',
     "config {p}: source.kind (--source-kind) 'none' needs serial.ports (--serial-ports), a "
     "port or 'auto': the list is empty, there would be nothing to listen to"),
    ("[mic\n", None),
])
def test_bad_config_refuses_to_start_naming_the_key(tmp_path: Path, body: str, message: str | None):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    proc = earshotd("run", "--config", str(cfg), check=False, timeout=60)
    assert proc.returncode == 2
    if message is None:
        assert f"config {cfg}: not valid TOML" in proc.stderr
    else:
        assert proc.stderr.strip().endswith("earshotd: error: " + message.format(p=cfg))


def test_a_config_that_is_not_utf8_is_named_with_its_line(tmp_path: Path):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(b'[mic]\ndevice = "micro"\n# caf\xe9\n')
    proc = earshotd("run", "--config", str(cfg), check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"earshotd: error: config {cfg}: not UTF-8 text (byte 0xe9 on line 3)"


def test_bad_flag_value_is_named():
    with pytest.raises(ConfigError, match=r"^command line: stream.gate_rms_dbfs "
                       r"\(--stream-gate-rms-dbfs\) must be a number from -200.0 to 0.0, got 3.0$"):
        config.from_args(_parse("--config", str(EXAMPLE), "--stream-gate-rms-dbfs", "3"))


def test_missing_config_file_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "nope.toml")


def test_help_groups_flags_with_units_and_defaults():
    proc = earshotd("run", "--help", timeout=60)
    assert "[mic]:" in proc.stdout and "[oled]:" in proc.stdout
    assert re.search(r"--stream-hop-ms INT\s+time between inferences \(ms\) \(default: 100\)",
                     proc.stdout)


def _help(*cmd: str) -> str:
    from daemon.__main__ import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return (sub.choices[cmd[0]] if cmd else parser).format_help()


@pytest.mark.parametrize("cmd", [(), ("run",), ("record",), ("classify",), ("picos",), ("devices",)])
def test_every_command_help_ends_with_examples(cmd):
    text = _help(*cmd)
    assert "examples:" in text or "example:" in text
    assert re.search(r"^  earshotd \w+", text.split("xample")[-1], re.M), text


def test_every_enumerated_flag_lists_its_choices():
    text = _help("run")
    for flag, choices in [("--source-kind", "mic,wav,stdin,none"), ("--stream-window", "sliding,loudest"),
                          ("--mic-format", "int16,int32"), ("--output-journal", "auto,on,off"),
                          ("--source-stdin-format", "int16,int32,float32"), ("--oled-height", "64,32")]:
        assert f"{flag} {{{choices}}}" in text, flag


def test_record_offers_only_flags_that_mean_something_to_it():
    text = _help("record")
    assert "--stream-gate-p2p-dbfs" in text and "--mic-device" in text
    for meaningless in ("--stream-hop-ms", "--stream-window", "--stream-buffer-ms", "--output-json",
                        "--oled-enabled", "--detector-min-count", "--from", "--model"):
        assert meaningless not in text, meaningless
    assert "--serial-ports PORT" in text


def test_one_spelling_per_thing_and_the_old_ones_still_work():
    from daemon.__main__ import build_parser

    p = build_parser()
    new = p.parse_args(["run", "--model", "/b"])
    old = p.parse_args(["run", "--model-bundle", "/b"])
    assert config.overrides_from_args(new) == config.overrides_from_args(old) == {("model", "bundle"): "/b"}
    assert "--model-bundle" not in _help("run") and "--model BUNDLE" in _help("run")
    rec_new = p.parse_args(["record", "--label", "x", "--out", "d", "--serial-ports", "/dev/ttyACM0"])
    rec_old = p.parse_args(["record", "--label", "x", "--out", "d", "--from", "/dev/ttyACM0"])
    assert rec_new.from_port == rec_old.from_port == "/dev/ttyACM0"
    picos = p.parse_args(["picos", "--serial-ports", "/dev/a,/dev/b", "--port", "/dev/c", "--baud", "9600"])
    assert picos.port == ["/dev/a", "/dev/b", "/dev/c"] and picos.baud == 9600
    assert "--port" not in _help("picos").replace("--serial-ports", "")
    with pytest.raises(ConfigError, match=r"model.bundle \(--model\)"):
        config.build({"model": {"bundle": 3}})


def test_version_names_the_package_the_bundle_format_and_the_checkout():
    from importlib.metadata import version

    proc = earshotd("--version", timeout=60)
    assert proc.stdout.startswith(f"earshotd {version('earshot')} (bundle format 1), git ")
