"""Training benchmark: time to build the synthetic set and to train each target, and the test
accuracy of the float and int8 models. Prints a table and saves bench/results/train.json.

The baseline measured in the same run is the seed configuration of each target (Pi:
``stft`` + ``simple_audio``; RP2040: ``q15`` + ``rp2040_seed``); other MCU architectures are
reported as ratios of its training time and differences of its accuracy.

    .venv/bin/python bench/train.py [--per-label 40] [--epochs 30] [--out build/bench-train]
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

RUNS = (
    # (name, train args) — the first of each target is its baseline
    ("pi/simple_audio (seed)", ["--target", "pi"]),
    ("rp2040/rp2040_seed (seed)", ["--target", "rp2040", "--arch", "rp2040_seed"]),
    ("rp2040/ds_cnn", ["--target", "rp2040", "--arch", "ds_cnn"]),
)


def _cli(*args: str) -> float:
    """Run ``python -m trainer args``; returns wall seconds, raises with stderr on failure."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trainer", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"trainer {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-label", type=int, default=40, help="keyword clips per label (default: 40)")
    ap.add_argument("--epochs", type=int, default=30, help="max epochs (default: 30)")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench-train", help="work folder")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    data = args.out / "data"
    synth_s = _cli("synth", str(data), "--set", "keywords", "--per-label", str(args.per_label))
    rows = []
    for name, extra in RUNS:
        out = args.out / name.split()[0].replace("/", "-")
        secs = _cli("train", str(data / "keywords"), "--out", str(out), "--epochs", str(args.epochs),
                    "--no-progress", *extra)
        target = extra[1]
        m = json.loads((out / target / "manifest.json").read_text())
        rows.append({"name": name, "target": target, "architecture": m["architecture"],
                     "params": m["params"], "macs": m["macs"], "train_s": round(secs, 1),
                     "test_float": m["metrics"]["test_accuracy_float"],
                     "test_model": m["metrics"]["test_accuracy"], "n_test": m["metrics"]["n_test"],
                     "epochs_run": m["training"]["epochs_run"]})
    base = {r["target"]: r for r in reversed(rows)}  # first row per target
    for r in rows:
        b = base[r["target"]]
        r["train_time_vs_baseline"] = round(r["train_s"] / b["train_s"], 2)
        r["test_vs_baseline"] = round(r["test_model"] - b["test_model"], 4)
    print(f"synthetic keywords, {args.per_label} clips/label: built in {synth_s:.1f} s\n")
    head = (f"{'run':<27} {'params':>8} {'MACs':>9} {'train s':>8} {'x base':>7} {'epochs':>6} "
            f"{'float':>6} {'model':>6} {'vs base':>8}")
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['name']:<27} {r['params']:>8} {r['macs']:>9} {r['train_s']:>8.1f} "
              f"{r['train_time_vs_baseline']:>7.2f} {r['epochs_run']:>6} {r['test_float']:>6.3f} "
              f"{r['test_model']:>6.3f} {r['test_vs_baseline']:>+8.3f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "platform": platform.platform()},
        "per_label": args.per_label, "epochs": args.epochs, "synth_s": round(synth_s, 1),
        "runs": rows,
    }, indent=2) + "\n")
    print(f"\nsaved {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
