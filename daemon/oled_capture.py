"""An SSD1306 that is not there: an I2C bus object that decodes the display's command stream back
into pictures, so ``earshotd run`` can be watched without the hardware (the demo's OLED frames,
and the tests' fake bus).

The Adafruit driver talks to it exactly as to /dev/i2c-1: control byte 0x80 + one command byte
(Co=1, D/C#=0), or 0x40 + display RAM data (Co=0, D/C#=1). The capture keeps the controller's
state (addressing mode, column and page windows, RAM pointer, display on/off) and, on each
complete frame write, keeps the visible picture and saves it as PNG.

In-process: ``OledSink(settings, name, i2c_factory=lambda n: SSD1306Capture(png_dir))``. As a
launcher (what ``scripts/demo-daemon`` runs):

    python -m daemon.oled_capture PNG_DIR run --config ...   # = earshotd run, OLED frames -> PNG
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np

# SSD1306 datasheet command bytes
SET_MEM_ADDR = 0x20   # + 1 byte: 0 horizontal, 1 vertical, 2 page addressing
SET_COL_ADDR = 0x21   # + start, end column
SET_PAGE_ADDR = 0x22  # + start, end page
SET_CONTRAST = 0x81   # + 1 byte
SET_CHARGE_PUMP = 0x8D  # + 1 byte
SET_MUX_RATIO = 0xA8  # + 1 byte
SET_DISP_OFFSET = 0xD3  # + 1 byte
SET_DISP_CLK_DIV = 0xD5  # + 1 byte
SET_PRECHARGE = 0xD9  # + 1 byte
SET_COM_PIN_CFG = 0xDA  # + 1 byte
SET_VCOM_DESEL = 0xDB  # + 1 byte
SET_IREF_SELECT = 0xAD  # + 1 byte
_ARGS = {
    SET_MEM_ADDR: 1, SET_COL_ADDR: 2, SET_PAGE_ADDR: 2, SET_CONTRAST: 1, SET_CHARGE_PUMP: 1,
    SET_MUX_RATIO: 1, SET_DISP_OFFSET: 1, SET_DISP_CLK_DIV: 1, SET_PRECHARGE: 1,
    SET_COM_PIN_CFG: 1, SET_VCOM_DESEL: 1, SET_IREF_SELECT: 1,
}


class SSD1306Capture:
    """An I2C bus object (try_lock/unlock/writeto/readfrom_into) with one SSD1306 on it."""

    def __init__(self, png_dir: str | Path | None = None, address: int = 0x3C, width: int = 128,
                 height: int = 64) -> None:
        self.address, self.width, self.height = address, width, height
        self.png_dir = Path(png_dir) if png_dir else None
        self.ram = np.zeros((8, 128), np.uint8)  # 8 pages x 128 columns, LSB = top row
        self.display_on = False
        self.mode = 2
        self.col = (0, 127)
        self.page = (0, 7)
        self._ptr = (0, 0)  # (page, column)
        self._pending: list[int] = []
        self._lock = threading.Lock()
        self.frames: list[np.ndarray] = []

    # -- bus interface used by adafruit_bus_device --
    def try_lock(self) -> bool:
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        self._lock.release()

    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        if address != self.address:
            raise OSError(121, f"no device at 0x{address:02X}")  # EREMOTEIO, as Linux says
        data = bytes(buffer[start:end])
        if not data:
            return  # the driver's probe
        control, body = data[0], data[1:]
        if control & 0x40:
            self._data(body)
        else:
            for b in body:
                self._command(b)

    def readfrom_into(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        if address != self.address:
            raise OSError(121, f"no device at 0x{address:02X}")

    # -- controller model --
    def _command(self, b: int) -> None:
        if self._pending:
            self._pending.append(b)
        elif b in _ARGS:
            self._pending = [b]
        elif b in (0xAE, 0xAF):
            self.display_on = b == 0xAF
        elif 0xB0 <= b <= 0xB7 and self.mode == 2:
            self._ptr = (b - 0xB0, self._ptr[1])
        if self._pending and len(self._pending) == 1 + _ARGS[self._pending[0]]:
            cmd, *args = self._pending
            self._pending = []
            if cmd == SET_MEM_ADDR:
                self.mode = args[0] & 3
            elif cmd == SET_COL_ADDR:
                self.col = (args[0] & 127, args[1] & 127)
                self._ptr = (self._ptr[0], self.col[0])
            elif cmd == SET_PAGE_ADDR:
                self.page = (args[0] & 7, args[1] & 7)
                self._ptr = (self.page[0], self._ptr[1])

    def _data(self, body: bytes) -> None:
        page, col = self._ptr
        for b in body:
            self.ram[page, col] = b
            col += 1
            if col > self.col[1]:
                col = self.col[0]
                page = page + 1 if page < self.page[1] else self.page[0]
        self._ptr = (page, col)
        if len(body) >= (self.page[1] - self.page[0] + 1) * (self.col[1] - self.col[0] + 1):
            self._frame_done()

    def bitmap(self) -> np.ndarray:
        """The visible picture, (height, width) of 0/1, as the panel shows it."""
        pages = self.page[1] + 1
        bits = np.unpackbits(self.ram[:pages, : self.width, None], axis=2, bitorder="little")
        return bits.transpose(0, 2, 1).reshape(pages * 8, self.width)  # (page*8+bit, column)

    def _frame_done(self) -> None:
        frame = self.bitmap()
        if not self.display_on:
            frame = np.zeros_like(frame)
        self.frames.append(frame)
        if self.png_dir is not None:
            from PIL import Image

            self.png_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame * 255).convert("1").save(
                self.png_dir / f"oled_{len(self.frames):05d}.png"
            )


def main(argv: list[str]) -> int:
    """``oled_capture PNG_DIR <earshotd args>``: earshotd with its OLED on a captured bus."""
    from daemon import __main__ as cli
    from daemon import runner

    if not argv:
        print("usage: python -m daemon.oled_capture PNG_DIR <earshotd arguments>", file=sys.stderr)
        return 2
    png_dir, rest = argv[0], argv[1:]
    args = cli.build_parser().parse_args(rest)
    if args.func is not runner.run:
        return int(args.func(args) or 0)
    buses: dict[int, SSD1306Capture] = {}

    def factory(bus: int) -> SSD1306Capture:
        buses.setdefault(bus, SSD1306Capture(png_dir))
        return buses[bus]

    return runner.run(args, i2c_factory=factory)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
