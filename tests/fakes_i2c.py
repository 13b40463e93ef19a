"""A fake I2C bus with an SSD1306 on it, for tests: ``daemon.oled_capture``'s capture (the one
implementation of the SSD1306 decoding, also what the demo runs), plus a flaky wire.

As a launcher for a daemon subprocess, tests run ``python -m daemon.oled_capture PNG_DIR run ...``.
"""

from __future__ import annotations

from pathlib import Path

from daemon.oled_capture import SSD1306Capture


class FakeSSD1306Bus(SSD1306Capture):
    """The capture, whose first ``fail_writes`` transactions raise OSError (a flaky wire)."""

    def __init__(self, png_dir: str | Path | None = None, address: int = 0x3C, width: int = 128,
                 height: int = 64, fail_writes: int = 0) -> None:
        super().__init__(png_dir, address, width, height)
        self.fail_writes = fail_writes

    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        if address == self.address and self.fail_writes > 0:
            self.fail_writes -= 1
            raise OSError(121, "Remote I/O error")
        super().writeto(address, buffer, start=start, end=end)
