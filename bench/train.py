"""Training benchmark: time to build the synthetic set and to train each target, and the test
accuracy of the float and int8 models. Prints a table and saves bench/results/train.json.

Runs, all on one synthetic set built in the same run:

* keywords: the seed configuration of each target (docs/architecture.md) is its baseline (Pi: ``stft`` +
  ``simple_audio``; RP2040: ``q15`` + ``rp2040_seed``); the Pi with the ``logmel`` front end and
  the RP2040 with ``stream_cnn`` (its default) and ``ds_cnn`` are reported as ratios of their
  baseline's training time and differences of its test accuracy.
* alarm: the smoke-alarm detectors transfer-learned from each target's seed keyword bundle (the
  Pi detector is the baseline of the RP2040 one).

``--quick`` is a smoke run for CI (tiny set, 2 epochs, results not saved unless ``--save``).

    .venv/bin/python bench/train.py [--per-label 60] [--alarm-per-label 100] [--epochs 25]
    .venv/bin/python bench/train.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "train.json"

KEYWORD_RUNS = (
    # (name, target, train args) — the first row of each target is its baseline
    ("pi/stft/simple_audio (seed)", "pi", ["--target", "pi"]),
    ("pi/logmel/simple_audio", "pi", ["--target", "pi", "--frontend", "logmel"]),
    ("rp2040/q15/rp2040_seed (seed)", "rp2040", ["--target", "rp2040", "--arch", "rp2040_seed"]),
    ("rp2040/q15/stream_cnn (default)", "rp2040", ["--target", "rp2040", "--arch", "stream_cnn"]),
    ("rp2040/q15/ds_cnn", "rp2040", ["--target", "rp2040", "--arch", "ds_cnn"]),
)
ALARM_BASES = {"pi": "pi/stft/simple_audio (seed)", "rp2040": "rp2040/q15/rp2040_seed (seed)"}


def _cli(*args: str) -> float:
    """Run ``python -m trainer args``; returns wall seconds, raises with stderr on failure."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trainer", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"trainer {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def _slug(name: str) -> str:
    return name.split()[0].replace("/", "-")


def _row(name: str, task: str, target: str, bundle: Path, secs: float) -> dict:
    m = json.loads((bundle / "manifest.json").read_text())
    return {"name": name, "task": task, "target": target, "frontend": m["frontend"]["name"],
            "architecture": m["architecture"], "params": m["params"], "macs": m["macs"],
            "train_s": round(secs, 1), "test_float": m["metrics"]["test_accuracy_float"],
            "test_model": m["metrics"]["test_accuracy"], "n_test": m["metrics"]["n_test"],
            "epochs_run": m["training"]["epochs_run"]}


def _vs_baseline(rows: list[dict]) -> None:
    base: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["task"], r["target"] if r["task"] == "keywords" else "all")
        b = base.setdefault(key, r)
        r["baseline"] = b["name"]
        r["train_time_vs_baseline"] = round(r["train_s"] / b["train_s"], 2)
        r["test_vs_baseline"] = round(r["test_model"] - b["test_model"], 4)


def run(args: argparse.Namespace) -> dict:
    shutil.rmtree(args.out, ignore_errors=True)
    data = args.out / "data"
    synth_s = _cli("synth", str(data), "--set", "keywords", "--per-label", str(args.per_label))
    alarm_synth_s = _cli("synth", str(data), "--set", "alarm", "--per-label", str(args.alarm_per_label))
    common = ["--epochs", str(args.epochs), "--no-progress"]
    rows, bundles = [], {}
    for name, target, extra in KEYWORD_RUNS:
        out = args.out / _slug(name)
        secs = _cli("train", str(data / "keywords"), "--out", str(out), *common, *extra)
        bundles[name] = out / target
        rows.append(_row(name, "keywords", target, out / target, secs))
        print(f"  {name}: {secs:.0f} s", file=sys.stderr)
    for target, base in ALARM_BASES.items():
        name = f"alarm/{target} (from {base.split()[0]})"
        out = args.out / f"alarm-{target}"
        secs = _cli("train", str(data / "alarm"), "--out", str(out), "--transfer-from",
                    str(bundles[base]), "--positive", "smoke_alarm", *common)
        rows.append(_row(name, "alarm", target, out / target, secs))
        print(f"  {name}: {secs:.0f} s", file=sys.stderr)
    _vs_baseline(rows)
    return {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "quick": args.quick, "per_label": args.per_label, "alarm_per_label": args.alarm_per_label,
        "epochs": args.epochs, "synth_keywords_s": round(synth_s, 1),
        "synth_alarm_s": round(alarm_synth_s, 1), "runs": rows,
    }


def table(res: dict) -> str:
    lines = [f"synthetic keywords, {res['per_label']} clips/label: built in {res['synth_keywords_s']:.1f} s; "
             f"alarm set, {res['alarm_per_label']} clips/label: {res['synth_alarm_s']:.1f} s "
             f"(wall time of the CLI, start-up included; train times include TensorFlow's import)", ""]
    head = (f"{'run':<40} {'params':>8} {'MACs':>9} {'train s':>8} {'x base':>7} {'epochs':>6} "
            f"{'float':>6} {'model':>6} {'vs base':>8} {'clips':>5}")
    lines += [head, "-" * len(head)]
    for r in res["runs"]:
        lines.append(f"{r['name']:<40} {r['params']:>8} {r['macs']:>9} {r['train_s']:>8.1f} "
                     f"{r['train_time_vs_baseline']:>7.2f} {r['epochs_run']:>6} {r['test_float']:>6.3f} "
                     f"{r['test_model']:>6.3f} {r['test_vs_baseline']:>+8.3f} {r['n_test']:>5}")
    lines.append("\n'model' is the bundle's own model (float on the Pi, int8 on the RP2040); 'x base' and "
                 "'vs base' compare with the first row of the same target (alarm: with the Pi detector).")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-label", type=int, default=60, help="keyword clips per label (default: 60)")
    ap.add_argument("--alarm-per-label", type=int, default=100,
                    help="alarm clips per label (default: 100)")
    ap.add_argument("--epochs", type=int, default=25, help="max epochs per phase (default: 25)")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run: 12 keyword / 20 alarm clips per label, 2 epochs, not saved")
    ap.add_argument("--save", action="store_true", help="save the results even with --quick")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench-train", help="work folder")
    args = ap.parse_args()
    if args.quick:
        args.per_label, args.alarm_per_label, args.epochs = 12, 20, 2
    res = run(args)
    print(table(res))
    if args.save or not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nsaved {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
