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
    """Read and validate a bundle folder (or its manifest.json)."""
    p = Path(path)
    if p.is_file() and p.name == MANIFEST:
        p = p.parent
    mpath = p / MANIFEST
    if not p.is_dir():
        raise BundleError(f"bundle {p}: no such folder")
    if not mpath.is_file():
        raise BundleError(f"bundle {p}: missing {MANIFEST}")
    try:
        m = json.loads(mpath.read_text())
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
    model = p / m["model_file"]
    if not model.is_file():
        raise BundleError(f"bundle {p}: model file {m['model_file']} is missing")
    if check_hash:
        actual = sha256_file(model)
        if actual != m["model_sha256"]:
            raise BundleError(
                f"bundle {p}: model_sha256 mismatch: manifest says {m['model_sha256'][:12]}…, "
                f"{m['model_file']} hashes to {actual[:12]}…"
            )
    labels = m["labels"]
    if not isinstance(labels, list) or len(labels) < 1 or len(set(labels)) != len(labels):
        raise BundleError(f"bundle {p}: labels must be a non-empty list of distinct names")
    try:
        fe = frontends.from_manifest(m["frontend"])
    except frontends.FrontEndError as e:
        raise BundleError(f"bundle {p}: front end: {e}") from None
    shape = list(m["input"].get("shape", []))
    expect = [1, *fe.shape, 1]
    if shape != expect:
        raise BundleError(
            f"bundle {p}: input shape {shape} does not match front end "
            f"{fe.name!r}, which makes {expect}"
        )
    bad_thr = [k for k in m["thresholds"] if k not in labels]
    if bad_thr:
        raise BundleError(f"bundle {p}: thresholds for unknown label(s) {', '.join(bad_thr)}")
    return Bundle(p, m)
