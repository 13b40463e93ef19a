"""``earshot-train train``: labelled audio in, Pi and/or RP2040 bundles out.

Steps: load the data set (``trainer.datasets``), optionally augment the training split
(``trainer.augment``), compute features once per split through ``earshot.frontends`` (the code
path the daemon and, for q15, the firmware share), fit the architecture, export the bundle
(``trainer.export``), then score the validation and test splits with the exported TFLite model
through ``daemon.inference.Classifier`` (int8 input via ``q15_to_int8`` for RP2040 bundles) to
pick thresholds and record test metrics in the manifest.

Defaults (``DEFAULT_FRONTEND``, ``models.DEFAULT_ARCH``): ``pi`` = ``logmel`` + ``kws_dscnn``;
``rp2040`` = ``q15log`` + ``stream_cnn``. ``stft`` + ``simple_audio`` is the seed-compatible Pi option.

Transfer learning (``--transfer-from BUNDLE --positive LABEL``), as in the Arm RP2040 tutorial:
the base bundle's ``model.keras`` loses its head for a one-unit sigmoid (labels
``["background", LABEL]``; every other folder counts as background); the head is trained with the
base frozen and an exponentially decaying rate (x0.8 per epoch), then everything is fine-tuned
at a quarter of the initial rate with twice the patience. Before either phase the input stage is
re-fitted to the new data (``models.readapt_input``: the MCU input clip and the normaliser's
mean/variance), because a base trained on speech normalises with speech statistics. Early
stopping (on validation loss, best weights restored) ends every phase. The target, front end and
architecture come from the base bundle.

Why these choices (measurements on the synthetic sets): ``docs/training.md``.
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earshot import frontends
from earshot.bundle import load_bundle
from earshot.options import MISSING, Option, add_flag, check, opt, options
from earshot.quant import MAG_MAX

from . import models
from .datasets import SEEN, SEEN_PERCENT

_LOGGER = logging.getLogger(__name__)

DEFAULT_FRONTEND = {"pi": "logmel", "rp2040": "q15log"}
"""Front end per target when ``--frontend`` is not given."""
VAL_PERCENT = 10.0
"""Share of the data set in the validation split (percent)."""
TEST_PERCENT = 10.0
"""Share of the data set in the test split (percent)."""
CLIP_PERCENTILE = 99.9
"""MCU inputs are clipped at this percentile of the training features (q15: at least 255)."""
FINETUNE_RATE = 0.25
"""Transfer learning's fine-tuning rate, as a fraction of ``--learning-rate``."""
FINETUNE_PATIENCE = 2
"""Transfer learning's fine-tuning phase waits this many times ``--patience`` epochs."""
STREAM_SHIFT = {"shift_prob": 0.8, "shift_max_s": 0.1, "shift_late_s": 0.5, "shift_fit": True}
"""Time shift for multi-class training (``AugmentConfig`` fields): mostly later, never cutting
the sound, so a word is also learnt ending at the window's right edge, where a streaming sliding
window first holds the whole word (why: ``docs/training.md``). Transfer learning keeps
``AugmentConfig``'s default (+-0.1 s), with which the alarm detectors were tuned."""
STREAM_CUT_PROB = 0.2
"""With an ``_unknown_`` class: share of the keywords' augmented copies that are fragments cut by
the window's edge, labelled ``_unknown_`` (``augment.CutConfig``), so the daemon does not name a
word from the part a sliding window holds on its way in or out."""


