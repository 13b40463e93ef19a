"""daemon.service in process: the ears publish to one output, and a reload is all or nothing.

The local ear is the hand-weighted tone bundle on an unpaced WAV; the serial host and the
notifier are fakes handed to the service, so what the boards say and what systemd hears are
under the test's control.
"""

from __future__ import annotations

import json
from pathlib import Path

from daemon import config
from daemon.service import Service
from earshot import protocol as P
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
