"""Benchmark the Pi daemon against the seed pipeline (docs/architecture.md) on the same audio.

    .venv/bin/python bench/daemon.py [--bundle DIR] [--seconds 60] [--long-minutes 60]
                                     [--code CHECKOUT] [--out NAME]

* daemon: ``earshotd run`` in a subprocess (WAV source, no pacing, default hop) - CPU seconds per
  audio second and throughput (x real time) from its rusage, peak RSS, onset-to-alert latency
  (stream time) p50/p95, and whether TensorFlow / scipy.signal ended up in ``sys.modules``.
* daemon-stdin: the same audio as raw 48 kHz int16 PCM on stdin (``--source-kind stdin``), the
  microphone-like path (streaming resampler, no file).
* long WAV (``--long-minutes``, 0 = skip): peak RSS of ``earshotd run`` on the WAV source and of
  ``earshotd classify`` on one file that long.
* seed: what the Pi seed did - 2.8 s windows, the interpreter reloaded for every window, the
  loudest 1 s classified with the scipy STFT front end - in a subprocess on the same WAV.
* outputs: the daemon with MQTT (a real mosquitto on localhost, Home Assistant discovery) and
  clip keeping on, against both off, on the same WAV in the same run (CPU s per audio s, peak
  RSS); then a real-time paced run (``--latency-seconds``) timing each detection to the MQTT
  message arriving at a subscriber (the event's ``time`` is taken when the detector fires).

Peak RSS is the measured process's own ``VmHWM`` from /proc/self/status, read just before it
exits. (``ru_maxrss`` is not: Linux keeps the high-water mark across ``execve``, so a child of a
large parent reports at least the parent's size.) ``--code`` runs the daemon from another
checkout (a baseline, e.g. the previous commit) with the same audio and the same measurement.

Default bundle: the hand-weighted tone bundle of the tests (built once with TensorFlow); pass
a trained Pi bundle with ``--bundle``. Prints a table and saves bench/results/daemon.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_HWM = r"""
def _hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""

_DAEMON = _HWM + r"""
import json, resource, sys, time
from daemon.__main__ import main
t0 = time.process_time()
rc = main(sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rc": rc, "cpu_s": ru.ru_utime + ru.ru_stime, "max_rss_kb": _hwm_kb(),
                  "ru_maxrss_kb": ru.ru_maxrss, "tensorflow": "tensorflow" in sys.modules,
                  "scipy_signal": "scipy.signal" in sys.modules}), file=sys.stderr)
"""

_SEED = _HWM + r"""
import json, resource, sys
import numpy as np
from earshot.bundle import load_bundle
from daemon.inference import make_interpreter
from earshot.audio import fit_length
from earshot.wavio import read_wav
bundle = load_bundle(sys.argv[1]); audio = read_wav(sys.argv[2]); fe = bundle.frontend()
win = int(2.8 * 16000)
for start in range(0, audio.size - win + 1, win):
    interp = make_interpreter(str(bundle.model_path))  # the seed reloaded it every window
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    clip = fit_length(audio[start:start + win], 16000, "loudest")
    interp.set_tensor(i["index"], fe.features(clip).reshape(i["shape"]).astype(np.float32))
    interp.invoke()
    interp.get_tensor(o["index"])
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu_s": ru.ru_utime + ru.ru_stime, "max_rss_kb": _hwm_kb(),
                  "tensorflow": "tensorflow" in sys.modules,
                  "scipy_signal": "scipy.signal" in sys.modules}), file=sys.stderr)
"""

CODE = REPO
"""The checkout whose daemon is measured (--code)."""


def _run(code: str, args: list[str], stdin: Path | None = None) -> tuple[dict, str, float]:
    t0 = time.monotonic()
    with open(stdin or "/dev/null", "rb") as fh:
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=CODE, capture_output=True,
                              stdin=fh, timeout=3600,
                              env={"PYTHONPATH": str(CODE), "PATH": "/usr/bin:/bin"})
    wall = time.monotonic() - t0
    err, out = proc.stderr.decode(errors="replace"), proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{err[-4000:]}")
    stats = json.loads(err.strip().splitlines()[-1])
    return stats, out, wall