@dataclass(frozen=True)
class TrainSettings:
    """Everything one ``train`` run needs; each field is one ``earshot-train train`` flag."""

    data: Path = opt(MISSING, "data set folder: a folder per label, Speech Commands or ESC-50 "
                     "layout", positional=True, metavar="DATA")  # fmt: skip
    out: Path = opt(MISSING, "output folder (bundles in OUT/<target>)", metavar="OUT")
    target: str = opt("both", "what to build", choices=("pi", "rp2040", "both"),
                 metavar="TARGET")
    arch: str | None = opt(
        None, "architecture (--target pi or rp2040 only)", choices=tuple(sorted(models.ARCHITECTURES)),
        shown=f"{models.DEFAULT_ARCH['pi']} for pi, {models.DEFAULT_ARCH['rp2040']} for rp2040",
        metavar="ARCH",
    )
    frontend: str | None = opt(
        None, "feature front end", choices=tuple(frontends.names()),
        shown=f"{DEFAULT_FRONTEND['pi']} for pi, {DEFAULT_FRONTEND['rp2040']} for rp2040",
        metavar="FRONTEND",
    )
    labels: tuple[str, ...] | None = opt(
        None, "comma-separated label subset", shown="every folder", metavar="LABELS"
    )
    group_pattern: str | None = opt(
        None, "regular expression whose first group (or match) in a file name is its "
        "speaker/session, so no speaker is in two splits", metavar="REGEX",
        shown="the name before _nohash_, else before its last _",
    )
    seen_test: float | None = opt(
        None, "percent of each training speaker's files held back and scored as the "
        "same-speaker figure, beside the test split's unseen speakers", lo=0, hi=50,
        metavar="PCT", shown=f"{SEEN_PERCENT:g} where speakers are split by hash (folders, "
        "Speech Commands without lists), else 0",
    )
    unknown: bool = opt(False, "add an _unknown_ class from the other labels")
    silence: bool = opt(False, "add a _silence_ class from the background noise")
    unknown_share: float = opt(1.0, "with --unknown: keep up to X times the mean known class's "
                               "clip count of _unknown_ clips per split", above=0, metavar="X")  # fmt: skip
    epochs: int = opt(30, "max epochs per phase (early stopping may end sooner)", lo=1)
    batch_size: int = opt(32, "clips per gradient step", lo=1)
    seed: int = opt(0, "seed for python, numpy and TensorFlow, the split and the augmentation")
    augment_copies: int = opt(1, "augmented copies per training clip (0 = none)", lo=0, metavar="N")
    spec_augment: float = opt(0.5, "share of the augmented copies whose features get SpecAugment "
                              "time and frequency masks (0 = none)", lo=0, hi=1, metavar="P")  # fmt: skip
    hard_negatives: float = opt(0.0, "minutes of training-split real recordings (music, speech, "
                                "effects) to mine for windows the model fires on; they join "
                                "_unknown_ (a --transfer-from detector: its background) and "
                                "training goes on (needs --unknown or --transfer-from; 0 = off)",
                                lo=0, metavar="MIN")  # fmt: skip
    learning_rate: float = opt(2e-3, "initial Adam learning rate", above=0, metavar="LR")
    patience: int = opt(4, "early-stopping patience (epochs without a better validation loss)",
                        lo=0)  # fmt: skip
    transfer_from: Path | None = opt(None, "base bundle (with model.keras) for a "
                                     "transfer-learned binary detector", metavar="BUNDLE",
                                     shown="none")  # fmt: skip
    positive: str | None = opt(None, "positive label(s) for --transfer-from: one gives a sigmoid "
                               "detector [background, LABEL]; several (comma-separated) a softmax "
                               "[_background_, LABEL, ...]", metavar="LABEL[,LABEL]",
                               shown="none")  # fmt: skip
    progress: bool = opt(True, "show progress bars")

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets to train, in order."""
        return ("pi", "rp2040") if self.target == "both" else (self.target,)


OPTIONS = options(TrainSettings)
"""``TrainSettings``' fields as flags (``earshot.options``)."""

DESCRIPTION = """\
Labelled audio in; a Pi bundle (float TFLite) and/or an RP2040 bundle (int8, for
`earshot-train compile`) out, with thresholds and test metrics in each manifest.
With --transfer-from and --positive: a binary detector fine-tuned from a bundle."""

EPILOG = """\
examples:
  # keyword recognisers for the Pi and the RP2040, with _unknown_ and _silence_ classes
  earshot-train train out/data/keywords --out out/bundles --labels yes,no,up,down --unknown --silence

  # a smoke/CO detector transfer-learned from the RP2040 keyword bundle; the windows of 90
  # minutes of real music and speech it fires on become background (as make demo trains it)
  earshot-train train out/data/alarm --out out/alarm --transfer-from out/bundles/rp2040 \\
      --positive smoke_alarm,co_alarm --hard-negatives 90

Why these defaults, and what they measured: docs/training.md."""


def flag_of(o: Option) -> str:
    """``--batch-size`` for ``batch_size``; the positional's metavar for ``data``."""
    return str(o.rules["metavar"]) if o.rules.get("positional") else "--" + o.name.replace("_", "-")


