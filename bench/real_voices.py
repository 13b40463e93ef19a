"""Real voices: a custom vocabulary trained on synthetic speech only, scored on people.

Hedgewars' English voice packs (Debian ``hedgewars-data``, installed by
``scripts/install-system-deps``) are eleven voice actors and characters (British, Classic,
Default, Default_uk, HillBilly, Mobster, Pirate, Robot, Russian, Singer, Surfer) saying the same
short phrases, each once. Eight of them are the vocabulary (``PHRASES``). The bench

1. makes the synthetic set for exactly those words (``earshot-train synth --words``; espeak-ng
   voices, fillers chosen so none collides with a word; no real recording whose name says one
   of the words is used for backgrounds or ``_unknown_``, ``trainer.recordings.may_say``, so no
   hedgewars clip of a vocabulary phrase is ever trained on);
2. trains the Pi and the RP2040 bundles as ``make demo`` does for the eight commands;
3. scores every real clip of the eight phrases (each pack's, exact duplicates between packs
   dropped) as a 1 s clip, clean and with held-out music and speech at 10 dB SNR, beside the
   bundle's own test split (held-out synthetic voices);
4. streams the real clips through ``earshotd run``'s recogniser: events streams of them over
   held-out music, speech and effects with the packs' other phrases (never trained on) as
   negatives, with the bundle's thresholds as trained: recall and false alarms per hour.

With ``--commands BUNDLE ...`` it also scores keyword bundles of the eight default commands
(``make demo``'s) on the real voices the packages hold saying them, none of which any training
uses (``trainer.recordings`` leaves them out): "left" and "right" from the ALSA and
freedesktop speaker tests (two speakers, "front left", "rear right", ...), "yes", "no" and
"down" from the packs' "Yessir", "Nooo" and "Enemy down". A clip counts as recognised when its
loudest second is called the word, and as heard when any 1 s window of it scores the word
above 0.5.

Results: a table on stdout and ``bench/results/real_voices.json``.

    .venv/bin/python bench/real_voices.py                        # synth, train, measure
    .venv/bin/python bench/real_voices.py --bundles out/rv/pi out/rv/rp2040   # measure only
    .venv/bin/python bench/real_voices.py --commands out/demo/keywords/pi out/demo/keywords/rp2040
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from trainer import recordings  # noqa: E402

RESULTS = REPO / "bench" / "results" / "real_voices.json"
VOICES = Path(recordings.VOICE_PACKS)
PACKS = ("British", "Classic", "Default", "Default_uk", "HillBilly", "Mobster", "Pirate", "Robot",
         "Russian", "Singer", "Surfer")  # fmt: skip
"""The English packs (Default_es, Default_pl, Default_ru and Russian_pl speak other languages)."""
PHRASES = {"hello": "Hello", "hurry": "Hurry", "incoming": "Incoming", "kamikaze": "Kamikaze",
           "take cover": "Takecover", "oops": "Oops", "bye bye": "Byebye", "watch it": "Watchit"}  # fmt: skip
"""Vocabulary word -> the packs' file stem. Phrases every English pack says, most under 1.3 s."""
NEGATIVE_STEMS = ("Amazing", "Boring", "Brilliant", "Coward", "Excellent", "Fire", "Flawless",
                  "Illgetyou", "Justyouwait", "Laugh", "Leavemealone", "Melon", "Missed",
                  "Nutter", "Ohdear", "Reinforcements", "Revenge", "Runaway", "Sameteam",
                  "Solong", "Traitor", "Uh-oh", "Victory", "Whatthe")  # fmt: skip
"""The packs' other phrases: negatives in the real-voice streams (no vocabulary word in them)."""
NOISY_SNR_DB = 10.0
CLIPS_PER_WORD = 300


def build(out: Path, seed: int, epochs: int) -> list[Path]:
    """The synthetic set for ``PHRASES`` and its Pi and RP2040 bundles (reused when present)."""
    from quality import _run  # bench/quality.py: one way to run a trainer step with its log

    from trainer.synth import label_of

    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if not (data / "keywords" / "SYNTH.json").is_file():
        _run([sys.executable, "-m", "trainer", "synth", str(data), "--set", "keywords",
              "--seed", str(seed), "--per-label", str(CLIPS_PER_WORD), "--fillers", "2",
              "--words", ",".join(PHRASES)], out / "synth.log")  # fmt: skip
    bundles = out / "bundles"
    if not all((bundles / t / "manifest.json").is_file() for t in ("pi", "rp2040")):
        labels = ",".join(label_of(w) for w in PHRASES)
        _run([sys.executable, "-m", "trainer", "train", str(data / "keywords"), "--out",
              str(bundles), "--target", "both", "--labels", labels, "--unknown",
              "--unknown-share", "3", "--silence", "--augment-copies", "3", "--epochs",
              str(epochs), "--seed", str(seed), "--no-progress"], out / "train.log")  # fmt: skip
    return [bundles / "pi", bundles / "rp2040"]