def _write_pcm48(path: Path, audio: np.ndarray) -> Path:
    """16 kHz float audio as raw 48 kHz int16 mono PCM (each sample three times: a
    microphone-rate stream for the resampler; its spectrum does not matter for memory)."""
    from earshot.audio import to_int16

    path.write_bytes(np.repeat(to_int16(audio), 3).astype("<i2").tobytes())
    return path


def _write_long_wav(path: Path, minutes: float) -> Path:
    """A long 16 kHz int16 WAV of noise, written in 1-minute pieces (bounded bench memory)."""
    import wave

    rng = np.random.default_rng(2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        for _ in range(int(round(minutes))):
            w.writeframes((rng.standard_normal(16000 * 60) * 300).astype("<i2").tobytes())
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="Pi bundle (default: the tests' tone bundle)")
    ap.add_argument("--seconds", type=float, default=60.0, help="audio length (s, default: 60)")
    ap.add_argument("--long-minutes", type=float, default=60.0,
                    help="length of the long-WAV memory runs (min, default: 60; 0 = skip)")
    ap.add_argument("--code", type=Path, default=REPO,
                    help="checkout whose daemon is measured (default: this one)")
    ap.add_argument("--out", default="daemon.json", help="result file under bench/results/")
    ap.add_argument("--latency-seconds", type=float, default=40.0,
                    help="real-time run for detection-to-MQTT latency (s, default: 40)")
    args = ap.parse_args()
    global CODE
    CODE = args.code.resolve()
    from tests.test_daemon_helpers import (
        TONE_HZ,
        empty_config,
        tone_bundle,
        tone_stream,
        write_stream,
    )

    bundle = Path(args.bundle) if args.bundle else tone_bundle()
    rng = np.random.default_rng(0)
    if args.bundle:
        # A trained bundle hears its own labels: render them with the synthetic stream maker.
        labels = json.loads((bundle / "manifest.json").read_text())["labels"]
        vocab = [x for x in labels if not x.startswith("_") and x != "background"]
        spacing = 5.0 if "smoke_alarm" in vocab else 4.0
    else:
        vocab, spacing = list(TONE_HZ), 4.0
    onsets = [(float(t), str(rng.choice(vocab))) for t in np.arange(2.0, args.seconds - 3, spacing)]
    onsets = [(t + float(rng.uniform(0, 0.25)), label) for t, label in onsets]
    short_s = 5.6  # two seed windows: start-up cost, subtracted to get the steady state
    with tempfile.TemporaryDirectory() as tmp:
        if args.bundle:
            from trainer.synth import make_stream

            audio, _truth = make_stream(1, args.seconds, onsets)
        else:
            audio = tone_stream(onsets, args.seconds, seed=1)
        wav = write_stream(Path(tmp) / "bench.wav", audio)
        short = write_stream(Path(tmp) / "short.wav", audio[: int(short_s * 16000)])

        def d_args(w: Path) -> list[str]:  # --model-bundle: the spelling a baseline knows too
            return ["run", "--config", str(empty_config()), "--model-bundle", str(bundle),
                    "--source-kind", "wav", "--source-wav", str(w), "--no-source-realtime",
                    "--output-journal", "off", "--output-json", "-", "--no-oled-enabled"]

        outputs = _outputs_bench(d_args, wav, short, Path(tmp), span=args.seconds - short_s,
                                 audio=audio, latency_s=args.latency_seconds)
        daemon, out, d_wall = _run(_DAEMON, d_args(wav))
        d0, _, d0_wall = _run(_DAEMON, d_args(short))
        pcm = _write_pcm48(Path(tmp) / "bench.pcm", audio)
        stdin_args = ["run", "--config", str(empty_config()), "--model-bundle", str(bundle),
                      "--source-kind", "stdin", "--source-stdin-rate", "48000",
                      "--output-journal", "off", "--output-json", "-", "--no-oled-enabled"]
        d_stdin, _, _ = _run(_DAEMON, stdin_args, stdin=pcm)
        long_rows = {}
        if args.long_minutes > 0:
            long_wav = _write_long_wav(Path(tmp) / "long.wav", args.long_minutes)
            d_long, _, _ = _run(_DAEMON, d_args(long_wav))
            c_long, _, c_wall = _run(_DAEMON, ["classify", "--model", str(bundle), "--json",
                                              str(long_wav)])
            long_rows = {"daemon_wav_peak_rss_mb": d_long["max_rss_kb"] / 1024,
                         "classify_peak_rss_mb": c_long["max_rss_kb"] / 1024,
                         "classify_wall_s": c_wall, "minutes": args.long_minutes}
        seed, _, s_wall = _run(_SEED, [str(bundle), str(wav)])
        s0, _, s0_wall = _run(_SEED, [str(bundle), str(short)])
    span = args.seconds - short_s
    daemon["cpu_s"], d_wall = daemon["cpu_s"] - d0["cpu_s"], d_wall - d0_wall
    seed["cpu_s"], s_wall = seed["cpu_s"] - s0["cpu_s"], s_wall - s0_wall
    alerts = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    lat = []
    for onset, label in onsets:
        hits = [a["stream_t_ms"] - onset * 1000 for a in alerts
                if a["label"] == label and 0 <= a["stream_t_ms"] - onset * 1000 <= 3000]
        if hits:
            lat.append(min(hits))
    audio_s = span
    rows = {
        "daemon": {"cpu_s_per_audio_s": daemon["cpu_s"] / audio_s, "x_realtime": audio_s / d_wall,
                   "peak_rss_mb": daemon["max_rss_kb"] / 1024, "tensorflow_imported": daemon["tensorflow"],
                   "scipy_signal_imported": daemon.get("scipy_signal")},
        "daemon-stdin": {"cpu_s_per_audio_s": None, "x_realtime": None,
                         "peak_rss_mb": d_stdin["max_rss_kb"] / 1024,
                         "tensorflow_imported": d_stdin["tensorflow"],
                         "scipy_signal_imported": d_stdin.get("scipy_signal")},
        "seed": {"cpu_s_per_audio_s": seed["cpu_s"] / audio_s, "x_realtime": audio_s / s_wall,
                 "peak_rss_mb": seed["max_rss_kb"] / 1024, "tensorflow_imported": seed["tensorflow"],
                 "scipy_signal_imported": seed.get("scipy_signal")},
    }
    result = {
        "machine": platform.machine(), "python": platform.python_version(), "bundle": str(bundle),
        "audio_s": audio_s, "hop_ms": 100, "events": len(onsets), "detected": len(lat),
        "latency_ms": {"p50": float(np.percentile(lat, 50)) if lat else None,
                       "p95": float(np.percentile(lat, 95)) if lat else None},
        "code": str(CODE), "results": rows, "long_wav": long_rows, "outputs": outputs,
        "rss_note": "peak RSS = VmHWM of the measured process itself (not ru_maxrss, which Linux "
                    "carries across execve from the parent)",
        "cpu_ratio_daemon_vs_seed": rows["daemon"]["cpu_s_per_audio_s"] / rows["seed"]["cpu_s_per_audio_s"],
        "note": "steady state: (run on the full audio) - (run on the first 5.6 s), so process "
                "start-up and imports cancel; the daemon classifies every 100 ms (when the gate "
                "is open), the seed every 2.8 s with an interpreter reload per window.",
    }
    print(f"{'pipeline':12s} {'CPU s/audio s':>14s} {'x real time':>12s} {'peak RSS MB':>12s} "
          f"{'TF imported':>12s} {'scipy.signal':>13s}")
    for name, r in rows.items():
        cpu = "-" if r["cpu_s_per_audio_s"] is None else f"{r['cpu_s_per_audio_s']:.4f}"
        xrt = "-" if r["x_realtime"] is None else f"{r['x_realtime']:.1f}"
        print(f"{name:12s} {cpu:>14s} {xrt:>12s} {r['peak_rss_mb']:12.1f} "
              f"{str(r['tensorflow_imported']):>12s} {str(r['scipy_signal_imported']):>13s}")
    if long_rows:
        print(f"{long_rows['minutes']:g}-minute WAV: earshotd run peak RSS "
              f"{long_rows['daemon_wav_peak_rss_mb']:.1f} MB, earshotd classify peak RSS "
              f"{long_rows['classify_peak_rss_mb']:.1f} MB ({long_rows['classify_wall_s']:.0f} s)")
    print(f"daemon/seed CPU ratio: {result['cpu_ratio_daemon_vs_seed']:.2f}")
    if lat:
        print(f"events {len(onsets)}, detected {len(lat)}; onset-to-alert latency (stream time) "
              f"p50 {result['latency_ms']['p50']:.0f} ms, p95 {result['latency_ms']['p95']:.0f} ms")
    else:
        print(f"events {len(onsets)}, detected none: no latency to report")
    _print_outputs(outputs)
    out_path = REPO / "bench" / "results" / args.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out_path.relative_to(REPO)}")
    return 0


