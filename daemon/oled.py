"""The SSD1306 OLED (128x64 or 128x32, I2C): alert and idle screens, drawn with Pillow.

Alert screen: the source and the time since the alert on the top line, the label in the
biggest font that fits, a confidence bar with the percentage. It stays up for ``hold_s``, then
the idle screen returns: the model name, "listening", a live level meter (peak-to-peak dBFS).

The display runs in its own thread, so a slow or failing I2C bus never delays detection. A
missing or failing display is logged and reopened with exponential backoff (1 s doubling to
60 s). The I2C bus is injected (``i2c_factory``), which is how tests hand in a fake bus.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import OledSettings
from .outputs import Alert

_LOGGER = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 60.0
METER_FLOOR_DBFS = -90.0  # the level meter's empty end; 0 dBFS is full


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit_font(draw: Any, text: str, max_w: int, max_size: int, min_size: int = 8) -> Any:
    for size in range(max_size, min_size - 1, -1):
        f = _font(size)
        if draw.textlength(text, font=f) <= max_w:
            return f
    return _font(min_size)


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    return f"{s // 3600}h ago"


class Layout:
    """Pixel rows of each element for one display height (a hardware fact: 64 or 32 rows)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        tall = height >= 64
        self.top_size = 10
        self.label_top = 12 if tall else 9
        self.label_size = 26 if tall else 14
        self.bar = (0, 50, 97, 61) if tall else (0, 25, 97, 31)  # x0, y0, x1, y1 (outline)
        self.pct_x = 101


def render_alert(a: Alert, now: float, width: int = 128, height: int = 64) -> Any:
    """The alert screen for ``a`` at wall time ``now`` as a 1-bit Pillow image."""
    from PIL import Image, ImageDraw

    lay = Layout(width, height)
    img = Image.new("1", (width, height), 0)
    d = ImageDraw.Draw(img)
    small = _font(lay.top_size)
    d.text((0, 0), a.short_source(14), font=small, fill=1)
    ago = _ago(now - a.t)
    d.text((width - d.textlength(ago, font=small), 0), ago, font=small, fill=1)
    big = _fit_font(d, a.label, width - 2, lay.label_size)
    d.text((0, lay.label_top), a.label, font=big, fill=1)
    x0, y0, x1, y1 = lay.bar
    d.rectangle((x0, y0, x1, y1), outline=1)
    fill = int(round(max(0.0, min(1.0, a.score)) * (x1 - x0 - 3)))
    if fill > 0:
        d.rectangle((x0 + 2, y0 + 2, x0 + 1 + fill, y1 - 2), fill=1)
    d.text((lay.pct_x, y0 - 1), f"{int(round(a.score * 100))}%", font=small, fill=1)
    return img


