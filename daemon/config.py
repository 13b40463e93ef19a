"""The daemon's settings: a TOML file, every key overridable on the command line, validated.

The file (default ``/etc/earshot/earshot.toml``, see ``config/earshot.toml`` for every key) has
one table per subsystem. Each key ``[table] key`` has the flag ``--table-key`` (underscores become
dashes): ``[mic] device`` is ``--mic-device``, ``[oled] address`` is ``--oled-address``. Booleans
take ``--oled-enabled`` / ``--no-oled-enabled``; lists take comma-separated values.

Unknown tables or keys and bad values refuse to start: :class:`ConfigError` names the key (and
its flag) and the allowed values. After validation the settings are frozen dataclasses, whose
fields are declared with ``earshot.options.opt`` (the machinery ``earshot-train train`` shares).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from earshot.options import Option, add_flag, check, opt, options, parse_text

DEFAULT_PATH = Path("/etc/earshot/earshot.toml")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the key and the allowed values."""


@dataclass(frozen=True)
class ModelSettings:
    """Which bundle to run."""

    bundle: str = opt("/usr/share/earshot/models/pi", "model bundle folder (manifest.json); user models go in /var/lib/earshot/models/", metavar="BUNDLE")
    threads: int = opt(1, "interpreter threads", lo=1, hi=8)


@dataclass(frozen=True)
class SourceSettings:
    """Where the audio comes from."""

    kind: str = opt(
        "mic", "audio source ('none': no local audio, only Picos on [serial])",
        choices=("mic", "wav", "stdin", "none"),
    )
    wav: str = opt("", "WAV file to read when kind = wav")
    realtime: bool = opt(True, "pace the WAV source at real time (false: as fast as possible)")
    stdin_rate: int = opt(16000, "sample rate of raw PCM on stdin (Hz)", lo=8000, hi=192000)
    stdin_format: str = opt(
        "int16", "sample format of raw PCM on stdin (little-endian)",
        choices=("int16", "int32", "float32"),
    )
    stdin_channels: int = opt(1, "interleaved channels of raw PCM on stdin", lo=1, hi=8)


@dataclass(frozen=True)
class MicSettings:
    """The ALSA capture device (PyAudio) and the SPH0645 conditioning."""

    device: str = opt("", "input device: index or name substring ('' = ALSA default)")
    rate: int = opt(48000, "device sample rate (Hz); resampled to 16 kHz", lo=8000, hi=192000)
    channels: int = opt(2, "channels to open (SPH0645 on I2S: 2)", lo=1, hi=8)
    channel: int = opt(0, "the live channel (SPH0645 SEL low: 0 = left)", lo=0, hi=7)
    format: str = opt("int32", "sample format (SPH0645: int32)", choices=("int16", "int32"))
    gain_db: float = opt(0.0, "digital gain after DC removal (dB)", lo=-20.0, hi=60.0)
    highpass_hz: float = opt(20.0, "DC-removing high-pass corner (Hz, 0 = off)", lo=0.0, hi=500.0)
    discard_ms: int = opt(300, "audio discarded after opening (start-up click, ms)", lo=0, hi=10000)
    chunk_ms: int = opt(50, "capture buffer per read (ms)", lo=5, hi=1000)


@dataclass(frozen=True)
class StreamSettings:
    """Ring buffer, hop, window choice and silence gate."""

    hop_ms: int = opt(100, "time between inferences (ms)", lo=10, hi=250)
    window: str = opt(
        "sliding", "1 s window: the latest second, or centred on the loudest point",
        choices=("sliding", "loudest"),
    )
    buffer_ms: int = opt(1500, "audio kept for the loudest-point search (ms)", lo=1000, hi=10000)
    gate_p2p_dbfs: float = opt(
        -50.0, "silence gate: minimum peak-to-peak level of the window (dBFS)", lo=-200.0, hi=6.1
    )
    gate_rms_dbfs: float = opt(
        -65.0, "silence gate: minimum RMS level of the window (dBFS)", lo=-200.0, hi=0.0
    )


@dataclass(frozen=True)
class DetectorSettings:
    """The recogniser's timing rules (thresholds come from the bundle). Unset timing rules are
    the bundle's own (its manifest's ``detector`` object, chosen on validation streams), else
    ``earshot.detector``'s defaults (300 ms, 2, 1500 ms)."""

    average_window_ms: int | None = opt(None, "scores from this long are averaged (ms)", lo=1,
                                        hi=10000, shown="the bundle's, else 300")
    min_count: int | None = opt(None, "results needed in the window before anything fires", lo=1,
                                hi=64, shown="the bundle's, else 2")
    suppression_ms: int | None = opt(None, "nothing fires this long after a detection (ms)", lo=0,
                                     hi=60000, shown="the bundle's, else 1500")
    ignore: list[str] = opt([], "labels that never fire, besides _background_ ones")
    threshold_offset: float = opt(
        0.0, "added to every bundle threshold (clipped to 0..1)", lo=-1.0, hi=1.0
    )


