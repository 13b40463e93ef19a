"""daemon.service in process: the ears publish to one output, and a reload is all or nothing.

The local ear is the hand-weighted tone bundle on an unpaced WAV; the serial host and the
notifier are fakes handed to the service, so what the boards say and what systemd hears are
under the test's control.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon import config
from daemon.oled import Layout, render_alert
from daemon.outputs import Alert
from daemon.service import Service
from earshot import protocol as P
from earshot.bundle import sha256_file, write_manifest
from tests.test_daemon_helpers import tone_bundle, tone_stream, write_stream

BOARD = P.Hello("0.1.0", "pico", "E66058388B4A0001", "ef" * 32, ("yes", "no"), 16000, "detect")


class FakeNotifier:
    """Records what would go to systemd."""

    def __init__(self) -> None:
        self.ready_texts: list[str] = []

    def ready(self, status: str = "") -> None:
        self.ready_texts.append(status)

    def status(self, text: str) -> None:
        pass

    def reloading(self) -> None:
        pass

    def stopping(self) -> None:
        pass

    def watchdog(self, now: float | None = None) -> bool:
        return True

    def close(self) -> None:
        pass


class FakeHost:
    """A serial host whose one board says hello and reports a DET as soon as it starts."""

    made: list[FakeHost] = []

    def __init__(self, settings, handler) -> None:  # type: ignore[no-untyped-def]
        self.settings, self.handler = settings, handler
        self.links: dict = {}
        self.running = False
        FakeHost.made.append(self)

    def start(self) -> None:
        self.running = True
        self.handler("/dev/fake0", BOARD)
        self.handler("/dev/fake0", P.Det(t=700, label="no", score=0.8))

    def stop(self, timeout: float = 5.0) -> None:
        self.running = False


def write_config(path: Path, bundle: Path, wav: Path, out: Path, serial: str = "") -> Path:
    path.write_text(
        f'[model]\nbundle = "{bundle}"\n[source]\nkind = "wav"\nwav = "{wav}"\nrealtime = false\n'
        f'[output]\njournal = "off"\njson = "{out}"\n[oled]\nenabled = false\n{serial}'
    )
    return path


def run_with_reload(tmp_path: Path, serial_after: str) -> tuple[Service, FakeNotifier, list[dict]]:
    """Start on bundle tones-a, reload (before the first read) to tones-b plus ``serial_after``."""
    FakeHost.made.clear()
    wav = write_stream(tmp_path / "s.wav", tone_stream([(1.0, "low_tone")], 3.0))
    out = tmp_path / "alerts.jsonl"
    a = write_config(tmp_path / "a.toml", tone_bundle(tmp_path / "a", "tones-a"), wav, out)
    b = write_config(tmp_path / "b.toml", tone_bundle(tmp_path / "b", "tones-b"), wav, out, serial_after)
    notifier = FakeNotifier()
    service = Service(config.load(a), lambda: config.load(b), notifier, host_factory=FakeHost)  # type: ignore[arg-type]
    service.request_reload()
    assert service.main() == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    return service, notifier, alerts


def test_a_reload_swaps_the_local_model_and_starts_the_picos_on_one_output(tmp_path: Path):
    service, notifier, alerts = run_with_reload(
        tmp_path, '[serial]\nenabled = true\nports = ["/dev/fake0"]\n'
    )
    assert service.local.model_name == "tones-b"
    assert notifier.ready_texts[-1] == "reloaded; listening with tones-b"
    (host,) = FakeHost.made
    assert host.settings.ports == ("/dev/fake0",) and not host.running  # stopped at exit
    by_source = {(x["source"], x["label"]) for x in alerts}
    assert by_source == {("pico-E66058388B4A0001", "no"), ("mic", "low_tone")}


def test_a_reload_with_a_bad_pico_bundle_keeps_the_local_model_too(tmp_path: Path):
    missing = tmp_path / "no-such-bundle"
    service, notifier, alerts = run_with_reload(
        tmp_path, f'[serial]\nenabled = true\nports = ["/dev/fake0"]\nbundles = ["{missing}"]\n'
    )
    assert service.local.model_name == "tones-a"  # the local ear could load tones-b, but did not swap
    assert notifier.ready_texts[-1].startswith("reload failed:") and str(missing) in notifier.ready_texts[-1]
    assert FakeHost.made == []
    assert [(x["source"], x["label"]) for x in alerts] == [("mic", "low_tone")]


def _break_config(cfg: Path, bundle: Path) -> str:
    with open(cfg, "ab") as f:
        f.write(b"# caf\xe9 in Latin-1\n")
    return f"config {cfg}: not UTF-8 text (byte 0xe9 on line"


def _string_threshold(cfg: Path, bundle: Path) -> str:
    m = json.loads((bundle / "manifest.json").read_text())
    m["thresholds"]["low_tone"] = "0.7"
    write_manifest(bundle, m)
    return f"bundle {bundle}: manifest.json thresholds must be"


def _corrupt_model(cfg: Path, bundle: Path) -> str:
    (bundle / "model.tflite").write_bytes(b"\x00not a flatbuffer" * 64)
    m = json.loads((bundle / "manifest.json").read_text())
    m["model_sha256"] = sha256_file(bundle / "model.tflite")  # hash-consistent, still broken
    write_manifest(bundle, m)
    return f"model file {bundle / 'model.tflite'} is not a usable TFLite model"


@pytest.mark.parametrize("breakage", [_break_config, _string_threshold, _corrupt_model])
def test_a_reload_that_fails_for_any_reason_keeps_running_and_says_why(tmp_path: Path, breakage):
    wav = write_stream(tmp_path / "s.wav", tone_stream([(1.0, "low_tone")], 3.0))
    out, png = tmp_path / "alerts.jsonl", tmp_path / "oled"
    b_bundle = tone_bundle(tmp_path / "b", "tones-b")
    a = write_config(tmp_path / "a.toml", tone_bundle(tmp_path / "a", "tones-a"), wav, out)
    b = write_config(tmp_path / "b.toml", b_bundle, wav, out)
    b.write_text(b.read_text().replace("[oled]\nenabled = false\n", ""))
    expected = breakage(b, b_bundle)
    settings = dataclasses.replace(
        config.load(a), oled=config.OledSettings(enabled=True, save_png_dir=str(png), hold_s=60.0)
    )

    def no_bus(n: int):  # type: ignore[no-untyped-def]
        raise OSError("no I2C here")

    notifier = FakeNotifier()
    service = Service(settings, lambda: config.load(b), notifier, i2c_factory=no_bus)  # type: ignore[arg-type]
    service.request_reload()
    assert service.main() == 0
    assert service.local.model_name == "tones-a"
    assert notifier.ready_texts[-1].startswith("reload failed: ") and expected in notifier.ready_texts[-1]
    assert [x["label"] for x in map(json.loads, out.read_text().splitlines())] == ["low_tone"]
    frames = [np.array(Image.open(p)) > 0 for p in sorted(png.glob("*.png"))]
    notice = np.array(render_alert(Alert("reload failed", 0.0, "earshotd", 0.0), 0.0), np.uint8) > 0
    lay = Layout(128, 64)
    assert any(np.array_equal(f[lay.label_top : lay.bar[3] + 1], notice[lay.label_top : lay.bar[3] + 1]) for f in frames)
