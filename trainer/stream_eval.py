"""``earshot-train evaluate-stream``: recall, false alarms per hour and latency on long streams.

Clip accuracy (``evaluate``) says how often the model names a 1 s clip right; this says what a
user lives with: how many alarms it catches in a long stream, how often it fires on nothing,
and how long after the sound starts it speaks. Streams are ``<name>.wav`` +
``<name>.events.json`` (``trainer.streams``; ``earshot-train make-streams`` builds them).

The run is ``earshotd run``'s own code: ``daemon.inference.Classifier`` and
``daemon.streaming.Recogniser`` fed the WAV in 50 ms chunks (the WAV source's chunk), with
``detector_config(bundle, DetectorSettings)`` (the daemon's defaults unless ``--detector-*`` /
``--stream-*`` flags override them). Every hop's scores are recorded once; the threshold sweep
replays them through fresh ``earshot.detector.Detector`` instances, which is exact: replaying
at the run's own thresholds gives the run's detections (tested).

Matching (:func:`match`), detections in time order, tolerance ``T`` (``--tolerance-s``, 1.0 s):

* a detection of label L at time t is a *hit* for the earliest not-yet-hit event of label L
  with ``start_s <= t <= end_s + T`` (t is the end of the window that fired, i.e. when the
  daemon reports it; T allows for the averaging window and a sound cut short);
* otherwise, if t lies in such a window of an event of label L that is already hit, it is a
  *duplicate* and not counted (one sound, one alarm is the aim, but a repeat is not a false one);
* anything else is a *false alarm*, including a wrong label during an event (counted also as
  ``wrong_label``).

Figures (per label and overall): recall = hits / events; false alarms per hour over the whole
stream, and over the negative-only stretches alone (``negative_spans`` of the events file;
false alarms whose time falls inside one, per hour of them); latency = detection time - event
start, p50 and p95 in ms.

Threshold sweep: the same ``threshold_offset`` the daemon has (``[detector]
threshold_offset``) is added to every label's bundle threshold (clipped to 0..1), for offsets
from ``-max(thresholds)`` to ``1 - min(thresholds)`` in ``--sweep-step`` steps, so each point is
a setting a user can make without retraining. Miss rate = 1 - recall; the DET plot puts miss
rate (%) against false alarms per hour (log x; a point with none is drawn at half of one per
evaluated hour, the resolution). Suggested setting: the lowest miss rate with false alarms per
hour <= ``--target-fa-per-hour`` (default 1/h if a firing label has "alarm" in its name, else
2/h); of offsets that tie, the middle one (margin both ways). A suggestion from streams shorter
than ``1 / target`` hours cannot tell the target from zero: the report says so.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from daemon.config import DetectorSettings, StreamSettings
from daemon.inference import Classifier
from daemon.streaming import Recogniser, detector_config
from earshot.audio import SAMPLE_RATE
from earshot.bundle import Bundle, load_bundle
from earshot.detector import Detection, Detector, DetectorConfig
from earshot.wavio import read_wav

from .streams import Event, StreamEvents, find_streams

_LOGGER = logging.getLogger(__name__)

TOLERANCE_S = 1.0
"""Default: a detection up to this long after an event's end still counts for it."""
CHUNK_MS = 50
"""Audio per ``Recogniser.feed`` call: the daemon's WAV source chunk."""
SWEEP_STEP = 0.02
"""Default spacing of the threshold-offset grid."""


# -- running the daemon's pipeline ---------------------------------------------------------------


@dataclass
class Recording:
    """Per-hop results of one live run: what the sweep replays."""

    t_ms: list[int]
    scores: list[np.ndarray | None]
    """Per-label scores, None for hops the silence gate closed."""
    detections: list[Detection]
    """What the live Recogniser reported."""
    config: DetectorConfig
    duration_s: float


def run_stream(
    bundle: Bundle,
    audio: np.ndarray,
    detector: DetectorSettings | None = None,
    stream: StreamSettings | None = None,
    classifier: Classifier | None = None,
    progress: bool = True,
    desc: str = "stream",
) -> Recording:
    """Feed ``audio`` (16 kHz float) through Classifier + Recogniser as ``earshotd run`` does."""
    from tqdm import tqdm

    det_cfg = detector_config(bundle, detector or DetectorSettings())
    clf = classifier if classifier is not None else Classifier(bundle)
    rec = Recogniser(clf, Detector(det_cfg), stream or StreamSettings())
    chunk = SAMPLE_RATE * CHUNK_MS // 1000
    t_ms: list[int] = []
    scores: list[np.ndarray | None] = []
    dets: list[Detection] = []
    with tqdm(total=audio.size / SAMPLE_RATE, desc=desc, unit="s", disable=not progress,
              leave=False, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]") as bar:  # fmt: skip
        for pos in range(0, audio.size, chunk):
            for r in rec.feed(audio[pos : pos + chunk]):
                t_ms.append(r.t_ms)
                scores.append(None if r.scores is None else np.array(r.scores, np.float32))
                if r.detection is not None:
                    dets.append(r.detection)
            bar.update(min(chunk, audio.size - pos) / SAMPLE_RATE)
    return Recording(t_ms, scores, dets, det_cfg, audio.size / SAMPLE_RATE)


