"""``earshot-train evaluate``: the report files say what the numbers are, and the CLI helps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

pytestmark = pytest.mark.slow


def test_evaluate_writes_json_png_and_markdown(keyword_bundles: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_cli("trainer", "evaluate", str(keyword_bundles["pi"]), str(keyword_bundles["rp2040"]),
                   "--out", str(out), "--no-progress", timeout=600)
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    pi, mcu = report["bundles"]
    assert pi["frontend"] == "logmel" and set(pi["models"]) == {"float"}
    assert mcu["frontend"] == "q15log" and set(mcu["models"]) == {"int8", "float"}
    assert mcu["int8_minus_float"] == pytest.approx(
        mcu["models"]["int8"]["accuracy"] - mcu["models"]["float"]["accuracy"], abs=1e-4)
    # the share of clips on which int8 and float pick the same label, scored again here
    from earshot.bundle import load_bundle
    from trainer import evaluate

    b = load_bundle(keyword_bundles["rp2040"])
    x, _ = evaluate.derive_test_split(b, None, {}, progress=False)
    picks = [evaluate.score_clips(b, x, progress=False, use_float=f).argmax(axis=1) for f in (False, True)]
    assert mcu["int8_float_agreement"] == pytest.approx(float(np.mean(picks[0] == picks[1])), abs=1e-4)
    assert f"the same label on {mcu['int8_float_agreement']:.1%} of the clips" in md
    for e in report["bundles"]:
        for kind, rep in e["models"].items():
            cm = rep["confusion"]
            assert sum(map(sum, cm)) == rep["n"] > 0
            assert rep["accuracy"] == pytest.approx(sum(cm[i][i] for i in range(len(cm))) / rep["n"], abs=1e-4)
            # the markdown and the printout carry the same numbers as the JSON
            assert f"| {kind} | {rep['accuracy']:.4f} | {rep['n']} |" in md
            assert f"{kind}: accuracy {rep['accuracy']:.4f} on {rep['n']} test clips" in proc.stdout
            png = out / rep["confusion_png"]
            assert f"]({png.name})" in md
            with Image.open(png) as im:
                assert im.format == "PNG" and im.size[0] > 100
    # the recorded test metric and the re-derived evaluation agree (same split, same path)
    manifest = json.loads((keyword_bundles["rp2040"] / "manifest.json").read_text())
    assert manifest["metrics"]["test_accuracy"] == mcu["models"]["int8"]["accuracy"]
    assert manifest["metrics"]["n_test"] == mcu["models"]["int8"]["n"]


def test_bundles_with_one_name_keep_their_own_plots(keyword_bundles: dict[str, Path], tmp_path: Path) -> None:
    from trainer import evaluate

    report = evaluate.evaluate([keyword_bundles["pi"], keyword_bundles["pi"]], tmp_path, progress=False)
    first, second = (e["models"]["float"]["confusion_png"] for e in report["bundles"])
    assert first != second and (tmp_path / first).is_file() and (tmp_path / second).is_file()


def test_bundle_name_says_a_non_default_front_end() -> None:
    from trainer.train import bundle_name

    assert bundle_name(Path("out/data/keywords"), "pi", "logmel") == "keywords-pi"
    assert bundle_name(Path("out/data/keywords"), "pi", "stft") == "keywords-pi-stft"
    assert bundle_name(Path("kw"), "rp2040", "q15log") == "kw-rp2040"
    assert bundle_name(Path("kw"), "rp2040", "q15") == "kw-rp2040-q15"


def test_evaluate_names_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no-such-bundle: no such folder"):
        run_cli("trainer", "evaluate", str(tmp_path / "no-such-bundle"), "--out", str(tmp_path), timeout=120)


@pytest.mark.parametrize(
    "command, expected",
    [
        ("train", ["--target", "default: both", "--arch", "rp2040_seed", "--transfer-from",
                   "--positive", "--augment-copies", "--epochs", "default: 30"]),
        ("evaluate", ["--data", "--out", "default: out/evaluation", "BUNDLE"]),
    ],
)
def test_cli_help(command: str, expected: list[str]) -> None:
    text = run_cli("trainer", command, "--help", timeout=120).stdout
    for word in expected:
        assert word in text, f"{command} --help lacks {word!r}"