@dataclass(frozen=True)
class OledSettings:
    """The SSD1306 display on I2C."""

    enabled: bool = opt(True, "drive the OLED")
    bus: int = opt(1, "I2C bus number (/dev/i2c-N)", lo=0, hi=255)
    address: int = opt(0x3C, "I2C address (60 = 0x3C)", lo=0x03, hi=0x77)
    width: int = opt(128, "display width (px)", choices=(128,))
    height: int = opt(64, "display height (px)", choices=(64, 32))
    hold_s: float = opt(5.0, "how long an alert stays on screen (s)", lo=0.0, hi=3600.0)
    refresh_hz: float = opt(4.0, "idle screen refresh rate (Hz)", lo=0.1, hi=30.0)
    rotate: bool = opt(False, "rotate the picture by 180 degrees")
    save_png_dir: str = opt("", "also save every frame drawn as PNG in this folder ('' = off)")


@dataclass(frozen=True)
class OutputSettings:
    """Where detections go besides the OLED."""

    journal: str = opt(
        "auto", "journald logging (auto: when started by systemd)", choices=("auto", "on", "off")
    )
    json: str = opt("", "JSON lines of detections: a file path, '-' for stdout, '' = off")
    source_name: str = opt("mic", "SOURCE name of the local microphone's detections")


@dataclass(frozen=True)
class SerialSettings:
    """Picos over USB serial, hosted by ``earshotd run`` (daemon.serial_host)."""

    enabled: bool = opt(False, "host Picos on USB serial ports (on when --serial-ports is given)")
    ports: list[str] = opt(["auto"], "serial ports, or 'auto' for USB VID 0x2E8A")
    baud: int = opt(115200, "serial baud rate", lo=1200, hi=4000000)
    bundles: list[str] = opt(
        [], "rp2040 bundle folders: a board running one of these models is judged by the "
        "daemon's detector ([detector] rules, the bundle's thresholds) from its SCORES lines; "
        "other boards by their own DET lines",
    )


@dataclass(frozen=True)
class MqttSettings:
    """Alerts to an MQTT broker, with Home Assistant discovery (daemon.mqtt); off while host is ''."""

    host: str = opt("", "broker host name or address ('' = MQTT off)")
    port: int = opt(1883, "broker TCP port (TLS brokers usually listen on 8883)", lo=1, hi=65535)
    tls: bool = opt(False, "connect with TLS")
    ca_file: str = opt("", "CA certificate file (PEM) for TLS ('' = the system's CAs)")
    username: str = opt("", "user name to log in as ('' = anonymous)")
    password_file: str = opt("", "file whose first line is the password (never the password itself)")
    device: str = opt("", "this device's name in topics and Home Assistant ('' = the host name)")
    topic_prefix: str = opt("earshot", "first topic level: events on PREFIX/DEVICE/SOURCE/event")
    discovery: bool = opt(True, "publish Home Assistant MQTT discovery (retained)")
    discovery_prefix: str = opt("homeassistant", "Home Assistant's discovery topic prefix")
    off_delay_s: int = opt(30, "Home Assistant turns an alert's binary_sensor off after (s)", lo=1, hi=86400)
    queue: int = opt(1000, "events kept while the broker is away (oldest dropped, counted, logged)", lo=1, hi=1000000)
    keepalive_s: int = opt(30, "MQTT keep-alive (s): a dead link is noticed after 1.5x this", lo=5, hi=3600)
    flush_s: float = opt(5.0, "at stop, how long to wait for queued events to reach the broker (s)", lo=0.0, hi=60.0)