def replay(recording: Recording, config: DetectorConfig | None = None) -> list[Detection]:
    """The recorded scores through a fresh Detector (the run's own config if none is given)."""
    det = Detector(config or recording.config)
    out = []
    for t, s in zip(recording.t_ms, recording.scores, strict=True):
        if s is None:
            continue  # the Recogniser does not call the detector while the gate is closed
        d = det.update(t, s.tolist())
        if d is not None:
            out.append(d)
    return out


# -- matching ------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def _rate(n: int, hours: float) -> float | None:
    return round(n / hours, 3) if hours > 0 else None


def match(
    events: Sequence[Event],
    detections: Iterable[tuple[float, str]],
    duration_s: float,
    tolerance_s: float = TOLERANCE_S,
    negative_spans: Sequence[tuple[float, float]] = (),
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score ``(time_s, label)`` detections against events (rule in the module docstring).

    Returns counts and figures overall and per label (the events' labels, the detections'
    labels and ``labels`` if given), plus ``hits``: ``[(event index, detection time)]``.
    """
    if duration_s <= 0:
        raise ValueError(f"match: duration_s must be > 0, got {duration_s}")
    if tolerance_s < 0:
        raise ValueError(f"match: tolerance_s must be >= 0, got {tolerance_s}")
    dets = sorted(((float(t), str(lab)) for t, lab in detections), key=lambda d: d[0])
    names = sorted({e.label for e in events} | {lab for _, lab in dets} | set(labels or ()))
    hit_at: dict[int, float] = {}
    fa: dict[str, int] = dict.fromkeys(names, 0)
    fa_neg: dict[str, int] = dict.fromkeys(names, 0)
    wrong: dict[str, int] = dict.fromkeys(names, 0)
    dup: dict[str, int] = dict.fromkeys(names, 0)
    for t, lab in dets:
        inside = [i for i, e in enumerate(events) if e.start_s <= t <= e.end_s + tolerance_s]
        mine = [i for i in inside if events[i].label == lab]
        free = [i for i in mine if i not in hit_at]
        if free:
            hit_at[min(free, key=lambda i: (events[i].start_s, i))] = t
        elif mine:
            dup[lab] += 1
        else:
            fa[lab] += 1
            if inside:
                wrong[lab] += 1
            if any(s <= t < e for s, e in negative_spans):
                fa_neg[lab] += 1
    hours = duration_s / 3600.0
    neg_hours = sum(e - s for s, e in negative_spans) / 3600.0

    def figures(sel: list[int], n_fa: int, n_fa_neg: int, n_wrong: int, n_dup: int) -> dict[str, Any]:
        hits = [i for i in sel if i in hit_at]
        lat = [1000.0 * (hit_at[i] - events[i].start_s) for i in hits]
        return {
            "events": len(sel),
            "hits": len(hits),
            "misses": len(sel) - len(hits),
            "recall": round(len(hits) / len(sel), 4) if sel else None,
            "false_alarms": n_fa,
            "wrong_label": n_wrong,
            "duplicates": n_dup,
            "fa_per_hour": _rate(n_fa, hours),
            "false_alarms_negative": n_fa_neg,
            "fa_per_hour_negative": _rate(n_fa_neg, neg_hours),
            "latency_ms_p50": _percentile(lat, 50),
            "latency_ms_p95": _percentile(lat, 95),
            "latencies_ms": [round(v, 1) for v in lat],
        }

    per = {
        lab: figures([i for i, e in enumerate(events) if e.label == lab], fa[lab], fa_neg[lab],
                     wrong[lab], dup[lab])
        for lab in names
    }  # fmt: skip
    overall = figures(list(range(len(events))), sum(fa.values()), sum(fa_neg.values()),
                      sum(wrong.values()), sum(dup.values()))  # fmt: skip
    overall["hours"] = round(hours, 6)
    overall["negative_hours"] = round(neg_hours, 6)
    return {**overall, "per_label": per, "hits_at": sorted(hit_at.items())}


def pool(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several streams' :func:`match` results as one (counts summed, figures recomputed)."""
    hours = sum(r["hours"] for r in results)
    neg_hours = sum(r["negative_hours"] for r in results)

    def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
        c = {k: sum(p[k] for p in parts) for k in ("events", "hits", "misses", "false_alarms",
                                                    "wrong_label", "duplicates", "false_alarms_negative")}  # fmt: skip
        lat = [v for p in parts for v in p["latencies_ms"]]
        return {
            **c,
            "recall": round(c["hits"] / c["events"], 4) if c["events"] else None,
            "fa_per_hour": _rate(c["false_alarms"], hours),
            "fa_per_hour_negative": _rate(c["false_alarms_negative"], neg_hours),
            "latency_ms_p50": _percentile(lat, 50),
            "latency_ms_p95": _percentile(lat, 95),
            "latencies_ms": lat,
        }

    labels = sorted({lab for r in results for lab in r["per_label"]})
    per = {lab: combine([r["per_label"][lab] for r in results if lab in r["per_label"]]) for lab in labels}
    return {**combine(list(results)), "hours": round(hours, 6), "negative_hours": round(neg_hours, 6),
            "per_label": per}  # fmt: skip


def _key(dets: Iterable[Detection]) -> list[tuple[int, str, float]]:
    return [(d.t_ms, d.label, d.score) for d in dets]


def _as_pairs(dets: Iterable[Detection]) -> list[tuple[float, str]]:
    return [(d.t_ms / 1000.0, d.label) for d in dets]


# -- sweep ---------------------------------------------------------------------------------------


def firing_labels(config: DetectorConfig) -> list[str]:
    return [x for x in config.labels if x not in config.ignore]


def default_target(config: DetectorConfig) -> float:
    """1 false alarm/h for alarm-like bundles (a firing label contains "alarm"), else 2/h."""
    return 1.0 if any("alarm" in x.lower() for x in firing_labels(config)) else 2.0


def offset_grid(
    bundle: Bundle, settings: DetectorSettings | None = None, step: float = SWEEP_STEP
) -> list[float]:
    """Threshold offsets that take every firing label's threshold across 0..1 (plus 0 and the
    settings' own offset)."""
    if not 0 < step <= 0.5:
        raise ValueError(f"sweep step must be in (0, 0.5], got {step}")
    settings = settings or DetectorSettings()
    base = detector_config(bundle, replace(settings, threshold_offset=0.0))
    thr = [t for x, t in zip(base.labels, base.thresholds, strict=True) if x not in base.ignore]
    if not thr:
        raise ValueError(f"bundle {bundle.path}: no label can fire (all of {', '.join(base.labels)} "
                         "are ignored), so there is nothing to sweep")
    lo, hi = -max(thr), 1.0 - min(thr)
    n = int(math.floor((hi - lo) / step + 1e-9))
    grid = {round(lo + k * step, 6) for k in range(n + 1)}
    grid |= {0.0, round(hi, 6), round(settings.threshold_offset, 6)}
    return sorted(grid)


def sweep(
    bundle: Bundle,
    streams: Sequence[tuple[StreamEvents, Recording]],
    settings: DetectorSettings,
    tolerance_s: float,
    step: float = SWEEP_STEP,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Miss rate and false alarms per hour at each threshold offset (recorded scores replayed)."""
    from tqdm import tqdm

    rows = []
    for off in tqdm(offset_grid(bundle, settings, step), desc=f"{bundle.name} sweep", disable=not progress, leave=False):
        cfg = detector_config(bundle, replace(settings, threshold_offset=off))
        res = pool([
            match(ev.events, _as_pairs(replay(rec, cfg)), ev.duration_s, tolerance_s, ev.negative_spans,
                  firing_labels(cfg))
            for ev, rec in streams
        ])  # fmt: skip
        rows.append({
            "threshold_offset": off,
            "thresholds": {x: round(t, 4) for x, t in zip(cfg.labels, cfg.thresholds, strict=True)
                           if x not in cfg.ignore},
            "miss_rate": None if res["recall"] is None else round(1.0 - res["recall"], 4),
            "fa_per_hour": res["fa_per_hour"],
            "false_alarms": res["false_alarms"],
            "hits": res["hits"],
            "events": res["events"],
        })  # fmt: skip
    return rows


LABEL_GRID = tuple(round(0.30 + 0.02 * k, 2) for k in range(35))
"""Thresholds :func:`per_label_thresholds` tries for each label (0.30 to 0.98)."""


def window_means(rec: Recording, cfg: DetectorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What ``Detector.update`` sees at each hop the gate let through: (time ms, results in the
    window, per-label mean over the window), computed for all hops at once."""
    keep = [i for i, x in enumerate(rec.scores) if x is not None]
    if not keep:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(cfg.labels)))
    t = np.array([rec.t_ms[i] for i in keep], np.int64)
    scores = np.stack([np.asarray(rec.scores[i]) for i in keep]).astype(np.float64)
    idx = np.arange(t.size)
    start = np.maximum(np.searchsorted(t, t - cfg.average_window_ms, side="right"),
                       idx - cfg.max_history + 1)  # fmt: skip
    csum = np.vstack([np.zeros(scores.shape[1]), np.cumsum(scores, axis=0)])
    count = idx + 1 - start
    return t, count, (csum[idx + 1] - csum[start]) / count[:, None]


