"""``earshot-train evaluate``: accuracy, confusion matrices and float-vs-int8 on the test split.

Each bundle is scored through ``daemon.inference.Classifier``, the daemon's own code path: an
RP2040 bundle's int8 model gets the integer-only input the firmware computes
(``q15_to_int8``), and its ``model_float.tflite`` is scored beside it on the same clips. The test
split is re-derived from the manifest's ``training`` summary (root, layout, label subset, seed,
percentages) unless ``--data`` names another data set root.

Writes into ``--out``: ``report.json``, ``report.md`` and one confusion-matrix PNG per bundle and
model kind. Several bundles side by side (e.g. ``stft`` vs ``logmel`` Pi bundles) get a
comparison table.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from daemon.inference import Classifier
from earshot.bundle import Bundle, load_bundle

_LOGGER = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="per-class accuracy, confusion matrices, float vs int8, front-end comparison",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE", help="bundle folders")
    p.add_argument(
        "--data",
        type=Path,
        help="data set root to take the test split from (default: the one each "
        "bundle was trained on, from its manifest)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/evaluation"),
        help="report folder (default: out/evaluation)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def float_bundle(b: Bundle) -> Bundle | None:
    """The bundle's float model as a bundle of its own (None if the bundle is float already)."""
    if b.manifest["input"].get("dtype") == "float32":
        return None
    m = {
        **b.manifest,
        "model_file": "model_float.tflite",
        "input": {**b.manifest["input"], "dtype": "float32"},
    }
    return replace(b, manifest=m)


def score_clips(
    b: Bundle, clips: np.ndarray, progress: bool = True, use_float: bool = False
) -> np.ndarray:
    """Probabilities ``(n, labels)`` for 1 s clips, through the daemon's Classifier."""
    from tqdm import tqdm

    if use_float:
        fb = float_bundle(b)
        b = fb if fb is not None else b
    clf = Classifier(b)
    out = np.empty((len(clips), len(b.labels)), np.float32)
    desc = f"{b.name} {'float' if use_float else b.manifest['input']['dtype']}"
    for i, clip in enumerate(
        tqdm(clips, desc=desc, unit="clip", disable=not progress, leave=False)
    ):
        out[i] = clf.scores(clip)
    return out


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Rows: true label, columns: predicted label."""
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def model_report(scores: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall) and the confusion matrix of one model."""
    pred = scores.argmax(axis=1)
    cm = confusion(y, pred, len(labels))
    per = {
        lab: (round(float(cm[i, i] / cm[i].sum()), 4) if cm[i].sum() else None)
        for i, lab in enumerate(labels)
    }
    return {
        "accuracy": round(float((pred == y).mean()) if len(y) else 0.0, 4),
        "per_class": per,
        "confusion": cm.tolist(),
        "n": int(len(y)),
    }


def bundle_metrics(
    b: Bundle, clips: np.ndarray, y: np.ndarray, progress: bool = True
) -> dict[str, Any]:
    """Test metrics for the manifest: the bundle's model and its float model."""
    scores = score_clips(b, clips, progress)
    main = model_report(scores, y, b.labels)
    fl, agree = main, 1.0
    if float_bundle(b) is not None:
        f_scores = score_clips(b, clips, progress, use_float=True)
        fl, agree = model_report(f_scores, y, b.labels), agreement(scores, f_scores)
    return {
        "test_accuracy": main["accuracy"],
        "test_accuracy_float": fl["accuracy"],
        "test_int8_float_agreement": agree,
        "test_per_class": main["per_class"],
        "n_test": main["n"],
    }


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of clips on which two models pick the same label.

    On a small test split one clip moves accuracy by several points either way; agreement says
    directly how often the int8 model decides differently from the float one it was made from.
    """
    if len(a) == 0:
        return 1.0
    return round(float((a.argmax(axis=1) == b.argmax(axis=1)).mean()), 4)


def _split_key(t: dict[str, Any], data: Path | None) -> str:
    keys = (
        "root",
        "layout",
        "label_subset",
        "unknown",
        "unknown_share",
        "silence",
        "group_pattern",
        "seed",
        "val_percent",
        "test_percent",
    )
    d = {k: t.get(k) for k in keys}
    if data is not None:
        d["root"], d["layout"] = str(data), "auto"
    return json.dumps(d, sort_keys=True)


def derive_test_split(
    b: Bundle, data: Path | None, cache: dict, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's test split, labels mapped to the bundle's output order."""
    from .datasets import load_dataset, load_split

    t = b.manifest.get("training") or {}
    if data is None and "root" not in t:
        raise ValueError(f"bundle {b.path}: manifest has no training data summary; pass --data")
    key = _split_key(t, data)
    if key not in cache:
        spec = json.loads(key)
        ds = load_dataset(
            spec["root"],
            layout=spec["layout"] or "auto",
            labels=spec["label_subset"],
            unknown=bool(spec["unknown"]),
            unknown_share=float(spec["unknown_share"] or 1.0),
            silence=bool(spec["silence"]),
            group_pattern=spec.get("group_pattern"),
            seed=int(spec["seed"] or 0),
            val_percent=float(spec["val_percent"] or 10.0),
            test_percent=float(spec["test_percent"] or 10.0),
            progress=progress,
        )
        cache[key] = (list(ds.labels), *load_split(ds, "test"))
    ds_labels, x, y = cache[key]
    return x, _map_labels(b, ds_labels, y)