def _shown(o: Option) -> str:
    if "shown" in o.rules:
        return str(o.rules["shown"])
    if o.kind == "bool":
        return "on" if o.default else "off"
    return str(o.default)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train Pi (float) and/or RP2040 (int8) bundles from labelled audio",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for o in OPTIONS.values():
        if o.rules.get("positional"):
            p.add_argument(o.name, type=Path, metavar=flag_of(o), help=o.help)
        else:
            add_flag(p, o, flag_of(o), o.name, _shown(o))
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """Validate the command line into settings; errors name the flag."""
    values = {}
    for o in OPTIONS.values():
        given = getattr(args, o.name, None)
        values[o.name] = check(o, o.default if given is None else given, flag_of(o))
    values["labels"] = values["labels"] or None  # --labels "" = every folder
    s = TrainSettings(**values)
    if (s.transfer_from is None) != (s.positive is None):
        raise ValueError("--transfer-from and --positive go together")
    if not s.data.is_dir():
        raise FileNotFoundError(f"data set folder {s.data} does not exist")
    if s.arch and s.target == "both":
        raise ValueError("--arch needs --target pi or --target rp2040")
    if s.frontend and "rp2040" in s.targets and s.frontend not in frontends.MCU_FRONTENDS:
        raise ValueError(f"--frontend {s.frontend}: the rp2040 firmware computes "
                         f"{' or '.join(frontends.MCU_FRONTENDS)} features only (--target pi "
                         "takes any front end)")  # fmt: skip
    return s


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    results = train_transfer(settings) if settings.transfer_from else train(settings)
    print(summary_table(results))
    return 0