def _label_firings(t: np.ndarray, count: np.ndarray, means: np.ndarray, cfg: DetectorConfig,
                   label: int, threshold: float) -> list[tuple[float, str]]:  # fmt: skip
    """The detections of ``label`` alone at ``threshold`` (its own suppression only)."""
    free = [i for i, x in enumerate(cfg.labels) if x not in cfg.ignore]
    best = np.asarray(free)[np.argmax(means[:, free], axis=1)] if len(t) else np.zeros(0, int)
    cand = np.flatnonzero((best == label) & (count >= cfg.min_count) & (means[:, label] >= threshold))
    out, last = [], None
    for i in cand:
        if last is None or t[i] - last >= cfg.suppression_ms:
            last = int(t[i])
            out.append((last / 1000.0, cfg.labels[label]))
    return out


def per_label_thresholds(
    streams: Sequence[tuple[StreamEvents, Recording]], cfg: DetectorConfig, tolerance_s: float,
    target_fa_per_hour: float,
) -> dict[str, Any] | None:
    """A threshold per firing label: the most hits with at most ``target_fa_per_hour`` false
    alarms in all, each label's hits and false alarms counted alone (:data:`LABEL_GRID`; of
    thresholds with the same counts the middle one), the budget shared out exactly (ties: fewer
    false alarms, then higher thresholds). A smoke
    alarm's T3 and a CO alarm's T4 score very differently, so one offset for both misses one
    of them. The result is then replayed exactly; None if that breaks the budget."""
    labels = firing_labels(cfg)
    hours = sum(ev.duration_s for ev, _ in streams) / 3600.0
    budget = int(math.floor(target_fa_per_hour * hours + 1e-9))
    views = [(ev, window_means(rec, cfg)) for ev, rec in streams]
    options: dict[str, list[tuple[int, int, float]]] = {}
    for name in labels:
        k = cfg.labels.index(name)
        rows = []
        for thr in LABEL_GRID:
            got = [match(ev.events, _label_firings(*v, cfg, k, thr), ev.duration_s, tolerance_s,
                         labels=labels)["per_label"][name] for ev, v in views]  # fmt: skip
            rows.append((sum(g["false_alarms"] for g in got), sum(g["hits"] for g in got), thr))
        # thresholds that give the same counts: keep the middle one (margin both ways)
        same: dict[tuple[int, int], list[float]] = {}
        for fa, hits, thr in rows:
            same.setdefault((fa, hits), []).append(thr)
        options[name] = [(fa, hits, ts[len(ts) // 2]) for (fa, hits), ts in same.items()]
    # exact share-out of the false-alarm budget: best[fa] = (hits, -fa, thresholds)
    best: dict[int, tuple[int, float, dict[str, float]]] = {0: (0, 0.0, {})}
    for name in labels:
        nxt: dict[int, tuple[int, float, dict[str, float]]] = {}
        for fa0, (h0, m0, chosen) in best.items():
            for fa, hits, thr in options[name]:
                if fa0 + fa > budget:
                    continue
                cand = (h0 + hits, m0 + thr, {**chosen, name: thr})
                old = nxt.get(fa0 + fa)
                if old is None or cand[:2] > old[:2]:
                    nxt[fa0 + fa] = cand
        best = nxt
        if not best:
            return None
    fa, (hits, _, chosen) = max(best.items(), key=lambda kv: (kv[1][0], -kv[0], kv[1][1]))
    final = tuple(chosen.get(x, t) for x, t in zip(cfg.labels, cfg.thresholds, strict=True))
    exact = replace(cfg, thresholds=final)
    res = pool([match(ev.events, _as_pairs(replay(rec, exact)), ev.duration_s, tolerance_s,
                      ev.negative_spans, labels) for ev, rec in streams])  # fmt: skip
    if res["fa_per_hour"] is None or res["fa_per_hour"] > target_fa_per_hour or res["recall"] is None:
        return None
    return {"thresholds": chosen, "miss_rate": round(1.0 - res["recall"], 4),
            "fa_per_hour": res["fa_per_hour"], "false_alarms": res["false_alarms"],
            "hits": res["hits"], "events": res["events"]}  # fmt: skip


TIMINGS = ((300, 2), (600, 3), (1000, 5), (1500, 8))
"""(average_window_ms, min_count) pairs ``--record thresholds`` tries when no timing rule is set:
a word is over in half a second, an alarm pattern lasts seconds (measured on validation
streams: a smoke/CO detector kept recall 1.0 at 0.75 false alarms/h with 1500 ms, at 13.5/h with
300 ms)."""


def choose_timing(
    bundle: Bundle,
    streams: Sequence[tuple[StreamEvents, Recording]],
    settings: DetectorSettings,
    tolerance_s: float,
    target_fa_per_hour: float,
    step: float = SWEEP_STEP,
    progress: bool = True,
) -> dict[str, Any]:
    """For each of :data:`TIMINGS`, the threshold sweep's suggestion (one offset for all labels)
    and :func:`per_label_thresholds`' (one threshold each), the lower miss rate of the two (ties:
    the offset); the pick is the lowest miss rate within ``target_fa_per_hour``, ties going to
    the shorter window (sooner alerts). ``{"average_window_ms", "min_count", "suggested",
    "tried": [...]}``; the pick's ``suggested`` is None when no pair keeps to the target (the
    run's own pair is kept). A per-label suggestion has ``thresholds`` and no offset."""
    tried: list[dict[str, Any]] = []
    for window, count in TIMINGS:
        rules = replace(settings, average_window_ms=window, min_count=count)
        s = suggest(sweep(bundle, streams, rules, tolerance_s, step, progress), target_fa_per_hour)
        cfg = detector_config(bundle, rules)
        each = per_label_thresholds([(ev, replace(rec, config=cfg)) for ev, rec in streams], cfg,
                                    tolerance_s, target_fa_per_hour)  # fmt: skip
        if each is not None and (s is None or each["miss_rate"] < s["miss_rate"]):
            s = {**each, "threshold_offset": None}
        tried.append({"average_window_ms": window, "min_count": count, "suggested": s})
    ok = [t for t in tried if t["suggested"] is not None]
    if not ok:
        cfg = streams[0][1].config
        return {"average_window_ms": cfg.average_window_ms, "min_count": cfg.min_count,
                "suggested": None, "tried": tried}  # fmt: skip
    best = min(ok, key=lambda t: (t["suggested"]["miss_rate"], t["average_window_ms"]))
    return {**best, "tried": tried}


def suggest(rows: Sequence[dict[str, Any]], target_fa_per_hour: float) -> dict[str, Any] | None:
    """The lowest-miss row with FA/h <= target; None if no row keeps to the target.

    Several offsets often tie (a plateau of no misses and no false alarms on a test stream):
    the middle one of them is taken (the upper middle of an even count), so the suggestion has
    margin both ways instead of sitting at the edge where the next step starts missing.
    """
    ok = [r for r in rows if r["fa_per_hour"] is not None and r["fa_per_hour"] <= target_fa_per_hour
          and r["miss_rate"] is not None]  # fmt: skip
    if not ok:
        return None
    best = min(r["miss_rate"] for r in ok)
    tied = sorted((r for r in ok if r["miss_rate"] == best), key=lambda r: r["threshold_offset"])
    return tied[len(tied) // 2]


def plot_det(
    rows: Sequence[dict[str, Any]], hours: float, title: str, path: Path,
    target: float, current: dict[str, Any] | None, suggested: dict[str, Any] | None,
) -> None:  # fmt: skip
    """DET-style curve: miss rate (%) against false alarms per hour (log x), PNG via Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 0.5 / hours if hours > 0 else 0.01

    def xy(r: dict[str, Any]) -> tuple[float, float]:
        return max(float(r["fa_per_hour"]), floor), 100.0 * float(r["miss_rate"])

    pts = [xy(r) for r in rows if r["miss_rate"] is not None and r["fa_per_hour"] is not None]
    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=100)
    if pts:
        xs, ys = zip(*sorted(pts), strict=True)
        ax.plot(xs, ys, "-o", ms=3, lw=1.2, label="threshold offset sweep")
    ax.axvline(target, color="grey", ls="--", lw=1, label=f"target {target:g} FA/h")
    ax.axvline(floor, color="lightgrey", ls=":", lw=1,
               label=f"no false alarm in {hours:.2f} h (drawn here)")
    if current is not None and current["miss_rate"] is not None:
        ax.plot(*xy(current), "s", color="C1", ms=8, label=f"current settings (offset {current['threshold_offset']:+.2f})")
    if suggested is not None:
        ax.plot(*xy(suggested), "*", color="C2", ms=12,
                label=f"suggested offset {suggested['threshold_offset']:+.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("miss rate (%)")
    ax.set_ylim(-2, 102)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- the whole evaluation ------------------------------------------------------------------------


def _public(m: dict[str, Any]) -> dict[str, Any]:
    """A match/pool result without the long per-event lists."""
    out = {k: v for k, v in m.items() if k not in ("latencies_ms", "hits_at")}
    if "per_label" in out:
        out["per_label"] = {k: _public(v) for k, v in out["per_label"].items()}
    return out


def stream_metrics(
    bundle: Bundle | str | Path,
    streams: Sequence[StreamEvents | str | Path],
    detector: DetectorSettings | None = None,
    stream: StreamSettings | None = None,
    tolerance_s: float = TOLERANCE_S,
    target_fa_per_hour: float | None = None,
    sweep_step: float = SWEEP_STEP,
    progress: bool = True,
    recordings: list[Recording] | None = None,
    timing: bool = False,
) -> dict[str, Any]:
    """Stream figures for one bundle, for a manifest or report.

    ``streams``: :class:`StreamEvents`, or folders / WAVs / events files (``find_streams``).
    Returns ``{"overall", "streams": [...], "sweep", "suggested", "target_fa_per_hour", ...}``;
    ``recordings`` (if a list) receives each stream's :class:`Recording`. With ``timing`` (and
    neither ``average_window_ms`` nor ``min_count`` set in ``detector``) also
    ``"timing"``: :func:`choose_timing`'s pick.
    """
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    settings = detector or DetectorSettings()
    evs = [s for s in streams if isinstance(s, StreamEvents)]
    evs += find_streams([s for s in streams if not isinstance(s, StreamEvents)])
    if not evs:
        raise ValueError("stream_metrics: no streams given")
    clf = Classifier(b)
    recs, per_stream = [], []
    for ev in evs:
        audio = read_wav(ev.wav_path)
        got = audio.size / SAMPLE_RATE
        if abs(got - ev.duration_s) > 0.5:
            raise ValueError(
                f"{ev.path}: duration_s is {ev.duration_s} but {ev.wav_path} is {got:.2f} s long"
            )
        rec = run_stream(b, audio, settings, stream, clf, progress, desc=f"{b.name} {ev.wav_path.name}")
        recs.append(rec)
        m = match(ev.events, _as_pairs(rec.detections), ev.duration_s, tolerance_s,
                  ev.negative_spans, firing_labels(rec.config))  # fmt: skip
        per_stream.append((ev, m))
    if recordings is not None:
        recordings.extend(recs)
    overall = pool([m for _, m in per_stream])
    cfg = recs[0].config
    target = default_target(cfg) if target_fa_per_hour is None else float(target_fa_per_hour)
    rows = sweep(b, list(zip(evs, recs, strict=True)), settings, tolerance_s, sweep_step, progress)
    own = round(settings.threshold_offset, 6)
    current = next(r for r in rows if r["threshold_offset"] == own)
    # The sweep's premise, checked on every run: replaying the recorded scores at the run's own
    # settings gives exactly what the live Recogniser reported.
    same = all(_key(replay(r)) == _key(r.detections) for r in recs)
    if not same:
        _LOGGER.warning("%s: replayed detections differ from the live run's; the sweep is "
                        "not exact", b.name)
    free = settings.average_window_ms is None and settings.min_count is None
    picked = (choose_timing(b, list(zip(evs, recs, strict=True)), settings, tolerance_s, target,
                            sweep_step, progress) if timing and free else None)  # fmt: skip
    return {
        "bundle": str(b.path),
        "name": b.name,
        "labels": b.labels,
        "firing_labels": firing_labels(cfg),
        "model_sha256": b.sha256,
        "tolerance_s": tolerance_s,
        "detector": {**asdict(settings), "average_window_ms": cfg.average_window_ms,
                     "min_count": cfg.min_count, "suppression_ms": cfg.suppression_ms},
        "stream": asdict(stream or StreamSettings()),
        "thresholds": {x: round(t, 4) for x, t in zip(cfg.labels, cfg.thresholds, strict=True)
                       if x not in cfg.ignore},
        "overall": _public(overall),
        "streams": [{"events_file": str(ev.path), "wav": str(ev.wav_path), "duration_s": ev.duration_s,
                     **_public(m)} for ev, m in per_stream],
        "target_fa_per_hour": target,
        "sweep": rows,
        "at_current_offset": current,
        "replay_matches_live": same,
        "suggested": suggest(rows, target),
        "fa_resolution_per_hour": round(3600.0 / sum(ev.duration_s for ev in evs), 3),
        "timing": picked,
    }  # fmt: skip


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _f(v: Any, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def _setting(s: dict[str, Any]) -> str:
    """A suggestion as words: its threshold offset, or its thresholds per label."""
    if s.get("threshold_offset") is not None:
        return f"threshold offset {s['threshold_offset']:+.2f}"
    return "thresholds " + ", ".join(f"{k} {v:.2f}" for k, v in s["thresholds"].items())


def _timing_lines(e: dict[str, Any]) -> list[str]:
    """The averaging windows tried for ``--record thresholds``, as a table."""
    t = e.get("timing")
    if not t:
        return []
    out = ["", "Averaging window (with `--record thresholds`): the lowest miss rate within the "
           "target, ties to the shorter window.", "",
           "| window ms | min count | setting | miss rate | FA/h | picked |", "|---|---|---|---|---|---|"]
    for r in t["tried"]:
        s = r["suggested"] or {}
        mark = "yes" if (r["average_window_ms"], r["min_count"]) == (t["average_window_ms"], t["min_count"]) \
            and t["suggested"] is not None else ""
        out.append(f"| {r['average_window_ms']} | {r['min_count']} | {_setting(s) if s else '-'} | "
                   f"{_f(s.get('miss_rate'), '.1%')} | {_f(s.get('fa_per_hour'), '.2f')} | {mark} |")
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# earshot stream evaluation",
        "",
        f"Tolerance: a detection counts for an event from its start to {report['tolerance_s']} s "
        "after its end. FA/h: false alarms per hour of stream (neg.: per hour of negative-only "
        "stretches). Latency: detection time - event start.",
        "",
        "| bundle | events | recall | false alarms | FA/h | FA/h neg. | latency p50 ms | "
        "latency p95 ms | hours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["bundles"]:
        o = e["overall"]
        lines.append(
            f"| {e['name']} | {o['events']} | {_f(o['recall'])} | {o['false_alarms']} | "
            f"{_f(o['fa_per_hour'], '.2f')} | {_f(o['fa_per_hour_negative'], '.2f')} | "
            f"{_f(o['latency_ms_p50'], '.0f')} | {_f(o['latency_ms_p95'], '.0f')} | {o['hours']:.3f} |"
        )
    for e in report["bundles"]:
        lines += ["", f"## {e['name']}", "", "| label | events | hits | recall | false alarms | "
                  "wrong label | duplicates | FA/h | latency p50 ms | latency p95 ms |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for lab, o in e["overall"]["per_label"].items():
            lines.append(
                f"| {lab} | {o['events']} | {o['hits']} | {_f(o['recall'])} | {o['false_alarms']} | "
                f"{o['wrong_label']} | {o['duplicates']} | {_f(o['fa_per_hour'], '.2f')} | "
                f"{_f(o['latency_ms_p50'], '.0f')} | {_f(o['latency_ms_p95'], '.0f')} |"
            )
        s = e["suggested"]
        lines.append("")
        if s is None:
            lines.append(f"No threshold offset keeps false alarms at or below "
                         f"{e['target_fa_per_hour']:g}/h on these streams.")  # fmt: skip
        else:
            thr = ", ".join(f"{k} {v:.2f}" for k, v in s["thresholds"].items())
            lines.append(
                f"Suggested for <= {e['target_fa_per_hour']:g} false alarms/h: "
                f"`--detector-threshold-offset {s['threshold_offset']:+.2f}` (thresholds {thr}): "
                f"miss rate {s['miss_rate']:.1%}, {s['fa_per_hour']:.2f} FA/h."
            )
        lines += _timing_lines(e)
        if e["fa_resolution_per_hour"] > e["target_fa_per_hour"]:
            lines += ["", f"Note: one false alarm in these streams is "
                      f"{e['fa_resolution_per_hour']:.2f}/h, more than the target; evaluate on "
                      "longer streams before trusting the suggestion."]  # fmt: skip
        lines += ["", f"![{e['name']} DET]({e['det_png']})"]
    return "\n".join(lines) + "\n"


def evaluate_streams(
    paths: Sequence[Path],
    streams: Sequence[str | Path],
    out: Path,
    detector: DetectorSettings | None = None,
    stream: StreamSettings | None = None,
    tolerance_s: float = TOLERANCE_S,
    target_fa_per_hour: float | None = None,
    sweep_step: float = SWEEP_STEP,
    progress: bool = True,
    record: str = "",
) -> dict[str, Any]:
    """Evaluate bundles on streams into ``out`` (report.json, report.md, DET PNGs).

    ``record``: ``"manifest"`` writes each bundle's figures into its manifest
    (:func:`record_in_manifest`); ``"thresholds"`` also moves the thresholds of its firing labels
    by the suggested offset (choose on validation streams, never on the test streams)."""
    evs = find_streams(streams)
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    taken: set[str] = set()
    for p in paths:
        m = stream_metrics(p, evs, detector, stream, tolerance_s, target_fa_per_hour, sweep_step,
                           progress, timing=record == "thresholds")  # fmt: skip
        png = f"{_slug(m['name'])}-det.png"
        if png in taken:
            png = f"{_slug(m['name'])}-{len(taken)}-det.png"
        taken.add(png)
        plot_det(m["sweep"], m["overall"]["hours"], f"{m['name']}: {m['overall']['events']} events, "
                 f"{m['overall']['hours']:.2f} h", out / png, m["target_fa_per_hour"],
                 m["at_current_offset"], m["suggested"])  # fmt: skip
        m["det_png"] = png
        entries.append(m)
        if record:
            record_in_manifest(Path(p), m, [str(e.path) for e in evs], record == "thresholds")
    report = {"version": 1, "tolerance_s": tolerance_s, "streams": [str(e.path) for e in evs],
              "bundles": entries}  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    return report


def manifest_summary(m: dict[str, Any], streams: Sequence[str]) -> dict[str, Any]:
    """The figures a manifest carries: recall, false alarms per hour, latency, hours of audio."""
    o = m["overall"]
    keys = ("events", "hits", "false_alarms", "recall", "fa_per_hour", "fa_per_hour_negative",
            "latency_ms_p50", "latency_ms_p95", "hours", "negative_hours")  # fmt: skip
    return {**{k: o.get(k) for k in keys}, "streams": list(streams),
            "threshold_offset": m["detector"]["threshold_offset"],
            "suggested_offset": (m["suggested"] or {}).get("threshold_offset"),
            "target_fa_per_hour": m["target_fa_per_hour"]}  # fmt: skip


APPLY_MAX_MISS = 0.5
"""``--record thresholds`` leaves a bundle's settings alone when the best setting within the
false-alarm budget misses more than this share of the events (a detector that keeps to the
budget by never firing is no detector; the warning says so)."""


def record_in_manifest(
    bundle: Path, m: dict[str, Any], streams: Sequence[str], apply: bool = False
) -> None:
    """Write ``manifest_summary`` into ``bundle``'s manifest under ``stream_eval`` (and, with
    ``apply``, its firing labels' thresholds moved by the suggested offset, clamped to 0.05-0.99,
    recorded under ``thresholds_from``; when ``m`` holds a ``timing`` pick, that pick's
    averaging window and count go into ``detector`` and its offset or per-label thresholds are
    the ones applied; nothing is applied when the setting misses more than
    :data:`APPLY_MAX_MISS` of the events)."""
    path = Path(bundle) / "manifest.json"
    doc = json.loads(path.read_text())
    summary = manifest_summary(m, streams)
    if apply:
        pick = m.get("timing") or {}
        chosen = pick.get("suggested") if pick else m.get("suggested")
        if chosen is None or chosen["miss_rate"] > APPLY_MAX_MISS:
            _LOGGER.warning("%s: no detector setting keeps to %s false alarms/h and catches %d %% "
                            "of the events; thresholds unchanged", bundle, m["target_fa_per_hour"],
                            round(100 * (1 - APPLY_MAX_MISS)))  # fmt: skip
        else:
            if pick:
                doc["detector"] = {**(doc.get("detector") or {}),
                                   "average_window_ms": pick["average_window_ms"],
                                   "min_count": pick["min_count"]}  # fmt: skip
                summary["timing"] = {k: pick[k] for k in ("average_window_ms", "min_count")}
            summary["suggested_offset"] = off = chosen["threshold_offset"]
            if off is None:  # one threshold per label
                each = chosen["thresholds"]
                doc["thresholds"] = {k: (round(min(0.99, max(0.05, each[k])), 4) if k in each else v)
                                     for k, v in doc["thresholds"].items()}  # fmt: skip
                doc["thresholds_from"] = {"method": "per-label stream sweep", "thresholds": each,
                                          "streams": list(streams)}  # fmt: skip
            else:
                doc["thresholds"] = {
                    k: (round(min(0.99, max(0.05, float(v) + off)), 4) if k in m["firing_labels"]
                        else v) for k, v in doc["thresholds"].items()}  # fmt: skip
                doc["thresholds_from"] = {"method": "stream sweep", "offset": off,
                                          "streams": list(streams)}  # fmt: skip
        doc["stream_eval_val"] = summary
    else:
        doc["stream_eval"] = summary
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


# -- command line --------------------------------------------------------------------------------

EPILOG = """\
example:
  earshot-train make-streams out/data/alarm --labels smoke_alarm \\
      --background out/data/alarm/_background_noise_ --negatives out/data/alarm/background \\
      --out out/streams --count 3 --duration-s 600
  earshot-train evaluate-stream out/bundles/pi out/bundles/rp2040 --streams out/streams \\
      --out out/stream-eval --target-fa-per-hour 1

The detector and stream settings are the daemon's defaults; --detector-* and --stream-* (the
same flags as earshotd run, or --config with an earshot.toml) change them.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from daemon import config

    p = sub.add_parser(
        "evaluate-stream",
        help="recall, false alarms per hour, latency and a DET plot on long labelled streams",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE", help="bundle folders")
    p.add_argument("--streams", nargs="+", required=True, metavar="DIR_OR_FILE",
                   help="folders of <name>.wav + <name>.events.json, or the WAV/events files")
    p.add_argument("--out", type=Path, default=Path("out/stream-eval"),
                   help="report folder (default: out/stream-eval)")
    p.add_argument("--target-fa-per-hour", type=float, default=None, metavar="X",
                   help="false-alarm budget for the suggested threshold (default: 1 for "
                        "alarm bundles, 2 otherwise)")
    p.add_argument("--tolerance-s", type=float, default=TOLERANCE_S, metavar="S",
                   help=f"a detection up to S after an event's end still counts (default: {TOLERANCE_S})")
    p.add_argument("--sweep-step", type=float, default=SWEEP_STEP,
                   help=f"threshold offset grid spacing (default: {SWEEP_STEP})")
    p.add_argument("--record", choices=("manifest", "thresholds"), default="",
                   help="manifest: write the figures into each bundle's manifest.json "
                        "(stream_eval); thresholds: also move its thresholds by the suggested "
                        "offset (use validation streams for this, never the test streams)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    config.add_arguments(p, sections=("stream", "detector"))
    p.set_defaults(func=run)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from daemon import config

    settings = config.from_args(args)
    if args.target_fa_per_hour is not None and args.target_fa_per_hour < 0:
        raise ValueError(f"--target-fa-per-hour must be >= 0, got {args.target_fa_per_hour}")
    if args.tolerance_s < 0:
        raise ValueError(f"--tolerance-s must be >= 0, got {args.tolerance_s}")
    report = evaluate_streams(
        list(args.bundles), args.streams, args.out, settings.detector, settings.stream,
        args.tolerance_s, args.target_fa_per_hour, args.sweep_step, progress=not args.no_progress,
        record=args.record,
    )  # fmt: skip
    for e in report["bundles"]:
        o = e["overall"]
        print(f"{e['name']}: recall {_f(o['recall'])} ({o['hits']}/{o['events']}), "
              f"{o['false_alarms']} false alarms = {_f(o['fa_per_hour'], '.2f')}/h, latency p50 "
              f"{_f(o['latency_ms_p50'], '.0f')} ms p95 {_f(o['latency_ms_p95'], '.0f')} ms")  # fmt: skip
        s = e["suggested"]
        if s is not None:
            print(f"  suggested for <= {e['target_fa_per_hour']:g} FA/h: threshold offset "
                  f"{s['threshold_offset']:+.2f} (miss {s['miss_rate']:.1%}, {s['fa_per_hour']:.2f} FA/h)")  # fmt: skip
        else:
            print(f"  no threshold offset reaches <= {e['target_fa_per_hour']:g} FA/h")
        t = e.get("timing")
        if t and t["suggested"] is not None:
            print(f"  recorded: averaging window {t['average_window_ms']} ms, min count "
                  f"{t['min_count']}, {_setting(t['suggested'])} "
                  f"(miss {t['suggested']['miss_rate']:.1%}, {t['suggested']['fa_per_hour']:.2f} FA/h)")
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.json'}")
    return 0