def real_clips(out: Path) -> tuple[list[tuple[str, str, Path]], list[Path]]:
    """(label, pack, WAV) of every vocabulary phrase in every pack, and WAVs of the packs' other
    phrases, converted once under ``out``; exact duplicates (a pack reusing another's
    recording) are kept once."""
    from earshot.wavio import write_wav
    from trainer import recordings
    from trainer.synth import label_of

    missing = [p for p in PACKS if not (VOICES / p).is_dir()]
    if missing:
        sys.exit(f"{VOICES}: no voice pack {', '.join(missing)}; run scripts/install-system-deps "
                 "(package hedgewars-data)")  # fmt: skip
    seen: set[str] = set()

    def convert(pack: str, stem: str, folder: str) -> Path | None:
        src = VOICES / pack / f"{stem}.ogg"
        if not src.is_file():
            return None
        audio = recordings.read(src)
        digest = hashlib.sha1(np.round(audio * 32767).astype(np.int16).tobytes()).hexdigest()
        if digest in seen:
            return None
        seen.add(digest)
        dst = out / "real" / folder / f"{pack}_{stem}.wav"
        if not dst.is_file():
            write_wav(dst, np.clip(audio, -1, 1))
        return dst

    events = [(label_of(w), pack, p) for pack in PACKS for w, stem in PHRASES.items()
              if (p := convert(pack, stem, label_of(w))) is not None]  # fmt: skip
    negatives = [p for pack in PACKS for stem in NEGATIVE_STEMS
                 if (p := convert(pack, stem, "_negatives")) is not None]  # fmt: skip
    return events, negatives


def clip_scores(bundle: Path, events: list[tuple[str, str, Path]]) -> dict[str, Any]:
    from earshot.audio import fit_length
    from earshot.bundle import load_bundle
    from earshot.wavio import read_wav
    from trainer import evaluate, heldout

    b = load_bundle(bundle)
    n = int(b.manifest["clip_samples"])
    x = np.stack([fit_length(read_wav(p), n, "loudest") for _, _, p in events])
    y = np.array([b.labels.index(lab) for lab, _, _ in events])
    words = tuple(PHRASES)
    out: dict[str, Any] = {"n": len(events),
                           "synthetic_test": b.manifest["metrics"]["test_accuracy"]}  # fmt: skip
    for name, clips in (("clean", x), ("noisy_10db", heldout.noisy(x, NOISY_SNR_DB, "test",
                                                                     words=words))):  # fmt: skip
        pred = np.argmax(evaluate.score_clips(b, clips, False), axis=1)
        out[name] = round(float(np.mean(pred == y)), 4)
        if name == "clean":
            out["per_pack"] = {pack: round(float(np.mean([pred[i] == y[i] for i, e in
                                                           enumerate(events) if e[1] == pack])), 3)
                               for pack in PACKS}  # fmt: skip
            out["called"] = {b.labels[k]: int(np.sum(pred == k)) for k in range(len(b.labels))}
    return out


def real_streams(out: Path, events: list, negatives: list[Path], seed: int) -> Path:
    from trainer import heldout
    from trainer.streams import StreamSpec, build_stream

    folder = out / "streams"
    if (folder / "negatives.events.json").is_file():
        return folder
    beds = heldout.bed_files("test", words=list(PHRASES))
    pairs = [(lab, p) for lab, _, p in events]
    for k in range(2):  # every clip about three times per stream at 8 a minute, 10 minutes
        spec = StreamSpec(duration_s=600.0, events=80, snr_db=(5.0, 20.0), background_dbfs=-42.0,
                          negative_share=0.3, negatives_per_minute=8.0,
                          negative_snr_db=(5.0, 20.0), seed=seed * 100 + k)  # fmt: skip
        build_stream(folder, f"events-{k}", pairs, beds, negatives, spec, progress=False)
    spec = StreamSpec(duration_s=1800.0, events=0, background_dbfs=-32.0, negative_share=0.9,
                      negative_stretches=1, negatives_per_minute=6.0,
                      negative_snr_db=(0.0, 15.0), seed=seed * 100 + 99)  # fmt: skip
    build_stream(folder, "negatives", [], beds, negatives, spec, progress=False)
    return folder