def seed_everything(seed: int) -> None:
    """python, numpy and TensorFlow seeds, and deterministic TF ops."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compute_features(
    fe: frontends.FrontEnd, clips: np.ndarray, desc: str, progress: bool = True
) -> np.ndarray:
    """Clips ``(n, samples)`` -> features ``(n, frames, bins, 1)`` float32, with a progress bar."""
    from tqdm import tqdm

    out = np.empty((len(clips), *fe.shape, 1), np.float32)
    for i, clip in enumerate(
        tqdm(clips, desc=desc, unit="clip", disable=not progress, leave=False)
    ):
        out[i, :, :, 0] = fe.features(clip)
    return out


def choose_clip_max(fe: frontends.FrontEnd, feats: np.ndarray) -> float:
    """The MCU input clip (see ``trainer.models``): a high percentile of the training features."""
    if isinstance(fe, frontends.Q15LogFrontEnd):
        return float(np.log1p(MAG_MAX))  # the whole range: 256 steps of 0.35 dB, no clipping
    c = float(np.percentile(feats, CLIP_PERCENTILE))
    if isinstance(fe, frontends.Q15FrontEnd):
        c = float(max(255, int(np.ceil(c))))
    return c


def seen_percent(settings: TrainSettings) -> float:
    """``--seen-test``, or its default for ``settings.data``'s layout
    (``datasets.default_seen_percent``)."""
    from .datasets import default_seen_percent

    if settings.seen_test is not None:
        return settings.seen_test
    return default_seen_percent(Path(settings.data))


def _load(settings: TrainSettings, labels: tuple[str, ...] | None):  # type: ignore[no-untyped-def]
    from .datasets import load_dataset, load_split

    ds = load_dataset(
        settings.data,
        labels=list(labels) if labels else None,
        unknown=settings.unknown,
        unknown_share=settings.unknown_share,
        silence=settings.silence,
        group_pattern=settings.group_pattern,
        seed=settings.seed,
        val_percent=VAL_PERCENT,
        test_percent=TEST_PERCENT,
        progress=settings.progress,
        seen_percent=seen_percent(settings),
    )
    splits = {s: load_split(ds, s, progress=settings.progress) for s in ("train", "val", "test")}
    for s, (x, _) in splits.items():
        if len(x) == 0:
            raise ValueError(f"data set {settings.data}: the {s} split is empty; add more clips")
    if ds.split(SEEN):
        splits[SEEN] = load_split(ds, SEEN, progress=settings.progress)
    return ds, splits


def _augment(
    settings: TrainSettings, ds: Any, x: np.ndarray, y: np.ndarray, shift: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    if settings.augment_copies == 0:
        return x, y
    from .augment import AugmentConfig, CutConfig, augment_batch
    from .datasets import UNKNOWN, load_background

    background = load_background(ds, "train", progress=settings.progress)
    labels = list(ds.labels)
    cut = None
    if shift and UNKNOWN in labels:
        words = frozenset(i for i, k in enumerate(labels) if not k.startswith("_"))
        cut = CutConfig(to=labels.index(UNKNOWN), labels=words, prob=STREAM_CUT_PROB)
    xa, ya = augment_batch(
        x, y, AugmentConfig(**shift), background, settings.seed, copies=settings.augment_copies,
        progress=settings.progress, cut=cut,
    )
    if len(xa) == len(x) * (settings.augment_copies + 1):
        return xa, ya  # originals already included
    return np.concatenate([x, xa]), np.concatenate([y, ya])


def training_summary(
    settings: TrainSettings, ds: Any, splits: dict, labels: list[str]
) -> dict[str, Any]:
    """What the manifest records so ``evaluate`` can re-derive the test split."""
    return {
        "root": str(Path(settings.data).resolve()),
        "layout": ds.layout,
        "labels": labels,
        "label_subset": list(settings.labels) if settings.labels else None,
        "dataset_labels": list(ds.labels),
        "unknown": settings.unknown,
        "unknown_share": settings.unknown_share,
        "silence": settings.silence,
        "group_pattern": settings.group_pattern,
        "seed": settings.seed,
        "val_percent": VAL_PERCENT,
        "test_percent": TEST_PERCENT,
        "seen_percent": ds.seen_percent,
        "counts": {s: int(len(v[0])) for s, v in splits.items()},
        "augment_copies": settings.augment_copies,
        "hard_negatives_minutes": settings.hard_negatives,
        "epochs": settings.epochs,
        "report": ds.report.summary(),
    }


def _fit(
    model: Any,
    train: tuple,
    val: tuple,
    settings: TrainSettings,
    lr: Any,
    epochs: int,
    patience: int | None = None,
) -> Any:
    import keras

    binary = int(model.output_shape[-1]) == 1
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=settings.patience if patience is None else patience,
        restore_best_weights=True,
    )
    return model.fit(
        train[0],
        train[1],
        validation_data=val,
        epochs=epochs,
        batch_size=settings.batch_size,
        callbacks=[stop],
        verbose=2,
        shuffle=True,
    )


SPEC_MASKS = 2
"""SpecAugment: time masks and frequency masks per masked copy (each up to ``SPEC_MASK_SHARE``)."""
SPEC_MASK_SHARE = 0.12
"""Largest share of the frames (or bins) one mask covers."""


def spec_augment(feats: np.ndarray, prob: float, seed: int) -> np.ndarray:
    """SpecAugment (Park et al. 2019) on ``feats`` (n, frames, bins, 1), in place: with ``prob``
    a feature map gets ``SPEC_MASKS`` time and as many frequency masks, set to its minimum."""
    rng = np.random.default_rng((seed, 13))
    n, frames, bins = feats.shape[:3]
    for i in range(n):
        if rng.random() >= prob:
            continue
        floor = feats[i].min()
        for axis, size in ((0, frames), (1, bins)):
            for _ in range(SPEC_MASKS):
                w = int(rng.integers(0, max(1, int(SPEC_MASK_SHARE * size)) + 1))
                a = int(rng.integers(0, size - w + 1))
                if axis == 0:
                    feats[i, a : a + w] = floor
                else:
                    feats[i, :, a : a + w] = floor
    return feats


def _target_features(settings, fe, ds, splits, shift=None):  # type: ignore[no-untyped-def]
    xtr, ytr = _augment(settings, ds, *splits["train"], shift or {})
    ftr = compute_features(fe, xtr, f"{fe.name} train", settings.progress)
    n0 = len(splits["train"][0])  # the originals come first; only augmented copies are masked
    spec_augment(ftr[n0:], settings.spec_augment, settings.seed)
    feats = {"train": (ftr, ytr)}
    for s in ("val", "test"):
        feats[s] = (
            compute_features(fe, splits[s][0], f"{fe.name} {s}", settings.progress),
            splits[s][1],
        )
    return feats


UNKNOWN_LABEL = "_unknown_"
HARD_NEGATIVE_HOP_S = 0.25
"""Mining windows: 1 s every 250 ms of the mined recordings."""
HARD_NEGATIVE_SCORE = 0.3
"""A window is a hard negative when a label that fires scores at least this."""
HARD_NEGATIVE_MAX_SHARE = 2.0
"""At most this many hard negatives per training clip of the mean class (the highest scoring
first). An alarm detector mining 90 minutes finds 800-960 windows that fire; a cap of half a
class (320) left the Pi detector at 12.75 false alarms/h as trained, all of them kept 9.0/h
(docs/training.md "Smoke and CO alarms")."""


def _mining_audio(minutes: float, seed: int, words: Sequence[str] = ()) -> np.ndarray:
    """``minutes`` of training-split real recordings, in 20 s excerpts, one array; no file that
    may say one of ``words`` (the labels: a recording saying one is no negative)."""
    from . import recordings

    recs = recordings.require(["music", "speech", "effects"], "train", words)
    rng = np.random.default_rng((seed, 31))
    parts = []
    for _, a in recordings.excerpts(recs, 20.0, minutes * 60.0, rng):
        level = 10.0 ** (rng.uniform(-40.0, -10.0) / 20.0)
        parts.append(a * np.float32(level / max(float(np.sqrt(np.mean(a**2))), 1e-6)))
    return np.clip(np.concatenate(parts), -1, 1).astype(np.float32)


def _mine_hard_negatives(model, fe, feats, labels, settings, negative=UNKNOWN_LABEL, rate=None):  # type: ignore[no-untyped-def]
    """Run the model over real recordings it never trained on as such, take the windows it
    fires on as ``negative`` training clips (``_unknown_``; a detector's background), and train
    on at ``rate`` (default a quarter of ``--learning-rate``) (openWakeWord's and Speech
    Commands-style negative mining). Returns the new features, the extra history (None when
    nothing fired) and what was mined (windows scanned, firing, kept), for the manifest."""
    from .synth import word_of

    fires = [i for i, x in enumerate(labels) if not x.startswith("_") and x != negative]
    words = [word_of(labels[i]) for i in fires]
    audio = _mining_audio(settings.hard_negatives, settings.seed, words)
    hop, n = int(HARD_NEGATIVE_HOP_S * 16000), 16000
    clips = np.stack([audio[a : a + n] for a in range(0, audio.size - n + 1, hop)])
    f = compute_features(fe, clips, f"{fe.name} mining", settings.progress)
    scores = model.predict(f, verbose=0, batch_size=256)
    # a sigmoid detector's one output is its positive's score
    top = scores[:, 0] if scores.shape[-1] == 1 else scores[:, fires].max(axis=1)
    firing = int((top >= HARD_NEGATIVE_SCORE).sum())
    cap = int(HARD_NEGATIVE_MAX_SHARE * len(feats["train"][0]) / max(1, len(labels)))
    hard = np.argsort(-top)[: min(cap, firing)]
    _LOGGER.info("hard negatives: %d of %d windows (%.1f min) fire (score >= %.2f); %d kept",
                 firing, len(top), audio.size / 16000 / 60, HARD_NEGATIVE_SCORE,
                 len(hard))  # fmt: skip
    mined = {"minutes": settings.hard_negatives, "windows": int(len(top)), "firing": firing,
             "kept": int(len(hard))}
    if not len(hard):
        return feats, None, mined
    x, y = feats["train"]
    neg = labels.index(negative)
    feats = {**feats, "train": (np.concatenate([x, f[hard]]),
                                np.concatenate([y, np.full(len(hard), neg, y.dtype)]))}  # fmt: skip
    more = _fit(model, feats["train"], feats["val"], settings,
                settings.learning_rate / 4 if rate is None else rate,
                max(2, settings.epochs // 2))  # fmt: skip
    return feats, more, mined


def train(settings: TrainSettings) -> list[dict[str, Any]]:
    """Train every target in ``settings``; returns one result row per bundle."""
    seed_everything(settings.seed)
    ds, splits = _load(settings, settings.labels)
    labels = list(ds.labels)
    if settings.hard_negatives > 0 and UNKNOWN_LABEL not in labels:
        raise ValueError(
            f"--hard-negatives needs a class for the mined windows: {settings.data} has no "
            f"{UNKNOWN_LABEL} (add --unknown), or train a detector with --transfer-from"
        )
    summary = training_summary(settings, ds, splits, labels)
    _LOGGER.info("data: %s", {s: len(v[0]) for s, v in splits.items()})
    results = []
    for target in settings.targets:
        seed_everything(settings.seed)
        fe = frontends.create(settings.frontend or DEFAULT_FRONTEND[target])
        arch = settings.arch or models.DEFAULT_ARCH[target]
        if target == "rp2040" and arch not in models.MCU_ARCHITECTURES:
            raise ValueError(
                f"--arch {arch} cannot run on the rp2040; choose one of "
                f"{', '.join(models.MCU_ARCHITECTURES)}"
            )
        feats = _target_features(settings, fe, ds, splits, STREAM_SHIFT)
        clip_max = choose_clip_max(fe, feats["train"][0]) if target == "rp2040" else None
        model = models.build(arch, (*fe.shape, 1), len(labels), feats["train"][0], clip_max)
        _LOGGER.info(
            "%s: %s, %d parameters, %d MACs",
            target,
            arch,
            model.count_params(),
            models.count_macs(model),
        )
        hist = _fit(
            model, feats["train"], feats["val"], settings, settings.learning_rate, settings.epochs
        )
        mined = {}
        if settings.hard_negatives > 0:
            feats, more, mined["hard_negatives"] = _mine_hard_negatives(
                model, fe, feats, labels, settings
            )
            if more is not None:
                hist.history["loss"] += more.history["loss"]
        results.append(
            _finish(model, settings, target, arch, fe, labels, feats, splits,
                    {**summary, **mined}, hist)  # fmt: skip
        )
    return results


def _finish(model, settings, target, arch, fe, labels, feats, splits, summary, hist):  # type: ignore[no-untyped-def]
    """Export, then score val/test with the exported model and record thresholds and metrics."""
    from . import evaluate, export

    out = export.export_bundle(
        model,
        settings.out / target,
        target=target,
        frontend=fe,
        labels=labels,
        architecture=arch,
        thresholds={k: 0.5 for k in labels},
        representative=_representative(feats["train"][0], settings.seed),
        training={**summary, "epochs_run": len(hist.history["loss"])},
        name=bundle_name(settings.data, target, fe.name),
    )
    b = load_bundle(out)
    val_scores = evaluate.score_clips(b, splits["val"][0], progress=settings.progress)
    thresholds = export.choose_thresholds(val_scores, splits["val"][1], labels)
    metrics = evaluate.bundle_metrics(
        b, splits["test"][0], splits["test"][1], progress=settings.progress
    )
    metrics["val_accuracy_keras"] = round(float(max(hist.history.get("val_accuracy", [0.0]))), 4)
    if SEEN in splits:  # the same speakers the model trained on, clips it did not
        seen = evaluate.model_report(
            evaluate.score_clips(b, splits[SEEN][0], settings.progress), splits[SEEN][1], labels
        )
        metrics["seen_speaker_accuracy"], metrics["n_seen"] = seen["accuracy"], seen["n"]
    export.update_manifest(out, thresholds=thresholds, metrics=metrics)
    row = {
        "target": target,
        "arch": arch,
        "frontend": fe.name,
        "params": int(model.count_params()),
        "epochs": len(hist.history["loss"]),
        "bundle": str(out),
        **metrics,
    }
    _LOGGER.info("%s bundle: %s", target, row)
    return row


def bundle_name(data: Path, target: str, frontend: str) -> str:
    """``<data folder>-<target>``, plus the front end when it is not the target's default."""
    extra = "" if frontend == DEFAULT_FRONTEND[target] else f"-{frontend}"
    return f"{Path(data).name}-{target}{extra}"


def _representative(feats: np.ndarray, seed: int) -> np.ndarray:
    from .export import REPRESENTATIVE_MAX

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(feats))[:REPRESENTATIVE_MAX]
    return feats[np.sort(idx)]