REPEATS = 3
"""Runs of each outputs configuration; the median is reported (the machine is shared)."""


def _outputs_bench(d_args, wav: Path, short: Path, tmp: Path, span: float, audio: np.ndarray,
                   latency_s: float) -> dict:
    """MQTT + clips on vs off (steady state, same WAV), and detection -> MQTT at a subscriber."""
    from tests.mqtt_broker import USERS, Broker, Subscriber
    from tests.test_daemon_helpers import write_stream

    broker = Broker(tmp / "broker")
    broker.start()
    pw = tmp / "pw"
    pw.write_text(USERS["earshot"])
    try:
        def on(extra_dir: str) -> list[str]:
            return ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port), "--mqtt-username",
                    "earshot", "--mqtt-password-file", str(pw), "--mqtt-device", "bench",
                    "--clips-dir", str(tmp / extra_dir)]

        off = ["--no-clips-enabled"]
        rows = {}
        samples: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        for i in range(REPEATS):  # interleaved, so a busy moment on the machine hits both
            for name in ("off", "on"):
                extra = off if name == "off" else on(f"clips-{i}")
                full, _, _ = _run(_DAEMON, d_args(wav) + extra)
                base, _, _ = _run(_DAEMON, d_args(short) + (off if name == "off" else on(f"clips-s{i}")))
                samples[name].append(((full["cpu_s"] - base["cpu_s"]) / span, full["max_rss_kb"] / 1024))
        for name, runs in samples.items():
            rows[name] = {"cpu_s_per_audio_s": float(np.median([c for c, _ in runs])),
                          "peak_rss_mb": float(np.median([r for _, r in runs])),
                          "cpu_runs": [round(c, 5) for c, _ in runs]}
        ha = Subscriber(broker, client_id="bench-ha", topic="earshot/+/+/event")
        got: list[float] = []
        ha.client.on_message = lambda c, u, m: got.append(time.time() - json.loads(m.payload)["time"])
        live = write_stream(tmp / "live.wav", audio[: int(latency_s * 16000)])
        _, out, _ = _run(_DAEMON, d_args(live) + on("clips-live") + ["--source-realtime"])
        time.sleep(1.0)
        ha.close()
    finally:
        broker.stop()
    ms = sorted(1000 * x for x in got)
    return {"cpu_s_per_audio_s": {k: r["cpu_s_per_audio_s"] for k, r in rows.items()},
            "cpu_s_per_audio_s_runs": {k: r["cpu_runs"] for k, r in rows.items()},
            "peak_rss_mb": {k: r["peak_rss_mb"] for k, r in rows.items()},
            "cpu_ratio_on_vs_off": rows["on"]["cpu_s_per_audio_s"] / rows["off"]["cpu_s_per_audio_s"],
            "mqtt_latency_ms": {"events": len(ms), "detections": len(out.splitlines()),
                                "p50": float(np.percentile(ms, 50)) if ms else None,
                                "p95": float(np.percentile(ms, 95)) if ms else None,
                                "max": max(ms) if ms else None},
            "note": "on = MQTT to a local mosquitto (discovery, QoS 0/1 events) + a WAV, PNG "
                    "and JSON kept per detection; off = neither. Latency: from the detector "
                    "firing (event 'time') to the message at a subscriber, real-time paced."}


def _print_outputs(o: dict) -> None:
    print(f"{'outputs':8s} {'CPU s/audio s':>14s} {'peak RSS MB':>12s}")
    for k in ("off", "on"):
        print(f"{k:8s} {o['cpu_s_per_audio_s'][k]:14.4f} {o['peak_rss_mb'][k]:12.1f}")
    lat = o["mqtt_latency_ms"]
    print(f"MQTT + clips on/off CPU ratio: {o['cpu_ratio_on_vs_off']:.2f}; detection -> MQTT "
          f"subscriber ({lat['events']} of {lat['detections']} detections): p50 {lat['p50']:.1f} ms, "
          f"p95 {lat['p95']:.1f} ms, max {lat['max']:.1f} ms" if lat["events"] else
          "no MQTT events received")


if __name__ == "__main__":
    sys.exit(main())