@dataclass(frozen=True)
class ClipSettings:
    """Audio kept around each detection: a 16 kHz WAV and a spectrogram PNG (daemon.clips)."""

    enabled: bool = opt(True, "keep a clip of every local detection")
    dir: str = opt("/var/lib/earshot/clips", "folder for clips (its parent must exist)")
    before_ms: int = opt(2000, "audio kept before the detection (ms)", lo=0, hi=10000)
    after_ms: int = opt(1000, "audio kept after the detection (ms)", lo=0, hi=10000)
    max_count: int = opt(500, "most clips kept; the oldest are deleted first", lo=1, hi=1000000)
    max_mb: float = opt(200.0, "most disk space clips use (MB); the oldest are deleted first", lo=0.1, hi=100000.0)
    min_free_mb: float = opt(200.0, "keep no clip when the file system would have less free (MB)", lo=0.0, hi=100000.0)
    negatives_per_hour: float = opt(0.0, "random clips of non-detection audio per hour, as negatives (0 = off)", lo=0.0, hi=3600.0)
    error_every_s: float = opt(300.0, "a failing disk is logged at most once per this period (s)", lo=1.0, hi=86400.0)


@dataclass(frozen=True)
class Settings:
    """Everything ``earshotd run`` needs, validated."""

    model: ModelSettings = field(default_factory=ModelSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    mic: MicSettings = field(default_factory=MicSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    oled: OledSettings = field(default_factory=OledSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    serial: SerialSettings = field(default_factory=SerialSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    clips: ClipSettings = field(default_factory=ClipSettings)


_CLASSES: dict[str, Any] = {
    "model": ModelSettings, "source": SourceSettings, "mic": MicSettings,
    "stream": StreamSettings, "detector": DetectorSettings, "oled": OledSettings,
    "output": OutputSettings, "serial": SerialSettings,
    "mqtt": MqttSettings, "clips": ClipSettings,
}
_TYPES = {name: options(cls) for name, cls in _CLASSES.items()}


FLAG_SPELLINGS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("model", "bundle"): ("--model", ("--model-bundle",)),
}
"""Keys whose flag is not ``--section-key``: (the flag, hidden old spellings still accepted).
One spelling per thing across earshotd's commands: ``--model`` (as ``classify``),
``--serial-ports`` (as ``picos`` and ``record``)."""


def flag_name(section: str, key: str) -> str:
    if (section, key) in FLAG_SPELLINGS:
        return FLAG_SPELLINGS[(section, key)][0]
    return f"--{section}-{key}".replace("_", "-")


def _check(section: str, o: Option, value: Any, origin: str) -> Any:
    """Validate one value; returns it converted to the field's type."""
    if section == "mic" and o.name == "device" and isinstance(value, int) and value >= 0:
        value = str(value)
    where = f"{origin}: {section}.{o.name} ({flag_name(section, o.name)})"
    return check(o, value, where, ConfigError)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {path}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"config {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} on line {line})"
        ) from None
    except OSError as e:
        raise ConfigError(f"config {path}: cannot read ({e.strerror})") from None


def build(
    table: dict[str, Any], overrides: dict[tuple[str, str], Any] | None = None, origin: str = ""
) -> Settings:
    """Validate a parsed TOML document plus CLI overrides ``{(section, key): value}``."""
    origin = origin or "config"
    values: dict[str, dict[str, Any]] = {}
    for section, body in table.items():
        if section not in _TYPES and not isinstance(body, dict):
            raise ConfigError(f"{origin}: unknown key {section!r} at the top level ({_hint(section)})")
        if section not in _TYPES:
            raise ConfigError(
                f"{origin}: unknown table [{section}] (allowed: {', '.join(_TYPES)})"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table of keys")
        fields = _TYPES[section]
        for key, value in body.items():
            if key not in fields:
                raise ConfigError(
                    f"{origin}: unknown key {section}.{key} "
                    f"(allowed in [{section}]: {', '.join(fields)})"
                )
            values.setdefault(section, {})[key] = _check(section, fields[key], value, origin)
    for (section, key), value in (overrides or {}).items():
        values.setdefault(section, {})[key] = _check(
            section, _TYPES[section][key], value, "command line"
        )
    parts = {s: _CLASSES[s](**values.get(s, {})) for s in _CLASSES}
    settings = Settings(**parts)
    _cross_check(settings, origin)
    return settings


def _hint(key: str) -> str:
    """Where a top-level key probably belongs."""
    homes = [t for t, fields in _TYPES.items() if key in fields]
    if homes:
        return "put it under " + " or ".join(f"[{t}]" for t in homes)
    return "keys belong in a table: " + ", ".join(f"[{t}]" for t in _TYPES)


def _cross_check(s: Settings, origin: str) -> None:
    if s.mic.channel >= s.mic.channels:
        raise ConfigError(
            f"{origin}: mic.channel (--mic-channel) must be from 0 to {s.mic.channels - 1} "
            f"(mic.channels is {s.mic.channels}), got {s.mic.channel}"
        )
    if s.source.kind == "none" and not s.serial.enabled:
        raise ConfigError(f"{origin}: source.kind (--source-kind) 'none' needs serial.enabled "
                          "(--serial-enabled): there would be nothing to listen to")
    if s.source.kind == "none" and not s.serial.ports:
        raise ConfigError(f"{origin}: source.kind (--source-kind) 'none' needs serial.ports "
                          "(--serial-ports), a port or 'auto': the list is empty, there would "
                          "be nothing to listen to")
    if s.source.kind == "wav" and not s.source.wav:
        raise ConfigError(f"{origin}: source.wav (--source-wav) must name a WAV file when "
                          "source.kind is 'wav'")
    _check_topics(s, origin)


TOPIC_WILDCARDS = ("#", "+")
"""MQTT wildcards: never allowed in a topic the daemon publishes on."""


def _check_topics(s: Settings, origin: str) -> None:
    """MQTT topic parts: no wildcards anywhere, no '/' inside one level (device, source)."""
    if not s.mqtt.host:
        return
    parts = {("mqtt", "topic_prefix"): s.mqtt.topic_prefix,
             ("mqtt", "discovery_prefix"): s.mqtt.discovery_prefix,
             ("mqtt", "device"): s.mqtt.device, ("output", "source_name"): s.output.source_name}
    for (section, key), value in parts.items():
        bad = [c for c in TOPIC_WILDCARDS if c in value]
        if key in ("device", "source_name") and "/" in value:
            bad.append("/")
        if bad or (key.endswith("prefix") and (not value.strip("/") or "//" in value)):
            raise ConfigError(
                f"{origin}: {section}.{key} ({flag_name(section, key)}) must be an MQTT topic "
                f"part without wildcards (# +){' or /' if key in ('device', 'source_name') else ''}"
                f", got {value!r}"
            )


def load(path: str | Path | None, overrides: dict[tuple[str, str], Any] | None = None) -> Settings:
    """Read ``path`` (None: the default path if it exists, else defaults) and apply overrides."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return build({}, overrides, "defaults")
        path = DEFAULT_PATH
    p = Path(path)
    return build(_read_toml(p), overrides, f"config {p}")


# -- command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None,
                  only: dict[str, tuple[str, ...]] | None = None) -> None:
    """Add ``--config`` and one flag per key, grouped by subsystem.

    ``sections`` limits the tables offered, ``only`` the keys of a table ({"stream":
    ("gate_p2p_dbfs",)}), so a command shows only flags that mean something to it.
    """
    parser.add_argument(
        "--config", metavar="TOML", default=None,
        help=f"config file (default: {DEFAULT_PATH} if it exists, else built-in defaults)",
    )
    for section, fields in _TYPES.items():
        if sections is not None and section not in sections:
            continue
        group = parser.add_argument_group(f"[{section}]", _CLASSES[section].__doc__)
        for o in fields.values():
            if only and section in only and o.name not in only[section]:
                continue
            _add_key_flag(group, section, o)


def _add_key_flag(group: Any, section: str, o: Any) -> None:
    if "choices" in o.rules and "metavar" not in o.rules:  # --stream-window {sliding,loudest}
        o = dataclasses.replace(o, rules={**o.rules, "metavar": _choices_metavar(o.rules["choices"])})
    shown = ",".join(o.default) if o.kind == "list" else o.default
    dest = f"cfg__{section}__{o.name}"
    old = FLAG_SPELLINGS.get((section, o.name), ("", ()))[1]
    add_flag(group, o, flag_name(section, o.name), dest, repr(shown))
    for alias in old:
        group.add_argument(alias, dest=dest, default=None, type=parse_text(o.kind),
                           help=argparse.SUPPRESS)


def _choices_metavar(choices: tuple[Any, ...]) -> str:
    return "{" + ",".join(str(c) for c in choices) + "}"


def overrides_from_args(args: argparse.Namespace) -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    for name, value in vars(args).items():
        if name.startswith("cfg__") and value is not None:
            _, section, key = name.split("__", 2)
            out[(section, key)] = value
    return out


def from_args(args: argparse.Namespace) -> Settings:
    """Settings from ``--config`` plus every flag given (raises ConfigError).

    ``--serial-ports`` implies ``--serial-enabled`` unless ``--no-serial-enabled`` is given.
    """
    overrides = overrides_from_args(args)
    if ("serial", "ports") in overrides:
        overrides.setdefault(("serial", "enabled"), True)
    return load(args.config, overrides)