def stream_scores(bundle: Path, streams: Path) -> dict[str, Any]:
    from trainer.stream_eval import stream_metrics

    o = stream_metrics(bundle, [streams], progress=False)["overall"]
    return {"recall": o["recall"], "fa_per_hour": o["fa_per_hour"], "events": o["events"],
            "false_alarms": o["false_alarms"], "latency_p95_ms": o.get("latency_ms_p95")}  # fmt: skip


COMMAND_CLIPS = (("left", "/usr/share/sounds/alsa", "*_Left.wav"),
                 ("right", "/usr/share/sounds/alsa", "*_Right.wav"),
                 ("left", "/usr/share/sounds/freedesktop/stereo", "audio-channel-*-left.oga"),
                 ("right", "/usr/share/sounds/freedesktop/stereo", "audio-channel-*-right.oga"),
                 ("yes", str(VOICES), "*/Yessir.ogg"), ("no", str(VOICES), "*/Nooo.ogg"),
                 ("down", str(VOICES), "*/Enemydown.ogg"))  # fmt: skip
"""(command, folder, glob) of the packages' real recordings that say a default command."""


def command_scores(bundle: Path) -> dict[str, Any]:
    from daemon.inference import Classifier
    from earshot.audio import fit_length
    from earshot.bundle import load_bundle
    from trainer import recordings

    b = load_bundle(bundle)
    clf, n = Classifier(b), int(b.manifest["clip_samples"])
    out: dict[str, dict[str, int]] = {}
    for word, folder, pattern in COMMAND_CLIPS:
        for path in sorted(Path(folder).glob(pattern)):
            if "/voices/" in str(path) and path.parent.name not in PACKS:
                continue
            a = recordings.read(path)
            wins = [fit_length(a, n, "loudest")] + [
                fit_length(a[s : s + n], n, "center") for s in range(0, max(1, a.size - n + 1), n // 10)]  # fmt: skip
            sc = np.array([clf.scores(w) for w in wins])
            row = out.setdefault(word, {"clips": 0, "recognised": 0, "heard": 0})
            row["clips"] += 1
            row["recognised"] += int(b.labels[int(np.argmax(sc[0]))] == word)
            row["heard"] += int(bool((sc[:, b.labels.index(word)] > 0.5).any()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python bench/real_voices.py --out build/bench-real-voices")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench-real-voices")
    ap.add_argument("--bundles", type=Path, nargs="*", help="measure these instead of training")
    ap.add_argument("--commands", type=Path, nargs="*", default=[],
                    help="bundles of the eight default commands to score on real voices too")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=25)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    bundles = args.bundles or build(args.out, args.seed, args.epochs)
    events, negatives = real_clips(args.out)
    streams = real_streams(args.out, events, negatives, args.seed)
    rows = {}
    for b in bundles:
        target = json.loads((b / "manifest.json").read_text())["target"]
        rows[target] = {"bundle": str(b), **clip_scores(b, events), **stream_scores(b, streams)}
    print(f"{len(events)} real clips of {len(PHRASES)} phrases by {len(PACKS)} voices; "
          f"{len(negatives)} other phrases as negatives")
    head = (f"{'target':<7} {'synthetic test':>14} {'real clean':>10} {'real 10dB':>9} "
            f"{'stream recall':>13} {'FA/h':>6}")  # fmt: skip
    print(head + "\n" + "-" * len(head))
    for t, r in rows.items():
        print(f"{t:<7} {r['synthetic_test']:>14.3f} {r['clean']:>10.3f} {r['noisy_10db']:>9.3f} "
              f"{r['recall']:>13.3f} {r['fa_per_hour']:>6.1f}")  # fmt: skip
    commands = {str(b): command_scores(b) for b in args.commands}
    for b, res in commands.items():
        total = {k: sum(r[k] for r in res.values()) for k in ("clips", "recognised", "heard")}
        print(f"{b}: the default commands said by real voices: {total['recognised']} of "
              f"{total['clips']} recognised, {total['heard']} heard in some window ("
              + ", ".join(f"{w} {r['recognised']}/{r['clips']}" for w, r in res.items()) + ")")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "phrases": list(PHRASES), "packs": list(PACKS), "clips": len(events),
        "negatives": len(negatives), "bundles": rows, "commands": commands, "seed": args.seed,
        "seconds": round(time.perf_counter() - t0, 1), "machine": platform.machine(),
    }, indent=1) + "\n")  # fmt: skip
    print(f"saved {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