def _map_labels(b: Bundle, ds_labels: list[str], y: np.ndarray) -> np.ndarray:
    positive = (b.manifest.get("training") or {}).get("positive")
    if positive is not None:
        from .train import transfer_targets

        positives = [x.strip() for x in str(positive).split(",") if x.strip()]
        missing = [p for p in positives if p not in ds_labels]
        if missing:
            raise ValueError(f"bundle {b.path}: positive label(s) {', '.join(missing)} are not "
                             "in the data set")  # fmt: skip
        return transfer_targets(y, ds_labels, positives)
    missing = [lab for lab in ds_labels if lab not in b.labels]
    if missing:
        raise ValueError(
            f"bundle {b.path}: data set label(s) {', '.join(missing)} are not in the "
            f"bundle's labels {b.labels}"
        )
    return np.array([b.labels.index(ds_labels[i]) for i in y], np.int64)


def plot_confusion(cm: np.ndarray, labels: list[str], title: str, path: Path) -> None:
    """Confusion matrix as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    import matplotlib.pyplot as plt

    n = len(labels)
    side = max(4.0, 1.4 + 0.6 * n)  # a 2-class matrix is as readable as a 10-class one
    fig, ax = plt.subplots(figsize=(side, side), dpi=120)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("\n".join(textwrap.wrap(title, 40)), fontsize=9)
    top = cm.max() if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if cm[i, j] > top / 2 else "black",
            )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_confusion(cm: np.ndarray, labels: list[str]) -> str:
    """Confusion matrix as text (rows true, columns predicted)."""
    w = max(6, *(len(lab) for lab in labels)) + 1
    lines = [" " * w + "".join(f"{lab[: w - 1]:>{w}}" for lab in labels)]
    for lab, row in zip(labels, cm, strict=True):
        lines.append(f"{lab:<{w}}" + "".join(f"{v:>{w}}" for v in row))
    return "\n".join(lines)


def evaluate_bundle(
    b: Bundle,
    x: np.ndarray,
    y: np.ndarray,
    out: Path,
    progress: bool,
    taken: set[str] | None = None,
) -> dict[str, Any]:
    """Score one bundle (and its float model), write its PNGs; returns its report entry.

    ``taken``: PNG names already written in this report (updated), so none is overwritten.
    """
    taken = set() if taken is None else taken
    kinds = {"float": True} if float_bundle(b) is None else {"int8": False, "float": True}
    entry: dict[str, Any] = {
        "bundle": str(b.path),
        "name": b.name,
        "target": b.manifest["target"],
        "architecture": b.manifest.get("architecture"),
        "frontend": b.manifest["frontend"]["name"],
        "labels": b.labels,
        "model_sha256": b.sha256,
        "models": {},
    }
    scores = {}
    for kind, use_float in kinds.items():
        scores[kind] = score_clips(b, x, progress, use_float=use_float)
        rep = model_report(scores[kind], y, b.labels)
        png = out / f"{_slug(b)}-{kind}-confusion.png"
        if png.name in taken:  # two bundles with one name (e.g. retrained) keep both plots
            png = out / f"{_slug(b)}-{len(taken)}-{kind}-confusion.png"
        taken.add(png.name)
        plot_confusion(
            np.array(rep["confusion"]),
            b.labels,
            f"{b.name} ({kind}), acc {rep['accuracy']:.3f}",
            png,
        )
        rep["confusion_png"] = png.name
        entry["models"][kind] = rep
    if "int8" in entry["models"]:
        entry["int8_minus_float"] = round(
            entry["models"]["int8"]["accuracy"] - entry["models"]["float"]["accuracy"], 4
        )
        entry["int8_float_agreement"] = agreement(scores["int8"], scores["float"])
    return entry


def _slug(b: Bundle) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in b.name)


def markdown(report: dict[str, Any]) -> str:
    """A short Markdown report with the comparison table and the confusion plots."""
    lines = [
        "# earshot evaluation",
        "",
        "| bundle | target | front end | architecture | model | accuracy | test clips |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in report["bundles"]:
        for kind, rep in e["models"].items():
            lines.append(
                f"| {e['name']} | {e['target']} | {e['frontend']} | {e['architecture']} | "
                f"{kind} | {rep['accuracy']:.4f} | {rep['n']} |"
            )
    for e in report["bundles"]:
        lines += ["", f"## {e['name']}", ""]
        if "int8_minus_float" in e:
            lines.append(f"int8 minus float accuracy: {e['int8_minus_float']:+.4f}; the two pick "
                         f"the same label on {e['int8_float_agreement']:.1%} of the clips")
            lines.append("")
        lines.append("| label | " + " | ".join(e["models"]) + " |")
        lines.append("|---|" + "---|" * len(e["models"]))
        for lab in e["labels"]:
            vals = [e["models"][k]["per_class"][lab] for k in e["models"]]
            lines.append(
                f"| {lab} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |"
            )
        for kind, rep in e["models"].items():
            lines += ["", f"![{e['name']} {kind} confusion]({rep['confusion_png']})"]
    return "\n".join(lines) + "\n"


def evaluate(
    paths: list[Path], out: Path, data: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Evaluate bundles into ``out`` (report.json, report.md, PNGs); returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    taken: set[str] = set()
    entries = []
    for p in paths:
        b = load_bundle(p)
        x, y = derive_test_split(b, data, cache, progress)
        entries.append(evaluate_bundle(b, x, y, out, progress, taken))
    report = {"bundles": entries, "data": str(data) if data else None}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    return report


def run(args: argparse.Namespace) -> int:
    report = evaluate(list(args.bundles), args.out, args.data, progress=not args.no_progress)
    for e in report["bundles"]:
        for kind, rep in e["models"].items():
            print(
                f"\n{e['name']} [{e['target']}, {e['frontend']}, {e['architecture']}] {kind}: "
                f"accuracy {rep['accuracy']:.4f} on {rep['n']} test clips"
            )
            print(format_confusion(np.array(rep["confusion"]), e["labels"]))
    print(f"\nreport: {args.out / 'report.md'} and {args.out / 'report.json'}")
    return 0
