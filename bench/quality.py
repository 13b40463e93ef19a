"""Quality benchmark: what a user in a real room gets, measured on material training never used.

For every default bundle and the seed-compatible Pi configuration (``stft`` + ``simple_audio``),
in the same run, on held-out voices (whole accents and variants no training speaker has) and
held-out recordings (``trainer.heldout``, the ``test`` split):

* clip accuracy on the test split, clean and with held-out music/speech mixed in at 10 dB SNR;
* streamed recall, false alarms per hour (events streams with negative stretches, plus an hour
  of music, speech and words no model trained on), onset-to-detection latency, through
  ``earshotd run``'s own recogniser (``trainer.stream_eval``), with the detector settings
  ``make demo`` gives a bundle: chosen on validation streams (``--record thresholds``: other
  voices, training recordings), then measured on the test streams; the bundle as trained
  (thresholds from validation clips) is reported beside them (``as_trained``);
* cost: multiply-accumulates per inference and per audio second at the daemon's hop, and the
  CPU seconds the stream run took per audio second on this machine (single thread).

Results: a table on stdout and ``bench/results/quality.json``. Ratios are against the
seed-compatible Pi bundle measured in the same run.

    .venv/bin/python bench/quality.py                      # train everything, then measure
    .venv/bin/python bench/quality.py --bundles kw-pi=out/demo/keywords/pi ...   # measure only
    .venv/bin/python bench/quality.py --quick              # a smoke run (tiny, not saved)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results" / "quality.json"
KEYWORDS = "yes,no,up,down,left,right,go,stop"
COMMON = ["--unknown", "--unknown-share", "3", "--silence", "--augment-copies", "3"]
RUNS: tuple[tuple[str, str, list[str]], ...] = (
    # (name, data set, train args); the first row is the baseline of the ratios
    ("kw-pi-seed", "keywords", ["--target", "pi", "--frontend", "stft", "--arch", "simple_audio",
                                "--labels", KEYWORDS, *COMMON]),
    ("kw-pi", "keywords", ["--target", "pi", "--labels", KEYWORDS, *COMMON]),
    ("kw-rp2040", "keywords", ["--target", "rp2040", "--labels", KEYWORDS, *COMMON]),
    ("alarm-pi", "alarm", ["--transfer-from", "@kw-pi", "--positive", "smoke_alarm,co_alarm",
                           "--augment-copies", "3", "--hard-negatives", "90"]),
    ("alarm-rp2040", "alarm", ["--transfer-from", "@kw-rp2040", "--positive",
                               "smoke_alarm,co_alarm", "--augment-copies", "3",
                               "--hard-negatives", "90"]),
)  # fmt: skip
NOISY_SNR_DB = 10.0


def _run(cmd: list[str], log: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")


def build_data(out: Path, per_label: int, alarm_per_label: int, speakers: int) -> Path:
    data = out / "data"
    if not (data / "keywords" / "SYNTH.json").is_file():
        _run([sys.executable, "-m", "trainer", "synth", str(data), "--set", "keywords",
              "--per-label", str(per_label), "--fillers", "2", "--speakers", str(speakers)],
             out / "synth-keywords.log")  # fmt: skip
    if not (data / "alarm" / "SYNTH.json").is_file():
        _run([sys.executable, "-m", "trainer", "synth", str(data), "--set", "alarm",
              "--per-label", str(alarm_per_label)], out / "synth-alarm.log")  # fmt: skip
    return data


def train_all(out: Path, data: Path, epochs: int) -> dict[str, Path]:
    bundles: dict[str, Path] = {}
    for name, dataset, args in RUNS:
        folder = out / "bundles" / name
        target = "pi" if "-pi" in name else "rp2040"
        args = [str(bundles[a[1:]]) if a.startswith("@") else a for a in args]
        if not (folder / target / "manifest.json").is_file():
            t0 = time.monotonic()
            _run([sys.executable, "-m", "trainer", "train", str(data / dataset), "--out",
                  str(folder), "--epochs", str(epochs), "--patience", "6", "--no-progress",
                  *args], out / f"train-{name}.log")  # fmt: skip
            print(f"trained {name} in {time.monotonic() - t0:.0f} s", flush=True)
        bundles[name] = folder / target
    return bundles


def firing_labels(bundle: Path) -> list[str]:
    from daemon.config import DetectorSettings
    from daemon.streaming import detector_config
    from earshot.bundle import load_bundle

    cfg = detector_config(load_bundle(bundle), DetectorSettings())
    return [x for x in cfg.labels if x not in cfg.ignore]


def streams_for(out: Path, data: Path, bundle: Path, quick: bool, split: str = "test") -> Path:
    from trainer import heldout

    labels = firing_labels(bundle)
    kind = "alarm" if all("alarm" in x for x in labels) else "keywords"
    folder = out / "streams" / f"{kind}-{split}"
    if not (folder / "negatives.events.json").is_file():
        heldout.make_streams(data / kind, folder, labels, split, seed=1 if split == "test" else 3,
                             events_minutes=1.0 if quick else heldout.EVENTS_MINUTES,
                             negatives_minutes=2.0 if quick else heldout.NEGATIVES_MINUTES,
                             progress=False)  # fmt: skip
    return folder


def clip_accuracy(bundle: Path) -> dict[str, Any]:
    from earshot.bundle import load_bundle
    from trainer import evaluate, heldout

    b = load_bundle(bundle)
    x, y = evaluate.derive_test_split(b, None, {}, False)
    clean = evaluate.model_report(evaluate.score_clips(b, x, False), y, b.labels)
    noisy = evaluate.model_report(
        evaluate.score_clips(b, heldout.noisy(x, NOISY_SNR_DB, "test"), False), y, b.labels
    )
    return {"clean": clean["accuracy"], "noisy_10db": noisy["accuracy"], "n": clean["n"]}


def cost(bundle: Path) -> dict[str, Any]:
    from daemon.config import StreamSettings
    from earshot.bundle import load_bundle

    m = load_bundle(bundle).manifest
    macs = int(m.get("macs") or 0)
    per_s = 1000.0 / StreamSettings().hop_ms
    return {"macs_per_inference": macs, "macs_per_audio_s": round(macs * per_s)}


def cpu_per_audio_s(bundle: Path, streams: Path) -> float:
    """CPU seconds per audio second of the daemon's recogniser alone (features, model,
    detector) over the first events stream, single-threaded, on this machine."""
    from earshot.bundle import load_bundle
    from earshot.wavio import read_wav
    from trainer.stream_eval import run_stream
    from trainer.streams import find_streams

    audio = read_wav(find_streams([streams])[0].wav_path)
    b = load_bundle(bundle)
    t0 = time.process_time()
    run_stream(b, audio, progress=False)
    return (time.process_time() - t0) / (audio.size / 16000)


def tuned_copy(out: Path, name: str, bundle: Path, val_streams: Path) -> Path:
    """A copy of ``bundle`` with the detector settings ``make demo`` gives it: chosen on the
    validation streams (``evaluate-stream --record thresholds``)."""
    import shutil

    from trainer.stream_eval import record_in_manifest, stream_metrics

    dst = out / "tuned" / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(bundle, dst)
    m = stream_metrics(dst, [val_streams], progress=False, timing=True)
    record_in_manifest(dst, m, [str(val_streams)], apply=True)
    return dst


def measure(name: str, bundle: Path, streams: Path, val_streams: Path, out: Path) -> dict[str, Any]:
    from trainer.stream_eval import stream_metrics

    row: dict[str, Any] = {"bundle": str(bundle), **clip_accuracy(bundle), **cost(bundle)}
    raw = stream_metrics(bundle, [streams], progress=False)["overall"]
    row["as_trained"] = {"recall": raw["recall"], "fa_per_hour": raw["fa_per_hour"]}
    tuned = tuned_copy(out, name, bundle, val_streams)
    doc = json.loads((tuned / "manifest.json").read_text())
    row["chosen_on_val"] = {"thresholds": doc["thresholds"], "detector": doc.get("detector", {}),
                            "method": doc.get("thresholds_from", {}).get("method")}  # fmt: skip
    sm = stream_metrics(tuned, [streams], progress=False)
    cpu = cpu_per_audio_s(bundle, streams)
    audio_s = sum(s["duration_s"] for s in sm["streams"])
    o = sm["overall"]
    row.update({
        "recall": o["recall"], "fa_per_hour": o["fa_per_hour"],
        "fa_per_hour_negatives": o.get("fa_per_hour_negative"),
        "false_alarms": o.get("false_alarms"), "events": o.get("events"),
        "latency_p50_ms": o.get("latency_ms_p50"), "latency_p95_ms": o.get("latency_ms_p95"),
        "stream_hours": round(audio_s / 3600, 3), "cpu_s_per_audio_s": round(cpu, 4),
        "suggested": sm.get("suggested"),
    })  # fmt: skip
    print(f"measured {name}", flush=True)
    return row


def table(rows: dict[str, dict[str, Any]], base: str) -> str:
    head = (f"{'bundle':<13} {'clean':>6} {'10dB':>6} {'recall':>7} {'FA/h':>7} {'p95 ms':>7} "
            f"{'trained:rec':>11} {'FA/h':>6} {'MMAC/s':>7} {'x base':>6} {'CPU/s':>7}")  # fmt: skip
    lines = [head, "-" * len(head)]
    b = rows[base]["macs_per_audio_s"] or 1

    def f(v: Any, fmt: str) -> str:
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    for name, r in rows.items():
        lines.append(
            f"{name:<13} {f(r['clean'], '.3f'):>6} {f(r['noisy_10db'], '.3f'):>6} "
            f"{f(r['recall'], '.3f'):>7} {f(r['fa_per_hour'], '.1f'):>7} "
            f"{f(r['latency_p95_ms'], '.0f'):>7} {f(r['as_trained']['recall'], '.3f'):>11} "
            f"{f(r['as_trained']['fa_per_hour'], '.1f'):>6} {r['macs_per_audio_s'] / 1e6:>7.1f} "
            f"{r['macs_per_audio_s'] / b:>6.2f} {f(r['cpu_s_per_audio_s'], '.4f'):>7}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "quality")
    p.add_argument("--per-label", type=int, default=300)
    p.add_argument("--alarm-per-label", type=int, default=150)
    p.add_argument("--speakers", type=int, default=80)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--bundles", nargs="*", metavar="NAME=PATH", help="measure these, train none")
    p.add_argument("--data", type=Path, help="the synthetic set the --bundles were trained on")
    p.add_argument("--quick", action="store_true", help="tiny smoke run, results not saved")
    p.add_argument("--save", action="store_true", help="save results even with --quick")
    args = p.parse_args(argv)
    if args.quick:
        args.out, args.per_label, args.alarm_per_label = args.out / "quick", 10, 10
        args.speakers, args.epochs = 6, 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.bundles:
        bundles = {k: Path(v) for k, v in (b.split("=", 1) for b in args.bundles)}
        data = args.data or Path(json.loads((next(iter(bundles.values())) / "manifest.json")
                                            .read_text())["training"]["root"]).parent
    else:
        data = build_data(args.out, args.per_label, args.alarm_per_label, args.speakers)
        bundles = train_all(args.out, data, args.epochs)
    rows = {n: measure(n, b, streams_for(args.out, data, b, args.quick),
                       streams_for(args.out, data, b, args.quick, "val"), args.out)
            for n, b in bundles.items()}  # fmt: skip
    base = "kw-pi-seed" if "kw-pi-seed" in rows else next(iter(rows))
    print("recall, FA/h, p95: detector settings chosen on validation streams (as make demo does); "
          "trained: as trained")
    print(table(rows, base))
    result = {"machine": platform.machine(), "python": platform.python_version(),
              "baseline": base, "snr_db_noisy": NOISY_SNR_DB, "rows": rows,
              "settings": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    if not args.quick or args.save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(f"saved {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
