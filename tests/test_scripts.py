"""The scripts under scripts/ stand on the product alone: none imports or runs a test file."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_no_script_uses_the_tests_folder() -> None:
    used = {p.name: m.group(0) for p in SCRIPTS.iterdir() if p.is_file()
            for m in [re.search(r"\btests[/.]\w+", p.read_text(errors="replace"))] if m}  # fmt: skip
    assert used == {}, f"scripts use files under tests/: {used}"