def render_idle(model: str, p2p_dbfs: float, width: int = 128, height: int = 64) -> Any:
    """The idle screen: model name, "listening", the live level meter."""
    from PIL import Image, ImageDraw

    lay = Layout(width, height)
    img = Image.new("1", (width, height), 0)
    d = ImageDraw.Draw(img)
    small = _font(lay.top_size)
    d.text((0, 0), model[:22], font=small, fill=1)
    if height >= 64:
        d.text((0, 18), "listening", font=_font(16), fill=1)
    x0, y0, x1, y1 = lay.bar
    d.rectangle((x0, y0, x1, y1), outline=1)
    frac = (max(METER_FLOOR_DBFS, min(0.0, p2p_dbfs)) - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS
    fill = int(round(frac * (x1 - x0 - 3)))
    if fill > 0:
        d.rectangle((x0 + 2, y0 + 2, x0 + 1 + fill, y1 - 2), fill=1)
    d.text((lay.pct_x, y0 - 1), f"{max(-99, int(round(p2p_dbfs)))}", font=small, fill=1)
    return img


class LinuxI2C:
    """/dev/i2c-N as the bus object the Adafruit driver expects (lock + writeto/readfrom_into)."""

    def __init__(self, bus: int) -> None:
        from adafruit_blinka.microcontroller.generic_linux.i2c import I2C

        self._bus = I2C(bus)
        self._lock = threading.Lock()

    def try_lock(self) -> bool:
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        self._lock.release()

    def writeto(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._bus.writeto(address, buffer, start=start, end=end)

    def readfrom_into(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._bus.readfrom_into(address, buffer, start=start, end=end)


class OledSink:
    """An output sink (see daemon.outputs) that drives the display from its own thread."""

    def __init__(
        self,
        settings: OledSettings,
        model_name: str,
        i2c_factory: Callable[[int], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.model_name = model_name
        self._factory = i2c_factory or LinuxI2C
        self._clock = clock
        self._alerts: queue.Queue[Alert] = queue.Queue(maxsize=64)
        self._level = -200.0
        self._current: Alert | None = None
        self._shown_at = 0.0
        self._display: Any = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_START_S
        self.frames = 0
        self.failures = 0
        self._saved = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="oled", daemon=True)
        self._thread.start()

    # -- sink interface (called from other threads) --
    def alert(self, a: Alert) -> None:
        try:
            self._alerts.put_nowait(a)
        except queue.Full:
            _LOGGER.warning("OLED is behind; alert %s not drawn", a.label)

    def level(self, source: str, p2p_dbfs: float, rms_dbfs: float) -> None:
        self._level = p2p_dbfs

    def set_model(self, name: str) -> None:
        self.model_name = name

    def notice(self, text: str) -> None:
        """Show a daemon message (e.g. "reload failed") like an alert, for ``hold_s``."""
        self.alert(Alert(label=text, score=0.0, source="earshotd", t=self._clock()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._display is not None:
            try:
                self._display.fill(0)
                self._display.show()
            except Exception:
                _LOGGER.debug("OLED clear on exit failed", exc_info=True)

    # -- display thread --
    def _loop(self) -> None:
        period = 1.0 / self.settings.refresh_hz
        while not (self._stop.is_set() and self._alerts.empty()):
            try:
                a = self._alerts.get(timeout=0.0 if self._stop.is_set() else period)
                self._current, self._shown_at = a, time.monotonic()
            except queue.Empty:
                if self._stop.is_set():
                    break
            self._draw()

    def _screen(self) -> Any:
        s = self.settings
        if self._current is not None and time.monotonic() - self._shown_at < s.hold_s:
            return render_alert(self._current, self._clock(), s.width, s.height)
        self._current = None
        return render_idle(self.model_name, self._level, s.width, s.height)

    def _draw(self) -> None:
        img = self._screen()
        if self.settings.save_png_dir:
            self._save(img)
        if self._display is None and not self._connect():
            return
        try:
            self._display.image(img.rotate(180) if self.settings.rotate else img)
            self._display.show()
            self.frames += 1
        except Exception:
            self._fail("OLED write failed")

    def _connect(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        s = self.settings
        try:
            import adafruit_ssd1306

            bus = self._factory(s.bus)
            self._display = adafruit_ssd1306.SSD1306_I2C(s.width, s.height, bus, addr=s.address)
        except Exception:
            self._fail(f"OLED at 0x{s.address:02X} on I2C bus {s.bus} unavailable")
            return False
        _LOGGER.info("OLED %dx%d at 0x%02X on I2C bus %d ready", s.width, s.height, s.address, s.bus)
        self._backoff = BACKOFF_START_S
        return True

    def _fail(self, what: str) -> None:
        self.failures += 1
        self._display = None
        self._retry_at = time.monotonic() + self._backoff
        _LOGGER.exception("%s; retrying in %.0f s", what, self._backoff)
        self._backoff = min(BACKOFF_MAX_S, self._backoff * 2)

    def _save(self, img: Any) -> None:
        folder = Path(self.settings.save_png_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / f"frame_{self._saved:05d}.png")
            self._saved += 1
        except OSError:
            _LOGGER.exception("cannot save OLED frame in %s", folder)
