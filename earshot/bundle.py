"""Model bundles: a folder with the model file(s) and ``manifest.json``.

The manifest is the contract between the trainer, the daemon and the firmware (``docs/architecture.md``):

    {
      "format_version": 1,
      "name": "keywords-pi",              # human name, shown on the OLED idle screen
      "target": "pi" | "rp2040",
      "model_file": "model.tflite",
      "model_sha256": "<hex>",
      "architecture": "simple_audio",
      "labels": ["yes", "no", ...],       # in model output order
      "sample_rate": 16000,
      "clip_samples": 16000,
      "frontend": {"name": "stft", "params": {...}},
      "input":  {"shape": [1, 124, 129, 1], "dtype": "float32",
                 "quantization": {"scale": 0.0, "zero_point": 0}},
      "output": {"shape": [1, 8], "dtype": "float32", "activation": "softmax",
                 "quantization": {"scale": 0.0, "zero_point": 0}},
      "thresholds": {"yes": 0.7, ...},
      "training": {... data summary ...},
      "metrics": {... test metrics ...},
      "extra_files": {"model_data.h": "<sha256>"}       # optional
    }

``load_bundle`` refuses a bundle whose hash, shape or front end does not match, and says which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import frontends

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_KEYS = (
    "format_version",
    "target",
    "model_file",
    "model_sha256",
    "labels",
    "sample_rate",
    "clip_samples",
    "frontend",
    "input",
    "output",
    "thresholds",
)


class BundleError(ValueError):
    """A model bundle is unusable; the message names the bundle and what is wrong."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A validated bundle on disk."""

    path: Path
    """The bundle folder."""
    manifest: dict[str, Any]
    """The parsed manifest.json."""

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest["model_file"]

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    @property
    def sha256(self) -> str:
        return str(self.manifest["model_sha256"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.manifest["thresholds"].items()}

    def frontend(self) -> frontends.FrontEnd:
        return frontends.from_manifest(self.manifest["frontend"])


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (sorted keys, stable formatting) and return its path."""
    p = Path(folder) / MANIFEST
    p.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return p


def load_bundle(path: str | Path, check_hash: bool = True) -> Bundle:
    """Read and validate a bundle folder (or its manifest.json); BundleError names what is wrong."""
    p = Path(path)
    if p.is_file() and p.name == MANIFEST:
        p = p.parent
    if not p.is_dir():
        raise BundleError(f"bundle {p}: no such folder")
    m = _read_manifest(p)
    _check_types(p, m)
    model = _model_file(p, m["model_file"])
    if check_hash:
        actual = sha256_file(model)
        if actual != m["model_sha256"]:
            raise BundleError(
                f"bundle {p}: model_sha256 mismatch: manifest says {m['model_sha256'][:12]}…, "
                f"{m['model_file']} hashes to {actual[:12]}…"
            )
    _check_frontend(p, m)
    bad_thr = [k for k in m["thresholds"] if k not in m["labels"]]
    if bad_thr:
        raise BundleError(f"bundle {p}: thresholds for unknown label(s) {', '.join(bad_thr)}")
    _check_detector(p, m)
    return Bundle(p, m)


def _check_detector(p: Path, m: dict[str, Any]) -> None:
    """The optional ``detector`` object: an object whose timing rules are in bounds."""
    from .detector import bundle_timing

    if not isinstance(m.get("detector") or {}, dict):
        raise BundleError(f"bundle {p}: {MANIFEST} detector must be an object, got {m['detector']!r}")
    try:
        bundle_timing(m)
    except ValueError as e:
        raise BundleError(f"bundle {p}: {MANIFEST} {e}") from None


def _read_manifest(p: Path) -> dict[str, Any]:
    mpath = p / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"bundle {p}: missing {MANIFEST}")
    try:
        m = json.loads(mpath.read_bytes().decode("utf-8"))
    except OSError as e:
        raise BundleError(f"bundle {p}: cannot read {MANIFEST} ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise BundleError(f"{mpath}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"bundle {p}: {MANIFEST} is not valid JSON ({e})") from None
    if not isinstance(m, dict):
        raise BundleError(f"bundle {p}: {MANIFEST} must hold a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in m]
    if missing:
        raise BundleError(f"bundle {p}: {MANIFEST} lacks key(s) {', '.join(missing)}")
    if m["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"bundle {p}: format_version {m['format_version']} is not supported "
            f"(this earshot reads {FORMAT_VERSION})"
        )
    return m


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_TYPE_RULES: tuple[tuple[str, str, Any], ...] = (
    ("model_file", "a file name (string)", lambda v: isinstance(v, str) and v != ""),
    ("model_sha256", "a hex string", lambda v: isinstance(v, str)),
    ("labels", "a non-empty list of distinct label names (strings)",
     lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(x, str) for x in v)
     and len(set(v)) == len(v)),
    ("sample_rate", "a positive integer (Hz)", lambda v: _is_int(v) and v > 0),
    ("clip_samples", "a positive integer", lambda v: _is_int(v) and v > 0),
    ("frontend", 'an object {"name": ..., "params": {...}}', lambda v: isinstance(v, dict)),
    ("input", 'an object {"shape": [...], "dtype": ...}', lambda v: isinstance(v, dict)),
    ("output", 'an object {"shape": [...], "dtype": ...}', lambda v: isinstance(v, dict)),
    ("thresholds", "an object {label: number from 0 to 1}",
     lambda v: isinstance(v, dict) and all(_is_number(x) and 0 <= x <= 1 for x in v.values())),
)


def _check_types(p: Path, m: dict[str, Any]) -> None:
    """Every required field has the type the daemon and the firmware expect."""
    for key, what, ok in _TYPE_RULES:
        if not ok(m[key]):
            raise BundleError(f"bundle {p}: {MANIFEST} {key} must be {what}, got {m[key]!r}")
    for part in ("input", "output"):
        shape = m[part].get("shape", [])
        if not isinstance(shape, list) or not all(_is_int(d) and d > 0 for d in shape):
            raise BundleError(
                f"bundle {p}: {MANIFEST} {part}.shape must be a list of positive integers, "
                f"got {shape!r}"
            )
        if not isinstance(m[part].get("dtype", ""), str):
            raise BundleError(f"bundle {p}: {MANIFEST} {part}.dtype must be a string")


def _model_file(p: Path, name: str) -> Path:
    """The model file, which must be a file inside the bundle folder."""
    model = (p / name).resolve()
    if Path(name).is_absolute() or not model.is_relative_to(p.resolve()):
        raise BundleError(
            f"bundle {p}: {MANIFEST} model_file {name!r} points outside the bundle folder; refused"
        )
    if not model.is_file():
        raise BundleError(f"bundle {p}: model file {name} is missing")
    return model


def _check_frontend(p: Path, m: dict[str, Any]) -> None:
    try:
        fe = frontends.from_manifest(m["frontend"])
    except (frontends.FrontEndError, TypeError) as e:
        raise BundleError(f"bundle {p}: {MANIFEST} frontend: {e}") from None
    shape = list(m["input"].get("shape", []))
    expect = [1, *fe.shape, 1]
    if shape != expect:
        raise BundleError(
            f"bundle {p}: input shape {shape} does not match front end "
            f"{fe.name!r}, which makes {expect}"
        )