def transfer_labels(positives: list[str]) -> list[str]:
    """A transfer head's labels: ``[background, P]`` for one positive (a sigmoid), else
    ``[_background_, P1, P2, ...]`` (a softmax; ``_`` so the detector never fires on it)."""
    return ["background", positives[0]] if len(positives) == 1 else ["_background_", *positives]


def transfer_targets(y: np.ndarray, ds_labels: list[str], positives: list[str]) -> np.ndarray:
    """Data set label indices -> a transfer head's targets (0 = background, i + 1 = positive i)."""
    out = np.zeros(len(y), np.int64)
    for i, p in enumerate(positives):
        out[np.asarray(y) == ds_labels.index(p)] = i + 1
    return out


def train_transfer(settings: TrainSettings) -> list[dict[str, Any]]:
    """A detector for ``settings.positive`` from the base bundle (module docstring)."""
    import keras

    if settings.transfer_from is None or settings.positive is None:
        raise ValueError("--transfer-from and --positive go together")
    seed_everything(settings.seed)
    base = load_bundle(settings.transfer_from)
    keras_path = base.path / "model.keras"
    if not keras_path.is_file():
        raise FileNotFoundError(f"bundle {base.path}: no model.keras to transfer from")
    target, arch, fe = base.manifest["target"], base.manifest["architecture"], base.frontend()
    ds, splits = _load(settings, settings.labels)
    positives = [x.strip() for x in settings.positive.split(",") if x.strip()]
    bad = [x for x in positives if x not in ds.labels]
    if bad or not positives:
        raise ValueError(
            f"--positive {settings.positive!r}: {', '.join(bad) or 'no label'} is not a label of "
            f"{settings.data} (labels: {', '.join(ds.labels)})"
        )
    splits = {s: (x, transfer_targets(y, list(ds.labels), positives))
              for s, (x, y) in splits.items()}  # fmt: skip
    labels = transfer_labels(positives)
    summary = {
        **training_summary(settings, ds, splits, labels),
        "positive": settings.positive,
        "transfer_from": {"path": str(base.path.resolve()), "model_sha256": base.sha256},
    }
    feats = _target_features(settings, fe, ds, splits)
    model, trunk = models.transfer_head(models.load_model(keras_path), len(positives))
    has_clip = models.clip_layer(model) is not None
    clip_max = choose_clip_max(fe, feats["train"][0]) if has_clip else None
    models.readapt_input(model, feats["train"][0], clip_max)
    steps = max(1, len(feats["train"][0]) // settings.batch_size)
    trunk.trainable = False
    decay = keras.optimizers.schedules.ExponentialDecay(settings.learning_rate, steps, 0.8)
    hist = _fit(model, feats["train"], feats["val"], settings, decay, settings.epochs)
    trunk.trainable = True
    tune = _fit(
        model,
        feats["train"],
        feats["val"],
        settings,
        settings.learning_rate * FINETUNE_RATE,
        settings.epochs,
        patience=settings.patience * FINETUNE_PATIENCE,
    )
    hist.history["loss"] += tune.history["loss"]
    hist.history["val_accuracy"] = hist.history.get("val_accuracy", []) + tune.history.get(
        "val_accuracy", []
    )
    if settings.hard_negatives > 0:
        feats, more, summary["hard_negatives"] = _mine_hard_negatives(
            model, fe, feats, labels, settings, labels[0], settings.learning_rate * FINETUNE_RATE
        )
        if more is not None:
            hist.history["loss"] += more.history["loss"]
    return [_finish(model, settings, target, arch, fe, labels, feats, splits, summary, hist)]


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The end-of-run table: one line per bundle."""
    seen = any("seen_speaker_accuracy" in r for r in rows)
    head = (
        f"{'target':<7} {'arch':<13} {'frontend':<8} {'params':>8} {'epochs':>6} "
        f"{'test float':>10} {'test model':>10}" + (f" {'seen spk':>8}" if seen else "")
        + "  bundle"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        same = r.get("seen_speaker_accuracy")
        cell = "" if not seen else f" {'-':>8}" if same is None else f" {same:>8.3f}"
        lines.append(
            f"{r['target']:<7} {r['arch']:<13} {r['frontend']:<8} {r['params']:>8} {r['epochs']:>6} "
            f"{r['test_accuracy_float']:>10.3f} {r['test_accuracy']:>10.3f}{cell}  {r['bundle']}"
        )
    if seen:
        lines.append("test: speakers training never heard; seen spk: held-back clips of the "
                     "training speakers (--seen-test). The test figure is what a new voice gets.")
    return "\n".join(lines)
